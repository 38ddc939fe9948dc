"""The loss chart says why the loss jumps up when a new round starts, and its round labels never overlap."""

from __future__ import annotations

import numpy as np

from sbi_core import plots
from sbi_core.plots.training import NEW_ROUND_NOTE


def _rounds(lengths):
    r, e = [], []
    for k, n in enumerate(lengths):
        r += [k] * n
        e += list(range(1, n + 1))
    return r, e


def test_new_round_jump_is_explained_on_the_chart():
    r, e = _rounds([30, 12])
    loss = np.r_[np.linspace(1, -1, 30), np.linspace(0.8, 0.2, 12)]
    fig = plots.loss_figure(r, e, loss, loss + 0.05, {0: 25, 1: 10})
    notes = [a for a in fig.layout.annotations if a.text == NEW_ROUND_NOTE]
    assert len(notes) == 1 and "new round" in notes[0].text and "restarts" in notes[0].text
    assert notes[0].yref == "paper" and notes[0].y > 1  # above the plot area: covers no curve or label
    assert "within a round" in fig.layout.yaxis.title.text
    one = plots.loss_figure(*_rounds([30]), loss[:30], loss[:30], {0: 25})
    assert not [a for a in one.layout.annotations if a.text == NEW_ROUND_NOTE]


def test_short_rounds_get_short_staggered_labels():
    r, e = _rounds([60, 3, 3, 40])
    x = np.linspace(1, 0, len(r))
    fig = plots.loss_figure(r, e, x, x, None)
    labels = [a for a in fig.layout.annotations if a.text != NEW_ROUND_NOTE]
    assert [a.text for a in labels] == ["round 1", "2", "3", "round 4"]
    assert [a.y for a in labels] == [1.0, 0.93, 1.0, 0.93]  # neighbours alternate in height


def test_a_noisy_loss_is_drawn_as_its_trailing_mean_over_the_faint_epochs_and_restarts_each_round():
    r, e = _rounds([6, 4])
    rng = np.random.default_rng(0)
    train = np.r_[np.linspace(2, 1, 6), np.linspace(3, 2, 4)] + rng.normal(0, 0.3, 10)
    val = train + 0.1
    fig = plots.loss_figure(r, e, train, val, {0: 6}, smooth=3)
    faint = [t for t in fig.data if t.opacity == 0.3]
    solid = {t.name: t for t in fig.data if t.opacity is None and t.mode == "lines"}
    assert [t.name for t in faint] == ["training loss, each epoch", "validation loss, each epoch"]
    assert not any(t.showlegend for t in faint)
    smooth = list(solid["training loss (mean of 3 epochs)"].y)
    assert smooth[:6] == list(np.array([train[:k + 1][-3:].mean() for k in range(6)]))
    assert smooth[6] is None  # the curve breaks between rounds
    assert smooth[7] == train[6]  # a new round's mean starts again with its own first epoch
    assert list(faint[0].y)[:6] == list(train[:6])
    # a point drawn once never moves when the next epoch arrives
    fewer = plots.loss_figure(r[:8], e[:8], train[:8], val[:8], smooth=3)
    assert list(next(t for t in fewer.data if t.name.startswith("training loss (")).y)[:6] == smooth[:6]
