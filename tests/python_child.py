"""The environment for a ``python`` the tests start: this clone first on its path, no bytecode.

A child interpreter would otherwise import whatever ``sbi_core`` the machine
has installed (an editable install may point at another checkout) and write
``__pycache__`` folders into it. Every test that starts ``python`` passes
:func:`child_env` and runs it in a temporary folder, so it tests this clone and
writes nothing outside its own folder.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional

ROOT = Path(__file__).resolve().parent.parent


def child_env(base: Optional[Mapping[str, str]] = None, **extra: str) -> dict[str, str]:
    """``base`` (default: this process's environment) with the clone first on ``PYTHONPATH``.

    ``extra`` is set on top; ``PYTHONDONTWRITEBYTECODE=1`` keeps the clone free of ``.pyc`` files.
    """
    env = dict(os.environ if base is None else base)
    rest = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([rest] if rest else []))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env
