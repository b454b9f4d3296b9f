"""What the operator sees while the demo works: numbered steps and a live progress line.

Progress goes to stdout, or to stderr with ``--json`` so stdout stays machine-readable. On a
terminal the progress line is rewritten in place; elsewhere (logs, CI) a changed line is
printed at most every 10 seconds.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class Console:
    """Progress goes to stdout, or to stderr with --json so stdout stays machine-readable."""

    def __init__(self, json_mode: bool) -> None:
        self.out: TextIO = sys.stderr if json_mode else sys.stdout
        self.tty = self.out.isatty()
        self._status_open = False
        self._last_status = ""
        self._last_status_at = 0.0

    def say(self, text: str) -> None:
        if self._status_open:  # replace the transient status line on a terminal
            print("\r\033[K", end="", file=self.out)
            self._status_open = False
        print(text, file=self.out, flush=True)

    def waiting(self, what: str, elapsed_s: float) -> None:
        """A ticking 'still waiting' line, on terminals only (logs need no ticker)."""
        if self.tty:
            self.status(f"      {what} … {int(elapsed_s)} s")

    def status(self, text: str) -> None:
        """Rewrite one line on a terminal; elsewhere print changes at most every 10 s."""
        if self.tty:
            print(f"\r\033[K{text}", end="", file=self.out, flush=True)
            self._status_open = True
            return
        core = text.rsplit(" · 已用时", 1)[0]
        now = time.monotonic()
        if core != self._last_status and now - self._last_status_at >= 10:
            print(text, file=self.out, flush=True)
            self._last_status, self._last_status_at = core, now

    def final_status(self, text: str) -> None:
        """The last progress line: shown once, even if its counts were printed already."""
        if self.tty:
            self.status(text)
            self._end_status()
        elif text.rsplit(" · 已用时", 1)[0] != self._last_status:
            self.say(text)

    def _end_status(self) -> None:
        if self._status_open:
            print(file=self.out, flush=True)
            self._status_open = False


@dataclass
class Step:
    console: Console
    number: int
    total: int
    title: str
    t0: float = field(default_factory=time.monotonic)

    def __enter__(self) -> Step:
        self.console.say(f"[{self.number}/{self.total}] {self.title} …")
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.console.say(f"      完成 done ({time.monotonic() - self.t0:.1f} s)")
