"""The one base class for errors a user can fix.

Every error raised because of what a person supplied (a prior, a RunSpec, an
upload, a table, an observation) derives from :class:`SBIError`; its message
is written for that person and says what to fix. Anything else is a bug, and
the app shows it as "something went wrong" with the detail on demand.
"""

__all__ = ["SBIError"]


class SBIError(Exception):
    """An error whose message a user can act on."""
