"""Limits against abuse, against real servers: body caps, request and run rates per key,
active runs per project, open streams per key, and clients that send or read too slowly.

Each group runs on a server of its own with low limits. Rates are counted per key and active
runs per project, so every test uses keys and projects that no other test touches. Slow
clients are raw sockets: an HTTP library would not send a body slowly or stop reading.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
import redis

from assistantd.api.deps import MAX_JSON_BODY
from assistantd.services.files import MAX_FILE_BYTES
from tests.api.test_run_engine import scripted, wait_for
from tests.conftest import hanging_assistant, make_client
from tests.servers import BACKENDS, Server, free_port, postgres_url, running_server
from tests.upstream import Hang, ScriptedUpstream, Text

RESET = re.compile(r"^(\d+ms|\d+(\.\d+)?s|\d+m\d+s)$")
ENVELOPE_KEYS = {"message", "type", "param", "code"}


# --- helpers ---------------------------------------------------------------------------------


def address(server: Server) -> tuple[str, int]:
    host, port = server.base_url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def raw_request(
    server: Server, head: str, body: bytes = b"", *, rcvbuf: int | None = None
) -> socket.socket:
    """Open a connection and send a request head (and the start of a body) as given."""
    sock = socket.socket()
    if rcvbuf is not None:
        # Before connecting, so the window the server sees stays small.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(30)
    sock.connect(address(server))
    sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response with a Content-Length, read off a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside the body"
        body += chunk
    return status, headers, body


def assert_envelope(body: Any, *, type_: str, code: str | None) -> dict[str, Any]:
    assert isinstance(body, dict) and list(body) == ["error"], body
    error = body["error"]
    assert set(error) == ENVELOPE_KEYS, body
    assert error["type"] == type_ and error["code"] == code and error["param"] is None, body
    assert isinstance(error["message"], str) and error["message"], body
    return dict(error)


def assert_rate_limited(response: httpx.Response, limit: int, what: str) -> int:
    """A 429 in OpenAI's shape with its headers; returns ``retry-after``."""
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_")
    error = assert_envelope(response.json(), type_="requests", code="rate_limit_exceeded")
    assert error["message"].startswith(f"Rate limit reached for {what} per API key: "), error
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit() and int(retry_after) >= 1, retry_after
    assert response.headers["x-ratelimit-limit-requests"] == str(limit)
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert RESET.match(response.headers["x-ratelimit-reset-requests"])
    return int(retry_after)


def eventually(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.1)


def keyed(server: Server, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {key}", "OpenAI-Beta": "assistants=v2"},
        timeout=30,
    )


# --- request body caps (the default server) --------------------------------------------------


def test_json_body_declared_over_the_cap_is_413_before_it_is_sent(server: Server) -> None:
    head = (
        "POST /v1/threads HTTP/1.1\nHost: test\n"
        f"Authorization: Bearer {server.keys['alpha']}\n"
        f"Content-Type: application/json\nContent-Length: {MAX_JSON_BODY + 1}\n"
    )
    with raw_request(server, head, b"{") as sock:
        status, _headers, body = read_response(sock)
    assert status == 413
    error = assert_envelope(orjson.loads(body), type_="invalid_request_error", code=None)
    assert error["message"] == f"Request body too large: limit is {MAX_JSON_BODY} bytes."


def test_upload_declared_over_the_cap_is_413(server: Server) -> None:
    head = (
        "POST /v1/files HTTP/1.1\nHost: test\n"
        f"Authorization: Bearer {server.keys['alpha']}\n"
        "Content-Type: multipart/form-data; boundary=x\n"
        f"Content-Length: {MAX_FILE_BYTES + 2 * 1024 * 1024}\n"
    )
    with raw_request(server, head, b"--x\r\n") as sock:
        status, _headers, body = read_response(sock)
    assert status == 413
    error = orjson.loads(body)["error"]
    assert error["param"] == "file" and set(error) == ENVELOPE_KEYS
    assert error["message"] == f"File is too large: the limit is {MAX_FILE_BYTES} bytes."


def test_the_json_cap_does_not_apply_to_uploads(client: openai.OpenAI) -> None:
    size = MAX_JSON_BODY + 1024 * 1024
    uploaded = client.files.create(file=("big.txt", b"a" * size), purpose="assistants")
    try:
        assert uploaded.bytes == size
        assert len(client.files.content(uploaded.id).content) == size
    finally:
        client.files.delete(uploaded.id)


# --- request rates ---------------------------------------------------------------------------

RATE = 3


@pytest.fixture(scope="module", params=BACKENDS)
def rated(request: pytest.FixtureRequest) -> Iterator[Server]:
    # Every authenticated request of a key counts: RATE per 4 seconds.
    with running_server(request.param, rate_limit=f"{RATE}/4second") as srv:
        yield srv


def test_requests_over_the_rate_get_429_with_retry_after(rated: Server) -> None:
    with keyed(rated, rated.keys["alpha"]) as http:
        for remaining in range(RATE - 1, -1, -1):
            response = http.get("/v1/assistants")
            assert response.status_code == 200, response.text
            assert response.headers["x-ratelimit-limit-requests"] == str(RATE)
            assert response.headers["x-ratelimit-remaining-requests"] == str(remaining)
            assert RESET.match(response.headers["x-ratelimit-reset-requests"])
            assert "retry-after" not in response.headers
        retry_after = assert_rate_limited(http.get("/v1/assistants"), RATE, "requests")
        assert retry_after <= 4
        # Every route and method of the key is limited.
        assert_rate_limited(http.post("/v1/threads", json={}), RATE, "requests")

    # The SDK sees OpenAI's error; with retries off it raises at once.
    with make_client(rated, rated.keys["alpha"]) as sdk:
        with pytest.raises(openai.RateLimitError) as caught:
            sdk.beta.assistants.list()
        assert caught.value.code == "rate_limit_exceeded" and caught.value.type == "requests"

    # Another key has its own window; unauthenticated routes and bad keys are not limited.
    with keyed(rated, rated.keys["beta"]) as other:
        assert other.get("/v1/assistants").status_code == 200
    assert httpx.get(rated.base_url + "/healthz").status_code == 200
    with keyed(rated, "sk-not-a-key") as stranger:
        assert stranger.get("/v1/assistants").status_code == 401


def test_the_sdk_waits_for_retry_after_and_succeeds(rated: Server) -> None:
    key = rated.keys["beta"]
    with keyed(rated, key) as http:
        statuses = [http.get("/v1/assistants").status_code for _ in range(RATE + 1)]
    assert 429 in statuses, statuses
    # The SDK's default retries honour retry-after (at most 4 s here) and then get through.
    with openai.OpenAI(
        base_url=rated.base_url + "/v1", api_key=key, _strict_response_validation=True
    ) as sdk:
        assert sdk.beta.assistants.list().data == []


# --- runs and streams ------------------------------------------------------------------------

RUN_RATE = 5
MAX_ACTIVE = 2


@pytest.fixture(scope="module", params=BACKENDS)
def capped(request: pytest.FixtureRequest, upstream: ScriptedUpstream) -> Iterator[Server]:
    with running_server(
        request.param,
        upstream_base_url=upstream.base_url,
        run_rate_limit=f"{RUN_RATE}/minute",
        max_active_runs_per_project=str(MAX_ACTIVE),
        max_streams_per_key="1",
    ) as srv:
        yield srv


def test_run_creation_has_its_own_rate(capped: Server) -> None:
    key = capped.keys["alpha"]
    with make_client(capped, key) as client, keyed(capped, key) as http:
        assistant = client.beta.assistants.create(model="m").id
        thread = client.beta.threads.create().id
        for _ in range(RUN_RATE):
            run = client.beta.threads.create_and_run(assistant_id=assistant)
            wait_for(client, run, {"completed"})
        response = http.post(f"/v1/threads/{thread}/runs", json={"assistant_id": assistant})
        assert_rate_limited(response, RUN_RATE, "run creation")
        assert client.beta.threads.runs.list(thread_id=thread).data == []
        # Other requests are not run creations.
        assert client.beta.threads.retrieve(thread).id == thread


def test_active_runs_are_capped_per_project(capped: Server, upstream: ScriptedUpstream) -> None:
    project = f"busy-{uuid.uuid4().hex[:8]}"
    first, second = capped.new_key(project), capped.new_key(project)
    with make_client(capped, first) as one, make_client(capped, second) as two:
        assistant, _ = scripted(one, upstream, *[Hang(["..."], seconds=60)] * (MAX_ACTIVE + 1))
        runs = [one.beta.threads.create_and_run(assistant_id=assistant) for _ in range(MAX_ACTIVE)]
        thread = two.beta.threads.create().id
        # The cap is the project's, whichever key asks.
        with pytest.raises(openai.RateLimitError) as caught:
            two.beta.threads.runs.create(thread_id=thread, assistant_id=assistant)
        assert caught.value.code == "rate_limit_exceeded" and caught.value.type == "requests"
        assert caught.value.body["message"] == (
            f"Too many active runs: this project already has {MAX_ACTIVE} runs queued, in "
            "progress, waiting for tool outputs or cancelling, the most it may have at once. "
            "Wait for one to end, or cancel one."
        )
        assert two.beta.threads.runs.list(thread_id=thread).data == []

        # Another project is not affected.
        with make_client(capped, capped.keys["beta"]) as other:
            run = other.beta.threads.create_and_run(
                assistant_id=other.beta.assistants.create(model="m").id
            )
            wait_for(other, run, {"completed"})

        one.beta.threads.runs.cancel(runs[0].id, thread_id=runs[0].thread_id)
        wait_for(one, runs[0], {"cancelled"})
        late = two.beta.threads.runs.create(thread_id=thread, assistant_id=assistant)
        for run in (runs[1], late):
            one.beta.threads.runs.cancel(run.id, thread_id=run.thread_id)
            wait_for(one, run, {"cancelled"})


def test_open_streams_are_capped_per_key(capped: Server, upstream: ScriptedUpstream) -> None:
    key = capped.new_key(f"streams-{uuid.uuid4().hex[:8]}")
    with make_client(capped, key) as client:
        hanging = hanging_assistant(client, upstream)
        echo = client.beta.assistants.create(model="m").id
        held = client.beta.threads.create_and_run(assistant_id=hanging, stream=True)
        first = next(iter(held))
        assert first.event == "thread.created"

        thread = client.beta.threads.create().id
        with pytest.raises(openai.RateLimitError) as caught:
            client.beta.threads.runs.create(thread_id=thread, assistant_id=echo, stream=True)
        assert caught.value.body["message"] == (
            "Too many open streams: this API key already has 1 run event streams open, the "
            "most it may hold at once. Close one, or poll the run instead."
        )
        assert client.beta.threads.runs.list(thread_id=thread).data == []
        # Without a stream, runs are still welcome.
        polled = client.beta.threads.runs.create_and_poll(thread_id=thread, assistant_id=echo)
        assert polled.status == "completed"

        # Closing the stream gives its slot back (the run goes on).
        held.close()

        def streams_again() -> bool:
            try:
                stream = client.beta.threads.create_and_run(assistant_id=echo, stream=True)
            except openai.RateLimitError:
                return False
            with stream:
                events = [event.event for event in stream]
            assert events[-1] == "thread.run.completed"
            return True

        eventually(streams_again, "the closed stream's slot came back")
        # A stream that ended with its run gave its slot back too.
        assert streams_again()

        runs = client.beta.threads.runs.list(thread_id=first.data.id).data
        client.beta.threads.runs.cancel(runs[0].id, thread_id=first.data.id)
        wait_for(client, runs[0], {"cancelled"})


# --- slow clients ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def strict(upstream: ScriptedUpstream) -> Iterator[Server]:
    """Timeouts of a second, so slow clients are cut off quickly (middleware: one backend)."""
    with running_server(
        "sqlite",
        upstream_base_url=upstream.base_url,
        body_timeout_seconds="1",
        body_min_rate="1000",
        send_timeout_seconds="1",
        keep_alive_timeout_seconds="1",
        max_streams_per_key="1",
    ) as srv:
        yield srv


def _trickle(sock: socket.socket, data: bytes, interval: float, stop: threading.Event) -> None:
    for i in range(len(data)):
        if stop.wait(interval):
            return
        try:
            sock.sendall(data[i : i + 1])
        except OSError:
            return


@pytest.mark.parametrize("route", ["json", "upload"])
def test_a_body_trickled_in_is_cut_off_with_408(strict: Server, route: str) -> None:
    if route == "json":
        body = b'{"messages": [{"role": "user", "content": "' + b"v" * 5000 + b'"}]}'
        head = "POST /v1/threads HTTP/1.1\nContent-Type: application/json\n"
    else:
        body = (
            b'--x\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
            b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n'
            + b"a" * 5000
            + b"\r\n--x--\r\n"
        )
        head = "POST /v1/files HTTP/1.1\nContent-Type: multipart/form-data; boundary=x\n"
    head += f"Host: test\nAuthorization: Bearer {strict.keys['alpha']}\n"
    head += f"Content-Length: {len(body)}\n"
    stop = threading.Event()
    # A byte every 50 ms: never idle, far below the required rate.
    with raw_request(strict, head, body[:10]) as sock:
        sender = threading.Thread(target=_trickle, args=(sock, body[10:], 0.05, stop))
        sender.start()
        try:
            status, headers, payload = read_response(sock)
            assert status == 408
            assert headers["connection"] == "close"
            assert headers["x-request-id"].startswith("req_")
            error = assert_envelope(
                orjson.loads(payload), type_="invalid_request_error", code="request_timeout"
            )
            assert error["message"] == (
                "The request body was not received in time: the limit is 1s, plus 1s per "
                "1000 bytes received."
            )
            assert read_until_closed(sock) == b""  # the server hung up
        finally:
            stop.set()
            sender.join()


def test_a_long_body_at_a_fair_rate_is_not_cut_off(strict: Server) -> None:
    body = b'{"messages": [{"role": "user", "content": "' + b"v" * 8000 + b'"}]}'
    chunks = [body[i : i + 400] for i in range(0, len(body), 400)]

    def paced() -> Iterator[bytes]:
        # Two seconds, past the base second, at ~4000 bytes/s: four times the minimum rate.
        for chunk in chunks:
            time.sleep(0.1)
            yield chunk

    with keyed(strict, strict.keys["alpha"]) as http:
        response = http.post("/v1/threads", content=paced())
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "thread"


def test_an_idle_keep_alive_connection_is_closed(strict: Server) -> None:
    with raw_request(strict, "GET /healthz HTTP/1.1\nHost: test\n") as sock:
        status, headers, _ = read_response(sock)
        assert status == 200 and headers.get("connection") != "close"
        assert read_until_closed(sock) == b""


def test_a_client_that_stops_reading_a_stream_is_dropped(
    strict: Server, upstream: ScriptedUpstream
) -> None:
    key = strict.keys["beta"]
    with make_client(strict, key) as client, keyed(strict, key) as http:
        # Far more than the socket buffers hold: the server's writes block until it gives up.
        assistant, _ = scripted(client, upstream, Text(["x" * 65536] * 160))
        echo = client.beta.assistants.create(model="m").id
        body = f'{{"assistant_id": "{assistant}", "stream": true}}'.encode()
        head = (
            "POST /v1/threads/runs HTTP/1.1\nHost: test\n"
            f"Authorization: Bearer {key}\nContent-Type: application/json\n"
            f"Content-Length: {len(body)}\n"
        )

        def stream_status() -> int:
            request = http.build_request(
                "POST", "/v1/threads/runs", json={"assistant_id": echo, "stream": True}
            )
            response = http.send(request, stream=True)
            response.close()
            return response.status_code

        with raw_request(strict, head, body, rcvbuf=4096) as sock:
            assert sock.recv(15) == b"HTTP/1.1 200 OK"  # then it reads no more
            # The non-reader holds the key's only stream slot...
            assert stream_status() == 429
            # ...until its writes time out, which ends its stream and frees the slot.
            eventually(lambda: stream_status() == 200, "the stalled stream was dropped")
            assert "the client stopped reading" in strict.log()


# --- Redis: the limits hold across processes -------------------------------------------------


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None or "postgres" not in BACKENDS:
        pytest.skip("needs redis-server and the PostgreSQL backend")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="assistantd-redis-")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_limits_are_shared_by_processes_through_redis(redis_url: str) -> None:
    database = postgres_url()
    settings = {
        "database_url": database,
        "redis_url": redis_url,
        "rate_limit": "6/minute",
        "max_streams_per_key": "1",
        "run_expiry_seconds": "60",  # a stream let through by mistake ends in a minute
    }
    # API processes only: a queued run's stream stays open, which is all this needs.
    with (
        running_server("postgres", serve_args=["--no-worker"], **settings) as one,
        running_server("postgres", serve_args=["--no-worker"], **settings) as two,
    ):
        key = one.keys["alpha"]
        with keyed(one, key) as first, keyed(two, key) as second:
            assistant = first.post("/v1/assistants", json={"model": "m"}).json()["id"]
            body = {"assistant_id": assistant, "stream": True}
            with first.stream("POST", "/v1/threads/runs", json=body) as held:
                assert held.status_code == 200
                lines = held.iter_lines()  # kept: a dropped iterator closes the connection
                assert next(lines) == "event: thread.created"
                # The other process sees the stream this one holds...
                refused = second.post("/v1/threads/runs", json=body)
                assert refused.status_code == 429, refused.text
                assert "Too many open streams" in refused.json()["error"]["message"]
            # ...and sees it go when its client hangs up.
            store = redis.Redis.from_url(redis_url)
            eventually(
                lambda: sum(store.zcard(k) for k in store.keys("assistantd:streams:*")) == 0,
                "the closed stream's slot was given back in Redis",
            )
            store.close()
            with second.stream("POST", "/v1/threads/runs", json=body) as again:
                assert again.status_code == 200
            # The two processes count one window of requests: 4 are spent so far (the
            # assistant, two streams, the refused one).
            response = second.get("/v1/assistants")
            assert response.headers["x-ratelimit-remaining-requests"] == "1"
            response = first.get("/v1/assistants")
            assert response.headers["x-ratelimit-remaining-requests"] == "0"
            assert_rate_limited(first.get("/v1/assistants"), 6, "requests")
            assert_rate_limited(second.get("/v1/assistants"), 6, "requests")
