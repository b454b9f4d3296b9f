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
import urllib3

from consumption_monitor.common.config import FeedEndpoint
from consumption_monitor.feeds import jsoncodec
from consumption_monitor.feeds.errors import (
    FeedRejected,
    FeedUnavailable,
    LimitExceeded,
    PayloadError,
    PeriodNotPublished,
)
from consumption_monitor.feeds.pii_scan import mask_text
from consumption_monitor.feeds.sources.base import Page
from consumption_monitor.feeds.spec import StreamSpec

__all__ = ["HttpSource", "Page", "RetryPolicy", "retry_after_seconds"]

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
READ_CHUNK = 256 * 1024  # bytes asked of the socket at a time (one read, whatever arrives)
MIB = 1024 * 1024


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


class _NoNetrc(requests.auth.AuthBase):
    """A session auth that adds nothing: the feed's credentials are its bearer token (from
    an Airflow connection or the environment). Why: a session without an auth makes
    requests read ``~/.netrc`` (or ``$NETRC``) for every page, ~0.9 s of a 1M-row trade-in
    extract, and a netrc entry for the feed's host would replace the token with Basic
    credentials from a file the platform does not manage."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


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
        if self.session.auth is None:
            self.session.auth = _NoNetrc()
        self._sleep = sleep
        # called with every 200 body that is not JSON, so the archive can keep it
        self.on_unparseable = on_unparseable
        self.notes: list[str] = []  # the Source protocol; HTTP problems raise instead
        # limits the engine sets from the spec (``limits:``): bytes of one page, and the
        # time.monotonic() by which the whole extraction must be done
        self.max_page_bytes: int | None = None
        self.deadline: float | None = None

    def _check_deadline(self, url: str, extra_s: float = 0.0) -> None:
        if self.deadline is not None and time.monotonic() + extra_s > self.deadline:
            raise LimitExceeded(
                f"{url}：提取超过时限（limits.deadline_s），已中止 (extract deadline)"
            )

    def _read_body(self, response: requests.Response, url: str) -> bytes:
        """The body, read one socket read at a time so that a page over ``max_page_bytes``
        is refused as soon as it is (never held whole) and a server trickling bytes meets
        the deadline (a read timeout alone restarts with every byte)."""
        limit = self.max_page_bytes
        declared = response.headers.get("Content-Length", "")
        if limit and declared.isdigit() and int(declared) > limit:
            raise LimitExceeded(
                f"{url}：单页 {int(declared) / MIB:.1f} MiB 超过上限 {limit / MIB:.0f} MiB"
                "（limits.max_page_bytes）(page too large)"
            )
        parts: list[bytes] = []
        size = 0
        while chunk := response.raw.read1(READ_CHUNK, decode_content=True):
            size += len(chunk)
            if limit and size > limit:
                raise LimitExceeded(
                    f"{url}：单页超过上限 {limit / MIB:.0f} MiB（limits.max_page_bytes），"
                    "已停止接收 (page too large)"
                )
            parts.append(chunk)
            self._check_deadline(url)
        return b"".join(parts)

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
            self._check_deadline(url)
            try:
                response = self.session.get(
                    url,
                    params=params,
                    timeout=(self.policy.connect_timeout_s, self.policy.read_timeout_s),
                    stream=True,
                )
                try:
                    body = self._read_body(response, url)  # a truncated body raises
                finally:
                    response.close()
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
                urllib3.exceptions.HTTPError,  # body cut short, read timeout, bad encoding
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
                    raise self._client_error(response, body, stream, params)
            if attempt < self.policy.attempts:
                self._check_deadline(url, min(retry_after or 0.0, self.policy.max_wait_s))
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
    def _client_error(
        response: requests.Response, body: bytes, stream: StreamSpec, params: dict
    ) -> Exception:
        try:
            detail = jsoncodec.loads(body)
            if not isinstance(detail, dict):
                raise ValueError("not an object")
        except ValueError:
            detail = {"message": body[:200].decode("utf-8", "replace")}
        # a server's error text may quote what was sent: identifiers are masked
        message = mask_text(str(detail.get("message") or detail.get("error") or response.reason))
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
        seen: set[str] = set()
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
            if str(following) in seen:  # a cursor that loops back would never end
                raise LimitExceeded(
                    f"stream {stream.name}：第 {number} 页返回了已用过的分页位置 "
                    f"{str(following)[:40]!r}，分页循环，提取中止 (pagination loops)"
                )
            seen.add(str(following))
            params = dict(params)
            if pager.kind == "page":
                params[pager.page_param] = following
            else:
                params[pager.cursor_param] = following
        raise PayloadError(f"stream {stream.name}: more than {pager.max_pages} pages; stopping")
