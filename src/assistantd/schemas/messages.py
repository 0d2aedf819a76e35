"""Message request bodies: ``CreateMessageRequest`` (also nested in threads and runs)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictStr, Tag
from pydantic_core import PydanticCustomError

from assistantd.schemas.common import (
    CodeInterpreterTool,
    Metadata,
    ObjectId,
    RequestModel,
    by_kind,
    by_type,
)

ImageDetail = Literal["auto", "low", "high"]

# The spec's ``format: uri`` means an absolute URI; a scheme is the part we can check without
# guessing which hosts or image types the model side will accept.
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")


def _check_absolute_uri(url: str) -> str:
    if _ABSOLUTE_URI.fullmatch(url) is None:
        raise PydanticCustomError(
            "invalid_url",
            "expected an absolute URL such as 'https://example.com/image.png', but got '{url}'.",
            {"url": url[:200]},
        )
    return url


class TextContentPart(RequestModel):
    type: Literal["text"]
    text: StrictStr


class ImageFile(RequestModel):
    file_id: ObjectId
    detail: ImageDetail | None = None


class ImageFileContentPart(RequestModel):
    type: Literal["image_file"]
    image_file: ImageFile


class ImageUrl(RequestModel):
    url: Annotated[str, Field(strict=True), AfterValidator(_check_absolute_uri)]
    detail: ImageDetail | None = None


class ImageUrlContentPart(RequestModel):
    type: Literal["image_url"]
    image_url: ImageUrl


ContentPart = Annotated[
    Annotated[TextContentPart, Tag("TextContentPart")]
    | Annotated[ImageFileContentPart, Tag("ImageFileContentPart")]
    | Annotated[ImageUrlContentPart, Tag("ImageUrlContentPart")],
    by_type(
        "invalid_content_part_type",
        "content part",
        {
            "text": "TextContentPart",
            "image_file": "ImageFileContentPart",
            "image_url": "ImageUrlContentPart",
        },
    ),
]

MessageContent = Annotated[
    Annotated[StrictStr, Tag("PlainText")]
    | Annotated[list[ContentPart], Field(min_length=1), Tag("ContentParts")],
    by_kind(
        "invalid_message_content", string="PlainText", other="ContentParts", other_is_list=True
    ),
]


class AttachmentFileSearchTool(RequestModel):
    """``{"type": "file_search"}`` only: attachments take no file-search overrides."""

    type: Literal["file_search"]


AttachmentTool = Annotated[
    Annotated[CodeInterpreterTool, Tag("CodeInterpreterTool")]
    | Annotated[AttachmentFileSearchTool, Tag("AttachmentFileSearchTool")],
    by_type(
        "invalid_attachment_tool_type",
        "attachment tool",
        {"code_interpreter": "CodeInterpreterTool", "file_search": "AttachmentFileSearchTool"},
    ),
]


class MessageAttachment(RequestModel):
    file_id: ObjectId
    # The spec's ``required: [file_id, tools]`` sits on the array, where it has no effect, and
    # the SDK types both as optional; a file attached to no tool is harmless, so allow it.
    tools: list[AttachmentTool] | None = None


class CreateMessageRequest(RequestModel):
    role: Literal["user", "assistant"]
    content: MessageContent
    attachments: list[MessageAttachment] | None = None
    metadata: Metadata | None = None


class ModifyMessageRequest(RequestModel):
    metadata: Metadata | None = None
