"""The catalogue of inference methods: names, titles, summaries and "is it sequential", without torch.

What a RunSpec, a cost estimate, a comparison or a page needs to know about a
method is here, so validating a RunSpec loads no network code. The registry
(:mod:`sbi_core.methods.registry`) pairs each entry with the ``build`` function
of its module; a method is one module, one entry here and one line there
(``tests/test_methods.py`` checks that the two lists agree).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sbi_core.errors import SBIError

__all__ = ["MethodInfo", "CATALOGUE", "method_names", "method_info", "loss_smoothing"]


@dataclass(frozen=True)
class MethodInfo:
    """A named inference method, as the RunSpec and the pages see it.

    name: the RunSpec's ``method`` (``"npe"``).
    title: a short label (``"Amortized NPE"``).
    summary: one or two sentences for a student: what it learns and where it simulates.
    sequential: False for a one-round method (``num_rounds`` is then 1).
    learns: ``"posterior"``, ``"likelihood"``, ``"ratio"`` or ``"nothing"`` (ABC).
    options: extra RunSpec settings the method takes (passed to its ``build``).
    loss_smoothing: epochs over which the loss chart averages the curves (0: drawn as measured); flow and
        score matching estimate their loss over random times and noise, so it is ragged from epoch to epoch.
    truncated: True where later rounds draw from the prior truncated to the last posterior's high-density region
        (TSNPE, TSFMPE, TSNPSE): their posterior is meant to be right for data from that region, which is
        where the checks draw their test data.
    network: what the method trains: ``"flow"`` (a normalizing flow: ``density_estimator`` picks its kind,
        ``hidden_features`` its width, ``num_transforms`` its layers), ``"vector_field"`` (flow or score
        matching: no flow kind; ``hidden_features`` the width, ``num_transforms`` the residual blocks,
        :mod:`sbi_core.methods.vector_field`), ``"classifier"`` (NRE) or ``"none"`` (ABC).
    """

    name: str
    title: str
    summary: str
    sequential: bool
    learns: str
    options: tuple[str, ...] = ()
    loss_smoothing: int = 0
    network: str = "flow"
    truncated: bool = False

    def rounds(self, num_rounds: int) -> int:
        """How many rounds a run of this method has when ``num_rounds`` are asked for."""
        return int(num_rounds) if self.sequential else 1


def info_pair(name: str, *, learns: str, options: tuple[str, ...] = (), amortized: str,
              sequential: str, network: str = "flow") -> tuple[MethodInfo, MethodInfo]:
    """The amortized (one round) and sequential entries of one estimator family.

    name: the amortized method's name (``"nle"``); the sequential one is
        ``"s" + name`` (``"snle"``), titled ``"Amortized NLE"`` and ``"Sequential SNLE"``.
    amortized, sequential: the two summaries for people.

    >>> one, rounds = info_pair("nle", learns="likelihood", amortized="...", sequential="...")
    >>> (one.name, one.title, one.sequential), (rounds.name, rounds.title, rounds.sequential)
    (('nle', 'Amortized NLE', False), ('snle', 'Sequential SNLE', True))
    """
    label = name.upper()
    return (
        MethodInfo(name=name, title=f"Amortized {label}", summary=amortized, sequential=False, learns=learns,
                   options=options, network=network),
        MethodInfo(name=f"s{name}", title=f"Sequential S{label}", summary=sequential, sequential=True,
                   learns=learns, options=options, network=network),
    )


_NPE = MethodInfo(
    name="npe",
    title="Amortized NPE",
    summary=(
        "Simulates once from the prior and trains one network that turns any observation into its "
        "posterior: slower to train, then instant for every new observation."
    ),
    sequential=False,
    learns="posterior",
)
_SNPE = MethodInfo(
    name="snpe",
    title="Sequential SNPE",
    summary=(
        "Each round simulates where the last posterior puts its mass, so the budget is spent near the "
        "observation; a contrastive (APT) loss corrects for not simulating from the prior."
    ),
    sequential=True,
    learns="posterior",
    options=("num_atoms",),
)
_TSNPE = MethodInfo(
    name="tsnpe",
    title="Sequential TSNPE",
    summary=(
        "Each round simulates from the part of the prior where the last posterior still puts its mass "
        "(a shrinking region), and trains with the plain NPE loss: cheaper per round than SNPE."
    ),
    sequential=True,
    learns="posterior",
    truncated=True,
)
_FMPE = MethodInfo(
    name="fmpe",
    title="Amortized FMPE",
    summary=(
        "Flow matching: simulates once from the prior and trains a network that steers random noise, step by "
        "step, into the posterior of any observation; simple to train, and drawing samples takes a few dozen "
        "network passes each."
    ),
    sequential=False,
    learns="posterior",
    options=("time_exponent", "sigma_min", "steps", "solver"),
    loss_smoothing=5,
    network="vector_field",
)
_NPSE = MethodInfo(
    name="npse",
    title="Amortized NPSE",
    summary=(
        "Score-based diffusion: simulates once from the prior and trains a network to remove noise added to the "
        "parameters; running the noise backwards turns it into the posterior of any observation."
    ),
    sequential=False,
    learns="posterior",
    options=("sde", "steps", "solver", "sampler"),
    loss_smoothing=5,
    network="vector_field",
)


def truncated_variant(amortized: MethodInfo, summary: str) -> MethodInfo:
    """The sequential entry of ``amortized`` with TSNPE's truncated proposals: its options, loss smoothing and
    network, named ``"ts" + name`` and titled ``"Sequential TS..."``.

    >>> truncated_variant(_FMPE, "...").name, truncated_variant(_FMPE, "...").title
    ('tsfmpe', 'Sequential TSFMPE')
    """
    return replace(amortized, name=f"ts{amortized.name}", title=f"Sequential TS{amortized.name.upper()}",
                   summary=summary, sequential=True, truncated=True)


_TSFMPE = truncated_variant(_FMPE, (
    "Flow matching round by round: each round simulates from the part of the prior where the last posterior "
    "still puts its mass (a shrinking region, as TSNPE), and the network keeps learning with its plain loss."))
_TSNPSE = truncated_variant(_NPSE, (
    "Score-based diffusion round by round: each round simulates from the part of the prior where the last "
    "posterior still puts its mass (a shrinking region, as TSNPE), and the network keeps learning to denoise."))
_NLE, _SNLE = info_pair(
    "nle",
    learns="likelihood",
    options=("num_chains", "warmup", "thin"),
    amortized=(
        "Simulates once from the prior and learns the likelihood, how the data come out for each parameter "
        "value; the posterior is then explored by MCMC chains for any observation."
    ),
    sequential=(
        "Learns the likelihood round by round, each round simulating where the last posterior puts its mass; "
        "MCMC chains turn likelihood times prior into posterior samples. Often the most accurate per simulation."
    ),
)
_NRE, _SNRE = info_pair(
    "nre",
    learns="ratio",
    options=("num_atoms", "gamma", "loss", "regularization", "num_chains", "warmup", "thin"),
    network="classifier",
    amortized=(
        "Simulates once from the prior and trains a classifier to tell matching (parameter, data) pairs from "
        "shuffled ones; its score is a likelihood ratio, which MCMC chains turn into posterior samples."
    ),
    sequential=(
        "The ratio classifier of NRE, trained round by round on simulations where the last posterior puts "
        "its mass; MCMC chains sample the posterior each round."
    ),
)
_SMC_ABC = MethodInfo(
    name="smc_abc",
    title="SMC-ABC",
    summary=(
        "Rejection ABC in generations: each generation perturbs the particles the last one kept and "
        "accepts only closer simulations, so the tolerance shrinks and fewer simulations are wasted. "
        "No network; weights correct for not drawing from the prior."
    ),
    sequential=True,
    learns="nothing",
    network="none",
    options=("quantile", "min_acceptance", "kernel", "neighbours", "regression_adjustment", "recycle"),
)
_REJECTION_ABC = MethodInfo(
    name="rejection_abc",
    title="Rejection ABC",
    summary=(
        "Simulates from the prior and keeps the parameters whose simulations land closest to the "
        "observation: no network, nothing learnt, but most simulations are thrown away."
    ),
    sequential=False,
    learns="nothing",
    network="none",
    options=("quantile", "regression_adjustment"),
)

# every method by its RunSpec name, in the order the pages offer them
CATALOGUE: dict[str, MethodInfo] = {m.name: m for m in (
    _SNPE, _TSNPE, _NPE, _FMPE, _TSFMPE, _NPSE, _TSNPSE, _SNLE, _NLE, _SNRE, _NRE, _SMC_ABC, _REJECTION_ABC,
)}


def method_names() -> tuple[str, ...]:
    """The names a RunSpec's ``method`` may take, in the order the pages offer them."""
    return tuple(CATALOGUE)


def loss_smoothing(name: str) -> int:
    """Epochs over which the loss chart of a ``name`` run averages its curves (0 for a name not catalogued)."""
    info = CATALOGUE.get(name)
    return info.loss_smoothing if info is not None else 0


def method_info(name: str) -> MethodInfo:
    """The :class:`MethodInfo` called ``name``, or an :class:`SBIError` listing the choices."""
    try:
        return CATALOGUE[name]
    except (KeyError, TypeError):
        raise SBIError(f"method must be one of {', '.join(map(repr, CATALOGUE))}, got {name!r}.") from None
