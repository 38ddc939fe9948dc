"""The method interface: registry, composition, one path for NPE, the seed plan."""

from dataclasses import dataclass

import pytest
import torch

import sbi_core
from sbi_core import RunSpec, SBIError, run_sequential
from sbi_core.methods import METHODS, NPE, Method, PriorProposal, get_method, method_names
from sbi_core.methods import registry
from sbi_core.stats.seeds import STREAMS, SeedPlan
from sbi_core.run.spec import METHODS as SPEC_METHODS

TINY = dict(hidden_features=8, num_transforms=1, max_epochs=4, patience=100, num_posterior_samples=50)


def test_registry_is_the_one_list_of_methods():
    assert SPEC_METHODS == method_names() == tuple(METHODS)
    for name, m in METHODS.items():
        assert m.name == name and m.title and len(m.summary) > 40
        assert m.learns in ("posterior", "likelihood", "ratio", "nothing")
        assert m.rounds(5) == (5 if m.sequential else 1)
    assert not get_method("npe").sequential and get_method("snpe").sequential
    assert set(METHODS) == {"npe", "snpe", "tsnpe", "fmpe", "tsfmpe", "npse", "tsnpse", "nle", "snle", "nre", "snre", "rejection_abc",
                            "smc_abc"}
    assert {m.learns for m in METHODS.values()} == {"posterior", "likelihood", "ratio", "nothing"}
    with pytest.raises(SBIError, match="method must be one of"):
        get_method("nope")


def test_spec_rounds_come_from_the_method():
    assert RunSpec(method="npe", num_rounds=1).rounds == 1
    assert RunSpec(method="tsnpe", num_rounds=3).rounds == 3
    with pytest.raises(sbi_core.RunSpecError, match="trains in one round"):
        RunSpec(method="npe", num_rounds=3)


def test_variants_are_one_class_with_other_parts():
    prior = sbi_core.get_simulator("two_moons").prior
    snpe, tsnpe, npe = (METHODS[n].build(prior, seed=0) for n in ("snpe", "tsnpe", "npe"))
    assert type(snpe) is type(tsnpe) is type(npe) is NPE
    assert [e.sequential for e in (snpe, tsnpe, npe)] == [True, True, False]
    assert type(snpe.loss_rule).__name__ == "AtomicLoss" and snpe.loss_rule.num_atoms == 10
    assert type(tsnpe.proposal_rule).__name__ == "TruncatedProposal"


@pytest.mark.slow
def test_npe_train_and_method_npe_are_one_path():
    """run_sequential(method="npe") gives exactly what NPE(...).train gives on the same pairs."""
    sim = sbi_core.get_simulator("linear_regression")
    n, seed = 300, 4
    run = run_sequential(sim, sim.prior, sim.default_observation, method="npe", simulations_per_round=n,
                         seed=seed, simulation_batch_size=n, **TINY)
    plan = SeedPlan(seed)
    theta = sim.prior.sample((n,), generator=plan.generator("theta"))
    # one batch: its seed is the simulate stream's first draw (sbi_core.simulators.sources's seeding rule)
    seed_b = int(torch.randint(0, 2**62, (1,), generator=plan.generator("simulate")))
    x = sim.simulate(theta, generator=torch.Generator().manual_seed(seed_b))
    settings = {k: v for k, v in TINY.items() if k != "num_posterior_samples"}
    post = NPE(sim.prior, seed=seed, **settings).train(theta, x)
    samples = post.sample((50,), x=sim.default_observation, generator=plan.generator("posterior"))
    assert torch.equal(run.rounds[0].theta, theta)
    assert torch.equal(run.rounds[0].posterior_samples, samples)


@dataclass(frozen=True)
class _StayAtPrior(PriorProposal):
    """A sequential rule that keeps drawing from the prior: pooled amortized rounds."""

    sequential: bool = True


@pytest.mark.slow
def test_a_new_method_plugs_in_through_the_registry_alone(monkeypatch):
    def build(prior, **settings):
        return NPE(prior, proposal=_StayAtPrior(), **settings)

    method = Method(name="pooled_npe", title="Pooled NPE", summary="NPE whose rounds all draw from the prior, "
                    "pooled: a test of the plug-in interface.", sequential=True, learns="posterior", build=build)
    monkeypatch.setitem(registry.METHODS, method.name, method)
    sim = sbi_core.get_simulator("linear_regression")
    events = []
    run = run_sequential(sim, sim.prior, sim.default_observation, method="pooled_npe", num_rounds=2,
                         simulations_per_round=100, seed=0, on_event=events.append, **TINY)
    assert len(run.rounds) == 2 and all(r.proposal is run.prior for r in run.rounds)
    rounds = [e for e in events if e["type"] == "round"]
    assert [e["num_simulations"] for e in rounds] == [100, 100] and rounds[1]["proposal_fraction"] == 1.0


def test_seed_plan_streams():
    plan = SeedPlan(7)
    # historical streams keep their seeds, so stored specs reproduce
    assert {s: plan.seed_of(s) for s in STREAMS} == {s: 7 + off for s, off in STREAMS.items()}
    new = [plan.seed_of("mcmc"), plan.seed_of("checks")]
    assert new == [SeedPlan(7).seed_of("mcmc"), SeedPlan(7).seed_of("checks")]  # deterministic
    assert len(set(new) | {plan.seed_of(s) for s in STREAMS}) == len(STREAMS) + 2  # all distinct
    assert SeedPlan(8).seed_of("mcmc") != new[0]
    state = torch.random.get_rng_state()
    plan.generator("theta").manual_seed(1)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is never touched
