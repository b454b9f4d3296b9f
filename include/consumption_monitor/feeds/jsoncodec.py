"""Fast JSON for feed pages: msgspec's C codec, with the standard library as the fallback.

Why: at transaction scale every page is decoded when it arrives and again when validation
and the load read the archive, and re-encoded once pseudonymised; the standard library's
codec was a sixth of the pipeline's time. msgspec (already installed with Airflow) decodes
to the same Python values. What it refuses and the standard library accepts (``NaN``,
``Infinity``) falls back, so no page parses differently, and a page neither accepts raises
the standard library's ``ValueError`` with its usual message.

Content digests (the batch id) keep the standard library's canonical form: changing it
would give every archived batch a new id. :func:`canonical` writes that form with msgspec
when msgspec's bytes are the same (measured: the standard library's sorted encoding was
~15 % of a 1M-row extract), and with the standard library otherwise.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
_sorted_encoder = msgspec.json.Encoder(order="sorted")
# Where msgspec and the standard library write a float differently: exponents (``1e16`` vs
# ``1e+16``) and small magnitudes (``0.00001`` vs ``1e-05``); a number token follows ``:``,
# ``,`` or ``[``, or JSON's whitespace after one of them (a pretty-printed page: ``": 1e999"``
# was missed, and archived as ``null``, until whitespace was taken into account; it is now
# deleted before the search, :func:`_has_float_form`). Text that merely looks like one only
# costs speed. The search runs on the bytes translated to a few classes (digits -> ``0``,
# ``eE`` -> ``e``, ``:,[`` -> ``b``, ``.`` and ``-`` kept, anything else -> ``a``), where the
# pattern starts with one literal: ~5 ms per 500 kB trade-in page on the raw bytes. It finds
# every place the former pattern on the raw bytes found
# (``[:,\[]-?(?:[0-9]+(?:\.[0-9]+)?[eE]|0\.0000|[0-9]{17,}\.)``) and a few more.
# Searched in a body received (:func:`parsed_plainly`), the same pattern finds every number
# token that can parse to such a float or beyond a double's range (``1e999``: an infinity
# the standard library's fallback returns and msgspec would write as ``null``).
_CLASSES = bytes(
    ord("0") if chr(b).isdigit() and b < 128
    else ord("e") if b in b"eE"
    else ord("b") if b in b":,[ \t\r\n"
    else b if b in b".-"
    else ord("a")
    for b in range(256)
)  # fmt: skip
_WHITESPACE = b" \t\r\n"  # JSON's
_FLOAT_FORMS = re.compile(rb"b-?(?:0+(?:\.0+)?e|0\.0000|0{17,}\.)")


def _has_float_form(data: bytes) -> bool:
    """Whether a number token of ``data`` has one of the float forms above: the pattern
    searched in the bytes' classes, with JSON's whitespace deleted (in the same translation)
    and a boundary put first.

    Why: the search starts at every boundary, and nearly all of them precede a key or a
    text; on a received trade-in page (``", "`` and ``": "`` between tokens) the 56,000
    boundaries for ~3,000 number tokens took 2.3 ms of the extract's main thread, 1.6 ms so
    (2026-12-01). A number token follows ``:``, ``,`` or ``[`` with nothing but whitespace
    between, or starts the document, so with the whitespace gone a boundary still precedes
    each (a match holds no whitespace); a boundary before a byte of class ``a`` (a quote,
    a letter) starts no match and is made an ``a``, which the regex skips faster. Text that
    merely looks like a number still only costs speed (``tests/test_jsoncodec.py``)."""
    classes = b"b" + data.translate(_CLASSES, _WHITESPACE)
    return _FLOAT_FORMS.search(classes.replace(b"ba", b"aa")) is not None


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def loads(body: bytes | str) -> Any:
    """Parse a JSON document (the standard library's result and errors; nesting too deep
    for it is a ``ValueError`` too).

    A lone surrogate escape (``"\\ud800"``, half of a UTF-16 pair a sender cut) is valid
    JSON syntax that msgspec refuses and the standard library turns into a string no UTF-8
    file, digest or PostgreSQL column can hold; it becomes U+FFFD, the replacement
    character, so the page is archived, digested and loaded with a visible mark (the bytes
    received are kept or checksummed as they came)."""
    try:
        try:
            return _decoder.decode(body)
        except msgspec.DecodeError:
            pass
        return _replace_lone_surrogates(json.loads(body))
    except RecursionError:  # arrays nested thousands deep: unparseable like any bad body
        raise ValueError("JSON nested too deeply to parse") from None


def _replace_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_replace_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {
            _replace_lone_surrogates(key): _replace_lone_surrogates(item)
            for key, item in value.items()
        }
    return value


_NOT_JSON = (b"NaN", b"Infinity")  # tokens only the standard library reads (and writes)


def dumps(doc: Any, *, parsed_from: bytes | None = None) -> bytes:
    """Compact UTF-8 JSON that parses to the same values as the standard library's
    ``json.dumps(doc, ensure_ascii=False, separators=(",", ":"))`` (exponents may be written
    ``1e16`` rather than ``1e+16``).

    msgspec writes a non-finite float as ``null``, which would turn an unparseable value
    into a missing one; so when the bytes ``doc`` was parsed from may hold ``NaN``,
    ``Infinity`` or a number beyond a double's range (:func:`parsed_plainly`), or msgspec
    cannot encode a value, the standard library writes the document (values JSON has no
    type for, from a workbook, as their text).
    """
    if parsed_from is None or parsed_plainly(parsed_from):
        try:
            return _encoder.encode(doc)
        except (TypeError, ValueError, OverflowError):
            pass
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def canonical(value: Any, *, from_json: bool = False) -> bytes:
    """``json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    default=str)`` as UTF-8: the canonical form of content digests.

    ``from_json``: the value was parsed from JSON without ``NaN``/``Infinity`` tokens (only
    dicts, lists, text, numbers, booleans and nulls), so msgspec's sorted encoding writes
    the very same bytes except for the float forms it writes differently, which are
    searched for in its output (the standard library then writes the value). Anything else
    (workbook values such as dates) takes the standard library.
    """
    if from_json:
        try:
            encoded = _sorted_encoder.encode(value)
        except (TypeError, ValueError, OverflowError):
            encoded = None
        if encoded is not None and not _has_float_form(encoded):
            return encoded
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.encode("utf-8")


def encode_page(
    doc: Any, records_field: str, parsed_from: bytes, *, from_json: bool
) -> tuple[bytes, bytes | None]:
    """A page's document as it is archived and, when one encoding can serve both, its
    records in the canonical form of content digests (else None: the digest writes them).

    Why: a pseudonymised trade-in page was encoded twice, once for the archive and once,
    with sorted keys, for the digest (~2.7 s of a 1M-row extract). Here the records are
    encoded once with sorted keys and embedded as they are in the document (the envelope
    keeps its order), which :func:`dumps` would have written with the same values. A page
    from JSON (``from_json``) takes this path when msgspec writes what was parsed from it
    as the standard library does (:func:`parsed_plainly` of the bytes received: searching
    them, ~350 kB a trade-in page, instead of the ~515 kB written saves ~0.7 ms a page), and
    its records' bytes are then the canonical form too; a page from elsewhere (a workbook)
    when it holds no ``NaN``/``Infinity`` token, without canonical bytes. Any other page
    takes :func:`dumps`."""
    records = doc.get(records_field) if isinstance(doc, dict) else None
    plain = parsed_plainly(parsed_from) if from_json else not _non_json_tokens(parsed_from)
    if isinstance(records, list) and plain:
        try:
            encoded = _sorted_encoder.encode(records)
            body = _encoder.encode({**doc, records_field: msgspec.Raw(encoded)})
        except (TypeError, ValueError, OverflowError):
            pass
        else:
            return body, (encoded if from_json else None)
    return dumps(doc, parsed_from=parsed_from), None


def parsed_plainly(body: bytes) -> bool:
    """Whether msgspec writes the values parsed from this JSON body exactly as the standard
    library does: no ``NaN``/``Infinity`` token (read only by the standard library, written
    ``null`` by msgspec) and no number token that can parse to a float msgspec writes in
    another form or to an infinity (an exponent, 17 or more integer digits, ``0.0000``)."""
    return not _non_json_tokens(body) and not _has_float_form(body)


def _non_json_tokens(body: bytes) -> bool:
    return any(token in body for token in _NOT_JSON)
