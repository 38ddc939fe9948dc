"""A run's summary of the data, in words: what its network reads of one simulation.

A :class:`~sbi_core.run.spec.RunSpec` names the summary as a person chose it
(``embedding``: ``"auto"``, ``"none"``, a network, ``"handmade"``); which network that is
depends on the model's data shape (:func:`sbi_core.stats.shapes.embedding_for`). This module
resolves it from the spec alone, without building the model or loading a network, for the
pages (the live view's spec line) and the HTML report: a built-in model's shape is known by
name, an upload's or a table's from the ``data_shape`` its spec carries; where neither says,
the words say the choice was left to the data's shape.
"""

from __future__ import annotations

from typing import Any, Optional

from sbi_core.simulators import get_simulator, list_simulators
from sbi_core.stats.shapes import (
    AUTO_EMBEDDING,
    HANDMADE,
    DataShape,
    DataShapeError,
    embedding_for,
    embedding_short,
    embedding_words,
)

__all__ = ["summary_words", "summary_short"]

_UNRESOLVED = object()  # "auto" for a model whose shape the spec does not say


def _resolved(spec) -> tuple[Any, Optional[DataShape], Optional[str]]:
    """``(choice, shape, handmade labels)``: the network that reads the data (``None``: the numbers as they
    are, :data:`_UNRESOLVED`: left to a shape the spec does not say), the data's shape where known, and the
    hand-made summaries' names. A choice the shape cannot take raises :class:`DataShapeError`."""
    name = spec.simulator if isinstance(spec.simulator, str) else None
    if name in list_simulators():
        sim = get_simulator(name)
        choice = embedding_for(spec.embedding, sim.data_shape, summary=sim.handmade_summary)
        labels = ", ".join(sim.handmade.labels) if choice == HANDMADE else None
        return choice, sim.data_shape, labels
    declared = spec.simulator.get("data_shape") if isinstance(spec.simulator, dict) else None
    shape = None
    if isinstance(declared, (dict, DataShape)):
        try:
            shape = DataShape.from_spec(declared)
        except DataShapeError:
            shape = None
    if shape is not None:
        return embedding_for(spec.embedding, shape), shape, None
    if spec.embedding == "auto":
        kind = declared if isinstance(declared, str) else None
        return (AUTO_EMBEDDING[kind] if kind in AUTO_EMBEDDING else _UNRESOLVED), None, None
    return (None if spec.embedding == "none" else spec.embedding), None, None


def summary_words(spec) -> str:
    """The run's summary of the data in a sentence, for the report: ``"a learned summary of the series (a
    1-D convolutional network); one simulation is a series of 100 time points"``; a choice the model's
    data cannot take is said as the refusal the run met."""
    try:
        choice, shape, labels = _resolved(spec)
    except DataShapeError as err:
        return str(err)
    if choice is _UNRESOLVED:
        return "chosen by the shape of the model's data"
    words = embedding_words(choice) + (f" ({labels})" if labels else "")
    return words + (f"; one simulation is {shape.describe()}" if shape is not None else "")


def summary_short(spec) -> Optional[str]:
    """The run's summary of the data in two or three words, for a one-line description of the run
    (``"learned summary (1-D CNN)"``, ``"hand-made summaries"``, ``"raw numbers"``); ``None`` for a plain
    vector read as it is (every run before data shapes: nothing worth saying)."""
    try:
        choice, shape, _ = _resolved(spec)
    except DataShapeError:
        return None  # the run is refused when it starts, and says why there
    if choice is _UNRESOLVED:
        return None
    if choice is None and (shape is None or shape.is_vector):
        return None
    return embedding_short(choice)
