"""The guided demo tells its story: round 1's cloud is broad, the last round's much tighter (issue 19).

Measured by the one concentration measure (:mod:`sbi_core.stats.concentration`): the prior mass of each
round's 90 % highest-density region. With the old demo (4 rounds of 250 simulations) round 1 was
already on the crescents (1.46 % of the prior) and the last round hardly smaller (1.26 %).
"""

from __future__ import annotations

import dataclasses

import pytest

from sbi_core import RunSpec
from sbi_core.run.loop import execute

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_the_demos_90_percent_region_shrinks_at_least_five_fold():
    demo = RunSpec.demo()
    sizes = []

    def on_event(event: dict) -> None:
        if event["type"] == "round":
            sizes.append(event["hdr_size"]["fraction"])

    execute(dataclasses.replace(demo, num_threads=1), on_event=on_event)
    assert len(sizes) == demo.num_rounds
    assert sizes[0] > 0.05, sizes  # round 1 visibly broad: more than 5 % of the prior
    assert sizes[0] >= 5 * sizes[-1], sizes  # and the last round at least five times smaller
