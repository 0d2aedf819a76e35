"""Thread request bodies."""

from __future__ import annotations

from assistantd.schemas.common import Metadata, ModifyToolResources, RequestModel, ToolResources
from assistantd.schemas.messages import CreateMessageRequest


class CreateThreadRequest(RequestModel):
    messages: list[CreateMessageRequest] | None = None
    tool_resources: ToolResources | None = None
    metadata: Metadata | None = None


class ModifyThreadRequest(RequestModel):
    # The operation's prose says only metadata can change, but the schema also takes
    # tool_resources (ids only), and clients follow the schema.
    tool_resources: ModifyToolResources | None = None
    metadata: Metadata | None = None
