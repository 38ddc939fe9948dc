"""The program that runs an uploaded simulator inside the sandboxed child process.

The parent (:mod:`sbi_core.sandbox.runner`) starts this file as a script, usually
inside a bubblewrap sandbox where only the Python installation, this file
(``/sandbox/child.py``) and the upload (``/sandbox/model.py``) are visible.
It must therefore be self-contained: it imports only the standard library and
numpy, never ``sbi_core``.

Protocol (the child's stdin and stdout, duplicated to private descriptors
before any user code runs; fds 0, 1 and 2 then point at ``/dev/null``):

* every message is a *frame*: one kind byte (``J`` for UTF-8 JSON, ``N`` for
  an array in ``.npy`` format, read with ``allow_pickle=False``) and an
  8-byte big-endian payload length, then the payload. Nothing is pickled.
* on start the child sends ``{"event": "ready"}`` once numpy is imported and
  the resource limits are set, then runs the upload and sends a ``hello``
  (``PRIOR``, ``OBSERVATION``, docstring) or an error.
* requests are ``{"cmd": "probe" | "simulate" | "exit", ...}``, the first two
  followed by one array frame ``theta`` of shape ``(n, d)``; replies are one
  JSON frame ``{"ok": true, ...}`` followed by an array frame, or
  ``{"ok": false, "error": {...}}``.

What the user prints goes to a capped in-memory buffer, returned with each
reply, so prints can never corrupt the protocol or fill a pipe.
"""

from __future__ import annotations

import io
import json
import os
import random
import resource
import struct
import sys
import time
import types
from typing import Any, Callable, Optional

HEADER = struct.Struct(">cQ")  # kind byte, payload length
KIND_JSON = b"J"
KIND_ARRAY = b"N"
MAX_FRAME_BYTES = 512 * 1024 * 1024
OUTPUT_CAP_BYTES = 64 * 1024
MODEL_MODULE = "model"
# exception types that usually mean "called with the wrong shape"
_SHAPE_ERRORS = ("ValueError", "IndexError", "TypeError")


# ---- framing -------------------------------------------------------------
def read_exact(fd: int, n: int) -> bytes:
    """Read exactly ``n`` bytes from ``fd``; ``EOFError`` if the parent went away."""
    parts: list[bytes] = []
    left = n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def read_frame(fd: int) -> tuple[bytes, bytes]:
    kind, length = HEADER.unpack(read_exact(fd, HEADER.size))
    if length > MAX_FRAME_BYTES:
        raise ValueError("frame too large")
    return kind, read_exact(fd, length)


def write_frame(fd: int, kind: bytes, payload: bytes) -> None:
    write_all(fd, HEADER.pack(kind, len(payload)) + payload)


# ---- captured prints -----------------------------------------------------
class CappedOutput(io.TextIOBase):
    """A text stream keeping the first ``cap`` characters written and counting the rest."""

    def __init__(self, cap: int = OUTPUT_CAP_BYTES):
        super().__init__()
        self.cap = cap
        self.parts: list[str] = []
        self.kept = 0
        self.total = 0
        self.buffer = _CappedBytes(self)

    def write(self, s: Any) -> int:  # type: ignore[override]
        s = s if isinstance(s, str) else str(s)
        self.total += len(s)
        room = self.cap - self.kept
        if room > 0:
            piece = s[:room]
            self.parts.append(piece)
            self.kept += len(piece)
        return len(s)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def flush(self) -> None:
        pass

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def take(self) -> tuple[str, int]:
        """The kept text and the total count since the last call; then reset."""
        out = "".join(self.parts), self.total
        self.parts, self.kept, self.total = [], 0, 0
        return out


class _CappedBytes(io.RawIOBase):
    """``sys.stdout.buffer`` for code that writes bytes."""

    def __init__(self, text: CappedOutput):
        super().__init__()
        self._text = text

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:  # type: ignore[override]
        data = bytes(b)
        self._text.write(data.decode("utf-8", "replace"))
        return len(data)


# ---- limits ----------------------------------------------------------------
def _set_limit(which: int, value: int) -> None:
    try:
        resource.setrlimit(which, (value, value))
    except (ValueError, OSError):
        pass


def apply_limits(limits: dict[str, Any]) -> None:
    """Hard resource limits for everything that runs from now on."""
    mb = 1024 * 1024
    _set_limit(resource.RLIMIT_CORE, 0)
    _set_limit(resource.RLIMIT_AS, int(limits["memory_mb"]) * mb)
    _set_limit(resource.RLIMIT_FSIZE, int(limits["fsize_mb"]) * mb)
    _set_limit(resource.RLIMIT_NOFILE, int(limits["nofile"]))
    if limits.get("nproc"):
        _set_limit(resource.RLIMIT_NPROC, int(limits["nproc"]))


def set_cpu_budget(seconds: float) -> None:
    """Soft CPU limit ``seconds`` from now (SIGXCPU); a backstop to the parent's clock."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    now = used.ru_utime + used.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(now + seconds) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    except (ValueError, OSError):
        pass


# ---- describing the user's errors -----------------------------------------
def _safe_str(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a hostile __str__
        text = ""
    return text[:2000]


def user_line(exc: BaseException, path: str, lines: list[str]) -> tuple[Optional[int], Optional[str]]:
    """Line number and source text of the deepest traceback frame in the upload."""
    lineno = None
    tb = exc.__traceback__
    while tb is not None:  # not traceback.extract_tb: a RecursionError has ~1e6 frames
        if tb.tb_frame.f_code.co_filename == path:
            lineno = tb.tb_lineno
        tb = tb.tb_next
    if lineno is None:
        return None, None
    text = lines[lineno - 1].strip() if lineno and 0 < lineno <= len(lines) else None
    return lineno, text


def describe(exc: BaseException, path: str, lines: list[str]) -> dict[str, Any]:
    """A JSON-able description of an exception raised by the upload."""
    line, source = user_line(exc, path, lines)
    info: dict[str, Any] = {
        "kind": "exception",
        "type": type(exc).__name__,
        "message": _safe_str(exc),
        "line": line,
        "source": source,
    }
    if isinstance(exc, SystemExit):
        info["kind"] = "exit"
        code = exc.code
        info["message"] = code if isinstance(code, (int, type(None))) else str(code)[:500]
    elif isinstance(exc, MemoryError):
        info["kind"] = "memory"
    elif _looks_out_of_memory(info["message"]):
        info["kind"] = "memory"
    elif isinstance(exc, ModuleNotFoundError):
        info["kind"] = "import"
        info["name"] = exc.name
    elif isinstance(exc, RecursionError):
        info["kind"] = "recursion"
    elif isinstance(exc, OSError):
        info["os_error"] = True
        info["kind"] = {12: "memory", 27: "file", 28: "disk_full"}.get(exc.errno or 0, "exception")
    return info


def _looks_out_of_memory(message: str) -> bool:
    """Loading a big compiled library under the address-space limit fails like this."""
    text = message.lower()
    return any(s in text for s in ("failed to map segment", "cannot allocate memory", "bad_alloc", "out of memory"))


def problem(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "message": message, **extra}


# ---- converting what simulate returned -------------------------------------
class OutputProblem(Exception):
    """What simulate returned cannot be used; ``info`` says why."""

    def __init__(self, info: dict[str, Any]):
        super().__init__(info["message"])
        self.info = info


def as_numbers(value: Any, np: Any) -> Any:
    """``value`` as a float64 array, or :class:`OutputProblem`."""
    if value is None:
        raise OutputProblem(problem("none", "returned nothing (None); is there a 'return' at the end of simulate?"))
    if isinstance(value, (str, bytes)):
        raise OutputProblem(problem("text", "returned text, not numbers"))
    try:
        arr = np.asarray(value)
    except ValueError:
        raise OutputProblem(problem("ragged", "returned lists of different lengths; every simulation must return the same number of values")) from None
    except Exception:
        raise OutputProblem(problem("type", f"returned a {type(value).__name__}, not numbers")) from None
    kind = arr.dtype.kind
    if kind in "US":
        raise OutputProblem(problem("text", "returned text, not numbers"))
    if kind == "c":
        raise OutputProblem(problem("type", "returned complex numbers; return real numbers (e.g. abs(z) or z.real)"))
    if kind == "O":
        if any(isinstance(v, (str, bytes)) for v in arr.reshape(-1)[:1000]):
            raise OutputProblem(problem("text", "returned text, not numbers"))
        try:
            return arr.astype(np.float64)
        except Exception:
            raise OutputProblem(problem("type", "returned something that is not a list of numbers")) from None
    if kind not in "biuf":
        raise OutputProblem(problem("type", f"returned values of type {arr.dtype}, not numbers"))
    return arr.astype(np.float64, copy=False)


def as_batch(value: Any, n: int, k: Optional[int], np: Any) -> Any:
    """A batched result as ``(n, k)``; ``(n,)`` counts as ``k = 1``."""
    arr = as_numbers(value, np)
    if arr.ndim == 1 and arr.shape[0] == n and k in (None, 1):
        arr = arr.reshape(n, 1)
    if arr.ndim != 2 or arr.shape[0] != n or (k is not None and arr.shape[1] != k):
        want = f" ({n}, {k})" if k is not None else ""
        raise OutputProblem(problem(
            "shape",
            f"returned shape {tuple(arr.shape)} for {n} parameter sets" + (f"; expected{want}" if want else ""),
            shape=list(arr.shape),
        ))
    return arr


def as_row(value: Any, k: Optional[int], np: Any) -> Any:
    """A per-sample result as ``(k,)``; a single number counts as ``k = 1``."""
    arr = as_numbers(value, np)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or (k is not None and arr.shape[0] != k):
        want = f"; expected {k} numbers" if k is not None else ""
        raise OutputProblem(problem(
            "shape", f"returned shape {tuple(arr.shape)} for one parameter set{want}", shape=list(arr.shape)
        ))
    return arr


# ---- the model -------------------------------------------------------------
class Model:
    """The executed upload and the code that calls its ``simulate``."""

    def __init__(self, path: str, np: Any):
        self.path = path
        self.np = np
        self.lines: list[str] = []
        self.module: Optional[types.ModuleType] = None
        self.sample_shape: Optional[list[int]] = None  # one simulation's array shape, when not flat

    def load(self) -> dict[str, Any]:
        """Run the file; the hello message (or an error) for the parent."""
        with open(self.path, "rb") as f:
            source = f.read()
        self.lines = source.decode("utf-8", "replace").splitlines()
        try:
            code = compile(source, self.path, "exec", dont_inherit=True)
        except SyntaxError as exc:
            return {"ok": False, "error": problem(
                "syntax", exc.msg or "invalid syntax", line=exc.lineno,
                source=(exc.text or "").strip() or None, type=type(exc).__name__,
            )}
        except ValueError as exc:  # e.g. null bytes
            return {"ok": False, "error": problem("syntax", _safe_str(exc), line=None, source=None, type="ValueError")}
        module = types.ModuleType(MODEL_MODULE)
        module.__file__ = self.path
        sys.modules[MODEL_MODULE] = module
        try:
            exec(code, module.__dict__)
        except BaseException as exc:  # noqa: BLE001 -- everything the upload does is reported
            return {"ok": False, "error": describe(exc, self.path, self.lines)}
        self.module = module
        return self._hello(module)

    def _hello(self, module: types.ModuleType) -> dict[str, Any]:
        fn = module.__dict__.get("simulate")
        if fn is None:
            return {"ok": False, "error": problem("missing_simulate", "the file has no function named simulate")}
        if not callable(fn):
            return {"ok": False, "error": problem(
                "missing_simulate", f"'simulate' in the file is not a function (it is of type {type(fn).__name__})")}
        hello: dict[str, Any] = {"ok": True, "event": "hello"}
        for key, name in (("prior", "PRIOR"), ("observation", "OBSERVATION"), ("data_shape", "DATA_SHAPE")):
            if name in module.__dict__:
                try:
                    hello[key] = json.loads(json.dumps(module.__dict__[name], default=self._jsonable, allow_nan=False))
                except (TypeError, ValueError) as exc:
                    hello[key + "_error"] = _safe_str(exc)[:300] or "not plain numbers and text"
        doc = module.__dict__.get("__doc__")
        if isinstance(doc, str):
            hello["doc"] = doc.strip()[:4000]
        return hello

    def _jsonable(self, obj: Any) -> Any:
        if isinstance(obj, self.np.ndarray):
            return obj.tolist()
        if isinstance(obj, self.np.generic):
            return obj.item()
        if isinstance(obj, tuple):
            return list(obj)
        raise TypeError(f"{type(obj).__name__} is not plain numbers or text")

    # -- calling simulate ----------------------------------------------------
    def seed(self, base: int, index: int, stream: int) -> None:
        """Seed numpy's and ``random``'s global RNGs from ``(base, index)``."""
        np = self.np
        state = np.random.SeedSequence([int(base), int(index), int(stream)]).generate_state(2)
        np.random.seed(state)
        random.seed((int(state[0]) << 32) | int(state[1]))
        torch = sys.modules.get("torch")
        if torch is not None:
            try:
                torch.manual_seed((int(state[0]) << 31) ^ int(state[1]))
            except Exception:
                pass

    def call(self, x: Any) -> Any:
        assert self.module is not None
        return self.module.__dict__["simulate"](x.copy())

    def _flat(self, value: Any, lead: int) -> Any:
        """``value`` as numbers with the dimensions after the first ``lead`` flattened (C order): a
        simulation may be a series ``(C, T)``, an image ``(C, H, W)`` or trials ``(M, D)``; the parent
        gets ``K`` numbers and, from the probe, the shape they fold back into (``sample_shape``)."""
        arr = as_numbers(value, self.np)
        if arr.ndim > lead + 1:
            self.sample_shape = [int(d) for d in arr.shape[lead:]]
            arr = arr.reshape(*arr.shape[:lead], -1)
        return arr

    def batched(self, theta: Any, k: Optional[int], base: int, index: int) -> Any:
        self.seed(base, index, 0)
        return as_batch(self._flat(self.call(theta), 1), theta.shape[0], k, self.np)

    def per_sample(self, theta: Any, k: Optional[int], base: int, offset: int) -> Any:
        rows = []
        for i in range(theta.shape[0]):
            self.seed(base, offset + i, 1)
            rows.append(as_row(self._flat(self.call(theta[i]), 0), k, self.np))
        if not rows:
            return self.np.zeros((0, k or 0))
        return self.np.stack(rows)

    def attempt(self, fn: Callable[[], Any]) -> tuple[Any, Optional[dict[str, Any]]]:
        try:
            return fn(), None
        except OutputProblem as exc:
            return None, exc.info
        except BaseException as exc:  # noqa: BLE001
            return None, describe(exc, self.path, self.lines)

    def probe(self, theta: Any) -> dict[str, Any]:
        """Find out whether simulate is batched or per-sample, and its output size K.

        Batched is tried on ``n - 1`` and ``n`` rows (two sizes, so a per-sample
        function cannot pass by coincidence); per-sample on two single rows.
        """
        n = theta.shape[0]
        start = time.perf_counter()
        self.sample_shape = None

        def try_batched() -> Any:
            a = self.batched(theta[: n - 1], None, 0, 0)
            self.batched(theta, a.shape[1], 0, 1)
            return a.shape[1]

        k, b_err = self.attempt(try_batched)
        if b_err is None:
            return {"ok": True, "mode": "batched", "k": int(k), "seconds": time.perf_counter() - start, "rows": 2 * n - 1,
                    "sample_shape": self.sample_shape}
        if b_err["kind"] in ("exit", "memory", "recursion"):
            return {"ok": False, "error": b_err}

        def try_single() -> Any:
            a = self.per_sample(theta[:1], None, 0, 0)
            self.per_sample(theta[1:2], a.shape[1], 0, 1)
            return a.shape[1]

        start = time.perf_counter()
        self.sample_shape = None
        k, s_err = self.attempt(try_single)
        if s_err is None:
            return {"ok": True, "mode": "per-sample", "k": int(k), "seconds": (time.perf_counter() - start) / 2, "rows": 1,
                    "sample_shape": self.sample_shape}
        return {"ok": False, "error": pick_error(b_err, s_err)}


def pick_error(batched: dict[str, Any], single: dict[str, Any]) -> dict[str, Any]:
    """The more useful of the two probe failures for the person who wrote the file."""
    if single["kind"] in ("exit", "memory", "recursion"):
        return single
    if batched["kind"] == "exception" and single["kind"] == "exception":
        if batched["type"] in _SHAPE_ERRORS and single["type"] not in _SHAPE_ERRORS:
            return single
        return batched
    if batched["kind"] in ("shape", "text", "type", "none", "ragged"):
        # a per-sample function fed a batch can return nonsense; trust the
        # per-sample attempt unless it failed the way a batched function given
        # one row does (indexing or shape errors)
        shapeish = single["kind"] == "shape" or single.get("type") in _SHAPE_ERRORS
        if not shapeish:
            return single
    return batched


# ---- main loop ---------------------------------------------------------------
class Server:
    """Reads requests from the parent and answers them."""

    def __init__(self, fd_in: int, fd_out: int, model: Model, capture: CappedOutput, timeout: float):
        self.fd_in = fd_in
        self.fd_out = fd_out
        self.model = model
        self.capture = capture
        self.timeout = timeout

    def send(self, reply: dict[str, Any], array: Any = None) -> None:
        text, total = self.capture.take()
        reply["output"] = text
        reply["output_chars"] = total
        write_frame(self.fd_out, KIND_JSON, json.dumps(reply).encode())
        if array is not None:
            buf = io.BytesIO()
            self.model.np.save(buf, self.model.np.ascontiguousarray(array, dtype=self.model.np.float64), allow_pickle=False)
            write_frame(self.fd_out, KIND_ARRAY, buf.getvalue())

    def receive_array(self) -> Any:
        kind, payload = read_frame(self.fd_in)
        if kind != KIND_ARRAY:
            raise ValueError("expected an array frame")
        return self.model.np.load(io.BytesIO(payload), allow_pickle=False)

    def handle(self, request: dict[str, Any]) -> None:
        cmd = request.get("cmd")
        theta = self.receive_array()
        set_cpu_budget(self.timeout + 2)
        if cmd == "probe":
            self.send(self.model.probe(theta))
            return
        mode, k = request["mode"], int(request["k"])
        base, index = int(request["seed"]), int(request["index"])
        if mode == "batched":
            out, err = self.model.attempt(lambda: self.model.batched(theta, k, base, index))
        else:
            out, err = self.model.attempt(lambda: self.model.per_sample(theta, k, base, index))
        if err is not None:
            self.send({"ok": False, "error": err})
        else:
            self.send({"ok": True, "shape": list(out.shape)}, out)

    def serve(self) -> None:
        while True:
            try:
                kind, payload = read_frame(self.fd_in)
            except EOFError:
                return
            request = json.loads(payload)
            if request.get("cmd") == "exit":
                return
            self.handle(request)


def die_with_parent(parent: Optional[int]) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
    except Exception:  # not Linux, or no libc: the parent's pipes closing still ends us
        return
    if parent and os.getppid() != parent:  # the parent died before the prctl
        os._exit(1)


def _take_protocol_fds() -> tuple[int, int]:
    """Keep private copies of stdin/stdout for the protocol; point 0, 1 at /dev/null."""
    fd_in, fd_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    return fd_in, fd_out


def main(argv: list[str]) -> int:
    model_path, config = argv[1], json.loads(argv[2])
    die_with_parent(config.get("parent_pid"))
    fd_in, fd_out = _take_protocol_fds()
    import numpy as np  # after the fds are safe, before the limits (its import is big)

    apply_limits(config["limits"])
    # from here on nothing reaches the real stderr either
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    capture = CappedOutput()
    sys.stdout = sys.stderr = capture  # type: ignore[assignment]
    sys.stdin = io.StringIO("")
    model = Model(model_path, np)
    server = Server(fd_in, fd_out, model, capture, float(config["timeout"]))
    server.send({"ok": True, "event": "ready"})
    set_cpu_budget(float(config["timeout"]) + 2)
    hello = model.load()
    server.send(hello)
    if hello.get("ok"):
        server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
