"""Arguments and errors of ``cm``: every user error is one line and exit code 2.

Argument values are stripped and checked where they are parsed (``type=`` functions), so a
bad period, year, date, feed or enterprise code never reaches a command. Errors raised
while a command runs are turned into one line by ``error_line``: the classes a user can
cause (an unreachable or garbled warehouse URL, a warehouse not migrated yet, a missing
personal-data key, a path that is a file, a full disk) get a message in Chinese and
English; anything else is an internal error, also one line, with ``-v`` showing the
traceback. The warehouse URL's password never appears in a message.
"""

from __future__ import annotations

import argparse
import errno
import re
from datetime import date

EXIT_USAGE = 2
EXIT_INTERNAL = 1

_YEAR = re.compile(r"^(19|20)\d{2}$")


class UserError(Exception):
    """A mistake in what the user asked for: shown as one line, exit code 2."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(f"{zh} ({en})")


class OneLineParser(argparse.ArgumentParser):
    """argparse without the usage block on errors: one line, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: 错误 error: {message}\n")


def text(value: str) -> str:
    return value.strip()


def period(value: str) -> str:
    """A 'YYYY-MM' period (month 01–12)."""
    from consumption_monitor.common.periods import Period, PeriodError

    value = value.strip()
    try:
        return str(Period.parse(value))
    except PeriodError:
        raise argparse.ArgumentTypeError(
            f"期别应为 YYYY-MM（月份 01–12）：{value!r} (a period is YYYY-MM)"
        ) from None


def year(value: str) -> str:
    value = value.strip()
    if not _YEAR.match(value):
        raise argparse.ArgumentTypeError(f"年份应为四位数字：{value!r} (a year is YYYY)")
    return value


def day(value: str) -> str:
    value = value.strip()
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"日期应为 YYYY-MM-DD：{value!r} (a date is YYYY-MM-DD)"
        ) from None


def feed(value: str) -> str:
    """The name of a feed with a spec."""
    from consumption_monitor.feeds.spec import list_feeds

    value = value.strip()
    known = list_feeds()
    if value not in known:
        raise argparse.ArgumentTypeError(
            f"未知数据源 {value!r}，可选：{'、'.join(known)} (unknown feed)"
        )
    return value


def uscc(value: str) -> str:
    """An enterprise's unified social credit code (18 characters of its alphabet)."""
    from consumption_monitor.common.identifiers import is_uscc_well_formed

    value = value.strip().upper()
    if not is_uscc_well_formed(value):
        raise argparse.ArgumentTypeError(
            f"统一社会信用代码应为 18 位：{value!r} (an enterprise code is an 18-character USCC)"
        )
    return value


def period_span(single: str | None, first: str | None, last: str | None) -> list[str]:
    """The periods of ``--period`` or ``--from``/``--to`` (both ends included)."""
    from consumption_monitor.common.periods import period_range

    if single and (first or last):
        raise UserError("--period 与 --from/--to 只能选一种", "give --period or --from/--to")
    if single:
        return [single]
    if not (first and last):
        raise UserError(
            "请给出 --period YYYY-MM，或同时给出 --from 和 --to",
            "give --period YYYY-MM, or --from and --to",
        )
    if first > last:
        raise UserError(f"--from {first} 晚于 --to {last}", "--from is after --to")
    return [str(p) for p in period_range(first, last)]


def safe_url(url: str | None) -> str:
    """The warehouse URL as it may be shown: password hidden, or the raw text if garbled."""
    if not url:
        return "默认仓库"
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"//[^@/]*@", "//***@", url)


def _os_error_line(exc: OSError) -> str:
    where = exc.filename or ""
    if exc.errno == errno.ENOSPC:
        return f"磁盘空间不足，未写完的文件已放弃：{where} (no space left on device)"
    if isinstance(exc, NotADirectoryError | FileExistsError):
        return f"路径已存在且不是文件夹：{where} (a path that must be a folder is a file)"
    if isinstance(exc, PermissionError):
        return f"没有权限访问：{where} (permission denied)"
    if isinstance(exc, FileNotFoundError):
        return f"找不到文件或文件夹：{where} (no such file or folder)"
    return f"文件读写失败：{where} {exc.strerror or ''} (file system error)"


def _database_error_line(exc: Exception, url: str | None) -> str | None:
    from sqlalchemy import exc as sa

    shown = safe_url(url)
    if isinstance(exc, sa.NoSuchModuleError | sa.ArgumentError):
        return f"仓库地址无法识别：{shown} (unrecognised warehouse URL)"
    if isinstance(exc, sa.OperationalError | sa.ProgrammingError | sa.InterfaceError):
        detail = str(getattr(exc, "orig", exc)).lower()
        if "no such table" in detail or ("does not exist" in detail and "relation" in detail):
            return f"仓库尚未初始化，请先运行 cm migrate：{shown} (warehouse not migrated)"
        return f"无法连接仓库：{shown} (warehouse unreachable)"
    return None


def error_line(exc: BaseException, url: str | None = None) -> str | None:
    """One line for an error the user can act on, or None for an internal error."""
    from consumption_monitor.common.periods import PeriodError
    from consumption_monitor.feeds.pii import PiiKeyMissing
    from consumption_monitor.feeds.spec import SpecError

    if isinstance(exc, UserError | PiiKeyMissing):
        return str(exc)
    if isinstance(exc, PeriodError):
        return f"期别无效 (invalid period): {exc}"
    if isinstance(exc, SpecError):
        return f"数据源配置无效 (feed spec): {exc}"
    if isinstance(exc, OSError):
        return _os_error_line(exc)
    if isinstance(exc, Exception):
        return _database_error_line(exc, url)
    return None
