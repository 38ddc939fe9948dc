"""Prior specs, checked without torch: the families, their numbers and the bounds on them.

A prior spec is plain JSON, a list of ``{"name": ..., "dist": ..., <numbers>}``
(see :mod:`sbi_core.stats.priors` for the families). Everything about a spec
that can be wrong is checked here, with messages that name the parameter and
say what to fix, so a RunSpec is validated without loading torch;
:class:`~sbi_core.stats.priors.Prior` builds its distributions on these checks.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from sbi_core.errors import SBIError

__all__ = ["PriorSpecError", "FAMILIES", "PRIOR_BOUNDS", "MAX_MAGNITUDE", "parse_marginal", "check_marginals",
           "check_spec_shape", "check_prior_spec"]

MAX_MAGNITUDE = 1e12  # the largest size of a number in an observation, true parameter or prior

# The numbers of a prior spec (the RunSpec's table of bounds, sbi_core.run.spec.BOUNDS, points here): a size
# bound keeps every sample, density and plot range finite in the 32-bit floats the networks use.
PRIOR_BOUNDS: dict[str, tuple[float, float]] = {
    "number": (-MAX_MAGNITUDE, MAX_MAGNITUDE),  # any number of a prior
    "positive": (1e-6, MAX_MAGNITUDE),  # scale, rate
    # alpha, beta, concentration: below 0.5 a share of the draws is smaller than the smallest 32-bit float,
    # so they come out as exactly 0, where a gamma prior's density is 0 (and a run's log densities -inf)
    "shape": (0.5, 1e6),
    "lognormal loc": (-30.0, 30.0),  # exp(loc + 6 scale) stays a 32-bit float
    "lognormal scale": (1e-6, 5.0),
}


class PriorSpecError(SBIError, ValueError):
    """A prior specification that cannot be turned into a distribution."""


# family -> (required numbers, optional numbers with defaults)
FAMILIES: dict[str, tuple[tuple[str, ...], dict[str, float]]] = {
    "uniform": (("low", "high"), {}),
    "normal": (("loc", "scale"), {}),
    "lognormal": (("loc", "scale"), {}),
    "beta": (("alpha", "beta"), {"low": 0.0, "high": 1.0}),
    "gamma": (("concentration", "rate"), {}),
    "halfnormal": (("scale",), {}),
    "fixed": (("value",), {}),
}

_ALIASES = {
    "gaussian": "normal",
    "half_normal": "halfnormal",
    "half-normal": "halfnormal",
    "log_normal": "lognormal",
    "log-normal": "lognormal",
    "constant": "fixed",
}

_POSITIVE = {"scale", "alpha", "beta", "concentration", "rate"}
_SHAPES = {"alpha", "beta", "concentration"}  # shape numbers (see PRIOR_BOUNDS["shape"])

def _number(name: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or value is None:
        raise PriorSpecError(f"Parameter '{name}': '{key}' must be a number, got {value!r}.")
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond float range
        raise PriorSpecError(
            f"Parameter '{name}': '{key}' must be a number, got {value!r}."
        ) from None
    if not math.isfinite(out):
        raise PriorSpecError(f"Parameter '{name}': '{key}' must be finite, got {value!r}.")
    return out


def _check_sizes(name: str, dist: str, params: dict[str, float]) -> None:
    """Every number of a marginal within :data:`PRIOR_BOUNDS`: beyond them, samples, densities or
    plot ranges overflow the 32-bit floats that networks train on."""
    for key, value in params.items():
        row = "shape" if key in _SHAPES else "positive" if key in _POSITIVE else "number"
        if dist == "lognormal":
            row = f"lognormal {key}"
        lo, hi = PRIOR_BOUNDS[row]
        if not lo <= value <= hi:
            raise PriorSpecError(f"Parameter '{name}': '{key}' must be from {lo:g} to {hi:g}, got {value:g}.")


def parse_marginal(spec: Any, index: int = 0) -> tuple[str, str, dict[str, float]]:
    """``(name, family, numbers)`` of entry ``index`` of a prior spec, aliases resolved and defaults filled in.

    Raises:
        PriorSpecError: what is wrong with the entry, naming the parameter.
    """
    if not isinstance(spec, dict):
        raise PriorSpecError(
            f"Prior entry {index + 1} must be a mapping like "
            f"{{'name': 'a', 'dist': 'uniform', 'low': 0, 'high': 1}}, got {spec!r}."
        )
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PriorSpecError(f"Prior entry {index + 1} needs a non-empty text 'name'.")
    name = name.strip()
    dist = spec.get("dist")
    if not isinstance(dist, str):
        raise PriorSpecError(
            f"Parameter '{name}': 'dist' must be one of {sorted(FAMILIES)}, got {dist!r}."
        )
    dist = _ALIASES.get(dist.strip().lower(), dist.strip().lower())
    if dist not in FAMILIES:
        raise PriorSpecError(
            f"Parameter '{name}': unknown family '{spec.get('dist')}'. "
            f"Choose one of {', '.join(sorted(FAMILIES))}."
        )
    required, optional = FAMILIES[dist]
    allowed = {"name", "dist", *required, *optional}
    extra = sorted(set(spec) - allowed)
    if extra:
        raise PriorSpecError(
            f"Parameter '{name}': a {dist} prior takes {', '.join(required + tuple(optional))}; "
            f"remove {', '.join(map(repr, extra))}."
        )
    params: dict[str, float] = {}
    for key in required:
        if key not in spec:
            raise PriorSpecError(
                f"Parameter '{name}': a {dist} prior needs '{key}' "
                f"(it takes {', '.join(required + tuple(optional))})."
            )
        params[key] = _number(name, key, spec[key])
    for key, default in optional.items():
        params[key] = _number(name, key, spec.get(key, default))
    for key in _POSITIVE & set(params):
        if params[key] <= 0:
            raise PriorSpecError(
                f"Parameter '{name}': '{key}' must be greater than 0, got {params[key]:g}."
            )
    _check_sizes(name, dist, params)
    if "low" in params and params["low"] >= params["high"]:
        raise PriorSpecError(
            f"Parameter '{name}': 'low' ({params['low']:g}) must be smaller than "
            f"'high' ({params['high']:g})."
        )
    return name, dist, params


def check_spec_shape(spec: Any) -> None:
    """Raise :class:`PriorSpecError` unless ``spec`` is a list (or tuple) of entries."""
    if isinstance(spec, (str, bytes)) or not isinstance(spec, (list, tuple)):
        raise PriorSpecError(
            "A prior spec is a list of parameters, e.g. "
            "[{'name': 'a', 'dist': 'uniform', 'low': 0, 'high': 1}]."
        )


def check_marginals(marginals: Sequence[tuple[str, str]]) -> None:
    """The checks on a prior as a whole, over its ``(name, family)`` pairs: at least one parameter,
    each name once, at least one not fixed."""
    if not marginals:
        raise PriorSpecError("The prior needs at least one parameter.")
    seen: set[str] = set()
    for name, _ in marginals:
        if name in seen:
            raise PriorSpecError(
                f"Parameter name '{name}' is used twice; give each parameter its own name."
            )
        seen.add(name)
    if all(dist == "fixed" for _, dist in marginals):
        raise PriorSpecError(
            "Every parameter is fixed: leave at least one free to infer."
        )


def check_prior_spec(spec: Any) -> list[dict[str, Any]]:
    """The prior spec ``spec``, checked as :meth:`Prior.from_spec <sbi_core.stats.priors.Prior.from_spec>`
    checks it and normalised as ``Prior.from_spec(spec).to_spec()`` writes it, without torch.

    Raises:
        PriorSpecError: what is wrong, naming the parameter.
    """
    check_spec_shape(spec)
    parsed = [parse_marginal(s, i) for i, s in enumerate(spec)]
    check_marginals([(name, dist) for name, dist, _ in parsed])
    return [{"name": name, "dist": dist, **params} for name, dist, params in parsed]
