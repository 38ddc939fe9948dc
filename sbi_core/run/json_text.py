"""JSON text a person supplies (a RunSpec, a prior, a link's payload), bounded before it is parsed.

Torch-free and below every reader of JSON in :mod:`sbi_core.run`, so the RunSpec
(:mod:`.spec`), its link (:mod:`.link`) and its files (:mod:`.json_files`) share it.
"""

from __future__ import annotations

import re

import numpy as np

from sbi_core.errors import RunSpecError

__all__ = ["MAX_JSON_DEPTH", "json_depth", "check_json_depth"]

MAX_JSON_DEPTH = 20  # a RunSpec nests 3 deep (spec > prior > entry); parsers and repr() recurse per level
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')


def json_depth(text: str) -> int:
    """How deeply the arrays and objects of JSON ``text`` nest, found without parsing it.

    Brackets inside strings do not count. Parsing (and printing) a nested value
    recurses once per level, so thousands of levels raise ``RecursionError``
    (or worse) in code that never expected it; this scan is flat, and fast on
    the largest JSON the app reads (16 MB)."""
    bare = _JSON_STRING.sub("", text).encode("utf-8", "replace")
    codes = np.frombuffer(bare, dtype=np.uint8)
    steps = np.isin(codes, (91, 123)).astype(np.int32) - np.isin(codes, (93, 125)).astype(np.int32)
    return int(np.cumsum(steps).max(initial=0))


def check_json_depth(text: str, what: str, error: type = None) -> None:
    """Raise ``error`` (a :class:`RunSpecError` by default) if ``text`` nests deeper than :data:`MAX_JSON_DEPTH`."""
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise (error or RunSpecError)(
            f"{what} nests lists and objects {depth:,} levels deep; at most {MAX_JSON_DEPTH} are read (a RunSpec "
            "or a prior needs only a few), so it was not read.")
