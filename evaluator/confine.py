"""What a candidate's process may do, enforced by the kernel (seccomp, rlimits), not by Python.

These run inside the jail (evaluator/jail.py starts it under bubblewrap), on our own code, before
any candidate code: `host_filter` once in the candidate host, `candidate_filter` and
`limit_resources` in each candidate's fork. Seccomp filters stack and can never be removed, so a
candidate that rewrites every Python object in its process still cannot open a socket, join a
namespace, trace or signal another process, start a program or fork a daemon.

The audit hook at the end is not a wall: a candidate can switch it off. It only turns the most
common mistakes into a friendly `rejected: sandbox blocked ...` instead of an `Operation not
permitted` traceback from the kernel.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import signal
import sys

OUTPUT_LIMIT_BYTES = 4 * 2**20  # what a candidate may print or write to one file
OPEN_FILES_LIMIT = 64
PROCESS_LIMIT = 256  # threads included; fork is refused by seccomp in any case
CLONE_THREAD = 0x00010000
# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)

# Refused everywhere in the jail: escapes, kernel attack surface, other processes, the network.
DENIED_EVERYWHERE = (
    "setns", "unshare", "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree",
    "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "ptrace", "process_vm_readv",
    "process_vm_writev", "kcmp", "pidfd_getfd", "kexec_load", "kexec_file_load", "reboot",
    "init_module", "finit_module", "delete_module", "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "keyctl", "add_key", "request_key",
    "acct", "swapon", "swapoff", "quotactl", "name_to_handle_at", "open_by_handle_at",
    "sethostname", "setdomainname", "settimeofday", "clock_settime", "adjtimex", "clock_adjtime",
    "syslog", "vhangup", "socket", "socketpair", "execve", "execveat",
)
# Refused in a candidate's process on top: no new processes, no signals to anyone, no new
# process groups or sessions (so killing its group kills everything it is), no anonymous files.
DENIED_TO_CANDIDATES = (
    "fork", "vfork", "kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
    "pidfd_open", "pidfd_send_signal", "setsid", "setpgid", "memfd_create", "memfd_secret",
)


_SECCOMP: list = []


def load_seccomp():
    """pyseccomp (libseccomp) is found by path: the jail has no ldconfig for ctypes to ask."""
    if _SECCOMP:
        return _SECCOMP[0]
    import ctypes.util

    known = {"seccomp": os.environ.get("SYNTH_LIBSECCOMP"), "c": os.environ.get("SYNTH_LIBC")}
    original = ctypes.util.find_library
    ctypes.util.find_library = lambda name: known.get(name) or original(name)
    try:
        import pyseccomp
    except (ImportError, RuntimeError, OSError):  # no libseccomp on this host: said in the isolation line
        pyseccomp = None
    finally:
        ctypes.util.find_library = original
    _SECCOMP.append(pyseccomp)
    return pyseccomp


def _filter(names: tuple[str, ...], threads_only: bool):
    seccomp = load_seccomp()
    if seccomp is None:
        return None
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    deny = seccomp.ERRNO(errno.EPERM)
    for name in names:
        try:
            f.add_rule(deny, name)
        except (RuntimeError, ValueError, OSError):
            pass  # a call this kernel/architecture does not have
    # clone3 hides its flags in memory seccomp cannot read: make libc fall back to clone().
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    for bit in NAMESPACE_FLAGS:  # a clone into any new namespace
        f.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, bit, bit))
    if threads_only:  # a clone without CLONE_THREAD is a new process
        f.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_THREAD, 0))
    return f


def host_filter() -> bool:
    """The candidate host: it forks candidates and signals them, nothing else beyond a step's needs.
    False where this host has no libseccomp (the jail's isolation line then says so)."""
    f = _filter(DENIED_EVERYWHERE, threads_only=False)
    if f is not None:
        f.load()
    return f is not None


def candidate_filter() -> None:
    """A candidate's process: the host's filter plus no processes, no signals, no new groups."""
    f = _filter(DENIED_EVERYWHERE + DENIED_TO_CANDIDATES, threads_only=True)
    if f is not None:
        f.load()


def limit_resources(memory_mb: int | None) -> None:
    """Address space on top of what the process holds now, file size (tmpfs included), files, tasks."""
    if memory_mb:
        cap = _virtual_memory_bytes() + memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_LIMIT_BYTES, OUTPUT_LIMIT_BYTES))
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES_LIMIT, OPEN_FILES_LIMIT))
    resource.setrlimit(resource.RLIMIT_NPROC, (PROCESS_LIMIT, PROCESS_LIMIT))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an over-long write fails instead of killing silently


def close_other_fds(keep: set[int]) -> None:
    """Every inherited descriptor but stdio and `keep` (its channel and shared file)."""
    low = 3
    for fd in sorted(keep) + [1 << 20]:
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1


PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4


def _prctl(option: int, value: int) -> None:
    try:
        ctypes.CDLL(os.environ.get("SYNTH_LIBC") or None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux


def die_with_parent() -> None:
    """SIGKILL when the parent dies, so nothing outlives whoever started it."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def undumpable() -> None:
    """Other processes of the same uid may not open this one's /proc/PID/mem, environ or fds."""
    _prctl(PR_SET_DUMPABLE, 0)


def _virtual_memory_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


# ------------------------------------------------------------------ friendly early errors
BLOCKED_EVENTS = (
    "socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
    "os.forkpty", "os.kill", "os.killpg", "ctypes.dlopen", "ctypes.dlsym", "sys._current_frames",
    "sys.settrace", "sys.setprofile", "gc.get_objects", "gc.get_referrers", "gc.get_referents",
    "urllib.", "http.client.", "ftplib.", "smtplib.", "webbrowser.", "pty.", "sys.remote_exec",
)
violations: list[str] = []


class SandboxViolation(PermissionError):
    """Raised inside the candidate when it reaches for something a step never needs."""


def friendly_audit_hook(scratch: str) -> None:
    """Names the first forbidden thing a candidate reached for; the kernel refuses it regardless."""
    scratch = os.path.realpath(scratch)

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            if not isinstance(path, (str, bytes)):
                return
            real = os.path.realpath(os.fsdecode(path))
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC))
            if writing and not (real == scratch or real.startswith(scratch + os.sep)):
                _refuse(f"sandbox blocked open({os.fsdecode(path)!r}, write)")
            return
        if event.startswith(BLOCKED_EVENTS):
            _refuse(f"sandbox blocked {event}")

    sys.addaudithook(hook)


def _refuse(message: str) -> None:
    violations.append(message)
    raise SandboxViolation(message)
