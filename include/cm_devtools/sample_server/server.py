"""The sample feed server: a real HTTP server (stdlib ``http.server``) for local runs.

Why a real server rather than a mocked session: the ingestion code must be exercised with
real sockets, headers, status codes, throttling and broken connections, exactly as it will
meet them against the statistics bureau. Endpoints:

* ``GET /health`` (no auth) and ``GET /api/v1/periods[?feed=<name>]`` (default retail);
* one ``GET`` endpoint per stream declared in :mod:`.catalog`, paginated either
  ``?period=YYYY-MM&page=1&page_size=50`` (``next_page``) or
  ``?period=YYYY-MM&cursor=<opaque>&limit=50`` (``next_cursor``), e.g.
  ``/api/v1/retail/district-totals`` (page) and ``/api/v1/retail/above-quota`` (cursor);
* ``GET|POST|DELETE /_control/faults`` (no auth: it is a test server).

With a token set, every ``/api`` request needs ``Authorization: Bearer <token>``. The token
is never logged or echoed. Faults (see :mod:`.faults`) apply to ``/api`` requests only,
after authentication.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime
import hmac
import json
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cm_devtools.sample_server import catalog, retail_data
from cm_devtools.sample_server.faults import (
    Applied,
    FaultError,
    FaultPlan,
    FaultRule,
    apply_page_faults,
    apply_row_faults,
    trickle,
)
from cm_devtools.sample_server.served import (
    ServedFeed,
    ServedStream,
    inject,
    inject_window,
)
from consumption_monitor.common.periods import Period, PeriodError, last_full_month

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
TOKEN_ENV = "CM_FEED_TOKEN"
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50

PERIODS_PATH = "/api/v1/periods"
CONTROL_PATH = "/_control/faults"


@dataclass
class Response:
    """What to send back; ``truncate`` cuts the body in half and drops the connection."""

    status: int
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)
    truncate: bool = False
    trickle_bps: int = 0


def _error(status: int, code: str, message: str, **extra: Any) -> Response:
    return Response(status, {"error": code, "message": message, **extra})


def _bad_request(message: str, **extra: Any) -> Response:
    return _error(400, "bad_request", message, **extra)


def _int_param(query: dict[str, str], name: str, default: int, maximum: int) -> int | Response:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= maximum:
        return _bad_request(f"参数 {name} 应为 1 到 {maximum} 之间的整数", **{name: raw})
    return value


def _encode_cursor(period: Period, offset: int) -> str:
    raw = json.dumps({"p": str(period), "o": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, period: Period) -> int | None:
    """The row offset a cursor points at, or None if it is not one of ours for ``period``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        offset = int(data["o"])
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        return None
    if data.get("p") != str(period) or offset < 0:
        return None
    return offset


class FeedServer:
    """The sample feeds, served from a daemon thread (``start``/``stop`` or ``with``).

    ``faults`` may be mutated or replaced while the server runs; ``request_log`` records
    method, path, query, status and the faults applied for every request, for tests.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = 0,
        *,
        token: str | None = None,
        as_of: datetime.date | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.as_of = as_of
        self.faults: FaultPlan = faults if faults is not None else FaultPlan()
        self.request_log: list[dict[str, Any]] = []
        self._token = token or None
        self._log_lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # never show the token
        auth = "token" if self._token else "open"
        return f"FeedServer({self.host}:{self.port}, {auth}, as_of={self.as_of})"

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("FeedServer is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> FeedServer:
        if self._httpd is not None:
            raise RuntimeError("FeedServer is already started")
        self._httpd = _HTTPServer((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"cm-feed-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- request handling (called from handler threads) ------------------------------

    def record(self, entry: dict[str, Any]) -> None:
        with self._log_lock:
            self.request_log.append(entry)

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes
    ) -> tuple[Response, Applied | None]:
        """Route one request; returns the response and the faults that took effect."""
        if path == "/health":
            if method != "GET":
                return _error(405, "method_not_allowed", "不支持该请求方法"), None
            return Response(200, {"status": "ok"}), None
        if path == CONTROL_PATH:
            return self._control(method, body), None
        if path == "/api" or path.startswith("/api/"):
            return self._api(method, path, query, headers)
        return _error(404, "not_found", "未找到该接口", path=path), None

    def _authorised(self, headers: Any) -> bool:
        if self._token is None:
            return True
        given = headers.get("Authorization", "")
        scheme, _, credentials = given.partition(" ")
        expected = self._token.encode()
        return scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), expected
        )

    def _control(self, method: str, body: bytes) -> Response:
        if method == "GET":
            return Response(200, self.faults.to_dict())
        if method == "DELETE":
            self.faults.clear()
            return Response(200, self.faults.to_dict())
        if method == "POST":
            try:
                plan = FaultPlan.from_json(json.loads(body.decode("utf-8") or "null"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                return _bad_request(f"请求体不是有效的 JSON：{exc}")
            except FaultError as exc:
                return _bad_request(f"故障规则无效：{exc}")
            self.faults.replace(plan)
            return Response(200, self.faults.to_dict())
        return _error(405, "method_not_allowed", "不支持该请求方法")

    def _api(
        self, method: str, path: str, query: dict[str, str], headers: Any
    ) -> tuple[Response, Applied | None]:
        if not self._authorised(headers):
            response = _error(401, "unauthorized", "缺少或无效的访问令牌")
            response.headers["WWW-Authenticate"] = 'Bearer realm="cm-feed"'
            return response, None
        if method != "GET":
            return _error(405, "method_not_allowed", "不支持该请求方法"), None
        applied = self.faults.take_transport(path, query.get("period"))
        if applied.slow_seconds:
            time.sleep(applied.slow_seconds)
        route = catalog.routes().get(path)
        if applied.error is not None:
            response = self._fault_error(applied.error)
        elif path == PERIODS_PATH:
            response = self._periods(query.get("feed") or retail_data.FEED)
        elif route is not None:
            response = self._serve(*route, path, query, applied)
        else:
            response = _error(404, "not_found", "未找到该接口", path=path)
        response.truncate = applied.truncate
        apply_page_faults(response.payload, applied, query)
        response.trickle_bps = applied.trickle_bps
        return response, applied

    @staticmethod
    def _fault_error(rule: FaultRule) -> Response:
        if rule.kind == "http_429":
            retry_after = int(rule.params["retry_after"])
            response = _error(
                429, "rate_limited", "请求过于频繁，请稍后重试", retry_after=retry_after
            )
            response.headers["Retry-After"] = str(retry_after)
            return response
        return _error(500, "internal_error", "服务器内部错误")

    def _today(self) -> datetime.date:
        return self.as_of or datetime.date.today()

    def _periods(self, name: str) -> Response:
        feed = catalog.feeds().get(name)
        if feed is None:
            return _error(404, "not_found", f"没有数据源 {name}", feed=name)
        periods = feed.available_periods(self._today())
        return Response(
            200,
            {
                "feed": feed.name,
                "as_of": self._today().isoformat(),
                "first": str(periods[0]) if periods else None,
                "last": str(periods[-1]) if periods else None,
                "periods": [str(p) for p in periods],
            },
        )

    def _resolve_period(self, feed: ServedFeed, raw: str | None) -> Period | Response:
        if raw is None or not raw.strip():
            return _bad_request("缺少参数 period（格式 YYYY-MM）")
        try:
            period = Period.parse(raw)
        except PeriodError:
            return _bad_request("参数 period 格式错误，应为 YYYY-MM", period=raw)
        if not feed.is_published_alone(period):
            return _error(
                404,
                "combined_period",
                "1月数据与2月合并发布（1-2月）",
                period=str(period),
                combined_with=str(period.shift(1)),
            )
        last = last_full_month(self._today())
        if period < feed.first_period:
            return _error(
                404,
                "not_published",
                f"{period} 不在本数据源的发布范围内（最早为 {feed.first_period}）",
                period=str(period),
            )
        if period > last:
            return _error(
                404,
                "not_published",
                f"{period} 的数据尚未发布（最新为 {last}）",
                period=str(period),
            )
        return period

    def _serve(
        self,
        feed: ServedFeed,
        stream: ServedStream,
        path: str,
        query: dict[str, str],
        applied: Applied,
    ) -> Response:
        """One page of a stream: the period's full row list (revised, with defects and
        dropped columns applied before paging, so ``total`` always matches the rows)."""
        period = self._resolve_period(feed, query.get("period"))
        if isinstance(period, Response):
            return period
        window = self._window(stream, query, period)
        if isinstance(window, Response):
            return window
        self.faults.take_data(path, str(period), applied, defects=stream.defect_names)
        start, size = window
        if stream.window is not None:  # transaction scale: build only this page's rows
            total, rows = stream.window(period, applied.revision or 0, self._today(), start, size)
            rows = inject_window(rows, start, total, stream.defects, applied.defects)
            rows = apply_row_faults(rows, applied, start)
            return self._page(feed, stream, period, rows, start, size, total)
        rows = stream.rows(period, applied.revision or 0, self._today())
        if applied.defects:
            rows = inject(rows, stream.defects, applied.defects)
        rows = apply_row_faults(rows, applied)
        head: dict[str, Any] = {"feed": feed.name, "stream": stream.name, "period": str(period)}
        if feed.unit is not None:
            head["unit"] = feed.unit
        if stream.paging == "page":
            page = start // size + 1
            more = start + size < len(rows)
            return Response(
                200,
                {
                    **head,
                    "page": page,
                    "page_size": size,
                    "total": len(rows),
                    "next_page": page + 1 if more else None,
                    "data": rows[start : start + size],
                },
            )
        return self._page(feed, stream, period, rows[start : start + size], start, size, len(rows))

    @staticmethod
    def _page(
        feed: ServedFeed,
        stream: ServedStream,
        period: Period,
        rows: list[dict[str, Any]],
        start: int,
        size: int,
        total: int,
    ) -> Response:
        """One cursor page: ``rows`` are the window's rows of a period of ``total`` rows."""
        head: dict[str, Any] = {"feed": feed.name, "stream": stream.name, "period": str(period)}
        if feed.unit is not None:
            head["unit"] = feed.unit
        end = start + size
        return Response(
            200,
            {
                **head,
                "total": total,
                "next_cursor": _encode_cursor(period, end) if end < total else None,
                "data": rows,
            },
        )

    @staticmethod
    def _window(
        stream: ServedStream, query: dict[str, str], period: Period
    ) -> tuple[int, int] | Response:
        """(first row, page size) from the stream's paging parameters."""
        if stream.paging == "page":
            page = _int_param(query, "page", 1, 10**6)
            size = _int_param(query, "page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
            for value in (page, size):
                if isinstance(value, Response):
                    return value
            assert isinstance(page, int) and isinstance(size, int)
            return (page - 1) * size, size
        limit = _int_param(query, "limit", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        if isinstance(limit, Response):
            return limit
        offset = 0
        if query.get("cursor"):
            decoded = _decode_cursor(query["cursor"], period)
            if decoded is None:
                return _bad_request("参数 cursor 无效或与 period 不符", period=str(period))
            offset = decoded
        return offset, limit


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], feed: FeedServer) -> None:
        self.feed = feed
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    """Thin I/O layer: parse the request, ask the FeedServer, write JSON back."""

    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "cm-feed-server/0.1"
    timeout = 30  # seconds an idle keep-alive connection is kept

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        query = {
            key: values[-1] for key, values in parse_qs(split.query, keep_blank_values=True).items()
        }
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        feed = self.server.feed
        applied: Applied | None = None
        try:
            response, applied = feed.handle(method, split.path, query, self.headers, body)
        except Exception:
            log.exception("feed server failed on %s %s", method, split.path)
            response = _error(500, "internal_error", "服务器内部错误")
        # Logged before sending, so a client that has its answer finds its request logged.
        feed.record(
            {
                "method": method,
                "path": split.path,
                "query": query,
                "status": response.status,
                "faults": applied.kinds if applied is not None else [],
            }
        )
        self._send(response)

    def _send(self, response: Response) -> None:
        body = json.dumps(response.payload, ensure_ascii=False).encode("utf-8")
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if response.trickle_bps:
            trickle(self.wfile.write, body, response.trickle_bps)
        elif response.truncate:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
        else:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # The request line holds the path and query only; headers (and the token) never.
        log.info("%s - %s", self.address_string(), format % args)


# --- command line ------------------------------------------------------------------------


def _date_arg(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"日期格式应为 YYYY-MM-DD：{text!r}") from None


def _fault_arg(text: str) -> str:
    try:
        FaultRule.parse_spec(text)
    except FaultError as exc:
        raise argparse.ArgumentTypeError(f"故障规则无效：{exc}") from None
    return text


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cm feed-server``."""
    parser.add_argument("--host", default=DEFAULT_HOST, help="监听地址（默认 127.0.0.1）")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="监听端口（默认 8765）")
    parser.add_argument(
        "--token", default=None, help=f"访问令牌（默认读取环境变量 {TOKEN_ENV}；不设则不认证）"
    )
    parser.add_argument(
        "--as-of",
        type=_date_arg,
        default=None,
        metavar="YYYY-MM-DD",
        help="以该日期为“今天”决定已发布的期别（默认今天）",
    )
    parser.add_argument(
        "--tradein-rows",
        type=int,
        default=None,
        metavar="N",
        help="以旧换新交易每月行数（默认约 2000；亦可设环境变量 CM_TRADEIN_ROWS_PER_MONTH），"
        "按游标位置逐页生成，不占内存",
    )
    parser.add_argument(
        "--fault",
        action="append",
        type=_fault_arg,
        default=None,
        metavar="SPEC",
        help="注入故障，格式 kind[:key=value,...]，可重复，"
        "例如 http_500:times=2 或 bad_rows:period=2025-03,times=-1",
    )


def serve_forever(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    as_of: datetime.date | None = None,
    faults: FaultPlan | None = None,
) -> None:
    """Run the server in the foreground until interrupted (Ctrl-C)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    server = FeedServer(host, port, token=token, as_of=as_of, faults=faults).start()
    periods = retail_data.available_periods(as_of)
    span = f"{periods[0]} 至 {periods[-1]}" if periods else "无"
    print(f"样例数据服务已启动：{server.url}（数据期别 {span}）", flush=True)
    print(f"数据源：{'、'.join(catalog.feeds())}", flush=True)
    print("已启用令牌认证" if token else "未启用认证", flush=True)
    if server.faults.rules:
        print(f"已注入故障规则 {len(server.faults.rules)} 条", flush=True)
    try:
        while server._thread is not None and server._thread.is_alive():
            server._thread.join(timeout=0.5)
    except KeyboardInterrupt:
        print("正在停止样例数据服务…", flush=True)
    finally:
        server.stop()


def run_cli(args: argparse.Namespace) -> int:
    """Entry point of ``cm feed-server``; returns the process exit code."""
    token = args.token if args.token else os.environ.get(TOKEN_ENV) or None
    if getattr(args, "tradein_rows", None):
        from cm_devtools.sample_server.tradein_data import ROWS_ENV

        os.environ[ROWS_ENV] = str(args.tradein_rows)
    try:
        faults = FaultPlan.from_specs(getattr(args, "fault", None))
    except FaultError as exc:
        print(f"故障规则无效：{exc}", file=sys.stderr)
        return 2
    try:
        serve_forever(args.host, args.port, token, args.as_of, faults=faults)
    except OSError as exc:
        print(f"无法在 {args.host}:{args.port} 启动样例数据服务：{exc}", file=sys.stderr)
        return 1
    return 0
