"""The sample online retail, employment and 12315 feeds: served over real HTTP with the
shared pagination, calendar and fault machinery, and realistic enough to be believed."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import pytest
import requests

from cm_devtools.sample_server import FeedServer, complaints_data, ecommerce_data
from cm_devtools.sample_server import employment_data as employment
from cm_devtools.sample_server.common import feed_codes
from consumption_monitor.common.identifiers import is_valid_uscc
from consumption_monitor.common.periods import Period, period_range
from consumption_monitor.common.workdays import load_calendar
from tests.conftest import AS_OF, TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
PLATFORMS = "/api/v1/ecommerce/platform-sales"
CASES = "/api/v1/complaints-12315/cases"
FAIRS = "/api/v1/employment/job-fairs"


def get(server: FeedServer, path: str, **params: Any) -> requests.Response:
    return requests.get(server.url + path, params=params, headers=AUTH, timeout=10)


def test_each_feed_has_its_own_publication_calendar(feed_server: FeedServer) -> None:
    periods = {
        feed: get(feed_server, "/api/v1/periods", feed=feed).json()["periods"]
        for feed in ("ecommerce_monthly", "employment_monthly", "complaints_12315")
    }
    assert (
        periods["ecommerce_monthly"][0] == "2024-02"
        and "2025-01" not in periods["ecommerce_monthly"]
    )
    assert (
        periods["employment_monthly"][0] == "2024-01" and "2025-01" in periods["employment_monthly"]
    )
    assert periods["complaints_12315"] == periods["employment_monthly"]
    assert periods["complaints_12315"][-1] == "2025-11"
    january = get(feed_server, PLATFORMS, period="2025-01")
    assert january.status_code == 404 and january.json()["combined_with"] == "2025-02"
    assert get(feed_server, CASES, period="2025-01").status_code == 200
    assert get(feed_server, "/api/v1/periods", feed="nope").status_code == 404


def test_pages_are_complete_and_a_month_without_job_fairs_is_empty(feed_server) -> None:
    whole = get(feed_server, CASES, period="2025-03", limit=1000).json()
    rows, params = [], {"period": "2025-03", "limit": 7}
    while True:
        body = get(feed_server, CASES, **params).json()
        rows.extend(body["data"])
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert rows == whole["data"] and len(rows) == whole["total"]
    assert "unit" not in whole  # the 12315 feed has no amounts
    empty = get(feed_server, FAIRS, period="2025-03").json()
    assert (empty["total"], empty["data"], empty["next_cursor"]) == (0, [], None)


def test_bad_rows_act_only_on_streams_declaring_the_defect(feed_server: FeedServer) -> None:
    feed_server.faults.add("bad_rows", period="2025-03", times=1, which=["unknown_platform"])
    clean = get(feed_server, CASES, period="2025-03", limit=1000).json()["data"]
    assert len(feed_server.faults.rules) == 1  # not used up by a stream without the defect
    rows = get(feed_server, PLATFORMS, period="2025-03", limit=1000).json()["data"]
    assert feed_server.faults.rules == []
    assert [r["platform"] for r in rows].count(ecommerce_data.UNKNOWN_PLATFORM) == 1
    assert get(feed_server, CASES, period="2025-03", limit=1000).json()["data"] == clean


def test_online_retail_is_consistent_and_plausible() -> None:
    for year in (2024, 2025):
        previous = None
        for month in range(2, 13):
            period = Period(year, month)
            (district,) = ecommerce_data.district_rows(period)
            rows = ecommerce_data.platform_rows(period)
            assert district["physical_online_retail_ytd"] <= district["online_retail_ytd"]
            if previous is not None:
                assert district["online_retail_ytd"] > previous
            previous = district["online_retail_ytd"]
            assert {r["platform"] for r in rows} <= set(feed_codes()["platforms"])
            for r in rows:
                assert is_valid_uscc(r["uscc"]) and r["uscc"].startswith("91510403")
                assert 0 <= r["live_sales"] <= r["online_sales"]
                assert (r["live_sessions"] == 0) <= (r["live_sales"] == 0)
                assert isinstance(r["orders"], int) and r["orders"] >= 1
        # monitored enterprises are a part of the district, about half of it
        assert 3_000 <= previous <= 20_000  # 万元 a year
    assert "焕新生活APP" not in {
        r["platform"] for r in ecommerce_data.platform_rows(Period(2025, 2))
    }
    assert "焕新生活APP" in {r["platform"] for r in ecommerce_data.platform_rows(Period(2025, 3))}


@pytest.mark.parametrize("year", [2024, 2025, 2026])
def test_job_fairs_meet_the_plan_and_are_held_on_working_days(year: int) -> None:
    fairs = employment.fairs_of_year(year)
    assert 3 <= len(fairs) <= 6
    assert sum(f["jobs_offered"] for f in fairs) >= 800
    cal = load_calendar()
    for fair in fairs:
        assert cal.is_workday(date.fromisoformat(fair["event_date"]))
        assert fair["mode"] in feed_codes()["job_fair_modes"]
        assert 0 < fair["hires"] <= fair["attendees"] and fair["hires"] <= fair["jobs_offered"]
    (december,) = employment.monthly_rows(Period(year, 12))
    assert december["work_relief_jobs_ytd"] >= 20  # 以工代赈: at least 20 jobs a year
    assert 1_500 <= december["urban_new_jobs_ytd"] <= 2_600


def test_complaints_are_handled_on_time_nearly_always_but_not_always() -> None:
    cal = load_calendar()
    counts: Counter[str] = Counter()
    for period in period_range("2024-01", "2025-10"):
        for case in complaints_data.case_rows(period, as_of=AS_OF):
            received = date.fromisoformat(case["received_date"])
            assert case["received_date"][:7] == str(period)
            if case["case_type"] == "举报":
                deadline = cal.add_workdays(received, 15)
                done = case["checked_date"]
            else:
                accepted = date.fromisoformat(case["accepted_date"])
                assert received <= accepted <= date.fromisoformat(case["closed_date"])
                accept_by = cal.add_workdays(received, 7)
                declined = case["outcome"] == "不予受理"
                deadline = accept_by if declined else cal.add_workdays(accepted, 45)
                done = case["closed_date"] if accepted <= accept_by else "9999-12-31"
            counts[case["case_type"]] += 1
            counts[f"{case['case_type']}:late"] += done > deadline.isoformat()
    for kind in ("投诉", "举报"):
        rate = 1 - counts[f"{kind}:late"] / counts[kind]
        assert 0.99 <= rate < 1.0, (kind, counts)
    assert 40 <= counts["投诉"] / 22 <= 75 and 8 <= counts["举报"] / 22 <= 20


def test_cases_still_open_on_the_servers_day_are_pending() -> None:
    november = complaints_data.case_rows(Period(2025, 11), as_of=date(2025, 12, 1))
    pending = [c for c in november if c["outcome"] == complaints_data.PENDING]
    assert pending and all(c["closed_date"] is None and c["checked_date"] is None for c in pending)
    later = {c["case_id"]: c for c in complaints_data.case_rows(Period(2025, 11), as_of=AS_OF)}
    assert sum(later[c["case_id"]]["outcome"] != complaints_data.PENDING for c in pending) > 0
