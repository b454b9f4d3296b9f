"""The sample feed server, exercised over real sockets with ``requests``.

Why real HTTP: the ingestion code will meet pagination, auth, throttling and broken
connections through the network stack, so the server's contract is tested the same way.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import urllib3

from cm_devtools.sample_server import FaultPlan, FeedServer, add_cli_arguments
from cm_devtools.sample_server.faults import FaultError, FaultRule
from consumption_monitor.common.identifiers import is_valid_uscc
from consumption_monitor.common.periods import Period

AS_OF = datetime.date(2025, 7, 10)  # published periods: 2024-02 .. 2025-06
DISTRICT = "/api/v1/retail/district-totals"
ABOVE = "/api/v1/retail/above-quota"
TIMEOUT = 10


@pytest.fixture(scope="module")
def server() -> Iterator[FeedServer]:
    with FeedServer(as_of=AS_OF) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "server" in request.fixturenames:
        request.getfixturevalue("server").faults.clear()


def get(srv: FeedServer, path: str, **params: Any) -> requests.Response:
    return requests.get(srv.url + path, params=params, timeout=TIMEOUT)


def above_rows(srv: FeedServer, period: str, limit: int = 1000) -> list[dict[str, Any]]:
    """Every above-quota row of a period, following the cursor."""
    rows: list[dict[str, Any]] = []
    params: dict[str, Any] = {"period": period, "limit": limit}
    while True:
        response = get(srv, ABOVE, **params)
        assert response.status_code == 200, response.text
        body = response.json()
        rows.extend(body["data"])
        if body["next_cursor"] is None:
            assert len(rows) == body["total"]
            return rows
        params["cursor"] = body["next_cursor"]


def district(srv: FeedServer, period: str) -> dict[str, dict[str, Any]]:
    response = get(srv, DISTRICT, period=period)
    assert response.status_code == 200, response.text
    return {row["indicator_code"]: row for row in response.json()["data"]}


def key(row: dict[str, Any]) -> tuple[str, str]:
    return row["uscc"], row["category_code"]


# --- basics --------------------------------------------------------------------------


def test_health_and_periods(server: FeedServer) -> None:
    assert get(server, "/health").json() == {"status": "ok"}
    periods = get(server, "/api/v1/periods").json()["periods"]
    assert periods[0] == "2024-02" and periods[-1] == "2025-06"
    assert "2025-01" not in periods and "2025-02" in periods
    assert len(periods) == 16


def test_district_envelope_and_february(server: FeedServer) -> None:
    body = get(server, DISTRICT, period="2025-03").json()
    assert {k: body[k] for k in ("feed", "stream", "period", "unit", "page", "total")} == {
        "feed": "retail_monthly",
        "stream": "district_totals",
        "period": "2025-03",
        "unit": "万元",
        "page": 1,
        "total": 2,
    }
    assert body["next_page"] is None
    row = body["data"][0]
    assert row["period_label"] == "3月" and row["region_name"] == "西区"
    assert row["indicator_name"] == "社会消费品零售总额"
    feb = district(server, "2025-02")
    for row in feb.values():
        assert row["period_label"] == "1-2月"
        assert row["value_month"] is None and row["yoy_month_pct"] is None
        assert row["value_ytd"] > 0 and isinstance(row["yoy_ytd_pct"], float)
    assert all(row["value_month"] is None for row in above_rows(server, "2025-02"))


def test_january_future_and_bad_periods(server: FeedServer) -> None:
    january = get(server, DISTRICT, period="2025-01")
    assert january.status_code == 404
    assert january.json()["error"] == "combined_period"
    assert january.json()["combined_with"] == "2025-02"
    assert january.json()["message"] == "1月数据与2月合并发布（1-2月）"
    for period in ("2025-07", "2030-05", "2023-06"):
        response = get(server, ABOVE, period=period)
        assert response.status_code == 404 and response.json()["error"] == "not_published"
        assert response.json()["period"] == period
    for params in ({"period": "2025-13"}, {"period": "March"}, {}):
        response = get(server, DISTRICT, **params)
        assert response.status_code == 400 and response.json()["error"] == "bad_request"
    assert get(server, ABOVE, period="2025-03", cursor="garbage!").status_code == 400
    assert get(server, DISTRICT, period="2025-03", page=0).status_code == 400


# --- determinism and pagination --------------------------------------------------------


def test_identical_across_instances(server: FeedServer) -> None:
    with FeedServer(as_of=AS_OF) as other:
        for path, params in ((DISTRICT, {"period": "2024-12"}), (ABOVE, {"period": "2025-02"})):
            assert get(server, path, **params).content == get(other, path, **params).content


def test_identical_across_processes(server: FeedServer) -> None:
    code = (
        "import hashlib, json;"
        "from consumption_monitor.common.periods import Period;"
        "from cm_devtools.sample_server import retail_data as rd;"
        "p = Period(2025, 3);"
        "blob = json.dumps([rd.above_quota_rows(p), rd.district_rows(p)], ensure_ascii=False);"
        "print(hashlib.sha256(blob.encode()).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    blob = json.dumps(
        [above_rows(server, "2025-03"), list(district(server, "2025-03").values())],
        ensure_ascii=False,
    )
    assert out.stdout.strip() == hashlib.sha256(blob.encode()).hexdigest()


def test_cursor_pagination_complete_and_stable(server: FeedServer) -> None:
    whole = above_rows(server, "2025-03")
    paged = above_rows(server, "2025-03", limit=7)
    assert paged == whole
    keys = [key(row) for row in paged]
    assert len(keys) == len(set(keys)) and keys == sorted(keys)
    assert 60 <= len(whole) <= 120


def test_page_pagination(server: FeedServer) -> None:
    first = get(server, DISTRICT, period="2025-03", page_size=1).json()
    assert first["next_page"] == 2 and len(first["data"]) == 1
    second = get(server, DISTRICT, period="2025-03", page_size=1, page=2).json()
    assert second["next_page"] is None
    codes = [first["data"][0]["indicator_code"], second["data"][0]["indicator_code"]]
    assert codes == ["retail_total", "retail_above_quota"]
    assert get(server, DISTRICT, period="2025-03", page=3).json()["data"] == []


# --- realism ---------------------------------------------------------------------------


def test_enterprises_are_plausible(server: FeedServer) -> None:
    rows = above_rows(server, "2025-06")
    units: dict[str, set[str]] = {}
    for row in rows:
        assert is_valid_uscc(row["uscc"]) and row["uscc"].startswith("91510403")
        assert row["region_code"] == "510403" and row["unit"] == "万元"
        assert row["enterprise_name"].startswith("攀枝花市西区")
        if row["industry_code"] in ("61", "62"):
            assert row["category_code"] == "C01" and row["category_name"] == "餐饮收入"
        else:
            assert row["industry_code"] in ("51", "52")
            assert row["category_code"].startswith("G")
        assert row["value_month"] > 0 and row["value_ytd"] >= row["value_month"]
        units.setdefault(row["uscc"], set()).add(row["category_code"])
    assert 35 <= len(units) <= 50
    assert all(1 <= len(categories) <= 5 for categories in units.values())


def test_above_quota_total_is_sum_of_rows(server: FeedServer) -> None:
    for period in get(server, "/api/v1/periods").json()["periods"]:
        rows = above_rows(server, period)
        figures = district(server, period)
        above, total = figures["retail_above_quota"], figures["retail_total"]
        assert above["value_ytd"] == round(sum(row["value_ytd"] for row in rows), 2)
        if period.endswith("-02"):
            assert above["value_month"] is None
            continue
        assert above["value_month"] == round(sum(row["value_month"] for row in rows), 2)
        assert 0.45 <= above["value_month"] / total["value_month"] <= 0.55
        assert 20_000 <= total["value_month"] <= 45_000


def test_ytd_is_sum_of_months(server: FeedServer) -> None:
    periods = [Period.parse(p) for p in get(server, "/api/v1/periods").json()["periods"]]
    for period in periods:
        if period.month < 3:
            continue
        prev = str(period.shift(-1))
        now, before = district(server, str(period)), district(server, prev)
        for code, row in now.items():
            expected = round(before[code]["value_ytd"] + row["value_month"], 2)
            assert row["value_ytd"] == expected, (period, code)
    prev_rows = {key(r): r for r in above_rows(server, "2025-05")}
    for row in above_rows(server, "2025-06"):
        if key(row) in prev_rows:
            expected = round(prev_rows[key(row)]["value_ytd"] + row["value_month"], 2)
            assert row["value_ytd"] == expected


def test_published_yoy_differs_from_recomputation(server: FeedServer) -> None:
    now, then = district(server, "2025-03"), district(server, "2024-03")
    for code, row in now.items():
        naive = (row["value_month"] / then[code]["value_month"] - 1) * 100
        assert 0.1 <= abs(row["yoy_month_pct"] - naive) <= 1.6
        assert row["yoy_month_pct"] == round(row["yoy_month_pct"], 1)


# --- auth ------------------------------------------------------------------------------


def test_token_required_and_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    token = "tok-Secret-123"
    caplog.set_level(logging.DEBUG)
    with FeedServer(token=token, as_of=AS_OF) as srv:
        url = srv.url + DISTRICT
        params = {"period": "2025-03"}
        missing = requests.get(url, params=params, timeout=TIMEOUT)
        assert missing.status_code == 401 and missing.json()["error"] == "unauthorized"
        wrong = requests.get(url, params=params, headers={"Authorization": "Bearer x"})
        assert wrong.status_code == 401
        ok = requests.get(url, params=params, headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and ok.json()["total"] == 2
        assert requests.get(srv.url + "/health", timeout=TIMEOUT).status_code == 200
        assert [entry["status"] for entry in srv.request_log] == [401, 401, 200, 200]
        assert token not in json.dumps(srv.request_log) and token not in repr(srv)
    assert token not in caplog.text


# --- faults ----------------------------------------------------------------------------


def test_http_500_counts_down(server: FeedServer) -> None:
    server.faults.add("http_500", times=2)
    statuses = [get(server, DISTRICT, period="2025-03").status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert server.faults.rules == []
    assert server.request_log[-1]["faults"] == [] and server.request_log[-2]["faults"] == [
        "http_500"
    ]


def test_http_429_with_retry_after_and_filters(server: FeedServer) -> None:
    server.faults.add("http_429", path="above-quota", period="2025-04", retry_after=7)
    assert get(server, DISTRICT, period="2025-04").status_code == 200  # path does not match
    assert get(server, ABOVE, period="2025-03").status_code == 200  # period does not match
    throttled = get(server, ABOVE, period="2025-04")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
    assert get(server, ABOVE, period="2025-04").status_code == 200


def test_always_fault(server: FeedServer) -> None:
    server.faults.add("http_500", times=-1)
    assert all(get(server, "/api/v1/periods").status_code == 500 for _ in range(3))
    assert get(server, "/health").status_code == 200  # faults touch /api only


def test_slow(server: FeedServer) -> None:
    server.faults.add("slow", seconds=0.4)
    started = time.monotonic()
    response = get(server, DISTRICT, period="2025-03")
    assert response.status_code == 200 and time.monotonic() - started >= 0.4
    started = time.monotonic()
    get(server, DISTRICT, period="2025-03")
    assert time.monotonic() - started < 0.4


def test_truncate(server: FeedServer) -> None:
    server.faults.add("truncate")
    with pytest.raises((requests.exceptions.RequestException, ValueError)):
        get(server, ABOVE, period="2025-03").json()
    response = requests.get(server.url + ABOVE, params={"period": "2025-03"}, stream=True)
    assert response.status_code == 200  # the fault is used up
    assert len(response.raw.read(decode_content=False)) == int(response.headers["Content-Length"])


def test_truncate_short_read(server: FeedServer) -> None:
    server.faults.add("truncate")
    response = requests.get(server.url + DISTRICT, params={"period": "2025-03"}, stream=True)
    declared = int(response.headers["Content-Length"])
    received = b""
    with pytest.raises(urllib3.exceptions.ProtocolError):  # IncompleteRead underneath
        for chunk in response.raw.stream(1024, decode_content=False):
            received += chunk
    assert len(received) < declared
    with pytest.raises(json.JSONDecodeError):
        json.loads(received)


def test_bad_rows_all_defects(server: FeedServer) -> None:
    clean, clean_district = above_rows(server, "2025-03"), district(server, "2025-03")
    server.faults.add("bad_rows", period="2025-03")
    bad = above_rows(server, "2025-03", limit=9)  # many pages: the batch stays consistent
    assert len(bad) == len(clean) + 1
    assert bad == above_rows(server, "2025-03")
    assert above_rows(server, "2025-04") == above_rows(server, "2025-04")  # other periods clean

    found = set()
    keys = [key(row) for row in bad]
    if len(keys) != len(set(keys)):
        found.add("duplicate_key")
    for row in bad:
        month = row["value_month"]
        if isinstance(month, str):
            assert month == "12,3x4"
            found.add("non_numeric")
        elif month < 0:
            found.add("negative_amount")
        if not is_valid_uscc(row["uscc"]):
            assert len(row["uscc"]) == 18
            found.add("bad_uscc_check")
        if row["region_code"] != "510403":
            assert row["region_code"] == "510402"
            found.add("wrong_region")
        if row["period"] != "2025-03":
            found.add("wrong_period")
        if row["unit"] != "万元":
            assert row["unit"] == "元"
            found.add("wrong_unit")
    assert found == {
        "negative_amount",
        "bad_uscc_check",
        "wrong_region",
        "non_numeric",
        "duplicate_key",
        "wrong_period",
        "wrong_unit",
    }
    assert district(server, "2025-03") == clean_district  # district totals are untouched
    assert "bad_rows" not in server.request_log[-1]["faults"]


def test_bad_rows_subset_in_february(server: FeedServer) -> None:
    clean = above_rows(server, "2025-02")
    server.faults.add("bad_rows", which=["negative_amount", "wrong_unit"])
    bad = above_rows(server, "2025-02")
    assert len(bad) == len(clean)
    changed = [(a, b) for a, b in zip(clean, bad, strict=True) if a != b]
    assert len(changed) == 2
    assert changed[0][1]["value_ytd"] == -changed[0][0]["value_ytd"]
    assert changed[1][1]["unit"] == "元"
    assert changed[1][1]["value_ytd"] == round(changed[1][0]["value_ytd"] * 10000, 2)


def test_revision_changes_values_consistently(server: FeedServer) -> None:
    before_rows, before = above_rows(server, "2025-03"), district(server, "2025-03")
    response = requests.post(
        server.url + "/_control/faults",
        json={"rules": [{"kind": "revision", "period": "2025-03", "revision": 1}]},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert response.json()["rules"][0]["times"] == -1
    rows, figures = above_rows(server, "2025-03"), district(server, "2025-03")
    assert [key(r) for r in rows] == [key(r) for r in before_rows]
    changed = sum(
        a["value_month"] != b["value_month"] for a, b in zip(rows, before_rows, strict=True)
    )
    assert changed >= len(rows) * 0.9
    for new, old in zip(rows, before_rows, strict=True):
        assert abs(new["value_month"] / old["value_month"] - 1) <= 0.0051
    assert figures["retail_above_quota"]["value_month"] == round(
        sum(r["value_month"] for r in rows), 2
    )
    assert figures["retail_total"]["value_month"] != before["retail_total"]["value_month"]
    assert above_rows(server, "2025-04")[0]["value_month"] > 0  # other periods still served
    assert requests.delete(server.url + "/_control/faults").json() == {"rules": []}
    assert above_rows(server, "2025-03") == before_rows


def test_control_endpoint_validation(server: FeedServer) -> None:
    url = server.url + "/_control/faults"
    assert requests.post(url, json={"kind": "explode"}).status_code == 400
    assert requests.post(url, data=b"{not json").status_code == 400
    assert requests.post(url, json={"kind": "bad_rows", "which": ["nope"]}).status_code == 400
    assert requests.post(url, json={"kind": "slow", "seconds": 0.1}).status_code == 200
    assert requests.get(url).json()["rules"][0] == {
        "kind": "slow",
        "path": None,
        "period": None,
        "times": 1,
        "seconds": 0.1,
    }


# --- CLI -------------------------------------------------------------------------------


def test_fault_specs() -> None:
    plan = FaultPlan.from_specs(
        [
            "http_500:times=2",
            "bad_rows:period=2025-03,times=-1,which=negative_amount+wrong_unit",
            "http_429:retry_after=5,path=above-quota",
            '{"kind": "revision", "period": "2024-12", "revision": 2}',
        ]
    )
    assert [rule.to_dict() for rule in plan.rules] == [
        {"kind": "http_500", "path": None, "period": None, "times": 2},
        {
            "kind": "bad_rows",
            "path": None,
            "period": "2025-03",
            "times": -1,
            "which": ["negative_amount", "wrong_unit"],
        },
        {"kind": "http_429", "path": "above-quota", "period": None, "times": 1, "retry_after": 5},
        {"kind": "revision", "path": None, "period": "2024-12", "times": -1, "revision": 2},
    ]
    for spec in ("boom", "slow:seconds", "http_500:times=0", "http_429:colour=red"):
        with pytest.raises(FaultError):
            FaultRule.parse_spec(spec)


def test_cli_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    args = parser.parse_args([])
    assert (args.host, args.port, args.token, args.as_of, args.fault) == (
        "127.0.0.1",
        8765,
        None,
        None,
        None,
    )
    args = parser.parse_args(
        ["--as-of", "2025-07-10", "--fault", "http_500:times=2", "--fault", "slow"]
    )
    assert args.as_of == AS_OF and args.fault == ["http_500:times=2", "slow"]
    with pytest.raises(SystemExit):
        parser.parse_args(["--fault", "nonsense"])


def test_cli_serves_with_env_token_and_faults() -> None:
    code = (
        "import argparse, sys;"
        "from cm_devtools.sample_server import add_cli_arguments, run_cli;"
        "p = argparse.ArgumentParser(); add_cli_arguments(p);"
        "sys.exit(run_cli(p.parse_args(sys.argv[1:])))"
    )
    env = {**os.environ, "CM_FEED_TOKEN": "envtoken", "PYTHONUNBUFFERED": "1"}
    argv = ["--port", "0", "--as-of", "2025-07-10", "--fault", "http_500:times=1"]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = first.split("：", 1)[1].split("（", 1)[0]
        assert url.startswith("http://127.0.0.1:")
        auth = {"Authorization": "Bearer envtoken"}
        assert requests.get(url + "/api/v1/periods", timeout=TIMEOUT).status_code == 401
        assert requests.get(url + "/api/v1/periods", headers=auth).status_code == 500
        assert requests.get(url + "/api/v1/periods", headers=auth).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "envtoken" not in err
