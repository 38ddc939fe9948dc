"""RunSpec validation and JSON round trip; the headless command line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from python_child import child_env
import sbi_core
from sbi_core import RunSpec, RunSpecError
from sbi_core.run.loop import execute


def test_round_trip_and_demo():
    spec = RunSpec.demo()
    again = RunSpec.from_json(spec.to_json())
    assert again == spec
    assert spec.method == "snpe" and spec.num_rounds == 4 and spec.simulator == "two_moons"


@pytest.mark.parametrize(
    "change,message",
    [
        ({"method": "abc"}, "method must be one of"),
        ({"density_estimator": "gp"}, "density_estimator"),
        ({"num_rounds": 0}, "num_rounds"),
        ({"simulations_per_round": 5}, "simulations_per_round"),
        ({"method": "npe", "num_rounds": 3}, "set num_rounds to 1"),
        ({"learning_rate": 2.0}, "learning_rate"),
        ({"batch_size": 1}, "batch_size"),
        ({"seed": "x"}, "seed"),
        ({"max_epochs": 1.5}, "max_epochs"),
    ],
)
def test_bad_specs(change, message):
    with pytest.raises(RunSpecError, match=message):
        RunSpec(**change)


def test_unknown_and_malformed_json():
    with pytest.raises(RunSpecError, match="Unknown RunSpec setting"):
        RunSpec.from_dict({"simulatr": "two_moons"})
    with pytest.raises(RunSpecError, match="not valid JSON"):
        RunSpec.from_json("{oops")


def test_execute_is_reproducible_and_reports_unknown_model():
    spec = RunSpec(simulator="gaussian_mixture", method="npe", num_rounds=1, simulations_per_round=300,
                   max_epochs=3, hidden_features=16, num_transforms=2, num_posterior_samples=50, seed=3)
    a, b = execute(spec), execute(spec)
    assert (a.rounds[0].posterior_samples == b.rounds[0].posterior_samples).all()
    with pytest.raises(RunSpecError, match="Unknown simulator 'nope'"):
        execute(RunSpec(simulator="nope"))


def test_spec_prior_and_observation_override():
    spec = RunSpec(
        simulator="two_moons", method="npe", num_rounds=1, simulations_per_round=200, max_epochs=2,
        hidden_features=16, num_transforms=1, num_posterior_samples=100,
        prior=[{"name": "a", "dist": "uniform", "low": 0, "high": 1}, {"name": "b", "dist": "uniform", "low": 0, "high": 1}],
        observation=[0.1, 0.2],
    )
    result = execute(spec)
    s = result.rounds[0].posterior_samples
    assert ((s >= 0) & (s <= 1)).all()
    assert result.param_names == ["a", "b"]
    assert result.x_obs.tolist() == pytest.approx([0.1, 0.2])


def _cli(*args, input=None, cwd: Path):
    return subprocess.run(
        [sys.executable, "-m", "sbi_core", *args], cwd=cwd, capture_output=True, text=True, input=input, timeout=300,
        env=child_env({"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "HOME": str(cwd)}),
    )


def test_cli_help(tmp_path):
    out = _cli("--help", cwd=tmp_path)
    assert out.returncode == 0
    assert "RunSpec" in out.stdout and "--out" in out.stdout


@pytest.mark.slow
def test_cli_runs_a_spec_and_writes_outputs(tmp_path):
    spec = {"simulator": "coin_flip", "method": "snpe", "num_rounds": 2, "simulations_per_round": 200,
            "max_epochs": 5, "hidden_features": 16, "num_transforms": 2, "num_posterior_samples": 100, "num_threads": 1}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    out = _cli(str(path), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "round 1/2" in out.stderr and "round 2/2" in out.stderr
    assert "posterior mean" in out.stdout and "p " in out.stdout
    assert (tmp_path / "out" / "posterior.pt").exists()
    lines = (tmp_path / "out" / "round_1_samples.csv").read_text().splitlines()
    assert lines[0] == "p" and len(lines) == 101
    events = [json.loads(line) for line in (tmp_path / "out" / "events.jsonl").read_text().splitlines()]
    assert events[0]["type"] == "run_started" and sum(e["type"] == "round" for e in events) == 2
    post = sbi_core.Posterior.load(tmp_path / "out" / "posterior.pt")
    assert post.sample((10,), seed=0).shape == (10, 1)


def test_cli_reports_bad_spec_plainly(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"method": "magic"}')
    out = _cli(str(path), cwd=tmp_path)
    assert out.returncode == 2
    assert "error: method must be one of" in out.stderr
    assert "Traceback" not in out.stderr
    out = _cli(str(tmp_path / "missing.json"), cwd=tmp_path)
    assert out.returncode == 2 and "cannot read" in out.stderr
