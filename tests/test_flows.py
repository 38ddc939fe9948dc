"""Flows: shapes, z-scoring inside the density, 1-D handling, persistence."""


import pytest
import torch

from sbi_core.nn.flows import ConditionalFlow, build_flow, zscore_stats


@pytest.mark.parametrize("kind", ["nsf", "maf"])
@pytest.mark.parametrize("D", [1, 2, 4])
def test_shapes_and_finite(kind, D):
    theta, x = torch.randn(64, D) * 5 + 3, torch.randn(64, 3)
    flow = build_flow(kind, theta, x, hidden_features=16, num_transforms=2)
    lp = flow.log_prob(theta, x)
    assert lp.shape == (64,) and torch.isfinite(lp).all()
    s = flow.sample(10, x[0], generator=torch.Generator().manual_seed(0))
    assert s.shape == (10, D)
    s2, lp2 = flow.sample_and_log_prob(10, x[0], generator=torch.Generator().manual_seed(0))
    assert torch.allclose(s, s2, atol=1e-5)
    assert torch.allclose(lp2, flow.log_prob(s2, x[0].expand(10, -1)), atol=1e-3)


def test_density_is_in_original_units():
    """An untrained flow (near identity) on z-scored theta has the z-scoring Jacobian."""
    g = torch.Generator().manual_seed(0)
    theta = torch.randn(4000, 2, generator=g) * torch.tensor([10.0, 0.5]) + 5  # Jacobian 1 / (10 * 0.5)
    x = torch.randn(4000, 1, generator=g)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        flow = build_flow("maf", theta, x, hidden_features=8, num_transforms=1)
    # integrate exp(log q) over a grid covering the mass (+-10 sd: a randomly initialised layer may
    # widen the density a little): ~1 (without the z-scoring Jacobian it would be 5)
    g0 = torch.linspace(5 - 100, 5 + 100, 500)
    g1 = torch.linspace(5 - 5.0, 5 + 5.0, 500)
    grid = torch.cartesian_prod(g0, g1)
    with torch.no_grad():
        dens = flow.log_prob(grid, torch.zeros(len(grid), 1)).exp()
    mass = dens.sum() * (g0[1] - g0[0]) * (g1[1] - g1[0])
    assert mass.item() == pytest.approx(1.0, abs=0.05)


def test_one_dimensional_flow_is_not_just_gaussian():
    """With one parameter, the flow can learn a bimodal conditional (a MAF could not)."""
    torch.manual_seed(0)
    n = 3000
    theta = torch.cat([torch.randn(n // 2) * 0.2 - 2, torch.randn(n // 2) * 0.2 + 2])[:, None]
    x = torch.zeros(n, 1) + torch.randn(n, 1) * 1e-3
    flow = build_flow("maf", theta, x, hidden_features=16, num_transforms=2)
    opt = torch.optim.Adam(flow.parameters(), lr=5e-3)
    for _ in range(300):
        opt.zero_grad()
        loss = -flow.log_prob(theta, x).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        at_modes = flow.log_prob(torch.tensor([[-2.0], [2.0]]), torch.zeros(2, 1))
        at_gap = flow.log_prob(torch.tensor([[0.0]]), torch.zeros(1, 1))
    assert (at_modes > at_gap + 2).all()


def test_zscore_constant_column():
    data = torch.cat([torch.randn(10, 1), torch.ones(10, 1)], 1)
    mean, std = zscore_stats(data)
    assert std[1] == 1.0 and torch.isfinite(mean).all()
    flow = build_flow("nsf", torch.randn(10, 2), data, hidden_features=8, num_transforms=1)
    assert torch.isfinite(flow.log_prob(torch.randn(10, 2), data)).all()


def test_payload_round_trip():
    theta, x = torch.randn(50, 3), torch.randn(50, 2)
    flow = build_flow("nsf", theta, x, hidden_features=8, num_transforms=2)
    again = ConditionalFlow.from_payload(flow.to_payload())
    assert torch.allclose(flow.log_prob(theta, x), again.log_prob(theta, x))


def test_nflows_only_imported_in_flows():
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1]
    importing = re.compile(r"^\s*(import nflows|from nflows[. ])", re.MULTILINE)
    users = [
        p.relative_to(root).as_posix()
        for p in list(root.glob("sbi_core/**/*.py")) + list(root.glob("pages/*.py")) + [root / "app.py"]
        if p.exists() and importing.search(p.read_text())
    ]
    assert users == ["sbi_core/nn/flows.py"]
