"""Assistant request bodies."""

from __future__ import annotations

from typing import Annotated

from pydantic import StrictStr, StringConstraints

from assistantd.schemas.common import (
    AssistantTools,
    Metadata,
    ModifyToolResources,
    ReasoningEffort,
    RequestModel,
    ResponseFormat,
    Temperature,
    ToolResources,
    TopP,
)

AssistantName = Annotated[str, StringConstraints(strict=True, max_length=256)]
AssistantDescription = Annotated[str, StringConstraints(strict=True, max_length=512)]
AssistantInstructions = Annotated[str, StringConstraints(strict=True, max_length=256_000)]


class CreateAssistantRequest(RequestModel):
    # Any model id is accepted: the spec's enum of known models is only a documentation aid.
    model: StrictStr
    name: AssistantName | None = None
    description: AssistantDescription | None = None
    instructions: AssistantInstructions | None = None
    reasoning_effort: ReasoningEffort | None = None
    tools: AssistantTools | None = None
    tool_resources: ToolResources | None = None
    metadata: Metadata | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    response_format: ResponseFormat | None = None


class ModifyAssistantRequest(RequestModel):
    # The spec does not make model nullable; null is accepted and means "keep the current one".
    model: StrictStr | None = None
    reasoning_effort: ReasoningEffort | None = None
    name: AssistantName | None = None
    description: AssistantDescription | None = None
    instructions: AssistantInstructions | None = None
    tools: AssistantTools | None = None
    tool_resources: ModifyToolResources | None = None
    metadata: Metadata | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    response_format: ResponseFormat | None = None
