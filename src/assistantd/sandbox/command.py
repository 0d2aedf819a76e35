"""The bwrap command line of one sandbox: every flag, and why it is there."""

from __future__ import annotations

import os
from pathlib import Path

from assistantd.sandbox.base import Limits

ENV_INSIDE = "/opt/python"
RUNNER_INSIDE = "/opt/assistantd/runner.py"
NOBODY = 65534  # uid and gid inside; also the host uid when the server is root


def bwrap_argv(
    bwrap: str, env: Path, limits: Limits, *, runner_fd: int, seccomp_fd: int
) -> list[str]:
    """The command of one sandbox, reading the runner's source and the seccomp filter
    (see syscalls.py) from these descriptors."""
    lim = limits
    args = [
        bwrap,
        # New user, mount, pid, network, ipc, uts and cgroup namespaces. The user namespace
        # is explicit because the next two flags need it: inside, the code is uid 65534 with
        # no capabilities, and it cannot make namespaces of its own (less kernel surface,
        # no way to win capabilities back).
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--uid",
        str(NOBODY),
        "--gid",
        str(NOBODY),
        # Applied last, just before the command starts; inherited by all it starts.
        "--seccomp",
        str(seccomp_fd),
        # Everything in the sandbox dies with bwrap, and bwrap with the server.
        "--die-with-parent",
        # A new terminal session: no TIOCSTI keystroke injection into a terminal.
        "--new-session",
        "--hostname",
        "sandbox",
        # A read-only view of only what Python needs: the OS's /usr, the sandbox venv and
        # the runner. No /etc (bar the loader's cache), /home, /root, /var, /work, /sys.
        "--ro-bind",
        "/usr",
        "/usr",
        *_usr_links(),
        "--ro-bind-try",
        "/etc/ld.so.cache",
        "/etc/ld.so.cache",
        *_env_binds(env),
        "--ro-bind-data",
        str(runner_fd),
        RUNNER_INSIDE,
        # Its own /proc (the pid namespace's: no host process is there) and a /dev with
        # only null, zero, full, random, urandom, tty and a pty multiplexer.
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        # The only writable places: sized tmpfs, so no session can fill the host's disk or
        # take more than these sizes of memory.
        "--size",
        str(lim.tmp_bytes),
        "--tmpfs",
        "/dev/shm",
        "--size",
        str(lim.tmp_bytes),
        "--tmpfs",
        "/tmp",
        "--size",
        str(lim.workspace_bytes),
        "--tmpfs",
        "/mnt/data",
        # bwrap builds / and /dev as unbounded tmpfs: make both read-only once populated.
        "--remount-ro",
        "/dev",
        "--remount-ro",
        "/",
        "--chdir",
        "/mnt/data",
        "--clearenv",
        *_setenv(
            PATH=f"{ENV_INSIDE}/bin:/usr/bin:/bin",
            HOME="/tmp",
            TMPDIR="/tmp",
            LANG="C.UTF-8",
            MPLBACKEND="Agg",
            MPLCONFIGDIR="/tmp/matplotlib",
            # One thread per math library: threads count against max_processes and reserve
            # address space, and one session should not take every core of the node.
            OPENBLAS_NUM_THREADS="1",
            OMP_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
            # glibc reserves 64 MiB of address space per malloc arena (one per thread).
            MALLOC_ARENA_MAX="2",
        ),
        "--",
        # Limits are set inside the new user namespace, so that RLIMIT_NPROC counts this
        # session's processes only (the kernel counts per user namespace and uid), and before
        # any code runs; without CAP_SYS_RESOURCE nothing inside can raise them again.
        "/usr/bin/prlimit",
        f"--as={lim.memory_bytes}",
        f"--cpu={lim.cpu_seconds}:{lim.cpu_seconds + 1}",  # SIGXCPU first, then SIGKILL
        f"--nproc={lim.max_processes}",
        f"--fsize={lim.max_file_bytes}",
        "--core=0",
        "--nofile=1024",
        "--",
        f"{ENV_INSIDE}/bin/python",
        "-I",  # no PYTHON* variables, no user site, no script directory on sys.path
        "-B",  # no __pycache__ files appearing in /mnt/data as outputs
        "-u",
        RUNNER_INSIDE,
    ]
    return args


def _usr_links() -> list[str]:
    # Merged-/usr systems (Debian 12) have /bin -> usr/bin etc.; older ones real dirs.
    args: list[str] = []
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    return args


def _env_binds(env: Path) -> list[str]:
    args = ["--ro-bind", str(env), ENV_INSIDE]
    # A venv runs on its base interpreter: mount it too when it is not the OS's in /usr.
    home = _venv_home(env)
    if home is not None:
        prefix = home.parent
        if prefix != Path("/usr") and Path("/usr") not in prefix.parents:
            args += ["--ro-bind", str(prefix), str(prefix)]
    return args


def _setenv(**variables: str) -> list[str]:
    return [arg for name, value in variables.items() for arg in ("--setenv", name, value)]


def _venv_home(env: Path) -> Path | None:
    """The directory of a venv's base interpreter, from its pyvenv.cfg."""
    try:
        lines = (env / "pyvenv.cfg").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "home":
            return Path(value.strip())
    return None
