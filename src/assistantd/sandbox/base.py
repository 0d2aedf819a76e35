"""The code_interpreter sandbox: what a backend promises, whatever runs the code.

A *session* is one stateful Python interpreter, like a notebook kernel: variables, imports and
files persist from one :meth:`Sandbox.execute` to the next for the same ``session_id`` (the
code_interpreter tool uses one session per thread), and never leak between sessions. A session
starts on its first execution and ends on :meth:`Sandbox.close_session`, after
:attr:`Limits.idle_seconds` without use, or when its interpreter dies (a timeout, a CPU limit,
a crash); the next execution then starts a fresh one and says so in its logs.

Inside a session the code sees a private, writable ``/mnt/data`` (the working directory): the
input files of each execution appear there under their names, and the files that the execution
creates or changes there come back as :class:`OutputFile`. Everything a run of user code can do
wrong (raise, loop forever, exhaust memory, fork without end, print gigabytes, try to get out)
ends as an :class:`Execution` whose ``error`` says what happened: ``execute`` raises only
:class:`SandboxUnavailable`, when no sandbox can be started at all on this host.

Backends: ``bwrap.BwrapSandbox`` (bubblewrap on this machine). A remote pool that serves many
API nodes can implement the same protocol: every argument and result is plain data, files
travel as bytes, and nothing assumes the sandbox shares a filesystem with the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

MiB = 1024 * 1024


class SandboxUnavailable(Exception):
    """No sandbox can run on this host; the message says why (shown to operators and clients)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What one session may use. Every limit is enforced by the operating system.

    The defaults suit a data-analysis session on a node with a few GiB per session; the
    benchmark (``bench/sandbox.py``) reports how many sessions a node holds at these values.
    """

    cpu_seconds: int = 600
    """CPU time each process of a session may use over its life (RLIMIT_CPU). The wall limit
    stops a runaway execution first; this one bounds processes left running in the background
    and how much CPU one interpreter takes from the node before it is recycled."""

    wall_seconds: float = 60.0
    """Wall-clock time of one execution, unless ``execute`` is given another ``timeout``. On
    expiry the session's interpreter is killed and its state is lost."""

    memory_bytes: int = 1024 * MiB
    """Address space of each process of the session (RLIMIT_AS): an allocation beyond it fails
    with ``MemoryError`` inside the code and the session survives."""

    max_processes: int = 32
    """Processes and threads the session may have at once (RLIMIT_NPROC, counted per session)."""

    max_output_bytes: int = 1 * MiB
    """Bytes of stdout+stderr kept per execution; the rest is dropped and ``logs`` says so."""

    max_file_bytes: int = 100 * MiB
    """Largest file the code may write (RLIMIT_FSIZE), and largest input or output file."""

    workspace_bytes: int = 512 * MiB
    """Size of ``/mnt/data`` (a tmpfs: the node's memory, not its disk, holds it)."""

    tmp_bytes: int = 128 * MiB
    """Size of each of ``/tmp`` and ``/dev/shm`` (also tmpfs)."""

    idle_seconds: float = 1800.0
    """A session unused for this long is ended and its memory returned."""

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be positive")


@dataclass(frozen=True, slots=True)
class InputFile:
    """A file to place at ``/mnt/data/<name>`` before the code runs.

    ``name`` is a plain file name (no ``/``, not ``.`` or ``..``), as the file was uploaded.
    """

    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class OutputFile:
    """A file that an execution created or changed under ``/mnt/data``.

    ``name`` is its path relative to ``/mnt/data`` (``out.csv``, ``plots/a.png``).
    """

    name: str
    data: bytes


@dataclass(slots=True)
class Execution:
    """The result of running one piece of code in a session."""

    logs: str = ""
    """stdout and stderr, interleaved as written (also by child processes), then the value of
    a final expression as in a notebook. At most ``Limits.max_output_bytes`` of output is kept,
    followed by a ``[output truncated ...]`` note. A bracketed note from the sandbox may come
    first, e.g. that the session was restarted and earlier state is gone."""

    error: str | None = None
    """None on success; else what went wrong, for the model to read: the traceback of an
    exception raised by the code, or a limit that stopped it ("Execution timed out after 60 s
    ...", "CPU time limit ...", "Memory limit ..."), saying whether the session's state was
    lost."""

    images: list[bytes] = field(default_factory=list)
    """One PNG for each matplotlib figure left open by the code (the figures are then closed)."""

    files: list[OutputFile] = field(default_factory=list)
    """Files created or changed under ``/mnt/data`` by this execution; unchanged inputs are not
    repeated."""


class Sandbox(Protocol):
    """Runs code in isolated, stateful sessions. Safe to share across tasks of one event loop."""

    @property
    def limits(self) -> Limits:
        """The limits every session runs under."""
        ...

    def available(self) -> str | None:
        """None if sessions can run on this host, else the reason they cannot.

        Backends check for real (e.g. by starting a throw-away sandbox), cache the answer and
        may block briefly on the first call: call it at startup, and disable the
        code_interpreter tool with this reason rather than run code without isolation.
        """
        ...

    async def execute(
        self,
        session_id: str,
        code: str,
        *,
        files: list[InputFile] | None = None,
        # Not the caller's asyncio.timeout: the sandbox enforces it and kills the interpreter.
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Execution:
        """Run ``code`` in the session ``session_id``, starting the session if needed.

        ``files`` are placed in ``/mnt/data`` first; a file the session already received with
        the same name and content is not copied again (so callers may pass the thread's whole
        file list every time) and is not overwritten if the code has changed it since.
        ``timeout`` overrides ``Limits.wall_seconds`` for this execution. Executions of one
        session run one at a time, in call order; different sessions run concurrently.

        Raises :class:`SandboxUnavailable` if no sandbox can start on this host (the same
        reason as :meth:`available`); everything else is reported in the returned
        :class:`Execution`.
        """
        ...

    async def close_session(self, session_id: str) -> None:
        """End the session: stop its processes, discard its state and files. No-op if absent."""
        ...

    async def close(self) -> None:
        """End every session and stop background work; the sandbox is not used afterwards."""
        ...
