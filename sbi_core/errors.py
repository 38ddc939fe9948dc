"""The errors every layer raises: the bottom of sbi_core (it imports nothing of the project).

Every error raised because of what a person supplied (a prior, a RunSpec, an
upload, a table, an observation) derives from :class:`SBIError`; its message
is written for that person and says what to fix. Anything else is a bug, and
the app shows it as "something went wrong" with the detail on demand.

:class:`Cancelled` is not an error of the person: a run, a simulation or an
MCMC chain raises it when its cancel check says stop, and every layer that
runs long (training, sampling, simulating, checks) raises or catches it.
"""

from __future__ import annotations

from typing import Optional

__all__ = ["SBIError", "RunSpecError", "Cancelled"]


class SBIError(Exception):
    """An error whose message a user can act on."""


class RunSpecError(SBIError, ValueError):
    """A RunSpec that cannot be run; the message says what to fix.

    ``field`` names the RunSpec setting at fault (``None`` when the spec as a
    whole is wrong, e.g. not a JSON object), so a form can mark that setting.
    """

    def __init__(self, message: str = "", field: Optional[str] = None) -> None:
        super().__init__(message)
        self.field = field


class Cancelled(Exception):
    """Raised inside a run when its cancel check returns True."""
