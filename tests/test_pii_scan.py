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


def test_a_page_is_pseudonymised_as_record_by_record() -> None:
    """``apply_page`` (a field at a time, validity in NumPy) leaves every record as
    ``apply`` does, keys in the same order, and counts the records lacking each field: on
    random pages of valid, invalid, odd and missing IDs and phones."""
    import copy
    import random

    from consumption_monitor.feeds.pii import Pseudonymiser
    from consumption_monitor.feeds.spec import load_feed

    fields = load_feed("tradein_transactions").streams[0].pii
    draw = random.Random(5)
    ids = [ID18, ID18.lower(), WRONG_CHECK, BODY, "510403900307123", f" {ID18} ", "５１０４",
           "51040319900307123٣", 510403199003071234, None, "", "   ", "x" * 18]  # fmt: skip
    phones = ["13912345678", "12912345678", "+86 139-1234-5678", "1391234567", "1391234567٣",
              13912345678, None, "", "139123456789", " 13912345678"]  # fmt: skip
    pseudo = Pseudonymiser(b"k" * 32)
    for _ in range(300):
        page: list[object] = []
        for i in range(draw.randint(1, 8)):
            if draw.random() < 0.05:
                page.append(["not", "an", "object"])
                continue
            record: dict[str, object] = {"order_id": f"T{i}"}
            if draw.random() < 0.9:
                record["consumer_id"] = draw.choice([ID18] * 6 + ids)
            if draw.random() < 0.9:
                record["consumer_phone"] = draw.choice(["13912345678"] * 6 + phones)
            record["price"] = 1.5
            page.append(record)
        one_by_one = copy.deepcopy(page)
        missing: dict[str, int] = {}
        for record in one_by_one:
            if isinstance(record, dict):
                for pii in fields:
                    missing[pii.field] = missing.get(pii.field, 0) + (pii.field not in record)
                pseudo.apply(fields, record)
        counted = pseudo.apply_page(fields, page)
        assert page == one_by_one
        assert [list(r) for r in page if isinstance(r, dict)] == [
            list(r) for r in one_by_one if isinstance(r, dict)
        ]
        assert counted == {field: n for field, n in missing.items() if n}


def test_a_list_of_mobiles_is_checked_as_one_by_one() -> None:
    """``mobiles_valid`` (one NumPy step for 11-character ASCII texts) agrees with
    ``is_valid_mobile`` on right, wrong and mixed lists."""
    import random

    from consumption_monitor.feeds.pii import is_valid_mobile, mobiles_valid

    draw = random.Random(9)
    for _ in range(500):
        values = [
            draw.choice("1")
            + draw.choice("0123456789")
            + "".join(
                draw.choice("0123456789a٣ ") if draw.random() < 0.05 else draw.choice("0123456789")
                for _ in range(9)
            )
            for _ in range(draw.randint(1, 6))
        ]
        if draw.random() < 0.2:
            values.append(draw.choice(["", "1391234567", "139123456789", "23912345678"]))
        assert mobiles_valid(values) == [is_valid_mobile(v) for v in values]


def test_runs_inside_a_token_are_skipped_only_where_no_identifier_can_start() -> None:
    """``holds_identifiers`` (its ``_runs``) skips a run of digits alone right after an
    ASCII letter (a hex pseudonym's digits): the same answer as classifying every run, on
    random texts that put IDs and mobiles after letters, digits, separators, Chinese text,
    at the start and at the end."""
    import random

    from consumption_monitor.feeds.pii_scan import (
        _CLASSES,
        _RUN,
        _names_someone,
        holds_identifiers,
    )

    def every_run(body: bytes) -> list[bytes]:  # each run with its context, none skipped
        spans = (m.span() for m in _RUN.finditer(body.translate(_CLASSES)))
        return [body[max(0, start - 1) : end + 1] for start, end in spans]

    rng = random.Random(11)
    parts = [ID18, ID18.lower(), "13912345678", "139 1234 5678", "+86-139-1234-5678",
             "12345678901234", "7c3e91234567890123ab", "a", "X", "x", "-", " ", "联系", '"',
             "TI2025039E3779B97F", "915104037075624911", ":", "0"]  # fmt: skip
    seen = {True: 0, False: 0}
    for _ in range(4000):
        text = "".join(rng.choice(parts) for _ in range(rng.randint(1, 6)))
        body = text.encode()
        expected = any(_names_someone(run) for run in every_run(body))
        assert holds_identifiers(body) == expected, text
        seen[expected] += 1
    assert min(seen.values()) > 300, seen
