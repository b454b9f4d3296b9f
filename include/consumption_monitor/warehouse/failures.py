"""A failed load in one line an operator can act on, and nothing more.

A database error's text carries what must not travel into ``audit_load_run``, alerts or the
terminal: SQLAlchemy appends the statement and its parameters (the rows), PostgreSQL a
``DETAIL``/``CONTEXT`` with the key or the COPY line's values. The line kept is: what kind
of failure (PEP 249's classes, alike for sqlite3 and psycopg), the first line of the
driver's message with quoted literals other than identifiers masked and personal-data
shapes replaced, and that the transaction was rolled back.
"""

from __future__ import annotations

import re

from consumption_monitor.feeds.pii_scan import PATTERN as PERSONAL_DATA

#: PEP 249 exception classes, most specific first, in words
KINDS = (
    ("TextTooLong", "数据不符合列定义"),
    ("LoadRefused", "批次不可载入"),
    ("IntegrityError", "违反数据库约束"),
    ("DataError", "数据不符合列定义"),
    ("OperationalError", "数据库操作失败（连接、磁盘、锁或权限）"),
    ("ProgrammingError", "表结构与程序不符"),
    ("InternalError", "数据库内部错误"),
    ("NotSupportedError", "数据库不支持的操作"),
    ("DatabaseError", "数据库错误"),
)
_QUOTED = re.compile(r"\"([^\"]*)\"|'([^']*)'")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
MAX_CHARS = 300


class LoadFailed(RuntimeError):
    """The load step failed and was rolled back; the message is safe to show and store.

    ``retryable``: the database or the disk may be fine again later (OperationalError,
    OSError), unlike a constraint or a value the same batch would break again."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


def _mask(text: str) -> str:
    def quoted(match: re.Match[str]) -> str:
        inner = match.group(1) if match.group(1) is not None else match.group(2)
        return match.group(0) if _IDENTIFIER.match(inner) else "「…」"

    text = _QUOTED.sub(quoted, text)
    return PERSONAL_DATA.sub("〔已隐去〕", text)


def _driver_error(exc: BaseException) -> BaseException:
    """The DB-API exception under SQLAlchemy's wrapper (or ``exc`` itself)."""
    return getattr(exc, "orig", None) or exc


def _kind(error: BaseException) -> tuple[str, str]:
    names = [cls.__name__ for cls in type(error).__mro__]
    for name, words in KINDS:
        if name in names:
            return name, words
    if isinstance(error, OSError):
        return type(error).__name__, "文件或磁盘读写失败"
    return type(error).__name__, "程序错误"


def describe(exc: BaseException) -> tuple[str, bool]:
    """(the one-line message, whether a retry may succeed) for a failed load."""
    error = _driver_error(exc)
    name, words = _kind(error)
    text = str(error).strip().splitlines()
    first = _mask(text[0].strip()) if text else ""
    if len(first) > MAX_CHARS:
        first = first[:MAX_CHARS] + "…"
    retryable = name == "OperationalError" or isinstance(error, OSError)
    detail = f"：{first}" if first else ""
    return f"载入失败，已回滚，本期现行版本不变 — {words} ({name}){detail}", retryable
