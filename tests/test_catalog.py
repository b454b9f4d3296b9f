"""The measure catalog against the seed: all 19 measures, every numeric target, sources."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
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


def test_m11_counts_every_consumption_event_type_and_says_so(catalog: Catalog) -> None:
    """The plan says 各类活动: every event type of the ledger but the job fairs, stated in
    the catalog (scope) for both KPIs of measure 11."""
    from consumption_monitor.feeds.spec import load_feed

    columns = load_feed("work_ledgers").stream("events").columns
    types = set(next(c for c in columns if c.name == "event_type").choices) - {"招聘会"}
    for kpi_id in ("m11_promotion_events", "m11_consumption_driven"):
        kpi = catalog.kpi(kpi_id)
        assert set(kpi.filter["event_type"]) == types
        assert "各类活动" in kpi.scope and all(t in kpi.scope for t in types)


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
        (
            lambda d: d["measures"][0]["kpis"][0].update(aggregation="milestone", columns={}),
            "milestone KPI names its ledger task",
        ),
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


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t["tasks"][0].pop("seed"), "seed"),
        (lambda t: t["tasks"][0].update(units=["区商务局"]), "units"),
        (lambda t: t["tasks"][0].update(measure=20, id="m20_x"), "unknown measures"),
        (lambda t: t["tasks"][0].update(measure=2), "m<measure"),
        (lambda t: t["tasks"][1].update(id="m01_stable_jobs"), "duplicate"),
        (lambda t: t["tasks"][0].update(task="任务" * 65), "128"),
    ],
)
def test_a_broken_task_fails_at_load(change, message: str) -> None:
    from consumption_monitor.indicators.catalog import CATALOG_FILE
    from consumption_monitor.indicators.plan_tasks import read_tasks

    data = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))
    tasks = read_tasks()
    change(tasks)
    with pytest.raises(CatalogError, match=message):
        parse_catalog(data, tasks)


# --- every task of the plan (issue 15 §5) ---------------------------------------------------

PLAN = Path(__file__).parent / "data" / "plan.txt"
NUMERALS = "一二三四五六七八九"


def _number(numeral: str) -> int:
    if numeral.startswith("十"):
        return 10 + (NUMERALS.index(numeral[1]) + 1 if len(numeral) > 1 else 0)
    return NUMERALS.index(numeral) + 1


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def plan_bodies() -> dict[int, str]:
    """Each measure's body: its text after the title sentence up to （责任单位/责任部门：,
    line breaks and spaces removed (the plan breaks lines inside sentences)."""
    text = _squeeze(PLAN.read_text(encoding="utf-8"))
    text = text[text.index("一、促进城乡居民增收行动") :]
    parts = re.split(r"（([一二三四五六七八九十]+)）", text)
    bodies = {}
    for numeral, chunk in zip(parts[1::2], parts[2::2], strict=True):
        chunk = re.split(r"（责任(?:单位|部门)：", chunk)[0]
        bodies[_number(numeral)] = chunk.partition("。")[2]
    return bodies


def task_sentences(body: str) -> list[str]:
    """The clauses of a body: split on 。，； (none inside the plan's quotes or brackets)."""
    return [c for c in re.split(r"[。，；]", body) if c]


def _quoted(clause: str, seeds: list[str]) -> bool:
    """A seed contains the clause, or seeds quoting parts of it leave only 、 (two targets
    in one clause: 儿科全覆盖、基层医疗卫生机构覆盖率超 90%)."""
    if any(clause in s for s in seeds):
        return True
    rest = clause
    for seed in seeds:
        rest = rest.replace(seed, "")
    return rest.strip("、") == ""


def test_the_plan_text_splits_into_19_measures_and_their_clauses() -> None:
    bodies = plan_bodies()
    assert sorted(bodies) == list(range(1, 20))
    clauses = [c for b in bodies.values() for c in task_sentences(b)]
    assert len(clauses) == 213
    assert "实施农产品“三品一标”提升行动" in task_sentences(bodies[2])
    assert "推行在线消费纠纷和解、线下无理由退货、赔偿先付等做法" in task_sentences(bodies[19])
    assert not any("责任单位" in c or "责任部门" in c or "行动方案" in c for c in clauses)
    assert not _quoted("扩大生育保险覆盖范围", ["生育保险"])  # a part is not the clause
    assert _quoted("甲、乙", ["甲", "乙"]) and not _quoted("甲、乙", ["甲"])


def test_every_task_sentence_of_the_plan_is_tracked(catalog: Catalog) -> None:
    """Each clause of each measure is quoted by a KPI seed of its measure, covered by a
    named KPI of the measure, or excluded with a reason; every seed is a verbatim quote;
    each task is a milestone read from the ledger with its 责任单位."""
    from consumption_monitor.indicators.plan_tasks import read_tasks

    bodies = plan_bodies()
    extra = read_tasks()
    untracked = []
    for number, body in bodies.items():
        measure = catalog.measure(number)
        seeds = [_squeeze(k.seed) for k in measure.kpis if k.seed]
        assert all(s in body for s in seeds), [s for s in seeds if s not in body]
        named = {
            _squeeze(e["clause"])
            for e in extra["covered_by"]
            if e["measure"] == number and e["kpi"] in {k.id for k in measure.kpis}
        }
        excluded = {
            _squeeze(e["clause"])
            for e in extra["not_tasks"]
            if e["measure"] == number and e["reason"]
        }
        for clause in task_sentences(body):
            if not _quoted(clause, seeds) and clause not in named | excluded:
                untracked.append((number, clause))
        assert (named | excluded) <= set(task_sentences(body)), number  # no stale entries
    assert untracked == []
    tasks = [k for k in catalog.kpis if k.kind == "milestone"]
    assert len(tasks) == 75 and all(k.seed and k.units and k.task for k in tasks)
    assert {k.source for k in tasks} == {"mart_ledger_milestones_monthly"}
    names = {k.task for k in tasks}
    for word in ("三品一标", "农业博览会", "生育保险", "助学贷款", "老年助餐", "普惠托育",
                 "美食地图", "一刻钟", "苏铁自然遗产保护展示区", "二手车", "数电发票",
                 "错峰休假", "工会消费券", "无理由退货"):  # fmt: skip
        assert any(word in n for n in names), word


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
