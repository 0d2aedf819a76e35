from __future__ import annotations

import httpx
import openai
import pytest


def test_create_retrieve_update_delete(client: openai.OpenAI) -> None:
    created = client.beta.assistants.create(
        model="gpt-4o",
        name="Math tutor",
        description="Helps with sums",
        instructions="You are a math tutor.",
        tools=[
            {"type": "code_interpreter"},
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            },
        ],
        metadata={"team": "a"},
        temperature=0.5,
        top_p=0.9,
        response_format={"type": "json_object"},
    )
    assert created.id.startswith("asst_")
    assert created.object == "assistant"
    assert created.model == "gpt-4o"
    assert [t.type for t in created.tools] == ["code_interpreter", "function"]
    assert created.metadata == {"team": "a"}
    assert created.temperature == 0.5
    assert created.response_format is not None

    fetched = client.beta.assistants.retrieve(created.id)
    assert fetched.model_dump() == created.model_dump()

    updated = client.beta.assistants.update(
        created.id, name="Renamed", tools=[], metadata={"team": "b"}, model="gpt-4o-mini"
    )
    assert updated.name == "Renamed"
    assert updated.tools == []
    assert updated.metadata == {"team": "b"}
    assert updated.model == "gpt-4o-mini"
    assert updated.instructions == "You are a math tutor."
    assert client.beta.assistants.retrieve(created.id).name == "Renamed"

    deleted = client.beta.assistants.delete(created.id)
    assert deleted.deleted is True and deleted.object == "assistant.deleted"
    assert deleted.id == created.id
    with pytest.raises(openai.NotFoundError) as exc:
        client.beta.assistants.retrieve(created.id)
    assert str(exc.value) == f"Error code: 404 - No assistant found with id '{created.id}'."


def test_defaults_are_echoed(client: openai.OpenAI) -> None:
    a = client.beta.assistants.create(model="m")
    assert a.name is None and a.description is None and a.instructions is None
    assert a.tools == [] and a.metadata == {}
    assert a.temperature == 1.0 and a.top_p == 1.0
    assert a.response_format == "auto"


def test_tool_resources_replace_on_update(client: openai.OpenAI) -> None:
    a = client.beta.assistants.create(
        model="m",
        tool_resources={
            "code_interpreter": {"file_ids": ["file-a", "file-b"]},
            "file_search": {"vector_store_ids": ["vs_1"]},
        },
    )
    assert a.tool_resources is not None
    assert a.tool_resources.code_interpreter is not None
    assert a.tool_resources.code_interpreter.file_ids == ["file-a", "file-b"]
    b = client.beta.assistants.update(
        a.id, tool_resources={"code_interpreter": {"file_ids": ["file-c"]}}
    )
    assert b.tool_resources is not None and b.tool_resources.code_interpreter is not None
    assert b.tool_resources.code_interpreter.file_ids == ["file-c"]
    assert b.tool_resources.file_search is not None
    assert b.tool_resources.file_search.vector_store_ids == ["vs_1"]


def test_vector_stores_helper_names_a_missing_file(client: openai.OpenAI) -> None:
    # The helper works (tests/api/test_file_search.py); a file it names must exist.
    with pytest.raises(openai.NotFoundError) as exc:
        client.beta.assistants.create(
            model="m", tool_resources={"file_search": {"vector_stores": [{"file_ids": ["f"]}]}}
        )
    assert exc.value.param == "tool_resources.file_search.vector_stores[0].file_ids"  # type: ignore[attr-defined]
    assert "No file found with id 'f'." in exc.value.message


def test_nulls_inside_tools_are_not_echoed(client: openai.OpenAI, http: httpx.Client) -> None:
    # Found by tests/fuzz: "ranker": null was stored and echoed, which the response schema
    # rejects. A null inside a tool means "not given", as it does at the top level.
    body = {
        "model": "m",
        "tools": [
            {"type": "file_search", "file_search": None},
            {
                "type": "file_search",
                "file_search": {
                    "max_num_results": None,
                    "ranking_options": {"ranker": None, "score_threshold": 0.5},
                },
            },
            {
                "type": "function",
                "function": {"name": "f", "description": None, "parameters": None, "strict": None},
            },
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "x", "description": None, "schema": None, "strict": None},
        },
    }
    created = http.post("/v1/assistants", json=body)
    assert created.status_code == 200, created.text
    shown = http.get(f"/v1/assistants/{created.json()['id']}").json()
    assert created.json() == shown
    assert shown["tools"] == [
        {"type": "file_search"},
        {"type": "file_search", "file_search": {"ranking_options": {"score_threshold": 0.5}}},
        {"type": "function", "function": {"name": "f"}},
    ]
    assert shown["response_format"] == {"type": "json_schema", "json_schema": {"name": "x"}}
    assert client.beta.assistants.retrieve(shown["id"]).id == shown["id"]  # strict client
