"""Fast JSON for feed pages: msgspec's C codec, with the standard library as the fallback.

Why: at transaction scale every page is decoded when it arrives and again when validation
and the load read the archive, and re-encoded once pseudonymised; the standard library's
codec was a sixth of the pipeline's time. msgspec (already installed with Airflow) decodes
to the same Python values. What it refuses and the standard library accepts (``NaN``,
``Infinity``) falls back, so no page parses differently, and a page neither accepts raises
the standard library's ``ValueError`` with its usual message.

Content digests (the batch id) keep the standard library's canonical form: changing it
would give every archived batch a new id.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def loads(body: bytes | str) -> Any:
    """Parse a JSON document (the standard library's result and errors)."""
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError:
        return json.loads(body)


_NOT_JSON = (b"NaN", b"Infinity")  # tokens only the standard library reads (and writes)


def dumps(doc: Any, *, parsed_from: bytes | None = None) -> bytes:
    """Compact UTF-8 JSON that parses to the same values as the standard library's
    ``json.dumps(doc, ensure_ascii=False, separators=(",", ":"))`` (exponents may be written
    ``1e16`` rather than ``1e+16``).

    msgspec writes a non-finite float as ``null``, which would turn an unparseable value
    into a missing one; so when the bytes ``doc`` was parsed from may hold ``NaN`` or
    ``Infinity`` (a cheap byte search; text containing the word only costs speed), or
    msgspec cannot encode a value, the standard library writes the document.
    """
    if parsed_from is None or not any(token in parsed_from for token in _NOT_JSON):
        try:
            return _encoder.encode(doc)
        except (TypeError, ValueError, OverflowError):
            pass
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
