"""Take it away (AppTest): Rounds and Train offer the samples, the ArviZ file and the code of a finished run."""

from __future__ import annotations

import io

import numpy as np
import pytest

from sbi_core import RunSpec
from sbi_core.jobs.worker import run_worker
from sbi_core.store.runs import RunStore
from sbi_ui import keys as K
from sbi_ui.export_view import samples_csv

from apptest_support import run_page

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("export_store")
    mp = pytest.MonkeyPatch()
    mp.setenv("SBI_STORE_DIR", str(root))
    store = RunStore(root)
    spec = RunSpec(simulator="two_moons", method="snpe", num_rounds=2, simulations_per_round=150, max_epochs=3,
                   hidden_features=16, num_transforms=2, num_posterior_samples=120, num_threads=1, title="export")
    rid = store.create_run(spec)
    assert run_worker(store, rid) == "done", store.get_run(rid).message
    yield store, rid
    mp.undo()


def _codes(at) -> list[str]:
    return [c.value for c in at.code]


def test_samples_csv_has_a_header_of_names_and_every_sample():
    samples = np.array([[0.1, -2.0], [1.5e-7, 3.25]])
    text = samples_csv(samples, ["theta1", "theta2"]).decode()
    assert text.splitlines()[0] == "theta1,theta2"
    np.testing.assert_allclose(np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1), samples, rtol=1e-8)


def test_rounds_page_offers_csv_netcdf_and_the_code(finished):
    store, rid = finished
    at = run_page(rid, "pages/rounds.py")
    assert at.get("download_button"), "no download buttons"
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Round 2 samples (CSV)" in labels and "Every round (ArviZ NetCDF)" in labels
    assert "Report (HTML, opens offline)" in labels and "Figure (PNG)" in labels and "Figure (SVG)" in labels
    scripts = [c for c in _codes(at) if "import sbi_core" in c or "from sbi_core" in c]
    assert scripts, _codes(at)
    compile(scripts[0], "run_sbi_core.py", "exec")
    assert "seed" in scripts[0] and "posterior_samples.csv" in scripts[0]


def test_the_code_panel_switches_to_the_sbi_toolbox(finished):
    store, rid = finished
    at = run_page(rid, "pages/train.py")
    control = at.get("button_group")
    assert control, "no library switch"
    at.session_state[f"{K.W_CODE_TRAIN}_library"] = "sbi"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    scripts = [c for c in _codes(at) if "import sbi" in c or "from sbi" in c]
    assert any("simulate_for_sbi" in c for c in scripts), [c[:200] for c in _codes(at)]
    compile([c for c in scripts if "simulate_for_sbi" in c][0], "run_sbi.py", "exec")


def test_the_netcdf_button_builds_an_arviz_file_of_every_round(finished, tmp_path):
    import arviz as az

    from sbi_ui import export_view

    store, rid = finished
    data = export_view._netcdf(rid)  # what the button's callable returns when pressed
    assert data[:8] == b"\x89HDF\r\n\x1a\n"  # NetCDF-4 is HDF5
    path = tmp_path / "run.nc"
    path.write_bytes(data)
    idata = az.from_netcdf(str(path))
    np.testing.assert_allclose(idata.posterior["theta1"].values[0], store.round_samples(rid)[-1][:, 0], rtol=1e-6)
    assert idata.posterior_rounds.sizes["round"] == 2


def test_the_report_button_builds_the_runs_html_report(finished):
    from sbi_ui import export_view

    store, rid = finished
    html = export_view._report(rid).decode()
    assert html.lstrip().lower().startswith("<!doctype html") and "export" in html and "posterior_samples.csv" in html
