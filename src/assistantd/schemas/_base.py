"""Base model, strict scalars, ``Metadata`` and the tagged-union helpers.

Conventions every request model follows, because the HTTP layer relies on them:

* Bodies are closed (the spec's ``additionalProperties: false``): unknown keys are errors.
* Every optional field accepts an explicit JSON ``null`` and has no default, so
  ``model_fields_set`` / ``model_dump(exclude_unset=True)`` show exactly what the client sent.
  A ``null`` on a field the spec does not mark nullable should be read as "not given".
  The one exception is ``parallel_tool_calls``, which the spec defaults to ``true``.
* No type coercion between JSON kinds: ``"1"`` is not a number and ``true`` is not an
  integer. Integers are accepted where the spec says ``number``.
* Unions are tagged (on ``type`` or on the JSON kind) with class-name tags, so an error is
  reported once, inside the variant the client meant, and ``error_param`` can drop the tag.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
)
from pydantic_core import PydanticCustomError

METADATA_MAX_PAIRS = 16
METADATA_MAX_KEY_LENGTH = 64
METADATA_MAX_VALUE_LENGTH = 512


class RequestModel(BaseModel):
    """Base of every request body and nested request object."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class EchoedRequestModel(RequestModel):
    """A nested request object that is stored and shown back as sent (a tool definition, a
    named tool choice). Its null fields mean "not given", so they are left out of the dump:
    echoed, ``"ranker": null`` or ``"file_search": null`` would break the response schema,
    which has no null there."""

    @model_serializer(mode="wrap")
    def _omit_nulls(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if value is not None}


# --- scalars -----------------------------------------------------------------------------------

Temperature = Annotated[float, Field(strict=True, ge=0, le=2, allow_inf_nan=False)]
TopP = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]
TokenLimit = Annotated[int, Field(strict=True, ge=256)]
# The spec states the name rule as "a-z, A-Z, 0-9, _ or -, at most 64". Length and alphabet are
# checked separately so an over-long name is reported as "too long", not as a pattern miss.
Identifier = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
]
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]


def _check_object_id(value: str) -> str:
    # Ids in a body are looked up in the database, and PostgreSQL refuses NUL in a query
    # parameter: refuse it here, as a client error, rather than fail there.
    if "\x00" in value:
        raise PydanticCustomError(
            "invalid_object_id", "expected an object id, but got a string containing NUL."
        )
    return value


ObjectId = Annotated[str, Field(strict=True), AfterValidator(_check_object_id)]
"""The id of a stored object, sent in a request body (``assistant_id``, file ids, ...)."""


# --- metadata ----------------------------------------------------------------------------------


def _check_metadata_key(key: str) -> str:
    if len(key) > METADATA_MAX_KEY_LENGTH:
        raise PydanticCustomError(
            "metadata_key_too_long",
            "key too long. Expected keys with maximum length {max_length}, but got a key with "
            "length {length} instead.",
            {"max_length": METADATA_MAX_KEY_LENGTH, "length": len(key)},
        )
    return key


def _check_metadata_size(value: dict[str, str]) -> dict[str, str]:
    if len(value) > METADATA_MAX_PAIRS:
        raise PydanticCustomError(
            "metadata_too_many_properties",
            "too many properties. Expected an object with at most {max_properties} properties, "
            "but got an object with {count} properties instead.",
            {"max_properties": METADATA_MAX_PAIRS, "count": len(value)},
        )
    return value


# The spec only states these limits in prose, so no schema validator would enforce them.
Metadata = Annotated[
    dict[
        Annotated[str, Field(strict=True), AfterValidator(_check_metadata_key)],
        Annotated[str, StringConstraints(strict=True, max_length=METADATA_MAX_VALUE_LENGTH)],
    ],
    AfterValidator(_check_metadata_size),
]


# --- tagged unions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantError:
    """What a union rejected: the key that selects the variant and the values it accepts."""

    key: str | None
    values: tuple[str, ...]
    expected_kind: str


_VARIANT_ERRORS: dict[str, VariantError] = {}


def variant_error(error_type: str) -> VariantError | None:
    """Describe a union-selection error raised by one of this package's unions."""
    return _VARIANT_ERRORS.get(error_type)


def quoted(values: Sequence[str], last: str = "or") -> str:
    items = [f"'{v}'" for v in values]
    if len(items) <= 2:
        return f" {last} ".join(items)
    return ", ".join(items[:-1]) + f", {last} " + items[-1]


def discriminator(
    error_type: str,
    pick: Callable[[Any], str | None],
    *,
    key: str | None,
    values: Sequence[str],
    expected_kind: str,
    message: str,
) -> Discriminator:
    _VARIANT_ERRORS[error_type] = VariantError(key, tuple(values), expected_kind)
    # One custom error replaces pydantic's "tag not found"/"tag invalid" pair, whose text names
    # our internal tags instead of the values a client can send.
    return Discriminator(pick, custom_error_type=error_type, custom_error_message=message)


def by_type(error_type: str, what: str, tags: Mapping[str, str]) -> Discriminator:
    """Select a variant by the object's ``type`` value; ``tags`` maps type value -> tag."""

    def pick(value: Any) -> str | None:
        kind = value.get("type") if isinstance(value, Mapping) else getattr(value, "type", None)
        return tags.get(kind) if isinstance(kind, str) else None

    return discriminator(
        error_type,
        pick,
        key="type",
        values=list(tags),
        expected_kind="an object",
        message=f"invalid {what} type. Supported values are: {quoted(list(tags), 'and')}.",
    )


def by_kind(error_type: str, *, string: str, other: str, other_is_list: bool) -> Discriminator:
    """Select a variant by JSON kind: a string, or else an object (or an array)."""
    other_types: tuple[type, ...] = (list, tuple) if other_is_list else (Mapping, BaseModel)
    expected = "one of a string or " + ("array of objects" if other_is_list else "object")

    def pick(value: Any) -> str | None:
        if isinstance(value, str):
            return string
        return other if isinstance(value, other_types) else None

    return discriminator(
        error_type,
        pick,
        key=None,
        values=(),
        expected_kind=expected,
        message=f"expected {expected}.",
    )
