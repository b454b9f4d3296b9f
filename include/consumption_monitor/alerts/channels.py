"""Where alerts go: group-chat robots (WeCom, DingTalk, Feishu) and e-mail over SMTP.

Both come from Airflow connections (``AIRFLOW_CONN_<ID>`` in the environment works too):

- ``cm_alert_webhook``: the robot. Format from ``extra.format`` (``wecom`` | ``dingtalk`` |
  ``feishu``) or from the connection type (``wecom``, ``dingding``/``dingtalk``,
  ``feishu``/``lark``). URL from ``extra.url``, or built from schema (http/https, default
  https), host, port and the robot's path, with the robot token in the password (WeCom
  ``?key=``, DingTalk ``?access_token=``, Feishu ``/hook/<token>``). ``extra.secret`` turns
  on signing (DingTalk: ``timestamp`` and ``sign`` query parameters; Feishu: in the body);
  ``extra.msg_type`` chooses Feishu's ``post`` (default) or ``interactive`` card.
- ``cm_alert_smtp``: an SMTP connection as the Airflow SMTP provider reads it (host, port,
  login, password, ``extra.from_email``, ``disable_ssl``, ``disable_tls``), plus
  ``extra.to`` (comma-separated recipients) or ``CM_ALERT_EMAIL_TO``.

Secrets (tokens, signing secrets, passwords) are never logged nor put in exceptions:
a channel describes itself by format and host only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Protocol

from consumption_monitor.alerts.message import Alert

log = logging.getLogger(__name__)

WEBHOOK_CONN_ID = "cm_alert_webhook"
SMTP_CONN_ID = "cm_alert_smtp"
FORMATS = ("wecom", "dingtalk", "feishu")
CONN_TYPE_FORMATS = {
    "wecom": "wecom",
    "wechat_work": "wecom",
    "dingding": "dingtalk",
    "dingtalk": "dingtalk",
    "feishu": "feishu",
    "lark": "feishu",
}
ROBOT_PATHS = {
    "wecom": "/cgi-bin/webhook/send",
    "dingtalk": "/robot/send",
    "feishu": "/open-apis/bot/v2/hook/",
}
WECOM_MARKDOWN_BYTES = 4096  # the robot refuses longer markdown
DINGTALK_MARKDOWN_BYTES = 20000


class ChannelError(RuntimeError):
    """A channel that is misconfigured or refused the message (never carries secrets)."""


class Channel(Protocol):
    name: str  # recorded in audit_alert.channel

    def render(self, alert: Alert) -> str: ...

    def send(self, alert: Alert) -> None: ...


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk robot signature: base64(HMAC-SHA256(secret, "timestamp\\nsecret"))."""
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu robot signature: base64(HMAC-SHA256 keyed by "timestamp\\nsecret", empty msg)."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def payload(fmt: str, alert: Alert, *, feishu_msg_type: str = "post") -> dict[str, Any]:
    """The robot's JSON body for ``alert`` (Feishu: a "post" or an "interactive" card)."""
    if fmt == "wecom":
        return {
            "msgtype": "markdown",
            "markdown": {"content": alert.markdown(max_bytes=WECOM_MARKDOWN_BYTES)},
        }
    if fmt == "dingtalk":
        return {
            "msgtype": "markdown",
            "markdown": {
                "title": alert.heading,
                "text": alert.markdown(max_bytes=DINGTALK_MARKDOWN_BYTES),
            },
        }
    if fmt == "feishu" and feishu_msg_type == "interactive":
        return {"msg_type": "interactive", "card": alert.feishu_card()}
    if fmt == "feishu":
        return {"msg_type": "post", "content": {"post": alert.feishu_post()}}
    raise ChannelError(f"unknown webhook format {fmt!r}; expected one of {', '.join(FORMATS)}")


@dataclass(frozen=True)
class WebhookChannel:
    """A group-chat robot. ``url`` may carry the robot token: it is never printed."""

    fmt: str
    url: str = field(repr=False)
    secret: str | None = field(default=None, repr=False)
    timeout_s: float = 10.0
    feishu_msg_type: str = "post"  # or "interactive" (extra.msg_type)

    @property
    def name(self) -> str:
        return f"webhook:{self.fmt}"

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.url).netloc

    def __repr__(self) -> str:
        return f"WebhookChannel({self.fmt}, host={self.host}, signed={bool(self.secret)})"

    def render(self, alert: Alert) -> str:
        return alert.markdown() if self.fmt != "feishu" else alert.text()

    def request(self, alert: Alert, *, now: float | None = None) -> tuple[str, dict[str, Any]]:
        """The URL and JSON body to post (signed when the channel has a secret)."""
        now = time.time() if now is None else now
        body = payload(self.fmt, alert, feishu_msg_type=self.feishu_msg_type)
        url = self.url
        if self.secret and self.fmt == "dingtalk":
            ts = int(now * 1000)
            query = urllib.parse.urlencode(
                {"timestamp": ts, "sign": dingtalk_sign(self.secret, ts)}
            )
            url = f"{url}{'&' if '?' in url else '?'}{query}"
        elif self.secret and self.fmt == "feishu":
            ts = int(now)
            body = {"timestamp": str(ts), "sign": feishu_sign(self.secret, ts), **body}
        return url, body

    def send(self, alert: Alert) -> None:
        import requests

        url, body = self.request(alert)
        try:
            response = requests.post(url, json=body, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise ChannelError(f"{self!r}: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise ChannelError(f"{self!r}: HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0)))
        if code not in (0, None):
            message = answer.get("errmsg") or answer.get("msg") or answer.get("StatusMessage")
            raise ChannelError(f"{self!r}: robot refused the message ({code}: {message})")
        log.info("alert sent to %r: %s", self, alert.heading)


@dataclass(frozen=True)
class EmailChannel:
    """E-mail through the SMTP connection, with the Airflow SMTP provider's hook."""

    conn_id: str
    to: tuple[str, ...]
    name: str = "email"

    def render(self, alert: Alert) -> str:
        return alert.text()

    def send(self, alert: Alert) -> None:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        try:
            with SmtpHook(smtp_conn_id=self.conn_id) as hook:
                hook.send_email_smtp(
                    to=list(self.to),
                    subject=alert.heading,
                    html_content=alert.html(),
                    custom_headers={"X-CM-Alert-Signature": alert.signature},
                )
        except Exception as exc:  # the hook's messages hold no password; keep it that way
            raise ChannelError(f"email via {self.conn_id}: {type(exc).__name__}: {exc}") from None
        log.info("alert e-mailed to %d recipient(s): %s", len(self.to), alert.heading)


def _connection(conn_id: str):
    """The Airflow connection, or None when it is not configured."""
    env = f"AIRFLOW_CONN_{conn_id.upper()}"
    if env not in os.environ and "AIRFLOW_HOME" not in os.environ:
        return None
    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except Exception:
        return None


def webhook_channel(conn_id: str = WEBHOOK_CONN_ID) -> WebhookChannel | None:
    conn = _connection(conn_id)
    if conn is None:
        return None
    extra = conn.extra_dejson or {}
    fmt = str(extra.get("format") or CONN_TYPE_FORMATS.get(conn.conn_type or "", "")).lower()
    fmt = CONN_TYPE_FORMATS.get(fmt, fmt)
    if fmt not in FORMATS:
        raise ChannelError(f"connection {conn_id}: set extra.format to one of {', '.join(FORMATS)}")
    url = extra.get("url")
    if not url:
        if not conn.host:
            raise ChannelError(f"connection {conn_id}: no host and no extra.url")
        scheme = conn.schema if conn.schema in ("http", "https") else "https"
        port = f":{conn.port}" if conn.port else ""
        url = f"{scheme}://{conn.host}{port}{extra.get('path') or ROBOT_PATHS[fmt]}"
        token = conn.password
        if token and fmt == "feishu":
            url = url.rstrip("/") + "/" + urllib.parse.quote(token)
        elif token:
            key = "key" if fmt == "wecom" else "access_token"
            url += f"?{urllib.parse.urlencode({key: token})}"
    msg_type = str(extra.get("msg_type") or "post")
    if fmt == "feishu" and msg_type not in ("post", "interactive"):
        raise ChannelError(f"connection {conn_id}: Feishu msg_type is post or interactive")
    return WebhookChannel(fmt, url, extra.get("secret") or None, feishu_msg_type=msg_type)


def email_channel(conn_id: str = SMTP_CONN_ID) -> EmailChannel | None:
    conn = _connection(conn_id)
    if conn is None:
        return None
    extra = conn.extra_dejson or {}
    to = extra.get("to") or os.environ.get("CM_ALERT_EMAIL_TO") or ""
    recipients = tuple(a.strip() for a in (to if isinstance(to, list) else to.split(",")) if a)
    if not recipients:
        raise ChannelError(f"connection {conn_id}: no recipients (extra.to or CM_ALERT_EMAIL_TO)")
    return EmailChannel(conn_id, recipients)


def configured_channels() -> list[Channel]:
    """Every channel whose connection exists (none configured: alerts only go to the log)."""
    found: list[Channel | None] = [webhook_channel(), email_channel()]
    return [c for c in found if c is not None]
