with events as (
    select * from core_ledger_events
),

openings as (
    select * from core_ledger_openings
),

product_sales as (
    select * from core_ledger_product_sales
),

plan_items as (
    select '消费促进活动' as kind, 11 as measure_no, '消费促进活动' as item, '场' as unit, 20.0 as target_year
    union all select '大型文旅活动', 9, '大型文旅活动', '场', 2.0
    union all select '汽车展销', 13, '汽车展销活动', '场', 5.0
    union all select '首发首秀首展', 14, '首发首秀首展活动', '场', 3.0
    union all select '家电五进', 12, '工会团购、家电五进活动', '场', 10.0
    union all select '工会团购', 12, '工会团购、家电五进活动', '场', 10.0
    union all select '招聘会', 1, '公共就业招聘会', '场', 3.0
    union all select '区域首店', 14, '区域首店、品牌连锁店引进', '家', 10.0
    union all select '品牌连锁店', 14, '区域首店、品牌连锁店引进', '家', 10.0
    union all select '烟火小店', 8, '培育烟火小店', '家', 10.0
    union all select '打卡消费场景', 9, '市级来攀必打卡消费新场景', '个', 2.0
    union all select '运动IP', 9, '高能级运动IP', '个', 1.0
    union all select '24小时便利店', 8, '24小时便利店', '家', null
    union all select '智能回收站点', 16, '智能回收站点', '个', null
),

counted as (
    select substr(period, 1, 4) as year, event_type as kind, 1.0 as amount from events
    union all
    select substr(period, 1, 4), opening_type, 1.0 from openings
),

by_item as (
    select
        counted.year,
        plan_items.measure_no,
        plan_items.item,
        plan_items.unit,
        sum(counted.amount) as actual,
        max(plan_items.target_year) as target_year
    from counted
    inner join plan_items on plan_items.kind = counted.kind
    group by counted.year, plan_items.measure_no, plan_items.item, plan_items.unit
),

sales_by_year as (
    select
        substr(period, 1, 4) as year,
        10 as measure_no,
        '特色文创产品销售额' as item,
        '万元' as unit,
        sum(sales_month) as actual,
        5.0 as target_year
    from product_sales
    group by substr(period, 1, 4)
),

all_items as (
    select * from by_item
    union all
    select * from sales_by_year
),

final as (
    select
        year,
        measure_no,
        item,
        unit,
        actual,
        target_year,
        round(actual * 100.0 / nullif(target_year, 0), 2) as completion_pct,
        case
            when target_year is null then 'no_target'
            when actual >= target_year then 'achieved'
            else 'in_progress'
        end as status
    from all_items
)

select * from final
