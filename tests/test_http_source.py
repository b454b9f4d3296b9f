"""HttpSource against the real local feed server: pagination, retries, client errors.

Waits are recorded through the injectable ``sleep`` instead of being slept, so the tests
check how long the source *asks* to wait without timing anything.
"""

from __future__ import annotations

import dataclasses
import email.utils
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
import requests

from cm_devtools.sample_server import FeedServer
from consumption_monitor.common import config
from consumption_monitor.common.config import FeedEndpoint
from consumption_monitor.common.periods import Period
from consumption_monitor.feeds import engine
from consumption_monitor.feeds.errors import FeedRejected, FeedUnavailable, PeriodNotPublished
from consumption_monitor.feeds.sources.http_api import HttpSource, RetryPolicy, retry_after_seconds
from consumption_monitor.feeds.spec import StreamSpec, load_feed

AS_OF = date(2025, 12, 20)
PERIOD = "2025-03"
FEED = load_feed("retail_monthly")
DISTRICT = FEED.stream("district_totals")
ABOVE = FEED.stream("above_quota")
POLICY = RetryPolicy(attempts=4, backoff_s=0.01, max_wait_s=5.0)


def make_source(
    waits: list[float], policy: RetryPolicy = POLICY, token: str | None = None
) -> HttpSource:
    endpoint = config.feed_endpoint()
    if token is not None:
        endpoint = FeedEndpoint(endpoint.base_url, token)
    return HttpSource(endpoint, policy=policy, sleep=waits.append)


def with_page_size(stream: StreamSpec, size: int) -> StreamSpec:
    return dataclasses.replace(
        stream, paginator=dataclasses.replace(stream.paginator, page_size=size)
    )


# The server appends to ``request_log`` just after it has sent a response, so a client can
# read the log before its own last request (or the previous test's) is in. These helpers
# wait for the log to catch up; they never assert how long anything takes.


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)


def log_mark(server: FeedServer) -> int:
    """An index into ``request_log`` after every request made so far (synchronised by a
    /health request with a unique marker)."""
    marker = uuid.uuid4().hex
    assert requests.get(f"{server.url}/health", params={"mark": marker}, timeout=10).ok

    def seen() -> bool:
        return any(e["query"].get("mark") == marker for e in server.request_log[::-1])

    _wait_until(seen)
    return len(server.request_log)


def requests_since(server: FeedServer, start: int, expected: int = 0) -> list[dict]:
    """The /api requests logged since ``start``, once at least ``expected`` are in."""

    def api() -> list[dict]:
        return [e for e in server.request_log[start:] if e["path"].startswith("/api/")]

    _wait_until(lambda: len(api()) >= expected)
    return api()


def fetch_all(source: HttpSource, stream: StreamSpec, period: str = PERIOD) -> tuple[list, list]:
    pages: list[Any] = []
    rows: list[dict[str, Any]] = []
    for page, doc in source.pages(stream, {"period": period}):
        pages.append((page, doc))
        rows.extend(doc[stream.records_field])
    return pages, rows


def keys(stream: StreamSpec, rows: list[dict[str, Any]]) -> list[tuple]:
    return [tuple(row[k] for k in stream.keys) for row in rows]


# --- pagination ----------------------------------------------------------------------------


def test_page_paginator_returns_every_row_once(feed_server: FeedServer) -> None:
    stream = with_page_size(DISTRICT, 1)
    start = log_mark(feed_server)
    pages, rows = fetch_all(make_source([]), stream)
    total = pages[0][1]["total"]
    assert total >= 2  # otherwise this would not exercise pagination
    assert len(pages) == total
    assert len(rows) == total
    assert len(set(keys(stream, rows))) == total
    assert [page.number for page, _ in pages] == list(range(1, total + 1))
    log = requests_since(feed_server, start, total)
    assert [entry["query"]["page"] for entry in log] == [str(n) for n in range(1, total + 1)]
    assert all(entry["query"]["page_size"] == "1" for entry in log)
    # the same rows, in the same order, as in one big page
    _, single = fetch_all(make_source([]), with_page_size(DISTRICT, 1000))
    assert rows == single


def test_cursor_paginator_returns_every_row_once(feed_server: FeedServer) -> None:
    stream = with_page_size(ABOVE, 10)
    start = log_mark(feed_server)
    pages, rows = fetch_all(make_source([]), stream)
    total = pages[0][1]["total"]
    assert total > 20
    assert len(pages) == -(-total // 10)
    assert all(doc["total"] == total for _, doc in pages)
    assert len(rows) == total
    assert len(set(keys(stream, rows))) == total
    log = requests_since(feed_server, start, len(pages))
    assert len(log) == len(pages)
    assert "cursor" not in log[0]["query"]
    cursors = [entry["query"]["cursor"] for entry in log[1:]]
    assert len(set(cursors)) == len(cursors) == len(pages) - 1
    assert all(entry["query"]["limit"] == "10" for entry in log)
    assert pages[-1][1]["next_cursor"] is None
    _, single = fetch_all(make_source([]), with_page_size(ABOVE, 1000))
    assert rows == single


def test_default_page_sizes_of_the_spec(feed_server: FeedServer) -> None:
    pages, rows = fetch_all(make_source([]), ABOVE)
    assert len(rows) == pages[0][1]["total"]
    assert len(pages) == -(-len(rows) // ABOVE.paginator.page_size)
    pages, rows = fetch_all(make_source([]), DISTRICT)
    assert len(rows) == pages[0][1]["total"]


def test_page_keeps_the_exact_bytes_and_no_credentials(feed_server: FeedServer) -> None:
    (page, doc), *_ = make_source([]).pages(DISTRICT, {"period": PERIOD})
    assert page.status == 200
    assert page.url == feed_server.url + DISTRICT.path
    assert page.params == {"period": PERIOD, "page_size": 50, "page": 1}
    assert page.body.decode("utf-8").count('"period": "2025-03"') >= 1
    assert os.environ["CM_FEED_TOKEN"].encode() not in page.body
    assert os.environ["CM_FEED_TOKEN"] not in page.url
    assert page.received_at.tzinfo is not None
    assert doc["period"] == PERIOD


# --- retries -------------------------------------------------------------------------------


def test_two_server_errors_then_success_with_exponential_backoff(feed_server: FeedServer) -> None:
    feed_server.faults.add("http_500", times=2)
    waits: list[float] = []
    start = log_mark(feed_server)
    pages, rows = fetch_all(make_source(waits), DISTRICT)
    assert len(rows) == pages[0][1]["total"]
    statuses = [entry["status"] for entry in requests_since(feed_server, start, 3)]
    assert statuses == [500, 500, 200]
    assert len(waits) == 2
    # backoff 0.01 × 2**(n-1), with up to +50 % jitter
    assert 0.01 <= waits[0] <= 0.015
    assert 0.02 <= waits[1] <= 0.03
    assert waits[1] > waits[0]


def test_retry_after_is_honoured(feed_server: FeedServer) -> None:
    feed_server.faults.add("http_429", times=1, retry_after=2)
    waits: list[float] = []
    start = log_mark(feed_server)
    _, rows = fetch_all(make_source(waits), DISTRICT)
    assert rows
    assert [e["status"] for e in requests_since(feed_server, start, 2)] == [429, 200]
    assert waits == [2.0]


def test_retry_after_is_capped_by_the_policy(feed_server: FeedServer) -> None:
    feed_server.faults.add("http_429", times=1, retry_after=600)
    waits: list[float] = []
    _, rows = fetch_all(make_source(waits), DISTRICT)
    assert rows
    assert waits == [POLICY.max_wait_s]


def test_truncated_body_is_retried(feed_server: FeedServer) -> None:
    feed_server.faults.add("truncate", times=1, path="above-quota")
    waits: list[float] = []
    start = log_mark(feed_server)
    pages, rows = fetch_all(make_source(waits), ABOVE)
    assert len(rows) == pages[0][1]["total"]
    log = requests_since(feed_server, start, len(pages) + 1)
    assert log[0]["faults"] == ["truncate"]
    assert len(log) == len(pages) + 1
    assert len(waits) == 1


def test_persistent_server_errors_give_up_after_the_policy_attempts(
    feed_server: FeedServer,
) -> None:
    feed_server.faults.add("http_500", times=-1)
    waits: list[float] = []
    policy = RetryPolicy(attempts=3, backoff_s=0.01)
    start = log_mark(feed_server)
    with pytest.raises(FeedUnavailable) as info:
        fetch_all(make_source(waits, policy), DISTRICT)
    log = requests_since(feed_server, start, policy.attempts)
    assert len(log) == policy.attempts
    assert all(entry["status"] == 500 for entry in log)
    assert len(waits) == policy.attempts - 1  # no wait after the last attempt
    assert "3 attempts" in str(info.value)
    assert "HTTP 500" in str(info.value)


def test_wrong_token_is_rejected_without_retry(feed_server: FeedServer) -> None:
    wrong = "wrong-token-1234"
    waits: list[float] = []
    start = log_mark(feed_server)
    with pytest.raises(FeedRejected) as info:
        fetch_all(make_source(waits, token=wrong), DISTRICT)
    log = requests_since(feed_server, start, 1)
    assert [entry["status"] for entry in log] == [401]
    assert waits == []
    message = str(info.value)
    assert "token" in message
    assert "401" in message
    assert wrong not in message
    assert not isinstance(info.value, FeedUnavailable)


def test_missing_token_is_rejected(feed_server: FeedServer) -> None:
    source = HttpSource(FeedEndpoint(feed_server.url, None), policy=POLICY, sleep=[].append)
    with pytest.raises(FeedRejected, match="token"):
        fetch_all(source, DISTRICT)


# --- periods without a release ---------------------------------------------------------------


def test_january_is_refused_before_any_request(feed_server: FeedServer) -> None:
    start = log_mark(feed_server)
    with pytest.raises(PeriodNotPublished) as info:
        engine.check_period_published(FEED, "2025-01", today=AS_OF)
    assert info.value.combined_with == "2025-02"
    with pytest.raises(PeriodNotPublished) as info:
        engine.check_period_published(FEED, "2024-01", today=AS_OF)
    assert info.value.combined_with == "2024-02"
    assert requests_since(feed_server, start) == []


def test_future_and_early_periods_are_refused_before_any_request(
    feed_server: FeedServer,
) -> None:
    start = log_mark(feed_server)
    with pytest.raises(PeriodNotPublished) as info:
        engine.check_period_published(FEED, "2025-12", today=AS_OF)
    assert info.value.combined_with is None
    with pytest.raises(PeriodNotPublished):
        engine.check_period_published(FEED, "2099-03")
    with pytest.raises(PeriodNotPublished):
        engine.check_period_published(FEED, "2023-12", today=AS_OF)
    assert engine.check_period_published(FEED, "2025-11", today=AS_OF) == (Period(2025, 11))
    assert requests_since(feed_server, start) == []


def test_server_answer_for_january_carries_the_combined_period(feed_server: FeedServer) -> None:
    waits: list[float] = []
    start = log_mark(feed_server)
    with pytest.raises(PeriodNotPublished) as info:
        fetch_all(make_source(waits), DISTRICT, period="2025-01")
    assert info.value.combined_with == "2025-02"
    assert [e["status"] for e in requests_since(feed_server, start, 1)] == [404]
    assert waits == []


def test_server_answer_for_a_future_period(feed_server: FeedServer) -> None:
    start = log_mark(feed_server)
    with pytest.raises(PeriodNotPublished) as info:
        fetch_all(make_source([]), ABOVE, period="2025-12")
    assert info.value.combined_with is None
    assert [e["status"] for e in requests_since(feed_server, start, 1)] == [404]


def test_bad_request_is_rejected_without_retry(feed_server: FeedServer) -> None:
    start = log_mark(feed_server)
    with pytest.raises(FeedRejected, match="400"):
        fetch_all(make_source([]), DISTRICT, period="2025-3")
    assert [e["status"] for e in requests_since(feed_server, start, 1)] == [400]


# --- Retry-After parsing ---------------------------------------------------------------------


@pytest.mark.parametrize(("value", "seconds"), [("2", 2.0), ("0", 0.0), (" 120 ", 120.0)])
def test_retry_after_delta_seconds(value: str, seconds: float) -> None:
    assert retry_after_seconds(value, now=0.0) == seconds


def test_retry_after_http_date() -> None:
    now = datetime(2025, 3, 14, 8, 0, 0, tzinfo=UTC)
    later = datetime(2025, 3, 14, 8, 0, 45, tzinfo=UTC)
    header = email.utils.format_datetime(later, usegmt=True)
    assert header.endswith("GMT")
    assert retry_after_seconds(header, now=now.timestamp()) == pytest.approx(45.0)
    assert retry_after_seconds("Fri, 14 Mar 2025 08:02:00 GMT", now=now.timestamp()) == (
        pytest.approx(120.0)
    )


def test_retry_after_date_in_the_past_is_zero() -> None:
    now = datetime(2025, 3, 14, 8, 0, 0, tzinfo=UTC).timestamp()
    assert retry_after_seconds("Fri, 14 Mar 2025 07:59:00 GMT", now=now) == 0.0


@pytest.mark.parametrize("value", [None, "", "   ", "soon", "-5", "1.5"])
def test_retry_after_unreadable_is_none(value: str | None) -> None:
    assert retry_after_seconds(value, now=0.0) is None


def test_a_response_slower_than_the_read_timeout_is_retried(feed_server: FeedServer) -> None:
    """A slow source hits the read timeout; the page is asked for again and arrives."""
    feed_server.faults.add("slow", times=1, seconds=1.5, path="district-totals")
    waits: list[float] = []
    policy = dataclasses.replace(POLICY, read_timeout_s=0.5)
    _, rows = fetch_all(make_source(waits, policy=policy), DISTRICT)
    assert rows
    assert len(waits) == 1  # one timeout, one retry


def test_a_slow_response_within_the_timeout_is_simply_waited_for(
    feed_server: FeedServer,
) -> None:
    feed_server.faults.add("slow", times=1, seconds=0.3, path="district-totals")
    waits: list[float] = []
    _, rows = fetch_all(make_source(waits), DISTRICT)
    assert rows
    assert waits == []
