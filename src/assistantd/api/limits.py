"""Limits against abuse: request rates, concurrent streams, and clients that are too slow.

- **Request rates** per API key (``ASSISTANTD_RATE_LIMIT``, and ``ASSISTANTD_RUN_RATE_LIMIT``
  for run creation) are moving windows kept by the ``limits`` library: in this process's
  memory, or in Redis when ``ASSISTANTD_REDIS_URL`` is set, so that every API process counts
  against the same window. Over a limit: 429 ``rate_limit_exceeded`` with ``retry-after``;
  every answer to a limited key carries OpenAI's ``x-ratelimit-*-requests`` headers.
- **Concurrent streams** per API key (``ASSISTANTD_MAX_STREAMS_PER_KEY``) are counted in this
  process, or in a Redis sorted set whose members expire unless their process keeps them alive,
  so a process that dies does not hold its slots for ever. (Concurrent *runs* are counted in
  the database, by ``services/runs.py``.)
- **Slow clients**: a request body must arrive within ``ASSISTANTD_BODY_TIMEOUT_SECONDS`` plus a
  second per ``ASSISTANTD_BODY_MIN_RATE`` bytes (408 ``request_timeout`` and the connection is
  closed), and a response write that cannot go out for ``ASSISTANTD_SEND_TIMEOUT_SECONDS`` (the
  client stopped reading) ends the response.

``LimitsMiddleware`` does the per-connection parts; the auth dependency calls ``admit`` and the
run routes call ``admit_run`` / ``admit_stream``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
import uuid
from collections import defaultdict
from typing import Any, Protocol

from fastapi import FastAPI, Request
from limits import RateLimitItem, parse_many, strategies
from limits.aio import strategies as aio_strategies
from limits.aio.storage import RedisStorage
from limits.storage import MemoryStorage
from limits.util import WindowStats
from redis.asyncio import Redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistantd.config import Settings
from assistantd.errors import APIError, RateLimitError

log = logging.getLogger("assistantd.limits")

# Keys of the request's state (``scope["state"]``) that the middleware reads back.
_HEADERS = "assistantd_limit_headers"
_SLOTS = "assistantd_stream_slots"

_REDIS_PREFIX = "assistantd"
# A process renews its streams' slots in Redis this often; a slot not renewed for
# _SLOT_TTL (its process died) no longer counts.
_SLOT_REFRESH = 20.0
_SLOT_TTL = 60.0


class RequestTimeoutError(APIError):
    """The client did not send its request body in time."""

    status = 408
    type = "invalid_request_error"
    code = "request_timeout"


class _SendTimeout(Exception):
    """A response write could not go out in time: the client stopped reading."""


def caller_id(secret: str, project: str, *, configured_key: bool) -> str:
    """Who the per-key limits count: the key (by a hash of it, never the secret itself), or
    the default project for ``ASSISTANTD_API_KEY``."""
    if configured_key:
        return f"project:{project}"
    return "key:" + hashlib.sha256(secret.encode()).hexdigest()[:32]


def _reset_text(seconds: float) -> str:
    """A duration as OpenAI writes ``x-ratelimit-reset-*``: ``250ms``, ``12s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    if seconds < 60:
        text = f"{seconds:.3f}".rstrip("0").rstrip(".")
        return f"{text}s"
    minutes, rest = divmod(math.ceil(seconds), 60)
    return f"{minutes}m{rest}s"


class _Window(Protocol):
    """A moving window per (limit, caller): ``hit`` counts one request if there is room."""

    async def hit(self, item: RateLimitItem, caller: str) -> bool: ...

    async def stats(self, item: RateLimitItem, caller: str) -> WindowStats: ...


class _LocalWindow:
    """In this process. The library's synchronous memory storage: its calls never block,
    and it expires old entries from a timer thread, where the asyncio one hands every key to
    a worker thread on each pass (3 times the CPU per request, measured in
    ``bench/limits_overhead.py``)."""

    def __init__(self) -> None:
        self.limiter = strategies.MovingWindowRateLimiter(MemoryStorage())

    async def hit(self, item: RateLimitItem, caller: str) -> bool:
        return self.limiter.hit(item, caller)

    async def stats(self, item: RateLimitItem, caller: str) -> WindowStats:
        return self.limiter.get_window_stats(item, caller)


class _RedisWindow:
    """Shared by every process that uses the same Redis (one Lua script per call)."""

    def __init__(self, storage: RedisStorage) -> None:
        self.limiter = aio_strategies.MovingWindowRateLimiter(storage)

    async def hit(self, item: RateLimitItem, caller: str) -> bool:
        return await self.limiter.hit(item, caller)

    async def stats(self, item: RateLimitItem, caller: str) -> WindowStats:
        return await self.limiter.get_window_stats(item, caller)


class _Streams(Protocol):
    async def acquire(self, caller: str, limit: int) -> str | None: ...

    async def release(self, caller: str, token: str) -> None: ...

    async def close(self) -> None: ...


class _LocalStreams:
    """Open streams per caller, in this process."""

    def __init__(self) -> None:
        self.open: defaultdict[str, int] = defaultdict(int)

    async def acquire(self, caller: str, limit: int) -> str | None:
        if self.open[caller] >= limit:
            return None
        self.open[caller] += 1
        return caller

    async def release(self, caller: str, token: str) -> None:
        self.open[caller] -= 1
        if self.open[caller] <= 0:
            del self.open[caller]

    async def close(self) -> None:
        self.open.clear()


# Drop the slots that were not renewed in time, then take one if fewer than the limit remain.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class _RedisStreams:
    """Open streams per caller across processes: a sorted set of slots scored by when each
    one lapses. This process renews the slots it holds; a dead process's slots lapse."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.acquire_script = redis.register_script(_ACQUIRE)
        self.held: dict[str, str] = {}  # token -> caller
        self.renewer: asyncio.Task[None] | None = None

    @staticmethod
    def _key(caller: str) -> str:
        return f"{_REDIS_PREFIX}:streams:{caller}"

    async def acquire(self, caller: str, limit: int) -> str | None:
        token = uuid.uuid4().hex
        now = time.time()
        taken = await self.acquire_script(
            keys=[self._key(caller)],
            args=[now, now + _SLOT_TTL, limit, token, math.ceil(_SLOT_TTL) * 2],
        )
        if not taken:
            return None
        self.held[token] = caller
        if self.renewer is None or self.renewer.done():
            self.renewer = asyncio.create_task(self._renew(), name="assistantd-stream-slots")
        return token

    async def release(self, caller: str, token: str) -> None:
        self.held.pop(token, None)
        await self.redis.zrem(self._key(caller), token)

    async def _renew(self) -> None:
        while self.held:
            await asyncio.sleep(_SLOT_REFRESH)
            lapse = time.time() + _SLOT_TTL
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for token, caller in list(self.held.items()):
                        # XX: renew only slots that still exist (a release may have raced).
                        pipe.zadd(self._key(caller), {token: lapse}, xx=True)
                    await pipe.execute()
            except Exception:
                log.warning("could not renew stream slots in Redis", exc_info=True)

    async def close(self) -> None:
        if self.renewer is not None:
            self.renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.renewer


class Limits:
    """The limits of one app. Storage is created on first use, inside the server's loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.requests: list[RateLimitItem] = (
            parse_many(settings.rate_limit) if settings.rate_limit else []
        )
        self.runs: list[RateLimitItem] = (
            parse_many(settings.run_rate_limit) if settings.run_rate_limit else []
        )
        self._redis: Redis | None = None
        self._limiter: _Window | None = None
        self._streams: _Streams | None = None
        self._warned_at = 0.0

    # --- storage ---------------------------------------------------------------------------

    def _redis_client(self) -> Redis | None:
        if self.settings.redis_url and self._redis is None:
            self._redis = Redis.from_url(self.settings.redis_url)
        return self._redis

    def limiter(self) -> _Window:
        if self._limiter is None:
            redis = self._redis_client()
            if redis is None:
                self._limiter = _LocalWindow()
            else:
                # One connection pool for the limiter and the stream slots.
                storage = RedisStorage(
                    "async+redis://",
                    implementation="redispy",
                    key_prefix=f"{_REDIS_PREFIX}:limits",
                    connection_pool=redis.connection_pool,  # type: ignore[arg-type]
                )
                self._limiter = _RedisWindow(storage)
        return self._limiter

    def streams(self) -> _Streams:
        if self._streams is None:
            redis = self._redis_client()
            self._streams = _LocalStreams() if redis is None else _RedisStreams(redis)
        return self._streams

    async def close(self) -> None:
        if self._streams is not None:
            await self._streams.close()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    def _storage_failed(self, what: str) -> None:
        # Limits protect the service; they never take it down. Say so at most once a minute.
        now = time.monotonic()
        if now - self._warned_at > 60:
            self._warned_at = now
            log.warning("%s: the limit store failed; letting requests through", what, exc_info=True)

    # --- request rates ---------------------------------------------------------------------

    async def check_rate(
        self, request: Request, items: list[RateLimitItem], caller: str, what: str
    ) -> None:
        """Count one request against each item; 429 at the first that is used up."""
        limiter = self.limiter()
        try:
            for item in items:
                if not await limiter.hit(item, caller):
                    stats = await limiter.stats(item, caller)
                    wait = max(1, math.ceil(stats.reset_time - time.time()))
                    headers = _headers(item, 0, stats.reset_time)
                    headers["retry-after"] = str(wait)
                    _state(request)[_HEADERS] = headers
                    raise RateLimitError(
                        f"Rate limit reached for {what} per API key: Limit {item.amount} per "
                        f"{_window(item)}, Used {item.amount}, Requested 1. "
                        f"Please try again in {wait}s."
                    )
            if items is self.requests:
                # Report the item with the least room left, as OpenAI reports its RPM.
                best: tuple[RateLimitItem, int, float] | None = None
                for item in items:
                    stats = await limiter.stats(item, caller)
                    if best is None or stats.remaining < best[1]:
                        best = (item, stats.remaining, stats.reset_time)
                if best is not None:
                    _state(request)[_HEADERS] = _headers(*best)
        except RateLimitError:
            raise
        except Exception:
            self._storage_failed(what)

    async def acquire_stream(self, request: Request, caller: str) -> None:
        limit = self.settings.max_streams_per_key
        if limit <= 0:
            return
        streams = self.streams()
        try:
            token = await streams.acquire(caller, limit)
        except Exception:
            self._storage_failed("streams")
            return
        if token is None:
            raise RateLimitError(
                f"Too many open streams: this API key already has {limit} run event streams "
                f"open, the most it may hold at once. Close one, or poll the run instead."
            )
        slots: list[tuple[_Streams, str, str]] = _state(request).setdefault(_SLOTS, [])
        slots.append((streams, caller, token))


def _window(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"


def _headers(item: RateLimitItem, remaining: int, reset_time: float) -> dict[str, str]:
    return {
        "x-ratelimit-limit-requests": str(item.amount),
        "x-ratelimit-remaining-requests": str(max(0, remaining)),
        "x-ratelimit-reset-requests": _reset_text(max(0.0, reset_time - time.time())),
    }


def _state(request: Request) -> dict[str, Any]:
    state: dict[str, Any] = request.scope.setdefault("state", {})
    return state


def _limits(request: Request) -> Limits:
    limits: Limits = request.app.state.limits
    return limits


def _caller(request: Request) -> str:
    caller: str = _state(request)["assistantd_caller"]
    return caller


# --- what the routes call ------------------------------------------------------------------


async def admit(request: Request, caller: str) -> None:
    """An authenticated request: remember who it is for, and count it."""
    _state(request)["assistantd_caller"] = caller
    limits = _limits(request)
    if limits.requests:
        await limits.check_rate(request, limits.requests, caller, "requests")


async def admit_run(request: Request, *, stream: bool) -> None:
    """Before a run is created: a stream slot if the run will stream, then the run rate (a
    request refused for want of a slot creates no run, so it does not count as one)."""
    limits = _limits(request)
    caller = _caller(request)
    if stream:
        await limits.acquire_stream(request, caller)
    if limits.runs:
        await limits.check_rate(request, limits.runs, caller, "run creation")


async def admit_stream(request: Request) -> None:
    """Before a stream opens (submitting tool outputs with ``stream: true``)."""
    await _limits(request).acquire_stream(request, _caller(request))


# --- the middleware ------------------------------------------------------------------------


class LimitsMiddleware:
    """Times the request body and the response writes, adds the rate-limit headers, and
    gives back the request's stream slots when its response is over (however it ends)."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits
        self.settings = limits.settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        started = asyncio.get_running_loop().time()
        received = 0
        # Without Content-Length or Transfer-Encoding there is no body to wait for.
        body_done = not any(
            (name == b"content-length" and value != b"0") or name == b"transfer-encoding"
            for name, value in scope["headers"]
        )
        timed_out = False
        response_started = False
        streaming = False
        settings = self.settings

        async def timed_receive() -> Message:
            nonlocal received, body_done, timed_out
            if body_done:
                return await receive()
            deadline = (
                started + settings.body_timeout_seconds + received / max(1, settings.body_min_rate)
            )
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                raise RequestTimeoutError(
                    "The request body was not received in time: the limit is "
                    f"{settings.body_timeout_seconds:g}s, plus 1s per "
                    f"{settings.body_min_rate} bytes received."
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        async def timed_send(message: Message) -> None:
            nonlocal response_started, streaming
            if message["type"] == "http.response.start":
                response_started = True
                extra = state.get(_HEADERS)
                if extra or timed_out:
                    headers = list(message.get("headers", []))
                    for name, value in (extra or {}).items():
                        headers.append((name.encode(), value.encode()))
                    if timed_out:
                        # The rest of the body may still be on its way: do not wait for it.
                        headers.append((b"connection", b"close"))
                    message["headers"] = headers
            elif message.get("more_body", False):
                streaming = True
            if not streaming:
                # A response in one piece goes straight into uvicorn's buffer: only the
                # pieces of a streamed one (events, file contents) wait for the client.
                await send(message)
                return
            try:
                async with asyncio.timeout(settings.send_timeout_seconds):
                    await send(message)
            except TimeoutError:
                raise _SendTimeout from None

        try:
            await self.app(scope, timed_receive, timed_send)
        except Exception as exc:
            # sse-starlette's own send timeout raises its SendTimeoutError (a TimeoutError).
            if not response_started or not isinstance(exc, _SendTimeout | TimeoutError):
                raise
            log.warning(
                "%s %s: the client stopped reading; the response was cut off after %g s",
                scope.get("method", ""),
                scope.get("path", ""),
                settings.send_timeout_seconds,
            )
        finally:
            for streams, caller, token in state.pop(_SLOTS, []):
                try:
                    await streams.release(caller, token)
                except Exception:
                    self.limits._storage_failed("streams")

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def closing_send(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.limits.close()
            await send(message)

        await self.app(scope, receive, closing_send)


def install(app: FastAPI, settings: Settings) -> None:
    limits = Limits(settings)
    app.state.limits = limits
    app.add_middleware(LimitsMiddleware, limits=limits)
