"""Personal data found by content, wherever a sender put it.

Declared fields (``pii:`` in a stream's spec) are pseudonymised by name. A sender may
rename the field, or write an ID number or a phone into a remark or a nested object; this
module finds them by what they look like, in every string (and integer) value at any depth:

* resident ID numbers: 18 characters (17 digits and a check character, GB 11643) with a
  plausible birth date, and the old 15-digit form (birth date checked, no check digit);
* mainland mobile numbers: 11 digits 1[3-9]…, written with or without +86/86/0086, spaces
  or dashes (``139 1234 5678``, ``+86-139-1234-5678``).

Digits that belong to a longer run of letters or digits (an order number, a USCC, a
64-character hex pseudonym) are not matched. A match is replaced by a *token* holding the
same keyed pseudonym a declared field of that kind gets: the bare pseudonym when the whole
value is the identifier, ``〔resident_id:<first 16 hex digits>〕`` inside a text, so the
same person links across batches without the identifier.

Speed (measured decisions): most pages carry no personal data outside the declared fields,
so a page is first tested on its serialised bytes and walked record by record only when it
holds a real identifier (``holds_identifiers``). One regular expression with the ID and
phone shapes over the bytes took 12 ms per 500 kB trade-in page (~2.4 s per 200,000 rows);
translating the bytes to a few symbols and scanning for digit runs took ~2.1 ms (a pattern
starting with a class tries every digit); with the separators translated like digits, the
runs start with a literal of eleven symbols, which the regex engine searches for as a
string: ~1.0 ms for the same 689 runs of a page. The runs (mostly the same enterprise codes
on every row) are classified once each.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from datetime import date
from functools import lru_cache
from typing import Any

from consumption_monitor.common.identifiers import id_check_char

_EDGE_L = r"(?<![0-9A-Za-z])"
_EDGE_R = r"(?![0-9A-Za-z])"
_SEP = r"[ \-\u00a0]?"
_ID18 = r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
_ID15 = r"[1-9]\d{5}\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}"
_MOBILE = rf"(?:(?:\+|00)?86{_SEP})?1[3-9]\d{_SEP}\d{{4}}{_SEP}\d{{4}}"

PATTERN = re.compile(
    rf"{_EDGE_L}(?P<id>{_ID18}|{_ID15}){_EDGE_R}|{_EDGE_L}(?P<mobile>{_MOBILE}){_EDGE_R}"
)


def _byte_classes() -> bytes:
    """A translation table for the quick test: digits and the separators a phone may carry
    -> ``0``, X/x (an ID's check character) -> ``x``, other letters -> ``a``, anything else
    -> space. Runs of digits are then found on a buffer of four symbols."""
    table = bytearray(b" " * 256)
    for byte in b"0123456789 -":
        table[byte] = ord("0")
    for byte in b"ABCDEFGHIJKLMNOPQRSTUVWYZabcdefghijklmnopqrstuvwyz":
        table[byte] = ord("a")
    for byte in b"Xx":
        table[byte] = ord("x")
    return bytes(table)


_CLASSES = _byte_classes()
# 11 digits or separators or more, maybe an X: a literal first, searched for as a string
_RUN = re.compile(rb"00000000000[0x]*")

Tokeniser = Callable[[str, str], str]  # (kind, canonical value) -> pseudonym
#: hex digits of the pseudonym kept in a token inside free text: the first 64 bits of the
#: same keyed pseudonym (links to the declared field's value by prefix), short enough that
#: a remark stays within its column's length
TOKEN_HEX = 16


def _runs(body: bytes) -> Iterator[bytes]:
    """Each run of 11+ digits and separators (an ID's final X allowed) with one byte of
    context on each side, except a run of digits alone right after an ASCII letter: inside
    a longer token of letters and digits, where no identifier can start (``_EDGE_L``), such
    as a digit stretch of a 64-character hex pseudonym. Why that test: an archived trade-in
    page's two pseudonyms a record hold ~340 distinct such stretches, each new to
    :func:`_names_someone`'s cache, ~0.8 ms a page of the extract's main thread
    (2026-12-01)."""
    classes = body.translate(_CLASSES)
    for match in _RUN.finditer(classes):
        start, end = match.span()
        if start and classes[start - 1] in _LETTERS and body[start:end].isdigit():
            continue
        yield body[max(0, start - 1) : end + 1]


_LETTERS = (ord("a"), ord("x"))  # the classes of ASCII letters


def has_candidates(body: bytes) -> bool:
    """Whether the bytes hold a run of digits long enough to be an ID or a mobile number,
    not inside a longer token (~0.4 ms per 100 kB: a translation and a scan over four
    symbols)."""
    return next(_runs(body), None) is not None


@lru_cache(maxsize=8192)
def _names_someone(run: bytes) -> bool:
    text = run.decode("utf-8", "ignore")
    return any(classify(m.group(0)) is not None for m in PATTERN.finditer(text))


def holds_identifiers(body: bytes) -> bool:
    """Whether the bytes hold a real ID number or mobile number (check character and birth
    date verified); the runs found by the quick test are classified, each distinct run once
    (the same enterprise code on every row of a page costs one check)."""
    return any(_names_someone(run) for run in _runs(body))


def file_holds_identifiers(body: bytes, limit: int) -> bool:
    """Whether a file may hold an ID number or a phone: its bytes, or for a workbook (a
    zip) its decompressed parts, read in bounded chunks; a file that cannot be read whole
    within ``limit`` decompressed bytes (a zip bomb) counts as holding one."""
    if not zipfile.is_zipfile(io.BytesIO(body)):
        return holds_identifiers(body)
    seen, tail = 0, b""
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            for info in archive.infolist():
                with archive.open(info) as member:
                    while chunk := member.read(1 << 20):
                        seen += len(chunk)
                        if seen > limit or holds_identifiers(tail + chunk):
                            return True
                        tail = chunk[-32:]  # a number split across two chunks
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError):
        return holds_identifiers(body)
    return False


def _valid_birth(digits: str) -> bool:
    try:
        born = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= date.today()


def classify(text: str) -> tuple[str, str] | None:
    """``(kind, canonical value)`` for a matched text, or None when it is not one after all
    (an 18-digit run whose check character or birth date is wrong)."""
    compact = re.sub(r"[ \-\u00a0]", "", text)
    if len(compact) == 18 and compact[:17].isdigit():
        value = compact.upper()
        if id_check_char(value[:17]) == value[17] and _valid_birth(value[6:14]):
            return "resident_id", value
        return None
    if len(compact) == 15 and compact.isdigit() and text == compact:
        if _valid_birth("19" + compact[6:12]):
            return "resident_id", compact
        return None
    for prefix in ("+86", "0086", "86"):
        if compact.startswith(prefix) and len(compact) == 11 + len(prefix):
            compact = compact[len(prefix) :]
            break
    if len(compact) == 11 and compact.isdigit() and compact[0] == "1":
        return "mobile", compact
    return None


def scrub_text(text: str, tokenise: Tokeniser) -> tuple[str, int]:
    """``text`` with every ID and mobile number replaced, and how many were replaced."""
    found = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal found
        kind_value = classify(match.group(0))
        if kind_value is None:
            return match.group(0)
        found += 1
        kind, value = kind_value
        if match.start() == 0 and match.end() == len(text):
            return tokenise(kind, value)  # the whole value: the bare pseudonym
        return f"〔{kind}:{tokenise(kind, value)[:TOKEN_HEX]}〕"

    return PATTERN.sub(replace, text), found


def scrub(value: Any, tokenise: Tokeniser) -> tuple[Any, int]:
    """``value`` (a record, a list, a scalar) with personal data replaced at any depth."""
    if isinstance(value, str):
        if len(value) < 11:
            return value, 0
        return scrub_text(value, tokenise)
    if isinstance(value, bool):
        return value, 0
    if isinstance(value, int):
        digits = str(value)
        if len(digits) in (11, 15, 18) and (kind_value := classify(digits)) is not None:
            return tokenise(*kind_value), 1
        return value, 0
    if isinstance(value, dict):
        total = 0
        for key in list(value):
            value[key], n = scrub(value[key], tokenise)
            total += n
        return value, total
    if isinstance(value, list):
        total = 0
        for i, item in enumerate(value):
            value[i], n = scrub(item, tokenise)
            total += n
        return value, total
    return value, 0


def mask(text: str) -> str:
    """A personal identifier shown to people: ``5104**********1234``, ``139****5678``."""
    kind_value = classify(text)
    if kind_value is None:
        return text
    kind, value = kind_value
    if kind == "mobile":
        return f"{value[:3]}****{value[-4:]}"
    return f"{value[:4]}{'*' * (len(value) - 8)}{value[-4:]}"


def mask_text(text: str) -> str:
    """``text`` with every ID and mobile number masked (for logs, messages and reports)."""
    return PATTERN.sub(lambda m: mask(m.group(0)), text)
