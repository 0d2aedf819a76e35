"""The fuzzer's own checks, beside schemathesis' built-in ones.

Each is a function ``(ctx, response, case)`` that raises ``AssertionError`` on a bad answer.
The spec declares only ``200`` (and ``429``) answers, so what an error must look like is ours
to check (the envelope, the statuses). Where the spec itself is wrong about a success, the
exception is made here, narrowly, for that operation and that reason only.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jsonschema
from schemathesis import Case, CheckContext, Response
from schemathesis.core import NotSet
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
)

from tests.fuzz.spec import json_schema_components, request_body_schema

ENVELOPE_KEYS = {"message", "type", "param", "code"}
# What OpenAI answers on these routes: 200, or an error the SDK maps to its exception classes;
# 405 only to a method the path does not have (schemathesis probes those too).
OPENAI_STATUSES = {200, 400, 401, 404, 413, 429}

# --- narrow exceptions for where the spec is wrong -------------------------------------------


def _streamed(case: Case) -> bool:
    """A run request with ``stream: true``: the answer is server-sent events, which the spec
    does not declare (it lists only the JSON run object for these operations)."""
    return (
        case.method.upper() == "POST"
        and case.path
        in {
            "/threads/runs",
            "/threads/{thread_id}/runs",
            "/threads/{thread_id}/runs/{run_id}/submit_tool_outputs",
        }
        and isinstance(case.body, dict)
        and case.body.get("stream") is True
    )


def response_schema(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """schemathesis' ``response_schema_conformance``, except for streams (``stream_conforms``)."""
    if response.status_code == 200 and _streamed(case):
        return None
    return response_schema_conformance(ctx, response, case)


def content_type(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """schemathesis' ``content_type_conformance``, except for streams (``stream_conforms``)."""
    if response.status_code == 200 and _streamed(case):
        return None
    return content_type_conformance(ctx, response, case)


def list_page(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A page's ``first_id``/``last_id`` are its first and last objects' ids, null if empty."""
    if response.status_code != 200 or case.method.upper() != "GET":
        return None
    body = json.loads(response.content) if response.content[:1] == b"{" else None
    if not isinstance(body, dict) or body.get("object") != "list" or "has_more" not in body:
        return None
    data = body["data"]
    expected = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    assert (body["first_id"], body["last_id"]) == expected, f"page ids wrong: {body}"
    return None


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


@cache
def _body_validator(
    method: str, path: str, media_type: str = "application/json"
) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(request_body_schema(method, path, media_type))


def _only_body_negative(case: Case) -> bool:
    """Generated invalid in the body, and only there."""
    meta = case.meta
    if meta is None:
        return False
    return [loc for loc in meta.components if meta.is_negative_at(loc)] == [ParameterLocation.BODY]


def _only_nulls_made_it_invalid(case: Case) -> bool:
    """The body was generated invalid, and is valid once keys whose value is null are dropped.

    The project's rule (``schemas/_base.py``): every optional field accepts an explicit
    ``null`` and reads it as "not given", as OpenAI does, where the spec does not mark most of
    them nullable. A null on a required field is still invalid once dropped, so still checked.
    """
    if not isinstance(case.body, dict) or case.media_type != "application/json":
        return False
    if not _only_body_negative(case):
        return False
    return _body_validator(case.method, case.path).is_valid(_drop_nulls(case.body))


def _missing_body_reads_as_empty(case: Case) -> bool:
    """No body (or only whitespace), on an operation where ``{}`` is a valid body.

    The spec marks these bodies required, but the server reads a missing or blank one as
    ``{}`` (pinned by ``tests/api/test_errors.py::test_body_errors_are_400``): nothing the
    client meant is lost, as every field of these bodies is optional.
    """
    blank = isinstance(case.body, (bytes, str)) and not case.body.strip()
    if not (isinstance(case.body, NotSet) or blank) or not _only_body_negative(case):
        return False
    return _body_validator(case.method, case.path).is_valid({})


def _valid_as_sent_in_a_form(case: Case) -> bool:
    """A multipart body whose only invalid value is an empty array: a form encodes it as no
    part at all, so what reached the server is valid (schemathesis does not see that)."""
    if case.media_type != "multipart/form-data" or not isinstance(case.body, dict):
        return False
    if not _only_body_negative(case):
        return False
    sent = {
        key: "" if isinstance(value, bytes) else value  # a file part: binary, a string
        for key, value in case.body.items()
        if value != []
    }
    return _body_validator(case.method, case.path, case.media_type).is_valid(sent)


def rejects_invalid(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """schemathesis' ``negative_data_rejection``, except for the cases above: two leniencies
    of the server, and a form that is valid as sent."""
    if response.status_code == 200 and (
        _only_nulls_made_it_invalid(case)
        or _missing_body_reads_as_empty(case)
        or _valid_as_sent_in_a_form(case)
    ):
        return None
    return negative_data_rejection(ctx, response, case)


# --- errors ----------------------------------------------------------------------------------


def status_openai_gives(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    if case.method.upper() != case.operation.method.upper():
        assert response.status_code == 405, f"{case.method} answered {response.status_code}"
        return None
    assert response.status_code in OPENAI_STATUSES, (
        f"status {response.status_code} is not one OpenAI answers here: {response.text[:500]}"
    )
    return None


def error_envelope(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every error is exactly ``{"error": {"message", "type", "param", "code"}}``, as JSON."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type == "application/json", f"error as {content_type!r}: {response.text[:500]}"
    body = json.loads(response.content)
    assert isinstance(body, dict) and list(body) == ["error"], f"not the envelope: {body}"
    error = body["error"]
    assert isinstance(error, dict) and set(error) == ENVELOPE_KEYS, f"not the envelope: {body}"
    assert isinstance(error["message"], str) and error["message"], f"no message: {body}"
    assert isinstance(error["type"], str) and error["type"], f"no type: {body}"
    assert error["param"] is None or isinstance(error["param"], str), f"bad param: {body}"
    assert error["code"] is None or isinstance(error["code"], str), f"bad code: {body}"
    return None


# --- streams ---------------------------------------------------------------------------------


@cache
def _event_validators() -> dict[str, jsonschema.Draft202012Validator]:
    """Event name -> a validator of its ``data``, from the spec's ``AssistantStreamEvent``."""
    components = json_schema_components()
    schemas = components["schemas"]
    validators = {}
    for group in schemas["AssistantStreamEvent"]["oneOf"]:
        target = schemas[group["$ref"].rsplit("/", 1)[1]]
        for variant in target.get("oneOf", [target]):
            name = variant["properties"]["event"]["enum"][0]
            data = {**variant["properties"]["data"], "components": components}
            validators[name] = jsonschema.Draft202012Validator(data)
    return validators


def parse_sse(text: str) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = []
    for frame in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in frame.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        if data:
            raw = "\n".join(data)
            events.append((name, raw if raw == "[DONE]" else json.loads(raw)))
    return events


def stream_conforms(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A streamed run is server-sent events, each valid against the spec, ending with done.

    The spec declares only the JSON run object for the three operations that can stream, so
    this replaces schemathesis' schema and content-type checks for ``stream: true``.
    """
    if response.status_code != 200 or not _streamed(case):
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("text/event-stream"), f"stream as {content_type!r}"
    events = parse_sse(response.text)
    assert events and events[-1] == ("done", "[DONE]"), f"stream not ended by done: {events[-3:]}"
    validators = _event_validators()
    for name, data in events:
        assert name in validators, f"event {name!r} is not in the spec"
        error = jsonschema.exceptions.best_match(validators[name].iter_errors(data))
        assert error is None, (
            f"event {name} does not match the spec at {list(error.absolute_path)}: "
            f"{error.message[:500]}"
        )
    return None
