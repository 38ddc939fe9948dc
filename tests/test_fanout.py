"""Simulations seeded per batch, and fanned out across Dask workers with the same result as here.

A round's batch ``b`` is simulated with ``Generator().manual_seed(seed_b)``, the
seeds drawn from the run's ``"simulate"`` stream at the start of the round
(:mod:`sbi_core.simulators.sources`), so batches can run anywhere, in any order
(:mod:`sbi_core.simulators.fanout`). The fast tests check the seeding rule here; the slow
ones start a local cluster of two worker processes and check that a whole run
carried out as a Dask task draws exactly what the same spec draws in this
process, with its batches spread over both workers (read back from the
scheduler's task stream).
"""

from __future__ import annotations

import os
import textwrap
import time
from typing import Iterator, Sequence

import numpy as np
import pytest
import torch

from sbi_core.errors import Cancelled
from sbi_core.jobs.dask_executor import DaskExecutor, start_local_cluster, task_key
from sbi_core.run import loop as runs
from sbi_core.run.spec import RunSpec
from sbi_core.simulators import Simulator, fanout, get_simulator
from sbi_core.simulators.fanout import Batch, BatchMapper, DaskFanOut, LocalMapper, simulate_batch
from sbi_core.simulators.sources import SEED_HIGH, SimulatorSource

pytestmark = pytest.mark.timeout(180)

N = 300


def _theta(sim: Simulator, n: int = N) -> torch.Tensor:
    return sim.prior.sample((n,), generator=torch.Generator().manual_seed(0))


def _simulate(sim, seed: int, batch_size=None, theta=None, on_event=None, cancel=None) -> torch.Tensor:
    source = SimulatorSource(sim, torch.Generator().manual_seed(seed), batch_size)
    return source.simulate(_theta(sim) if theta is None else theta, 0, on_event, cancel)


class Reversed(BatchMapper):
    """Runs the batches last first (yields them in order): a result that depended on order would change."""

    def __init__(self) -> None:
        self.ran: list[int] = []

    def map(self, batches: Sequence[Batch]) -> Iterator[torch.Tensor]:
        out = {}
        for b in reversed(range(len(batches))):
            self.ran.append(b)
            out[b] = simulate_batch(batches[b])
        for b in range(len(batches)):
            yield out[b]


class Counting(LocalMapper):
    """The local loop, counting the batches it simulated."""

    def __init__(self) -> None:
        self.ran = 0

    def map(self, batches: Sequence[Batch]) -> Iterator[torch.Tensor]:
        for batch in batches:
            self.ran += 1
            yield simulate_batch(batch)


# ---------------------------------------------------------------------------
# seeded per batch (here)
# ---------------------------------------------------------------------------
def test_a_round_depends_on_its_seed_and_its_split_not_on_how_the_split_was_asked_for() -> None:
    sim = get_simulator("two_moons")
    default = _simulate(sim, 5)  # N = 300: max(100, 30) = 100 rows a batch, 3 batches
    assert default.shape == (N, 2)
    assert torch.equal(default, _simulate(sim, 5, batch_size=100))  # the same split
    assert torch.equal(default, _simulate(sim, 5))  # reproducible
    assert not torch.equal(default, _simulate(sim, 6))  # another seed, other noise
    assert not torch.equal(default, _simulate(sim, 5, batch_size=150))  # another split: other seeds


def test_batches_are_independent_so_their_order_does_not_matter() -> None:
    sim = get_simulator("two_moons")
    mapper = Reversed()
    with fanout.use(mapper):
        assert fanout.current() is mapper
        reversed_x = _simulate(sim, 5, batch_size=70)
    assert mapper.ran == [4, 3, 2, 1, 0]
    assert isinstance(fanout.current(), LocalMapper)  # the block's mapper ends with it
    assert torch.equal(reversed_x, _simulate(sim, 5, batch_size=70))
    # batch b is exactly the simulator at its own seed: the stream's b-th draw
    seeds = torch.randint(0, SEED_HIGH, (5,), generator=torch.Generator().manual_seed(5)).tolist()
    theta = _theta(sim)
    third = sim.simulate(theta[140:210], generator=torch.Generator().manual_seed(seeds[2]))
    assert torch.equal(reversed_x[140:210], third)


def test_the_simulate_stream_advances_one_draw_per_batch_whatever_the_simulator_draws() -> None:
    two_moons, gaussian = get_simulator("two_moons"), get_simulator("gaussian_linear")
    for sim, batch_size, batches in ((two_moons, None, 3), (two_moons, 70, 5), (gaussian, 7, 43)):
        source = SimulatorSource(sim, torch.Generator().manual_seed(11), batch_size)
        source.simulate(_theta(sim), 0, None, None)
        expected = torch.Generator().manual_seed(11)
        torch.randint(0, SEED_HIGH, (batches,), generator=expected)
        assert torch.equal(source.generator.get_state(), expected.get_state()), (sim.name, batch_size)
        assert torch.equal(torch.rand(3, generator=source.generator), torch.rand(3, generator=expected))
    # a plain callable owns its randomness, yet the stream advances the same way
    source = SimulatorSource(lambda th: th * 2.0, torch.Generator().manual_seed(11), 70)
    assert torch.equal(source.simulate(_theta(two_moons), 0, None, None), _theta(two_moons) * 2.0)
    expected = torch.Generator().manual_seed(11)
    torch.randint(0, SEED_HIGH, (5,), generator=expected)
    assert torch.equal(source.generator.get_state(), expected.get_state())


def test_progress_is_reported_in_order_and_a_cancel_stops_between_batches() -> None:
    sim = get_simulator("two_moons")
    events: list[dict] = []
    _simulate(sim, 1, batch_size=70, on_event=events.append)
    assert [e["done"] for e in events if e["type"] == "simulation"] == [70, 140, 210, 280, 300]
    mapper, seen = Counting(), []
    with fanout.use(mapper), pytest.raises(Cancelled):
        _simulate(sim, 1, batch_size=70, on_event=seen.append, cancel=lambda: len(seen) >= 2)
    assert mapper.ran == 2  # the generator was closed: no third batch


def test_a_resumed_run_draws_what_the_uninterrupted_run_draws() -> None:
    """The checkpoint's "simulate" state is the stream after one draw per batch: round 1 resumes exactly."""
    from sbi_core.run.checkpoint import Checkpoint

    sim = get_simulator("two_moons")
    kw = dict(method="snpe", num_rounds=2, simulations_per_round=250, max_epochs=2, num_posterior_samples=20,
              seed=2, simulation_batch_size=60)
    full = runs.run_sequential(sim, sim.prior, sim.default_observation, checkpoints=True, **kw)
    resumed = runs.run_sequential(sim, sim.prior, sim.default_observation,
                                  resume=Checkpoint.from_bytes(full.rounds[0].checkpoint), **kw)
    assert torch.equal(full.rounds[1].x, resumed.rounds[1].x)
    assert torch.equal(full.rounds[1].posterior_samples, resumed.rounds[1].posterior_samples)


def test_outside_a_dask_task_the_fan_out_runs_every_batch_here() -> None:
    sim = get_simulator("two_moons")
    with fanout.use(DaskFanOut(name="nowhere")):
        x = _simulate(sim, 3, batch_size=50)
    assert torch.equal(x, _simulate(sim, 3, batch_size=50))


# ---------------------------------------------------------------------------
# fanned out on a local cluster of two workers
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    """Two warm worker processes (one thread each) with fan-out switched on, and a client of this process."""
    from distributed import Client

    before = os.environ.get(fanout.FANOUT_ENV)
    os.environ[fanout.FANOUT_ENV] = "1"  # inherited by the workers, read there by the runs
    local = start_local_cluster(2)
    client = Client(local, set_as_default=False)
    client.wait_for_workers(2, timeout=60)
    client.get_task_stream()  # the scheduler records the task stream from its first request on
    try:
        yield client
    finally:
        client.close()
        local.close()
        if before is None:
            os.environ.pop(fanout.FANOUT_ENV, None)
        else:
            os.environ[fanout.FANOUT_ENV] = before


def _batch_workers(client, prefix: str) -> list[str]:
    """The worker of every finished batch task whose key starts with ``prefix`` (from the task stream)."""
    return [t["worker"] for t in client.get_task_stream(start=0) if str(t["key"]).startswith(prefix)]


def _scheduler_keys(client, prefix: str) -> list[str]:
    return client.run_on_scheduler(
        lambda dask_scheduler, p=prefix: [str(k) for k in dask_scheduler.tasks if str(k).startswith(p)])


def _spec(**kw) -> RunSpec:
    base = dict(simulator="two_moons", method="snpe", num_rounds=2, simulations_per_round=400, max_epochs=3,
                num_posterior_samples=50, seed=7, num_threads=1)
    base.update(kw)
    return RunSpec(**base)


@pytest.mark.slow
def test_a_run_on_the_cluster_fans_out_and_draws_exactly_what_it_draws_here(cluster, tmp_path) -> None:
    from sbi_core.jobs.manager import JobManager
    from sbi_core.store.runs import RunStore

    spec = _spec()
    store = RunStore(tmp_path / "store")
    executor = DaskExecutor(client=cluster)
    jm = JobManager(store, executor=executor)
    run_id = jm.start(spec)
    other = jm.start(_spec(seed=8))  # two runs hold both workers' threads: waiting, they must let batches in
    for rid in (run_id, other):
        info = jm.wait(rid, timeout=120)
        assert info.status == "done", info.message

    here = runs.execute(spec)
    assert store.rounds_saved(run_id) == [0, 1]
    for r, rr in enumerate(here.rounds):
        folder = store.round_dir(run_id, r)
        assert np.array_equal(np.load(folder / "theta.npy"), rr.theta.numpy())
        assert np.array_equal(np.load(folder / "x.npy"), rr.x.numpy())
        assert np.array_equal(np.load(folder / "posterior_samples.npy"), rr.posterior_samples.numpy())

    workers = _batch_workers(cluster, f"{task_key(run_id)}-batch-")
    assert len(workers) == 2 * 4  # 2 rounds of 400 in batches of 100, each a task
    assert len(set(workers)) == 2, workers  # and both workers took some
    dones = [e["done"] for _, e in store.events(run_id) if e["type"] == "simulation"]
    assert dones == [100, 200, 300, 400] * 2  # progress in order, batch by batch


@pytest.mark.slow
def test_from_a_client_the_fan_out_gives_the_local_result(cluster) -> None:
    sim = get_simulator("two_moons")
    with fanout.use(DaskFanOut(name="direct", client=cluster)):
        x = _simulate(sim, 9, batch_size=30)
    assert torch.equal(x, _simulate(sim, 9, batch_size=30))
    assert len(_batch_workers(cluster, "direct-batch-")) == 10


def _uploaded(tmp_path):
    from sbi_core.simulators.uploaded import load_simulator

    path = tmp_path / "noisy_line.py"
    path.write_text(textwrap.dedent("""
        import numpy as np
        PRIOR = [{"name": "a", "dist": "uniform", "low": 0, "high": 1}]

        def simulate(theta):
            return theta + np.random.normal(size=theta.shape)
    """))
    return load_simulator(path, trusted=True)


@pytest.mark.slow
def test_an_uploaded_or_unpicklable_simulator_runs_here_even_on_a_cluster(cluster, tmp_path) -> None:
    unpicklable = get_simulator("two_moons")
    noise = unpicklable.simulate_fn
    unpicklable.simulate_fn = lambda th, g: noise(th, g)  # a lambda: plain pickle refuses it
    uploaded = _uploaded(tmp_path)
    mapper = DaskFanOut(name="stays", client=cluster)
    try:
        for sim in (unpicklable, uploaded, lambda th: th + 1.0):
            theta = (_theta(sim) if isinstance(sim, Simulator) else _theta(get_simulator("two_moons")))
            assert not mapper.fans_out(SimulatorSource(sim, torch.Generator(), 50).batches(theta), cluster)
            with fanout.use(mapper):
                x = _simulate(sim, 4, batch_size=50, theta=theta)
            assert torch.equal(x, _simulate(sim, 4, batch_size=50, theta=theta))
        assert mapper.fans_out(SimulatorSource(get_simulator("two_moons"), torch.Generator(), 50)
                               .batches(_theta(get_simulator("two_moons"))), cluster)
    finally:
        uploaded.simulate_fn.close()
    assert _batch_workers(cluster, "stays-batch-") == []


@pytest.mark.slow
def test_fan_out_can_be_switched_off(cluster, monkeypatch) -> None:
    sim = get_simulator("two_moons")
    batches = SimulatorSource(sim, torch.Generator(), 50).batches(_theta(sim))
    mapper = DaskFanOut(name="off", client=cluster)
    assert mapper.fans_out(batches, cluster)
    assert not mapper.fans_out(batches[:1], cluster)  # one batch: nothing to spread
    assert not mapper.fans_out(batches, None)  # no cluster
    monkeypatch.setenv(fanout.FANOUT_ENV, "0")
    assert not mapper.fans_out(batches, cluster)
    monkeypatch.delenv(fanout.FANOUT_ENV)
    assert not mapper.fans_out(batches, cluster)  # off unless asked for


@pytest.mark.slow
def test_a_cancel_during_a_fanned_out_round_stops_it_and_drops_the_batches_left(cluster) -> None:
    sim = get_simulator("lotka_volterra")  # 20 batches of 10_000: about 0.2 s each, seconds for the round
    theta = _theta(sim, 200_000)
    seen: list[dict] = []
    start = time.perf_counter()
    with fanout.use(DaskFanOut(name="stopped", client=cluster)), pytest.raises(Cancelled):
        _simulate(sim, 1, batch_size=10_000, theta=theta, on_event=seen.append, cancel=lambda: bool(seen))
    elapsed = time.perf_counter() - start
    assert [e["done"] for e in seen] == [10_000]
    deadline = time.monotonic() + 10
    while _scheduler_keys(cluster, "stopped-batch-") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _scheduler_keys(cluster, "stopped-batch-") == []  # outstanding batches were cancelled
    finished = len(_batch_workers(cluster, "stopped-batch-"))
    assert finished < 20, (finished, elapsed)  # the round did not run to its end


@pytest.mark.slow
def test_cancelling_a_run_while_its_round_is_fanned_out_ends_it_cancelled(cluster, tmp_path) -> None:
    """The run stops at the next batch boundary by itself (its worker is not killed), its batches dropped."""
    from sbi_core.jobs.manager import JobManager
    from sbi_core.store.runs import RunStore

    store = RunStore(tmp_path / "store")
    executor = DaskExecutor(client=cluster)
    jm = JobManager(store, executor=executor)
    # 10 batches of 10_000 Lotka-Volterra simulations: a fraction of a second each
    run_id = jm.start(_spec(simulator="lotka_volterra", num_rounds=1, method="npe", simulations_per_round=100_000))
    prefix = f"{task_key(run_id)}-batch-"

    def simulating():
        return any(e["type"] == "simulation" for _, e in store.events(run_id))

    deadline = time.monotonic() + 60
    while not simulating() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert simulating()
    jm.cancel(run_id)
    assert jm.wait(run_id, timeout=30).status == "cancelled"
    assert store.worker_process(run_id)[0] in set(executor.worker_pids().values())  # ended, not killed
    dones = [e["done"] for _, e in store.events(run_id) if e["type"] == "simulation"]
    assert dones and dones[-1] < 100_000  # it stopped before the round's end
    deadline = time.monotonic() + 10
    while _scheduler_keys(cluster, prefix) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _scheduler_keys(cluster, prefix) == []
    assert 1 <= len(_batch_workers(cluster, prefix)) < 10
