"""A RunSpec as a short, URL-safe, versioned string: the ``?spec=`` of a link that rebuilds a setup.

Format of version 1::

    1.<payload>.<check>

* ``payload``: URL-safe base64 (no padding) of the zlib-compressed compact
  JSON of the fields that differ from :data:`V1_DEFAULTS`. The defaults are
  frozen here, not read from :class:`~sbi_core.run.spec.RunSpec`, so a link keeps
  its meaning when a later version changes a default (a test fails when the
  two disagree, as a reminder to add version 2 and a migration).
* ``check``: the first 8 URL-safe base64 characters of the SHA-256 of the
  payload. It catches a link that was cut short or mistyped; it is not a
  signature (anyone can edit a link and recompute it), which is why a decoded
  spec is validated like any other and admitted with
  :func:`sbi_core.uploads.files.admit_spec` before it names a file.

Every field round-trips exactly: JSON writes floats with ``repr``, and the
fields are kept as they are (lists stay lists, ``None`` stays ``None``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from typing import Any

from sbi_core.errors import RunSpecError
from sbi_core.run.json_text import check_json_depth

__all__ = ["QUERY_VERSION", "V1_DEFAULTS", "SpecLinkError", "spec_to_query", "spec_dict_from_query"]

QUERY_VERSION = 1
MAX_QUERY_CHARS = 8_000  # browsers and proxies cut URLs of a few thousand characters
MAX_JSON_BYTES = 64_000  # a decompressed payload larger than any real spec is refused (zip bombs)

V1_DEFAULTS: dict[str, Any] = {
    "simulator": "two_moons",
    "prior": None,
    "observation": None,
    "true_theta": None,
    "method": "snpe",
    "num_rounds": 4,
    "simulations_per_round": 1000,
    "density_estimator": "nsf",
    "embedding": "auto",
    "hidden_features": 50,
    "num_transforms": 5,
    "max_epochs": 200,
    "batch_size": None,
    "learning_rate": 2e-3,
    "validation_fraction": 0.1,
    "patience": 10,
    "num_posterior_samples": 1000,
    "seed": 0,
    "num_threads": None,
    "title": "",
}


class SpecLinkError(RunSpecError):
    """A ``?spec=`` string that cannot be read back; the message says what is wrong with the link."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check(payload: str) -> str:
    return _b64(hashlib.sha256(payload.encode("ascii")).digest())[:8]


def spec_to_query(fields: dict) -> str:
    """The version-1 string of a RunSpec's ``to_dict()``: only fields that differ from :data:`V1_DEFAULTS`."""
    changed = {k: v for k, v in fields.items() if k not in V1_DEFAULTS or V1_DEFAULTS[k] != v}
    text = json.dumps(changed, separators=(",", ":"), sort_keys=True, allow_nan=False)
    payload = _b64(zlib.compress(text.encode("utf-8"), 9))
    return f"{QUERY_VERSION}.{payload}.{_check(payload)}"


def _version(head: str) -> int:
    if not head.isdigit():
        raise SpecLinkError("This is not a setup link of this app (it should start with a version number, "
                            "like '1.'). Copy the whole link again.")
    version = int(head)
    if version > QUERY_VERSION:
        raise SpecLinkError(f"This link was made by a newer version of the app (link version {version}; this "
                            f"server reads up to {QUERY_VERSION}). Open it on the server that made it, or "
                            "update this one.")
    if version < 1:
        raise SpecLinkError(f"Link version {version} is older than any this app has written; it cannot be read.")
    return version


def _inflate(payload: str) -> dict:
    try:
        raw = _unb64(payload)
        unzip = zlib.decompressobj()
        text = unzip.decompress(raw, MAX_JSON_BYTES)
        if unzip.unconsumed_tail:
            raise SpecLinkError("The setup in this link is far larger than any real setup; it was not read.")
        text = text.decode("utf-8")
        check_json_depth(text, "The setup in this link", SpecLinkError)
        data = json.loads(text)
    except SpecLinkError:
        raise
    except (binascii.Error, ValueError, zlib.error, UnicodeDecodeError, RecursionError):
        raise SpecLinkError("The setup in this link cannot be read: it was damaged on the way. "
                            "Copy the whole link again.") from None
    if not isinstance(data, dict):
        raise SpecLinkError("The setup in this link is not a set of named settings.")
    return data


def spec_dict_from_query(query: Any) -> dict:
    """The RunSpec fields (defaults filled in) of a string from :func:`spec_to_query`.

    Raises:
        SpecLinkError: empty, too long, not of this app, from a newer version,
            cut short or edited (the check does not match), or not readable.
            The fields themselves are validated by :class:`~sbi_core.run.spec.RunSpec`.
    """
    if not isinstance(query, str) or not query.strip():
        raise SpecLinkError("The link holds no setup (its spec= part is empty).")
    query = query.strip()
    if len(query) > MAX_QUERY_CHARS:
        raise SpecLinkError(f"The setup in this link is {len(query):,} characters long, more than the "
                            f"{MAX_QUERY_CHARS:,} a link can hold; it was not read.")
    parts = query.split(".")
    _version(parts[0])
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise SpecLinkError("The setup in this link is incomplete: the link was probably cut short. "
                            "Copy the whole link again.")
    payload, check = parts[1], parts[2]
    if _check(payload) != check:
        raise SpecLinkError("The setup in this link does not match its check code: the link was cut short "
                            "or edited. Copy the whole link again.")
    return {**V1_DEFAULTS, **_inflate(payload)}
