"""The feeds the sample server plays, collected from their data modules."""

from __future__ import annotations

from functools import cache

from cm_devtools.sample_server.served import ServedFeed, ServedStream


@cache
def feeds() -> dict[str, ServedFeed]:
    """Every served feed by name; retail first (the default of ``/api/v1/periods``)."""
    from cm_devtools.sample_server import (
        complaints_data,
        ecommerce_data,
        employment_data,
        retail_data,
        tradein_data,
    )

    served = (
        retail_data.SERVED,
        ecommerce_data.SERVED,
        employment_data.SERVED,
        complaints_data.SERVED,
        tradein_data.SERVED,
    )
    return {feed.name: feed for feed in served}


@cache
def routes() -> dict[str, tuple[ServedFeed, ServedStream]]:
    """Endpoint path -> (feed, stream)."""
    table: dict[str, tuple[ServedFeed, ServedStream]] = {}
    for feed in feeds().values():
        for stream in feed.streams:
            if stream.path in table:
                raise ValueError(f"two streams serve {stream.path}")
            table[stream.path] = (feed, stream)
    return table


@cache
def defect_names() -> tuple[str, ...]:
    """Every defect some stream declares, in declaration order, without repeats."""
    names: dict[str, None] = {}
    for feed in feeds().values():
        for stream in feed.streams:
            names.update(dict.fromkeys(stream.defect_names))
    return tuple(names)
