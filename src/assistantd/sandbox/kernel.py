"""One sandboxed interpreter process and the server's side of its channel (see runner.py).

Nothing that comes out of the sandbox is trusted: replies are size-checked before they are
read, any malformed reply ends the interpreter, and output is capped here whatever the runner
did. Every wait is bounded by the execution's wall time, after which the process is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import signal
import struct
from collections.abc import Sequence
from typing import Any

from assistantd.sandbox.base import Execution, InputFile, Limits, OutputFile, SandboxUnavailable

HEADER = struct.Struct(">II")
BLOB = struct.Struct(">Q")
MAX_JSON = 1024 * 1024
MAX_IMAGES = 20  # the runner's caps too
MAX_FILES = 100
STARTUP_TEXT = 64 * 1024  # what bwrap or Python said before the runner was ready
LOST = "The session was restarted: its variables and files from earlier executions are lost."


class ChannelError(Exception):
    """The runner sent something that is not a valid reply."""


class OutputCapture:
    """Collects one execution's output from the pipe, up to a limit, until its end marker."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.dropped = 0
        self.startup = bytearray()
        self._limit = 0
        self._marker = b""
        self._tail = b""
        self._active = False
        self.ended = asyncio.Event()

    def begin(self, marker: bytes, limit: int) -> None:
        self.buffer.clear()
        self.dropped = 0
        self._limit, self._marker, self._tail, self._active = limit, marker, b"", True
        self.ended.clear()

    def feed(self, chunk: bytes) -> None:
        if not self._active:
            # Between executions: background processes' output has no execution to go to.
            room = STARTUP_TEXT - len(self.startup)
            self.startup += chunk[: max(room, 0)]
            return
        data = self._tail + chunk
        end = data.find(self._marker)
        if end >= 0:
            self._keep(data[:end])
            self._active = False
            self.ended.set()
            return
        # Hold back what could be the start of a marker split across reads.
        cut = max(len(data) - len(self._marker) + 1, 0)
        self._keep(data[:cut])
        self._tail = data[cut:]

    def _keep(self, data: bytes) -> None:
        room = max(self._limit - len(self.buffer), 0)
        self.buffer += data[:room]
        self.dropped += max(len(data) - room, 0)

    def finish(self) -> None:
        """End the execution's output without its marker (the process died or timed out)."""
        if self._active:
            self._keep(self._tail)
            self._active = False

    def text(self, also_dropped: int = 0) -> str:
        logs = self.buffer.decode("utf-8", "replace")
        dropped = self.dropped + also_dropped
        if dropped:
            logs += (
                f"\n[output truncated: an execution keeps {self._limit} bytes of output;"
                f" {dropped} more bytes were dropped]"
            )
        return logs


def exit_cause(status: int | None, limits: Limits) -> str:
    """What a runner's exit status means (bwrap exits with 128+N when its child got signal N)."""
    if status is None:
        return "The interpreter stopped answering"
    if status < 0:
        return f"The interpreter was stopped ({signal.Signals(-status).name})"
    if status > 128 and status - 128 in signal.valid_signals():
        number = status - 128
        if number == signal.SIGXCPU:
            return f"CPU time limit exceeded: the interpreter used its {limits.cpu_seconds} s"
        return f"The interpreter was killed ({signal.Signals(number).name})"
    return f"The interpreter exited with status {status}"


class Kernel:
    """A running sandbox: the bwrap process whose command is the runner."""

    def __init__(self, process: asyncio.subprocess.Process, limits: Limits) -> None:
        self.process = process
        self.limits = limits
        self.output = OutputCapture()
        assert process.stderr is not None and process.stdout is not None
        self._stdout = process.stdout
        self._reader = asyncio.create_task(self._read_output(process.stderr))
        self._killed = False

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return not self._killed and self.process.returncode is None

    @classmethod
    async def start(
        cls, argv: Sequence[str], limits: Limits, *, wait: float, **spawn: Any
    ) -> Kernel:
        """Start a sandbox and wait for its runner to say it is ready."""
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={"PATH": "/usr/bin:/bin"},  # the server's environment stays out, even of bwrap
            start_new_session=True,
            **spawn,
        )
        kernel = cls(process, limits)
        try:
            async with asyncio.timeout(wait):
                ready, _ = await kernel._receive()
            if ready != {"ready": True}:
                raise ChannelError("no ready message")
        except (TimeoutError, ChannelError, asyncio.IncompleteReadError, ConnectionError) as exc:
            await kernel.kill()
            said = kernel.output.startup.decode("utf-8", "replace").strip()
            raise SandboxUnavailable(
                f"the sandbox did not start ({exit_cause(process.returncode, limits)}): "
                f"{said or type(exc).__name__}"
            ) from exc
        return kernel

    async def run(self, code: str, files: list[InputFile], wall_seconds: float) -> Execution:
        """Run code; on any failure the process is killed and the error says so."""
        nonce = f"\n\x00assistantd-end-{secrets.token_hex(16)}\x00"
        self.output.begin(nonce.encode(), self.limits.max_output_bytes)
        request = {
            "code": code,
            "nonce": nonce,
            "files": [f.name for f in files],
            "output_limit": self.limits.max_output_bytes,
        }
        try:
            async with asyncio.timeout(wall_seconds):
                execution = await self._exchange(request, [f.data for f in files])
        except TimeoutError:
            await self.kill()
            self.output.finish()
            return Execution(
                logs=self.output.text(),
                error=f"Execution timed out after {wall_seconds:g} s. {LOST}",
            )
        except ChannelError as exc:
            await self.kill()
            self.output.finish()
            return Execution(
                logs=self.output.text(), error=f"The interpreter's channel broke ({exc}). {LOST}"
            )
        except (asyncio.IncompleteReadError, ConnectionError):
            status = await self._ended()
            self.output.finish()
            return Execution(
                logs=self.output.text(), error=f"{exit_cause(status, self.limits)}. {LOST}"
            )
        return execution

    async def _exchange(self, request: dict[str, Any], blobs: list[bytes]) -> Execution:
        await self._send(request, blobs)
        reply, images = await self._receive(max_blobs=MAX_IMAGES)
        try:
            error, dropped, count = reply["error"], reply["dropped"], reply["files"]
            omitted, n_images = reply["omitted"], reply["images"]
            valid = (
                (error is None or isinstance(error, str))
                and all(isinstance(n, int) for n in (dropped, count, omitted, n_images))
                and n_images == len(images)
                and 0 <= count <= MAX_FILES
            )
        except (KeyError, TypeError) as exc:
            raise ChannelError("malformed reply") from exc
        if not valid:
            raise ChannelError("malformed reply")
        files: list[OutputFile] = []
        failed: list[str] = []
        budget = self.limits.workspace_bytes
        for _ in range(count):
            message, data = await self._receive(max_blobs=1)
            name = message.get("name")
            if not isinstance(name, str):
                raise ChannelError("malformed file reply")
            budget -= sum(len(d) for d in data)
            if budget < 0:
                raise ChannelError("more file data than the workspace holds")
            if data and "error" not in message:
                files.append(OutputFile(name, data[0]))
            else:
                failed.append(name)
        if omitted:
            failed.append(f"{omitted} more (an execution returns at most {MAX_FILES} files)")
        if failed:
            note = f"These files in /mnt/data could not be returned: {', '.join(failed)}"
            error = f"{error}\n{note}" if error else note
        # The reply came on another pipe than the output: wait until the output has caught up.
        await self.output.ended.wait()
        return Execution(
            logs=self.output.text(also_dropped=dropped), error=error, images=images, files=files
        )

    async def _send(self, message: dict[str, Any], blobs: list[bytes]) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        payload = json.dumps(message).encode()
        stdin.write(HEADER.pack(len(payload), len(blobs)) + payload)
        for blob in blobs:
            stdin.write(BLOB.pack(len(blob)))
            stdin.write(blob)
            await stdin.drain()
        await stdin.drain()

    async def _receive(self, max_blobs: int = 0) -> tuple[dict[str, Any], list[bytes]]:
        length, count = HEADER.unpack(await self._stdout.readexactly(HEADER.size))
        if length > MAX_JSON or count > max_blobs:
            raise ChannelError("oversized reply")
        try:
            message = json.loads(await self._stdout.readexactly(length))
        except ValueError as exc:
            raise ChannelError("reply is not JSON") from exc
        if not isinstance(message, dict):
            raise ChannelError("reply is not an object")
        blobs = []
        for _ in range(count):
            (size,) = BLOB.unpack(await self._stdout.readexactly(BLOB.size))
            if size > self.limits.max_file_bytes:
                raise ChannelError("oversized file or image")
            blobs.append(await self._stdout.readexactly(size))
        return message, blobs

    def abandon(self) -> None:
        """Kill the sandbox now, without waiting (for a caller that is being cancelled)."""
        self._killed = True
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    async def _read_output(self, stream: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await stream.read(256 * 1024):
                self.output.feed(chunk)

    async def _ended(self) -> int | None:
        """The exit status once the process has gone (None if it lingered and was killed), with
        all its output read."""
        status: int | None = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                status = await self.process.wait()
        await self.kill()
        return status

    async def kill(self) -> None:
        """Stop the sandbox and everything in it, and wait until it has gone.

        Killing bwrap is enough: its child, pid 1 of the sandbox's pid namespace, dies with it
        (--die-with-parent), and the kernel then kills every process of that namespace.
        """
        self.abandon()
        await self.process.wait()
        try:
            # The pipe closes once the last process in the sandbox is gone.
            await asyncio.wait_for(asyncio.shield(self._reader), 5)
        except TimeoutError:
            self._reader.cancel()
        if self.process.stdin is not None:
            self.process.stdin.close()
