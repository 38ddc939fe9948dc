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
