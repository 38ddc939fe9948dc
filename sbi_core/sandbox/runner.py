"""Run uploaded Python code in an isolated, resource-limited child process.

An uploaded simulator is untrusted code. It runs in a separate, persistent
child process (:mod:`sbi_core.sandbox.child`) that the parent talks to over
pipes with length-prefixed frames: JSON for control messages and ``.npy``
bytes (``allow_pickle=False``) for arrays. Nothing is ever unpickled, and every
reply is checked, so a hostile child can at worst produce an error.

Isolation (Linux, when ``bwrap`` -- bubblewrap -- is installed and works):

* new user, pid, network, ipc, uts and cgroup namespaces; the child runs as
  ``nobody`` with no capabilities and cannot create further user namespaces;
* a private, read-only filesystem with only ``/usr``, the Python installation
  (interpreter, standard library, site-packages), ``/sandbox/child.py`` and
  ``/sandbox/model.py`` (a private copy of the upload), and a read-only ``/dev``
  (``/dev/null``, ``/dev/urandom``, ... work; ``/dev/shm`` cannot be written);
  the only writable place is ``/tmp``, a tmpfs of ``Limits.tmp_mb`` (64 MB); the
  app's folder, the run store and other uploads are not there at all;
* no network (only the sandbox's own loopback);
* a seccomp filter (x86-64 and aarch64) that refuses to create processes
  (``fork``, ``vfork``, ``clone`` without ``CLONE_THREAD``), so the upload
  cannot start programs or fork bombs; threads still work; it also refuses
  System V shared memory and message queues, POSIX message queues and memfd
  files, RAM that no file-size or memory limit would count;
* ``--die-with-parent`` and a pid namespace: killing the sandbox kills
  everything in it.

Everywhere (also "trusted" mode, without bwrap) the child sets hard resource
limits on itself before running the upload: address space (``memory_mb``),
file size, open files, no core dumps, a CPU-time backstop; and the parent
enforces a wall-clock ``timeout`` per request by killing the child's whole
process group. A killed or crashed child is restarted on the next request.

Without a working bwrap, uploads are refused unless the operator opts in with
``trusted=True`` or the environment variable ``SBI_TRUSTED_UPLOADS=1``.
"""

from __future__ import annotations

import errno
import io
import json
import os
import platform
import select
import shutil
import signal
import struct
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

from sbi_core.errors import SBIError
from sbi_core.sandbox.child import HEADER, KIND_ARRAY, KIND_JSON, MAX_FRAME_BYTES

__all__ = [
    "SimulatorError",
    "SandboxRunner",
    "Limits",
    "sandbox_mode",
    "sandbox_mode_description",
    "TRUSTED_ENV",
]

TRUSTED_ENV = "SBI_TRUSTED_UPLOADS"
CHILD_SCRIPT = Path(__file__).with_name("child.py")
SANDBOX_MODEL = "/sandbox/model.py"
SANDBOX_CHILD = "/sandbox/child.py"
BOOT_TIMEOUT_S = 20.0  # starting bwrap + Python + numpy, before any user code runs
NOBODY = 65534
MAX_JSON_BYTES = 8 * 1024 * 1024  # a reply carries at most 64 K characters of prints


class SimulatorError(SBIError):
    """An uploaded simulator failed; the message says what happened in the user's terms.

    Attributes:
        kind: a short code ("timeout", "memory", "syntax", "missing_simulate",
            "import", "exception", "shape", "text", "exit", "crash", "refused",
            "prior", "observation", "protocol", ...), for programs and tests.
        line: the line of the upload where it happened, if known.
        source_line: that line's text.
        output: what the code printed (capped), if anything.
    """

    def __init__(
        self,
        message: str,
        kind: str = "error",
        line: Optional[int] = None,
        source_line: Optional[str] = None,
        output: str = "",
    ):
        super().__init__(message)
        self.kind = kind
        self.line = line
        self.source_line = source_line
        self.output = output


@dataclass(frozen=True)
class Limits:
    """Resource limits for one child process."""

    timeout: float = 10.0  # wall-clock seconds per request (load, probe, one batch)
    memory_mb: int = 512  # address space (RLIMIT_AS)
    fsize_mb: int = 16  # largest file it may write (RLIMIT_FSIZE)
    tmp_mb: int = 64  # size of the sandbox's /tmp
    nofile: int = 64  # open files (RLIMIT_NOFILE)
    nproc: int = 64  # processes+threads (RLIMIT_NPROC; not enforced for root)

    def child_config(self, sandboxed: bool) -> dict[str, Any]:
        limits = {"memory_mb": self.memory_mb, "fsize_mb": self.fsize_mb, "nofile": self.nofile}
        # as a normal user outside a user namespace RLIMIT_NPROC would count all
        # of that user's processes on the machine, so only set it in the sandbox
        limits["nproc"] = self.nproc if sandboxed else 0
        # outside the sandbox the child also dies with this process (PR_SET_PDEATHSIG)
        return {"limits": limits, "timeout": self.timeout, "parent_pid": None if sandboxed else os.getpid()}


# ---- which mode ---------------------------------------------------------------
def _bwrap_path() -> Optional[str]:
    return os.environ.get("SBI_BWRAP") or shutil.which("bwrap")


@lru_cache(maxsize=8)
def _bwrap_help(bwrap: str) -> str:
    try:
        res = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return res.stdout + res.stderr


@lru_cache(maxsize=8)
def _bwrap_works(bwrap: str) -> tuple[bool, str]:
    """Whether ``bwrap`` can start our sandbox here; if not, why, in bwrap's own words.

    Runs the very command line an upload gets (same mounts, same seccomp
    filter) with ``python -I -c pass`` inside, so anything that would stop a
    real upload -- user namespaces switched off, a Python installation the
    sandbox cannot see -- shows up here, with bwrap's exit code and stderr.
    """
    fd = _seccomp_fd()
    info_r, info_w = os.pipe()
    proc = None
    try:
        cmd = bwrap_command(bwrap, str(CHILD_SCRIPT), str(CHILD_SCRIPT), Limits(), seccomp_fd=fd, info_fd=info_w)
        proc = subprocess.Popen(
            cmd + [sys.executable, "-I", "-c", "pass"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, stdin=subprocess.DEVNULL, start_new_session=True,
            pass_fds=(info_w,) if fd is None else (fd, info_w),
        )
        os.close(info_w)
        info_w = -1
        proc.sandbox_info_fd = info_r  # type: ignore[attr-defined]
        info_r = -1
        _, stderr = proc.communicate(timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"running {bwrap} failed: {exc}"
    finally:
        _kill(proc)  # reaps it, and the sandbox's init process where it is ours to reap
        for f in (fd, info_r, info_w):
            if f is not None and f >= 0:
                os.close(f)
    if proc.returncode == 0:
        return True, ""
    said = " ".join(stderr.split())[:500] or "no message"
    return False, f"{said} (bwrap exit code {proc.returncode})"


def sandbox_problem() -> Optional[str]:
    """Why the bubblewrap sandbox cannot be used here, or None when it works.

    The reason names the real cause: not Linux, bubblewrap not installed,
    ``SBI_BWRAP`` pointing nowhere, or bwrap's own message when it is installed
    but the sandbox does not start.
    """
    if not sys.platform.startswith("linux"):
        return f"the bubblewrap sandbox needs Linux (this is {sys.platform})"
    bwrap = _bwrap_path()
    if not bwrap:
        return "bubblewrap is not installed (no 'bwrap' on PATH)"
    if not (os.path.isfile(bwrap) and os.access(bwrap, os.X_OK)):
        return f"SBI_BWRAP is set to {bwrap}, which is not an executable file"
    ok, why = _bwrap_works(bwrap)
    return None if ok else f"the sandbox could not start: {why}"


def _bwrap_missing(problem: str) -> bool:
    return problem.startswith(("bubblewrap is not installed", "SBI_BWRAP is set"))


def _trusted_from_env() -> bool:
    return os.environ.get(TRUSTED_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def sandbox_mode(trusted: Optional[bool] = None) -> str:
    """``"sandboxed"`` (bwrap works), ``"trusted"`` (no sandbox, operator opted in) or ``"refused"``."""
    if sandbox_problem() is None:
        return "sandboxed"
    if trusted is None:
        trusted = _trusted_from_env()
    return "trusted" if trusted else "refused"


def sandbox_mode_description(trusted: Optional[bool] = None) -> str:
    """One sentence for the UI about how uploaded code runs here (and, if refused, why)."""
    mode = sandbox_mode(trusted)
    if mode == "sandboxed":
        return (
            "Uploaded code runs in a bubblewrap sandbox: no network, no access to your files, "
            "limited memory and time."
        )
    if mode == "trusted":
        return (
            "Uploaded code runs WITHOUT a sandbox (trusted mode): it has memory and time limits "
            "but can read and change your files. Only upload code you trust."
        )
    problem = sandbox_problem() or "the sandbox is not available"
    fix = "install the 'bubblewrap' package" if _bwrap_missing(problem) else "fix that"
    return (
        f"Uploading code is switched off: it needs the bubblewrap sandbox, and {problem}. "
        f"To enable uploads, {fix}, or set {TRUSTED_ENV}=1 if you trust every file you upload."
    )


def refused_error() -> SimulatorError:
    """The error for an upload when no sandbox can run it and trusted mode is off; it names the cause."""
    problem = sandbox_problem() or "the sandbox is not available"
    if _bwrap_missing(problem):
        fix = "Install it (e.g. 'apt-get install bubblewrap')"
    else:
        fix = "Fix the cause above (bubblewrap is installed)"
    return SimulatorError(
        f"Uploaded code needs the bubblewrap sandbox, and {problem}. {fix}, or, if you trust every "
        f"file that will be uploaded, set the environment variable {TRUSTED_ENV}=1 "
        "to run uploads without a sandbox.",
        kind="refused",
    )


# ---- seccomp: no new processes --------------------------------------------------
_SECCOMP_ARCH = {
    # machine: (AUDIT_ARCH, syscall numbers, has the x32 ABI bit)
    "x86_64": (0xC000003E, {"clone": 56, "fork": 57, "vfork": 58, "clone3": 435,
                            "shmget": 29, "msgget": 68, "mq_open": 240, "memfd_create": 319}, True),
    "aarch64": (0xC00000B7, {"clone": 220, "clone3": 435,
                             "shmget": 194, "msgget": 186, "mq_open": 180, "memfd_create": 279}, False),
}
# memory that is neither a file in /tmp nor counted by RLIMIT_AS once unmapped: System V shared memory
# and message queues, POSIX message queues and memfd files would let an upload pile up RAM beyond
# its limits, so creating them is refused (EPERM)
_SECCOMP_DENIED = ("fork", "vfork", "shmget", "msgget", "mq_open", "memfd_create")


def seccomp_program(machine: Optional[str] = None) -> Optional[bytes]:
    """A classic-BPF seccomp filter refusing process creation, or None on other CPUs.

    ``clone`` is allowed only with ``CLONE_THREAD`` (threads); ``clone3``
    returns ENOSYS so libc falls back to ``clone``; ``fork``/``vfork``, the
    creation of RAM-backed objects outside ``/tmp`` (``shmget``, ``msgget``,
    ``mq_open``, ``memfd_create``) and any syscall of a foreign ABI return EPERM.
    """
    spec = _SECCOMP_ARCH.get(machine or platform.machine())
    if spec is None:
        return None
    arch, nr, x32 = spec
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
    clone_thread = 0x00010000
    # (code, jump-if-true label, jump-if-false label, k); labels resolve below
    prog: list[tuple[int, Any, Any, int]] = [(ld, 0, 0, 4), (jeq, None, "EPERM", arch), (ld, 0, 0, 0)]
    if x32:
        prog.append((jge, "EPERM", None, 0x40000000))
    prog.append((jeq, "ENOSYS", None, nr["clone3"]))
    for name in _SECCOMP_DENIED:
        if name in nr:
            prog.append((jeq, "EPERM", None, nr[name]))
    prog += [
        (jeq, None, "ALLOW", nr["clone"]),
        (ld, 0, 0, 16),  # low 32 bits of args[0] (flags) on little-endian
        (jset, "ALLOW", "EPERM", clone_thread),
    ]
    labels = {"ALLOW": len(prog), "EPERM": len(prog) + 1, "ENOSYS": len(prog) + 2}
    prog += [(ret, 0, 0, allow), (ret, 0, 0, eperm), (ret, 0, 0, enosys)]
    out = bytearray()
    for i, (code, jt, jf, k) in enumerate(prog):
        rel = lambda lab: 0 if lab is None or isinstance(lab, int) else labels[lab] - i - 1  # noqa: E731
        out += struct.pack("=HBBI", code, rel(jt), rel(jf), k)
    return bytes(out)


# tests switch this off to check that the pid namespace alone cleans up processes
SECCOMP_ENABLED = True


def _seccomp_fd() -> Optional[int]:
    """The read end of a pipe holding :func:`seccomp_program` (bwrap ``--seccomp FD``)."""
    program = seccomp_program() if SECCOMP_ENABLED else None
    if program is None:
        return None
    r, w = os.pipe()
    os.write(w, program)
    os.close(w)
    return r


# ---- bwrap command line ---------------------------------------------------------
def _exposable(d: str) -> bool:
    """Whether directory ``d`` may be shown, read-only, inside the sandbox.

    Never ``/``, and never a folder that holds the temp folder, where every
    upload's private copy lives (a Python whose prefix is ``/tmp`` itself is
    therefore not exposed; the sandbox then fails to start and says so).
    """
    if d == "/":
        return False
    tmp = os.path.realpath(tempfile.gettempdir())
    return not (tmp == d or tmp.startswith(d.rstrip("/") + "/"))


def _python_dirs() -> list[str]:
    """Read-only directories the child needs to run Python and import numpy.

    They may lie anywhere, ``/tmp`` included (a virtualenv made there):
    :func:`bwrap_command` binds them after mounting the private ``/tmp``.
    """
    cands = {
        sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
        str(Path(os.path.realpath(sys.executable)).parent.parent),
        str(Path(np.__file__).resolve().parent.parent),
    }
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p:
            cands.add(p)
    dirs = sorted({os.path.realpath(c) for c in cands if c and os.path.isdir(c)})
    dirs = [d for d in dirs if _exposable(d)]
    kept: list[str] = []
    for d in dirs:
        if not any(d == k or d.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(d)
    # the unresolved prefix too (a venv whose path contains a symlink)
    for p in {sys.prefix, os.path.dirname(os.path.dirname(sys.executable))}:
        if os.path.isdir(p) and os.path.realpath(p) != p and _exposable(p):
            kept.append(p)
    return kept


def bwrap_command(bwrap: str, model: str, child: str, limits: Limits, seccomp_fd: Optional[int],
                  info_fd: Optional[int] = None) -> list[str]:
    """The bwrap argument list (without the command to run inside).

    ``info_fd``: a pipe's write end where bwrap writes, as JSON, the host pid of
    the sandbox's init process (``child-pid``), so that it can be reaped (see
    :func:`_reap_sandbox_init`).
    """
    help_text = _bwrap_help(bwrap)
    cmd = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if info_fd is not None and "--info-fd" in help_text:
        cmd += ["--info-fd", str(info_fd)]
    if "--unshare-user " in help_text or "--unshare-user\n" in help_text:
        cmd += ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY)]
        if "--disable-userns" in help_text:
            cmd.append("--disable-userns")
    if os.geteuid() == 0 and "--cap-drop" in help_text:
        cmd += ["--cap-drop", "ALL"]
    cmd += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = "/" + name
        if os.path.islink(host):
            cmd += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            cmd += ["--ro-bind", host, host]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime"):
        if os.path.exists(f):
            cmd += ["--ro-bind", f, f]
    cmd += ["--proc", "/proc", "--dev", "/dev"]
    cmd += ["--size", str(limits.tmp_mb * 1024 * 1024), "--tmpfs", "/tmp", "--dir", "/sandbox"]
    # after the private /tmp: a Python installed under /tmp (a virtualenv made
    # there) is bound on top of it, read-only, instead of being hidden by it
    for d in _python_dirs():
        if d != "/usr" and not d.startswith("/usr/"):
            cmd += ["--ro-bind", d, d]
    cmd += ["--ro-bind", model, SANDBOX_MODEL, "--ro-bind", child, SANDBOX_CHILD]
    # --dev mounts a fresh tmpfs with no size limit on /dev (with /dev/shm in it): read-only, so /tmp,
    # of tmp_mb, is the only place the upload can write ("/dev/null" and the other nodes stay usable).
    # --size and --remount-ro are used unconditionally: a bwrap too old for them (before 0.5) fails to
    # start, and the sandbox is refused with bwrap's own message, rather than running without limits
    cmd += ["--remount-ro", "/dev", "--remount-ro", "/"]
    if seccomp_fd is not None:
        cmd += ["--seccomp", str(seccomp_fd)]
    cmd += ["--chdir", "/tmp", "--"]
    return cmd


def _child_env(home: str) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
    }
    if os.environ.get("LD_LIBRARY_PATH"):
        env["LD_LIBRARY_PATH"] = os.environ["LD_LIBRARY_PATH"]
    return env


# ---- messages for the user ---------------------------------------------------------
_SIGNALS = {
    signal.SIGSEGV: "segmentation fault",
    signal.SIGBUS: "bus error",
    signal.SIGILL: "illegal instruction",
    signal.SIGFPE: "floating-point exception",
    signal.SIGABRT: "aborted",
}


def _clean(info: Any) -> dict[str, Any]:
    """The child's error description with only the expected, bounded fields (it is untrusted)."""
    if not isinstance(info, dict):
        return {"kind": "protocol", "message": "no description"}
    out: dict[str, Any] = {}
    for key in ("kind", "type", "message", "source", "name"):
        value = info.get(key)
        if value is not None:
            out[key] = str(value)[:2000]
    if isinstance(info.get("message"), int):
        out["message"] = info["message"]  # an exit code
    line = info.get("line")
    out["line"] = line if isinstance(line, int) and not isinstance(line, bool) and line > 0 else None
    out["os_error"] = info.get("os_error") is True
    return out


def _where(info: dict[str, Any], filename: str) -> str:
    line, src = info.get("line"), info.get("source")
    if not line:
        return ""
    return f" (line {line} of {filename}" + (f": {src})" if src else ")")


def error_from_child(info: dict[str, Any], filename: str, limits: Limits, phase: str, sandboxed: bool,
                     output: str = "") -> SimulatorError:
    """A :class:`SimulatorError` from the child's description of a failure."""
    info = _clean(info)
    kind = str(info.get("kind", "exception"))
    where = _where(info, filename)
    who = "Running the file" if phase == "load" else "simulate"
    line, src = info.get("line"), info.get("source")
    if kind == "syntax":
        msg = f"The file has a syntax error on line {line}: {info.get('message')}" + (f"\n    {src}" if src else "")
        if not line:
            msg = f"The file could not be read as Python: {info.get('message')}"
    elif kind == "missing_simulate":
        msg = f"{info.get('message', '').capitalize()}. Define `def simulate(theta): ...` returning numbers."
        msg = msg.replace("The file", f"The file {filename}", 1)
    elif kind == "import":
        msg = (f"The file imports '{info.get('name')}', which is not installed here{where}. "
               "numpy, scipy and the Python standard library are available.")
    elif kind == "memory":
        msg = f"The simulator used more than {limits.memory_mb} MB of memory{where}."
    elif kind == "exit":
        code = info.get("message")
        msg = ("The simulator exited (sys.exit / os._exit) instead of returning"
               + (f" (exit code {code})" if code not in (None, "") else "") + f"{where}.")
    elif kind == "recursion":
        msg = f"{who} called itself too deeply (RecursionError){where}."
    elif kind == "file":
        msg = f"The simulator wrote a file larger than {limits.fsize_mb} MB{where}."
    elif kind == "disk_full":
        msg = f"The simulator filled its {limits.tmp_mb} MB scratch folder /tmp{where}."
    elif kind in ("shape", "text", "type", "none", "ragged"):
        text = str(info.get("message") or "returned something unusable")
        msg = f"simulate {text}" + ("" if text.endswith(("?", ".", "!")) else ".")
    else:
        text = str(info.get("message") or "").strip()
        msg = f"{who} raised {info.get('type', 'an error')}" + (f": {text}" if text else "") + where
        if sandboxed and info.get("os_error"):
            msg += (". (In the sandbox, uploaded code cannot start programs, use the network, "
                    "or see files other than its own scratch folder /tmp.)")
    return SimulatorError(msg, kind=kind, line=line, source_line=src, output=output)


def error_from_exit(returncode: Optional[int], sandboxed: bool, limits: Limits) -> SimulatorError:
    """A :class:`SimulatorError` for a child that went away without answering."""
    if returncode is None:
        return SimulatorError("The simulator stopped answering.", kind="protocol")
    sig = None
    if returncode < 0:
        sig = -returncode
    elif sandboxed and returncode > 128 and (returncode - 128) in signal.Signals._value2member_map_:
        sig = returncode - 128  # bwrap reports death by signal as 128 + signal
    if sig is None:
        return SimulatorError(
            f"The simulator exited (sys.exit / os._exit) instead of returning (exit code {returncode}).",
            kind="exit",
        )
    if sig in _SIGNALS:
        return SimulatorError(f"The simulator crashed ({_SIGNALS[sig]}).", kind="crash")
    if sig == signal.SIGXCPU:
        return SimulatorError(f"The simulator took longer than {limits.timeout:g} s of CPU time.", kind="timeout")
    if sig == signal.SIGXFSZ:
        return SimulatorError(f"The simulator wrote a file larger than {limits.fsize_mb} MB.", kind="file")
    if sig == signal.SIGKILL:
        return SimulatorError(
            f"The simulator was killed, probably for using more than {limits.memory_mb} MB of memory.",
            kind="memory",
        )
    name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
    return SimulatorError(f"The simulator was stopped by signal {name}.", kind="crash")


# ---- the runner -------------------------------------------------------------------------
class _ChildGone(Exception):
    """The child closed its end (exited, crashed or was killed)."""


class _Timeout(Exception):
    """The deadline passed before the child answered."""


def _exit_status(proc: subprocess.Popen, timeout: float) -> Optional[int]:
    """``proc``'s exit status (negative: signal) once it exits, *without* reaping it.

    The unreaped zombie keeps its pid, so its process group id cannot be
    reused before :func:`_kill` has signalled the group.
    """
    if proc.returncode is not None:
        return proc.returncode
    deadline = time.monotonic() + timeout
    while True:
        try:
            res = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return proc.poll()
        if res is not None and res.si_pid:
            if res.si_code == os.CLD_EXITED:
                return res.si_status
            return -res.si_status
        if time.monotonic() > deadline:
            return None
        time.sleep(0.01)


PR_GET_CHILD_SUBREAPER = 37


def _adopts_orphans() -> bool:
    """Whether orphaned processes become this process's children: it is pid 1 (the app as a
    container's main process) or a child subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``)."""
    if os.getpid() == 1:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        flag = ctypes.c_int(0)
        if ctypes.CDLL(None, use_errno=True).prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) != 0:
            return False
        return bool(flag.value)
    except (OSError, AttributeError):
        return False


def _sandbox_init_pid(proc: subprocess.Popen) -> Optional[int]:
    """The host pid of the sandbox's init process, from what bwrap wrote to its ``--info-fd``."""
    fd = getattr(proc, "sandbox_info_fd", None)
    if fd is None:
        return None
    proc.sandbox_info_fd = None  # type: ignore[attr-defined]
    data = b""
    try:
        os.set_blocking(fd, False)
        while len(data) < 65536:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
    except (BlockingIOError, OSError):
        pass
    finally:
        os.close(fd)
    try:
        pid = json.loads(data.decode("utf-8", "replace")).get("child-pid")
    except (ValueError, AttributeError):
        return None
    return pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 1 else None


def _reap_sandbox_init(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """Reap the sandbox's init process once bwrap itself is reaped, where it became ours.

    bwrap (with a pid namespace) exits as soon as its init process reports the
    exit status, without waiting for it, so that init is orphaned. Normally the
    machine's init reaps it; but where this process adopts orphans (pid 1 in a
    container, or a subreaper), every sandbox would leave a ``[bwrap] <defunct>``
    zombie behind. Only the pid bwrap reported is waited for (never ``-1``), so
    other code's children are left alone; while this process holds the zombie,
    the pid cannot be reused.
    """
    pid = _sandbox_init_pid(proc)
    if pid is None or not _adopts_orphans():
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not ours (reaped by init) or already reaped
            return
        if done or time.monotonic() > deadline:
            return
        time.sleep(0.01)


def _kill(proc: Optional[subprocess.Popen]) -> None:
    """Kill ``proc``'s process group (and with it the sandbox and anything it started) and reap it
    (and the sandbox's init process, where it is ours to reap)."""
    if proc is None:
        return
    if proc.returncode is None:  # not reaped yet: the group id is still ours
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    else:
        _reap_sandbox_init(proc)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass


def _cleanup(state: dict[str, Any]) -> None:
    """Finalizer: kill the child and remove the scratch folder (also at exit).

    Only in the process that started the child: a forked copy of this process
    must not kill its parent's sandbox.
    """
    if state.get("owner") != os.getpid():
        return
    _kill(state.get("proc"))
    state["proc"] = None
    folder = state.get("dir")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        state["dir"] = None


# ---- whose sandboxes: stopping one run stops its own sandboxes, nothing else ------------
_owner = threading.local()  # the label sandboxes started in this thread belong to (owned_by)
_OWNED: dict[str, "weakref.WeakSet[SandboxRunner]"] = {}
_OWNED_LOCK = threading.Lock()


@contextmanager
def owned_by(label: str) -> Iterator[None]:
    """Sandboxes made in this thread inside the block belong to ``label`` (e.g. a run's id).

    A Dask worker carries out many runs in one process; a run that ignores its
    cancel cannot have its worker killed (other runs share it), but its own
    sandbox processes can be (:func:`stop_owned`).
    """
    previous = getattr(_owner, "label", None)
    _owner.label = label
    try:
        yield
    finally:
        _owner.label = previous


def stop_owned(label: str) -> int:
    """:meth:`SandboxRunner.stop` every sandbox of ``label`` in this process; returns how many had a child."""
    with _OWNED_LOCK:
        runners = list(_OWNED.get(label, ()))
    return sum(1 for runner in runners if runner.stop())


def _register(runner: "SandboxRunner") -> None:
    label = getattr(_owner, "label", None)
    if label is None:
        return
    with _OWNED_LOCK:
        for key in [k for k, runners in _OWNED.items() if not runners]:
            del _OWNED[key]  # labels whose sandboxes are all gone
        _OWNED.setdefault(label, weakref.WeakSet()).add(runner)


class SandboxRunner:
    """A persistent child process running one uploaded file.

    Start it with :meth:`start` (returns the child's "hello": ``PRIOR``,
    ``OBSERVATION``, docstring), then send :meth:`probe` / :meth:`simulate`
    requests. A child that timed out or crashed is replaced on the next
    request. Requests from several threads are serialised. Call :meth:`close`
    when done; a finalizer also kills the child at garbage collection or exit.
    """

    def __init__(self, source: bytes, filename: str, limits: Limits = Limits(), trusted: Optional[bool] = None):
        self.filename = filename
        self.limits = limits
        self.mode = sandbox_mode(trusted)
        if self.mode == "refused":
            raise refused_error()
        self.sandboxed = self.mode == "sandboxed"
        self._lock = threading.RLock()
        self._state: dict[str, Any] = {
            "proc": None, "dir": tempfile.mkdtemp(prefix="sbi-upload-"), "owner": os.getpid(),
        }
        self._finalizer = weakref.finalize(self, _cleanup, self._state)
        self._model_path = os.path.join(self._state["dir"], "model.py")
        with open(self._model_path, "wb") as f:
            f.write(source)
        # private to this user: inside the sandbox "nobody" maps back to this user's uid
        os.chmod(self._model_path, 0o400)
        self.last_output = ""
        self.restarts = 0
        self._stopped = False
        _register(self)

    # -- process lifetime --------------------------------------------------------
    @property
    def alive(self) -> bool:
        proc = self._state.get("proc")
        return proc is not None and proc.poll() is None

    @property
    def pid(self) -> Optional[int]:
        proc = self._state.get("proc")
        return proc.pid if proc is not None else None

    def _spawn(self) -> subprocess.Popen:
        config = json.dumps(self.limits.child_config(self.sandboxed))
        workdir = os.path.join(self._state["dir"], "work")
        os.makedirs(workdir, exist_ok=True)
        stderr = open(os.path.join(self._state["dir"], "stderr.txt"), "wb")
        seccomp_r = None
        info_r = info_w = None
        try:
            if self.sandboxed:
                bwrap = _bwrap_path()
                assert bwrap
                seccomp_r = _seccomp_fd()
                info_r, info_w = os.pipe()
                cmd = bwrap_command(bwrap, self._model_path, str(CHILD_SCRIPT), self.limits, seccomp_r, info_w)
                cmd += [sys.executable, "-I", "-B", SANDBOX_CHILD, SANDBOX_MODEL, config]
                env, cwd = _child_env("/tmp"), "/"
            else:
                cmd = [sys.executable, "-I", "-B", str(CHILD_SCRIPT), self._model_path, config]
                env, cwd = _child_env(workdir), workdir
            proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env, cwd=cwd,
                close_fds=True, pass_fds=tuple(f for f in (seccomp_r, info_w) if f is not None),
                start_new_session=True,
            )
            proc.sandbox_info_fd = info_r  # type: ignore[attr-defined]
            info_r = None
        finally:
            stderr.close()
            for f in (seccomp_r, info_r, info_w):
                if f is not None:
                    os.close(f)
        assert proc.stdin is not None
        os.set_blocking(proc.stdin.fileno(), False)
        return proc

    def _boot_failure(self) -> str:
        try:
            with open(os.path.join(self._state["dir"], "stderr.txt"), "rb") as f:
                return f.read(2000).decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def start(self) -> dict[str, Any]:
        """(Re)start the child and run the upload; the hello message. Raises SimulatorError."""
        with self._lock:
            self._stop()
            self._state["proc"] = self._spawn()
            try:
                ready, _ = self._receive(time.monotonic() + BOOT_TIMEOUT_S + self.limits.timeout)
            except (_ChildGone, _Timeout):
                detail = self._boot_failure()
                self._stop()
                raise SimulatorError(
                    "The sandbox for uploaded code could not start" + (f": {detail}" if detail else "."),
                    kind="sandbox",
                ) from None
            if ready.get("event") != "ready":
                self._stop()
                raise SimulatorError("The sandbox for uploaded code did not start correctly.", kind="protocol")
            hello, _ = self._exchange(None, None, "load")
            return hello

    def _ensure_started(self) -> None:
        if not self.alive:
            self.restarts += 1
            self.start()

    def _stop(self) -> None:
        _kill(self._state.get("proc"))
        self._state["proc"] = None

    def close(self) -> None:
        """Kill the child (and everything it started) and remove the scratch folder."""
        with self._lock:
            self._finalizer()

    def __enter__(self) -> "SandboxRunner":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def stop(self) -> bool:
        """Kill the child now, from any thread (without waiting for a request in progress), and refuse
        further requests: the run it belongs to was cancelled. Returns whether a child was running.

        The request in progress then fails at once; the folder is removed by :meth:`close`.
        """
        self._stopped = True
        proc = self._state.get("proc")
        if proc is None or proc.returncode is not None or self._state.get("owner") != os.getpid():
            return False
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # not reaped yet (returncode None): the group id is still ours
        except (ProcessLookupError, PermissionError):
            return False
        return True

    # -- requests ----------------------------------------------------------------------
    def request(self, message: dict[str, Any], theta: np.ndarray, phase: str = "simulate",
                expect_k: Optional[int] = None) -> tuple[dict[str, Any], Optional[np.ndarray]]:
        """Send ``message`` and ``theta``; the reply and, on success, its checked array."""
        with self._lock:
            if self._finalizer.alive is False:
                raise SimulatorError("This uploaded simulator was closed.", kind="closed")
            if self._stopped:
                raise SimulatorError("This uploaded simulator was stopped: its run was cancelled.", kind="closed")
            self._ensure_started()
            max_array = theta.shape[0] * expect_k * 8 + 4096 if expect_k else 0
            reply, array = self._exchange(message, np.ascontiguousarray(theta, dtype=np.float64), phase, max_array)
            if array is not None and expect_k is not None:
                self._check_array(array, theta.shape[0], expect_k)
            return reply, array

    def _check_array(self, array: np.ndarray, n: int, k: int) -> None:
        if array.dtype != np.float64 or array.shape != (n, k):
            self._stop()
            raise SimulatorError(
                f"simulate returned shape {array.shape} for {n} parameter sets; expected ({n}, {k}).",
                kind="shape",
            )

    def _exchange(self, message: Optional[dict[str, Any]], theta: Optional[np.ndarray],
                  phase: str, max_array: int = 0) -> tuple[dict[str, Any], Optional[np.ndarray]]:
        deadline = time.monotonic() + self.limits.timeout
        try:
            if message is not None:
                self._send_json(message, deadline)
            if theta is not None:
                self._send_array(theta, deadline)
            reply, array = self._receive(deadline, max_array)
        except _Timeout:
            self._stop()
            raise SimulatorError(self._timeout_message(phase, theta), kind="timeout") from None
        except _ChildGone:
            proc = self._state.get("proc")
            code = _exit_status(proc, 5.0) if proc is not None else None
            self._stop()
            raise error_from_exit(code, self.sandboxed, self.limits) from None
        except (ValueError, KeyError, TypeError, RecursionError) as exc:  # incl. JSON/npy/UTF-8 errors
            self._stop()
            raise SimulatorError(f"The simulator sent a garbled reply ({exc}).", kind="protocol") from None
        self.last_output = str(reply.get("output", ""))[:100_000]
        if not reply.get("ok"):
            info = reply.get("error") if isinstance(reply.get("error"), dict) else {}
            if info.get("kind") == "memory":
                self._stop()  # a process that ran out of memory is best replaced
            raise error_from_child(info, self.filename, self.limits, phase, self.sandboxed, self.last_output)
        return reply, array

    def _timeout_message(self, phase: str, theta: Optional[np.ndarray]) -> str:
        t = f"{self.limits.timeout:g} s"
        if phase == "load":
            return f"Running the file took longer than {t} and was stopped (an endless loop at the top level?)."
        if phase == "probe" or theta is None:
            return f"The simulator took longer than {t} for its first test simulations and was stopped."
        n = theta.shape[0]
        return f"The simulator took longer than {t} for a batch of {n} simulation{'s' if n != 1 else ''} and was stopped."

    # -- framing ------------------------------------------------------------------------
    def _proc(self) -> subprocess.Popen:
        proc = self._state.get("proc")
        if proc is None:
            raise _ChildGone
        return proc

    def _write(self, data: bytes, deadline: float) -> None:
        proc = self._proc()
        assert proc.stdin is not None
        fd = proc.stdin.fileno()
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Timeout
            _, w, _ = select.select([], [fd], [], left)
            if not w:
                continue
            try:
                view = view[os.write(fd, view[: 1 << 16]) :]
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                raise _ChildGone from None

    def _read(self, n: int, deadline: float) -> bytes:
        proc = self._proc()
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        parts: list[bytes] = []
        while n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Timeout
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, min(n, 1 << 20))
            if not chunk:
                raise _ChildGone
            parts.append(chunk)
            n -= len(chunk)
        return b"".join(parts)

    def _send_json(self, message: dict[str, Any], deadline: float) -> None:
        payload = json.dumps(message).encode()
        self._write(HEADER.pack(KIND_JSON, len(payload)) + payload, deadline)

    def _send_array(self, array: np.ndarray, deadline: float) -> None:
        buf = io.BytesIO()
        np.save(buf, array, allow_pickle=False)
        payload = buf.getvalue()
        self._write(HEADER.pack(KIND_ARRAY, len(payload)) + payload, deadline)

    def _frame(self, deadline: float, kind: bytes, max_bytes: int) -> bytes:
        """The payload of the next frame, which must be of ``kind`` and at most ``max_bytes``."""
        got, length = HEADER.unpack(self._read(HEADER.size, deadline))
        if got != kind or length > min(max_bytes, MAX_FRAME_BYTES):
            raise ValueError("bad frame header")
        return self._read(length, deadline)

    def _receive(self, deadline: float, max_array: int = 0) -> tuple[dict[str, Any], Optional[np.ndarray]]:
        """One JSON reply, plus the array frame (at most ``max_array`` bytes) after a successful simulate."""
        payload = self._frame(deadline, KIND_JSON, MAX_JSON_BYTES)
        reply = json.loads(payload.decode("utf-8"))
        if not isinstance(reply, dict):
            raise ValueError("reply is not an object")
        array = None
        if reply.get("ok") and "shape" in reply:
            payload = self._frame(deadline, KIND_ARRAY, max_array)
            array = np.load(io.BytesIO(payload), allow_pickle=False)
            if not isinstance(array, np.ndarray):
                raise ValueError("not an array")
        return reply, array
