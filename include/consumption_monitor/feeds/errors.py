"""Errors a feed extraction can end with, each with a message an operator can act on."""

from __future__ import annotations


class FeedError(RuntimeError):
    """Base class: the feed could not be extracted."""


class FeedUnavailable(FeedError):
    """The source gave up after retries (5xx, 429, timeouts, broken or truncated bodies)."""


class FeedRejected(FeedError):
    """The source answered with a client error that retrying cannot fix (401, 400, ...)."""


class PeriodNotPublished(FeedError):
    """The period has no release (yet), or is published combined with another period."""

    def __init__(self, message: str, *, combined_with: str | None = None) -> None:
        super().__init__(message)
        self.combined_with = combined_with


class PayloadError(FeedError):
    """A page arrived but does not match the spec (not JSON, wrong unit, count mismatch)."""


class LimitExceeded(PayloadError):
    """The source sent more, or took longer, than the feed's ``limits`` allow (a page or a
    batch too large, too many pages, a cursor that loops, past the deadline)."""
