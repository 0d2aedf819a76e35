"""Request-body models: what the spec accepts, what it rejects, and which ``param`` is blamed."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from assistantd.schemas import (
    CreateAssistantRequest,
    CreateMessageRequest,
    CreateRunRequest,
    CreateThreadAndRunRequest,
    CreateThreadRequest,
    ModifyAssistantRequest,
    ModifyMessageRequest,
    ModifyRunRequest,
    ModifyThreadRequest,
    SubmitToolOutputsRunRequest,
    error_param,
    param_and_message,
)

Body = dict[str, Any]

MINIMAL: dict[type[BaseModel], Body] = {
    CreateAssistantRequest: {"model": "gpt-4o"},
    ModifyAssistantRequest: {},
    CreateThreadRequest: {},
    ModifyThreadRequest: {},
    CreateMessageRequest: {"role": "user", "content": "Hello"},
    ModifyMessageRequest: {},
    CreateRunRequest: {"assistant_id": "asst_1"},
    CreateThreadAndRunRequest: {"assistant_id": "asst_1"},
    SubmitToolOutputsRunRequest: {"tool_outputs": []},
    ModifyRunRequest: {},
}

ALL_TOOLS: list[Body] = [
    {"type": "code_interpreter"},
    {"type": "file_search"},
    {
        "type": "file_search",
        "file_search": {
            "max_num_results": 50,
            "ranking_options": {"ranker": "default_2024_08_21", "score_threshold": 0.5},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_weather-v2",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "strict": True,
        },
    },
]

JSON_SCHEMA_FORMAT: Body = {
    "type": "json_schema",
    "json_schema": {
        "name": "answer",
        "description": "The answer",
        "schema": {"type": "object", "additionalProperties": False},
        "strict": False,
    },
}

FULL_MESSAGE: Body = {
    "role": "assistant",
    "content": [
        {"type": "text", "text": "Look at these"},
        {"type": "image_file", "image_file": {"file_id": "file_img", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "high"}},
    ],
    "attachments": [
        {"file_id": "file_1", "tools": [{"type": "code_interpreter"}, {"type": "file_search"}]}
    ],
    "metadata": {"source": "test"},
}

CREATE_TOOL_RESOURCES: Body = {
    "code_interpreter": {"file_ids": ["file_a", "file_b"]},
    "file_search": {
        "vector_stores": [
            {
                "file_ids": ["file_c"],
                "chunking_strategy": {
                    "type": "static",
                    "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
                },
                "metadata": {"kind": "docs"},
            }
        ]
    },
}

ID_TOOL_RESOURCES: Body = {
    "code_interpreter": {"file_ids": ["file_a"]},
    "file_search": {"vector_store_ids": ["vs_1"]},
}

RUN_OPTIONS: Body = {
    "model": "gpt-4o-mini",
    "instructions": "Be brief.",
    "tools": ALL_TOOLS,
    "metadata": {"k": "v"},
    "temperature": 0.2,
    "top_p": 0.9,
    "stream": False,
    "max_prompt_tokens": 256,
    "max_completion_tokens": 1000,
    "truncation_strategy": {"type": "last_messages", "last_messages": 5},
    "tool_choice": {"type": "function", "function": {"name": "get_weather-v2"}},
    "parallel_tool_calls": False,
    "response_format": JSON_SCHEMA_FORMAT,
}

FULL: dict[type[BaseModel], Body] = {
    CreateAssistantRequest: {
        "model": "gpt-4o",
        "name": "Helper",
        "description": "Helps",
        "instructions": "You help.",
        "reasoning_effort": "low",
        "tools": ALL_TOOLS,
        "tool_resources": CREATE_TOOL_RESOURCES,
        "metadata": {"team": "a"},
        "temperature": 0.7,
        "top_p": 0.5,
        "response_format": {"type": "json_object"},
    },
    ModifyAssistantRequest: {
        "model": "gpt-4.1",
        "reasoning_effort": "high",
        "name": "Renamed",
        "description": "Still helps",
        "instructions": "Help more.",
        "tools": [{"type": "code_interpreter"}],
        "tool_resources": ID_TOOL_RESOURCES,
        "metadata": {},
        "temperature": 2,
        "top_p": 0,
        "response_format": "auto",
    },
    CreateThreadRequest: {
        "messages": [FULL_MESSAGE, {"role": "user", "content": "Hi"}],
        "tool_resources": CREATE_TOOL_RESOURCES,
        "metadata": {"a": "b"},
    },
    ModifyThreadRequest: {"tool_resources": ID_TOOL_RESOURCES, "metadata": {"a": "c"}},
    CreateMessageRequest: FULL_MESSAGE,
    ModifyMessageRequest: {"metadata": {"x": "y"}},
    CreateRunRequest: {
        "assistant_id": "asst_1",
        "reasoning_effort": "minimal",
        "additional_instructions": "Also this.",
        "additional_messages": [FULL_MESSAGE],
        **RUN_OPTIONS,
    },
    CreateThreadAndRunRequest: {
        "assistant_id": "asst_1",
        "thread": {"messages": [{"role": "user", "content": "Hi"}], "metadata": {"t": "1"}},
        "tool_resources": ID_TOOL_RESOURCES,
        **RUN_OPTIONS,
    },
    SubmitToolOutputsRunRequest: {
        "tool_outputs": [{"tool_call_id": "call_1", "output": "42"}, {}],
        "stream": True,
    },
    ModifyRunRequest: {"metadata": {"done": "yes"}},
}

MODELS = list(MINIMAL)


def _id(model: type[BaseModel]) -> str:
    return model.__name__


def validate(model: type[BaseModel], body: Any, via: str = "python") -> BaseModel:
    if via == "json":
        return model.model_validate_json(json.dumps(body))
    return model.model_validate(body)


def rejected(model: type[BaseModel], body: Any, via: str = "python") -> ValidationError:
    with pytest.raises(ValidationError) as info:
        validate(model, body, via)
    return info.value


def first_param(exc: ValidationError) -> str:
    return error_param(tuple(exc.errors()[0]["loc"]))


def wire(model: BaseModel) -> Body:
    return model.model_dump(exclude_unset=True, by_alias=True, mode="json")


# --- accepted bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["python", "json"])
@pytest.mark.parametrize("model", MODELS, ids=_id)
def test_minimal_body_is_valid_and_sets_nothing_else(model: type[BaseModel], via: str) -> None:
    parsed = validate(model, MINIMAL[model], via)
    assert parsed.model_fields_set == set(MINIMAL[model])
    assert wire(parsed) == MINIMAL[model]


@pytest.mark.parametrize("via", ["python", "json"])
@pytest.mark.parametrize("model", MODELS, ids=_id)
def test_full_body_round_trips_unchanged(model: type[BaseModel], via: str) -> None:
    body = FULL[model]
    parsed = validate(model, body, via)
    # What the client sent comes back verbatim: no defaults added, no wire names changed.
    # (Integers given for numbers come back as equal floats.)
    assert wire(parsed) == body


def _optional_fields(model: type[BaseModel]) -> list[str]:
    return [name for name, field in model.model_fields.items() if not field.is_required()]


@pytest.mark.parametrize(
    ("model", "field"),
    [(m, f) for m in MODELS for f in _optional_fields(m)],
    ids=lambda v: v.__name__ if isinstance(v, type) else str(v),
)
def test_explicit_null_is_accepted_and_recorded(model: type[BaseModel], field: str) -> None:
    parsed = validate(model, {**MINIMAL[model], field: None}, "json")
    assert field in parsed.model_fields_set


def test_null_parallel_tool_calls_means_the_default() -> None:
    parsed = CreateRunRequest.model_validate({"assistant_id": "a", "parallel_tool_calls": None})
    assert parsed.parallel_tool_calls is True
    assert "parallel_tool_calls" in parsed.model_fields_set
    unset = CreateRunRequest.model_validate({"assistant_id": "a"})
    assert unset.parallel_tool_calls is True
    assert "parallel_tool_calls" not in wire(unset)


@pytest.mark.parametrize(
    "model", [CreateRunRequest, CreateThreadAndRunRequest, SubmitToolOutputsRunRequest], ids=_id
)
def test_stream_false_is_accepted(model: type[BaseModel]) -> None:
    parsed = validate(model, {**MINIMAL[model], "stream": False}, "json")
    assert wire(parsed)["stream"] is False


def test_integers_are_numbers() -> None:
    parsed = CreateAssistantRequest.model_validate({"model": "m", "temperature": 1, "top_p": 1})
    assert parsed.temperature == 1.0
    assert isinstance(parsed.temperature, float)


def test_empty_metadata_and_exact_limits_are_accepted() -> None:
    metadata = {f"{i:02d}".ljust(64, "k"): "v" * 512 for i in range(16)}
    CreateAssistantRequest.model_validate({"model": "m", "metadata": metadata})
    ModifyThreadRequest.model_validate({"metadata": {}})
    CreateAssistantRequest.model_validate(
        {
            "model": "m",
            "name": "n" * 256,
            "description": "d" * 512,
            "instructions": "i" * 256_000,
            "tools": [{"type": "code_interpreter"}] * 128,
            "tool_resources": {
                "code_interpreter": {"file_ids": [f"f{i}" for i in range(20)]},
                "file_search": {"vector_store_ids": ["vs_1"]},
            },
            "temperature": 0,
            "top_p": 1,
        }
    )
    CreateRunRequest.model_validate(
        {"assistant_id": "a", "tools": [{"type": "file_search"}] * 20, "max_prompt_tokens": 256}
    )


@pytest.mark.parametrize(
    "response_format",
    ["auto", {"type": "text"}, {"type": "json_object"}, JSON_SCHEMA_FORMAT, None],
)
def test_response_format_variants(response_format: Any) -> None:
    parsed = CreateRunRequest.model_validate(
        {"assistant_id": "a", "response_format": response_format}
    )
    assert wire(parsed)["response_format"] == response_format


@pytest.mark.parametrize(
    "tool_choice",
    [
        "none",
        "auto",
        "required",
        {"type": "file_search"},
        {"type": "code_interpreter"},
        {"type": "function", "function": {"name": "f"}},
    ],
)
def test_tool_choice_variants(tool_choice: Any) -> None:
    parsed = CreateRunRequest.model_validate({"assistant_id": "a", "tool_choice": tool_choice})
    assert wire(parsed)["tool_choice"] == tool_choice


def test_json_schema_keeps_its_wire_name_even_without_by_alias() -> None:
    parsed = CreateRunRequest.model_validate(
        {"assistant_id": "a", "response_format": JSON_SCHEMA_FORMAT}
    )
    dumped = parsed.model_dump(exclude_unset=True)
    assert dumped["response_format"]["json_schema"]["schema"] == {
        "type": "object",
        "additionalProperties": False,
    }
    bad = {"type": "json_schema", "json_schema": {"name": "x", "schema_": {}}}
    exc = rejected(CreateRunRequest, {"assistant_id": "a", "response_format": bad})
    assert first_param(exc) == "response_format.json_schema.schema_"


def test_auto_chunking_and_modify_file_search_without_ids() -> None:
    helper = {"vector_stores": [{"chunking_strategy": {"type": "auto"}}]}
    CreateThreadRequest.model_validate({"tool_resources": {"file_search": helper}})
    # Only the create forms carry the spec's "exactly one of" rule.
    ModifyAssistantRequest.model_validate({"tool_resources": {"file_search": {}}})


# --- rejected bodies ---------------------------------------------------------------------------

LONG_KEY = "k" * 65
TOO_MANY = {f"k{i}": "v" for i in range(17)}
TOOL_129 = [{"type": "code_interpreter"}] * 129
TOOL_21 = [{"type": "code_interpreter"}] * 21
FILES_21 = [f"file_{i}" for i in range(21)]
BAD_FUNCTION = [{"type": "function", "function": {"name": "get weather"}}]

A = CreateAssistantRequest
MA = ModifyAssistantRequest
T = CreateThreadRequest
R = CreateRunRequest
TR = CreateThreadAndRunRequest
M = CreateMessageRequest

LIMITS: list[tuple[str, type[BaseModel], Body, str]] = [
    ("metadata 17 pairs", A, {"model": "m", "metadata": TOO_MANY}, "metadata"),
    ("metadata key 65", A, {"model": "m", "metadata": {LONG_KEY: "v"}}, "metadata"),
    ("metadata value 513", A, {"model": "m", "metadata": {"k": "v" * 513}}, "metadata.k"),
    ("metadata value number", ModifyRunRequest, {"metadata": {"k": 1}}, "metadata.k"),
    ("metadata not an object", ModifyMessageRequest, {"metadata": ["k"]}, "metadata"),
    ("thread metadata 17", T, {"metadata": TOO_MANY}, "metadata"),
    (
        "helper metadata 17",
        T,
        {"tool_resources": {"file_search": {"vector_stores": [{"metadata": TOO_MANY}]}}},
        "tool_resources.file_search.vector_stores[0].metadata",
    ),
    ("name 257", A, {"model": "m", "name": "n" * 257}, "name"),
    ("description 513", MA, {"description": "d" * 513}, "description"),
    ("instructions 256001", A, {"model": "m", "instructions": "i" * 256_001}, "instructions"),
    ("129 tools on assistant", A, {"model": "m", "tools": TOOL_129}, "tools"),
    ("129 tools on modify", MA, {"tools": TOOL_129}, "tools"),
    ("21 tools on run", R, {"assistant_id": "a", "tools": TOOL_21}, "tools"),
    ("21 tools on thread+run", TR, {"assistant_id": "a", "tools": TOOL_21}, "tools"),
    (
        "21 code interpreter files",
        A,
        {"model": "m", "tool_resources": {"code_interpreter": {"file_ids": FILES_21}}},
        "tool_resources.code_interpreter.file_ids",
    ),
    (
        "21 code interpreter files on thread+run",
        TR,
        {"assistant_id": "a", "tool_resources": {"code_interpreter": {"file_ids": FILES_21}}},
        "tool_resources.code_interpreter.file_ids",
    ),
    (
        "2 vector store ids",
        T,
        {"tool_resources": {"file_search": {"vector_store_ids": ["vs_1", "vs_2"]}}},
        "tool_resources.file_search.vector_store_ids",
    ),
    (
        "2 vector store ids on modify",
        ModifyThreadRequest,
        {"tool_resources": {"file_search": {"vector_store_ids": ["vs_1", "vs_2"]}}},
        "tool_resources.file_search.vector_store_ids",
    ),
    (
        "2 vector store helpers",
        A,
        {"model": "m", "tool_resources": {"file_search": {"vector_stores": [{}, {}]}}},
        "tool_resources.file_search.vector_stores",
    ),
    (
        "both vector_store_ids and vector_stores",
        A,
        {
            "model": "m",
            "tool_resources": {
                "file_search": {"vector_store_ids": ["vs_1"], "vector_stores": [{}]}
            },
        },
        "tool_resources.file_search",
    ),
    (
        "neither vector_store_ids nor vector_stores",
        T,
        {"tool_resources": {"file_search": {"vector_store_ids": None}}},
        "tool_resources.file_search",
    ),
    (
        "helper on modify assistant",
        MA,
        {"tool_resources": {"file_search": {"vector_stores": [{}]}}},
        "tool_resources.file_search.vector_stores",
    ),
    (
        "helper on thread+run",
        TR,
        {"assistant_id": "a", "tool_resources": {"file_search": {"vector_stores": [{}]}}},
        "tool_resources.file_search.vector_stores",
    ),
    (
        "static overlap above half",
        T,
        {
            "tool_resources": {
                "file_search": {
                    "vector_stores": [
                        {
                            "chunking_strategy": {
                                "type": "static",
                                "static": {
                                    "max_chunk_size_tokens": 800,
                                    "chunk_overlap_tokens": 401,
                                },
                            }
                        }
                    ]
                }
            }
        },
        "tool_resources.file_search.vector_stores[0].chunking_strategy.static.chunk_overlap_tokens",
    ),
    (
        "static chunk size 99",
        A,
        {
            "model": "m",
            "tool_resources": {
                "file_search": {
                    "vector_stores": [
                        {
                            "chunking_strategy": {
                                "type": "static",
                                "static": {"max_chunk_size_tokens": 99, "chunk_overlap_tokens": 0},
                            }
                        }
                    ]
                }
            },
        },
        "tool_resources.file_search.vector_stores[0].chunking_strategy.static.max_chunk_size_tokens",
    ),
    (
        "max_prompt_tokens 255",
        R,
        {"assistant_id": "a", "max_prompt_tokens": 255},
        "max_prompt_tokens",
    ),
    (
        "max_completion_tokens 255",
        TR,
        {"assistant_id": "a", "max_completion_tokens": 255},
        "max_completion_tokens",
    ),
    ("temperature 2.1", A, {"model": "m", "temperature": 2.1}, "temperature"),
    ("temperature -0.1", R, {"assistant_id": "a", "temperature": -0.1}, "temperature"),
    ("top_p 1.1", TR, {"assistant_id": "a", "top_p": 1.1}, "top_p"),
    ("bad function name", A, {"model": "m", "tools": BAD_FUNCTION}, "tools[0].function.name"),
    (
        "function name 65",
        R,
        {"assistant_id": "a", "tools": [{"type": "function", "function": {"name": "f" * 65}}]},
        "tools[0].function.name",
    ),
    (
        "function without function",
        A,
        {"model": "m", "tools": [{"type": "function"}]},
        "tools[0].function",
    ),
    (
        "max_num_results 51",
        A,
        {"model": "m", "tools": [{"type": "file_search", "file_search": {"max_num_results": 51}}]},
        "tools[0].file_search.max_num_results",
    ),
    (
        "score_threshold 1.5",
        A,
        {
            "model": "m",
            "tools": [
                {
                    "type": "file_search",
                    "file_search": {"ranking_options": {"score_threshold": 1.5}},
                }
            ],
        },
        "tools[0].file_search.ranking_options.score_threshold",
    ),
    (
        "unknown ranker",
        A,
        {
            "model": "m",
            "tools": [
                {
                    "type": "file_search",
                    "file_search": {"ranking_options": {"ranker": "bm25", "score_threshold": 0}},
                }
            ],
        },
        "tools[0].file_search.ranking_options.ranker",
    ),
    ("unknown tool type", A, {"model": "m", "tools": [{"type": "retrieval"}]}, "tools[0]"),
    ("empty content list", M, {"role": "user", "content": []}, "content"),
    (
        "empty content list in thread",
        T,
        {"messages": [{"role": "user", "content": []}]},
        "messages[0].content",
    ),
    (
        "empty content list in additional_messages",
        R,
        {"assistant_id": "a", "additional_messages": [{"role": "user", "content": []}]},
        "additional_messages[0].content",
    ),
    ("content number", M, {"role": "user", "content": 3}, "content"),
    (
        "content part text object",
        M,
        {"role": "user", "content": [{"type": "text", "text": {}}]},
        "content[0].text",
    ),
    (
        "image detail",
        M,
        {
            "role": "user",
            "content": [{"type": "image_file", "image_file": {"file_id": "f", "detail": "max"}}],
        },
        "content[0].image_file.detail",
    ),
    (
        "image url not a url",
        M,
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "a.png"}}]},
        "content[0].image_url.url",
    ),
    ("bad role", M, {"role": "system", "content": "x"}, "role"),
    ("missing role", M, {"content": "x"}, "role"),
    ("missing content", M, {"role": "user"}, "content"),
    (
        "attachment tool with overrides",
        M,
        {
            "role": "user",
            "content": "x",
            "attachments": [
                {"file_id": "f", "tools": [{"type": "file_search", "file_search": {}}]}
            ],
        },
        "attachments[0].tools[0].file_search",
    ),
    (
        "attachment without file_id",
        M,
        {"role": "user", "content": "x", "attachments": [{"tools": []}]},
        "attachments[0].file_id",
    ),
    (
        "last_messages 0",
        R,
        {"assistant_id": "a", "truncation_strategy": {"type": "last_messages", "last_messages": 0}},
        "truncation_strategy.last_messages",
    ),
    (
        "truncation type",
        R,
        {"assistant_id": "a", "truncation_strategy": {"type": "first_messages"}},
        "truncation_strategy.type",
    ),
    ("bad tool_choice", R, {"assistant_id": "a", "tool_choice": "always"}, "tool_choice"),
    (
        "tool_choice bad type",
        TR,
        {"assistant_id": "a", "tool_choice": {"type": "retrieval"}},
        "tool_choice.type",
    ),
    (
        "tool_choice function without function",
        R,
        {"assistant_id": "a", "tool_choice": {"type": "function"}},
        "tool_choice.function",
    ),
    (
        "tool_choice function null",
        R,
        {"assistant_id": "a", "tool_choice": {"type": "function", "function": None}},
        "tool_choice.function",
    ),
    (
        "tool_choice function without name",
        R,
        {"assistant_id": "a", "tool_choice": {"type": "function", "function": {}}},
        "tool_choice.function.name",
    ),
    (
        "bad reasoning effort",
        R,
        {"assistant_id": "a", "reasoning_effort": "huge"},
        "reasoning_effort",
    ),
    ("bad response_format string", A, {"model": "m", "response_format": "json"}, "response_format"),
    (
        "json_schema without name",
        A,
        {"model": "m", "response_format": {"type": "json_schema", "json_schema": {}}},
        "response_format.json_schema.name",
    ),
    ("missing model", A, {"name": "x"}, "model"),
    ("missing assistant_id", R, {}, "assistant_id"),
    ("missing assistant_id on thread+run", TR, {"thread": {}}, "assistant_id"),
    ("missing tool_outputs", SubmitToolOutputsRunRequest, {"stream": True}, "tool_outputs"),
    (
        "tool output not a string",
        SubmitToolOutputsRunRequest,
        {"tool_outputs": [{"tool_call_id": "c", "output": {"temp": 20}}]},
        "tool_outputs[0].output",
    ),
]


@pytest.mark.parametrize("via", ["python", "json"])
@pytest.mark.parametrize(
    ("model", "body", "param"),
    [case[1:] for case in LIMITS],
    ids=[case[0] for case in LIMITS],
)
def test_limit_is_enforced_and_blamed_on_the_right_param(
    model: type[BaseModel], body: Body, param: str, via: str
) -> None:
    exc = rejected(model, body, via)
    assert first_param(exc) == param


UNKNOWN_FIELDS: list[tuple[type[BaseModel], Body, str]] = [
    *[(m, {**MINIMAL[m], "bogus": 1}, "bogus") for m in MODELS],
    (A, {"model": "m", "file_ids": []}, "file_ids"),
    (TR, {"assistant_id": "a", "reasoning_effort": "low"}, "reasoning_effort"),
    (TR, {"assistant_id": "a", "additional_messages": []}, "additional_messages"),
    (
        A,
        {"model": "m", "tools": [{"type": "function", "function": {"name": "f", "x": 1}}]},
        "tools[0].function.x",
    ),
    (A, {"model": "m", "tools": [{"type": "code_interpreter", "x": 1}]}, "tools[0].x"),
    (
        T,
        {"tool_resources": {"code_interpreter": {"file_ids": [], "x": 1}}},
        "tool_resources.code_interpreter.x",
    ),
    (M, {"role": "user", "content": [{"type": "text", "text": "t", "x": 1}]}, "content[0].x"),
    (
        R,
        {"assistant_id": "a", "truncation_strategy": {"type": "auto", "x": 1}},
        "truncation_strategy.x",
    ),
    (SubmitToolOutputsRunRequest, {"tool_outputs": [{"id": "c"}]}, "tool_outputs[0].id"),
]


@pytest.mark.parametrize(("model", "body", "param"), UNKNOWN_FIELDS)
def test_unknown_fields_are_rejected(model: type[BaseModel], body: Body, param: str) -> None:
    exc = rejected(model, body)
    assert exc.errors()[0]["type"] == "extra_forbidden"
    assert first_param(exc) == param


@pytest.mark.parametrize("via", ["python", "json"])
@pytest.mark.parametrize(
    ("model", "body", "param"),
    [
        (A, {"model": "m", "temperature": "abc"}, "temperature"),
        (A, {"model": "m", "temperature": "1.5"}, "temperature"),
        (A, {"model": "m", "temperature": True}, "temperature"),
        (R, {"assistant_id": "a", "max_completion_tokens": True}, "max_completion_tokens"),
        (R, {"assistant_id": "a", "max_completion_tokens": "300"}, "max_completion_tokens"),
        (R, {"assistant_id": "a", "max_prompt_tokens": 300.5}, "max_prompt_tokens"),
        (R, {"assistant_id": "a", "stream": "true"}, "stream"),
        (R, {"assistant_id": "a", "stream": 1}, "stream"),
        (R, {"assistant_id": "a", "parallel_tool_calls": "false"}, "parallel_tool_calls"),
        (R, {"assistant_id": 12}, "assistant_id"),
        (A, {"model": 4}, "model"),
        (A, {"model": "m", "name": 5}, "name"),
        (M, {"role": "user", "content": "x", "metadata": {"n": 1.5}}, "metadata.n"),
        (
            A,
            {"model": "m", "tool_resources": {"code_interpreter": {"file_ids": [1]}}},
            "tool_resources.code_interpreter.file_ids[0]",
        ),
    ],
)
def test_no_coercion_between_json_kinds(
    model: type[BaseModel], body: Body, param: str, via: str
) -> None:
    assert first_param(rejected(model, body, via)) == param


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_rejected(value: float) -> None:
    assert first_param(rejected(A, {"model": "m", "temperature": value})) == "temperature"


# --- error_param and messages ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loc", "param"),
    [
        ((), ""),
        (("model",), "model"),
        (("tools", 0, "FunctionTool", "function", "name"), "tools[0].function.name"),
        (
            ("content", "ContentParts", 2, "ImageUrlContentPart", "image_url", "url"),
            "content[2].image_url.url",
        ),
        (("content", "function-after[_check(), str]"), "content"),
        (("response_format", "literal['auto']"), "response_format"),
        (("x", "list[str]", 1), "x[1]"),
        (("x", "constrained-str"), "x"),
        (("x", "str"), "x"),
        (("metadata", "k"), "metadata.k"),
        (("metadata", "str"), "metadata.str"),
        (("metadata", "Key", "[key]"), "metadata"),
        (("thread", "messages", 0, "metadata", "NotATag"), "thread.messages[0].metadata.NotATag"),
        ((0, "a"), "[0].a"),
    ],
)
def test_error_param(loc: tuple[int | str, ...], param: str) -> None:
    assert error_param(loc) == param


@pytest.mark.parametrize(
    ("model", "body", "param", "message"),
    [
        (
            A,
            {"model": "m", "metadata": TOO_MANY},
            "metadata",
            "Invalid 'metadata': too many properties. Expected an object with at most 16 "
            "properties, but got an object with 17 properties instead.",
        ),
        (
            A,
            {"model": "m", "metadata": {LONG_KEY: "v"}},
            "metadata",
            "Invalid 'metadata': key too long. Expected keys with maximum length 64, but got a "
            "key with length 65 instead.",
        ),
        (
            A,
            {"model": "m", "metadata": {"k": "v" * 513}},
            "metadata.k",
            "Invalid 'metadata.k': string too long. Expected a string with maximum length 512, "
            "but got a string with length 513 instead.",
        ),
        (A, {}, "model", "Missing required parameter: 'model'."),
        (A, {"model": "m", "foo": 1}, "foo", "Unknown parameter: 'foo'."),
        (
            A,
            {"model": "m", "temperature": 2.1},
            "temperature",
            "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got "
            "2.1 instead.",
        ),
        (
            A,
            {"model": "m", "temperature": "abc"},
            "temperature",
            "Invalid type for 'temperature': expected a decimal, but got a string instead.",
        ),
        (
            R,
            {"assistant_id": "a", "max_completion_tokens": 255},
            "max_completion_tokens",
            "Invalid 'max_completion_tokens': integer below minimum value. Expected a value >= "
            "256, but got 255 instead.",
        ),
        (
            A,
            {"model": "m", "tools": TOOL_129},
            "tools",
            "Invalid 'tools': array too long. Expected an array with maximum length 128, but got "
            "an array with length 129 instead.",
        ),
        (
            M,
            {"role": "user", "content": []},
            "content",
            "Invalid 'content': array too short. Expected an array with minimum length 1, but got "
            "an empty array instead.",
        ),
        (
            M,
            {"role": "user", "content": 3},
            "content",
            "Invalid type for 'content': expected one of a string or array of objects, but got an "
            "integer instead.",
        ),
        (
            M,
            {"role": "system", "content": "x"},
            "role",
            "Invalid value: 'system'. Supported values are: 'user' and 'assistant'.",
        ),
        (
            A,
            {"model": "m", "tools": BAD_FUNCTION},
            "tools[0].function.name",
            "Invalid 'tools[0].function.name': string does not match pattern. Expected a string "
            "that matches the pattern '^[a-zA-Z0-9_-]+$'.",
        ),
        (
            A,
            {"model": "m", "tools": [{"type": "retrieval"}]},
            "tools[0].type",
            "Invalid value: 'retrieval'. Supported values are: 'code_interpreter', "
            "'file_search', and 'function'.",
        ),
        (
            A,
            {"model": "m", "tools": [{}]},
            "tools[0].type",
            "Missing required parameter: 'tools[0].type'.",
        ),
        (
            A,
            {"model": "m", "tools": ["code_interpreter"]},
            "tools[0]",
            "Invalid type for 'tools[0]': expected an object, but got a string instead.",
        ),
        (
            R,
            {"assistant_id": "a", "tool_choice": "always"},
            "tool_choice",
            "Invalid value: 'always'. Supported values are: 'none', 'auto', and 'required'.",
        ),
        (
            R,
            {"assistant_id": "a", "tool_choice": {"type": "function"}},
            "tool_choice.function",
            "Missing required parameter: 'tool_choice.function'.",
        ),
        (
            R,
            {"assistant_id": "a", "response_format": {"type": "xml"}},
            "response_format.type",
            "Invalid value: 'xml'. Supported values are: 'text', 'json_object', and 'json_schema'.",
        ),
        (
            T,
            {"tool_resources": {"file_search": {"vector_store_ids": [], "vector_stores": []}}},
            "tool_resources.file_search",
            "Invalid 'tool_resources.file_search': expected exactly one of 'vector_store_ids' or "
            "'vector_stores', but got both.",
        ),
    ],
)
def test_param_and_message(model: type[BaseModel], body: Body, param: str, message: str) -> None:
    assert param_and_message(rejected(model, body)) == (param, message)


def test_body_level_errors_have_no_param() -> None:
    with pytest.raises(ValidationError) as info:
        CreateRunRequest.model_validate_json(b'{"assistant_id": ')
    param, message = param_and_message(info.value)
    assert param is None
    assert message.startswith("We could not parse the JSON body of your request.")
    param, message = param_and_message(rejected(CreateRunRequest, []))
    assert param is None
    assert message == "Invalid type for request body: expected an object, but got an array instead."
