"""Fault injection for the sample feed server.

Real feeds fail in ways the pipeline must survive: server errors, throttling, slow and cut
off responses, defective rows, missing columns and silent revisions. A :class:`FaultPlan`
is an ordered list of :class:`FaultRule` objects; the server asks the plan which rules
apply to each request.

A rule is written as a flat dict (the JSON body of ``POST /_control/faults``)::

    {"kind": "http_429", "path": "above-quota", "period": "2025-03", "times": 2,
     "retry_after": 5}

or as a CLI spec ``kind[:key=value,...]``, e.g. ``http_500:times=2`` or
``bad_rows:period=2025-03,times=-1,which=negative_amount+duplicate_key`` (list values are
joined with ``+``). A spec starting with ``{`` is read as the JSON form.

``bad_rows`` defects are declared by the data modules, per stream (see :mod:`.served`):
a rule acts on a stream only where the stream declares at least one of its defects, and by
default names every declared defect.

``times`` counts down per request the rule takes effect on; ``-1`` means always. The
data-state kinds (``bad_rows``, ``revision``, ``drop_column``) default to ``-1`` because
they describe what the source holds, and a batch must look the same on every page; the
transport kinds default to ``1``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from consumption_monitor.common.identifiers import id_check_char

TRANSPORT_KINDS = ("http_500", "http_429", "slow", "truncate", "trickle")
DATA_KINDS = (
    "bad_rows",
    "revision",
    "drop_column",
    "personal_data",
    "long_text",
    "cursor_loop",
    "huge_page",
)
FAULT_KINDS = TRANSPORT_KINDS + DATA_KINDS
ERROR_KINDS = ("http_500", "http_429")

_DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "http_500": {},
    "http_429": {"retry_after": 1},
    "slow": {"seconds": 3.0},
    "truncate": {},
    "bad_rows": {"which": None},  # None: every defect the served streams declare
    "revision": {"revision": 1},
    "drop_column": {"column": "value_ytd"},
    # where a careless sender puts personal data: remark | nested | number | rename
    "personal_data": {"how": "remark"},
    # hostile transport and paging: bytes a second, a next cursor pointing back, padding
    "trickle": {"bytes_per_second": 200},
    "cursor_loop": {},
    "huge_page": {"mb": 70},
    # a text field of one row (position in the period) made ``length`` characters long
    "long_text": {"column": "enterprise_name", "length": 300, "row": 0, "char": "长"},
}
_RULE_KEYS = ("kind", "path", "period", "times")
PERSONAL_DATA_HOWS = ("remark", "nested", "number", "rename")


class FaultError(ValueError):
    """A fault rule or spec that cannot be understood."""


def known_defects() -> tuple[str, ...]:
    """Every defect name a served stream declares (imported late: the data modules are big)."""
    from cm_devtools.sample_server.catalog import defect_names

    return defect_names()


def _as_int(name: str, value: Any, minimum: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise FaultError(f"{name} must be an integer, got {value!r}") from None
    if isinstance(value, float) and value != number:
        raise FaultError(f"{name} must be an integer, got {value!r}")
    if number < minimum:
        raise FaultError(f"{name} must be >= {minimum}, got {number}")
    return number


def _normalise_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Check the parameters of ``kind`` and fill in the defaults."""
    allowed = _DEFAULT_PARAMS[kind]
    unknown = set(params) - set(allowed)
    if unknown:
        raise FaultError(f"unknown parameter(s) for {kind}: {', '.join(sorted(unknown))}")
    out = {
        key: (list(value) if isinstance(value, list) else value) for key, value in allowed.items()
    }
    out.update(params)
    if kind == "http_429":
        out["retry_after"] = _as_int("retry_after", out["retry_after"], 0)
    elif kind == "slow":
        try:
            out["seconds"] = float(out["seconds"])
        except (TypeError, ValueError):
            raise FaultError(f"seconds must be a number, got {out['seconds']!r}") from None
        if out["seconds"] < 0:
            raise FaultError("seconds must be >= 0")
    elif kind == "bad_rows":
        known = known_defects()
        which = list(known) if out["which"] is None else out["which"]
        if isinstance(which, str):
            which = [part for part in which.replace(",", "+").split("+") if part]
        if not isinstance(which, list) or not which:
            raise FaultError("which must be a non-empty list of defect names")
        bad = [name for name in which if name not in known]
        if bad:
            raise FaultError(f"unknown defect(s): {', '.join(map(str, bad))}")
        out["which"] = [name for name in known if name in which]
    elif kind == "revision":
        out["revision"] = _as_int("revision", out["revision"], 0)
    elif kind == "drop_column" and not isinstance(out["column"], str):
        raise FaultError("column must be a field name")
    elif kind == "long_text":
        out["length"] = _as_int("length", out["length"], 1)
        out["row"] = _as_int("row", out["row"], 0)
        if not isinstance(out["column"], str) or not isinstance(out["char"], str):
            raise FaultError("column and char must be text")
        if len(out["char"]) != 1:
            raise FaultError("char must be one character")
    elif kind == "personal_data" and out["how"] not in PERSONAL_DATA_HOWS:
        raise FaultError(f"how must be one of {', '.join(PERSONAL_DATA_HOWS)}")
    return out


@dataclass
class FaultRule:
    """One fault: what it does (``kind`` + ``params``), where, and how many more times."""

    kind: str
    path: str | None = None
    period: str | None = None
    times: int | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise FaultError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if self.times is None:
            self.times = -1 if self.kind in DATA_KINDS else 1
        self.times = _as_int("times", self.times, -1)
        if self.times == 0:
            raise FaultError("times must be -1 (always) or a positive count")
        self.path = str(self.path) if self.path not in (None, "") else None
        self.period = str(self.period).strip() if self.period not in (None, "") else None
        self.params = _normalise_params(self.kind, dict(self.params))

    def matches(self, path: str, period: str | None) -> bool:
        """Whether the rule applies to a request for ``path`` (no query) and ``period``."""
        if self.path is not None and self.path not in path:
            return False
        return self.period is None or self.period == (period or "").strip()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": self.path,
            "period": self.period,
            "times": self.times,
            **self.params,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        if not isinstance(data, dict) or "kind" not in data:
            raise FaultError("a fault rule is an object with a 'kind'")
        params = {key: value for key, value in data.items() if key not in _RULE_KEYS}
        return cls(
            kind=str(data["kind"]),
            path=data.get("path"),
            period=data.get("period"),
            times=data.get("times"),
            params=params,
        )

    @classmethod
    def parse_spec(cls, spec: str) -> FaultRule:
        """Parse the CLI form ``kind[:key=value,...]`` (or a JSON object)."""
        spec = spec.strip()
        if spec.startswith("{"):
            try:
                return cls.from_dict(json.loads(spec))
            except json.JSONDecodeError as exc:
                raise FaultError(f"invalid JSON fault spec: {exc}") from None
        kind, _, rest = spec.partition(":")
        data: dict[str, Any] = {"kind": kind.strip()}
        for item in filter(None, (part.strip() for part in rest.split(","))):
            key, sep, value = item.partition("=")
            if not sep:
                raise FaultError(f"expected key=value in fault spec, got {item!r}")
            data[key.strip()] = _scalar(value.strip(), key.strip())
        return cls.from_dict(data)


def _scalar(text: str, key: str) -> Any:
    """Read a spec value: ints and floats as numbers, ``a+b`` as a list, else text."""
    if key == "which":
        return [part for part in text.split("+") if part]
    if key in ("path", "period"):
        return text
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return text


@dataclass
class Applied:
    """The rules that took effect on one request, already counted down."""

    slow_seconds: float = 0.0
    error: FaultRule | None = None
    truncate: bool = False
    revision: int | None = None
    defects: list[str] = field(default_factory=list)
    dropped_columns: list[str] = field(default_factory=list)
    personal_data: list[str] = field(default_factory=list)  # the ``how`` of each rule
    trickle_bps: int = 0  # bytes a second (0: at once)
    cursor_loop: bool = False
    padding_mb: int = 0
    long_text: list[dict[str, Any]] = field(default_factory=list)  # params of each rule

    @property
    def kinds(self) -> list[str]:
        out: list[str] = []
        if self.slow_seconds:
            out.append("slow")
        if self.error is not None:
            out.append(self.error.kind)
        if self.truncate:
            out.append("truncate")
        if self.revision is not None:
            out.append("revision")
        if self.defects:
            out.append("bad_rows")
        if self.dropped_columns:
            out.append("drop_column")
        if self.personal_data:
            out.append("personal_data")
        if self.trickle_bps:
            out.append("trickle")
        if self.cursor_loop:
            out.append("cursor_loop")
        if self.padding_mb:
            out.append("huge_page")
        if self.long_text:
            out.append("long_text")
        return out


@dataclass
class FaultPlan:
    """An ordered, thread-safe list of fault rules; mutate it while the server runs."""

    rules: list[FaultRule] = field(default_factory=list)
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def add(
        self,
        kind: str,
        *,
        path: str | None = None,
        period: str | None = None,
        times: int | None = None,
        **params: Any,
    ) -> FaultPlan:
        """Append a rule and return the plan, so calls can be chained."""
        rule = FaultRule(kind=kind, path=path, period=period, times=times, params=params)
        with self._lock:
            self.rules.append(rule)
        return self

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def replace(self, other: FaultPlan) -> None:
        with self._lock:
            self.rules[:] = list(other.rules)

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"rules": [rule.to_dict() for rule in self.rules]}

    @classmethod
    def from_json(cls, data: Any) -> FaultPlan:
        """Accept ``{"rules": [...]}``, a bare list of rules, or a single rule object."""
        if isinstance(data, dict) and "rules" in data:
            data = data["rules"]
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list):
            raise FaultError("expected a rule, a list of rules or {'rules': [...]}")
        return cls(rules=[FaultRule.from_dict(item) for item in data])

    @classmethod
    def from_specs(cls, specs: list[str] | None) -> FaultPlan:
        return cls(rules=[FaultRule.parse_spec(spec) for spec in specs or []])

    def _consume(self, rule: FaultRule) -> None:
        """Count one use of ``rule`` down; drop it when exhausted (lock held)."""
        if rule.times is not None and rule.times > 0:
            rule.times -= 1
            if rule.times == 0:
                self.rules.remove(rule)

    def take_transport(self, path: str, period: str | None) -> Applied:
        """Rules acting on the exchange itself: every matching ``slow`` and ``truncate``
        rule, and the first matching error rule (later error rules are not used up)."""
        applied = Applied()
        with self._lock:
            for rule in list(self.rules):
                if rule.kind not in TRANSPORT_KINDS or not rule.matches(path, period):
                    continue
                if rule.kind in ERROR_KINDS:
                    if applied.error is not None:
                        continue
                    applied.error = rule
                elif rule.kind == "slow":
                    applied.slow_seconds += float(rule.params["seconds"])
                elif rule.kind == "trickle":
                    applied.trickle_bps = _as_int(
                        "bytes_per_second", rule.params["bytes_per_second"], 1
                    )
                else:
                    applied.truncate = True
                self._consume(rule)
        return applied

    def take_data(
        self, path: str, period: str | None, applied: Applied, *, defects: Sequence[str] = ()
    ) -> None:
        """Rules changing the data served: the last matching ``revision`` wins, and the
        defects of all matching ``bad_rows`` rules are combined. A ``bad_rows`` rule is
        neither applied nor used up on a stream declaring none of its defects (``defects``:
        the names the stream declares, e.g. none for district totals)."""
        chosen: set[str] = set()
        with self._lock:
            for rule in list(self.rules):
                if rule.kind not in DATA_KINDS or not rule.matches(path, period):
                    continue
                if rule.kind == "revision":
                    applied.revision = int(rule.params["revision"])
                elif rule.kind == "drop_column":
                    applied.dropped_columns.append(rule.params["column"])
                elif rule.kind == "personal_data":
                    applied.personal_data.append(rule.params["how"])
                elif rule.kind == "cursor_loop":
                    applied.cursor_loop = True
                elif rule.kind == "huge_page":
                    applied.padding_mb = _as_int("mb", rule.params["mb"], 1)
                elif rule.kind == "long_text":
                    applied.long_text.append(dict(rule.params))
                else:
                    fitting = set(rule.params["which"]) & set(defects)
                    if not fitting:
                        continue
                    chosen.update(fitting)
                self._consume(rule)
        applied.defects = [name for name in defects if name in chosen]


#: the resident ID and mobile number a careless sender leaks (valid check character)
LEAKED_ID = "51040319900307123" + id_check_char("51040319900307123")
LEAKED_MOBILE = "13912345678"


def with_personal_data(row: dict[str, Any], i: int, how: str) -> dict[str, Any]:
    """``row`` with personal data where no spec declares it: in a remark, in a nested
    object, as a JSON number, or under renamed declared fields (``consumer_id`` ->
    ``idno``, ``consumer_phone`` -> ``mobile_no``, holding ``LEAKED_ID``/``LEAKED_MOBILE``)."""
    row = dict(row)
    if how == "remark":
        row["remark"] = f"联系人电话 139 1234 {5678 + i % 3:04d}，身份证 {LEAKED_ID}"
    elif how == "nested":
        row["contact"] = {"person": {"tel": "+86-139-1234-5678", "ids": [LEAKED_ID]}}
    elif how == "number":
        row["tel"] = int(LEAKED_MOBILE)
    elif how == "rename":
        leaked = {"consumer_id": LEAKED_ID, "consumer_phone": LEAKED_MOBILE}
        for old, new in (("consumer_id", "idno"), ("consumer_phone", "mobile_no")):
            if old in row:  # the known identifiers, so a test can look for them
                row.pop(old)
                row[new] = leaked[old]
    return row


def apply_page_faults(payload: Any, applied: Applied, query: dict[str, str]) -> None:
    """Page-level data faults on a page about to be sent: ``cursor_loop`` points the next
    page back at the one just asked for (a paginator that never ends), ``huge_page`` pads
    it."""
    if not isinstance(payload, dict):
        return
    if applied.cursor_loop:
        if "next_cursor" in payload and query.get("cursor"):
            payload["next_cursor"] = query["cursor"]
        if "next_page" in payload and query.get("page"):
            payload["next_page"] = int(query["page"])
    if applied.padding_mb:
        payload["padding"] = "x" * (applied.padding_mb * 1024 * 1024)


def trickle(write: Any, body: bytes, bytes_per_second: int) -> None:
    """Send ``body`` a few bytes at a time (a server that trickles); stops when the client
    hangs up, so a test server never outlives its client by more than a second."""
    import time

    step = max(1, bytes_per_second // 10)
    for start in range(0, len(body), step):
        try:
            write(body[start : start + step])
        except OSError:  # the client gave up
            return
        time.sleep(0.1)


def with_long_text(
    rows: list[dict[str, Any]], first: int, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """``rows`` (the period's rows from position ``first``) with the text field
    ``params["column"]`` of row ``params["row"]`` made ``length`` × ``char`` long, where
    that row is among them and has the field."""
    index = int(params["row"]) - first
    if not 0 <= index < len(rows) or params["column"] not in rows[index]:
        return rows
    rows = list(rows)
    rows[index] = {**rows[index], params["column"]: params["char"] * int(params["length"])}
    return rows


def apply_row_faults(
    rows: list[dict[str, Any]], applied: Applied, first: int = 0
) -> list[dict[str, Any]]:
    """Rows with the columns of ``drop_column`` faults removed (a renamed/missing field),
    the personal data of ``personal_data`` faults added and the text of ``long_text``
    faults lengthened (``first``: the position of ``rows[0]`` in the period)."""
    if applied.dropped_columns:
        rows = [{k: v for k, v in r.items() if k not in applied.dropped_columns} for r in rows]
    for how in applied.personal_data:
        rows = [with_personal_data(row, i, how) for i, row in enumerate(rows)]
    for params in applied.long_text:
        rows = with_long_text(rows, first, params)
    return rows
