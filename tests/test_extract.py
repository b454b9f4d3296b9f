"""engine.extract against the real feed server into a temporary raw archive.

The archive is the contract between extraction and the later steps: content-addressed
batch folders, a manifest whose digests match the bytes, failed attempts kept aside with
their reason, and never a credential on disk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from cm_devtools.sample_server import FeedServer
from consumption_monitor.common import config
from consumption_monitor.feeds import engine
from consumption_monitor.feeds.archive import MANIFEST, read_manifest, read_pages
from consumption_monitor.feeds.errors import FeedUnavailable, PayloadError, PeriodNotPublished
from consumption_monitor.feeds.sources.http_api import HttpSource, RetryPolicy
from consumption_monitor.feeds.spec import FeedSpec, load_feed

FEED = load_feed("retail_monthly")
PERIOD = "2025-03"
POLICY = RetryPolicy(attempts=3, backoff_s=0.01, max_wait_s=1.0)


def make_source(waits: list[float] | None = None) -> HttpSource:
    return HttpSource(
        config.feed_endpoint(), policy=POLICY, sleep=(waits if waits is not None else []).append
    )


def extract(root: Path, feed: FeedSpec = FEED, period: str = PERIOD) -> engine.ExtractedBatch:
    return engine.extract(feed, period, source=make_source(), archive_root=root)


def period_dir(root: Path, period: str = PERIOD) -> Path:
    return root / FEED.name / period


def batch_dirs(root: Path, period: str = PERIOD) -> list[Path]:
    """Committed batch folders of the period (not ``_incoming`` or ``_failed``)."""
    folder = period_dir(root, period)
    if not folder.exists():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("_"))


def failed_dirs(root: Path, period: str = PERIOD) -> list[Path]:
    folder = period_dir(root, period) / "_failed"
    return sorted(folder.iterdir()) if folder.exists() else []


def with_page_size(feed: FeedSpec, stream: str, size: int) -> FeedSpec:
    streams = tuple(
        dataclasses.replace(s, paginator=dataclasses.replace(s.paginator, page_size=size))
        if s.name == stream
        else s
        for s in feed.streams
    )
    return dataclasses.replace(feed, streams=streams)


def fetch_direct(stream_name: str, period: str = PERIOD) -> list[dict[str, Any]]:
    """Every row of a stream, fetched in one big page, independently of the archive."""
    stream = FEED.stream(stream_name)
    big = dataclasses.replace(
        stream, paginator=dataclasses.replace(stream.paginator, page_size=1000)
    )
    rows: list[dict[str, Any]] = []
    for _, doc in make_source().pages(big, {"period": period}):
        rows.extend(doc["data"])
    return rows


# The server appends to ``request_log`` just after sending a response; wait for it (never
# asserting a duration) before counting.


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)


def log_mark(server: FeedServer) -> int:
    marker = uuid.uuid4().hex
    assert requests.get(f"{server.url}/health", params={"mark": marker}, timeout=10).ok
    _wait_until(lambda: any(e["query"].get("mark") == marker for e in server.request_log))
    return len(server.request_log)


def api_requests(server: FeedServer, start: int, expected: int = 0) -> list[dict]:
    def api() -> list[dict]:
        return [e for e in server.request_log[start:] if e["path"].startswith("/api/")]

    _wait_until(lambda: len(api()) >= expected)
    return api()


# --- a clean extraction --------------------------------------------------------------------


def test_same_content_is_the_same_batch_in_the_same_folder(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    root = tmp_path / "archive"
    first = extract(root)
    second = extract(root)
    assert second.batch_id == first.batch_id
    assert second.content_sha256 == first.content_sha256
    assert second.archive_dir == first.archive_dir
    assert first.archive_dir == f"{FEED.name}/{PERIOD}/{first.batch_id}"
    assert first.batch_id == engine.make_batch_id(FEED.name, PERIOD, first.content_sha256)
    assert len(first.batch_id) == 20
    # one folder only: no second batch, no leftover _incoming or _failed
    assert [p.name for p in period_dir(root).iterdir()] == [first.batch_id]


def test_page_boundaries_do_not_change_the_batch(feed_server: FeedServer, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    default = extract(root)
    start = log_mark(feed_server)
    small_pages = extract(root, with_page_size(FEED, "above_quota", 20))
    expected_pages = -(-default.rows["above_quota"] // 20)
    log = api_requests(feed_server, start, 1 + expected_pages)
    assert len([e for e in log if "above-quota" in e["path"]]) == expected_pages > 2
    assert small_pages.batch_id == default.batch_id
    # the batch already existed: what is reported is the stored batch, pages and all
    assert small_pages == default
    assert batch_dirs(root) == [root / default.archive_dir]
    assert not (period_dir(root) / "_incoming").exists()


def test_manifest_matches_the_archived_bytes(feed_server: FeedServer, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    batch = extract(root)
    folder = batch.path(root)
    manifest = read_manifest(folder)
    assert manifest["feed"] == FEED.name
    assert manifest["period"] == PERIOD
    assert manifest["batch_id"] == batch.batch_id
    assert manifest["content_sha256"] == batch.content_sha256
    pages = manifest["pages"]
    assert len(pages) == batch.pages
    assert sum(p["bytes"] for p in pages) == batch.bytes
    for page in pages:
        body = (folder / page["file"]).read_bytes()
        assert hashlib.sha256(body).hexdigest() == page["sha256"], page["file"]
        assert len(body) == page["bytes"], page["file"]
        assert page["status"] == 200
        assert page["params"]["period"] == PERIOD
    assert {p.name for p in folder.iterdir()} == {p["file"] for p in pages} | {MANIFEST}
    for stream in FEED.streams:
        numbers = [p["number"] for p in pages if p["stream"] == stream.name]
        assert numbers == list(range(1, len(numbers) + 1)), stream.name
        first = json.loads((folder / f"{stream.name}-p0001.json").read_bytes())
        assert batch.rows[stream.name] == first["total"]
    assert len(read_pages(folder)) == len(pages)


def test_a_tampered_page_is_detected(feed_server: FeedServer, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    folder = extract(root).path(root)
    page = folder / "district_totals-p0001.json"
    page.write_bytes(page.read_bytes().replace(b'"2025-03"', b'"2025-04"', 1))
    with pytest.raises(ValueError, match="sha256"):
        read_pages(folder)


def test_read_records_returns_the_rows(feed_server: FeedServer, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    batch = extract(root)
    records = engine.read_records(FEED, batch.path(root))
    assert set(records) == {s.name for s in FEED.streams}
    for stream in FEED.streams:
        rows = records[stream.name]
        assert len(rows) == batch.rows[stream.name] > 0
        assert rows == fetch_direct(stream.name)
        assert {row["period"] for row in rows} == {PERIOD}
        assert len({tuple(row[k] for k in stream.keys) for row in rows}) == len(rows)
    assert engine.content_digest(records) == batch.content_sha256


def test_extract_defaults_to_the_configured_endpoint_and_archive(feed_server: FeedServer) -> None:
    batch = engine.extract(FEED, PERIOD)
    assert batch.path().is_relative_to(config.archive_dir())
    assert config.archive_dir().is_relative_to(Path(os.environ["CM_DATA_DIR"]))
    assert (batch.path() / MANIFEST).is_file()
    assert engine.ExtractedBatch.from_dict(batch.to_dict()) == batch
    assert json.loads(json.dumps(batch.to_dict())) == batch.to_dict()  # fits an XCom


def test_a_revision_is_a_different_batch(feed_server: FeedServer, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    original = extract(root)
    feed_server.faults.add("revision", period=PERIOD, revision=1)
    revised = extract(root)
    assert revised.batch_id != original.batch_id
    assert revised.content_sha256 != original.content_sha256
    assert revised.rows == original.rows
    assert batch_dirs(root) == sorted([root / original.archive_dir, root / revised.archive_dir])
    before = engine.read_records(FEED, original.path(root))["above_quota"]
    after = engine.read_records(FEED, revised.path(root))["above_quota"]
    assert [r["value_month"] for r in before] != [r["value_month"] for r in after]


# --- failures --------------------------------------------------------------------------------


def test_persistent_server_errors_commit_nothing_and_keep_the_attempt(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    root = tmp_path / "archive"
    feed_server.faults.add("http_500", path="above-quota", times=-1)
    start = log_mark(feed_server)
    with pytest.raises(FeedUnavailable) as info:
        extract(root)
    log = api_requests(feed_server, start, 1 + POLICY.attempts)
    assert [e["status"] for e in log if "above-quota" in e["path"]] == [500] * POLICY.attempts
    assert batch_dirs(root) == []
    assert not (period_dir(root) / "_incoming").exists()
    (failed,) = failed_dirs(root)
    assert str(failed) in str(info.value)
    reason = (failed / "reason.txt").read_text(encoding="utf-8")
    assert f"gave up after {POLICY.attempts} attempts" in reason
    assert "HTTP 500" in reason
    # what did arrive (the district totals) is kept for inspection; no manifest
    assert (failed / "district_totals-p0001.json").is_file()
    assert not (failed / MANIFEST).exists()


def test_persistently_truncated_response_is_unavailable(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    root = tmp_path / "archive"
    feed_server.faults.add("truncate", path="above-quota", times=-1)
    start = log_mark(feed_server)
    with pytest.raises(FeedUnavailable):
        extract(root)
    log = api_requests(feed_server, start, 1 + POLICY.attempts)
    truncated = [e for e in log if "truncate" in e["faults"]]
    assert len(truncated) == POLICY.attempts
    assert batch_dirs(root) == []
    assert not (period_dir(root) / "_incoming").exists()
    (failed,) = failed_dirs(root)
    reason = (failed / "reason.txt").read_text(encoding="utf-8")
    assert f"gave up after {POLICY.attempts} attempts" in reason
    assert not (failed / MANIFEST).exists()


def test_total_mismatch_is_a_payload_error(feed_server: FeedServer, tmp_path: Path) -> None:
    """The source changes between two pages: page 1 announces one more row (a duplicate)
    than the pages deliver in total."""
    root = tmp_path / "archive"
    feed_server.faults.add("bad_rows", path="above-quota", times=1, which=["duplicate_key"])
    with pytest.raises(PayloadError, match="announced") as info:
        extract(root)
    assert "above_quota" in str(info.value)
    assert batch_dirs(root) == []
    (failed,) = failed_dirs(root)
    assert "announced" in (failed / "reason.txt").read_text(encoding="utf-8")
    pages = sorted(failed.glob("above_quota-p*.json"))
    assert len(pages) >= 2  # every page received is kept
    totals = [json.loads(p.read_bytes())["total"] for p in pages]
    assert totals[0] == totals[1] + 1


def test_declared_unit_other_than_the_spec_is_a_payload_error(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """The sample server always declares 万元, so the spec is changed to expect 元."""
    root = tmp_path / "archive"
    expects_yuan = dataclasses.replace(FEED, unit="元")
    with pytest.raises(PayloadError, match="unit") as info:
        extract(root, expects_yuan)
    assert "'万元'" in str(info.value) and "'元'" in str(info.value)
    assert batch_dirs(root) == []
    (failed,) = failed_dirs(root)
    assert (failed / "district_totals-p0001.json").is_file()  # the offending page is kept


def test_january_is_refused_before_any_request_or_folder(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    root = tmp_path / "archive"
    start = log_mark(feed_server)
    with pytest.raises(PeriodNotPublished) as info:
        extract(root, period="2025-01")
    assert info.value.combined_with == "2025-02"
    assert api_requests(feed_server, start) == []
    assert not root.exists()


def test_period_the_server_has_not_published(feed_server: FeedServer, tmp_path: Path) -> None:
    # The server's "today" is 2025-12-20; the engine's is the real date (2025-12 may have
    # ended), so the refusal comes from one side or the other. Either way nothing commits.
    root = tmp_path / "archive"
    with pytest.raises(PeriodNotPublished):
        extract(root, period="2025-12")
    assert batch_dirs(root, "2025-12") == []
    assert not (period_dir(root, "2025-12") / "_incoming").exists()


# --- credentials -------------------------------------------------------------------------------


def test_a_netrc_entry_does_not_replace_the_token(
    feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """requests would put a netrc entry for the host in place of the bearer token: the
    server would then refuse every page."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password secret\n", encoding="utf-8")
    monkeypatch.setenv("NETRC", str(netrc))
    assert requests.utils.get_netrc_auth(feed_server.url) == ("someone", "secret")
    batch = extract(tmp_path / "archive")
    assert batch.pages and sum(batch.rows.values()) > 0


def test_the_token_never_reaches_the_archive(feed_server: FeedServer, tmp_path: Path) -> None:
    token = os.environ["CM_FEED_TOKEN"]
    assert token
    root = tmp_path / "archive"
    messages = []
    batch = extract(root)
    feed_server.faults.add("http_500", path="above-quota", times=-1)
    with pytest.raises(FeedUnavailable) as info:
        extract(root)
    messages.append(str(info.value))
    feed_server.faults.clear()
    feed_server.faults.add("bad_rows", path="above-quota", times=1, which=["duplicate_key"])
    with pytest.raises(PayloadError) as info:
        extract(root)
    messages.append(str(info.value))

    files = [p for p in root.rglob("*") if p.is_file()]
    assert any(p.name == MANIFEST for p in files)
    assert sum(p.name == "reason.txt" for p in files) == 2
    for path in files:
        data = path.read_bytes()
        assert token.encode() not in data, path
        assert b"Bearer" not in data, path
        assert b"Authorization" not in data, path
    for message in messages:
        assert token not in message
    for page in read_manifest(batch.path(root))["pages"]:
        assert page["url"] == feed_server.url + FEED.stream(page["stream"]).path
        assert token not in json.dumps(page["params"])


def test_a_page_nested_too_deeply_is_a_payload_error(tmp_path: Path) -> None:
    """A page whose remark nests a phone number hundreds of arrays deep is extracted with
    the phone replaced, or, close to Python's recursion limit (parsed, then too deep for
    the identifier scan) and beyond it (too deep to parse), refused as a feed error in one
    line like any bad payload; it used to end in a ``RecursionError``."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from consumption_monitor.common.config import FeedEndpoint
    from consumption_monitor.feeds.errors import FeedError

    served: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(served[-1])))
            self.end_headers()
            self.wfile.write(served[-1])

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    outcomes = {}
    try:
        endpoint = FeedEndpoint(f"http://127.0.0.1:{server.server_address[1]}", None)
        for depth in [*range(800, 1000, 10), 100_000]:
            nested = "[" * depth + '"13912345678"' + "]" * depth
            served.append(
                ('{"unit":"万元","total":1,"next_cursor":null,"data":[{"remark":' + nested + "}]}")
                .encode()
            )  # fmt: skip
            root = tmp_path / str(depth)
            source = HttpSource(endpoint, policy=POLICY, sleep=[].append)
            try:
                batch = engine.extract(FEED, PERIOD, source=source, archive_root=root)
            except FeedError as exc:
                assert "nested too deeply" in str(exc)
                assert batch_dirs(root) == []
                outcomes[depth] = "refused"
            else:
                pages = read_pages(root / batch.archive_dir)
                assert pages and not any(b"13912345678" in body for _, body in pages)
                outcomes[depth] = "extracted"
    finally:
        server.shutdown()
        server.server_close()
    assert outcomes[800] == "extracted" and outcomes[100_000] == "refused"
