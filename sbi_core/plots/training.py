"""Training figures: the loss curves (training and validation loss per epoch, across rounds).

Training loss is indigo, validation loss orange, and the best epoch of each
round (where early stopping restores the network) a pink star.

The loss jumps up where a round begins, and that is no setback: each round
adds simulations drawn where the last posterior points (pairs the network has
not fitted yet), and SNPE switches from round 2 on to its contrastive (APT)
loss, whose values sit on another scale. Lower is better *within* a round; the
levels of different rounds are not comparable. The chart says so in a line
under its title as soon as a second round starts (above the plot area, where it
never covers a curve or a round label, however narrow the chart).

Estimators whose loss is a Monte Carlo estimate over random times and noise
(flow matching, score matching) give a ragged curve from epoch to epoch. With
``smooth=w`` each curve is drawn as its trailing mean over the last ``w``
epochs of its round, the values of every epoch faint behind it: trailing, so a
point once drawn never moves when the next epoch arrives in the live view.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np
import plotly.graph_objects as go

from sbi_core.plots._arrays import _np
from sbi_core.plots.style import COLORS, _base_layout, _empty

__all__ = ["LOSS_TITLE", "NEW_ROUND_NOTE", "loss_figure"]

# Stable title: browser tests find the chart by it.
LOSS_TITLE = "Training and validation loss"
# Written at the first round boundary: why the loss jumps up there.
NEW_ROUND_NOTE = "Dotted line: new round,<br>new simulations, so the<br>loss restarts higher."


def _sorted_epochs(round_index, epoch, train_loss, val_loss):
    """The epoch events as arrays ``r, e, tr, va`` (each ``(n,)``), sorted by round, then epoch (unsorted if none)."""
    r = np.asarray(round_index, dtype=int)
    e = np.asarray(epoch, dtype=int)
    tr, va = _np(train_loss), _np(val_loss)
    if len(r) == 0:
        return r, e, tr, va
    order = np.lexsort((e, r))
    return r[order], e[order], tr[order], va[order]


def _continuous_x(r: np.ndarray, e: np.ndarray, rounds: list):
    """One x-axis across rounds: each round starts where the previous one ended.

    ``r``, ``e``: ``(n,)`` round and epoch of each event. Returns ``(x (n,), start_of, offset)``:
    the positions, ``{round: its first x - 1}`` and the total number of epochs.
    """
    offset, start_of = 0, {}
    x = np.empty(len(r), dtype=float)
    for rd in rounds:
        m = r == rd
        start_of[rd] = offset
        x[m] = offset + e[m]
        offset += int(e[m].max())
    return x, start_of, offset


def trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    """The mean of the last ``window`` finite values up to each position of ``values (n,)`` (NaN
    where none is finite yet).

    >>> trailing_mean(np.array([1.0, 3.0, np.nan, 5.0]), 2).tolist()
    [1.0, 2.0, 3.0, 5.0]
    """
    values = np.asarray(values, dtype=float)
    out = np.full(len(values), np.nan)
    for i in range(len(values)):
        part = values[max(0, i - window + 1): i + 1]
        part = part[np.isfinite(part)]
        if len(part):
            out[i] = part.mean()
    return out


def _loss_curves(fig: go.Figure, r, e, x, tr, va, rounds: list, smooth: int = 0) -> None:
    """The training and validation curves, broken (``None``) between rounds; all arrays ``(n,)``.

    ``smooth > 1``: each curve as its trailing mean over ``smooth`` epochs within its round, every
    epoch's own value faint behind it."""
    xs, ys_t, ys_v, raw_t, raw_v, hover = [], [], [], [], [], []
    for rd in rounds:
        m = r == rd
        xs += x[m].tolist() + [None]
        raw_t += tr[m].tolist() + [None]
        raw_v += va[m].tolist() + [None]
        if smooth > 1:
            ys_t += trailing_mean(tr[m], smooth).tolist() + [None]
            ys_v += trailing_mean(va[m], smooth).tolist() + [None]
        hover += [f"round {rd + 1}, epoch {k}" for k in e[m]] + [""]
    if smooth <= 1:
        ys_t, ys_v = raw_t, raw_v
    else:
        for ys, what, color in ((raw_t, "training", "train"), (raw_v, "validation", "val")):
            fig.add_trace(go.Scatter(
                x=list(xs), y=ys, mode="lines", name=f"{what} loss, each epoch", opacity=0.3,
                line=dict(color=COLORS[color], width=1), legendgroup=what, showlegend=False,
                text=hover, hovertemplate=f"%{{text}}<br>{what} loss %{{y:.4g}}<extra></extra>",
            ))
    label = "" if smooth <= 1 else f" (mean of {smooth} epochs)"
    for ys, what, color in ((ys_t, "training", "train"), (ys_v, "validation", "val")):
        fig.add_trace(go.Scatter(
            x=list(xs), y=ys, mode="lines", name=f"{what} loss{label}", line=dict(color=COLORS[color], width=2),
            legendgroup=what, text=hover, hovertemplate=f"%{{text}}<br>{what} loss{label} %{{y:.4g}}<extra></extra>",
        ))


def _best_epoch_stars(fig: go.Figure, best_epochs: Mapping[int, int], r, e, x, va) -> None:
    """A star on the validation curve at each round's best epoch (that is in the data); arrays ``(n,)``."""
    bx, by, bt = [], [], []
    for rd, be in best_epochs.items():
        m = (r == int(rd)) & (e == int(be))
        if m.any():
            k = int(np.flatnonzero(m)[0])
            bx.append(x[k])
            by.append(va[k])
            bt.append(f"round {int(rd) + 1}: best epoch {int(be)}")
    if bx:
        fig.add_trace(go.Scatter(
            x=bx, y=by, mode="markers", name="best epoch (early stopping)", text=bt,
            marker=dict(symbol="star", size=15, color=COLORS["best"], line=dict(color="white", width=1)),
            hovertemplate="%{text}<br>validation loss %{y:.4g}<extra></extra>",
        ))


def _round_marks(fig: go.Figure, rounds: list, start_of: dict, offset: int) -> None:
    """A dotted line where each later round begins and a label over every round."""
    span = max(float(offset), 1.0)
    for k, rd in enumerate(rounds):
        if start_of[rd] > 0:
            fig.add_vline(x=start_of[rd] + 0.5, line=dict(color="#ADB5BD", dash="dot", width=1.5))
        width = (start_of[rounds[k + 1]] if k + 1 < len(rounds) else offset) - start_of[rd]
        # short rounds get a short label, and neighbours alternate in height: labels never overlap
        fig.add_annotation(
            x=start_of[rd] + 0.5, y=1.0 if k % 2 == 0 else 0.93, yref="paper", xanchor="left",
            yanchor="top", showarrow=False, text=f"round {rd + 1}" if width / span >= 0.1 else f"{rd + 1}",
            font=dict(size=12, color="#495057"),
        )


def loss_figure(
    round_index: Sequence[int],
    epoch: Sequence[int],
    train_loss: Sequence[float],
    val_loss: Sequence[float],
    best_epochs: Optional[Mapping[int, int]] = None,
    title: str = LOSS_TITLE,
    height: int = 440,
    smooth: int = 0,
) -> go.Figure:
    """Loss per epoch on one continuous x-axis across rounds, round boundaries marked.

    Args:
        round_index, epoch, train_loss, val_loss: one entry per epoch event
            (``round`` 0-based, ``epoch`` 1-based within its round).
        best_epochs: ``{round: best epoch (1-based)}`` -- the early-stopping
            point, drawn as a star on the validation curve.
        smooth: draw each curve as its trailing mean over this many epochs, every epoch
            faint behind it (for the noisy losses of flow and score matching); 0 or 1: as measured.
    """
    xtitle = "epoch (counted across all rounds)"
    ytitle = "loss (lower is better within a round)"
    r, e, tr, va = _sorted_epochs(round_index, epoch, train_loss, val_loss)
    if len(r) == 0:
        return _empty(title, "Waiting for the first epoch...", height, xtitle, ytitle)
    rounds = list(dict.fromkeys(r.tolist()))
    x, start_of, offset = _continuous_x(r, e, rounds)
    fig = go.Figure()
    _loss_curves(fig, r, e, x, tr, va, rounds, smooth=int(smooth))
    if best_epochs:
        _best_epoch_stars(fig, best_epochs, r, e, x, va)
    if len(rounds) > 1 or rounds[0] > 0:
        _round_marks(fig, rounds, start_of, offset)
    new_round = any(start_of[rd] > 0 for rd in rounds)
    if new_round:
        fig.add_annotation(
            x=0, y=1.02, xref="paper", yref="paper", xanchor="left", yanchor="bottom", align="left",
            showarrow=False, text=NEW_ROUND_NOTE, font=dict(size=11, color="#495057"), name="new-round-note",
        )
    _base_layout(fig, title, height, legend="bottom", hovermode="closest")
    if new_round:
        fig.update_layout(margin=dict(t=100))  # room for the note under the title (short lines: narrow charts)
    fig.update_xaxes(title=dict(text=xtitle), rangemode="tozero")
    fig.update_yaxes(title=dict(text=ytitle))
    return fig
