"""The interpreter that runs inside the sandbox, one process per session (a small kernel).

It runs under the sandbox's own Python environment, where assistantd is not installed, so it
uses the standard library only and is handed to the sandbox as a file. The limits are already
in force when it starts (``prlimit`` runs before it); the sandbox, not this code, is the
security boundary: user code runs in this process and may do anything this file does.

Channel: requests arrive on fd 0 and replies leave on fd 1, which the runner moves to private
descriptors at start, so that fd 0 becomes /dev/null and fds 1 and 2 both point at the output
pipe that the server reads: prints of the code and of any child process share one ordered
stream. A message is ``>II`` (JSON length, blob count), the JSON, then each blob as ``>Q``
length and bytes. After each execution the runner writes an end marker (a nonce chosen by the
server) on the output pipe before its reply, so the server knows it has all of that output.

Requests: ``{"code", "nonce", "files": [names], "output_limit"}`` with the file contents as
blobs. Replies: ``{"ready": true}`` once at start; for each request ``{"error", "dropped",
"images": n, "files": n, "omitted"}`` with the PNGs as blobs, then one ``{"name", "error"?}``
message per file with its content as a blob (so at most one file is in memory at a time).
"""

from __future__ import annotations

import ast
import contextlib
import gc
import io
import json
import linecache
import os
import shutil
import struct
import subprocess
import sys
import traceback
import types
import warnings
from typing import Any, BinaryIO

WORKSPACE = "/mnt/data"
HEADER = struct.Struct(">II")
BLOB = struct.Struct(">Q")
MAX_IMAGES = 20
MAX_FILES = 100
MAX_SCAN = 10_000


class Budget:
    """Output bytes one execution may still write through sys.stdout/sys.stderr."""

    remaining = 0
    dropped = 0


class CappedRaw(io.RawIOBase):
    """Writes to an fd until the budget is spent, then counts and drops what comes.

    Output from Python is cut here so that printing a gigabyte costs the sandbox, not the
    pipe and the server; the server caps the stream again, for output of child processes.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        keep = min(len(view), Budget.remaining)
        written = 0
        while written < keep:
            written += os.write(self._fd, view[written:keep])
        Budget.remaining -= keep
        Budget.dropped += len(view) - keep
        return len(view)


def capped_stream(fd: int) -> io.TextIOWrapper:
    # Unbuffered: each write reaches the pipe at once, in order with child processes' output.
    raw: Any = CappedRaw(fd)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", write_through=True)


def read_exact(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError
    return data


def receive(stream: BinaryIO) -> tuple[dict[str, Any], list[bytes]]:
    length, count = HEADER.unpack(read_exact(stream, HEADER.size))
    message = json.loads(read_exact(stream, length))
    blobs = [
        read_exact(stream, BLOB.unpack(read_exact(stream, BLOB.size))[0]) for _ in range(count)
    ]
    return message, blobs


def send(stream: BinaryIO, message: dict[str, Any], blobs: list[bytes]) -> None:
    payload = json.dumps(message).encode()
    stream.write(HEADER.pack(len(payload), len(blobs)) + payload)
    for blob in blobs:
        stream.write(BLOB.pack(len(blob)))
        stream.write(blob)
    stream.flush()


def run_code(code: str, namespace: dict[str, Any], name: str) -> str | None:
    """Execute like a notebook cell: statements, then show the last expression's value."""
    # Registered so that tracebacks quote the lines of the code.
    linecache.cache[name] = (len(code), None, code.splitlines(True), name)
    try:
        tree = ast.parse(code, name, "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body[-1].value)
            tree.body.pop()
        exec(compile(tree, name, "exec"), namespace)
        if last is not None:
            value = eval(compile(last, name, "eval"), namespace)
            if value is not None:
                print(repr(value))
    except BaseException as exc:  # user code may raise anything, SystemExit included
        # Drop this function's own frame: the model should see only its code.
        tb = exc.__traceback__.tb_next if exc.__traceback__ else None
        text = "".join(traceback.format_exception(type(exc), exc, tb))
        if isinstance(exc, MemoryError):
            text += "Memory limit exceeded: the sandbox's memory limit stopped this allocation.\n"
        return text
    return None


def collect_figures() -> tuple[list[bytes], str | None]:
    pyplot: Any = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return [], None
    images: list[bytes] = []
    numbers = pyplot.get_fignums()
    try:
        for number in numbers[:MAX_IMAGES]:
            buffer = io.BytesIO()
            pyplot.figure(number).savefig(buffer, format="png")
            images.append(buffer.getvalue())
    except Exception as exc:
        return images, f"A figure could not be saved as PNG: {exc!r}"
    finally:
        pyplot.close("all")
    if len(numbers) > MAX_IMAGES:
        return images, f"Only the first {MAX_IMAGES} of {len(numbers)} figures were returned."
    return images, None


def snapshot() -> dict[str, tuple[int, int, int]]:
    """Regular files under the workspace (no symlinks), with what shows that one changed."""
    seen: dict[str, tuple[int, int, int]] = {}
    for root, dirs, names in os.walk(WORKSPACE):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
        for name in names:
            path = os.path.join(root, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if os.path.isfile(path) and not os.path.islink(path):
                seen[os.path.relpath(path, WORKSPACE)] = (st.st_size, st.st_mtime_ns, st.st_ino)
            if len(seen) >= MAX_SCAN:
                return seen
    return seen


def reap_orphans() -> None:
    """Reap exited children that nothing in the code will wait for.

    A child forked by the code and never waited for stays a zombie, holding one of the session's
    max_processes slots (a fork bomb leaves the whole quota so). Children that a live
    subprocess.Popen or multiprocessing.Process still tracks are left to it, so their exit
    status is not lost.
    """
    try:
        if os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            return  # the common case: no exited child, nothing to scan
    except ChildProcessError:
        return  # no children at all
    tracked = {p.pid for p in gc.get_objects() if isinstance(p, subprocess.Popen)}
    multiprocessing: Any = sys.modules.get("multiprocessing.process")
    if multiprocessing is not None:
        tracked |= {p.pid for p in multiprocessing._children}
    me = str(os.getpid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in tracked:
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # pid (comm) state ppid ...: comm may hold spaces, so split after its ")".
                state, ppid = f.read().rpartition(")")[2].split()[:2]
        except OSError:
            continue
        if state == "Z" and ppid == me:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(int(entry), os.WNOHANG)


def changed_files(before: dict[str, tuple[int, int, int]]) -> tuple[list[str], int]:
    changed = [name for name, state in sorted(snapshot().items()) if before.get(name) != state]
    return changed[:MAX_FILES], max(0, len(changed) - MAX_FILES)


def send_file(replies: BinaryIO, name: str) -> None:
    """One reply message per file, read only now: at most one file is in memory at a time."""
    try:
        with open(os.path.join(WORKSPACE, name), "rb") as f:
            data = f.read()
    except (OSError, MemoryError) as exc:
        send(replies, {"name": name, "error": f"{type(exc).__name__}: {exc}"}, [])
        return
    send(replies, {"name": name}, [data])


def place_inputs(names: list[str], blobs: list[bytes]) -> str | None:
    for name, data in zip(names, blobs, strict=True):
        # The server checks names too; this keeps a bad one inside the workspace regardless.
        if "/" in name or name in {"", ".", ".."} or "\0" in name:
            return f"Invalid input file name: {name!r}"
        path = os.path.join(WORKSPACE, name)
        try:
            if os.path.islink(path):
                os.unlink(path)
            with open(path, "wb") as f:
                f.write(data)
        except OSError as exc:
            return f"Could not place input file {name!r} in {WORKSPACE}: {exc}"
    return None


class Kernel:
    """The session's state and the loop that serves the server's requests."""

    def __init__(self) -> None:
        self.requests = os.fdopen(os.dup(0), "rb")
        self.replies = os.fdopen(os.dup(1), "wb")
        # The end-of-output marker goes to a private copy of the output pipe, so code that
        # redirects fd 2 cannot keep the server waiting for it.
        self.marker_fd = os.dup(2)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(2, 1)
        sys.stdout = capped_stream(1)
        sys.stderr = capped_stream(2)
        sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
        # The code runs in a fresh __main__ module (as in a notebook), so that what it defines
        # pickles by reference (multiprocessing) and this file's names stay out of its way.
        main = types.ModuleType("__main__")
        sys.modules["__main__"] = main
        self.namespace = main.__dict__
        self.cells = 0
        self.pid = os.getpid()

    def serve(self) -> None:
        send(self.replies, {"ready": True}, [])
        while True:
            try:
                request, blobs = receive(self.requests)
            except EOFError:
                return
            self.execute(request, blobs)

    def execute(self, request: dict[str, Any], blobs: list[bytes]) -> None:
        self.cells += 1
        reap_orphans()
        error = place_inputs(request["files"], blobs)
        before = snapshot()
        Budget.remaining, Budget.dropped = int(request["output_limit"]), 0
        if error is None:
            error = run_code(request["code"], self.namespace, f"<cell {self.cells}>")
        if os.getpid() != self.pid:
            # A child that the code forked came back here (a fork bomb's children, or a fork
            # without exec): it must not answer on the parent's channel.
            os._exit(0 if error is None else 1)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # the code may have replaced or closed them
                stream.flush()
        reap_orphans()
        images, figure_error = collect_figures()
        names, omitted = changed_files(before)
        os.write(self.marker_fd, request["nonce"].encode())
        reply = {
            "error": error or figure_error,
            "dropped": Budget.dropped,
            "images": len(images),
            "files": len(names),
            "omitted": omitted,
        }
        send(self.replies, reply, images)
        for name in names:
            send_file(self.replies, name)


def main() -> None:
    sys.path.insert(0, WORKSPACE)  # like a notebook: modules uploaded beside the data import
    # Agg cannot show windows; plt.show() is common in notebook code and harmless here.
    warnings.filterwarnings("ignore", message=".*non-interactive.*cannot be shown")
    # matplotlib's font list, built once by scripts/sandbox-env, saves each session a rebuild.
    config = os.environ.get("MPLCONFIGDIR", "")
    prebuilt = os.path.join(sys.prefix, "mplconfig")
    if config and os.path.isdir(prebuilt) and not os.path.exists(config):
        shutil.copytree(prebuilt, config)
    Kernel().serve()


if __name__ == "__main__":
    main()
