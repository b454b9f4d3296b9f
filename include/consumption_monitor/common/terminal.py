"""Text for terminals: CJK characters take two columns, so tables align by display width."""

from __future__ import annotations

import unicodedata


def display_width(text: str) -> int:
    """Terminal columns of ``text``: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text: str, width: int, *, right: bool = False) -> str:
    """``text`` padded to ``width`` terminal columns (str.ljust counts CJK as one)."""
    fill = " " * max(0, width - display_width(text))
    return fill + text if right else text + fill
