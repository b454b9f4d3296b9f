"""Declarative feed specs and the one generic engine that extracts any of them."""

from consumption_monitor.feeds.spec import FeedSpec, StreamSpec, list_feeds, load_feed

__all__ = ["FeedSpec", "StreamSpec", "list_feeds", "load_feed"]
