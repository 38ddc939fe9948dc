"""What a lesson is: a few steps, each with a short text, one action, one picture and one question.

A step's ``draw(key)`` draws its action and its picture (real simulations,
real runs, the app's own pages); ``key`` prefixes its widget keys so steps
never collide. The answer to the question stays hidden until revealed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

__all__ = ["Step", "Lesson"]


@dataclass(frozen=True)
class Step:
    """One step: ``text`` (two to four sentences), ``draw(key)`` (the action and the picture), a question."""

    title: str
    text: str
    draw: Callable[[str], None]
    question: str
    answer: str


@dataclass(frozen=True)
class Lesson:
    """A guided lesson: its URL name (``?lesson=<slug>``), title, one-line summary and steps."""

    slug: str
    title: str
    summary: str
    steps: tuple[Step, ...]
