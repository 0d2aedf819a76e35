"""Shared request pieces: everything the request bodies are built from, and ``error_param``.

This module is the public face of ``_base`` and ``tools`` (import from here), and defines the
run-level options (response format, tool choice, truncation) and the error-location helper.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictStr,
    Tag,
    ValidationInfo,
    field_validator,
    model_serializer,
)
from pydantic_core import PydanticKnownError

from assistantd.schemas._base import (
    METADATA_MAX_KEY_LENGTH,
    METADATA_MAX_PAIRS,
    METADATA_MAX_VALUE_LENGTH,
    EchoedRequestModel,
    Identifier,
    Metadata,
    ObjectId,
    ReasoningEffort,
    RequestModel,
    Temperature,
    TokenLimit,
    TopP,
    VariantError,
    by_kind,
    by_type,
    discriminator,
    quoted,
    variant_error,
)
from assistantd.schemas.tools import (
    AssistantTools,
    AutoChunkingStrategy,
    ChunkingStrategy,
    CodeInterpreterResources,
    CodeInterpreterTool,
    FileSearchRankingOptions,
    FileSearchResources,
    FileSearchSettings,
    FileSearchTool,
    FunctionDefinition,
    FunctionTool,
    ModifyFileSearchResources,
    ModifyToolResources,
    RunTools,
    StaticChunkingConfig,
    StaticChunkingStrategy,
    Tool,
    ToolResources,
    VectorStoreHelper,
)

__all__ = [
    "METADATA_MAX_KEY_LENGTH",
    "METADATA_MAX_PAIRS",
    "METADATA_MAX_VALUE_LENGTH",
    "AssistantTools",
    "AutoChunkingStrategy",
    "ChunkingStrategy",
    "CodeInterpreterResources",
    "CodeInterpreterTool",
    "FileSearchRankingOptions",
    "FileSearchResources",
    "FileSearchSettings",
    "FileSearchTool",
    "FunctionDefinition",
    "FunctionTool",
    "Identifier",
    "JsonSchemaDefinition",
    "Metadata",
    "ModifyFileSearchResources",
    "ModifyToolResources",
    "NamedToolChoice",
    "ObjectId",
    "ReasoningEffort",
    "RequestModel",
    "ResponseFormat",
    "ResponseFormatJsonObject",
    "ResponseFormatJsonSchema",
    "ResponseFormatText",
    "RunTools",
    "StaticChunkingConfig",
    "StaticChunkingStrategy",
    "Temperature",
    "TokenLimit",
    "Tool",
    "ToolChoice",
    "ToolChoiceFunction",
    "ToolResources",
    "TopP",
    "TruncationStrategy",
    "VariantError",
    "VectorStoreHelper",
    "by_kind",
    "by_type",
    "error_param",
    "variant_error",
]

# --- response format, tool choice, truncation --------------------------------------------------


class ResponseFormatText(RequestModel):
    type: Literal["text"]


class ResponseFormatJsonObject(RequestModel):
    type: Literal["json_object"]


class JsonSchemaDefinition(RequestModel):
    name: Identifier
    description: StrictStr | None = None
    # ``schema`` would shadow a BaseModel attribute; the wire name is kept through the alias.
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: StrictBool | None = None

    @model_serializer(mode="wrap")
    def _wire_names(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Callers that forget by_alias=True must still never see the Python-only name.
        data: dict[str, Any] = handler(self)
        if "schema_" in data:
            data["schema"] = data.pop("schema_")
        # Stored and echoed: a null means "not given" (see EchoedRequestModel).
        return {key: value for key, value in data.items() if value is not None}


class ResponseFormatJsonSchema(RequestModel):
    type: Literal["json_schema"]
    json_schema: JsonSchemaDefinition


_RESPONSE_FORMAT_TAGS = {
    "text": "ResponseFormatText",
    "json_object": "ResponseFormatJsonObject",
    "json_schema": "ResponseFormatJsonSchema",
}


def _pick_response_format(value: Any) -> str | None:
    if isinstance(value, str):
        return "ResponseFormatAuto"
    kind = value.get("type") if isinstance(value, Mapping) else getattr(value, "type", None)
    return _RESPONSE_FORMAT_TAGS.get(kind) if isinstance(kind, str) else None


ResponseFormat = Annotated[
    Annotated[Literal["auto"], Tag("ResponseFormatAuto")]
    | Annotated[ResponseFormatText, Tag("ResponseFormatText")]
    | Annotated[ResponseFormatJsonObject, Tag("ResponseFormatJsonObject")]
    | Annotated[ResponseFormatJsonSchema, Tag("ResponseFormatJsonSchema")],
    discriminator(
        "invalid_response_format",
        _pick_response_format,
        key="type",
        values=list(_RESPONSE_FORMAT_TAGS),
        expected_kind="one of a string or object",
        message="invalid response format. Expected 'auto' or an object whose type is one of "
        + quoted(list(_RESPONSE_FORMAT_TAGS))
        + ".",
    ),
]


class ToolChoiceFunction(RequestModel):
    name: StrictStr


class NamedToolChoice(EchoedRequestModel):
    type: Literal["function", "code_interpreter", "file_search"]
    # validate_default so the "function requires function" rule also fires when it is absent.
    function: ToolChoiceFunction | None = Field(default=None, validate_default=True)

    @field_validator("function")
    @classmethod
    def _function_named(
        cls, value: ToolChoiceFunction | None, info: ValidationInfo
    ) -> ToolChoiceFunction | None:
        if value is None and info.data.get("type") == "function":
            raise PydanticKnownError("missing")
        return value


ToolChoice = Annotated[
    Annotated[Literal["none", "auto", "required"], Tag("ToolChoiceMode")]
    | Annotated[NamedToolChoice, Tag("NamedToolChoice")],
    by_kind(
        "invalid_tool_choice", string="ToolChoiceMode", other="NamedToolChoice", other_is_list=False
    ),
]


class TruncationStrategy(RequestModel):
    type: Literal["auto", "last_messages"]
    last_messages: Annotated[int, Field(strict=True, ge=1)] | None = None


# --- error locations ---------------------------------------------------------------------------

# Mappings whose keys are client data, not field names: never mistake a key for a tag.
_FREE_FORM_MAPS = frozenset({"metadata", "attributes"})
# Labels pydantic inserts for union members: "function-after[...]", "list[...]",
# "literal['auto']", "constrained-str", "str", ... and our own class-name tags.
_PYDANTIC_LABEL = re.compile(r"[a-z][a-z0-9-]*\[.*\]", re.DOTALL)
_BARE_LABELS = frozenset(
    {"str", "int", "float", "bool", "bytes", "none", "dict", "list", "tuple", "set", "any"}
)
_CLASS_TAG = re.compile(r"[A-Z][A-Za-z0-9]*")


def _inserted_by_pydantic(segment: str) -> bool:
    return (
        segment in _BARE_LABELS
        or segment.startswith("constrained-")
        or _CLASS_TAG.fullmatch(segment) is not None
        or _PYDANTIC_LABEL.fullmatch(segment) is not None
    )


def error_param(loc: tuple[int | str, ...]) -> str:
    """Turn a pydantic error location into OpenAI's ``param`` form, e.g. ``tools[0].type``.

    Union tags and member labels are dropped. A bad metadata key is blamed on the map itself
    (``metadata``); a bad value on ``metadata.<key>``. The root location gives ``""``.
    """
    out = ""
    i = 0
    while i < len(loc):
        segment = loc[i]
        i += 1
        if isinstance(segment, int):
            out += f"[{segment}]"
            continue
        if segment == "[key]" or _inserted_by_pydantic(segment):
            continue
        out = f"{out}.{segment}" if out else segment
        if segment in _FREE_FORM_MAPS and i < len(loc) and isinstance(loc[i], str):
            key = str(loc[i])
            is_key_error = i + 1 < len(loc) and loc[i + 1] == "[key]"
            if not is_key_error:
                out += f".{key}"
            i += 2 if is_key_error else 1
    return out
