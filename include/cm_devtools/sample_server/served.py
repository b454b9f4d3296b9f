"""What the sample server serves, as data: feeds, their streams and each stream's defects.

Why declarations: the server's routing, period calendar, pagination, auth and fault
machinery are the same for every feed; a data module only says which paths it serves, how
to build a period's rows and which defects ``bad_rows`` can inject into them. A new feed is
then a data module and one line in :mod:`.catalog`, never a copy of the server.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from consumption_monitor.common.periods import Period, last_full_month, period_range

Row = dict[str, Any]
RowsFn = Callable[[Period, int, date], list[Row]]  # (period, revision, as_of) -> rows
# (period, revision, as_of, first row, page size) -> (rows in the period, the window's rows)
WindowFn = Callable[[Period, int, date, int, int], tuple[int, list[Row]]]


@dataclass(frozen=True)
class Defect:
    """One kind of defective row ``bad_rows`` can inject, at a fixed position.

    ``edit`` changes the row at ``position`` (modulo the row count) in place; ``append``
    adds a changed copy of it at the end (for sparse streams, so clean rows stay clean);
    ``duplicate`` inserts an exact copy right after it. With ``where``, the first row from
    ``position`` on (wrapping) that satisfies it is used, e.g. a complaint, not a report.
    """

    name: str
    position: int
    change: Callable[[Row], None] | None = None
    mode: Literal["edit", "append", "duplicate"] = "edit"
    where: Callable[[Row], bool] | None = None

    def target(self, rows: Sequence[Row]) -> int | None:
        """Index of the row this defect acts on, or None when no row fits."""
        for step in range(len(rows)):
            index = (self.position + step) % len(rows)
            if self.where is None or self.where(rows[index]):
                return index
        return None


def inject(rows: list[Row], defects: Sequence[Defect], which: Iterable[str]) -> list[Row]:
    """A copy of ``rows`` with the chosen defects: edits first (in declared order), then
    duplicates, then appended rows, so positions do not depend on which others apply."""
    chosen = set(which)
    out = copy.deepcopy(rows)
    if not out:
        return out
    active = [d for d in defects if d.name in chosen]
    for defect in (d for d in active if d.mode == "edit"):
        index = defect.target(out)
        if index is not None and defect.change is not None:
            defect.change(out[index])
    appended: list[Row] = []
    for defect in (d for d in active if d.mode == "append"):
        index = defect.target(out)
        if index is not None and defect.change is not None:
            extra = copy.deepcopy(out[index])
            defect.change(extra)
            appended.append(extra)
    for defect in (d for d in active if d.mode == "duplicate"):
        index = defect.target(out)
        if index is not None:
            out.insert(index + 1, copy.deepcopy(out[index]))
    return out + appended


@dataclass(frozen=True)
class ServedStream:
    """One endpoint: ``page`` pagination (page/page_size/next_page) or ``cursor``
    (cursor/limit/next_cursor), the rows of a period and the defects it accepts."""

    name: str
    path: str
    paging: Literal["page", "cursor"]
    rows: RowsFn
    defects: tuple[Defect, ...] = ()
    # transaction-scale streams build only the rows of the page asked for; their defects
    # are ``edit`` defects at a position modulo the period's row count
    window: WindowFn | None = None

    @property
    def defect_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.defects)


@dataclass(frozen=True)
class ServedFeed:
    """A feed's publication calendar and streams. ``january_alone=False``: January is
    published only inside February ("1-2月"), as NBS does for retail statistics."""

    name: str
    unit: str | None
    first_period: Period
    streams: tuple[ServedStream, ...]
    january_alone: bool = True

    def is_published_alone(self, period: Period) -> bool:
        return self.january_alone or period.month != 1

    def available_periods(self, as_of: date | None = None) -> list[Period]:
        """Published periods from the first to the last full month before ``as_of``."""
        last = last_full_month(as_of)
        if last < self.first_period:
            return []
        return [p for p in period_range(self.first_period, last) if self.is_published_alone(p)]


def inject_window(
    rows: list[Row], start: int, total: int, defects: Sequence[Defect], which: Iterable[str]
) -> list[Row]:
    """The window ``rows`` (positions ``start``…) with the chosen ``edit`` defects applied
    where their position (modulo ``total``) falls inside it."""
    chosen = set(which)
    if not rows or not total:
        return rows
    for defect in defects:
        if defect.name not in chosen or defect.change is None or defect.mode != "edit":
            continue
        index = defect.position % total
        if start <= index < start + len(rows):
            defect.change(rows[index - start])
    return rows
