"""The sandbox's seccomp filter: the system calls that sandboxed code is refused (EPERM).

Namespaces and rlimits do the isolating; this closes what they leave open. It is compiled to
BPF once, by scripts/sandbox-env, with libseccomp (Debian's python3-seccomp, the library Docker
and Flatpak build their filters with), into ``seccomp.bpf`` beside the sandbox's venv; the
bwrap backend hands that file to ``bwrap --seccomp``. libseccomp also refuses every system call
of a foreign ABI (i386, x32), so the numbers below cannot be reached another way.

    /usr/bin/python3 src/assistantd/sandbox/syscalls.py OUT.bpf
"""

from __future__ import annotations

import errno
import sys

DENIED = (
    # Memory that no rlimit counts and no tmpfs size bounds: an anonymous memfd written through
    # write(), or a SysV segment that keeps its pages once detached.
    "memfd_create",
    "shmget",
    # Kernel interfaces that data-analysis code has no use for and that have served to escape
    # containers or to attack the kernel (Docker's default profile refuses them too).
    "add_key",
    "keyctl",
    "request_key",
    "bpf",
    "userfaultfd",
    "perf_event_open",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "open_by_handle_at",
    "name_to_handle_at",
    "fanotify_init",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "mount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
    "unshare",
    "setns",
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "quotactl",
    "syslog",
    "vhangup",
    "mbind",
    "migrate_pages",
    "move_pages",
    "set_mempolicy",
)


def main(out: str) -> None:
    import seccomp  # type: ignore[import-not-found]  # Debian's python3-seccomp, at setup only

    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in DENIED:
        rules.add_rule(seccomp.ERRNO(errno.EPERM), name)
    with open(out, "wb") as f:
        rules.export_bpf(f)


if __name__ == "__main__":
    main(sys.argv[1])
