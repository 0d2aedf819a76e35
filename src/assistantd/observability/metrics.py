"""The Prometheus metrics of one process, in a registry of their own.

Each :class:`Metrics` owns a ``CollectorRegistry`` (never prometheus-client's global one), so
two servers in one process, or a test building several apps, never share or clash over
series. Counters and histograms are this process's own: with several processes, Prometheus
scrapes each one and sums. The gauges read from the database (:class:`DatabaseGauges`: runs
by status, files waiting for ingestion) describe the whole deployment, so every process that
serves them reports the same numbers.

Label values are bounded: HTTP routes are the route templates (``/v1/threads/{thread_id}``),
never raw paths; model names come from clients, so only the first ``MODEL_LABELS`` distinct
ones get a series of their own and the rest count as ``other``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from types import TracebackType

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from sqlalchemy import func, select

from assistantd.providers.base import (
    InvalidPrompt,
    ProviderError,
    RateLimited,
    TextDelta,
    ToolCallDelta,
    UpstreamUnavailable,
)
from assistantd.storage import tables
from assistantd.storage.db import Database

log = logging.getLogger("assistantd.metrics")

MODEL_LABELS = 50
"""Distinct model names that get their own ``model`` label value; later ones are ``other``."""

# Upstream calls take from milliseconds (a local echo) to minutes (a long answer).
_TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_CALL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

# Provider failures by kind, most specific first.
_ERROR_KINDS: tuple[tuple[type[ProviderError], str], ...] = (
    (RateLimited, "rate_limited"),
    (InvalidPrompt, "invalid_prompt"),
    (UpstreamUnavailable, "unavailable"),
    (ProviderError, "error"),
)

UNMATCHED_ROUTE = "unmatched"
"""The ``route`` label of requests that matched no route (404s for unknown paths)."""


class BoundedLabel:
    """Passes the first ``limit`` distinct values through, then answers ``other``."""

    def __init__(self, limit: int, *, max_length: int = 100) -> None:
        self.limit = limit
        self.max_length = max_length
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        value = value[: self.max_length]
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) >= self.limit:
                return "other"
            self._seen.add(value)
        return value


class ModelCall:
    """Times one streamed provider call; use as ``with metrics.model_call(provider) as c``.

    ``saw(event)`` marks the first token (text or a tool call fragment); leaving the block
    records the time to it and the call's duration under the call's outcome: ``ok``,
    ``error`` (the provider failed; also counted in ``upstream_errors_total`` by kind) or
    ``aborted`` (we stopped it: a cancel, an expiry, a shutdown).
    """

    def __init__(self, metrics: Metrics, provider: str) -> None:
        self.metrics = metrics
        self.provider = provider
        self.started = 0.0
        self.first_token: float | None = None

    def __enter__(self) -> ModelCall:
        self.started = time.perf_counter()
        return self

    def saw(self, event: object) -> None:
        if self.first_token is None and isinstance(event, TextDelta | ToolCallDelta):
            self.first_token = time.perf_counter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ended = time.perf_counter()
        m = self.metrics
        if exc is None:
            outcome = "ok"
        elif isinstance(exc, ProviderError):
            outcome = "error"
            kind = next(k for cls, k in _ERROR_KINDS if isinstance(exc, cls))
            m.upstream_errors.labels(self.provider, kind).inc()
        else:
            outcome = "aborted"
        m.upstream_duration.labels(self.provider, outcome).observe(ended - self.started)
        if self.first_token is not None:
            m.upstream_ttft.labels(self.provider, outcome).observe(self.first_token - self.started)


class DatabaseGauges:
    """Gauges counted in the database at scrape time: active runs by status (``queued`` is
    the run queue's depth) and vector store files waiting to be ingested.

    Only the active statuses are counted: the partial index ``ix_runs_active_status`` answers
    that at any table size, while counting finished runs would read the whole table at every
    scrape (``runs_finished_total`` counts those). The counts are cached for ``ttl`` seconds, so
    several scrapers cost one query. A failed count leaves the gauges out of that scrape (and
    ``database_gauges_up`` at 0) rather than repeating stale numbers.
    """

    def __init__(self, db: Database, *, ttl: float = 2.0, timeout: float = 2.0) -> None:
        self.db = db
        self.ttl = ttl
        self.timeout = timeout
        self._runs: dict[str, int] | None = None
        self._ingesting: int | None = None
        self._at = float("-inf")
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._at < self.ttl:
                return
            try:
                self._runs, self._ingesting = await asyncio.wait_for(self._count(), self.timeout)
            except Exception as exc:  # the scrape goes on without these gauges
                log.warning("could not count runs for /metrics: %r", exc)
                self._runs = self._ingesting = None
            self._at = time.monotonic()

    async def _count(self) -> tuple[dict[str, int], int]:
        runs, files = tables.runs, tables.vector_store_files
        by_status = (
            select(runs.c.status, func.count())
            .where(runs.c.status.in_(tables.ACTIVE_RUN_STATUSES))
            .group_by(runs.c.status)
        )
        pending = select(func.count()).where(files.c.status == "in_progress")
        async with self.db.read() as conn:
            counts = {status: int(n) for status, n in (await conn.execute(by_status)).all()}
            ingesting = int((await conn.execute(pending)).scalar_one())
        return {s: counts.get(s, 0) for s in tables.ACTIVE_RUN_STATUSES}, ingesting

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "assistantd_database_gauges_up",
            "1 if the last count of runs and files in the database succeeded.",
        )
        up.add_metric([], 0 if self._runs is None else 1)
        yield up
        if self._runs is None or self._ingesting is None:
            return
        runs = GaugeMetricFamily(
            "assistantd_runs",
            "Active runs by status, in the whole database (queued: runs waiting for a worker).",
            labels=["status"],
        )
        for status, n in self._runs.items():
            runs.add_metric([status], n)
        yield runs
        yield GaugeMetricFamily(
            "assistantd_ingestion_queue_depth",
            "Vector store files waiting to be read, chunked and embedded (in the whole database).",
            value=self._ingesting,
        )


class Metrics:
    """Every metric of one process, in ``registry``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        r = self.registry
        self.http_requests = Counter(
            "assistantd_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "assistantd_http_request_duration_seconds",
            "Time from a request's arrival to the last byte of its answer (a stream's whole "
            "length), by method and route template.",
            ["method", "route"],
            registry=r,
        )
        self.upstream_ttft = Histogram(
            "assistantd_upstream_time_to_first_token_seconds",
            "Time from sending a model call to its first text or tool call fragment, by "
            "provider (upstream, local) and outcome (ok, error, aborted).",
            ["provider", "outcome"],
            buckets=_TTFT_BUCKETS,
            registry=r,
        )
        self.upstream_duration = Histogram(
            "assistantd_upstream_call_duration_seconds",
            "Duration of one model call (one attempt), by provider and outcome.",
            ["provider", "outcome"],
            buckets=_CALL_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            "assistantd_upstream_errors",
            "Failed model calls (each attempt), by provider and kind (rate_limited, "
            "invalid_prompt, unavailable, error).",
            ["provider", "kind"],
            registry=r,
        )
        self.tokens = Counter(
            "assistantd_tokens",
            "Tokens of model calls as the provider reported them (or as counted when it did "
            "not), by model and type (prompt, completion).",
            ["model", "type"],
            registry=r,
        )
        self.runs_finished = Counter(
            "assistantd_runs_finished",
            "Runs this process moved to a terminal status, by that status.",
            ["status"],
            registry=r,
        )
        self._model_label = BoundedLabel(MODEL_LABELS)
        self.database: DatabaseGauges | None = None

    # -- what the code reports -------------------------------------------------------------

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_duration.labels(method, route).observe(seconds)

    def model_call(self, provider: str) -> ModelCall:
        return ModelCall(self, provider)

    def count_tokens(self, model: str, prompt: int, completion: int) -> None:
        label = self._model_label(model)
        self.tokens.labels(label, "prompt").inc(max(0, prompt))
        self.tokens.labels(label, "completion").inc(max(0, completion))

    def run_finished(self, status: str) -> None:
        self.runs_finished.labels(status).inc()

    # -- exposition ------------------------------------------------------------------------

    def watch_database(self, db: Database) -> None:
        """Serve the database-wide gauges too (once per registry)."""
        if self.database is None:
            self.database = DatabaseGauges(db)
            self.registry.register(self.database)

    def serve_http(self, host: str, port: int) -> None:
        """Serve this registry at ``http://host:port/metrics`` from a thread of its own, for a
        process that serves no API (``assistantd worker``). The database gauges are left to
        the API processes (they are the same everywhere)."""
        start_http_server(port, addr=host, registry=self.registry)
        log.info("metrics at http://%s:%d/metrics", host, port)

    async def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """(body, content type) in the format the scraper's ``Accept`` asks for (Prometheus'
        text format, or OpenMetrics), with fresh database gauges."""
        if self.database is not None:
            await self.database.refresh()
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type
