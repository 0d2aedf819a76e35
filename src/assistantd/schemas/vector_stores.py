"""Vector store request bodies, named as the spec names them."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import (
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    Tag,
    model_validator,
)
from pydantic_core import PydanticCustomError

from assistantd.schemas.common import (
    ChunkingStrategy,
    Metadata,
    ObjectId,
    RequestModel,
    by_type,
)

AttributeKey = Annotated[str, StringConstraints(strict=True, max_length=64)]
Number = StrictInt | Annotated[float, Field(strict=True, allow_inf_nan=False)]
AttributeValue = (
    Annotated[str, StringConstraints(strict=True, max_length=512)] | StrictBool | Number
)
Attributes = Annotated[dict[AttributeKey, AttributeValue], Field(max_length=16)]


class VectorStoreExpirationAfter(RequestModel):
    anchor: Literal["last_active_at"]
    days: Annotated[int, Field(strict=True, ge=1, le=365)]


class CreateVectorStoreRequest(RequestModel):
    file_ids: Annotated[list[ObjectId], Field(max_length=500)] | None = None
    name: StrictStr | None = None
    description: StrictStr | None = None
    expires_after: VectorStoreExpirationAfter | None = None
    chunking_strategy: ChunkingStrategy | None = None
    metadata: Metadata | None = None


class UpdateVectorStoreRequest(RequestModel):
    name: StrictStr | None = None
    expires_after: VectorStoreExpirationAfter | None = None
    metadata: Metadata | None = None


class CreateVectorStoreFileRequest(RequestModel):
    file_id: ObjectId
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes | None = None


class CreateVectorStoreFileBatchRequest(RequestModel):
    file_ids: Annotated[list[ObjectId], Field(min_length=1, max_length=2000)] | None = None
    files: (
        Annotated[list[CreateVectorStoreFileRequest], Field(min_length=1, max_length=2000)] | None
    ) = None
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [k for k in ("file_ids", "files") if getattr(self, k) is not None]
        if len(given) != 1:
            raise PydanticCustomError(
                "file_batch_source",
                "expected exactly one of 'file_ids' or 'files', but got {got}.",
                {"got": "both" if given else "neither"},
            )
        return self


class UpdateVectorStoreFileAttributesRequest(RequestModel):
    attributes: Attributes | None


ComparisonValue = StrictStr | StrictBool | Number | list[StrictStr | Number]


class ComparisonFilter(RequestModel):
    type: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"]
    key: StrictStr
    value: ComparisonValue


class CompoundFilter(RequestModel):
    type: Literal["and", "or"]
    filters: list[Filter]


_COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")
Filter = Annotated[
    Annotated[ComparisonFilter, Tag("ComparisonFilter")]
    | Annotated[CompoundFilter, Tag("CompoundFilter")],
    by_type(
        "invalid_filter_type",
        "filter",
        {
            **{c: "ComparisonFilter" for c in _COMPARISONS},
            "and": "CompoundFilter",
            "or": "CompoundFilter",
        },
    ),
]
CompoundFilter.model_rebuild()


Score = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]


class SearchRankingOptions(RequestModel):
    ranker: Literal["none", "auto", "default-2024-11-15"] | None = None
    score_threshold: (
        Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)] | None
    ) = None


class VectorStoreSearchRequest(RequestModel):
    query: StrictStr | Annotated[list[StrictStr], Field(min_length=1)]
    rewrite_query: StrictBool | None = None
    max_num_results: Annotated[int, Field(strict=True, ge=1, le=50)] | None = None
    filters: Filter | None = None
    ranking_options: SearchRankingOptions | None = None
