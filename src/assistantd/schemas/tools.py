"""Tool definitions and tool resources, as sent in request bodies."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import (
    Field,
    StrictBool,
    StrictStr,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from assistantd.schemas._base import (
    EchoedRequestModel,
    Identifier,
    Metadata,
    ObjectId,
    RequestModel,
    by_type,
)

# --- tools -------------------------------------------------------------------------------------


class CodeInterpreterTool(RequestModel):
    type: Literal["code_interpreter"]


class FileSearchRankingOptions(EchoedRequestModel):
    ranker: Literal["auto", "default_2024_08_21"] | None = None
    score_threshold: Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]


class FileSearchSettings(EchoedRequestModel):
    max_num_results: Annotated[int, Field(strict=True, ge=1, le=50)] | None = None
    ranking_options: FileSearchRankingOptions | None = None


class FileSearchTool(EchoedRequestModel):
    type: Literal["file_search"]
    file_search: FileSearchSettings | None = None


class FunctionDefinition(EchoedRequestModel):
    name: Identifier
    description: StrictStr | None = None
    # A JSON Schema document: free-form by design, so it is not closed like the rest.
    parameters: dict[str, Any] | None = None
    strict: StrictBool | None = None


class FunctionTool(RequestModel):
    type: Literal["function"]
    function: FunctionDefinition


Tool = Annotated[
    Annotated[CodeInterpreterTool, Tag("CodeInterpreterTool")]
    | Annotated[FileSearchTool, Tag("FileSearchTool")]
    | Annotated[FunctionTool, Tag("FunctionTool")],
    by_type(
        "invalid_tool_type",
        "tool",
        {
            "code_interpreter": "CodeInterpreterTool",
            "file_search": "FileSearchTool",
            "function": "FunctionTool",
        },
    ),
]
AssistantTools = Annotated[list[Tool], Field(max_length=128)]
RunTools = Annotated[list[Tool], Field(max_length=20)]


# --- tool resources ----------------------------------------------------------------------------

FileIdList = Annotated[list[ObjectId], Field(max_length=20)]
VectorStoreIdList = Annotated[list[ObjectId], Field(max_length=1)]


class CodeInterpreterResources(RequestModel):
    file_ids: FileIdList | None = None


class AutoChunkingStrategy(RequestModel):
    type: Literal["auto"]


class StaticChunkingConfig(RequestModel):
    max_chunk_size_tokens: Annotated[int, Field(strict=True, ge=100, le=4096)]
    chunk_overlap_tokens: Annotated[int, Field(strict=True, ge=0)]

    @field_validator("chunk_overlap_tokens")
    @classmethod
    def _overlap_at_most_half(cls, value: int, info: ValidationInfo) -> int:
        size = info.data.get("max_chunk_size_tokens")
        if isinstance(size, int) and value * 2 > size:
            raise PydanticCustomError(
                "chunk_overlap_too_large",
                "chunk_overlap_tokens must not exceed half of max_chunk_size_tokens "
                "({max_overlap}), but got {value} instead.",
                {"max_overlap": size // 2, "value": value},
            )
        return value


class StaticChunkingStrategy(RequestModel):
    type: Literal["static"]
    static: StaticChunkingConfig


ChunkingStrategy = Annotated[
    Annotated[AutoChunkingStrategy, Tag("AutoChunkingStrategy")]
    | Annotated[StaticChunkingStrategy, Tag("StaticChunkingStrategy")],
    by_type(
        "invalid_chunking_strategy_type",
        "chunking strategy",
        {"auto": "AutoChunkingStrategy", "static": "StaticChunkingStrategy"},
    ),
]


class VectorStoreHelper(RequestModel):
    """The ``vector_stores[]`` helper: create a vector store from files and attach it."""

    file_ids: Annotated[list[ObjectId], Field(max_length=100_000_000)] | None = None
    chunking_strategy: ChunkingStrategy | None = None
    metadata: Metadata | None = None


class FileSearchResources(RequestModel):
    vector_store_ids: VectorStoreIdList | None = None
    vector_stores: Annotated[list[VectorStoreHelper], Field(max_length=1)] | None = None

    @model_validator(mode="after")
    def _exactly_one_source(self) -> Self:
        # The spec's oneOf: attach an existing store or create one, never both nor neither.
        given = [k for k in ("vector_store_ids", "vector_stores") if getattr(self, k) is not None]
        if len(given) != 1:
            raise PydanticCustomError(
                "vector_store_source",
                "expected exactly one of 'vector_store_ids' or 'vector_stores', but got {got}.",
                {"got": "both" if given else "neither"},
            )
        return self


class ToolResources(RequestModel):
    """``tool_resources`` on create assistant / create thread (the helper is allowed)."""

    code_interpreter: CodeInterpreterResources | None = None
    file_search: FileSearchResources | None = None


class ModifyFileSearchResources(RequestModel):
    vector_store_ids: VectorStoreIdList | None = None


class ModifyToolResources(RequestModel):
    """``tool_resources`` that only reference ids: modify assistant/thread, create-and-run."""

    code_interpreter: CodeInterpreterResources | None = None
    file_search: ModifyFileSearchResources | None = None
