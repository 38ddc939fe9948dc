"""The guided lessons, in teaching order (each module defines one :class:`~.steps.Lesson` as ``LESSON``)."""

from __future__ import annotations

from typing import Optional

from sbi_ui.lessons import abc_by_hand, amortized, calibration, sequential, simulator_prior, trust
from sbi_ui.lessons.steps import Lesson, Step

__all__ = ["LESSONS", "Lesson", "Step", "get_lesson"]

LESSONS: tuple[Lesson, ...] = tuple(m.LESSON for m in (simulator_prior, abc_by_hand, amortized, sequential,
                                                       calibration, trust))


def get_lesson(slug: Optional[str]) -> Optional[Lesson]:
    """The lesson called ``slug`` (``?lesson=<slug>``), or None."""
    return next((lesson for lesson in LESSONS if lesson.slug == slug), None)
