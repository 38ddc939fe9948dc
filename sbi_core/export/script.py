"""Show the code: a RunSpec as a runnable, commented Python script.

:func:`spec_to_script` returns the text of a script that repeats the run a
:class:`~sbi_core.run.spec.RunSpec` describes, written for one of two libraries:

``"sbi_core"``
    builds the same RunSpec (its non-default settings written out) and runs it
    with :func:`sbi_core.execute`. Every random choice of a run derives from
    ``spec.seed`` (:class:`~sbi_core.stats.seeds.SeedPlan`), so the script's samples
    are the app's samples (up to float rounding, at the same thread count).
``"sbi"``
    the same run for the sbi toolbox 0.27: the prior as torch distributions
    (``BoxUniform`` when every marginal is uniform, else ``MultipleIndependent``
    of one distribution per parameter), the model as a plain function
    ``theta (n, D) -> x (n, K)``, ``simulate_for_sbi`` and ``NPE`` with
    ``posterior_nn``, the same budget, flow and training settings. Rounds
    follow sbi's tutorials: ``"npe"`` trains once on the prior; ``"snpe"``
    proposes from the last posterior at ``x_o`` (APT, sbi's NPE-C loss);
    ``"tsnpe"`` proposes from the prior truncated to the ``1 - eps``
    highest-density region of the last posterior (``RestrictedPrior`` with
    ``get_density_thresholder``, ``eps`` = sbi_core's quantile) and trains
    with the plain loss; ``"fmpe"`` and ``"npse"`` train sbi's ``FMPE`` / ``NPSE``
    once on the prior (``"tsfmpe"``/``"tsnpse"``: round by round on truncated
    proposals, as ``"tsnpe"``) with its MLP vector field (``posterior_flow_nn`` /
    ``posterior_score_nn``: the RunSpec's width, two hidden layers per residual
    block of sbi_core's network, a VE diffusion for NPSE) and sample by the ODE,
    as sbi_core does. ``"nle"``/``"snle"`` train sbi's ``NLE`` with
    ``likelihood_nn`` (the RunSpec's flow), ``"nre"``/``"snre"`` its ``NRE_C``
    with ``classifier_nn`` (a residual network, sbi_core's NRE-C loss settings);
    both sample by slice sampling in sbi_core's number of chains, warmup and
    thinning, and their later rounds propose from the last posterior.
    ``"rejection_abc"`` runs sbi's ``MCABC``, ``"smc_abc"`` its ``SMCABC``, both
    with sbi_core's distance (Euclidean on the data scaled by each number's MAD),
    quantile, minimum of 20 particles, regression adjustment and cross-validated
    kernel density; SMC-ABC is the closest of sbi's algorithms (a fixed number
    of particles per generation, the tolerance the quantile of the last
    generation's distances, a Gaussian kernel, no recycling), with the distance's
    scale from a pilot of prior simulations. The same posterior, not the same
    numbers: the two libraries draw their random numbers differently.
    A learned summary of the data becomes sbi's closest embedding network; the
    model's hand-made summary statistics (``embedding="handmade"``) are computed
    by sbi_core's own function (``Simulator.summarise``) inside the simulator
    and on ``x_o``, so sbi trains on the summaries with no embedding network.

Both scripts print one line per round (simulations, posterior mean and sd per
parameter) and write ``posterior_samples.csv`` in the folder they run in: the
final round's ``num_posterior_samples`` samples of the posterior at the
observation, one column per parameter under a header row of parameter names.

Files: an uploaded simulator or a table is referenced by its file name next to
the script (``Path(__file__).parent / name``), and the script's docstring says
"put <name> next to this script"; no path of this server is written. A
portable spec that carries the file's text inside
(:func:`sbi_core.uploads.files.portable_spec`) is treated the same way: the file is
referenced by name, not embedded, so the script stays short and readable and a
binary (Parquet) table works like a CSV one.

Example:

>>> from sbi_core.run.spec import RunSpec
>>> text = spec_to_script(RunSpec(simulator="two_moons", method="npe", num_rounds=1))
>>> compile(text, "script.py", "exec") is not None
True
"""

from __future__ import annotations

import inspect
import json
import textwrap
from dataclasses import dataclass, field, fields
from string import Template
from typing import Any, Optional, Union

from sbi_core.errors import SBIError
from sbi_core.methods.abc.rejection import DEFAULT_QUANTILE as REJECTION_QUANTILE, MIN_PARTICLES
from sbi_core.methods.abc.smc import DEFAULT_QUANTILE as SMC_QUANTILE
from sbi_core.methods.catalogue import method_info
from sbi_core.methods.nre import NRE
from sbi_core.methods.tsnpe import EXPENSIVE_REFERENCES, TruncatedProposal
from sbi_core.nn.handmade import get_summary
from sbi_core.posteriors.mcmc import chains_for
from sbi_core.run.loop import resolve_simulator
from sbi_core.run.spec import RunSpec
from sbi_core.simulators import get_simulator
from sbi_core.stats.mcmc.sample import DEFAULTS as MCMC_DEFAULTS
from sbi_core.stats.priors import Marginal, Prior
from sbi_core.stats.shapes import AUTO_EMBEDDING, HANDMADE, DataShape, embedding_for
from sbi_core.uploads.files import FILE_KINDS
from sbi_core.uploads.paths import safe_filename

__all__ = ["LIBRARIES", "SBI_SCRIPT_METHODS", "ScriptError", "spec_to_script"]

LIBRARIES = ("sbi_core", "sbi")
OUTPUT = "posterior_samples.csv"
SIMULATION_BATCH = 1000  # rows per simulator call in the sbi script
_FILE_KEYS = ("path", "file_name", "sha256", "source", "source_base64")  # how a reference names its file
_ALWAYS = ("simulator", "method", "seed")  # RunSpec settings the sbi_core script writes even at their default
SBI_SCRIPT_METHODS = (  # every method of the catalogue (tests/test_spec_script.py checks it)
    "npe", "snpe", "tsnpe", "fmpe", "tsfmpe", "npse", "tsnpse", "nle", "snle", "nre", "snre", "rejection_abc",
    "smc_abc")
_SBI_MCMC = {  # method -> (sbi's class, its network builder): a likelihood or a ratio, sampled by MCMC
    "nle": ("NLE", "likelihood_nn"), "snle": ("NLE", "likelihood_nn"),
    "nre": ("NRE_C", "classifier_nn"), "snre": ("NRE_C", "classifier_nn"),
}
_SBI_VECTOR_FIELDS = {  # method -> (sbi's class, its network builder and the builder's extra arguments)
    "fmpe": ("FMPE", "posterior_flow_nn", ""),
    "npse": ("NPSE", "posterior_score_nn", ', sde_type="ve"'),
}
_SBI_VECTOR_FIELDS.update(tsfmpe=_SBI_VECTOR_FIELDS["fmpe"], tsnpse=_SBI_VECTOR_FIELDS["npse"])
_SANDBOX_NOTE = ("your simulator file runs through sbi_core's loader, in a bubblewrap sandbox as in the app;",
                 "where bubblewrap is missing, set SBI_TRUSTED_UPLOADS=1 to run your own code directly")


class ScriptError(SBIError, ValueError):
    """A RunSpec that cannot be written as a script for the chosen library; the message says what to change."""


def spec_to_script(spec: Union[RunSpec, dict], library: str = "sbi_core") -> str:
    """The text of a runnable Python script that repeats ``spec``'s run and writes ``posterior_samples.csv``.

    Args:
        spec: a :class:`RunSpec` or its dict (validated).
        library: ``"sbi_core"`` (the same run, the same samples) or ``"sbi"``
            (the same run for the sbi toolbox 0.27); see the module docstring.

    Raises:
        ScriptError: an unknown ``library``, or a spec the sbi toolbox cannot
            express (a fixed parameter, an uploaded model without a prior).
        RunSpecError: ``spec`` is not a valid RunSpec.
    """
    if library not in LIBRARIES:
        raise ScriptError(f"library must be one of {', '.join(map(repr, LIBRARIES))}, got {library!r}.")
    spec = spec if isinstance(spec, RunSpec) else RunSpec.from_dict(dict(spec))
    spec.validate()
    model = _Model.of(spec)
    return _sbi_core_script(spec, model) if library == "sbi_core" else _sbi_script(spec, model)


# ---------------------------------------------------------------------------
# what both scripts share
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Model:
    """The spec's simulator reference: a built-in by name, or a file next to the script by its name."""

    kind: str  # "builtin", "upload" or "table"
    name: str  # the built-in's name or the file's name
    options: dict = field(default_factory=dict)  # the reference's other keys (columns, timeout, title)

    @classmethod
    def of(cls, spec: RunSpec) -> "_Model":
        ref = spec.simulator_ref
        if ref.get("kind") not in FILE_KINDS:  # a built-in by name (resolving it raises for any other kind)
            return cls("builtin", resolve_simulator(spec).name)
        raw = ref.get("file_name") or ref.get("path")
        if not isinstance(raw, str) or not raw.strip():
            raise ScriptError("The RunSpec's simulator names no file: give its 'path' or 'file_name'.")
        return cls(ref["kind"], safe_filename(raw), {k: v for k, v in ref.items() if k not in ("kind", *_FILE_KEYS)})

    @property
    def is_file(self) -> bool:
        return self.kind in FILE_KINDS

    @property
    def path_expr(self) -> str:
        """The file as the script finds it: next to the script, never a path of this server."""
        return f"HERE / {_py(self.name)}"

    def file_ref(self) -> str:
        """The simulator reference with its ``path`` pointing next to the script (a Python expression)."""
        items = [f'"kind": {_py(self.kind)}', f'"path": str({self.path_expr})']
        items += [f"{_py(k)}: {_py(v)}" for k, v in self.options.items()]
        return "{" + ", ".join(items) + "}"


def _py(value: Any) -> str:
    """A Python literal for a JSON-like value: double-quoted strings, exact floats (``repr``)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_py(k)}: {_py(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    return repr(value)


def _py_lines(value: Any) -> str:
    """Like :func:`_py`, but a list of dicts (a prior) gets one item per line."""
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return "[\n" + "".join(f"    {_py(v)},\n" for v in value) + "]"
    return _py(value)


def _doc(text: str) -> str:
    """``text`` made safe inside a triple-quoted docstring (one line, no quotes or backslashes)."""
    return " ".join(str(text).replace("\\", "/").replace('"', "'").split())


def _header(spec: RunSpec, model: _Model, what: str) -> list[str]:
    """The script's docstring lines: what it runs, which file it needs, what it writes."""
    title = _doc(spec.title) or f"{spec.method} on {model.name}"
    rounds = "1 round" if spec.rounds == 1 else f"{spec.rounds} rounds"
    lines = [f'"""{title}: {what}', ""]
    lines += textwrap.wrap(
        f"Generated by sbi_core.spec_to_script from the run's RunSpec ({spec.method}, {rounds} of "
        f"{spec.simulations_per_round} simulations, seed {spec.seed}).", 88)
    if model.is_file:
        kind = "simulator file" if model.kind == "upload" else "table of simulations"
        lines += ["", f"Put {model.name} next to this script: it is the run's {kind}."]
    lines += ["", "Run it with: python <this file>", f"Writes {OUTPUT}: the final round's posterior samples at the "
              "observation,", "one column per parameter under a header row of parameter names.", '"""']
    return lines


_SHARED = '''
def summarize(r, num_rounds, num_simulations, mean, std, names):
    """Print one line for round r (0-based): its simulations and the posterior mean +- sd per parameter."""
    parts = ", ".join(f"{n} {m:.3g} +- {s:.3g}" for n, m, s in zip(names, mean, std))
    print(f"round {r + 1}/{num_rounds}: {num_simulations} simulations; posterior {parts}", flush=True)


def write_samples(samples, names, path="$output"):
    """Write samples (n, D) as CSV under a header row of the D parameter names."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        writer.writerows(samples)
    print(f"wrote {len(samples)} posterior samples to {path}")
'''

_NEED_FILE = '''
    if not ($path).is_file():
        raise SystemExit(f"Put $name next to this script ({HERE}) and run it again.")
'''


def _assemble(spec: RunSpec, model: _Model, what: str, imports: list[str], constants: list[str],
              main: list[str]) -> str:
    """Docstring, imports, constants, the shared helpers and ``main()`` joined into one script."""
    parts = ["\n".join(imports)]
    if model.is_file:
        constants = ["HERE = Path(__file__).resolve().parent  # the folder of this script, where its file lies",
                     *constants]
        main = main[:2] + Template(_NEED_FILE).substitute(path=model.path_expr, name=model.name).strip("\n").split(
            "\n") + main[2:]
    if constants:
        parts.append("\n".join(constants))
    parts += [Template(_SHARED).substitute(output=OUTPUT).strip(), "\n".join(main)]
    text = "\n".join(_header(spec, model, what)) + "\n\n" + "\n\n\n".join(parts)
    return text.rstrip() + '\n\n\nif __name__ == "__main__":\n    main()\n'


def _sorted_imports(lines) -> list[str]:
    """``import x`` lines first, then ``from x import y``, each alphabetical (as isort orders a group)."""
    return sorted(lines, key=lambda line: (not line.startswith("import"), line))


def _imports(stdlib: list[str], third: list[str], model: _Model, ours: list[str]) -> list[str]:
    """Import lines in three groups (standard library, third party, sbi_core), a blank line between groups."""
    first = _sorted_imports(set(stdlib + (["from pathlib import Path"] if model.is_file else [])))
    groups = [first, third, ours]
    return [line for i, g in enumerate(g for g in groups if g) for line in ([""] if i else []) + list(g)]


# ---------------------------------------------------------------------------
# library="sbi_core": the RunSpec and sbi_core.execute
# ---------------------------------------------------------------------------
def _spec_kwargs(spec: RunSpec, model: _Model) -> list[str]:
    """``name=value,`` lines of the spec's settings that differ from RunSpec's defaults (and :data:`_ALWAYS`)."""
    lines = []
    for f in fields(RunSpec):
        value = getattr(spec, f.name)
        if f.name not in _ALWAYS and value == f.default:
            continue
        text = model.file_ref() if f.name == "simulator" and model.is_file else _py_lines(value)
        if f.name == "simulator" and not model.is_file:
            text = _py(model.name)
        comment = "  # every random choice of the run derives from it" if f.name == "seed" else ""
        lines.append(f"{f.name}={text}," + comment)
    return lines


def _sbi_core_script(spec: RunSpec, model: _Model) -> str:
    kwargs = textwrap.indent("\n".join(_spec_kwargs(spec, model)), " " * 8)
    main = [
        "def main():",
        '    """Run the spec with sbi_core, print each round, write the final posterior samples."""',
        "    spec = sbi_core.RunSpec(",
        kwargs,
        "    )",
        "",
        "    def show(event):",
        '        if event["type"] == "round":  # one event per finished round, with its summary',
        '            summarize(event["round"], event["num_rounds"], event["num_simulations"],',
        '                      event["mean"], event["std"], event["param_names"])',
        "",
        *([f"    # {_SANDBOX_NOTE[0]}", f"    # {_SANDBOX_NOTE[1]}"] if model.kind == "upload" else []),
        "    result = sbi_core.execute(spec, on_event=show)  # the same seed gives the app's samples",
        "    write_samples(result.rounds[-1].posterior_samples.tolist(), result.param_names)",
    ]
    imports = _imports(["import csv"], [], model, ["import sbi_core"])
    return _assemble(spec, model, "the same run with sbi_core.", imports, [], main)


# ---------------------------------------------------------------------------
# library="sbi": the same run with the sbi toolbox 0.27
# ---------------------------------------------------------------------------
_TORCH_FAMILIES = {  # sbi_core family -> (torch distribution, its arguments from the marginal's numbers)
    "uniform": ("Uniform", ("low", "high")),
    "normal": ("Normal", ("loc", "scale")),
    "lognormal": ("LogNormal", ("loc", "scale")),
    "gamma": ("Gamma", ("concentration", "rate")),
    "halfnormal": ("HalfNormal", ("scale",)),
    "beta": ("Beta", ("alpha", "beta")),
}


def _torch_marginal(m: Marginal) -> tuple[str, set[str]]:
    """``m`` as a torch distribution over one number (an expression) and the names it imports."""
    if m.dist not in _TORCH_FAMILIES:
        raise ScriptError(
            f"Parameter '{m.name}' is {m.dist} ({m.params}), which has no torch distribution for sbi's prior: "
            "make it a free parameter (e.g. a narrow uniform) or write its value into the simulator.")
    cls, keys = _TORCH_FAMILIES[m.dist]
    expr = f"{cls}(" + ", ".join(f"torch.tensor([{m.params[k]!r}])" for k in keys) + ")"
    if m.dist == "beta" and (m.params["low"], m.params["high"]) != (0.0, 1.0):
        low, width = m.params["low"], m.params["high"] - m.params["low"]
        affine = f"AffineTransform(torch.tensor([{low!r}]), torch.tensor([{width!r}]))"
        return (f"TransformedDistribution({expr},\n{' ' * 24}{affine})",
                {cls, "TransformedDistribution", "AffineTransform"})
    return expr, {cls}


def _sbi_prior(prior: Prior) -> tuple[list[str], list[str]]:
    """The ``prior = ...`` lines of the sbi script and its import lines."""
    words = [f"# {_doc(m.name)} ~ {m.dist}(" + ", ".join(f"{k}={v:g}" for k, v in m.params.items()) + ")"
             for m in prior.marginals]
    if all(m.dist == "uniform" for m in prior.marginals):
        low = ", ".join(repr(m.params["low"]) for m in prior.marginals)
        high = ", ".join(repr(m.params["high"]) for m in prior.marginals)
        return (words + [f"prior = BoxUniform(low=torch.tensor([{low}]), high=torch.tensor([{high}]))"],
                ["from sbi.utils import BoxUniform"])
    if prior.dim == 1:  # sbi combines two or more; one distribution is made a 1-D event instead
        expr, used = _torch_marginal(prior.marginals[0])
        return (words + [f"prior = Independent({expr}, 1)"],
                [f"from torch.distributions import {', '.join(sorted(used | {'Independent'}))}"])
    names: set[str] = set()
    lines = ["prior = MultipleIndependent(["]
    for m, said in zip(prior.marginals, words):
        expr, used = _torch_marginal(m)
        names |= used
        lines += [f"    {said}"] + [f"    {part}" for part in f"{expr},".split("\n")]
    lines.append("])")
    return lines, ["from sbi.utils import MultipleIndependent",
                   f"from torch.distributions import {', '.join(sorted(names))}"]


def _sbi_inputs(spec: RunSpec, model: _Model) -> Prior:
    """The prior the sbi script writes out, or a :class:`ScriptError` when the spec has none to write."""
    if model.kind == "table" and spec.is_sequential:
        raise ScriptError("A table of simulations trains amortized NPE only: choose method 'npe'.")
    if spec.method not in SBI_SCRIPT_METHODS:
        raise ScriptError(f"The sbi script covers the methods {', '.join(SBI_SCRIPT_METHODS)}, not {spec.method!r}.")
    if spec.prior is not None:
        return Prior.from_spec(spec.prior)
    if model.is_file:
        raise ScriptError(f"This run uses the PRIOR written in {model.name}; the sbi script writes the prior out, "
                          "so set the RunSpec's prior (the Your model & data page does).")
    return get_simulator(model.name).prior


def _handmade(spec: RunSpec, model: _Model) -> Optional[str]:
    """The name of the built-in model's hand-made summaries when the spec uses them (``embedding="handmade"``),
    else ``None``; an :class:`SBIError` saying what to choose where the model has none."""
    if spec.embedding != HANDMADE:
        return None
    if model.kind != "builtin":
        raise ScriptError("Hand-made summaries are for built-in models; an uploaded simulator returning its own "
                          "summary statistics already works as a vector model: choose another summary of the data.")
    sim = get_simulator(model.name)
    embedding_for(HANDMADE, sim.data_shape, summary=sim.handmade_summary)  # refused, with what to choose, without
    return sim.handmade_summary


def _sbi_model(spec: RunSpec, model: _Model) -> list[str]:
    """Lines that make ``simulator(theta) -> x`` and ``x_o`` (or, for a table, ``theta`` and ``x``); with
    hand-made summaries, ``x`` and ``x_o`` are the model's summaries of the simulations and the observation."""
    if model.kind == "table":
        return ["# the table's rows as (theta, x) pairs; rows outside the prior are dropped, as in the app",
                f"theta, x = load_training_pairs({model.file_ref()}, PRIOR_SPEC)",
                f"x_o = torch.tensor({_py(spec.observation)})"]
    if model.kind == "upload":
        options = "".join(f", {k}={v!r}" for k, v in model.options.items() if k in ("timeout", "memory_mb"))
        lines = [f"# {_SANDBOX_NOTE[0]}", f"# {_SANDBOX_NOTE[1]}",
                 f"model = sbi_core.load_simulator({model.path_expr}, prior=PRIOR_SPEC{options})"]
    else:
        lines = [f"model = sbi_core.get_simulator({_py(model.name)})  # the model: theta (n, D) -> x (n, K)"]
    lines += ["simulation_rng = torch.Generator().manual_seed(SEED)", "",
              "def simulator(theta):",
              '    """theta (n, D) -> x (n, K): one simulation per row, from a seeded random stream."""',
              "    return model.simulate(theta, generator=simulation_rng)", ""]
    obs = "model.default_observation  # the model's example observation" if spec.observation is None else (
        f"torch.tensor({_py(spec.observation)})")
    fewer = _observed_trials(spec, model)
    summary = _handmade(spec, model)
    if summary is not None:
        body = ["    x = model.simulate(theta, generator=simulation_rng)"]
        if fewer is not None:
            body.append(f'    x[:, {fewer.size}:] = float("nan")  # sets of as many trials as observed '
                        f'({fewer.max_trials}): the rest missing')
        lines[-3:-1] = ['    """theta (n, D) -> the model\'s hand-made summary statistics (n, S), one simulation '
                        'per row."""', *body, "    return model.summarise(x)"]
        x_o = "model.default_observation" if spec.observation is None else f"torch.tensor({_py(spec.observation)})"
        labels = ", ".join(get_summary(summary).labels)
        return lines + ["# sbi trains on the hand-made summaries, computed by sbi_core's function for this model:",
                        *[f"# {part}" for part in textwrap.wrap(labels, 86)],
                        f"x_o = model.summarise({x_o})  # the observation's summaries"]
    if fewer is not None:
        k = fewer.size
        lines[-3:-1] = [f"    # sbi 0.27 refuses NaN in x_o, so it trains on sets of as many trials as observed "
                        f"({fewer.max_trials})",
                        f"    return model.simulate(theta, generator=simulation_rng)[:, :{k}]"]
    return lines + [f"x_o = {obs}"]


def _observed_trials(spec: RunSpec, model: _Model) -> DataShape | None:
    """A built-in trials model observed with fewer trials than it simulates: the shape of the observed
    sets (which the sbi script trains on), else ``None``."""
    if spec.observation is None or model.kind != "builtin":
        return None
    shape = get_simulator(model.name).data_shape
    if shape.kind != "trials" or len(spec.observation) >= shape.size:
        return None
    return DataShape.trials(len(spec.observation) // shape.trial_width, shape.trial_width)


def _sbi_constants(spec: RunSpec, prior: Prior, model: _Model, trains: bool = True) -> list[str]:
    """The script's settings; without ``trains`` (ABC) the budget and names only."""
    training = {"max_num_epochs": spec.max_epochs, "stop_after_epochs": spec.patience,
                "learning_rate": spec.learning_rate, "validation_fraction": spec.validation_fraction}
    if spec.batch_size is not None:
        training["training_batch_size"] = spec.batch_size
    lines = [f"SEED = {spec.seed!r}", f"NUM_ROUNDS = {spec.rounds!r}",
             f"SIMULATIONS_PER_ROUND = {spec.simulations_per_round!r}",
             f"NUM_POSTERIOR_SAMPLES = {spec.num_posterior_samples!r}",
             f"PARAM_NAMES = {_py(prior.names)}"]
    if model.is_file:
        lines.append(f"PRIOR_SPEC = {_py_lines(prior.to_spec())}  # sbi_core's form of the prior below")
    if not trains:
        return lines
    if spec.method in _SBI_MCMC:
        mcmc = {"num_chains": chains_for(spec.num_posterior_samples), "warmup_steps": MCMC_DEFAULTS["warmup"],
                "thin": MCMC_DEFAULTS["thin"]}
        lines.append(f"MCMC = {_py(mcmc)}  # sbi_core's chains for this many draws, its warmup and thinning")
    lines.append("TRAINING = {  # sbi_core's training settings under sbi's names (patience = stop_after_epochs)")
    lines += [f"    {_py(k)}: {v!r}," for k, v in training.items()] + ["}"]
    if spec.batch_size is None:
        shape = _static_shape(spec, model)
        learned = (shape is not None and _handmade(spec, model) is None
                   and embedding_for(spec.embedding, shape) is not None)
        lines += ["", "", "def training_batch_size(num_pairs):",
                  '    """sbi_core\'s automatic batch size for num_pairs pairs: about 8 steps per epoch'
                  + (' (smaller batches with a learned summary)."""' if learned else '."""'),
                  f'    return {_batch_rule(spec)}(int(num_pairs * (1 - TRAINING["validation_fraction"]))'
                  + (', learned_summary=True)' if learned else ')')]
    return lines


def _batch_rule(spec: RunSpec) -> str:
    """The name of sbi_core's automatic batch size for the spec's method."""
    return "vector_field_batch_size" if spec.method in _SBI_VECTOR_FIELDS else "auto_batch_size"


def _sbi_round(spec: RunSpec, model: _Model, r: str, proposal: str) -> list[str]:
    """One round's lines: simulate from ``proposal``, train, snapshot the posterior at ``x_o``, summarize."""
    lines = [] if model.kind == "table" else [
        f"theta, x = simulate_for_sbi(simulator, {proposal}, num_simulations=SIMULATIONS_PER_ROUND,",
        f"                            simulation_batch_size={SIMULATION_BATCH}, show_progress_bar=False)"]
    batch = "**TRAINING"
    if spec.batch_size is None:
        lines.append("num_pairs += len(theta)  # training uses the pairs of every round so far")
        batch = "training_batch_size=training_batch_size(num_pairs), **TRAINING"
    if spec.method == "snpe":
        lines += ["# APT (NPE-C): the loss corrects for theta drawn from the proposal instead of the prior",
                  f"inference.append_simulations(theta, x, proposal={proposal}).train({batch})"]
    elif method_info(spec.method).truncated:
        lines += ["# the plain loss (no proposal correction): valid while every truncated proposal holds the posterior",
                  f"inference.append_simulations(theta, x).train(force_first_round_loss=True, {batch})"]
    elif _SBI_MCMC.get(spec.method, ("",))[0] == "NRE_C":
        atoms, gamma = _nre_defaults()
        lines += [f"# NRE-C: each pair against {atoms - 1} parameters of other pairs, class odds gamma = {gamma!r}",
                  f"inference.append_simulations(theta, x).train(num_classes={atoms - 1}, gamma={gamma!r}, {batch})"]
    else:  # NPE, the vector fields and NLE (a likelihood needs no correction for where theta came from)
        lines.append(f"inference.append_simulations(theta, x).train({batch})")
    if _SBI_VECTOR_FIELDS.get(spec.method, ("",))[0] == "NPSE":  # sbi samples NPSE by its SDE unless told
        lines += ["# the probability-flow ODE, as sbi_core samples NPSE",
                  'posterior = inference.build_posterior(sample_with="ode").set_default_x(x_o)']
    elif spec.method in _SBI_MCMC:
        lines += ["# slice sampling in many short chains, as sbi_core samples a likelihood or a ratio",
                  'posterior = inference.build_posterior(mcmc_method="slice_np_vectorized", mcmc_parameters=MCMC)',
                  "posterior = posterior.set_default_x(x_o)"]
    else:
        lines.append("posterior = inference.build_posterior().set_default_x(x_o)")
    return lines + [
        "samples = posterior.sample((NUM_POSTERIOR_SAMPLES,), show_progress_bars=False)",
        f"summarize({r}, NUM_ROUNDS, len(theta), samples.mean(0).tolist(), samples.std(0).tolist(), PARAM_NAMES)"]


def _sbi_rounds(spec: RunSpec, model: _Model) -> list[str]:
    """The round loop of the spec's method (straight-line for one-round NPE)."""
    start = ["num_pairs = 0"] if spec.batch_size is None else []
    if not spec.is_sequential:
        return start + _sbi_round(spec, model, "0", "prior")
    nxt = ["proposal = posterior  # the next round simulates where the posterior at x_o puts its mass"]
    if method_info(spec.method).truncated:
        quantile = TruncatedProposal.quantile
        support = ""
        if spec.method in _SBI_VECTOR_FIELDS:  # a density solves an ODE: sbi_core's count, not sbi's 1,000,000
            support = f", num_samples_to_estimate_support={EXPENSIVE_REFERENCES}"
        nxt = [f"# the prior truncated to the posterior's highest-density region holding 1 - {quantile!r} of its mass",
               f"accept_reject_fn = get_density_thresholder(posterior, quantile={quantile!r}{support})",
               'proposal = RestrictedPrior(prior, accept_reject_fn, sample_with="rejection")']
    body = _sbi_round(spec, model, "r", "proposal") + ["if r + 1 < NUM_ROUNDS:"] + ["    " + s for s in nxt]
    return start + ["proposal = prior", "for r in range(NUM_ROUNDS):"] + ["    " + s for s in body]


# sbi_core's learned summaries as sbi 0.27's embedding classes (sbi.neural_nets.embedding_nets), built
# from the model's data shape ``shape`` at run time; the flat x (n, K) is folded where a class needs it.
_SBI_EMBEDDINGS = {  # name -> (sbi classes, the expression's lines)
    "mlp": (["FCEmbedding"], ["FCEmbedding(input_dim=shape.size, output_dim=20)"]),
    "cnn1d": (["CNNEmbedding"], ["CNNEmbedding(input_shape=shape.dims[1:], in_channels=shape.dims[0], output_dim=20)"]),
    "cnn2d": (["CNNEmbedding"], ["CNNEmbedding(input_shape=shape.dims[1:], in_channels=shape.dims[0], output_dim=20)"]),
    "gru": (["LRUEmbedding"], ["torch.nn.Sequential(",
                               "    torch.nn.Unflatten(1, shape.dims), TimeMajor(),",
                               "    LRUEmbedding(input_dim=shape.dims[0], output_dim=20))"]),
    "set": (["FCEmbedding", "PermutationInvariantEmbedding"],
            ["torch.nn.Sequential(",
             "    torch.nn.Unflatten(1, shape.dims),  # (n, K) -> (n, M, D): one row per trial",
             "    PermutationInvariantEmbedding(FCEmbedding(input_dim=shape.dims[1], output_dim=20),",
             "                                  trial_net_output_dim=20, aggregation_fn=\"mean\", output_dim=20))"]),
}
_SBI_EMBEDDINGS["set_attention"] = _SBI_EMBEDDINGS["set"]  # sbi 0.27 pools trials by sum or mean only
_SBI_EMBEDDING_NOTES = {
    "gru": "sbi has no GRU embedding: its recurrent LRU embedding reads the series instead",
    "set": "sbi trains on the full sets as simulated; sbi_core also trains on random subsets of their trials",
    "set_attention": "sbi 0.27 has no attention pooling: its mean-pooled permutation-invariant embedding instead",
}


def _static_shape(spec: RunSpec, model: _Model) -> DataShape | None:
    """The model's data shape where the script writer knows it (a built-in, a table), else ``None``."""
    if model.kind == "builtin":
        return _observed_trials(spec, model) or get_simulator(model.name).data_shape
    if model.kind == "table":
        ref = spec.simulator_ref
        return DataShape.from_spec(ref.get("data_shape"), size=len(ref.get("x_columns") or ()))
    return None


def _nre_defaults() -> tuple[int, float]:
    """``(num_atoms, gamma)`` of sbi_core's NRE-C loss as a RunSpec run trains it (:class:`NRE`'s defaults)."""
    params = inspect.signature(NRE).parameters
    return int(params["num_atoms"].default), float(params["gamma"].default)


def _sbi_embedding(spec: RunSpec, model: _Model) -> tuple[list[str], list[str], list[str], str]:
    """Imports, module-level definitions, lines of ``main`` and the ``posterior_nn`` keyword
    for the spec's learned summary (nothing when it uses none)."""
    if _handmade(spec, model) is not None:  # no network: the simulator returns the summaries (_sbi_model)
        return [], [], [], ""
    shape = _static_shape(spec, model)
    if shape is not None:
        choice = embedding_for(spec.embedding, shape)
        if choice is None:
            return [], [], [], ""
        choices = [choice]
        shape_line = f"shape = DataShape.from_spec({_py(shape.to_dict())})  # one simulation: {shape.describe()}"
    elif spec.embedding == "none":
        return [], [], [], ""
    else:  # an uploaded model declares its shape in its file: resolved when the script runs
        choices = ([c for c in AUTO_EMBEDDING.values() if c] if spec.embedding == "auto" else [spec.embedding])
        shape_line = "shape = model.data_shape  # how one simulation folds, as the model file declares it"
    classes = sorted({c for name in choices for c in _SBI_EMBEDDINGS[name][0]})
    imports = [f"from sbi.neural_nets.embedding_nets import {', '.join(classes)}"]
    used = (["DataShape"] if shape is not None else []) + (["embedding_for"] if len(choices) > 1 else [])
    tail = [f"from sbi_core.stats.shapes import {', '.join(used)}"] if used else []
    defs = []
    if "gru" in choices:
        defs = ["class TimeMajor(torch.nn.Module):",
                '    """(n, C, T) -> (n, T, C): the time axis first, as a recurrent network reads it."""',
                "", "    def forward(self, x):", "        return x.transpose(1, 2)", "", ""]
    if len(choices) == 1:
        note = _SBI_EMBEDDING_NOTES.get(choices[0])
        expr = _SBI_EMBEDDINGS[choices[0]][1]
        lines = [shape_line, f"# the learned summary {choices[0]!r}, as sbi_core's embedding={spec.embedding!r} picks it"]
        lines += ([f"# {note}"] if note else []) + [f"embedding_net = {expr[0]}"] + expr[1:]
    else:
        lines = [shape_line, f"embedding = embedding_for({_py(spec.embedding)}, shape)  # the learned summary, as in the app",
                 "embedding_net = torch.nn.Identity()  # a vector: no learned summary"]
        for name in choices:
            expr = _SBI_EMBEDDINGS[name][1]
            note = f"  # {_SBI_EMBEDDING_NOTES[name]}" if name in _SBI_EMBEDDING_NOTES else ""
            lines += [f"if embedding == {_py(name)}:{note}", f"    embedding_net = {expr[0]}"]
            lines += ["    " + part for part in expr[1:]]
    return imports, tail + defs, lines, ", embedding_net=embedding_net"


def _make_prior(prior_lines: list[str]) -> list[str]:
    """``make_prior()``: the lines of :func:`_sbi_prior` in a function."""
    return (["def make_prior():",
             '    """The RunSpec\'s prior as torch distributions, one per parameter in PARAM_NAMES order."""']
            + ["    " + line for line in prior_lines] + ["    return prior"])


_SCALED_DISTANCE = """
def scaled_distance(scale=None):
    \"\"\"sbi_core's ABC distance: Euclidean after dividing each number of x by its spread, scale (K,),
    or, with None, each column's spread in the batch of simulations compared; a simulation with NaN or
    infinity is never accepted.\"\"\"
    def distance(x_o, x):
        s = robust_scale(x) if scale is None else scale
        d = (((x - x_o) / s) ** 2).sum(-1).sqrt()
        return torch.where(torch.isfinite(d), d, torch.full_like(d, float("inf")))
    return distance


def robust_scale(x):
    \"\"\"(K,) spread of each column of x (N, K) on its finite rows: the MAD (scaled to a normal's sd),
    else the sd, else 1.\"\"\"
    x = x[torch.isfinite(x).all(1)]
    mad = 1.4826 * (x - x.median(0).values).abs().median(0).values
    sd = x.std(0) if len(x) > 1 else torch.zeros_like(mad)
    return torch.where(mad > 0, mad, torch.where(sd > 0, sd, torch.ones_like(mad)))
"""


def _sbi_abc_script(spec: RunSpec, model: _Model, prior: Prior, prior_lines: list[str],
                    prior_imports: list[str]) -> str:
    """Rejection ABC as sbi's ``MCABC``, SMC-ABC as its ``SMCABC``: sbi_core's distance, quantile, regression
    adjustment and kernel density; for SMC-ABC the closest of sbi's settings (see the module docstring)."""
    if spec.embedding not in ("auto", "none"):
        raise ScriptError("ABC compares the simulations' own numbers: choose no learned summary for its sbi script.")
    if model.kind == "table":
        raise ScriptError("sbi's ABC simulates as it goes, so its script needs a simulator, not a table: "
                          "choose NPE for a table's script.")
    smc = spec.method == "smc_abc"
    cls = "SMCABC" if smc else "MCABC"
    quantile = SMC_QUANTILE if smc else REJECTION_QUANTILE
    imports = _imports(["import csv"], _sorted_imports(["import torch", f"from sbi.inference import {cls}"]
                                                      + prior_imports), model, ["import sbi_core"])
    constants = _sbi_constants(spec, prior, model, trains=False) + [
        f"QUANTILE = {quantile!r}  # sbi_core's: " + ("each generation's tolerance is this quantile of the last "
                                                       "one's distances" if smc else f"keep the closest {quantile:.0%}"),
        f"MIN_PARTICLES = {MIN_PARTICLES}  # sbi_core keeps at least this many: fewer cannot shape a density",
        "REGRESSION_ADJUSTMENT = True  # Beaumont et al. (2002)'s local-linear correction, sbi_core's default"]
    helper = _SCALED_DISTANCE.strip().split("\n")
    body = (["torch.manual_seed(SEED)  # sbi draws from torch's global generator: reruns repeat"]
            + ([f"torch.set_num_threads({spec.num_threads!r})"] if spec.num_threads is not None else [])
            + ["prior = make_prior()"] + _sbi_model(spec, model))
    if smc:
        body += ["# sbi_core measures the distance's scale on its first generation and keeps it; sbi's SMCABC",
                 "# has no such step, so the scale comes from SIMULATIONS_PER_ROUND prior simulations of their own",
                 "scale = robust_scale(simulator(prior.sample((SIMULATIONS_PER_ROUND,))))",
                 "inference = SMCABC(simulator, prior, distance=scaled_distance(scale), requires_iid_data=False,",
                 f"                   simulation_batch_size={SIMULATION_BATCH}, show_progress_bars=False)",
                 "# generations of SIMULATIONS_PER_ROUND simulations keeping the QUANTILE closest, as in sbi_core",
                 "posterior = inference(x_o.reshape(1, -1),  # one observation (sbi reads more rows as trials)",
                 "                      num_particles=max(MIN_PARTICLES, round(QUANTILE * SIMULATIONS_PER_ROUND)),",
                 "                      num_initial_pop=SIMULATIONS_PER_ROUND,",
                 "                      num_simulations=NUM_ROUNDS * SIMULATIONS_PER_ROUND,",
                 "                      epsilon_decay=QUANTILE, distance_based_decay=True,",
                 "                      lra=REGRESSION_ADJUSTMENT, kde=True)"]
    else:
        body += ["# the distance's scale is measured on the simulations it compares: MCABC passes all at once",
                 "inference = MCABC(simulator, prior, distance=scaled_distance(), requires_iid_data=False,",
                 f"                  simulation_batch_size={SIMULATION_BATCH}, show_progress_bars=False)",
                 "# the QUANTILE closest of SIMULATIONS_PER_ROUND prior draws, then a kernel density on them",
                 "posterior = inference(x_o.reshape(1, -1), num_simulations=SIMULATIONS_PER_ROUND,",
                 "                      quantile=max(QUANTILE, MIN_PARTICLES / SIMULATIONS_PER_ROUND),",
                 "                      lra=REGRESSION_ADJUSTMENT, kde=True)"]
    body += ["samples = posterior.sample((NUM_POSTERIOR_SAMPLES,))",
             "summarize(NUM_ROUNDS - 1, NUM_ROUNDS, SIMULATIONS_PER_ROUND, samples.mean(0).tolist(), "
             "samples.std(0).tolist(), PARAM_NAMES)",
             "write_samples(samples.tolist(), PARAM_NAMES)"]
    main = ["def main():", f'    """{spec.method} with sbi: the budget of the RunSpec and sbi_core\'s ABC settings."""']
    main += [("    " + line) if line else "" for line in body]
    constants += ["", ""] + helper + ["", ""] + _make_prior(prior_lines)
    return _assemble(spec, model, "the same run with the sbi toolbox (0.27).", imports, constants, main)


def _sbi_script(spec: RunSpec, model: _Model) -> str:
    prior = _sbi_inputs(spec, model)
    prior_lines, prior_imports = _sbi_prior(prior)
    if method_info(spec.method).learns == "nothing":
        return _sbi_abc_script(spec, model, prior, prior_lines, prior_imports)
    if spec.method in _SBI_VECTOR_FIELDS:
        cls, builder, extra = _SBI_VECTOR_FIELDS[spec.method]
    else:  # a flow posterior (NPE), or a likelihood or ratio sampled by MCMC
        (cls, builder), extra = _SBI_MCMC.get(spec.method, ("NPE", "posterior_nn")), ""
    sbi_names = [cls] + ([] if model.kind == "table" else ["simulate_for_sbi"])
    third = ["import torch", f"from sbi.inference import {', '.join(sbi_names)}",
             f"from sbi.neural_nets import {builder}"] + prior_imports
    if method_info(spec.method).truncated:
        third.append("from sbi.utils import RestrictedPrior, get_density_thresholder")
    tail = ["import sbi_core"] if model.kind != "table" else ["from sbi_core.tables import load_training_pairs"]
    if spec.batch_size is None:
        tail.append(f"from sbi_core.nn.training import {_batch_rule(spec)}")
    # NLE models the data as they are ("auto" means no summary for it, and it refuses a learned one)
    e_imports, e_defs, e_lines, e_kwarg = ([], [], [], "") if cls == "NLE" else _sbi_embedding(spec, model)
    third += e_imports
    tail += [d for d in e_defs if d.startswith("from ")]
    e_defs = [d for d in e_defs if not d.startswith("from ")]
    imports = _imports(["import csv"], _sorted_imports(third), model, tail)
    threads = [f"torch.set_num_threads({spec.num_threads!r})"] if spec.num_threads is not None else []
    flow = (f'posterior_nn(model={_py(spec.density_estimator)}, hidden_features={spec.hidden_features!r}, '
            f'num_transforms={spec.num_transforms!r}{e_kwarg})')
    build = [f"density_estimator = {flow}",
             "inference = NPE(prior=prior, density_estimator=density_estimator, show_progress_bars=False)"]
    if cls == "NLE":
        if spec.embedding not in ("auto", "none"):  # as the run itself would refuse it
            raise ScriptError("NLE learns the likelihood of the data as they are and takes no summary of them: "
                              "choose no learned summary, or NPE or NRE for one.")
        build = [f"density_estimator = likelihood_nn(model={_py(spec.density_estimator)}, "
                 f"hidden_features={spec.hidden_features!r}, num_transforms={spec.num_transforms!r})",
                 "inference = NLE(prior=prior, density_estimator=density_estimator, show_progress_bars=False)"]
    elif cls == "NRE_C":
        x_kwarg = e_kwarg.replace("embedding_net=", "embedding_net_x=")  # the classifier reads x through it
        build = ["# sbi_core's classifier: a residual network of two blocks (sbi's default depth)",
                 f'classifier = classifier_nn(model="resnet", hidden_features={spec.hidden_features!r}{x_kwarg})',
                 "inference = NRE_C(prior=prior, classifier=classifier, show_progress_bars=False)"]
    if spec.method in _SBI_VECTOR_FIELDS:
        build = ["# sbi's MLP vector field: the RunSpec's width, two hidden layers per residual block of sbi_core's",
                 f'vf_estimator = {builder}(model="mlp"{extra}, hidden_features={spec.hidden_features!r}, '
                 f'num_layers={2 * spec.num_transforms!r}{e_kwarg})',
                 f"inference = {cls}(prior=prior, vf_estimator=vf_estimator, show_progress_bars=False)"]
    body = (["torch.manual_seed(SEED)  # sbi draws from torch's global generator: reruns repeat"] + threads
            + ["prior = make_prior()"] + _sbi_model(spec, model) + e_lines
            + build
            + _sbi_rounds(spec, model)
            + ["write_samples(samples.tolist(), PARAM_NAMES)"])
    main = ["def main():",
            f'    """{spec.method} with sbi: the budget, flow and training settings of the RunSpec."""']
    main += [("    " + s) if s else "" for s in body]
    constants = _sbi_constants(spec, prior, model) + ["", ""] + e_defs + _make_prior(prior_lines)
    return _assemble(spec, model, "the same run with the sbi toolbox (0.27).", imports, constants, main)

