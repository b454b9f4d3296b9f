"""Finding personal identifiers by content: what counts, what does not, and the masks."""

from __future__ import annotations

import pytest

from consumption_monitor.common.identifiers import id_check_char
from consumption_monitor.feeds.pii_scan import has_candidates, mask, mask_text, scrub

BODY = "51040319900307123"
ID18 = BODY + id_check_char(BODY)
WRONG_CHECK = BODY + ("0" if id_check_char(BODY) != "0" else "1")


def token(kind: str, value: str) -> str:
    return f"<{kind}:{value}>"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (ID18, ["resident_id"]),
        (ID18.lower() if ID18.endswith("X") else ID18, ["resident_id"]),
        ("510403900307123", ["resident_id"]),  # the old 15-digit form
        ("13912345678", ["mobile"]),
        ("+86 139 1234 5678", ["mobile"]),
        ("0086-139-1234-5678", ["mobile"]),
        ("8613912345678", ["mobile"]),
        (f"联系人13912345678，身份证{ID18}。", ["mobile", "resident_id"]),
        (WRONG_CHECK, []),  # check character wrong: not an ID
        ("510403199013071237", []),  # month 13
        ("TI2025030000001234", []),  # an order id: part of a longer word
        ("91510403MA6XYZ1234", []),  # a USCC
        ("a13912345678b", []),
        ("12345678901", []),  # 11 digits that are no mobile number
        ("2024-03-05", []),
    ],
)
def test_what_is_found(text: str, found: list[str]) -> None:
    out, n = scrub(text, token)
    assert n == len(found)
    for kind in found:
        assert f"{kind}:" in out
    if not found:
        assert out == text
    assert has_candidates(text.encode()) or not found  # the quick test never misses


def test_scrub_walks_any_structure_and_numbers() -> None:
    doc = {"a": [{"b": 13912345678, "c": True}, f"id {ID18}"], "d": {"e": ["x", 5]}}
    out, n = scrub(doc, token)
    assert n == 2
    assert out["a"][0]["b"] == "<mobile:13912345678>" and out["a"][0]["c"] is True
    assert out["a"][1].startswith("id 〔resident_id:") and ID18 not in out["a"][1]
    assert out["d"] == {"e": ["x", 5]}


def test_masks() -> None:
    assert mask(ID18) == ID18[:4] + "*" * 10 + ID18[-4:]
    assert mask("+86 139 1234 5678") == "139****5678"
    assert mask_text(f"电话13912345678 证件{ID18}") == (
        f"电话139****5678 证件{ID18[:4]}{'*' * 10}{ID18[-4:]}"
    )


def test_pseudonyms_are_hmac_sha256_of_kind_and_value() -> None:
    """The pseudonymiser's own HMAC set-up (pii.Pseudonymiser._keyed) equals the standard
    library's, for short, block-sized and long keys (hashed first) and any text."""
    import hashlib
    import hmac
    import random

    from consumption_monitor.feeds.pii import VALIDATORS, Pseudonymiser

    draw = random.Random(11)
    for size in (1, 16, 32, 63, 64, 65, 100, 200):
        key = bytes(draw.randrange(256) for _ in range(size))
        pseudo = Pseudonymiser(key)
        for value in ("", "110101199003077777", "13812345678", "中文\x00x" * 9, "a" * 300):
            for kind in VALIDATORS:
                expected = hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
                assert pseudo.pseudonym(kind, value) == expected
