"""The measure catalog against the seed: all 19 measures, every numeric target, sources."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import inspect

from consumption_monitor.cli import main
from consumption_monitor.indicators.catalog import (
    Catalog,
    CatalogError,
    load_catalog,
    parse_catalog,
)

# Every numeric target of the seed, written by hand from its text:
# (measure, value, comparator, unit), with the seed's words
EXPECTED_TARGETS = [
    (1, 3, ">=", "场"),  # 每年举办“线上+线下”公共就业招聘会 3 场以上
    (1, 800, ">=", "个"),  # 提供就业岗位不低于 800 个
    (1, 20, ">=", "个"),  # 以工代赈，每年至少提供 20 个就业岗位
    (4, 100, "=", "%"),  # 二级以上综合医院儿科全覆盖
    (4, 90, ">", "%"),  # 基层医疗卫生机构覆盖率超 90%
    (8, 10, "=", "家"),  # 每年培育 10 家具有西区特色的烟火小店
    (9, 2, "=", "个"),  # 争创 2 个市级“来攀必打卡”消费新场景
    (9, 2, "=", "场"),  # 举办“三角梅文化艺术周”、“凤凰花季”等大型活动 2 场
    (9, 1, "=", "个"),  # 力争打造高能级运动 IP1 个
    (10, 5, "=", "条"),  # 推出……5 条精品路线
    (10, 5, ">=", "万元"),  # 力争每年销售额达到 5 万元
    (11, 20, ">=", "场"),  # 每年组织各类活动不低于 20 场
    (11, 5, ">", "亿元"),  # 力争带动全区消费超 5 亿元
    (12, 10, ">=", "场"),  # 工会会员团购、家电“五进”等活动10场以上
    (13, 5, ">=", "场"),  # 各类汽车展销活动5场以上
    (14, 10, ">=", "家"),  # 区域首店、品牌连锁店……每年力争引进 10 家以上
    (14, 3, ">=", "场"),  # 首发、首秀、首展活动 3 场以上
    (19, 99, ">=", "%"),  # 投诉按时办结率……不低于 99%
    (19, 99, ">=", "%"),  # ……举报按时核查率不低于 99%
]

ACTIONS = {
    "一": [1, 2, 3],
    "二": [4, 5, 6],
    "三": [7, 8, 9, 10, 11],
    "四": [12, 13],
    "五": [14, 15, 16],
    "六": [17, 18, 19],
}

UNITS = {  # 责任单位 exactly as the seed writes them (measure 2 keeps its own spelling)
    1: ["区人力资源社会保障局", "区发展改革局"],
    2: ["区农村农业和交通运输局", "区商务局", "区林业局", "格里坪镇"],
    3: ["区经济和信息化局", "区财政局", "区审计局"],
    4: ["区卫生健康局", "区医保局"],
    5: ["区教育和体育局"],
    6: ["区民政局", "区财政局", "区人力资源社会保障局"],
    7: ["区民政局", "区住房城乡建设局", "区文广旅局", "区商务局", "区教育和体育局"],
    8: ["区商务局", "区文广旅局"],
    9: ["区商务局", "区文广旅局", "区教育和体育局"],
    10: ["区商务局", "区文广旅局", "区农业农村和交通运输局"],
    11: ["区商务局", "区文广旅局", "区民政局", "区教育和体育局"],
    12: ["区发展改革局", "区财政局", "区商务局"],
    13: ["区商务局", "市公安局西区分局", "区财政局", "西区税务局", "区文广旅局"],
    14: ["区商务局", "区文广旅局"],
    15: ["区商务局", "区经济和信息化局", "区农业农村和交通运输局", "区文广旅局", "鼎信集团"],
    16: ["区商务局", "区发展改革局", "区卫生健康局", "西区生态环境局"],
    17: ["区人力资源社会保障局", "区教育和体育局", "区总工会"],
    18: ["区商务局", "区农业农村和交通运输局"],
    19: ["区总工会", "区农业农村和交通运输局", "区市场监管局", "区财政局", "区统计局"],
}

# Views another branch adds (trade-in, issue 4); the lead empties this set at merge.
PENDING_SOURCES: set[str] = set()  # every source view has landed


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def test_all_19_measures_in_their_actions(catalog: Catalog) -> None:
    assert [m.number for m in catalog.measures] == list(range(1, 20))
    by_action = {a: [m.number for m in catalog.measures if m.action == a] for a in ACTIONS}
    assert by_action == ACTIONS
    assert catalog.measure(12).title == "加大消费品以旧换新力度"
    assert catalog.measure(7).title == "优化“一老一小”服务供给"
    assert catalog.measure(12).action_title == "推动商品消费更新提升行动"
    assert all(m.kpis for m in catalog.measures)


def test_responsible_units_are_the_seeds(catalog: Catalog) -> None:
    assert {m.number: m.responsible_units for m in catalog.measures} == UNITS


def test_every_numeric_target_of_the_seed(catalog: Catalog) -> None:
    targets = [
        (k.measure_number, k.target.value, k.target.comparator, k.unit)
        for k in catalog.kpis
        if k.target is not None
    ]
    assert sorted(targets) == sorted(EXPECTED_TARGETS)
    assert all(k.kind == "target" and k.seed and k.period for k in catalog.kpis if k.target)


def test_lookups(catalog: Catalog) -> None:
    kpi = catalog.kpi("m19_reports_on_time")
    assert (kpi.target.value, kpi.target.comparator, kpi.pace.kind) == (99, ">=", "level")
    assert kpi.feed == "complaints_12315"
    assert catalog.kpi("m11_consumption_driven").scale == pytest.approx(0.0001)
    assert [m.number for m in catalog.measures_for_feed("employment_monthly")] == [1, 6]
    assert [m.number for m in catalog.measures_for_feed("complaints_12315")] == [19]
    assert [m.number for m in catalog.measures_for_feed("tradein_transactions")] == [12]
    assert 13 in [m.number for m in catalog.measures_for_feed("retail_monthly")]
    assert 15 in [m.number for m in catalog.measures_for_feed("ecommerce_monthly")]
    ledgers = {m.number for m in catalog.measures_for_feed("work_ledgers")}
    assert {2, 8, 9, 10, 11, 12, 13, 14, 16} <= ledgers
    assert catalog.measures_for_feed("no_such_feed") == []
    with pytest.raises(KeyError):
        catalog.kpi("nope")
    with pytest.raises(KeyError):
        catalog.measure(20)
    assert load_catalog() is catalog  # cached


def test_milestones_and_indicators(catalog: Catalog) -> None:
    milestones = [k for k in catalog.kpis if k.kind == "milestone"]
    tasks = {k.task for k in milestones}
    assert {"火红年华景区创建4A级旅游景区", "苏铁山药申报国家名特优新农产品"} <= tasks
    assert all(k.source == "mart_ledger_milestones_monthly" for k in milestones)
    indicators = {k.id: k for k in catalog.kpis if k.kind == "indicator"}
    assert indicators["m19_retail_sales_total"].yoy == "published"
    assert indicators["m19_online_retail"].yoy == "published"
    assert indicators["m12_tradein_sales"].yoy == "computed"
    assert all(k.target is None for k in indicators.values())


def test_cli_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["measures"]) == 19
    m1 = data["measures"][0]
    assert {"number", "action", "title", "responsible_units", "kpis"} <= set(m1)
    assert m1["number"] == 1 and m1["action"] == "一"
    kpi = m1["kpis"][0]
    assert {"id", "name", "unit", "period", "target"} <= set(kpi)
    assert kpi["target"] == {"value": 3, "comparator": ">="}
    assert isinstance(kpi["target"]["value"], int)
    comparators = {
        k["target"]["comparator"] for m in data["measures"] for k in m["kpis"] if k["target"]
    }
    assert comparators == {">=", ">", "="}
    assert main(["catalog"]) == 0
    text = capsys.readouterr().out
    assert "（19）深入健全消费保障体系" in text and "六、改善优化消费环境行动" in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["measures"][0]["kpis"][0]["target"].update(comparator="≥"), "target"),
        (lambda d: d["measures"][0]["kpis"][0].update(aggregation="avg"), "aggregation"),
        (lambda d: d["measures"][0]["kpis"][0].update(feed="nope"), "unknown feed"),
        (lambda d: d["measures"][1]["kpis"][0].pop("task"), "task"),
        (lambda d: d["measures"][0]["kpis"][1].update(id="m01_job_fairs"), "duplicate"),
        (lambda d: d["measures"].pop(4), "numbered"),
        (lambda d: d["status"].update(lagging=0.99), "thresholds"),
    ],
)
def test_a_broken_catalog_fails_at_load(change, message: str) -> None:
    import yaml

    from consumption_monitor.indicators.catalog import CATALOG_FILE

    data = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))
    change(data)
    with pytest.raises(CatalogError, match=message):
        parse_catalog(data)


def test_every_source_exists_in_a_migrated_warehouse(warehouse_url: str) -> None:
    """Every KPI's view is there after ``cm migrate`` and has the columns the KPI reads."""
    from consumption_monitor.warehouse.db import engine_for
    from consumption_monitor.warehouse.migrate import upgrade

    catalog = load_catalog()
    upgrade(warehouse_url)
    inspector = inspect(engine_for(warehouse_url))
    views = set(inspector.get_view_names())
    assert catalog.sources() - PENDING_SOURCES <= views, "missing source views"
    assert not PENDING_SOURCES & views, "a pending source landed: empty PENDING_SOURCES"
    for kpi in catalog.kpis:
        if not kpi.source or kpi.source in PENDING_SOURCES:
            continue
        have = {c["name"] for c in inspector.get_columns(kpi.source)}
        wanted = {*kpi.columns.values(), *kpi.filter, "period"}
        if kpi.panel:
            wanted.add(kpi.panel)
        if kpi.aggregation == "milestone":
            wanted |= {"task", "status", "status_date"}
        assert wanted <= have, f"{kpi.id}: {kpi.source} lacks {wanted - have}"
