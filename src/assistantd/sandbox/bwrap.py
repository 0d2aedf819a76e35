"""The bubblewrap backend: one jailed Python interpreter per session, on this host.

Isolation comes from Debian's ``bwrap`` (Linux namespaces, as Flatpak uses it) and a seccomp
filter (syscalls.py), limits from the kernel's rlimits set by ``prlimit`` inside the jail and
from sized tmpfs; none of it relies on Python. Each session is a ``bwrap`` process whose
command is ``runner.py`` (command.py has every flag and why it is there); this module keeps
the sessions: starting, reusing, reaping and ending them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistantd.sandbox.base import Execution, InputFile, Limits, Sandbox, SandboxUnavailable
from assistantd.sandbox.command import ENV_INSIDE, NOBODY, bwrap_argv
from assistantd.sandbox.kernel import Kernel

RUNNER = Path(__file__).with_name("runner.py")
START_TIMEOUT = 30.0
REMEMBERED_ENDINGS = 10_000


_SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"


def default_env() -> Path:
    """The sandbox's Python environment: $ASSISTANTD_SANDBOX_PYTHON_ENV, else ./.venv-sandbox
    (what scripts/sandbox-env creates)."""
    configured = os.environ.get("ASSISTANTD_SANDBOX_PYTHON_ENV")
    return Path(configured) if configured else Path.cwd() / ".venv-sandbox"


@dataclass
class _Session:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    kernel: Kernel | None = None
    last_used: float = field(default_factory=time.monotonic)
    placed: dict[str, str] = field(default_factory=dict)  # input name -> sha256, this kernel
    notice: str | None = None  # said at the start of the next execution's logs
    users: int = 0  # executions running or waiting for the lock
    ended: bool = False


class BwrapSandbox:
    """Sessions in bubblewrap jails on this host. See ``base.Sandbox`` for the contract."""

    def __init__(
        self,
        python_env: Path | None = None,
        *,
        limits: Limits | None = None,
        bwrap: str = "bwrap",
        uid: int | None = None,
        max_sessions: int = 64,
    ) -> None:
        """``python_env``: a venv made by scripts/sandbox-env (default: :func:`default_env`).
        ``uid``: the host uid to run sandboxes as; by default nobody (65534) when the server
        runs as root, else the server's own uid. ``max_sessions``: sessions kept at once; a new
        one ends the least recently used idle session."""
        # Resolved here, as the server: bwrap (maybe as nobody) cannot follow a link through
        # directories only the server may enter.
        self._env = (python_env or default_env()).resolve()
        self._limits = limits or Limits()
        self._bwrap = bwrap
        self._uid = uid if uid is not None else (NOBODY if os.geteuid() == 0 else None)
        self._max_sessions = max_sessions
        self._sessions: OrderedDict[str, _Session] = OrderedDict()  # least recently used first
        self._endings: OrderedDict[str, str] = OrderedDict()  # ended session -> why, for a note
        self._reaper: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()  # kills of evicted sessions, in flight
        self._unavailable: str | None = None
        self._checked = False

    @property
    def limits(self) -> Limits:
        return self._limits

    def argv(self, runner_fd: int, seccomp_fd: int) -> list[str]:
        """The command of one sandbox (see command.py)."""
        return bwrap_argv(
            self._bwrap, self._env, self._limits, runner_fd=runner_fd, seccomp_fd=seccomp_fd
        )

    @contextlib.contextmanager
    def _inputs(self) -> Iterator[tuple[list[str], dict[str, Any]]]:
        """The command and spawn options of one sandbox, with the files it reads kept open."""
        with RUNNER.open("rb") as runner, (self._env / "seccomp.bpf").open("rb") as seccomp:
            fds = (runner.fileno(), seccomp.fileno())
            yield self._drop_privileges() + self.argv(*fds), {"pass_fds": fds}

    def _drop_privileges(self) -> list[str]:
        """A ``setpriv`` prefix that starts bwrap as the sandbox uid when we are someone else.

        Dropping root on the host matters: the kernel never applies RLIMIT_NPROC to uid 0, and
        a process that got out of every namespace would still be nobody. ``setpriv`` (from
        util-linux) rather than the ``user=`` spawn options: uvloop, which uvicorn uses, does
        not implement those.
        """
        if self._uid is None or self._uid == os.geteuid():
            return []
        uid = str(self._uid)
        return [_SETPRIV, "--reuid", uid, "--regid", uid, "--clear-groups", "--"]

    def available(self) -> str | None:
        if not self._checked:
            self._unavailable = self._check()
            self._checked = True
        return self._unavailable

    def _check(self) -> str | None:
        if not sys.platform.startswith("linux"):
            return "code_interpreter needs Linux namespaces (bubblewrap); this host is not Linux"
        if shutil.which(self._bwrap) is None:
            return (
                "bubblewrap (bwrap) is not installed; run scripts/sandbox-env (Debian: bubblewrap)"
            )
        if not (self._env / "bin" / "python").exists():
            return f"the sandbox Python environment {self._env} is missing; run scripts/sandbox-env"
        if not (self._env / "seccomp.bpf").exists():
            return (
                f"the sandbox's seccomp filter is missing from {self._env}; run scripts/sandbox-env"
            )
        if not os.access("/usr/bin/prlimit", os.X_OK):
            return "prlimit (util-linux) is missing"
        if (self._uid if self._uid is not None else os.geteuid()) == 0:
            return "the sandbox must not run as host uid 0: RLIMIT_NPROC does not bind root"
        # The real test: start a throw-away sandbox with exactly the flags sessions use.
        with self._inputs() as (argv, options):
            argv = [*argv[:-1], "-c", "import sys; print(sys.prefix)"]
            try:
                done = subprocess.run(
                    argv,
                    capture_output=True,
                    timeout=START_TIMEOUT,
                    env={"PATH": "/usr/bin:/bin"},
                    check=False,
                    **options,
                )
            except (OSError, subprocess.SubprocessError) as exc:
                return f"bubblewrap could not start a sandbox here: {exc}"
        if done.returncode != 0 or done.stdout.strip() != ENV_INSIDE.encode():
            said = (done.stderr or done.stdout).decode("utf-8", "replace").strip()
            return f"bubblewrap could not start a sandbox here: {said or done.returncode}"
        return None

    async def execute(
        self,
        session_id: str,
        code: str,
        *,
        files: list[InputFile] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - enforced here, see base.Sandbox
    ) -> Execution:
        reason = self.available()
        if reason is not None:
            raise SandboxUnavailable(reason)
        problem = self._check_inputs(files or [])
        if problem is not None:
            return Execution(error=problem)
        self._start_reaper()
        while True:
            session = self._sessions.get(session_id)
            if session is None:
                if not self._make_room():
                    busy = f"All {self._max_sessions} sandbox sessions are busy; try again later."
                    return Execution(error=busy)
                session = _Session(notice=self._endings.pop(session_id, None))
                self._sessions[session_id] = session
            self._sessions.move_to_end(session_id)
            # Counted before waiting for the lock, so that the reaper and eviction never end a
            # session that someone is about to use.
            session.users += 1
            try:
                async with session.lock:
                    if not session.ended:  # else ended while we waited: start a new one
                        return await self._run(session, code, files or [], timeout)
            finally:
                session.users -= 1

    async def _run(
        self, session: _Session, code: str, files: list[InputFile], wall: float | None
    ) -> Execution:
        if session.kernel is None or not session.kernel.alive:
            session.kernel = await self._start_kernel()
            session.placed = {}
        kernel = session.kernel
        send = []
        for f in files:
            digest = hashlib.sha256(f.data).hexdigest()
            if session.placed.get(f.name) != digest:
                send.append(f)
                session.placed[f.name] = digest
        try:
            result = await kernel.run(code, send, wall or self._limits.wall_seconds)
        except asyncio.CancelledError:
            # The code is still running and its reply would answer the next request: the
            # interpreter has to go (killed now, reaped in the background).
            kernel.abandon()
            self._track(asyncio.create_task(kernel.kill()))
            session.kernel = None
            session.notice = (
                "This is a new session: the previous one was stopped when an execution "
                "was cancelled. Variables and files from earlier executions are gone."
            )
            raise
        session.last_used = time.monotonic()
        if session.notice:
            result.logs = f"[{session.notice}]\n{result.logs}"
            session.notice = None
        if not kernel.alive:
            session.kernel = None
            session.notice = (
                "This is a new session: the previous one ended after an error "
                "(see the previous execution). Variables and files from earlier "
                "executions are gone."
            )
        return result

    async def _start_kernel(self) -> Kernel:
        with self._inputs() as (argv, options):
            return await Kernel.start(argv, self._limits, wait=START_TIMEOUT, **options)

    def _check_inputs(self, files: list[InputFile]) -> str | None:
        total = 0
        for f in files:
            if "/" in f.name or "\0" in f.name or f.name in {"", ".", ".."}:
                return f"Invalid file name for /mnt/data: {f.name!r}"
            if len(f.data) > self._limits.max_file_bytes:
                return (
                    f"{f.name} is larger than the sandbox's file limit"
                    f" ({self._limits.max_file_bytes} bytes)"
                )
            total += len(f.data)
        if total > self._limits.workspace_bytes:
            return f"The input files do not fit in /mnt/data ({self._limits.workspace_bytes} bytes)"
        return None

    def _make_room(self) -> bool:
        """Keep under max_sessions by ending the least recently used idle session."""
        if len(self._sessions) < self._max_sessions:
            return True
        for sid, session in self._sessions.items():
            if session.users == 0:
                self._end(sid, "was ended to make room for other sessions")
                return True
        return False

    def _end(self, session_id: str, why: str) -> None:
        session = self._sessions.pop(session_id)
        session.ended = True
        self._endings[session_id] = (
            f"This is a new session: the previous one {why}. "
            "Variables and files from earlier executions are gone."
        )
        while len(self._endings) > REMEMBERED_ENDINGS:
            self._endings.popitem(last=False)
        if session.kernel is not None:
            self._track(asyncio.create_task(session.kernel.kill()))

    def _track(self, task: asyncio.Task[None]) -> None:
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap())

    async def _reap(self) -> None:
        idle = self._limits.idle_seconds
        while True:
            await asyncio.sleep(min(max(idle / 4, 0.05), 30))
            deadline = time.monotonic() - idle
            for sid, session in list(self._sessions.items()):
                if session.last_used < deadline and session.users == 0:
                    self._end(sid, f"was ended after {idle:g} s without use")

    def session_pids(self) -> dict[str, int]:
        """The host pid of each live session's bwrap process (for measurements)."""
        return {
            sid: s.kernel.pid
            for sid, s in self._sessions.items()
            if s.kernel is not None and s.kernel.alive
        }

    async def close_session(self, session_id: str) -> None:
        session = self._sessions.pop(session_id, None)
        self._endings.pop(session_id, None)
        if session is not None:
            session.ended = True
            if session.kernel is not None:
                await session.kernel.kill()

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        sessions, self._sessions = list(self._sessions.values()), OrderedDict()
        for session in sessions:
            session.ended = True
        await asyncio.gather(*(s.kernel.kill() for s in sessions if s.kernel is not None))
        await asyncio.gather(*self._closing)


def _is_a_sandbox(box: BwrapSandbox) -> Sandbox:
    return box  # mypy checks here that BwrapSandbox implements the protocol
