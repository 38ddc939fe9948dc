"""Run ids: how a run is named in the store, in a URL, a file name and a command line.

Run ids are 25 lower-case letters and digits drawn with :mod:`secrets` (about
129 bits): unguessable, safe in a URL, a file name and a command line (never a
leading ``-``), and the same read aloud in any case. Ids of older stores
(12 hex digits) still open; :func:`is_run_id` accepts both.
"""

from __future__ import annotations

import re
import secrets
import string
from typing import Any

__all__ = ["RUN_ID_LENGTH", "new_run_id", "is_run_id"]

RUN_ID_LENGTH = 25  # 36 ** 25 is about 2 ** 129
_ID_ALPHABET = string.ascii_lowercase + string.digits
_RUN_ID_RE = re.compile(r"[a-z0-9]{12,32}")  # new ids, and the 12 hex digits of older stores


def new_run_id() -> str:
    """A fresh unguessable run id: :data:`RUN_ID_LENGTH` lower-case letters and digits from :mod:`secrets`."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(RUN_ID_LENGTH))


def is_run_id(text: Any) -> bool:
    """Whether ``text`` is shaped like a run id (a new one, or an older store's 12 hex digits).

    Only the shape is checked (lower-case letters and digits, 12 to 32 of them), so an id from
    a URL can never name a folder outside ``artifacts/``; whether the run exists is
    :meth:`~sbi_core.store.runs.RunStore.get_run`'s answer.
    """
    return isinstance(text, str) and _RUN_ID_RE.fullmatch(text) is not None
