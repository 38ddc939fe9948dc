"""Learned summaries (issue 21): sbi_core's embedding networks against the ``sbi`` toolbox's, on the same data.

Three parts, each run in one process with the same torch thread count, sbi_core first:

* ``series``: the AR(1) series of 100 steps (``ar1_series``), 10,000 simulations; C2ST against
  the exact grid posterior at 5 observations for sbi_core NPE with its 1-D CNN (the stride-2 design, the
  default, with NSF or with 3 MAF layers; the pyramid design, the default before, with NSF), with a plain
  MLP on the raw series, and for sbi 0.27 NPE with its ``CNNEmbedding``; training time of each.
* ``trials``: a Gaussian mean measured by 1 to 20 repeated trials (``gaussian_trials``),
  20,000 simulations; C2ST against the exact posterior at 1, 5 and 20 trials (5 observations
  each) for sbi_core's permutation-invariant network (one network for every trial count) and
  sbi's ``PermutationInvariantEmbedding`` (trained on the full sets, as sbi trains).
* ``sir``: the SIR epidemic as raw daily counts (``sir_series``, 1-D CNN) and as the summary
  statistics of ``sir``: C2ST between the two posteriors at the same epidemic and the time of each.

``sbi`` is a benchmark-only dependency (``pip install -r bench/requirements.txt``).

    python bench/embeddings.py [--part series|trials|sir|all] [--threads 2] [--skip-sbi]
"""

from __future__ import annotations

import argparse

import torch

import sbi_core
from common import NUM_REFERENCE, machine, timer, write_section
from sbi_core import c2st

SERIES, TRIALS = "ar1_series", "gaussian_trials"


def reference_observations(task: str, count: int, seed: int, trials: int | None = None):
    """``count`` ``(theta, x_flat, reference samples)`` of ``task``; for a trials model only the first
    ``trials`` trials are observed (the rest are NaN rows)."""
    sim = sbi_core.get_simulator(task)
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        theta = sim.prior.sample((1,), generator=g)[0]
        x = sim.simulate(theta, generator=g)
        if trials is not None:
            shape = sim.data_shape
            x = torch.as_tensor(shape.pad_trials(x.reshape(shape.dims)[:trials].numpy()), dtype=torch.float32)
        out.append((theta, x, sim.reference_posterior(x, NUM_REFERENCE, generator=g)))
    return out


def simulations(task: str, n: int, seed: int = 0):
    sim = sbi_core.get_simulator(task)
    g = torch.Generator().manual_seed(seed)
    theta = sim.prior.sample((n,), generator=g)
    return sim, theta, sim.simulate(theta, generator=g)


def sbi_prior(prior):
    """The prior as a torch distribution sbi accepts (uniform boxes and independent normals)."""
    from sbi.utils import BoxUniform, MultipleIndependent
    from torch.distributions import Normal

    if all(m.dist == "uniform" for m in prior.marginals):
        return BoxUniform(torch.tensor([m.params["low"] for m in prior.marginals]),
                          torch.tensor([m.params["high"] for m in prior.marginals]))
    if prior.dim == 1 and prior.marginals[0].dist == "normal":  # sbi combines two or more: a 1-D event instead
        from torch.distributions import Independent

        m = prior.marginals[0]
        return Independent(Normal(torch.tensor([m.params["loc"]]), torch.tensor([m.params["scale"]])), 1)
    parts = []
    for m in prior.marginals:
        if m.dist != "normal":
            raise SystemExit(f"bench: no sbi prior for {m.dist}")
        parts.append(Normal(torch.tensor([m.params["loc"]]), torch.tensor([m.params["scale"]])))
    return MultipleIndependent(parts)


def train_ours(prior, theta, x, seed: int, **kwargs):
    with timer() as t:
        post = sbi_core.NPE(prior, seed=seed, **kwargs).train(theta, x)
    return post, t["seconds"]


def train_sbi(prior, theta, x, embedding_net, seed: int):
    from sbi.inference import NPE
    from sbi.neural_nets import posterior_nn

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        with timer() as t:
            inference = NPE(prior=sbi_prior(prior), density_estimator=posterior_nn("maf", embedding_net=embedding_net),
                            show_progress_bars=False)
            inference.append_simulations(theta, x).train()
            post = inference.build_posterior()
    return post, t["seconds"]


def score(sample, obs) -> list[float]:
    """C2ST of ``sample(x, n) -> (n, D)`` against each observation's reference."""
    return [float(c2st(ref, sample(x, NUM_REFERENCE))) for _, x, ref in obs]


def sbi_sampler(post):
    def sample(x, n):
        with torch.random.fork_rng():
            torch.manual_seed(1)
            return post.sample((n,), x=x[None], show_progress_bars=False)
    return sample


def part_series(args) -> str:
    sim, theta, x = simulations(SERIES, args.simulations)
    obs = reference_observations(SERIES, args.observations, seed=1000)
    rows = []
    for name, kwargs in (("sbi_core NPE (NSF, the default), 1-D CNN (embedding='cnn1d': strided, the default)",
                          dict(embedding="cnn1d")),
                         ("sbi_core NPE (NSF), pyramid 1-D CNN (design='pyramid', the default before)",
                          dict(embedding={"kind": "cnn1d", "design": "pyramid"})),
                         ("sbi_core NPE (NSF), MLP on the raw series (embedding='mlp')", dict(embedding="mlp")),
                         ("sbi_core NPE (MAF, 3 layers), 1-D CNN (strided)",
                          dict(embedding="cnn1d", density_estimator="maf", num_transforms=3))):
        post, secs = train_ours(sim.prior, theta, x, args.seed, data_shape=sim.data_shape, **kwargs)
        scores = score(lambda xo, n: post.sample((n,), x=xo, seed=1), obs)
        rows.append((name, secs, sum(scores) / len(scores)))
        print(rows[-1], flush=True)
    if not args.skip_sbi:
        from sbi.neural_nets.embedding_nets import CNNEmbedding

        shape = sim.data_shape
        net = CNNEmbedding(input_shape=shape.dims[1:], in_channels=shape.dims[0])
        post, secs = train_sbi(sim.prior, theta, x, net, args.seed)
        scores = score(sbi_sampler(post), obs)
        rows.append(("sbi 0.27 NPE, CNNEmbedding (defaults: MAF)", secs, sum(scores) / len(scores)))
        print(rows[-1], flush=True)
    lines = [f"AR(1) series of {sim.data_shape.dims[1]} steps, {args.simulations:,} simulations, "
             f"{args.observations} observations, exact grid posterior; {args.threads} torch threads; {machine()}.",
             f"Command: `python bench/embeddings.py --part series --threads {args.threads}`", "",
             "| estimator | training time (s) | mean C2ST |", "|---|---:|---:|"]
    lines += [f"| {n} | {s:.1f} | {c:.3f} |" for n, s, c in rows]
    if len(rows) == 5:
        sbi_row = rows[4]
        lines += [""] + [f"**{r[0]} against sbi's CNN: {sbi_row[1] / r[1]:.1f}x** (sbi time / ours), "
                         f"C2ST difference (ours - sbi) {r[2] - sbi_row[2]:+.3f}." for r in (rows[0], rows[1], rows[3])]
    return "\n".join(lines)


def part_trials(args) -> str:
    sim, theta, x = simulations(TRIALS, args.trial_simulations)
    counts = (1, 5, 20)
    obs = {m: reference_observations(TRIALS, args.observations, seed=2000 + m, trials=m) for m in counts}
    rows = []
    post, secs = train_ours(sim.prior, theta, x, args.seed, embedding="set", data_shape=sim.data_shape)
    rows.append(("sbi_core NPE, DeepSets (embedding='set'), random trial subsets", secs,
                 {m: score(lambda xo, n: post.sample((n,), x=xo, seed=1), obs[m]) for m in counts}))
    print(rows[-1][:2], flush=True)
    if not args.skip_sbi:
        from sbi.neural_nets.embedding_nets import FCEmbedding, PermutationInvariantEmbedding

        m_max, d = sim.data_shape.dims
        by, total = {}, 0.0
        for m in counts:  # sbi 0.27 refuses NaN in x_o and fixes the trial count: one network per count
            net = PermutationInvariantEmbedding(FCEmbedding(input_dim=d, output_dim=20), trial_net_output_dim=20,
                                                aggregation_fn="mean")
            post_s, secs = train_sbi(sim.prior, theta, x.reshape(-1, m_max, d)[:, :m], net, args.seed)
            total += secs

            def sample(xo, n, post_s=post_s, m=m):  # the observation's m present trials as (1, m, D)
                return sbi_sampler(post_s)(xo.reshape(m_max, d)[:m], n)

            by[m] = score(sample, obs[m])
        rows.append((f"sbi 0.27 NPE, PermutationInvariantEmbedding (mean; MAF), one network per trial count "
                     f"({len(counts)} trained)", total, by))
        print(rows[-1][:2], flush=True)
    lines = [f"Gaussian mean, {args.trial_simulations:,} simulations of up to {sim.data_shape.dims[0]} trials, "
             f"{args.observations} observations per trial count, exact posterior; {args.threads} torch threads; "
             f"{machine()}.",
             f"Command: `python bench/embeddings.py --part trials --threads {args.threads}`", "",
             "| estimator | training time (s) | " + " | ".join(f"C2ST, {m} trial{'s' if m > 1 else ''}" for m in counts)
             + " |", "|---|---:|" + "---:|" * len(counts)]
    for name, secs, by in rows:
        lines.append(f"| {name} | {secs:.1f} | " + " | ".join(f"{sum(v) / len(v):.3f}" for v in by.values()) + " |")
    return "\n".join(lines)


def part_sir(args) -> str:
    raw = sbi_core.get_simulator("sir_series")
    summ = sbi_core.get_simulator("sir")
    g = torch.Generator().manual_seed(3000)
    rows, scores = [], []
    theta, x_raw = simulations("sir_series", args.simulations)[1:]
    _, theta_s, x_sum = simulations("sir", args.simulations)
    for k in range(args.observations):
        theta_o = raw.true_theta if k == 0 else raw.prior.sample((1,), generator=g)[0]
        seed = 4000 + k
        x_o_raw, x_o_sum = raw.simulate(theta_o, seed=seed), summ.simulate(theta_o, seed=seed)
        if k == 0:
            post_raw, t_raw = train_ours(raw.prior, theta, x_raw, args.seed, embedding="cnn1d", data_shape=raw.data_shape)
            post_sum, t_sum = train_ours(summ.prior, theta_s, x_sum, args.seed)
        a = post_raw.sample((NUM_REFERENCE,), x=x_o_raw, seed=1)
        b = post_sum.sample((NUM_REFERENCE,), x=x_o_sum, seed=1)
        scores.append(float(c2st(a, b)))
    rows = [("raw daily counts, 1-D CNN", t_raw), ("summary statistics (sir), no embedding", t_sum)]
    lines = [f"SIR epidemic, {args.simulations:,} simulations each, {args.observations} epidemics (the first at the "
             f"model's true parameter); {args.threads} torch threads; {machine()}.",
             f"Command: `python bench/embeddings.py --part sir --threads {args.threads}`", "",
             "| data | training time (s) |", "|---|---:|"] + [f"| {n} | {s:.1f} |" for n, s in rows]
    lines += ["", "C2ST between the two posteriors (0.5: the same), per epidemic: "
                  + ", ".join(f"{s:.3f}" for s in scores) + f"; mean {sum(scores) / len(scores):.3f}. "
                  "The same epidemics are simulated by both models from the same seed, so they differ only in "
                  "what each keeps of it."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("series", "trials", "sir", "all"), default="all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--simulations", type=int, default=10_000)
    ap.add_argument("--trial-simulations", type=int, default=20_000)
    ap.add_argument("--observations", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-sbi", action="store_true", help="sbi_core only (no sbi install needed)")
    ap.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    parts = ("series", "trials", "sir") if args.part == "all" else (args.part,)
    titles = {"series": "Learned summaries: AR(1) series", "trials": "Learned summaries: repeated trials",
              "sir": "Learned summaries: SIR raw series against its summaries"}
    for part in parts:
        report = {"series": part_series, "trials": part_trials, "sir": part_sir}[part](args)
        print(report, flush=True)
        if not args.no_write:
            write_section(f"embeddings-{part}", f"## {titles[part]}\n\n{report}")


if __name__ == "__main__":
    main()
