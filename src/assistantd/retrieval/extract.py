"""File bytes -> text, by file type. Runs in a worker thread (parsers are CPU-bound).

Text-like files (plain text, Markdown, code, JSON, CSV) are decoded incrementally, so a large
file streams through in bounded memory; HTML is stripped with the standard library's parser;
PDF goes through ``pypdf`` and DOCX through ``python-docx``. A type we do not read is
``unsupported_file``; a file of a known type that cannot be parsed (or holds no text) is
``invalid_file``: those are the codes a vector-store file's ``last_error`` carries.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from pathlib import PurePosixPath

# Segments are cut at whitespace near this size: small enough to tokenise in one call and to
# keep memory flat, large enough that the cut rarely matters to chunking.
SEGMENT_CHARS = 256 * 1024

TEXT_EXTENSIONS = frozenset(
    {
        ".txt", ".md", ".markdown", ".rst", ".tex", ".json", ".jsonl", ".csv", ".tsv", ".log",
        ".xml", ".yaml", ".yml", ".toml", ".ini", ".cfg",
        ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".css", ".go", ".java", ".js", ".mjs",
        ".ts", ".tsx", ".jsx", ".php", ".py", ".rb", ".rs", ".sh", ".sql", ".swift", ".kt",
        ".scala", ".lua", ".pl", ".r", ".m", ".vue", ".svelte",
    }
)  # fmt: skip
HTML_EXTENSIONS = frozenset({".html", ".htm", ".xhtml"})
SUPPORTED = TEXT_EXTENSIONS | HTML_EXTENSIONS | {".pdf", ".docx"}


class ExtractionError(Exception):
    code = "invalid_file"


class UnsupportedFile(ExtractionError):
    code = "unsupported_file"


class InvalidFile(ExtractionError):
    code = "invalid_file"


def kind_of(filename: str) -> str:
    suffix = PurePosixPath(filename.lower()).suffix
    if suffix in TEXT_EXTENSIONS or suffix == "":
        return "text"
    if suffix in HTML_EXTENSIONS:
        return "html"
    if suffix == ".pdf":
        return "pdf"
    if suffix == ".docx":
        return "docx"
    raise UnsupportedFile(
        f"Files with extension '{suffix}' are not supported for retrieval. Supported: "
        + ", ".join(sorted(SUPPORTED))
        + "."
    )


def segments(filename: str, pieces: Iterable[bytes]) -> Iterator[str]:
    """The file's text, in segments of about ``SEGMENT_CHARS`` characters."""
    kind = kind_of(filename)
    if kind == "text":
        yield from _resegment(_decode(pieces))
    elif kind == "html":
        yield from _resegment(_html(_decode(pieces)))
    elif kind == "pdf":
        yield from _resegment(_pdf(b"".join(pieces)))
    else:
        yield from _resegment(_docx(b"".join(pieces)))


def extract_all(filename: str, data: bytes) -> list[str]:
    """Every segment of a whole file held in memory (for content pages and tests)."""
    return list(segments(filename, [data]))


def _decode(pieces: Iterable[bytes]) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
    fallback = False
    first = True
    for piece in pieces:
        if first and b"\x00" in piece[:8192]:
            raise InvalidFile("The file is not text: it contains NUL bytes.")
        first = False
        if fallback:
            yield piece.decode("cp1252", errors="replace")
            continue
        try:
            yield decoder.decode(piece)
        except UnicodeDecodeError:
            # Not UTF-8: read the rest as Windows-1252, the usual legacy encoding of text files.
            fallback = True
            yield piece.decode("cp1252", errors="replace")
    if not fallback:
        yield decoder.decode(b"", final=True)


def _resegment(texts: Iterable[str]) -> Iterator[str]:
    buffer = ""
    produced = False
    for text in texts:
        buffer += text
        while len(buffer) >= SEGMENT_CHARS:
            cut = _cut_point(buffer, SEGMENT_CHARS)
            head, buffer = buffer[:cut], buffer[cut:]
            if head.strip():
                produced = True
                yield head
    if buffer.strip():
        produced = True
        yield buffer
    if not produced:
        raise InvalidFile("The file contains no text.")


def _cut_point(text: str, limit: int) -> int:
    window = text[limit // 2 : limit]
    for sep in ("\n\n", "\n", ". ", " "):
        at = window.rfind(sep)
        if at >= 0:
            return limit // 2 + at + len(sep)
    return limit


class _HTMLText(HTMLParser):
    BLOCK = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article",
         "header", "footer", "pre", "blockquote", "table", "ul", "ol", "title"}
    )  # fmt: skip
    SKIP = frozenset({"script", "style", "noscript", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)

    def take(self) -> str:
        text, self.parts = "".join(self.parts), []
        return text


def _html(texts: Iterable[str]) -> Iterator[str]:
    parser = _HTMLText()
    for text in texts:
        parser.feed(text)
        yield _squeeze(parser.take())
    parser.close()
    yield _squeeze(parser.take())


def _squeeze(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.splitlines())
    out = "\n".join(line for line in lines if line)
    return out + "\n" if out else ""


def _pdf(data: bytes) -> Iterator[str]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise InvalidFile("The PDF is encrypted.")
        pages = list(reader.pages)
    except PyPdfError as exc:
        raise InvalidFile(f"The PDF could not be read: {exc}") from None
    except (ValueError, KeyError, TypeError, OSError, AttributeError) as exc:
        raise InvalidFile(f"The PDF could not be read: {exc}") from None
    for page in pages:
        try:
            text = page.extract_text() or ""
        except Exception as exc:  # pypdf raises many kinds on damaged content streams
            raise InvalidFile(f"The PDF could not be read: {exc}") from None
        yield text + "\n\n"


def _docx(data: bytes) -> Iterator[str]:
    import zipfile

    from docx import Document
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise InvalidFile(f"The DOCX could not be read: {exc}") from None
    except Exception as exc:  # lxml raises its own errors on damaged XML
        raise InvalidFile(f"The DOCX could not be read: {exc}") from None
    for paragraph in document.paragraphs:
        yield paragraph.text + "\n"
    for table in document.tables:
        for row in table.rows:
            yield " | ".join(cell.text for cell in row.cells) + "\n"
