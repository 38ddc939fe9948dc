"""Formatting durations and times for people."""

from __future__ import annotations

import datetime as _dt
from typing import Optional

import numpy as np

__all__ = ["fmt_duration", "fmt_time", "plural"]


def fmt_duration(seconds: Optional[float]) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "-"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def fmt_time(ts: Optional[float]) -> str:
    if ts is None:
        return "-"
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def plural(n: int, word: str, many: Optional[str] = None) -> str:
    """``"1 round"``, ``"4 rounds"``: the count with the word in the right number."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"
