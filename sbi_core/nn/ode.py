"""Fixed-step ODE solvers in torch, vectorised over samples, and the divergence of a vector field.

A continuous normalizing flow (:mod:`.vector_field`) moves samples along
``dy/dt = v(y, t)``; drawing a sample solves that ODE from the base
distribution's end of the time interval to the data's, and its density
follows the instantaneous change of variables (Chen et al., 2018),

    d/dt log p_t(y_t) = -div v(y_t, t),

so integrating ``[y, l]`` with ``dl/dt = div v`` from the data's end
(``y = theta``, ``l = 0``) back to the base's gives
``log p_data(theta) = log p_base(y_base) + l_base``.

The solvers take a fixed number of equal steps (no error control): the cost is
known in advance (``steps`` times 1, 2 or 4 evaluations of ``v`` for
``"euler"``, ``"midpoint"`` or ``"rk4"``), every sample of a batch takes the same
path through the code, and a result is a deterministic function of its
inputs. Their global error falls as ``h``, ``h^2`` and ``h^4`` with the step
``h``.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

__all__ = ["SOLVERS", "odeint", "divergence", "check_solver"]

# solver -> evaluations of the vector field per step
SOLVERS: dict[str, int] = {"euler": 1, "midpoint": 2, "rk4": 4}

Field = Callable[[float, Tensor], Tensor]  # v(t, y (N, ...)) -> (N, ...)


def check_solver(solver: str, steps: int) -> None:
    """A ``ValueError`` for an unknown solver or a step count below 1."""
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(map(repr, SOLVERS))}, got {solver!r}")
    if int(steps) < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")


def odeint(field: Field, y0: Tensor, t0: float, t1: float, steps: int, solver: str = "rk4") -> Tensor:
    """``y(t1)`` for ``dy/dt = field(t, y)``, ``y(t0) = y0``, in ``steps`` equal steps (``t1 < t0`` runs backwards).

    ``field(t, y)`` receives ``t`` as a Python float and a batch ``y``; it must act on
    every row on its own (the rows are independent problems solved together).
    """
    check_solver(solver, steps)
    h = (float(t1) - float(t0)) / int(steps)
    y = y0
    for i in range(int(steps)):
        t = float(t0) + i * h
        if solver == "euler":
            y = y + h * field(t, y)
        elif solver == "midpoint":
            k1 = field(t, y)
            y = y + h * field(t + 0.5 * h, y + 0.5 * h * k1)
        else:
            k1 = field(t, y)
            k2 = field(t + 0.5 * h, y + 0.5 * h * k1)
            k3 = field(t + 0.5 * h, y + 0.5 * h * k2)
            k4 = field(t + h, y + h * k3)
            y = y + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return y


def divergence(velocity: Callable[[Tensor], Tensor], y: Tensor,
               probe: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """``(v (N, D), div v (N,))`` of ``velocity: (N, D) -> (N, D)`` at ``y (N, D)``, rows independent.

    Exact (``probe=None``): the trace of the Jacobian from ``D`` backward passes, one per
    coordinate. With ``probe (N, D)`` (Rademacher or standard normal noise) Hutchinson's
    unbiased estimate ``e^T (dv/dy) e`` from one backward pass instead.
    """
    with torch.enable_grad():
        y = y.detach().requires_grad_(True)
        v = velocity(y)
        if probe is not None:
            (grad,) = torch.autograd.grad((v * probe).sum(), y)
            return v.detach(), (grad * probe).sum(1)
        div = torch.zeros(y.shape[0], dtype=y.dtype)
        for i in range(y.shape[1]):
            (grad,) = torch.autograd.grad(v[:, i].sum(), y, retain_graph=i + 1 < y.shape[1])
            div = div + grad[:, i]
    return v.detach(), div.detach()
