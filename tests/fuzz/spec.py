"""The spec the fuzzer reads: OpenAI's, with the few places where it is wrong corrected.

Each correction names what OpenAI (and its SDK) actually do and why the spec's text cannot be
right. Nothing else is changed: a request or a response the spec describes correctly is judged
by the spec as OpenAI publishes it.
"""

from __future__ import annotations

import copy
import os
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = Path(
    os.environ.get("ASSISTANTD_SPEC")
    # The reference next to the checkout when there is one, else the copy kept with the tests
    # (a clean clone elsewhere, as CI makes, has no ../shared).
    or next(
        p
        for p in (
            ROOT.parent / "shared" / "reference" / "openapi.assistants-v2.yaml",
            ROOT / "tests" / "reference" / "openapi.assistants-v2.yaml",
        )
        if p.exists()
    )
)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


@cache
def published_spec() -> dict[str, Any]:
    """The spec as published (shared: callers must not modify it)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec: dict[str, Any] = yaml.load(SPEC_PATH.read_text(), Loader=loader)
    return spec


def corrected_spec() -> dict[str, Any]:
    spec = copy.deepcopy(published_spec())
    schemas = spec["components"]["schemas"]

    # 1. An empty page has no first or last object: OpenAI answers `"first_id": null,
    #    "last_id": null` (CONFORMANCE.md, "Lists"), where the spec types both as plain strings.
    #    `checks.list_page` holds us to more than the spec: both null exactly when `data` is
    #    empty, otherwise the ids of its first and last objects.
    for name, schema in schemas.items():
        if name.startswith("List") and name.endswith("Response"):
            for key in ("first_id", "last_id"):
                if key in schema.get("properties", {}):
                    schema["properties"][key] = _nullable(schema["properties"][key])

    # 2. `GET /files/{file_id}/content` is the file itself, not JSON: the spec says
    #    `application/json` with a string schema, while OpenAI serves the bytes and the SDK's
    #    `files.content` hands them back raw. We serve `application/octet-stream`.
    download = spec["paths"]["/files/{file_id}/content"]["get"]["responses"]["200"]
    download["content"] = {"application/octet-stream": {"schema": {"type": "string"}}}

    # 3. The spec contradicts itself on `evals`: `CreateFileRequest.purpose` accepts it, the
    #    file object's `purpose` enum does not list it. A file keeps the purpose it was
    #    uploaded with (docs/compatibility.md, "Files and attachments").
    schemas["OpenAIFile"]["properties"]["purpose"]["enum"].append("evals")

    return spec


def _as_json_schema(node: Any) -> Any:
    """The spec's schemas as plain JSON Schema, for the validators built here with
    ``jsonschema``: OpenAPI 3.0's ``nullable: true``, which this 3.1 spec still uses (and
    schemathesis honours), becomes a union with null; and ``CompoundFilter``'s
    ``$recursiveRef: '#'`` names ``CompoundFilter`` (as its description says), not the root
    of the document, which is what it resolves to outside a schema resource of its own."""
    if isinstance(node, list):
        return [_as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node == {"$recursiveRef": "#"}:
        return {"$ref": "#/components/schemas/CompoundFilter"}
    out = {key: _as_json_schema(value) for key, value in node.items() if key != "$recursiveAnchor"}
    if out.pop("nullable", False) is True:
        return _nullable(out)
    return out


@cache
def json_schema_components() -> dict[str, Any]:
    """The corrected spec's ``components``, as plain JSON Schema (shared: do not modify)."""
    components: dict[str, Any] = _as_json_schema(corrected_spec()["components"])
    return components


@cache
def request_body_schema(
    method: str, path: str, media_type: str = "application/json"
) -> dict[str, Any]:
    """The request body schema of an operation, with the components it refers to."""
    operation = corrected_spec()["paths"][path][method.lower()]
    schema = operation["requestBody"]["content"][media_type]["schema"]
    return {**_as_json_schema(schema), "components": json_schema_components()}
