"""Hand-made summary statistics as a fixed embedding (``embedding="handmade"``): the built-in models'
summaries (shapes, NaN-safety, order of trials), the network that reads them (standardised, saved and
loaded by name), runs that use them, their refusal where a model has none, and the Compare page's
choice of summaries."""

from __future__ import annotations

import subprocess
import sys

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

import sbi_core
from sbi_core import NPE, SBIError, Posterior, RunSpec, execute
from sbi_core.run.summary import summary_short, summary_words
from sbi_core.export.script import spec_to_script
from sbi_core.nn.embeddings import (
    HandmadeEmbedding,
    build_embedding,
    embedding_config,
    handmade_embedding,
    resolve_embedding,
)
from sbi_core.nn.flows import build_flow
from sbi_core.run.compare import (
    CompareRow,
    comparison_base,
    comparison_specs,
    name_summaries,
)
from sbi_core.stats.shapes import DataShape, DataShapeError, embedding_for, embedding_words
from sbi_ui import keys as K
from sbi_ui.train_settings import embedding_options

APP = str(Path(__file__).resolve().parent.parent / "app.py")
MODELS = {"ar1_series": 5, "sir_series": 6, "gaussian_trials": 3, "drift_diffusion": 14}
TRIALS = ("gaussian_trials", "drift_diffusion")


def _sims(name: str, n: int = 40, seed: int = 0) -> tuple:
    sim = sbi_core.get_simulator(name)
    theta = sim.prior.sample((n,), generator=torch.Generator().manual_seed(seed))
    return sim, theta, sim.simulate(theta, seed=seed)


def _keep_trials(sim, x: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """``x (N, M * D)`` with row ``i`` keeping its first ``counts[i]`` trials (the rest NaN rows)."""
    m, d = sim.data_shape.dims
    t = x.clone().reshape(x.shape[0], m, d)
    for i, k in enumerate(counts):
        t[i, k:] = float("nan")
    return t.reshape(x.shape)


# ---- the summaries ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
def test_each_built_in_shaped_model_has_finite_summaries_of_its_stated_size(name):
    sim, _, x = _sims(name)
    assert sim.handmade_summary == name and sim.handmade.size == MODELS[name] == len(sim.handmade.labels)
    s = sim.summarise(x)
    assert s.shape == (40, MODELS[name]) and s.dtype == torch.float32 and torch.isfinite(s).all()
    one = sim.summarise(sim.default_observation)
    assert one.shape == (MODELS[name],) and torch.allclose(one, sim.summarise(sim.default_observation[None])[0])


def test_ar1_summaries_are_the_mean_log_variance_and_autocorrelations():
    sim = sbi_core.get_simulator("ar1_series")
    x = sim.simulate(torch.tensor([[0.8, 1.0]]).repeat(200, 1), seed=1)
    s = sim.summarise(x)
    c = x[0].double() - x[0].double().mean()
    v = (c**2).mean()
    assert s[0, 0] == pytest.approx(float(x[0].double().mean()), abs=1e-5)
    assert s[0, 1] == pytest.approx(float(v.log()), abs=1e-5)
    assert s[0, 2] == pytest.approx(float((c[:-1] * c[1:]).sum() / (100 * v)), abs=1e-5)
    assert s[:, 2].mean() == pytest.approx(0.8, abs=0.06)  # lag-1 autocorrelation ~ phi (biased low at T = 100)
    assert s[:, 3].mean() == pytest.approx(0.64, abs=0.1)  # lag 2 ~ phi^2


def test_sir_summaries_match_the_summary_models_on_100_days():
    from sbi_core.simulators.science import _sir_infected_curve

    theta = torch.tensor([[0.4, 0.125], [0.9, 0.2], [0.15, 0.14]])
    curve, _ = _sir_infected_curve(theta, torch.Generator().manual_seed(3), days=100)  # I_0..I_100
    s = sbi_core.get_simulator("sir_series").summarise(curve[:, 1:].float())
    peak, day = curve.max(dim=1)
    assert torch.allclose(s[:, 0], (peak / 1000).float()) and torch.equal(s[:, 1], day.float())
    growth = (torch.log1p(curve[:, 14]) - torch.log1p(curve[:, 0])) / 14
    assert torch.allclose(s[:, 3], growth.float(), atol=1e-6)
    assert torch.allclose(s[:, 5], (curve[:, -1] / 1000).float())
    assert (s[:, 4] >= -1e-6).all()  # a decline after the peak is never negative


@pytest.mark.parametrize("name", TRIALS)
def test_trials_summaries_are_finite_for_any_number_of_trials_and_use_only_those(name):
    sim, _, x = _sims(name, n=5)
    m = sim.data_shape.max_trials
    counts = [1, 2, m // 2, m - 1, m]
    fewer = _keep_trials(sim, x, counts)
    s = sim.summarise(fewer)
    assert torch.isfinite(s).all()
    assert s[:, -1].tolist() == [float(k) for k in counts]  # the last summary is the number of trials
    for i, k in enumerate(counts):  # the same as summarising those k trials as an observation
        d = sim.data_shape.trial_width
        assert torch.allclose(sim.summarise(x[i, : k * d]), s[i])


def test_one_reading_has_log_sd_zero_and_the_mean_is_the_readings_mean():
    sim = sbi_core.get_simulator("gaussian_trials")
    s = sim.summarise([2.5])
    assert s.tolist() == [2.5, 0.0, 1.0]
    s = sim.summarise([1.0, 3.0])
    assert s[0] == 2.0 and s[1] == pytest.approx(float(torch.tensor(2.0).sqrt().log())) and s[2] == 2.0


def test_a_choice_never_made_gets_the_fill_value_and_its_indicator():
    sim = sbi_core.get_simulator("drift_diffusion")
    trials = [[0.5, 1.0], [0.7, 1.0], [0.6, 1.0]]  # three upper answers, no lower one
    s = sim.summarise(trials)
    assert s[0] == 1.0  # all upper
    assert s[1:6].tolist() == [0.0] * 5 and s[6] == 1.0  # lower: filled, indicator on
    assert s[7:12].tolist() == pytest.approx([0.52, 0.56, 0.6, 0.64, 0.68]) and s[12] == 0.0
    assert s[13] == 3.0


@pytest.mark.parametrize("name", TRIALS)
def test_trials_summaries_do_not_depend_on_the_order_of_the_trials(name):
    sim, _, x = _sims(name, n=6, seed=4)
    x = _keep_trials(sim, x, [3, 7, 10, 12, 15, 20])
    m, d = sim.data_shape.dims
    t = x.reshape(6, m, d)
    g = torch.Generator().manual_seed(0)
    shuffled = torch.stack([row[torch.randperm(m, generator=g)] for row in t]).reshape(6, m * d)  # NaN rows too
    assert torch.allclose(sim.summarise(x), sim.summarise(shuffled), atol=1e-6)


# ---- the embedding ------------------------------------------------------------------------------
def test_the_embedding_standardises_the_summaries_with_the_training_batch():
    sim, _, x = _sims("drift_diffusion", n=200)
    cfg = embedding_config(handmade_embedding("drift_diffusion"), sim.data_shape, features=99)
    assert cfg.kind == "handmade" and cfg.features == 14 and cfg.summary == "drift_diffusion"  # features: its own
    net = build_embedding(cfg, x)
    assert isinstance(net, HandmadeEmbedding) and not net.learned and not list(net.parameters())
    z = net(x)
    varying = sim.summarise(x).std(0) > 1e-6
    assert torch.allclose(z.mean(0)[varying], torch.zeros(int(varying.sum())), atol=1e-4)
    assert torch.allclose(z.std(0)[varying], torch.ones(int(varying.sum())), atol=1e-3)
    assert cfg.to_dict()["summary"] == "drift_diffusion"
    assert "summary" not in embedding_config("set", sim.data_shape).to_dict()  # a learned kind's dict is unchanged


def test_handmade_needs_a_model_with_summaries_and_says_what_to_choose():
    assert embedding_for("handmade", DataShape.series(100), summary="ar1_series") == "handmade"
    with pytest.raises(DataShapeError, match="This model has no hand-made summary statistics; choose 'auto', "
                                             "'none', 'cnn1d', 'gru' or 'mlp'.*uploaded simulator"):
        embedding_for("handmade", DataShape.series(100))
    with pytest.raises(SBIError, match="no hand-made summary statistics"):
        resolve_embedding("handmade", DataShape.series(100))  # the name alone does not say whose summaries
    with pytest.raises(SBIError, match="registered as 'nope'"):
        handmade_embedding("nope")
    assert embedding_words("handmade") == "hand-made summary statistics (the model's own)"
    with pytest.raises(SBIError, match="This model has no hand-made summary statistics"):
        execute(RunSpec(simulator="two_moons", method="npe", num_rounds=1, simulations_per_round=50,
                        embedding="handmade"))


def test_flow_starts_at_the_linear_gaussian_fit_of_the_summaries():
    sim, theta, x = _sims("ar1_series", n=300)
    flow = build_flow("nsf", theta, x, hidden_features=8, num_transforms=1, embedding=handmade_embedding("ar1_series"),
                      data_shape=sim.data_shape)
    assert flow.cfg.context_features == 5 and flow.affine.linear.weight.abs().sum() > 0


def test_a_saved_npe_posterior_rebuilds_its_summaries_by_name_and_samples_the_same(tmp_path):
    sim, theta, x = _sims("gaussian_trials", n=300, seed=2)
    npe = NPE(sim.prior, hidden_features=16, num_transforms=1, embedding=handmade_embedding("gaussian_trials"),
              data_shape=sim.data_shape, max_epochs=3)
    posterior = npe.train(theta, x)
    assert posterior.flow.cfg.embedding == {**posterior.flow.cfg.embedding, "kind": "handmade",
                                            "summary": "gaussian_trials", "features": 3}
    x_obs = torch.as_tensor(sim.data_shape.observation([[1.0], [2.0], [1.5]]), dtype=torch.float32)
    path = tmp_path / "posterior.pt"
    posterior.save(path)
    again = Posterior.load(path)
    assert torch.equal(posterior.sample((200,), x=x_obs, seed=5), again.sample((200,), x=x_obs, seed=5))
    # a fresh process (a notebook) loads it with nothing imported by hand: the summaries are found by name
    code = ("import sys, torch, sbi_core; p = sbi_core.Posterior.load(sys.argv[1]); "
            "print(p.sample((3,), x=torch.tensor([1.0, 2.0, 1.5]), seed=5).shape)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "torch.Size([3, 1])" in out.stdout


def test_npe_on_hand_made_ar1_summaries_finds_phi():
    """2,000 simulations, a few epochs (about 4 s): the posterior mean of phi is near the exact posterior's
    (0.65 at the example observation, true phi 0.7), not the prior's 0; its sd near the exact 0.08."""
    spec = RunSpec(simulator="ar1_series", method="npe", num_rounds=1, simulations_per_round=2000,
                   embedding="handmade", max_epochs=15, hidden_features=32, num_transforms=2, seed=0, num_threads=1)
    result = execute(spec)
    samples = result.rounds[-1].posterior_samples
    sim = sbi_core.get_simulator("ar1_series")
    exact = sim.reference_posterior(sim.default_observation, 5000, seed=0)
    assert abs(float(samples[:, 0].mean()) - float(exact[:, 0].mean())) < 0.08
    assert 0.04 < float(samples[:, 0].std()) < 0.16
    assert result.rounds[-1].reference_c2st < 0.7


# ---- pages, scripts, reports ---------------------------------------------------------------------
def test_train_form_offers_hand_made_summaries_only_where_the_model_has_them():
    shape = DataShape.series(100)
    assert "handmade" in embedding_options(shape, handmade=True)
    assert "handmade" not in embedding_options(shape)
    assert embedding_options(shape, handmade=True)["handmade"] == "Hand-made summary statistics (the model's own)"


def test_report_and_scripts_name_and_use_the_hand_made_summaries():
    spec = RunSpec(simulator="drift_diffusion", method="npe", num_rounds=1, embedding="handmade",
                   observation=[0.5, 1.0, 0.7, 0.0, 0.6, 1.0])  # 3 of 50 trials
    assert summary_words(spec).startswith("hand-made summary statistics (the model's own) (proportion of upper")
    core = spec_to_script(spec, library="sbi_core")
    assert 'embedding="handmade"' in core
    text = spec_to_script(spec, library="sbi")
    assert "return model.summarise(x)" in text and "x_o = model.summarise(torch.tensor(" in text
    assert 'x[:, 6:] = float("nan")' in text and "embedding_net" not in text
    compile(text, "script.py", "exec")
    with pytest.raises(SBIError, match="no hand-made summary statistics"):
        spec_to_script(RunSpec(simulator="two_moons", method="npe", num_rounds=1, embedding="handmade"), library="sbi")


def test_comparing_two_summaries_doubles_the_runs_and_names_them():
    base = comparison_base({"simulator": "ar1_series"}, max_epochs=20)
    one = comparison_specs(base, ["npe", "snpe"], [1000])
    assert [s.embedding for s in one] == ["auto", "auto"] and comparison_specs(base, ["npe", "snpe"], [1000],
                                                                               summaries=["auto"]) == one
    two = comparison_specs(base, ["npe", "snpe", "rejection_abc"], [1000], summaries=["auto", "handmade"])
    assert [(s.method, s.embedding) for s in two] == [
        ("npe", "auto"), ("npe", "handmade"), ("snpe", "auto"), ("snpe", "handmade"), ("rejection_abc", "auto")]
    assert two[1].title == "Compare: Amortized NPE, 1,000 simulations, hand-made summaries"
    assert two[-1].title == "Compare: Rejection ABC, 1,000 simulations"  # ABC reads the numbers as they are
    with pytest.raises(SBIError, match="x 3 summaries makes 18 runs"):
        comparison_specs(base, ["npe", "snpe", "tsnpe"], [1000, 2000], summaries=["auto", "handmade", "gru"])

    def row(method, learns, embedding):
        return CompareRow(run_id=method + embedding, method=method, method_title=method.upper(), learns=learns,
                          sequential=False, budget=2000, status="done", rounds_done=1, num_rounds=1,
                          simulations=2000, seconds=1.0, c2st=None, embedding=embedding)

    rows = name_summaries([row("npe", "posterior", "auto"), row("npe", "posterior", "handmade"),
                           row("rejection_abc", "nothing", "auto")])
    assert [r.label for r in rows] == ["NPE · 2,000 sims · learned summary (automatic)",
                                       "NPE · 2,000 sims · hand-made summaries", "REJECTION_ABC · 2,000 sims"]
    same = name_summaries([row("npe", "posterior", "auto"), row("snpe", "posterior", "auto")])
    assert [r.label for r in same] == ["NPE · 2,000 sims", "SNPE · 2,000 sims"]


def test_compare_page_of_a_series_model_offers_summaries_to_compare(store_dir):
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state[K.S_MODEL_CFG] = {"simulator": "ar1_series"}
    at.run()
    at.switch_page("pages/compare.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    pick = at.multiselect(key=K.W_COMPARE_SUMMARIES)
    assert pick.value == ["auto"] and pick.options[0].startswith("Automatic: a learned summary of the series")
    assert pick.options[-2:] == ["Hand-made summary statistics (the model's own)", "Raw numbers (no summary)"]
    assert any("2 runs, one after another" in c.value for c in at.caption)
    pick.set_value(["auto", "handmade"]).run()
    assert not at.exception, [e.value for e in at.exception]
    plan = " ".join(c.value for c in at.caption)
    assert "4 runs, one after another" in plan and "Amortized NPE, hand-made summaries: 1 round of 2,000" in plan
    assert "Learned or hand-made summaries?" in plan
    assert not next(b for b in at.button if b.label == "Start comparison").disabled


def test_train_page_offers_the_hand_made_summaries_of_a_model_that_has_them(store_dir):
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state[K.S_MODEL_CFG] = {"simulator": "sir_series"}
    at.run()
    at.switch_page("pages/train.py")
    at.run()
    pick = at.selectbox(key=K.W_EMBEDDING)
    assert pick.options[-1] == "Hand-made summary statistics (the model's own)"
    pick.set_value("handmade").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_a_runs_summary_in_a_few_words_for_its_one_line_description():
    def short(simulator, embedding="auto"):
        return summary_short(RunSpec(simulator=simulator, method="npe", num_rounds=1, embedding=embedding))

    assert short("two_moons") is None  # a plain vector read as it is: nothing worth saying
    assert short("sir_series") == "learned summary (1-D CNN)"
    assert short("sir_series", "gru") == "learned summary (GRU)"
    assert short("sir_series", "none") == "raw numbers"
    assert short("gaussian_trials") == "learned summary (DeepSets)"
    assert short("ar1_series", "handmade") == "hand-made summaries"
    assert short("two_moons", "handmade") is None  # refused when the run starts, which says why
    upload = {"kind": "table", "path": "t.csv", "data_shape": {"kind": "series", "shape": [30]}}
    assert short(upload) == "learned summary (1-D CNN)"
    assert summary_words(RunSpec(simulator=upload, method="npe", num_rounds=1)).endswith(
        "one simulation is a series of 30 time points")
