"""HTTP JSON source: one ``requests`` session with timeouts, retries and pagination.

Retries cover what a later attempt can fix: connection errors, timeouts, 5xx, 429 (waiting
as long as ``Retry-After`` asks, within a cap) and bodies that arrive broken or truncated.
Client errors (401, 400, 404) are not retried. Every page's bytes are handed to the caller
before they are parsed, so the archive holds what was received even when parsing fails.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from consumption_monitor.common.config import FeedEndpoint
from consumption_monitor.feeds import jsoncodec
from consumption_monitor.feeds.errors import (
    FeedRejected,
    FeedUnavailable,
    PayloadError,
    PeriodNotPublished,
)
from consumption_monitor.feeds.sources.base import Page
from consumption_monitor.feeds.spec import StreamSpec

__all__ = ["HttpSource", "Page", "RetryPolicy", "retry_after_seconds"]

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    backoff_s: float = 0.5  # first wait; doubles each attempt, with jitter
    max_wait_s: float = 60.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


class HttpSource:
    """Fetches pages of a stream from a feed API."""

    def __init__(
        self,
        endpoint: FeedEndpoint,
        *,
        policy: RetryPolicy | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_unparseable: Callable[[Page, str], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.policy = policy or RetryPolicy()
        self.session = session or requests.Session()
        self.session.headers.setdefault("Accept", "application/json")
        self.session.headers.setdefault("User-Agent", "consumption-monitor/0.1")
        if endpoint.token:
            self.session.headers["Authorization"] = f"Bearer {endpoint.token}"
        self._sleep = sleep
        # called with every 200 body that is not JSON, so the archive can keep it
        self.on_unparseable = on_unparseable
        self.notes: list[str] = []  # the Source protocol; HTTP problems raise instead

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            wait = retry_after
        else:
            wait = self.policy.backoff_s * (2 ** (attempt - 1)) * (1 + random.random() / 2)
        wait = min(wait, self.policy.max_wait_s)
        self._sleep(wait)
        return wait

    def get_page(
        self, stream: StreamSpec, number: int, params: dict[str, Any]
    ) -> tuple[Page, dict]:
        """GET one page with retries; returns the page and its decoded JSON."""
        url = f"{self.endpoint.base_url}{stream.path}"
        last_problem = "no attempt made"
        for attempt in range(1, self.policy.attempts + 1):
            retry_after = None
            try:
                response = self.session.get(
                    url,
                    params=params,
                    timeout=(self.policy.connect_timeout_s, self.policy.read_timeout_s),
                )
                body = response.content  # raises ChunkedEncodingError on a truncated body
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,  # body cut short (truncated)
                requests.exceptions.ContentDecodingError,
            ) as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
            else:
                page = Page(
                    stream.name,
                    number,
                    url,
                    dict(params),
                    response.status_code,
                    body,
                    datetime.now(UTC),
                )
                if response.status_code == 200:
                    try:
                        return page, jsoncodec.loads(body)
                    except ValueError as exc:
                        last_problem = f"body is not valid JSON ({len(body)} bytes): {exc}"
                        if self.on_unparseable:
                            self.on_unparseable(page, last_problem)
                elif response.status_code in RETRYABLE_STATUS:
                    last_problem = f"HTTP {response.status_code}"
                    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                else:
                    raise self._client_error(response, stream, params)
            if attempt < self.policy.attempts:
                waited = self._wait(attempt, retry_after)
                log.warning(
                    "feed %s page %s attempt %d/%d failed (%s); retrying in %.1fs",
                    stream.name,
                    number,
                    attempt,
                    self.policy.attempts,
                    last_problem,
                    waited,
                )
        raise FeedUnavailable(
            f"{url} params={params}: gave up after {self.policy.attempts} attempts; "
            f"last problem: {last_problem}"
        )

    @staticmethod
    def _client_error(response: requests.Response, stream: StreamSpec, params: dict) -> Exception:
        try:
            detail = response.json()
        except ValueError:
            detail = {"message": response.text[:200]}
        message = detail.get("message") or detail.get("error") or response.reason
        where = f"stream {stream.name} {params}"
        if response.status_code == 404 and detail.get("error") in {
            "not_published",
            "combined_period",
        }:
            return PeriodNotPublished(
                f"{where}: {message}", combined_with=detail.get("combined_with")
            )
        if response.status_code in (401, 403):
            return FeedRejected(
                f"{where}: HTTP {response.status_code} — check the feed token ({message})"
            )
        return FeedRejected(f"{where}: HTTP {response.status_code} — {message}")

    def pages(self, stream: StreamSpec, base_params: dict[str, Any]) -> Iterator[tuple[Page, dict]]:
        """Every page of ``stream``, following its paginator."""
        pager = stream.paginator
        params = dict(base_params)
        if pager.kind != "none":
            params[pager.size_param] = pager.page_size
        if pager.kind == "page":
            params[pager.page_param] = 1
        for number in range(1, pager.max_pages + 1):
            page, doc = self.get_page(stream, number, params)
            if not isinstance(doc, dict) or not isinstance(doc.get(stream.records_field), list):
                raise PayloadError(
                    f"{page.url} page {number}: expected an object with a "
                    f"'{stream.records_field}' list"
                )
            yield page, doc
            following = doc.get(pager.next_field) if pager.kind != "none" else None
            if following in (None, "", False):
                return
            params = dict(params)
            if pager.kind == "page":
                params[pager.page_param] = following
            else:
                params[pager.cursor_param] = following
        raise PayloadError(f"stream {stream.name}: more than {pager.max_pages} pages; stopping")
