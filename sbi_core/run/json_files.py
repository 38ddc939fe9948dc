"""Prior specs and RunSpecs as JSON files: parsed with messages that say what to fix (no torch)."""

from __future__ import annotations

import json
from typing import Any, Union


from sbi_core.errors import RunSpecError
from sbi_core.run.json_text import check_json_depth
from sbi_core.run.spec import RunSpec
from sbi_core.stats.prior_spec import PriorSpecError, check_prior_spec
from sbi_core.tables.common import MAX_JSON_BYTES, _mb

# A RunSpec may carry its uploaded file (see sbi_core.uploads.files.portable_spec): at most 8 MB of
# file, which JSON escaping can make somewhat larger; priors stay at MAX_JSON_BYTES.
MAX_RUNSPEC_BYTES = 16 * 1024 * 1024

# ---------------------------------------------------------------------------
# JSON: prior specs and RunSpecs
# ---------------------------------------------------------------------------
def _json_load(text: Union[str, bytes], what: str, error: type, limit: int = MAX_JSON_BYTES) -> Any:
    if isinstance(text, (bytes, bytearray)):
        if len(text) > limit:
            raise error(f"{what} is {_mb(len(text))}; at most {_mb(limit)}.")
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise error(f"{what} is not UTF-8 text; save it as a plain JSON file.") from None
    if not isinstance(text, str):
        raise error(f"{what} must be JSON text.")
    if len(text) > limit:
        raise error(f"{what} is {_mb(len(text))}; at most {_mb(limit)}.")
    if not text.strip():
        raise error(f"{what} is empty.")
    check_json_depth(text, what, error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f"{what} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}.") from None
    except (RecursionError, ValueError) as err:  # too deeply nested, huge numbers
        raise error(f"{what} could not be read as JSON ({str(err)[:120] or type(err).__name__}).") from None


def prior_spec_from_json(text: Union[str, bytes]) -> list[dict]:
    """A validated prior spec (list of marginals) from JSON text.

    Accepts the list itself, ``{"prior": [...]}`` or a whole RunSpec (its ``prior``).

    Raises:
        PriorSpecError: invalid JSON (with line and column), wrong structure or values.
    """
    data = _json_load(text, "The prior file", PriorSpecError)
    if isinstance(data, dict):
        if "prior" not in data:
            raise PriorSpecError(
                "The JSON is an object without a 'prior'. A prior spec is a list of parameters, e.g. "
                '[{"name": "a", "dist": "uniform", "low": 0, "high": 1}].'
            )
        data = data["prior"]
        if data is None:
            raise PriorSpecError("This RunSpec has no prior of its own (it uses the model's default).")
    try:
        return check_prior_spec(data)
    except PriorSpecError:
        raise
    except (TypeError, ValueError, OverflowError, RecursionError) as err:
        raise PriorSpecError(f"The prior is not valid ({str(err)[:160]}).") from None


def runspec_from_json(text: Union[str, bytes]):
    """A validated :class:`~sbi_core.run.spec.RunSpec` from JSON text (its prior is checked too).

    What the spec's simulator refers to is checked where it arrives, by
    :func:`sbi_core.uploads.files.admit_spec` (it needs the run store's folder).

    Raises:
        RunSpecError: invalid JSON, unknown or ill-typed settings, an invalid prior.
    """
    data = _json_load(text, "The RunSpec file", RunSpecError, limit=MAX_RUNSPEC_BYTES)
    try:
        return RunSpec.from_dict(data)  # RunSpec.validate is the one validation
    except RunSpecError:
        raise
    except (TypeError, ValueError, OverflowError, RecursionError) as err:
        raise RunSpecError(f"The RunSpec is not valid: {str(err)[:200]}") from None
