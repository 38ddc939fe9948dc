"""sbi_core.export.script: a RunSpec as a runnable script, for sbi_core (same samples) and for sbi 0.27."""

from __future__ import annotations

import csv
import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from python_child import child_env
import sbi_core
from sbi_core.errors import SBIError
from sbi_core.export.script import LIBRARIES, ScriptError, spec_to_script
from sbi_core.methods.catalogue import method_info
from sbi_core.stats.priors import Prior
from sbi_core.run.spec import RunSpec

HAS_SBI = importlib.util.find_spec("sbi") is not None
STORE_FILE = "/srv/sbi-store/uploads/0123456789abcdef/"  # a path of "this server" that must not leak


def tiny(**changes) -> RunSpec:
    settings = dict(simulator="linear_regression", method="npe", num_rounds=1, simulations_per_round=300,
                    max_epochs=5, hidden_features=16, num_transforms=2, num_threads=1, num_posterior_samples=200)
    return RunSpec(**{**settings, **changes})


def run_script(text: str, folder: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    (folder / "script.py").write_text(text)
    return subprocess.run([sys.executable, "script.py"], cwd=folder, capture_output=True, text=True,
                          timeout=120, env=child_env(env))


def read_csv(path: Path) -> tuple[list[str], torch.Tensor]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], torch.tensor([[float(v) for v in row] for row in rows[1:]])


def pyflakes_clean(text: str, tmp_path: Path) -> None:
    if importlib.util.find_spec("pyflakes") is None:
        return
    path = tmp_path / "lint_me.py"
    path.write_text(text)
    out = subprocess.run([sys.executable, "-m", "pyflakes", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


# ---------------------------------------------------------------------------
# library="sbi_core": the same run, the same samples
# ---------------------------------------------------------------------------
def test_sbi_core_script_reproduces_execute(tmp_path):
    spec = tiny()
    text = spec_to_script(spec)
    assert "sbi_core.execute(spec" in text and "seed=0," in text
    assert "max_epochs=5," in text and "learning_rate" not in text  # only the non-default settings
    done = run_script(text, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "round 1/1: 300 simulations" in done.stdout
    header, samples = read_csv(tmp_path / "posterior_samples.csv")
    expected = sbi_core.execute(spec).rounds[-1].posterior_samples
    assert header == ["b0", "b1"]
    assert samples.shape == expected.shape == (200, 2)
    assert torch.allclose(samples, expected, atol=1e-4)


def test_sbi_core_script_two_round_snpe(tmp_path):
    spec = tiny(method="snpe", num_rounds=2, simulations_per_round=150, num_posterior_samples=100,
                prior=[{"name": "slope", "dist": "normal", "loc": 0.0, "scale": 1.0},
                       {"name": "offset", "dist": "normal", "loc": 0.5, "scale": 2.0}])
    done = run_script(spec_to_script(spec), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "round 1/2: 150 simulations" in done.stdout and "round 2/2: 150 simulations" in done.stdout
    header, samples = read_csv(tmp_path / "posterior_samples.csv")
    assert header == ["slope", "offset"]  # the spec's prior names, not the model's
    assert torch.allclose(samples, sbi_core.execute(spec).rounds[-1].posterior_samples, atol=1e-4)


def test_sbi_core_script_runs_a_table_next_to_it(tmp_path):
    sim = sbi_core.get_simulator("linear_regression")
    g = torch.Generator().manual_seed(3)
    theta = sim.prior.sample((200,), generator=g)
    x = sim.simulate(theta, generator=g)
    store = tmp_path / "store"
    store.mkdir()
    table = store / "sims.csv"
    names = [f"x{i}" for i in range(x.shape[1])]
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["b0", "b1", *names])
        w.writerows(torch.cat([theta, x], 1).tolist())
    ref = {"kind": "table", "path": str(table), "theta_columns": ["b0", "b1"], "x_columns": names}
    spec = tiny(simulator=ref, prior=sim.prior.to_spec(), observation=sim.default_observation.tolist())
    text = spec_to_script(spec)
    assert str(store) not in text and 'HERE / "sims.csv"' in text
    away = tmp_path / "away"
    away.mkdir()
    missing = run_script(text, away)  # the table is not there yet: a message that says what to do
    assert missing.returncode != 0 and "Put sims.csv next to this script" in missing.stderr
    (away / "sims.csv").write_bytes(table.read_bytes())
    done = run_script(text, away)
    assert done.returncode == 0, done.stderr
    _, samples = read_csv(away / "posterior_samples.csv")
    assert torch.allclose(samples, sbi_core.execute(spec).rounds[-1].posterior_samples, atol=1e-4)


# ---------------------------------------------------------------------------
# files are named, never located
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("library", LIBRARIES)
def test_upload_and_table_scripts_name_their_file_only(library, tmp_path):
    prior = [{"name": "length", "dist": "uniform", "low": 0.5, "high": 2.0}]
    upload = tiny(simulator={"kind": "upload", "path": STORE_FILE + "pendulum.py", "name": "Pendulum",
                             "timeout": 60}, prior=prior, observation=[1.0, 2.0])
    portable = tiny(simulator={"kind": "upload", "file_name": "my model.py", "sha256": "0" * 64,
                               "source": "def simulate(theta):\n    return theta\n"}, prior=prior, observation=[1.0])
    table = tiny(simulator={"kind": "table", "path": STORE_FILE + "runs.parquet", "theta_columns": ["length"],
                            "x_columns": ["period"]}, prior=prior, observation=[1.0])
    for spec, name in ((upload, "pendulum.py"), (portable, "my_model.py"), (table, "runs.parquet")):
        text = spec_to_script(spec, library)
        compile(text, "script.py", "exec")
        pyflakes_clean(text, tmp_path)
        assert f"Put {name} next to this script" in text
        assert f'HERE / "{name}"' in text
        assert "/srv" not in text and "sha256" not in text and "def simulate" not in text


def test_sbi_core_script_runs_an_uploaded_simulator_next_to_it(tmp_path):
    example = Path(__file__).resolve().parents[1] / "assets" / "examples" / "pendulum.py"
    prior = [{"name": "length", "dist": "uniform", "low": 0.2, "high": 2.0},
             {"name": "damping", "dist": "uniform", "low": 0.0, "high": 1.0}]
    spec = tiny(simulator={"kind": "upload", "path": str(example), "name": "Pendulum"}, prior=prior,
                observation=[0.08, -0.33, -0.07, 0.21], simulations_per_round=200, num_posterior_samples=100)
    text = spec_to_script(spec)
    assert str(example.parent) not in text
    (tmp_path / "pendulum.py").write_bytes(example.read_bytes())
    done = run_script(text, tmp_path)
    assert done.returncode == 0, done.stderr
    header, samples = read_csv(tmp_path / "posterior_samples.csv")
    assert header == ["length", "damping"]
    assert torch.allclose(samples, sbi_core.execute(spec).rounds[-1].posterior_samples, atol=1e-4)


def test_upload_script_stops_with_a_message_when_the_file_is_missing(tmp_path):
    spec = tiny(simulator={"kind": "upload", "path": STORE_FILE + "pendulum.py"},
                prior=[{"name": "length", "dist": "uniform", "low": 0.5, "high": 2.0}], observation=[1.0])
    done = run_script(spec_to_script(spec), tmp_path)
    assert done.returncode != 0
    assert "Put pendulum.py next to this script" in done.stderr
    assert not (tmp_path / "posterior_samples.csv").exists()


# ---------------------------------------------------------------------------
# library="sbi": the same run for the sbi toolbox
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["npe", "snpe", "tsnpe"])
def test_sbi_script_compiles_and_names_the_budget(method, tmp_path):
    spec = tiny(method=method, num_rounds=1 if method == "npe" else 3, simulations_per_round=777, seed=4242,
                density_estimator="maf", hidden_features=24, num_transforms=3, learning_rate=1e-3, patience=7)
    text = spec_to_script(spec, library="sbi")
    compile(text, "script.py", "exec")
    pyflakes_clean(text, tmp_path)
    for needle in ("SEED = 4242", "torch.manual_seed(SEED)", f"NUM_ROUNDS = {spec.rounds}",
                   "SIMULATIONS_PER_ROUND = 777", "NUM_POSTERIOR_SAMPLES = 200", '"max_num_epochs": 5',
                   '"stop_after_epochs": 7', '"learning_rate": 0.001', '"validation_fraction": 0.1',
                   'posterior_nn(model="maf", hidden_features=24, num_transforms=3)', "simulate_for_sbi(",
                   "torch.set_num_threads(1)", "posterior_samples.csv"):
        assert needle in text, needle
    assert ("proposal=proposal" in text) == (method == "snpe")
    assert ("RestrictedPrior(prior, accept_reject_fn" in text) == (method == "tsnpe")
    assert ("for r in range(NUM_ROUNDS)" in text) == (method != "npe")


MCMC_METHODS = ["nle", "snle", "nre", "snre"]


@pytest.mark.parametrize("method", MCMC_METHODS)
def test_sbi_script_of_a_likelihood_or_a_ratio(method, tmp_path):
    sequential = method.startswith("s")
    spec = tiny(method=method, num_rounds=2 if sequential else 1, simulations_per_round=777, hidden_features=24,
                num_transforms=3, density_estimator="maf")
    text = spec_to_script(spec, library="sbi")
    compile(text, "script.py", "exec")
    pyflakes_clean(text, tmp_path)
    if method.endswith("nle"):
        needles = ("from sbi.inference import NLE, simulate_for_sbi", "from sbi.neural_nets import likelihood_nn",
                   'likelihood_nn(model="maf", hidden_features=24, num_transforms=3)', ".train(training_batch_size")
    else:  # sbi_core's NRE-C settings: 10 atoms (9 contrasting parameters), gamma 1
        needles = ("from sbi.inference import NRE_C, simulate_for_sbi", "from sbi.neural_nets import classifier_nn",
                   'classifier_nn(model="resnet", hidden_features=24)', ".train(num_classes=9, gamma=1.0, ")
    needles += ('MCMC = {"num_chains": 50, "warmup_steps": 30, "thin": 2}',
                'build_posterior(mcmc_method="slice_np_vectorized", mcmc_parameters=MCMC)', "SIMULATIONS_PER_ROUND = 777")
    for needle in needles:
        assert needle in text, needle
    assert ("proposal = posterior" in text) == sequential and "proposal=proposal" not in text
    assert "posterior_nn(" not in text


def test_sbi_script_of_nle_reads_a_series_as_it_is_and_nre_through_a_summary():
    series = dict(simulator="ar1_series", simulations_per_round=500, num_rounds=1)
    assert "Embedding" not in spec_to_script(tiny(method="nle", **series), "sbi")  # "auto" is no summary for NLE
    with pytest.raises(ScriptError, match="NLE learns the likelihood of the data as they are"):
        spec_to_script(tiny(method="nle", embedding="cnn1d", **series), "sbi")
    text = spec_to_script(tiny(method="nre", **series), "sbi")
    assert "embedding_net_x=embedding_net)" in text and "CNNEmbedding(" in text


@pytest.mark.parametrize("method", ["rejection_abc", "smc_abc"])
def test_sbi_script_of_abc_keeps_sbi_cores_distance_quantile_and_adjustment(method, tmp_path):
    smc = method == "smc_abc"
    spec = tiny(method=method, num_rounds=4 if smc else 1, simulations_per_round=777)
    text = spec_to_script(spec, library="sbi")
    compile(text, "script.py", "exec")
    pyflakes_clean(text, tmp_path)
    needles = ["def scaled_distance(scale=None):", "1.4826 * (x - x.median(0).values)", "MIN_PARTICLES = 20",
               "REGRESSION_ADJUSTMENT = True", "lra=REGRESSION_ADJUSTMENT, kde=True", "x_o.reshape(1, -1)"]
    if smc:
        needles += ["from sbi.inference import SMCABC", "QUANTILE = 0.2", "distance=scaled_distance(scale)",
                    "epsilon_decay=QUANTILE, distance_based_decay=True", "num_simulations=NUM_ROUNDS * SIMULATIONS"]
    else:
        needles += ["from sbi.inference import MCABC", "QUANTILE = 0.01", "distance=scaled_distance()",
                    "quantile=max(QUANTILE, MIN_PARTICLES / SIMULATIONS_PER_ROUND)"]
    for needle in needles:
        assert needle in text, needle
    assert "TRAINING" not in text and "simulate_for_sbi" not in text  # nothing is trained
    with pytest.raises(ScriptError, match="ABC compares the simulations' own numbers"):
        spec_to_script(tiny(method=method, num_rounds=spec.num_rounds, embedding="mlp"), "sbi")


def test_the_sbi_script_covers_every_method():
    from sbi_core.export.script import SBI_SCRIPT_METHODS
    from sbi_core.methods.catalogue import method_names

    assert set(SBI_SCRIPT_METHODS) == set(method_names())


VECTOR_FIELDS = ["fmpe", "npse", "tsfmpe", "tsnpse"]


def _rounds(method: str) -> int:
    return 2 if method.startswith("ts") else 1


@pytest.mark.parametrize("method", VECTOR_FIELDS)
def test_sbi_script_of_a_vector_field(method, tmp_path):
    spec = tiny(method=method, simulations_per_round=777, hidden_features=24, num_transforms=3,
                num_rounds=_rounds(method))
    text = spec_to_script(spec, library="sbi")
    compile(text, "script.py", "exec")
    pyflakes_clean(text, tmp_path)
    cls, builder = {"fmpe": ("FMPE", "posterior_flow_nn"), "npse": ("NPSE", "posterior_score_nn")}[method[-4:]]
    for needle in (f"from sbi.inference import {cls}, simulate_for_sbi", f"from sbi.neural_nets import {builder}",
                   "hidden_features=24, num_layers=6)", f"inference = {cls}(prior=prior, vf_estimator=vf_estimator",
                   "from sbi_core.nn.training import vector_field_batch_size", "SIMULATIONS_PER_ROUND = 777"):
        assert needle in text, needle
    assert ('sde_type="ve"' in text) == ('sample_with="ode"' in text) == method.endswith("npse")
    assert "posterior_nn(" not in text and "auto_batch_size" not in text
    truncated = ("num_samples_to_estimate_support=4096)", "RestrictedPrior(prior, accept_reject_fn",
                 "train(force_first_round_loss=True")
    assert all((needle in text) == method.startswith("ts") for needle in truncated)


@pytest.mark.slow  # trains in a child process
@pytest.mark.parametrize("method", ["fmpe", "npse"])
def test_sbi_core_script_of_a_vector_field_reproduces_execute(method, tmp_path):
    spec = tiny(method=method, simulations_per_round=200, num_posterior_samples=50, max_epochs=2)
    done = run_script(spec_to_script(spec), tmp_path)
    assert done.returncode == 0, done.stderr
    _, samples = read_csv(tmp_path / "posterior_samples.csv")
    assert torch.allclose(samples, sbi_core.execute(spec).rounds[-1].posterior_samples, atol=1e-4)


@pytest.mark.skipif(not HAS_SBI, reason="the sbi toolbox is not installed (bench/requirements.txt)")
@pytest.mark.parametrize("method", VECTOR_FIELDS)
def test_sbi_script_of_a_vector_field_runs(method, tmp_path):
    spec = tiny(method=method, simulations_per_round=200, num_posterior_samples=50, max_epochs=2,
                num_rounds=_rounds(method))
    done = run_script(spec_to_script(spec, "sbi"), tmp_path)
    assert done.returncode == 0, done.stderr
    header, samples = read_csv(tmp_path / "posterior_samples.csv")
    assert header == ["b0", "b1"] and samples.shape == (50, 2) and torch.isfinite(samples).all()


def test_sbi_script_fixed_batch_size_and_table(tmp_path):
    spec = tiny(batch_size=50, simulator={"kind": "table", "path": STORE_FILE + "sims.csv",
                                          "theta_columns": ["b0", "b1"], "x_columns": ["y1"]},
                prior=[{"name": "b0", "dist": "normal", "loc": 0.0, "scale": 1.0},
                       {"name": "b1", "dist": "normal", "loc": 0.0, "scale": 1.0}], observation=[0.5])
    text = spec_to_script(spec, "sbi")
    pyflakes_clean(text, tmp_path)
    assert '"training_batch_size": 50' in text and "auto_batch_size" not in text
    assert "load_training_pairs(" in text and "simulate_for_sbi" not in text
    with pytest.raises(ScriptError, match="npe"):
        spec_to_script(RunSpec.from_dict({**spec.to_dict(), "method": "snpe", "num_rounds": 2}), "sbi")


@pytest.mark.skipif(not HAS_SBI, reason="the sbi toolbox is not installed (bench/requirements.txt)")
def test_sbi_prior_matches_every_family():
    prior = Prior.from_spec([
        {"name": "u", "dist": "uniform", "low": -1.0, "high": 2.0},
        {"name": "n", "dist": "normal", "loc": 0.5, "scale": 2.0},
        {"name": "ln", "dist": "lognormal", "loc": 0.1, "scale": 0.4},
        {"name": "b", "dist": "beta", "alpha": 2.0, "beta": 3.0, "low": -1.0, "high": 3.0},
        {"name": "b01", "dist": "beta", "alpha": 1.5, "beta": 1.5},
        {"name": "g", "dist": "gamma", "concentration": 2.0, "rate": 3.0},
        {"name": "h", "dist": "halfnormal", "scale": 0.7},
    ])
    text = spec_to_script(tiny(simulator="gaussian_linear", prior=prior.to_spec(), observation=[0.0] * 10), "sbi")
    namespace: dict = {"__name__": "not_main"}
    exec(compile(text, "script.py", "exec"), namespace)  # defines make_prior without running main
    theirs = namespace["make_prior"]()
    theta = prior.sample((500,), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(theirs.log_prob(theta), prior.log_prob(theta), atol=1e-3)
    assert namespace["PARAM_NAMES"] == prior.names


@pytest.mark.skipif(not HAS_SBI, reason="the sbi toolbox is not installed (bench/requirements.txt)")
@pytest.mark.parametrize("method", MCMC_METHODS + ["rejection_abc", "smc_abc"])
def test_sbi_script_of_a_likelihood_a_ratio_or_abc_runs(method, tmp_path):
    spec = tiny(method=method, simulations_per_round=200, num_posterior_samples=50, max_epochs=2,
                num_rounds=method_info(method).rounds(2))
    done = run_script(spec_to_script(spec, "sbi"), tmp_path)
    assert done.returncode == 0, done.stderr
    header, samples = read_csv(tmp_path / "posterior_samples.csv")
    assert header == ["b0", "b1"] and samples.shape == (50, 2) and torch.isfinite(samples).all()


@pytest.mark.skipif(not HAS_SBI, reason="the sbi toolbox is not installed (bench/requirements.txt)")
def test_sbi_script_runs_and_writes_the_samples(tmp_path):
    spec = tiny(simulations_per_round=200, num_posterior_samples=50)
    done = run_script(spec_to_script(spec, "sbi"), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "round 1/1: 200 simulations" in done.stdout
    header, samples = read_csv(tmp_path / "posterior_samples.csv")
    assert header == ["b0", "b1"] and samples.shape == (50, 2)
    assert all(math.isfinite(v) for v in samples.flatten().tolist())


# ---------------------------------------------------------------------------
# what the sbi toolbox cannot say, and bad input
# ---------------------------------------------------------------------------
def test_errors_say_what_to_fix():
    with pytest.raises(ScriptError) as info:
        spec_to_script(tiny(), library="pymc")
    assert isinstance(info.value, SBIError) and "'sbi_core'" in str(info.value) and "'sbi'" in str(info.value)
    fixed = tiny(prior=[{"name": "b0", "dist": "normal", "loc": 0.0, "scale": 1.0},
                        {"name": "b1", "dist": "fixed", "value": 0.3}])
    assert "sbi_core.RunSpec(" in spec_to_script(fixed)  # sbi_core runs fixed parameters
    with pytest.raises(ScriptError, match="'b1' is fixed"):
        spec_to_script(fixed, "sbi")
    with pytest.raises(ScriptError, match="PRIOR written in pendulum.py"):
        spec_to_script(tiny(simulator={"kind": "upload", "path": STORE_FILE + "pendulum.py"}), "sbi")
    with pytest.raises(SBIError, match="Unknown simulator 'no_such_model'. Built-in ones: linear_regression"):
        spec_to_script(tiny(simulator="no_such_model"))
    with pytest.raises(SBIError, match="Unknown simulator kind 'zip'"):
        spec_to_script(tiny(simulator={"kind": "zip", "path": "a.zip"}))
    with pytest.raises(SBIError):
        spec_to_script({"method": "npe", "num_rounds": 3})  # a dict is validated like any RunSpec
