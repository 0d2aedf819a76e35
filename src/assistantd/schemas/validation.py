"""Turn a pydantic ``ValidationError`` into OpenAI's ``(param, message)`` pair.

The wording imitates the messages the OpenAI API sends for the same mistakes, because clients
and people compare the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from assistantd.schemas._base import quoted, variant_error
from assistantd.schemas.common import error_param

_EXPECTED_KIND = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a decimal",
    "float_parsing": "a decimal",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "an array",
}

_INVALID_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON.)"
)


def json_kind(value: Any) -> str:
    """Name a value's JSON kind the way OpenAI's messages do ("an integer", "null", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping | BaseModel):
        return "an object"
    return f"a {type(value).__name__}"


def _literal_values(expected: str) -> str:
    # pydantic renders "'a', 'b' or 'c'"; OpenAI lists supported values with "and".
    head, sep, tail = expected.rpartition(" or ")
    if not sep:
        return expected
    return f"{head}, and {tail}" if "," in head else f"{head} and {tail}"


_BOUNDS = {
    "greater_than_equal": ("ge", ">=", "below minimum"),
    "greater_than": ("gt", ">", "below minimum"),
    "less_than_equal": ("le", "<=", "above maximum"),
    "less_than": ("lt", "<", "above maximum"),
}


def _number(value: Any) -> str:
    # Float bounds come back as 2.0; the spec (and OpenAI's messages) say 2.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _bound_message(kind: str, ctx: Mapping[str, Any], value: Any) -> str:
    key, op, side = _BOUNDS[kind]
    number = "integer" if isinstance(value, int) and not isinstance(value, bool) else "decimal"
    bound = _number(ctx.get(key))
    return f"{number} {side} value. Expected a value {op} {bound}, but got {value} instead."


def _length_message(kind: str, ctx: Mapping[str, Any], value: Any) -> str:
    noun, article = ("string", "a") if kind.startswith("string_") else ("array", "an")
    actual = len(value) if isinstance(value, str | list | tuple) else ctx.get("actual_length")
    if kind.endswith("too_long"):
        return (
            f"{noun} too long. Expected {article} {noun} with maximum length "
            f"{ctx.get('max_length')}, but got {article} {noun} with length {actual} instead."
        )
    got = f"an empty {noun}" if actual == 0 else f"{article} {noun} with length {actual}"
    return (
        f"{noun} too short. Expected {article} {noun} with minimum length "
        f"{ctx.get('min_length')}, but got {got} instead."
    )


def describe_error(error: ErrorDetails) -> tuple[str | None, str]:
    """The OpenAI ``param`` (``None`` for the body itself) and message for one pydantic error."""
    kind = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    param = error_param(tuple(error["loc"]))
    where = f"'{param}'" if param else "request body"

    variant = variant_error(kind)
    if variant is not None:
        if variant.key is not None and isinstance(value, Mapping):
            key_param = f"{param}.{variant.key}" if param else variant.key
            if variant.key not in value:
                return key_param, f"Missing required parameter: '{key_param}'."
            selector = value[variant.key]
            if not isinstance(selector, str):
                return key_param, (
                    f"Invalid type for '{key_param}': expected a string, "
                    f"but got {json_kind(selector)} instead."
                )
            supported = quoted(variant.values, "and")
            return key_param, f"Invalid value: '{selector}'. Supported values are: {supported}."
        return param or None, (
            f"Invalid type for {where}: expected {variant.expected_kind}, "
            f"but got {json_kind(value)} instead."
        )

    if kind == "json_invalid":
        return None, _INVALID_JSON
    if kind == "missing":
        return param or None, f"Missing required parameter: {where}."
    if kind == "extra_forbidden":
        return param or None, f"Unknown parameter: {where}."
    if kind in _EXPECTED_KIND:
        return param or None, (
            f"Invalid type for {where}: expected {_EXPECTED_KIND[kind]}, "
            f"but got {json_kind(value)} instead."
        )
    if kind == "literal_error":
        expected = _literal_values(str(ctx.get("expected", "")))
        if isinstance(value, str):
            return param or None, f"Invalid value: '{value}'. Supported values are: {expected}."
        return param or None, (
            f"Invalid type for {where}: expected one of {ctx.get('expected')}, "
            f"but got {json_kind(value)} instead."
        )
    if kind in _BOUNDS:
        return param or None, f"Invalid {where}: {_bound_message(kind, ctx, value)}"
    if kind in ("string_too_long", "string_too_short", "too_long", "too_short"):
        return param or None, f"Invalid {where}: {_length_message(kind, ctx, value)}"
    if kind == "string_pattern_mismatch":
        return param or None, (
            f"Invalid {where}: string does not match pattern. Expected a string that matches "
            f"the pattern '{ctx.get('pattern')}'."
        )
    message = error["msg"].removeprefix("Value error, ")
    return param or None, f"Invalid {where}: {message}"


def param_and_message(exc: ValidationError) -> tuple[str | None, str]:
    """What to put in the error envelope: like OpenAI, report only the first problem."""
    errors = exc.errors(include_url=False)
    if not errors:
        return None, "Invalid request body."
    return describe_error(errors[0])
