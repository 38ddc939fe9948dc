"""Checks of posterior quality, one concept per module.

- :mod:`.c2st`: classifier two-sample test against a reference sample.
"""

from .c2st import c2st

__all__ = ["c2st"]
