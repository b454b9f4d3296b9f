"""The fast JSON codec of feed pages reads and writes the same values as the standard library."""

from __future__ import annotations

import json
import math

import pytest

from consumption_monitor.feeds import jsoncodec

PAGE = {
    "period": "2025-03",
    "records": [
        {
            "order_id": "TI2025030000001",
            "price": 3999.0,
            "subsidy": 599.85,
            "tiny": 1.5e-7,
            "huge": 1e16,
            "big_int": 2**70,
            "name": '西区家电商城\n"旗舰店"/一店',
            "ok": True,
            "grade": None,
        }
    ],
    "next_cursor": None,
}


def test_decode_matches_the_standard_library() -> None:
    body = json.dumps(PAGE, ensure_ascii=False).encode()
    assert jsoncodec.loads(body) == json.loads(body)


def test_encode_round_trips_to_the_same_values() -> None:
    assert json.loads(jsoncodec.dumps(PAGE)) == PAGE


def test_non_json_tokens_take_the_standard_library_both_ways() -> None:
    body = b'{"records": [{"price": NaN, "subsidy": Infinity}]}'
    doc = jsoncodec.loads(body)
    price, subsidy = doc["records"][0]["price"], doc["records"][0]["subsidy"]
    assert math.isnan(price) and subsidy == math.inf
    # written back as NaN/Infinity, not null: an unparseable value must not become missing
    again = jsoncodec.dumps(doc, parsed_from=body)
    assert b"NaN" in again and b"Infinity" in again and b"null" not in again


def test_invalid_json_raises_the_standard_value_error() -> None:
    with pytest.raises(ValueError, match=r"Expecting|Unterminated|Extra data"):
        jsoncodec.loads(b'{"records": [')
    with pytest.raises(ValueError, match="nested too deeply"):  # was a RecursionError
        jsoncodec.loads(b'{"records":' + b"[" * 100_000 + b"]" * 100_000 + b"}")


def test_canonical_form_is_the_standard_librarys_byte_for_byte() -> None:
    """Content digests (batch ids) must not change: msgspec's sorted encoding is used only
    where it writes the standard library's bytes."""
    import json
    import random

    from consumption_monitor.feeds.jsoncodec import canonical

    def std(value) -> bytes:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return text.encode()

    rng = random.Random(17)
    chars = [chr(i) for i in range(0x90)] + ["\u2028", "中", "😀", "\ufeff", ":1e5", "0.0000"]
    floats = [0.1, 1e16, 1e-5, 9.999e15, 1.5e-4, 1e-4, -0.0, 5e-324, 1.7976931348623157e308]
    for _ in range(3000):
        record = {}
        for _ in range(5):
            key = "".join(rng.choice(chars) for _ in range(rng.randint(1, 4)))
            kind = rng.random()
            if kind < 0.3:
                value = "".join(rng.choice(chars) for _ in range(rng.randint(0, 8)))
            elif kind < 0.55:
                value = rng.choice(
                    [*floats, rng.uniform(-1e6, 1e6), rng.random() * 10 ** rng.randint(-8, 20)]
                )
            elif kind < 0.75:
                value = rng.choice([rng.randint(-(2**63), 2**63 - 1), 2**70])
            elif kind < 0.85:
                value = rng.choice([True, False, None])
            else:
                value = [rng.random(), {"b": 1, "a": "x"}]
            record[key] = value
        assert canonical([record], from_json=True) == std([record])
    assert canonical([{"d": float("nan")}]) == b'[{"d":NaN}]'  # not from plain JSON


def test_a_page_is_archived_with_the_values_received_and_its_canonical_bytes() -> None:
    """``encode_page`` on pages as a server sends them (any float form, numbers beyond a
    double's range, NaN tokens): the archived body parses to the values received, and
    the canonical bytes it returns are the standard library's. A ``1e999`` (an infinity
    once parsed by the standard library) used to be archived as ``null``, and still was
    after a space or a line break (a pretty-printed page)."""
    import random

    from consumption_monitor.feeds.jsoncodec import encode_page, loads

    def std(value) -> bytes:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return text.encode()

    def same(a, b) -> bool:  # NaN equal to NaN
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)

    tokens = ["1.5", "0.1", "1e16", "1E+16", "1e-5", "0.00001", "-0.000012", "12345678901234567.5",
              "1e999", "-1e999", "1e-999", "NaN", "Infinity", "12", "-0.0", "9.999e15", "0.0001",
              '"1e999"', '"a,1e5"', '"TI2025E123"', "true", "null"]  # fmt: skip
    rng = random.Random(23)
    spaces = ["", "", " ", "\n  ", "\t", "\r\n"]  # servers may pretty-print

    def ws() -> str:
        return rng.choice(spaces)

    for _ in range(2000):
        records = f",{ws()}".join(
            "{"
            + f",{ws()}".join(
                f'"k{j}"{ws()}:{ws()}{rng.choice(tokens)}{ws()}' for j in range(rng.randint(1, 4))
            )
            + "}"
            for _ in range(rng.randint(0, 3))
        )
        body = f'{{"data":[{ws()}{records}{ws()}],"next":null}}'.encode()
        doc = loads(body)
        archived, canonical = encode_page(doc, "data", body, from_json=True)
        assert same(loads(archived), json.loads(body)), body
        if canonical is not None:
            assert canonical == std(json.loads(body)["data"]), body
    for body in (b'{"data":[{"price":1e999}]}', b'{"data": [{"price": 1e999}]}'):
        archived, _ = encode_page(loads(body), "data", body, from_json=True)
        assert b"Infinity" in archived and b"null" not in archived, body


def test_a_lone_surrogate_escape_becomes_the_replacement_character() -> None:
    """``"\\ud800"`` (half a UTF-16 pair) parsed to a string no UTF-8 file, digest or
    PostgreSQL column can hold, which crashed the extract; it is U+FFFD, a whole pair
    stays the character it encodes, and the page is archived and digested."""
    from consumption_monitor.feeds.frames import to_frame
    from consumption_monitor.feeds.jsoncodec import canonical, encode_page, loads
    from consumption_monitor.feeds.spec import ColumnSpec, StreamSpec

    body = b'{"data":[{"name":"a\\ud800b","pair":"\\ud83d\\ude00","\\udfff":1}]}'
    doc = loads(body)
    assert doc["data"] == [{"name": "a\ufffdb", "pair": "\U0001f600", "\ufffd": 1}]
    archived, _ = encode_page(doc, "data", body, from_json=True)
    assert loads(archived) == doc
    assert canonical(doc["data"], from_json=True).decode() == (
        '[{"name":"a\ufffdb","pair":"\U0001f600","\ufffd":1}]'
    )
    stream = StreamSpec(
        name="s", table="s", path="/s", keys=("name",), columns=(ColumnSpec("name", "string"),)
    )
    assert to_frame(stream, doc["data"])["name"].tolist() == ["a\ufffdb"]


def test_the_float_form_search_finds_every_number_token_of_such_a_form() -> None:
    """``_has_float_form`` (whitespace deleted, boundaries before text skipped) flags a
    document whenever the pattern flags one of its number tokens (a form msgspec may write
    otherwise; digits as classes, so ``0.0001`` is flagged too), in
    arrays or objects, compact or pretty-printed, first in the document or not; and lets a
    document through whose numbers are plain and whose texts hold nothing number-like
    after a ``:``, ``,`` or ``[`` (the trade-in pages' case, the fast path)."""
    import random

    from consumption_monitor.feeds.jsoncodec import _CLASSES, _FLOAT_FORMS, _has_float_form

    plain = ["1.5", "0.1", "12", "-0.0", "9.999", "0.001", "7183.01", "-3"]
    odd = ["1e16", "1E+16", "1e-5", "0.00001", "-0.000012", "12345678901234567.5", "1e999",
           "2.5e3", "-1E2", "0.0001"]  # fmt: skip
    texts = ['"TI2025039E3779B97F"', '"915104037075624911"', '"x 1e5"', '"2025-03-12"', '"a"']
    rng = random.Random(7)
    spaces = ["", " ", "\n  ", "\t", "\r\n"]

    def value(depth: int) -> str:
        pick = rng.random()
        if depth < 2 and pick < 0.2:
            return "[" + f",{rng.choice(spaces)}".join(value(depth + 1) for _ in range(3)) + "]"
        if depth < 2 and pick < 0.4:
            items = (f'"k{i}"{rng.choice(spaces)}:{rng.choice(spaces)}{value(depth + 1)}'
                     for i in range(3))  # fmt: skip
            return "{" + f",{rng.choice(spaces)}".join(items) + "}"
        pool = rng.choice([plain, odd if rng.random() < 0.1 else plain, texts])
        return rng.choice(pool)

    seen = {True: 0, False: 0}
    for _ in range(3000):
        body = (rng.choice(spaces) + value(0) + rng.choice(spaces)).encode()
        literals: list[str] = []
        json.loads(body, parse_float=lambda s, kept=literals: kept.append(s) or float(s))
        expected = any(_FLOAT_FORMS.search(b"b" + s.encode().translate(_CLASSES)) for s in literals)
        if expected or b"x 1e5" not in body:  # that text looks like a number after a space
            assert _has_float_form(body) == expected, body
        seen[expected] += 1
    assert min(seen.values()) > 100, seen
