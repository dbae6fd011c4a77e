"""The jail: the candidate host (evaluator/candidate_host.py) started under bubblewrap.

What a candidate's process can reach is decided here, by the kernel:
- an unprivileged uid (65534) with no capabilities and no_new_privs;
- new pid, network, IPC, UTS, mount (and cgroup) namespaces: no other process, no interface,
  no host file but the read-only system libraries, the Python installation and our `evaluator`
  package; a private, size-capped /tmp and /dev/shm; no home, no run directory, no /etc;
- a cleared environment (no key, token or path of the engine's);
- one inherited descriptor, its control socket; seccomp filters and rlimits (evaluator/confine.py).

As root, bubblewrap makes the namespaces itself and the host drops to uid 65534 after importing
torch; as another user, bubblewrap makes a user namespace too (nested ones are disabled). Where
bubblewrap is missing or cannot make namespaces, the host runs without them and `isolation` says
so plainly: seccomp and rlimits still hold, the namespaces and the uid change do not.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import signal
import site
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evaluator import channel

PACKAGE_DIR = Path(__file__).resolve().parent  # evaluator/: the only project code the jail can see
INSIDE = "/synth"
UNPRIVILEGED = 65534
TMP_BYTES = 64 * 2**20
SHM_BYTES = 16 * 2**20
START_TIMEOUT_S = 120.0
# An optimizer's temporaries (megabytes each step) come from the heap and are reused, instead of being
# mapped, faulted in page by page and unmapped every step: that made AdamW's step 2x slower in a
# candidate's process than in the benchmark's (the worker's own malloc reaches that state by itself).
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=67108864:glibc.malloc.trim_threshold=268435456"  # importing torch on a loaded machine
BOOT = ("import sys; sys.path.insert(0, {root!r}); from evaluator.candidate_host import main; "
        "main({fd}, {scratch!r})")


class JailError(RuntimeError):
    pass


def _read_only_paths() -> list[str]:
    """The Python installation and wherever torch and pyseccomp live; nothing under a home but those."""
    import importlib.util

    import torch

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages(),
             str(Path(torch.__file__).resolve().parent.parent)}
    seccomp = importlib.util.find_spec("pyseccomp")  # found, not imported: it may lack its C library here
    if seccomp is not None and seccomp.origin:
        paths.add(str(Path(seccomp.origin).resolve().parent))
    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    paths.discard(user_site)
    kept = sorted(p for p in paths if p and os.path.isdir(p) and not p.startswith("/usr/"))
    return [p for p in kept if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in kept)]


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("lib", "lib64", "lib32", "bin", "sbin"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def bwrap_command(python: str, as_root: bool, fd: int) -> list[str]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise JailError("bubblewrap (bwrap) is not installed")
    args = [bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--clearenv"]
    if as_root:  # bubblewrap makes the namespaces; the host keeps setuid/setgid only to drop to 65534
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user", "--disable-userns", "--uid", "65534", "--gid", "65534"]
    args += _system_binds()
    paths = _read_only_paths()
    for parent in sorted({str(a) for p in paths for a in Path(p).parents if str(a) != "/"}):
        args += ["--perms", "0755", "--dir", parent]  # else they copy a home's 0700 and lock uid 65534 out
    for path in paths:
        args += ["--ro-bind", path, path]
    args += ["--ro-bind", str(PACKAGE_DIR), f"{INSIDE}/evaluator", "--proc", "/proc", "--dev", "/dev",
             "--size", str(TMP_BYTES), "--tmpfs", "/tmp", "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm",
             "--remount-ro", "/", "--chdir", "/tmp"]
    for key, value in _jail_environment().items():
        args += ["--setenv", key, value]
    return args + ["--", python, "-I", "-B", "-c", BOOT.format(root=INSIDE, fd=fd, scratch="/tmp")]


def _jail_environment() -> dict[str, str]:
    # CUDA_VISIBLE_DEVICES="": the candidate steps CPU tensors in shared memory and never needs a GPU;
    # a host that touched CUDA before forking a candidate would also leave torch's optimizers a
    # broken driver ("CUDA error: initialization error" in their graph-capture check)
    return {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1",
            "CUDA_VISIBLE_DEVICES": "",
            "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0", "GLIBC_TUNABLES": MALLOC_TUNABLES,
            "SYNTH_LIBSECCOMP": _library_path("seccomp"), "SYNTH_LIBC": _library_path("c")}


def _library_path(name: str) -> str:
    """A full path, so the jail needs no ldconfig cache to load it."""
    soname = ctypes.util.find_library(name) or ""
    if not soname or "/" in soname:
        return soname
    for directory in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib"):
        candidate = os.path.join(directory, soname)
        if os.path.exists(candidate):
            return os.path.realpath(candidate)
    return soname


_FALLBACK_REASON: list[str] = []  # set once when bubblewrap cannot run here; then every jail skips it


class Jail:
    """One candidate host for one worker; restarted after it is killed (a timeout, a broken channel)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.control: socket.socket | None = None
        self.isolation = ""
        self.log = tempfile.TemporaryFile()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ensure(self) -> None:
        if self.running:
            return
        self.kill()
        if not _FALLBACK_REASON:
            try:
                return self._start(use_bwrap=True)
            except JailError as err:
                _FALLBACK_REASON.append(str(err))
        self._start(use_bwrap=False)

    def _start(self, use_bwrap: bool) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        as_root = os.geteuid() == 0
        fd = theirs.fileno()
        if use_bwrap:
            argv = bwrap_command(sys.executable, as_root, fd)
        else:
            scratch = tempfile.mkdtemp(prefix="synth-jail-")  # never the machine's own /tmp: the host wipes it
            if as_root:
                os.chown(scratch, UNPRIVILEGED, UNPRIVILEGED)
            argv = [sys.executable, "-I", "-B", "-c", BOOT.format(root=str(PACKAGE_DIR.parent), fd=fd, scratch=scratch)]
        self.log.seek(0)
        self.log.truncate()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, close_fds=True,
            pass_fds=(fd,), env=_jail_environment() if not use_bwrap else {"PATH": "/usr/bin:/bin"}, cwd="/",
            start_new_session=True)
        theirs.close()
        self.control = ours
        try:
            hello = self.receive(time.monotonic() + START_TIMEOUT_S)
        except (TimeoutError, channel.ChannelError) as err:
            self.kill()
            raise JailError(f"the candidate host did not start ({err}): {self._log_tail()}") from None
        if hello.get("op") != "ready":
            self.kill()
            raise JailError(f"the candidate host said {hello!r}")
        self.isolation = describe(use_bwrap, as_root, int(hello.get("uid", -1)), bool(hello.get("seccomp")))

    def launch(self, request: dict, fds: list[int]) -> None:
        assert self.control is not None
        socket.send_fds(self.control, [json.dumps(request).encode()], fds)

    def receive(self, deadline: float) -> dict:
        """One message from the host (its own code, but parsed as carefully as any)."""
        assert self.control is not None
        data = channel.receive(self.control, deadline)
        if data is None:
            raise channel.ChannelError(f"the candidate host exited: {self._log_tail()}")
        try:
            message = json.loads(data)
        except ValueError:
            raise channel.ChannelError("the candidate host sent a malformed message") from None
        if not isinstance(message, dict):
            raise channel.ChannelError("the candidate host sent a malformed message")
        return message

    def kill(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()
            self.proc = None
        if self.control is not None:
            self.control.close()
            self.control = None

    def _log_tail(self) -> str:
        self.log.seek(0)
        text = self.log.read()[-1500:].decode(errors="replace").strip()
        return " ".join(text.splitlines()[-3:]) or "no output"


def describe(use_bwrap: bool, as_root: bool, uid: int, seccomp: bool) -> str:
    """The isolation line: what holds, and in capitals what does not."""
    filters = "seccomp" if seccomp else "NO SECCOMP (libseccomp is missing: apt-get install libseccomp2)"
    if use_bwrap:
        how = "bubblewrap" + ("" if as_root else " (user namespace)")
        return (f"{how}: uid {uid}, no capabilities, new pid/net/ipc/uts/mount namespaces, read-only "
                f"system and Python, private /tmp; {filters}; rlimits")
    why = _FALLBACK_REASON[0] if _FALLBACK_REASON else "disabled"
    return (f"REDUCED ISOLATION ({why}; apt-get install bubblewrap): candidates run as uid {uid} in the "
            f"worker's namespaces and file system view; {filters} and rlimits confine them")
