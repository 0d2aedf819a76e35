"""The bubblewrap sandbox, for real: acceptance of the code_interpreter sessions, and an escape
suite in which sandboxed code tries to reach the server (a listening socket, a database file
and environment variables of this test process) and the host, and to exhaust its limits.

Each escape must end as a contained error, leave the host healthy and the session usable (or
restarted, with a note). Tests skip only where ``available()`` says the isolation cannot work on
this host; the reason is printed.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from assistantd.sandbox import BwrapSandbox, Execution, InputFile, Limits

REPO = Path(__file__).resolve().parents[2]
ENV = Path(os.environ.get("ASSISTANTD_SANDBOX_PYTHON_ENV", REPO / ".venv-sandbox"))
LIMITS = Limits(wall_seconds=20, memory_bytes=512 * 1024 * 1024, max_processes=16)


def _unavailable() -> str | None:
    return BwrapSandbox(ENV, limits=LIMITS).available()


REASON = _unavailable()
if REASON is not None:
    print(f"sandbox tests skipped: {REASON}")
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"sandbox unavailable: {REASON}")


@pytest.fixture
async def sandbox() -> AsyncIterator[BwrapSandbox]:
    box = BwrapSandbox(ENV, limits=LIMITS)
    yield box
    await box.close()


def ok(execution: Execution) -> str:
    assert execution.error is None, execution.error
    return execution.logs


def session_processes(box: BwrapSandbox, session: str) -> list[psutil.Process]:
    """The host's view of a session: bwrap and everything under it."""
    root = psutil.Process(box.session_pids()[session])
    return [root, *root.children(recursive=True)]


def host_is_healthy() -> None:
    """This process can still start processes, and the machine has memory to spare."""
    subprocess.run(["true"], check=True, timeout=10)
    assert psutil.virtual_memory().available > 2 * 1024**3


def host_paths_exist(paths: list[str]) -> list[str]:
    return [path for path in paths if os.path.lexists(path)]


async def assert_healthy(box: BwrapSandbox, session: str, *, restarted: bool = False) -> None:
    """The host is fine; the session answers (and says it was restarted when its interpreter
    had to be replaced)."""
    host_is_healthy()
    result = await box.execute(session, "print('still here')")
    assert result.error is None, result.error
    assert result.logs.endswith("still here\n")
    assert ("This is a new session" in result.logs) == restarted
    # Inside, bwrap's pid 1, the runner and its children count against max_processes.
    assert len(session_processes(box, session)) <= LIMITS.max_processes + 1


# --- acceptance -------------------------------------------------------------------------------


async def test_arithmetic_is_printed_in_logs(sandbox: BwrapSandbox) -> None:
    assert ok(await sandbox.execute("t", "print(6 * 7)")) == "42\n"


async def test_last_expression_is_shown_like_a_notebook(sandbox: BwrapSandbox) -> None:
    assert ok(await sandbox.execute("t", "x = [1, 2]\nx + [3]")) == "[1, 2, 3]\n"


async def test_state_persists_within_a_session_and_not_across(sandbox: BwrapSandbox) -> None:
    ok(await sandbox.execute("a", "import math\nsecret = 41"))
    assert ok(await sandbox.execute("a", "print(secret + 1, math.pi > 3)")) == "42 True\n"
    other = await sandbox.execute("b", "print(secret)")
    assert other.error is not None and "NameError" in other.error


async def test_exception_is_a_traceback_of_the_code_only(sandbox: BwrapSandbox) -> None:
    result = await sandbox.execute("t", "print('before')\n1 / 0")
    assert result.logs == "before\n"
    assert result.error is not None
    assert "ZeroDivisionError" in result.error and "1 / 0" in result.error
    assert "runner" not in result.error


async def test_stdout_and_stderr_of_code_and_children_interleave(sandbox: BwrapSandbox) -> None:
    code = (
        "import os, sys\nprint('a')\nprint('b', file=sys.stderr)\nos.system('echo c')\nprint('d')"
    )
    assert ok(await sandbox.execute("t", code)) == "a\nb\nc\nd\n"


async def test_matplotlib_figure_becomes_a_png(sandbox: BwrapSandbox) -> None:
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('t')\nplt.show()"
    result = await sandbox.execute("t", code)
    assert result.error is None and result.logs == ""
    assert len(result.images) == 1
    assert result.images[0].startswith(b"\x89PNG\r\n\x1a\n")
    # Figures are closed once returned.
    assert (await sandbox.execute("t", "1")).images == []


async def test_csv_written_to_mnt_data_comes_back(sandbox: BwrapSandbox) -> None:
    code = (
        "import pandas as pd\n"
        "pd.DataFrame({'n': [1, 2]}).to_csv('/mnt/data/out.csv', index=False)\n"
        "import os; os.makedirs('plots', exist_ok=True); open('plots/a.txt', 'w').write('x')"
    )
    result = await sandbox.execute("t", code)
    assert result.error is None
    assert {f.name: f.data for f in result.files} == {"out.csv": b"n\n1\n2\n", "plots/a.txt": b"x"}
    # Unchanged files are not returned again.
    assert (await sandbox.execute("t", "print(1)")).files == []


async def test_uploaded_csv_is_read_by_pandas(sandbox: BwrapSandbox) -> None:
    upload = InputFile("sales data.csv", b"region,amount\nnorth,10\nsouth,32\n")
    code = (
        "import pandas as pd\ndf = pd.read_csv('/mnt/data/sales data.csv')\nprint(df.amount.sum())"
    )
    result = await sandbox.execute("t", code, files=[upload])
    assert ok(result) == "42\n"
    assert result.files == []  # an unchanged input is not an output
    # Passing the same file again does not overwrite what the code did to it since.
    ok(await sandbox.execute("t", "open('sales data.csv', 'a').write('east,1\\n')"))
    again = await sandbox.execute("t", "print(len(pd.read_csv('sales data.csv')))", files=[upload])
    assert ok(again) == "3\n"


async def test_modified_input_comes_back(sandbox: BwrapSandbox) -> None:
    upload = InputFile("a.csv", b"x\n1\n")
    result = await sandbox.execute("t", "open('a.csv', 'a').write('2\\n')", files=[upload])
    assert [(f.name, f.data) for f in result.files] == [("a.csv", b"x\n1\n2\n")]


async def test_bad_input_names_are_refused(sandbox: BwrapSandbox) -> None:
    for name in ("../x", "a/b", "..", ""):
        result = await sandbox.execute("t", "print(1)", files=[InputFile(name, b"x")])
        assert result.error is not None and "Invalid file name" in result.error


async def test_idle_session_is_ended_and_the_next_execution_says_so() -> None:
    box = BwrapSandbox(ENV, limits=Limits(idle_seconds=0.3))
    try:
        ok(await box.execute("t", "x = 1"))
        bwrap = psutil.Process(box.session_pids()["t"])
        await asyncio.sleep(1.5)
        assert "t" not in box.session_pids()
        assert not bwrap.is_running() or bwrap.status() == psutil.STATUS_ZOMBIE
        result = await box.execute("t", "print('x' in globals())")
        assert result.logs.startswith("[This is a new session: the previous one was ended after")
        assert result.logs.endswith("False\n")
    finally:
        await box.close()


async def test_close_session_ends_its_processes(sandbox: BwrapSandbox) -> None:
    ok(await sandbox.execute("t", "import subprocess\np = subprocess.Popen(['sleep', '300'])"))
    processes = session_processes(sandbox, "t")
    assert any(p.name() == "sleep" for p in processes)
    await sandbox.close_session("t")
    _, alive = psutil.wait_procs(processes, timeout=5)
    assert alive == []
    assert ok(await sandbox.execute("t", "print('fresh')")) == "fresh\n"


async def test_executions_of_one_session_run_in_order(sandbox: BwrapSandbox) -> None:
    ok(await sandbox.execute("t", "seen = []"))
    codes = ["import time\ntime.sleep(0.3)\nseen.append(1)", "seen.append(2)", "print(seen)"]
    results = await asyncio.gather(*(sandbox.execute("t", code) for code in codes))
    assert [r.error for r in results] == [None] * 3
    assert results[2].logs == "[1, 2]\n"


async def test_closing_a_session_with_waiting_executions(sandbox: BwrapSandbox) -> None:
    running = asyncio.create_task(sandbox.execute("t", "import time\ntime.sleep(30)"))
    await asyncio.sleep(0.5)
    waiting = asyncio.create_task(sandbox.execute("t", "print('next')"))
    await asyncio.sleep(0.1)
    await sandbox.close_session("t")
    stopped, after = await asyncio.gather(running, waiting)
    assert stopped.error is not None and "lost" in stopped.error
    assert ok(after) == "next\n"  # in a new session, which the sandbox tracks
    assert list(sandbox.session_pids()) == ["t"]


async def test_sessions_run_concurrently(sandbox: BwrapSandbox) -> None:
    await asyncio.gather(*(sandbox.execute(s, "1") for s in "ab"))  # both started
    start = time.monotonic()
    results = await asyncio.gather(
        *(sandbox.execute(s, "import time; time.sleep(1)") for s in "ab")
    )
    assert all(r.error is None for r in results)
    assert time.monotonic() - start < 1.8


async def test_least_recently_used_idle_session_makes_room() -> None:
    box = BwrapSandbox(ENV, limits=LIMITS, max_sessions=2)
    try:
        for name in "abc":
            ok(await box.execute(name, f"name = {name!r}"))
        assert sorted(box.session_pids()) == ["b", "c"]
        result = await box.execute("a", "print('name' in globals())")
        assert result.logs.startswith("[This is a new session: the previous one was ended to make")
        assert result.logs.endswith("False\n")
    finally:
        await box.close()


async def test_a_cancelled_execution_ends_the_interpreter(sandbox: BwrapSandbox) -> None:
    ok(await sandbox.execute("t", "kept = 1"))
    task = asyncio.create_task(sandbox.execute("t", "import time\ntime.sleep(30)"))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    result = await sandbox.execute("t", "print('kept' in globals())")
    assert result.logs.startswith("[This is a new session: the previous one was stopped when")
    assert result.logs.endswith("False\n")


async def test_unavailable_reasons_are_clear(tmp_path: Path) -> None:
    missing = BwrapSandbox(ENV, bwrap="/nonexistent/bwrap").available()
    assert missing is not None and "bubblewrap" in missing
    no_env = BwrapSandbox(tmp_path / "nothing").available()
    assert no_env is not None and "scripts/sandbox-env" in no_env
    as_root = BwrapSandbox(ENV, uid=0).available()
    assert as_root is not None and "uid 0" in as_root


# --- escapes: each must fail, contained, and leave the host and the session fine ---------------


async def test_cannot_reach_a_server_port_on_loopback(sandbox: BwrapSandbox) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=5)"
        result = await sandbox.execute("t", code)
        assert result.error is not None and "ConnectionRefusedError" in result.error
        server.settimeout(0.5)
        with pytest.raises(TimeoutError):
            server.accept()  # nothing arrived from the sandbox
    await assert_healthy(sandbox, "t")


async def test_has_no_route_outside(sandbox: BwrapSandbox) -> None:
    # Only loopback exists in the sandbox's network namespace. A UDP connect() is a route lookup
    # that sends no packet, so this test never emits traffic even if isolation were broken.
    code = (
        "import socket\n"
        "print(socket.if_nameindex())\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.connect(('192.0.2.1', 53))"
    )
    result = await sandbox.execute("t", code)
    assert result.logs == "[(1, 'lo')]\n"
    assert result.error is not None and "Network is unreachable" in result.error
    dns = await sandbox.execute("t", "import socket\nsocket.getaddrinfo('pypi.org', 443)")
    assert dns.error is not None and "gaierror" in dns.error
    await assert_healthy(sandbox, "t")


async def test_cannot_read_the_server_database(sandbox: BwrapSandbox, tmp_path: Path) -> None:
    database = tmp_path / "assistantd.db"
    database.write_text("sk-ad-database-secret")
    database.chmod(0o644)  # even a world-readable file: it is simply not there
    code = (
        f"import os\nprint(os.path.exists({str(tmp_path)!r}), os.path.exists('/work'))\n"
        f"open({str(database)!r}).read()"
    )
    result = await sandbox.execute("t", code)
    assert result.logs == "False False\n"
    assert result.error is not None and "FileNotFoundError" in result.error
    assert "sk-ad-database-secret" not in result.error
    await assert_healthy(sandbox, "t")


async def test_cannot_read_etc_shadow(sandbox: BwrapSandbox) -> None:
    result = await sandbox.execute(
        "t", "print(sorted(os.listdir('/')))\nopen('/etc/shadow').read()"
    )
    assert result.error is not None and "NameError" in result.error  # os not imported yet
    result = await sandbox.execute("t", "import os\nprint(os.listdir('/etc'))\nopen('/etc/shadow')")
    assert result.logs == "['ld.so.cache']\n"
    assert result.error is not None and "FileNotFoundError" in result.error
    await assert_healthy(sandbox, "t")


async def test_cannot_see_the_server_environment_or_process(
    sandbox: BwrapSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSISTANTD_TEST_SECRET", "sk-env-secret")
    server_pid = os.getpid()
    code = (
        "import os\n"
        "print('ASSISTANTD_TEST_SECRET' in os.environ)\n"
        "pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
        "print(len(pids) <= 3, max(pids) < 100)\n"
        "found = []\n"
        "for p in pids:\n"
        "    try:\n"
        "        found.append(b'sk-env-secret' in open(f'/proc/{p}/environ', 'rb').read())\n"
        "    except OSError:\n"
        "        pass\n"
        "print(any(found))\n"
        f"open('/proc/{server_pid}/environ', 'rb').read()"
    )
    result = await sandbox.execute("t", code)
    assert result.logs == "False\nTrue True\nFalse\n"
    assert result.error is not None and "FileNotFoundError" in result.error
    await assert_healthy(sandbox, "t")


async def test_cannot_write_outside_the_workspace(sandbox: BwrapSandbox) -> None:
    code = (
        "import os\n"
        "for path in ['/x', '/usr/x', '/opt/python/x', '/etc/x', '/dev/x', '/proc/sys/kernel/x',\n"
        "             '/mnt/x', '/work/x']:\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "        print('WROTE', path)\n"
        "    except OSError as exc:\n"
        "        print(type(exc).__name__)\n"
        "open('/tmp/private', 'w').write('ok')\n"
        "print(open('/tmp/private').read())"
    )
    result = await sandbox.execute("t", code)
    assert result.error is None
    assert "WROTE" not in result.logs
    assert result.logs.endswith("ok\n")
    assert result.files == []  # /tmp is private scratch, not output
    assert host_paths_exist(["/x", "/usr/x", "/etc/x", "/mnt/x", "/work/x"]) == []
    await assert_healthy(sandbox, "t")


async def test_fork_bomb_is_bounded(sandbox: BwrapSandbox) -> None:
    ok(await sandbox.execute("t", "kept = 'state'"))
    bomb = await sandbox.execute("t", "import os\nwhile True:\n    os.fork()", timeout=15)
    assert bomb.error is not None and "BlockingIOError" in bomb.error
    assert len(session_processes(sandbox, "t")) <= LIMITS.max_processes + 1
    await assert_healthy(sandbox, "t")
    # The bomb's children die out once every fork fails; the runner reaps them, so the session
    # can start processes again, and it kept its state.
    await asyncio.sleep(1)
    code = "import subprocess\nprint(subprocess.run(['echo', kept], capture_output=True).stdout)"
    assert ok(await sandbox.execute("t", code)) == "b'state\\n'\n"
    assert len(session_processes(sandbox, "t")) == 3  # bwrap, its pid 1, the runner


async def test_allocating_ten_times_the_memory_limit_fails_inside(sandbox: BwrapSandbox) -> None:
    ok(await sandbox.execute("t", "kept = 'state'"))
    size = 10 * LIMITS.memory_bytes
    result = await sandbox.execute("t", f"import numpy as np\nblock = np.ones({size // 8})")
    assert result.error is not None and "Memory limit" in result.error
    result = await sandbox.execute("t", f"block = bytearray({size})")
    assert result.error is not None and "MemoryError" in result.error
    await assert_healthy(sandbox, "t")
    assert ok(await sandbox.execute("t", "print(kept)")).endswith("state\n")


async def test_infinite_loop_times_out_and_the_session_restarts(sandbox: BwrapSandbox) -> None:
    ok(await sandbox.execute("t", "kept = 'state'"))
    start = time.monotonic()
    result = await sandbox.execute("t", "print('spinning')\nwhile True:\n    pass", timeout=2)
    assert time.monotonic() - start < 5
    assert result.logs == "spinning\n"
    assert result.error is not None and result.error.startswith("Execution timed out after 2 s")
    assert "lost" in result.error
    await assert_healthy(sandbox, "t", restarted=True)
    lost = await sandbox.execute("t", "print(kept)")
    assert lost.error is not None and "NameError" in lost.error


async def test_cpu_time_limit_stops_the_interpreter() -> None:
    box = BwrapSandbox(ENV, limits=Limits(cpu_seconds=1, wall_seconds=30))
    try:
        result = await box.execute("t", "while True:\n    pass")
        assert result.error is not None and result.error.startswith("CPU time limit exceeded")
        await assert_healthy(box, "t", restarted=True)
    finally:
        await box.close()


async def test_printing_a_gigabyte_is_truncated(sandbox: BwrapSandbox) -> None:
    start = time.monotonic()
    code = "line = 'x' * (1 << 20)\nfor _ in range(1024):\n    print(line)"
    result = await sandbox.execute("t", code)
    assert result.error is None
    assert len(result.logs) < LIMITS.max_output_bytes + 200
    assert "[output truncated" in result.logs
    # A child process writing straight to the pipe is capped by the server instead.
    child = await sandbox.execute("t", "import os\nos.system('head -c 1000000000 /dev/zero')")
    assert child.error is None
    assert len(child.logs) < LIMITS.max_output_bytes + 200
    assert "[output truncated" in child.logs
    assert time.monotonic() - start < 30
    await assert_healthy(sandbox, "t")


async def test_big_files_and_a_full_workspace_fail_inside() -> None:
    limits = Limits(max_file_bytes=1024 * 1024, workspace_bytes=4 * 1024 * 1024)
    box = BwrapSandbox(ENV, limits=limits)
    try:
        big = await box.execute("t", "open('big', 'wb').write(b'x' * (2 << 20))")
        assert big.error is not None and "File too large" in big.error
        code = "for i in range(8):\n    open(f'f{i}', 'wb').write(b'x' * (1 << 20))"
        full = await box.execute("t", code)
        assert full.error is not None and "No space left on device" in full.error
        await assert_healthy(box, "t")
    finally:
        await box.close()


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


async def test_sandbox_processes_are_unprivileged_on_the_host(sandbox: BwrapSandbox) -> None:
    ok(await sandbox.execute("t", "import subprocess\np = subprocess.Popen(['sleep', '30'])"))
    processes = session_processes(sandbox, "t")
    assert len(processes) == 4  # bwrap, the sandbox's pid 1, the runner, sleep
    for process in processes:
        assert 0 not in process.uids() and 0 not in process.gids()
        status = proc_status(process.pid)
        assert int(status["CapEff"], 16) == int(status["CapPrm"], 16) == 0
    for process in processes[1:]:  # inside the sandbox
        status = proc_status(process.pid)
        assert status["NoNewPrivs"] == "1"
        assert status["Seccomp"] == "2"  # a filter is loaded


async def test_seccomp_refuses_uncounted_memory_and_kernel_interfaces(
    sandbox: BwrapSandbox,
) -> None:
    code = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print(libc.shmget(0, 1 << 20, 0o1600), os.strerror(ctypes.get_errno()))\n"
        "print(libc.ptrace(0, 0, 0, 0), os.strerror(ctypes.get_errno()))\n"
        "os.memfd_create('hidden')"
    )
    result = await sandbox.execute("t", code)
    assert result.logs == "-1 Operation not permitted\n" * 2
    assert result.error is not None and "PermissionError" in result.error
    await assert_healthy(sandbox, "t")


async def test_forged_replies_end_the_session_not_the_server(sandbox: BwrapSandbox) -> None:
    # The code runs in the runner's process and can write to its reply channel: the server
    # treats that like any broken interpreter.
    code = (
        "import os\n"
        "for fd in range(3, 10):\n"
        "    try:\n"
        "        os.write(fd, b'\\xff' * 64)\n"
        "    except OSError:\n"
        "        pass"
    )
    result = await sandbox.execute("t", code)
    assert result.error is not None and "restarted" in result.error
    await assert_healthy(sandbox, "t", restarted=True)
