"""The measure catalog: the plan's 19 measures, their KPIs, targets and warehouse sources.

``load_catalog()`` returns the cached :class:`Catalog` read from ``measures.yaml``.
"""

from consumption_monitor.catalog.model import (
    CATALOG_FILE,
    FEEDS,
    STATUSES,
    Catalog,
    CatalogError,
    Kpi,
    Measure,
    StatusRules,
    Target,
    load_catalog,
    parse_catalog,
)

__all__ = [
    "CATALOG_FILE",
    "FEEDS",
    "STATUSES",
    "Catalog",
    "CatalogError",
    "Kpi",
    "Measure",
    "StatusRules",
    "Target",
    "load_catalog",
    "parse_catalog",
]
