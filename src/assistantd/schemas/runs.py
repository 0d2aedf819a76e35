"""Run request bodies."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, StrictBool, StrictStr

from assistantd.schemas.common import (
    Metadata,
    ModifyToolResources,
    ObjectId,
    ReasoningEffort,
    RequestModel,
    ResponseFormat,
    RunTools,
    Temperature,
    TokenLimit,
    ToolChoice,
    TopP,
    TruncationStrategy,
)
from assistantd.schemas.messages import CreateMessageRequest
from assistantd.schemas.threads import CreateThreadRequest


def _null_means_default(value: Any) -> Any:
    return True if value is None else value


# The spec defaults this to true and the Run object must carry a boolean, so an explicit null
# is read as the default rather than stored. ``model_fields_set`` still shows it was sent.
ParallelToolCalls = Annotated[StrictBool, BeforeValidator(_null_means_default)]


class CreateRunRequest(RequestModel):
    assistant_id: ObjectId
    model: StrictStr | None = None
    reasoning_effort: ReasoningEffort | None = None
    instructions: StrictStr | None = None
    additional_instructions: StrictStr | None = None
    additional_messages: list[CreateMessageRequest] | None = None
    tools: RunTools | None = None
    metadata: Metadata | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    stream: StrictBool | None = None
    max_prompt_tokens: TokenLimit | None = None
    max_completion_tokens: TokenLimit | None = None
    truncation_strategy: TruncationStrategy | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: ParallelToolCalls = True
    response_format: ResponseFormat | None = None


class CreateThreadAndRunRequest(RequestModel):
    assistant_id: ObjectId
    thread: CreateThreadRequest | None = None
    model: StrictStr | None = None
    instructions: StrictStr | None = None
    tools: RunTools | None = None
    # Unlike create-thread, the spec gives this endpoint no vector_stores helper.
    tool_resources: ModifyToolResources | None = None
    metadata: Metadata | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    stream: StrictBool | None = None
    max_prompt_tokens: TokenLimit | None = None
    max_completion_tokens: TokenLimit | None = None
    truncation_strategy: TruncationStrategy | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: ParallelToolCalls = True
    response_format: ResponseFormat | None = None


class ToolOutput(RequestModel):
    tool_call_id: StrictStr | None = None
    output: StrictStr | None = None


class SubmitToolOutputsRunRequest(RequestModel):
    tool_outputs: list[ToolOutput]
    stream: StrictBool | None = None


class ModifyRunRequest(RequestModel):
    metadata: Metadata | None = None
