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
