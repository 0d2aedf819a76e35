"""Typed request bodies for the Assistants API v2 (pydantic v2), named as the spec names them.

Validate with ``Model.model_validate(data)``; on failure, ``param_and_message(exc)`` gives the
OpenAI error ``param`` and message. See ``_base`` for the conventions every model follows.
"""

from assistantd.schemas.assistants import CreateAssistantRequest, ModifyAssistantRequest
from assistantd.schemas.common import (
    Metadata,
    ModifyToolResources,
    NamedToolChoice,
    ReasoningEffort,
    RequestModel,
    ResponseFormat,
    Tool,
    ToolChoice,
    ToolResources,
    TruncationStrategy,
    error_param,
)
from assistantd.schemas.messages import CreateMessageRequest, ModifyMessageRequest
from assistantd.schemas.runs import (
    CreateRunRequest,
    CreateThreadAndRunRequest,
    ModifyRunRequest,
    SubmitToolOutputsRunRequest,
    ToolOutput,
)
from assistantd.schemas.threads import CreateThreadRequest, ModifyThreadRequest
from assistantd.schemas.validation import describe_error, param_and_message

__all__ = [
    "CreateAssistantRequest",
    "CreateMessageRequest",
    "CreateRunRequest",
    "CreateThreadAndRunRequest",
    "CreateThreadRequest",
    "Metadata",
    "ModifyAssistantRequest",
    "ModifyMessageRequest",
    "ModifyRunRequest",
    "ModifyThreadRequest",
    "ModifyToolResources",
    "NamedToolChoice",
    "ReasoningEffort",
    "RequestModel",
    "ResponseFormat",
    "SubmitToolOutputsRunRequest",
    "Tool",
    "ToolChoice",
    "ToolOutput",
    "ToolResources",
    "TruncationStrategy",
    "describe_error",
    "error_param",
    "param_and_message",
]
