"""Hostile and broken uploads: each gives a clear SimulatorError, quickly, and the host is untouched.

Each case writes an upload into ``tmp_path`` and checks three things: the
error's message names what happened in the user's words, the parent process
keeps working, and the time until the upload was stopped is bounded.

Isolation checks (files, network, processes) need the bubblewrap sandbox and
are skipped, with the reason, where ``bwrap`` is missing or cannot start.
Everything else runs with ``trusted=True`` so it also works without bwrap
(the sandbox is still used whenever it is available).
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import torch

from python_child import child_env
from sbi_core.sandbox import runner as sandbox
from sbi_core.simulators.uploaded import (
    SimulatorError,
    load_simulator,
    sandbox_mode,
    sandbox_mode_description,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"
SANDBOXED = sandbox_mode(trusted=False) == "sandboxed"
needs_bwrap = pytest.mark.skipif(
    not SANDBOXED, reason="bubblewrap (bwrap) is not installed or cannot create namespaces on this machine"
)
PRIOR = 'PRIOR = [{"name": "a", "dist": "uniform", "low": 0, "high": 1}, {"name": "b", "dist": "normal", "loc": 0, "scale": 1}]\n'


def upload(tmp_path: Path, body: str, name: str = "model.py", prior: bool = True) -> Path:
    path = tmp_path / name
    path.write_text((PRIOR if prior else "") + "import numpy as np\n" + textwrap.dedent(body))
    return path


def fails(path: Path, *words: str, within: float, **kw) -> SimulatorError:
    """Load ``path`` (and simulate 50 draws); the SimulatorError, checked for ``words`` and time."""
    kw.setdefault("trusted", True)
    start = time.perf_counter()
    with pytest.raises(SimulatorError) as info:
        sim = load_simulator(path, **kw)
        try:
            sim.simulate(sim.prior.sample((50,)), seed=0)
        finally:
            sim.close()
    elapsed = time.perf_counter() - start
    message = str(info.value)
    print(f"\n[hostile] {path.stem}: {info.value.kind} after {elapsed:.2f}s: {message}")
    for w in words:
        assert w.lower() in message.lower(), message
    assert elapsed < within, f"took {elapsed:.1f}s"
    return info.value


def parent_still_fine() -> None:
    sim = load_simulator(EXAMPLES / "pendulum.py", trusted=True)
    try:
        assert sim.simulate(sim.prior.sample((10,)), seed=1).shape == (10, 4)
    finally:
        sim.close()


def processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline and "pytest" not in cmdline:
                found.append(int(entry))
    return found


def gone(marker: str, within: float = 5.0) -> bool:
    """Whether no host process has ``marker`` in its command line (SIGKILL takes a moment)."""
    deadline = time.monotonic() + within
    while processes_with(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# ---- broken files -----------------------------------------------------------------
def test_syntax_error_reports_line(tmp_path):
    path = upload(tmp_path, "def simulate(theta):\n    return theta +\n")
    err = fails(path, "syntax error", "line 4", within=10)
    assert err.kind == "syntax" and err.line == 4


def test_missing_simulate(tmp_path):
    err = fails(upload(tmp_path, "def simulat(theta):\n    return theta\n"), "no function named simulate", within=10)
    assert err.kind == "missing_simulate"


def test_simulate_not_callable(tmp_path):
    fails(upload(tmp_path, "simulate = 3\n"), "simulate", "not a function", within=10)


def test_module_not_installed(tmp_path):
    err = fails(upload(tmp_path, "import foo_not_installed_xyz\ndef simulate(t):\n    return t\n"),
                "imports 'foo_not_installed_xyz'", "not installed", within=10)
    assert err.line == 3


def test_exception_names_type_line_and_source(tmp_path):
    path = upload(tmp_path, "def simulate(theta):\n    x = theta * 2\n    return undefined_name + x\n")
    err = fails(path, "NameError", "undefined_name", "line 5", within=10)
    assert err.source_line == "return undefined_name + x"


def test_no_prior_needs_prior_argument(tmp_path):
    path = upload(tmp_path, "def simulate(theta):\n    return theta\n", prior=False)
    fails(path, "no PRIOR", "prior editor", within=10)
    sim = load_simulator(path, trusted=True, prior=[{"name": "z", "dist": "normal", "loc": 0, "scale": 1}])
    try:
        assert sim.param_names == ["z"] and sim.x_dim == 1
    finally:
        sim.close()


def test_observation_length_mismatch(tmp_path):
    path = upload(tmp_path, "OBSERVATION = [1, 2, 3]\ndef simulate(theta):\n    return np.zeros((len(theta), 4))\n")
    fails(path, "OBSERVATION has 3 numbers but simulate returns 4", within=10)


# ---- wrong outputs --------------------------------------------------------------------
def test_wrong_shape(tmp_path):
    path = upload(tmp_path, "def simulate(theta):\n    return theta[1:, :]  # drops a row\n")
    err = fails(path, "returned shape (3, 2) for 4 parameter sets", within=10)
    assert err.kind == "shape"


def test_wrong_shape_only_later(tmp_path):
    # fine for the probe's few rows, wrong for a big batch
    path = upload(tmp_path, "def simulate(theta):\n    return np.zeros((min(len(theta), 20), 2))\n")
    fails(path, "returned shape (20, 2) for 50 parameter sets", within=10)


def test_text_instead_of_numbers(tmp_path):
    path = upload(tmp_path, "def simulate(theta):\n    return [['a', 'b']] * len(theta)\n")
    err = fails(path, "returned text, not numbers", within=10)
    assert err.kind == "text"


def test_none_returned(tmp_path):
    fails(upload(tmp_path, "def simulate(theta):\n    x = theta * 2\n"), "None", "return", within=10)


def test_nan_rows_are_not_errors(tmp_path):
    path = upload(tmp_path, """
        def simulate(theta):
            x = np.stack([theta[:, 0], theta[:, 1] ** 2], axis=1)
            x[theta[:, 0] > 0.5] = np.nan
            x[theta[:, 0] < 0.1] = np.inf
            return x
    """)
    sim = load_simulator(path, trusted=True)
    try:
        theta = sim.prior.sample((1000,), generator=torch.Generator().manual_seed(0))
        x = sim.simulate(theta, seed=0)
        assert x.shape == (1000, 2)
        assert torch.isnan(x[theta[:, 0] > 0.5]).all()
        assert torch.isfinite(x[(theta[:, 0] <= 0.5) & (theta[:, 0] >= 0.1)]).all()
    finally:
        sim.close()


# ---- runaway code ----------------------------------------------------------------------
@pytest.mark.parametrize("value", ["np.nan", "np.inf", "1e300"])  # 1e300: infinite as float32
def test_all_nan_simulator_is_refused(tmp_path, value):
    """Accepted with a warning before; nothing of it could ever be trained on."""
    path = upload(tmp_path, f"def simulate(theta):\n    return np.full((len(theta), 3), {value})\n")
    err = fails(path, "NaN or infinity for all 20 test simulations", "narrow the prior", within=15)
    assert err.kind == "all_nan"
    # most rows NaN is still fine: they are left out and counted
    body = "def simulate(theta):\n    x = theta.copy()\n    x[1:] = np.nan\n    return x\n"
    sim = load_simulator(upload(tmp_path, body, name="mostly_nan.py"), trusted=True)
    sim.close()


def test_infinite_loop_at_load_times_out(tmp_path):
    err = fails(upload(tmp_path, "while True:\n    pass\n"), "longer than 2 s", within=8, timeout=2)
    assert err.kind == "timeout"


def test_infinite_loop_in_simulate_times_out_then_recovers(tmp_path):
    path = upload(tmp_path, """
        def simulate(theta):
            if (theta[:, 0] > 0.99).any():
                while True:
                    pass
            return theta * 2
    """)
    sim = load_simulator(path, trusted=True, timeout=2)
    try:
        pid = sim.simulate_fn.runner.pid
        start = time.perf_counter()
        with pytest.raises(SimulatorError, match="longer than 2 s") as info:
            sim.simulate(torch.tensor([[0.995, 0.0]]))
        elapsed = time.perf_counter() - start
        print(f"\n[hostile] endless loop in simulate: {info.value.kind} after {elapsed:.2f}s: {info.value}")
        assert elapsed < 6
        x = sim.simulate(torch.tensor([[0.5, 1.0]]))  # a fresh child takes over
        assert torch.allclose(x, torch.tensor([1.0, 2.0]))
        assert sim.simulate_fn.runner.pid != pid
    finally:
        sim.close()
    parent_still_fine()


@pytest.mark.slow
def test_too_much_memory(tmp_path):
    err = fails(upload(tmp_path, "def simulate(theta):\n    big = np.ones((len(theta), 10**9))\n    return big\n"),
                "more than 256 MB of memory", within=15, memory_mb=256)
    assert err.kind == "memory"


@pytest.mark.slow
def test_too_much_memory_pure_python(tmp_path):
    body = "def simulate(theta):\n    chunks = []\n    while True:\n        chunks.append(bytearray(10**7))\n"
    fails(upload(tmp_path, body), "more than 256 MB of memory", within=15, memory_mb=256)
    parent_still_fine()


def test_printing_megabytes_is_capped(tmp_path):
    path = upload(tmp_path, """
        import sys, os
        print("hello at load")
        def simulate(theta):
            for _ in range(50):
                print("x" * 100_000)
                sys.stderr.write("e" * 100_000)
            os.write(1, b"raw bytes to fd 1" * 1000)
            os.write(2, b"raw bytes to fd 2" * 1000)
            return theta
    """)
    start = time.perf_counter()
    sim = load_simulator(path, trusted=True)
    try:
        x = sim.simulate(torch.zeros(3, 2))
        elapsed = time.perf_counter() - start
        print(f"\n[hostile] printing 10 MB: worked after {elapsed:.2f}s, kept {len(sim.simulate_fn.last_output)} chars")
        assert x.shape == (3, 2)
        assert len(sim.simulate_fn.last_output) <= 64 * 1024
        assert elapsed < 10
    finally:
        sim.close()


@pytest.mark.slow
def test_garbage_on_protocol_fds(tmp_path):
    path = upload(tmp_path, """
        import os
        def simulate(theta):
            if theta[0, 0] > 0.99:
                for fd in range(3, 40):
                    try:
                        os.write(fd, b"\\xff" * 64)
                    except OSError:
                        pass
            return theta
    """)
    sim = load_simulator(path, trusted=True, timeout=3)
    try:
        with pytest.raises(SimulatorError) as info:
            sim.simulate(torch.tensor([[0.995, 0.0]]))
        print(f"\n[hostile] garbage on protocol fds: {info.value.kind}: {info.value}")
        assert sim.simulate(torch.tensor([[0.5, 1.0]])).shape == (1, 2)
    finally:
        sim.close()


# ---- leaving, crashing ------------------------------------------------------------------
def test_sys_exit(tmp_path):
    err = fails(upload(tmp_path, "import sys\ndef simulate(theta):\n    sys.exit(3)\n"),
                "exited", "instead of returning", "exit code 3", within=10)
    assert err.kind == "exit"


def test_sys_exit_at_load(tmp_path):
    fails(upload(tmp_path, "import sys\nsys.exit(0)\n"), "exited", "instead of returning", within=10)


def test_os_exit(tmp_path):
    err = fails(upload(tmp_path, "import os\ndef simulate(theta):\n    os._exit(3)\n"),
                "exited", "instead of returning", within=10)
    assert err.kind == "exit"


def test_segfault(tmp_path):
    err = fails(upload(tmp_path, "import ctypes\ndef simulate(theta):\n    ctypes.string_at(0)\n"),
                "crashed", "segmentation fault", within=10)
    assert err.kind == "crash"
    parent_still_fine()


def test_crash_then_next_call_restarts(tmp_path):
    path = upload(tmp_path, """
        import ctypes
        def simulate(theta):
            if (theta[:, 0] > 0.99).any():
                ctypes.string_at(0)
            return theta + 1
    """)
    sim = load_simulator(path, trusted=True)
    try:
        with pytest.raises(SimulatorError, match="segmentation fault"):
            sim.simulate(torch.tensor([[0.995, 0.0]]))
        assert torch.allclose(sim.simulate(torch.tensor([[0.0, 0.0]])), torch.ones(2))
        assert sim.simulate_fn.runner.restarts == 1
    finally:
        sim.close()


# ---- isolation (needs bwrap) ---------------------------------------------------------------
@needs_bwrap
def test_os_system_does_not_touch_host(tmp_path):
    marker = tmp_path / "touched_by_upload"
    path = upload(tmp_path, f"""
        import os
        status = os.system("touch {marker} /tmp/{marker.name}")
        def simulate(theta):
            return np.full((len(theta), 1), float(status))
    """)
    sim = load_simulator(path)
    try:
        status = float(sim.simulate(torch.zeros(2)))
        print(f"\n[hostile] os.system: returned {status} inside the sandbox; host file exists: {marker.exists()}")
    finally:
        sim.close()
    assert not marker.exists() and not Path("/tmp", marker.name).exists()


@needs_bwrap
def test_subprocess_is_refused(tmp_path):
    marker = tmp_path / "made_by_subprocess"
    path = upload(tmp_path, f"import subprocess\nsubprocess.run(['touch', '{marker}'])\ndef simulate(t):\n    return t\n")
    fails(path, "PermissionError", "cannot start programs", within=10, trusted=False)
    assert not marker.exists()


@needs_bwrap
@pytest.mark.parametrize("target", ["workdir", "tmp_path", "app"])
def test_writing_outside_scratch_fails(tmp_path, target):
    dest = {
        "workdir": Path.cwd() / f"evil-{uuid.uuid4().hex}.txt",
        "tmp_path": tmp_path / "evil.txt",
        "app": Path(sandbox.__file__).with_name(f"evil-{uuid.uuid4().hex}.py"),
    }[target]
    path = upload(tmp_path, f"open({str(dest)!r}, 'w').write('pwned')\ndef simulate(t):\n    return t\n")
    fails(path, "raised", "line 3", within=10, trusted=False)
    assert not dest.exists()


@needs_bwrap
def test_scratch_tmp_works_but_is_private(tmp_path):
    name = f"scratch-{uuid.uuid4().hex}.txt"
    path = upload(tmp_path, f"""
        open('/tmp/{name}', 'w').write('1.5')
        def simulate(theta):
            return np.full((len(theta), 1), float(open('/tmp/{name}').read()))
    """)
    sim = load_simulator(path)
    try:
        assert float(sim.simulate(torch.zeros(2))) == 1.5
    finally:
        sim.close()
    assert not Path("/tmp", name).exists()


@needs_bwrap
def test_big_file_in_scratch_is_stopped(tmp_path):
    path = upload(tmp_path, "open('/tmp/big', 'wb').write(b'0' * 40_000_000)\ndef simulate(t):\n    return t\n")
    err = fails(path, within=10, trusted=False)
    assert err.kind in ("file", "exception")


@needs_bwrap
def test_tmp_is_the_only_writable_place(tmp_path):
    """Every mount point (and /dev/shm, /dev/mqueue) is written to from inside: only /tmp takes a file.

    ``--dev /dev`` used to mount a tmpfs of no size limit on /dev, so an upload wrote 1 GB to /dev/shm.
    """
    path = upload(tmp_path, """
        import json, os
        places = {line.split()[1] for line in open('/proc/self/mounts')}
        places |= {'/', '/dev', '/dev/shm', '/dev/mqueue', '/dev/pts', '/sandbox', '/tmp', '/proc'}
        WRITABLE = []
        for d in sorted(places):
            if not os.path.isdir(d) or d.startswith(('/proc/', '/sys')):
                continue
            try:
                with open(os.path.join(d, 'probe-written-by-upload'), 'wb') as f:
                    f.write(b'x' * 4096)
                WRITABLE.append(d)
            except OSError:
                pass
        if WRITABLE != ['/tmp']:
            raise RuntimeError(f'writable places: {WRITABLE}')
        def simulate(theta):
            return theta
    """)
    try:
        load_simulator(path, trusted=False).close()
    except SimulatorError as err:
        pytest.fail(str(err))


@needs_bwrap
def test_filling_dev_shm_is_refused(tmp_path):
    """The report's upload: 70 files of 15 MB into /dev/shm (1 GB of RAM before, past every limit)."""
    path = upload(tmp_path, """
        def simulate(theta):
            for i in range(70):
                with open(f'/dev/shm/big{i}', 'wb') as f:
                    f.write(b'0' * 15_000_000)
            return theta
    """)
    err = fails(path, "Read-only file system", "/tmp", within=15, trusted=False)
    assert err.kind == "exception"


@needs_bwrap
def test_tmp_holds_at_most_its_stated_size(tmp_path):
    """Files under the 16 MB file-size limit still cannot fill more than /tmp's 64 MB."""
    path = upload(tmp_path, """
        def simulate(theta):
            for i in range(10):
                with open(f'/tmp/part{i}', 'wb') as f:
                    f.write(b'0' * 15_000_000)
            return theta
    """)
    fails(path, f"{sandbox.Limits().tmp_mb} MB scratch folder /tmp", within=15, trusted=False)


@needs_bwrap
def test_ram_objects_outside_tmp_are_refused(tmp_path):
    """System V shared memory and message queues, POSIX message queues and memfd files hold RAM that no
    file-size, /tmp or address-space limit counts once unmapped: creating them is refused."""
    path = upload(tmp_path, """
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        MADE = []
        if libc.shmget(0, 64 * 2**20, 0o1000 | 0o600) >= 0:
            MADE.append('shmget')
        if libc.msgget(0, 0o1000 | 0o600) >= 0:
            MADE.append('msgget')
        try:
            os.memfd_create('ram')
            MADE.append('memfd')
        except OSError:
            pass
        try:
            mq = libc.mq_open
        except AttributeError:
            mq = ctypes.CDLL('librt.so.1', use_errno=True).mq_open
        if mq(b'/q', os.O_CREAT | os.O_RDWR, 0o600, None) >= 0:
            MADE.append('mq_open')
        def simulate(theta):
            return np.full((len(theta), 1), float(len(MADE)))
    """)
    sim = load_simulator(path, trusted=False)
    try:
        made = float(sim.simulate(torch.zeros(1, 2))[0, 0])
    finally:
        sim.close()
    assert made == 0.0


ZOMBIE_CHECK = """
import ctypes, json, os, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans come here, as to pid 1 in a container
from sbi_core.simulators.uploaded import SimulatorError, load_simulator

def zombies():
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                stat = open(f'/proc/{entry}/stat').read()
            except OSError:
                continue
            fields = stat[stat.rfind(')') + 2:].split()
            if int(fields[1]) == os.getpid() and fields[0] == 'Z':
                found.append(stat[stat.find('(') + 1:stat.rfind(')')])
    return found

sim = load_simulator(sys.argv[1], timeout=2)
sim.simulate(sim.prior.sample((3,)), seed=0)       # the normal path
try:
    sim.simulate(sim.prior.sample((50,)), seed=0)  # loops: killed after 2 s
except SimulatorError:
    pass
sim.simulate(sim.prior.sample((3,)), seed=0)       # restarted
sim.close()
time.sleep(0.5)
print(json.dumps(zombies()))
"""


@needs_bwrap
@pytest.mark.slow
def test_sandboxes_leave_no_zombies_where_the_app_adopts_orphans(tmp_path):
    """Run as a container's pid 1 (here: a child subreaper), the app used to collect one
    ``[bwrap] <defunct>`` per sandbox started (bwrap exits before its namespace's init)."""
    import subprocess
    import sys

    path = upload(tmp_path, """
        def simulate(theta):
            while len(theta) > 40:  # the 20 test simulations at load pass
                pass
            return theta
    """)
    script = tmp_path / "check.py"
    script.write_text(ZOMBIE_CHECK)
    res = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, env=child_env())
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout.strip().splitlines()[-1]) == []


@needs_bwrap
def test_reading_the_run_store_fails(tmp_path):
    secret = tmp_path / "runs" / "secret.json"
    secret.parent.mkdir()
    secret.write_text('{"token": "s3cret"}')
    body = f"SECRET = open({str(secret)!r}).read()\ndef simulate(t):\n    return t\n"
    fails(upload(tmp_path, body), "FileNotFoundError", within=10, trusted=False)
    # nor the app's own code, nor other uploads, nor /etc
    for target in (sandbox.__file__, "/etc/passwd", str(tmp_path / "model.py")):
        body = f"import os\nOK = os.path.exists({target!r})\ndef simulate(t):\n    return np.full((len(t), 1), float(OK))\n"
        sim = load_simulator(upload(tmp_path, body, name="probe.py"))
        try:
            assert float(sim.simulate(torch.zeros(2))) == 0.0, target
        finally:
            sim.close()


@needs_bwrap
def test_no_network(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.setblocking(False)
    port = server.getsockname()[1]
    body = f"""
        import socket
        def simulate(theta):
            socket.create_connection(("127.0.0.1", {port}), timeout=1).sendall(b"hi")
            return theta
    """
    try:
        fails(upload(tmp_path, body), "ConnectionRefusedError", within=10, trusted=False)
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing reached the host
    finally:
        server.close()
    body = "import socket\ndef simulate(t):\n    socket.getaddrinfo('example.com', 80)\n    return t\n"
    fails(upload(tmp_path, body, name="dns.py"), "gaierror", within=15, trusted=False)


@needs_bwrap
def test_fork_is_refused_and_nothing_outlives(tmp_path):
    marker = f"{uuid.uuid4().int % 10**6 + 10**6}"
    path = upload(tmp_path, f"""
        import os, subprocess
        def simulate(theta):
            try:
                subprocess.Popen(["sleep", "{marker}"])
            except OSError:
                pass
            try:
                if os.fork() == 0:
                    os.execv("/bin/sleep", ["sleep", "{marker}"])
            except OSError:
                pass
            return theta
    """)
    sim = load_simulator(path)
    try:
        sim.simulate(torch.zeros(3, 2))
        assert processes_with(f"sleep {marker}") == []
    finally:
        sim.close()
    assert gone(f"sleep {marker}")


@needs_bwrap
@pytest.mark.slow
def test_pid_namespace_kills_leftovers_without_seccomp(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "SECCOMP_ENABLED", False)
    marker = f"{uuid.uuid4().int % 10**6 + 10**6}"
    path = upload(tmp_path, f"""
        import subprocess
        def simulate(theta):
            subprocess.Popen(["sleep", "{marker}"], start_new_session=True)
            return theta
    """)
    sim = load_simulator(path)
    sim.simulate(torch.zeros(3, 2))
    assert processes_with(f"sleep {marker}"), "the sleep should run while the sandbox lives"
    sim.close()
    assert gone(f"sleep {marker}")


# ---- modes ----------------------------------------------------------------------------------
def _no_bwrap(monkeypatch):
    monkeypatch.delenv("SBI_BWRAP", raising=False)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name, *a, **k: None)


def test_refused_without_bwrap(tmp_path, monkeypatch):
    _no_bwrap(monkeypatch)
    monkeypatch.delenv("SBI_TRUSTED_UPLOADS", raising=False)
    assert sandbox_mode() == "refused"
    assert "SBI_TRUSTED_UPLOADS" in sandbox_mode_description()
    err = fails(EXAMPLES / "pendulum.py", "bubblewrap", "SBI_TRUSTED_UPLOADS", within=5, trusted=None)
    assert err.kind == "refused"


def test_trusted_mode_without_bwrap(tmp_path, monkeypatch):
    _no_bwrap(monkeypatch)
    monkeypatch.setenv("SBI_TRUSTED_UPLOADS", "1")
    assert sandbox_mode() == "trusted"
    assert "WITHOUT a sandbox" in sandbox_mode_description()
    sim = load_simulator(EXAMPLES / "pendulum.py")
    try:
        assert sim.simulate_fn.runner.mode == "trusted"
        assert sim.simulate(sim.prior.sample((100,)), seed=0).shape == (100, 4)
    finally:
        sim.close()
    # limits still hold without the sandbox
    fails(upload(tmp_path, "while True:\n    pass\n"), "longer than 1 s", within=6, timeout=1, trusted=None)


def test_trusted_mode_kills_child_processes_on_close(tmp_path, monkeypatch):
    _no_bwrap(monkeypatch)
    marker = f"{uuid.uuid4().int % 10**6 + 10**6}"
    path = upload(tmp_path, f"""
        import subprocess
        def simulate(theta):
            subprocess.Popen(["sleep", "{marker}"])
            return theta
    """)
    sim = load_simulator(path, trusted=True)
    sim.simulate(torch.zeros(2, 2))
    assert processes_with(f"sleep {marker}")
    sim.close()
    assert gone(f"sleep {marker}")


def test_seccomp_program_shape():
    prog = sandbox.seccomp_program("x86_64")
    assert prog is not None and len(prog) % 8 == 0
    assert sandbox.seccomp_program("sparc") is None


# ---- the good example --------------------------------------------------------------------
def test_good_example_round_trip():
    start = time.perf_counter()
    sim = load_simulator(EXAMPLES / "pendulum.py", trusted=True)
    loaded = time.perf_counter() - start
    try:
        assert sim.name == "upload:pendulum.py" and sim.title == "Pendulum"
        assert sim.param_names == ["length", "damping"] and sim.obs_names == ["x1", "x2", "x3", "x4"]
        assert "pendulum" in sim.description.lower()
        assert torch.allclose(sim.default_observation, torch.tensor([0.08, -0.33, -0.07, 0.21]))
        assert sim.simulate_fn.call_mode == "batched"
        theta = sim.prior.sample((1000,), generator=torch.Generator().manual_seed(0))
        x1 = sim.simulate(theta, seed=7)
        x2 = sim.simulate(theta, seed=7)
        x3 = sim.simulate(theta, seed=8)
        assert x1.shape == (1000, 4) and x1.dtype == torch.float32
        assert torch.equal(x1, x2) and not torch.equal(x1, x3)
        start = time.perf_counter()
        big = sim.simulate(sim.prior.sample((10_000,)), seed=1)
        rate = time.perf_counter() - start
        print(f"\n[perf] load {loaded:.2f}s, 10k simulations {rate:.3f}s")
        assert big.shape == (10_000, 4) and rate < 2.0
    finally:
        sim.close()


def test_per_sample_example_is_reproducible():
    sim = load_simulator(EXAMPLES / "coin_per_sample.py", trusted=True)
    try:
        assert sim.simulate_fn.call_mode == "per-sample" and sim.x_dim == 2
        theta = sim.prior.sample((300,), generator=torch.Generator().manual_seed(0))
        assert torch.equal(sim.simulate(theta, seed=3), sim.simulate(theta, seed=3))
    finally:
        sim.close()


def test_pickled_simulator_restarts_its_own_child():
    sim = load_simulator(EXAMPLES / "pendulum.py", trusted=True)
    try:
        copy = pickle.loads(pickle.dumps(sim))
        theta = sim.prior.sample((20,), generator=torch.Generator().manual_seed(0))
        assert torch.equal(copy.simulate(theta, seed=5), sim.simulate(theta, seed=5))
        assert copy.simulate_fn.runner.pid != sim.simulate_fn.runner.pid
        copy.close()
    finally:
        sim.close()


def test_closed_simulator_raises():
    sim = load_simulator(EXAMPLES / "pendulum.py", trusted=True)
    pid = sim.simulate_fn.runner.pid
    sim.close()
    assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/status").read_text().find("zombie") >= 0
    with pytest.raises(SimulatorError, match="closed"):
        sim.simulate(torch.zeros(2))


@pytest.mark.parametrize("name, words", [
    ("broken_syntax.py", ["syntax error", "line 9"]),
    ("broken_runtime.py", ["NameError", "line 10"]),
    ("broken_shape.py", ["returned shape"]),
    ("broken_import.py", ["not installed"]),
])
def test_broken_examples(name, words):
    fails(EXAMPLES / name, *words, within=10)


def test_the_server_refuses_uploads_over_the_store_limit():
    """Streamlit's own upload limit (MB, checked before the app sees a file) equals the store's."""
    import tomllib
    from pathlib import Path

    from sbi_core.uploads.files import MAX_UPLOAD_BYTES

    config = tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 1024 * 1024 == MAX_UPLOAD_BYTES
