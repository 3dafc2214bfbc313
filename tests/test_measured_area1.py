"""Measured criteria of the 2025 catalogue's area 1 (节能降碳产业, items 1.x.x): golden projects
from the official text (taxonomies/sources/cn_gfsp_2025_criteria_area1.yaml), one passing and one
failing per item, and every field declared there read by a criterion."""

from __future__ import annotations

import csv
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from catalogue import item, results

SOURCES = Path(__file__).resolve().parents[1] / "taxonomies" / "sources"
AREA1 = SOURCES / "cn_gfsp_2025_criteria_area1.yaml"
R = "cn_gfsp_2025__"


@cache
def area1() -> dict[str, Any]:
    return yaml.safe_load(AREA1.read_text(encoding="utf-8"))


def status(out: dict[str, dict[str, Any]], project: str) -> tuple[str, list[str] | None]:
    return out[project][R + "status"], out[project][R + "missing"]


def p(project_id: str, code: str, industry: str, **fields: Any) -> dict[str, Any]:
    return {
        "project_id": project_id,
        "cn_gfsp_2025_item": code,
        "industry_code": industry,
        **fields,
    }


# ---- 1.1.1 节能锅炉制造, 3411: 符合下列条件之一 --------
def test_1_1_1_boiler_gb24500_grade_or_tsg91_target() -> None:
    """「1.锅炉能效达到《锅炉节能环保技术规程》（TSG91）规定的热效率目标值水平。2.锅炉能效达到
    《工业锅炉能效限定值及能效等级》（GB 24500）规定的 1 级能效水平。」 (one of), and the 备注."""
    remark = {"cn_gfsp_1_1_1_remark_met": True}
    out = results(
        p("grade1", "1.1.1", "C3411", gb24500_grade=1, **remark),
        p("tsg91", "1.1.1", "C3411", tsg91_efficiency_target_met=True, **remark),
        p("grade2", "1.1.1", "C3411", gb24500_grade=2, tsg91_efficiency_target_met=False, **remark),
        p("grade2-tsg-unknown", "1.1.1", "C3411", gb24500_grade=2, **remark),
        p("gasifier", "1.1.1", "C3521", gb24500_grade=1, **remark),
    )
    assert status(out, "grade1") == ("eligible", None)
    assert status(out, "tsg91") == ("eligible", None)
    assert status(out, "grade2") == ("not_eligible", None)
    # grade 2 fails GB 24500 but TSG 91 is another route: asked
    assert status(out, "grade2-tsg-unknown") == (
        "insufficient_data",
        ["tsg91_efficiency_target_met"],
    )
    # 3521 (coal gasifiers) is not asked the boiler grade, only its own (qualitative) condition
    assert status(out, "gasifier") == ("insufficient_data", ["cn_gfsp_1_1_1_met"])


# ---- 1.1.3 节能内燃机制造: 依据产品类型，分别符合下列条件 --------
def test_1_1_3_engines_gbt38750_by_type_and_power() -> None:
    """3412: 「1. 560kW 以下非道路用柴油机制造。设备能效不低于《往复式内燃机能效评定规范 第 1 部分：
    柴油机》（GB/T38750.1）规定的 1 级能效水平。2. 30kW 以下通用汽油机等内燃机制造。…」"""
    out = results(
        p("diesel-ok", "1.1.3", "C3412", gbt38750_1_grade=1, engine_rated_power_kw=300),
        p("diesel-grade2", "1.1.3", "C3412", gbt38750_1_grade=2, engine_rated_power_kw=300),
        p("diesel-too-big", "1.1.3", "C3412", gbt38750_1_grade=1, engine_rated_power_kw=600),
        p("diesel-no-power", "1.1.3", "C3412", gbt38750_1_grade=1),
        p("gasoline-ok", "1.1.3", "C3412", gbt38750_2_grade=1, engine_rated_power_kw=20),
        p("car-gasoline", "1.1.3", "C3620", gbt38750_2_grade=1),  # no power limit on 3620
        p("car-diesel-grade3", "1.1.3", "C3620", gbt38750_1_grade=3),
        p("nothing", "1.1.3", "C3620"),
    )
    assert status(out, "diesel-ok") == ("eligible", None)
    assert status(out, "diesel-grade2") == ("not_eligible", None)
    assert status(out, "diesel-too-big") == ("not_eligible", None)
    assert status(out, "diesel-no-power") == (
        "insufficient_data",
        ["engine_rated_power_kw", "gbt38750_2_grade"],
    )
    assert status(out, "gasoline-ok") == ("eligible", None)
    assert status(out, "car-gasoline") == ("eligible", None)
    assert status(out, "car-diesel-grade3") == ("not_eligible", None)
    assert status(out, "nothing") == (
        "insufficient_data",
        ["gbt38750_1_grade", "gbt38750_2_grade"],
    )


# ---- 1.1.5 节能型泵及真空设备制造 --------
def test_1_1_5_pumps_by_type() -> None:
    """3441: 「2.石油化工离心泵能效不低于《石油化工离心泵能效限定值及能效等级》（GB 32284）规定的
    1 级能效水平。」; 「1.清水离心泵能效不低于…（GB 19762）规定的节能评价值水平。」"""
    out = results(
        p("petrochem-ok", "1.1.5", "C3441", gb32284_grade=1),
        p("petrochem-grade2", "1.1.5", "C3441", gb32284_grade=2),
        p("clean-water-ok", "1.1.5", "C3441", gb19762_evaluation_value_met=True),
        p("clean-water-below", "1.1.5", "C3441", gb19762_evaluation_value_met=False),
        # 3499: 「1.…能效达到能效有关规范标准 1级能效水平的真空干燥设备。」 (one of)
        p("dryer-ok", "1.1.5", "C3499", equipment_energy_efficiency_grade=1),
        p(
            "dryer-grade2",
            "1.1.5",
            "C3499",
            equipment_energy_efficiency_grade=2,
            equipment_industry_leading_efficiency=False,
        ),
    )
    assert status(out, "petrochem-ok") == ("eligible", None)
    assert status(out, "petrochem-grade2") == ("not_eligible", None)
    assert status(out, "clean-water-ok") == ("eligible", None)
    assert status(out, "clean-water-below") == ("not_eligible", None)
    assert status(out, "dryer-ok") == ("eligible", None)
    assert status(out, "dryer-grade2") == ("not_eligible", None)


# ---- 1.1.7 节能电动机、微特电机制造 (3812 / 3813 / 3819) --------
def test_1_1_7_motors_gb18613() -> None:
    """「1.中小型及小功率三相异步、单相异步电动机能效不低于《电动机能效限定值及能效等级》
    （GB 18613）规定的 1 级能效水平。」"""
    out = results(
        p("grade1", "1.1.7", "C3812", gb18613_grade=1),
        p("grade2", "1.1.7", "C3813", gb18613_grade=2),
        p("two-types", "1.1.7", "C3819", gb18613_grade=1, gb30253_grade=2),
        p("ask", "1.1.7", "C3812"),
    )
    assert status(out, "grade1") == ("eligible", None)
    assert status(out, "grade2") == ("not_eligible", None)
    assert status(out, "two-types") == ("not_eligible", None)  # each type meets its own
    assert status(out, "ask") == (
        "insufficient_data",
        [
            "gb18613_grade",
            "gb30253_grade",
            "gb30254_grade",
            "equipment_energy_efficiency_grade",
            "cn_gfsp_1_1_7_met",
        ],
    )


# ---- 1.1.9 变压器 / 交流接触器 --------
def test_1_1_9_transformer_and_contactor_rows() -> None:
    """3821: 「1.三相电力变压器能效不低于《电力变压器能效限定值及能效等级》（GB 20052）规定的 1 级
    能效水平。」 3823: 「1.交流接触器能效不低于…（GB 21518）规定的 1 级能效水平。」"""
    out = results(
        p("transformer-ok", "1.1.9", "C3821", gb20052_grade=1),
        p("transformer-grade3", "1.1.9", "C3821", gb20052_grade=3),
        p("contactor-ok", "1.1.9", "C3823", gb21518_grade=1),
        p("contactor-grade2", "1.1.9", "C3823", gb21518_grade=2),
        # the transformer grade is not a condition of the 3823 row
        p("contactor-with-transformer-grade", "1.1.9", "C3823", gb21518_grade=1, gb20052_grade=3),
    )
    assert status(out, "transformer-ok") == ("eligible", None)
    assert status(out, "transformer-grade3") == ("not_eligible", None)
    assert status(out, "contactor-ok") == ("eligible", None)
    assert status(out, "contactor-grade2") == ("not_eligible", None)
    assert status(out, "contactor-with-transformer-grade") == ("eligible", None)


# ---- 1.1.12 矿山机械: 节能评价值或 2 级及以上 --------
def test_1_1_12_mining_machinery_grade_2_or_better() -> None:
    """3511: 「1.对于已颁布国家、行业能效有关规范标准的设备，设备能效水平达到节能评价值或 2 级及以上
    能效水平。」 (one of three)"""
    no_other = {"equipment_industry_leading_efficiency": False, "cn_gfsp_1_1_12_met": False}
    out = results(
        p("grade2", "1.1.12", "C3511", equipment_energy_efficiency_grade=2),
        p(
            "grade3",
            "1.1.12",
            "C3511",
            equipment_energy_efficiency_grade=3,
            energy_saving_evaluation_value_met=False,
            **no_other,
        ),  # fmt: skip
        p("grade3-ask", "1.1.12", "C3511", equipment_energy_efficiency_grade=3),
    )
    assert status(out, "grade2") == ("eligible", None)
    assert status(out, "grade3") == ("not_eligible", None)
    assert status(out, "grade3-ask") == (
        "insufficient_data",
        ["energy_saving_evaluation_value_met", "equipment_industry_leading_efficiency",
         "cn_gfsp_1_1_12_met"],
    )  # fmt: skip


# ---- 1.1.13 商用设备: 投影机, 计算机, 制冷空调 --------
def test_1_1_13_commercial_equipment() -> None:
    """3472: 「投影机能效不低于《投影机能效限定值及能效等级》（GB 32028）规定的 1 级能效水平。」
    3464: 「采用消耗臭氧潜能值（ODP）为 0 和全球升温潜能值（GWP）相对较低的制冷剂」, 备注 HFC/HFO,
    「2.冷水机组能效不低于《热泵和冷水机组能效限定值及能效等级》（GB 19577）规定的 1 级能效
    水平。」"""
    chiller = {"refrigerant_odp": 0, "refrigerant_low_gwp": True}
    out = results(
        p("projector-ok", "1.1.13", "C3472", gb32028_grade=1),
        p("projector-grade2", "1.1.13", "C3472", gb32028_grade=2),
        p("computer-ok", "1.1.13", "C3911", gb28380_grade=1),
        p("chiller-ok", "1.1.13", "C3464", gb19577_grade=1, **chiller),
        p(
            "chiller-odp",
            "1.1.13",
            "C3464",
            gb19577_grade=1,
            refrigerant_odp=0.05,
            refrigerant_low_gwp=True,
        ),  # fmt: skip
        p("chiller-gwp-ask", "1.1.13", "C3464", gb19577_grade=1, refrigerant_odp=0),
    )
    assert status(out, "projector-ok") == ("eligible", None)
    assert status(out, "projector-grade2") == ("not_eligible", None)
    assert status(out, "computer-ok") == ("eligible", None)
    assert status(out, "chiller-ok") == ("eligible", None)
    assert status(out, "chiller-odp") == ("not_eligible", None)
    assert status(out, "chiller-gwp-ask") == ("insufficient_data", ["refrigerant_low_gwp"])


# ---- 1.1.14 家用电器 --------
def test_1_1_14_household_appliances_and_the_refrigerant_exemption() -> None:
    """3852: 「制冷量≤14000W 家用空气调节器制造活动中采用消耗臭氧潜能值（ODP）为 0 和全球升温潜能值
    （GWP）相对较低的制冷剂」, 「1.房间空调器达到《房间空气调节器能效限定值及能效等级》（GB 21455）
    规定的 1 级能效水平。」; 备注: 「空气净化器…等不使用制冷剂的设备、产品不受…的条件限制。」"""
    ac = {"refrigerant_odp": 0, "refrigerant_low_gwp": True}
    out = results(
        p(
            "room-ac",
            "1.1.14",
            "C3852",
            gb21455_grade=1,
            air_conditioner_cooling_capacity_w=3500,
            **ac,
        ),  # fmt: skip
        p(
            "room-ac-grade2",
            "1.1.14",
            "C3852",
            gb21455_grade=2,
            air_conditioner_cooling_capacity_w=3500,
            **ac,
        ),  # fmt: skip
        p(
            "big-ac",
            "1.1.14",
            "C3852",
            gb21455_grade=1,
            air_conditioner_cooling_capacity_w=16000,
            **ac,
        ),  # fmt: skip
        p("purifier", "1.1.14", "C3852", gb36893_grade=1, refrigerant_free_product=True),
        p("tv", "1.1.14", "C3951", gb24850_grade=1),
        p("tv-grade2", "1.1.14", "C3951", gb24850_grade=2),
        p("fridge-ok", "1.1.14", "C3851", gb12021_2_grade=1, **ac),
    )
    assert status(out, "room-ac") == ("eligible", None)
    assert status(out, "room-ac-grade2") == ("not_eligible", None)
    assert status(out, "big-ac") == ("not_eligible", None)
    assert status(out, "purifier") == ("eligible", None)  # the 备注 exemption
    assert status(out, "tv") == ("eligible", None)
    assert status(out, "tv-grade2") == ("not_eligible", None)
    assert status(out, "fridge-ok") == ("eligible", None)
    exempt = next(c for c in item("1.1.14").criteria if c.id == "refrigerant-odp0-low-gwp-ac")
    assert "exemption in the 备注 of GB/T row 3852" in (exempt.threshold or "")


# ---- 1.1.15 高效照明: LED 灯具, 大尺寸 ≥ 200 mm --------
def test_1_1_15_led_luminaires_and_wafer_size() -> None:
    """3872: 「1.《室内照明用 LED 产品能效限定值及能效等级》（GB 30255）规定的 1 级能效水平。」;
    3979: 「大尺寸（直径≥200mm）LED 外延片、LED 芯片产品制造活动」"""
    out = results(
        p("indoor-led", "1.1.15", "C3872", gb30255_grade=1),
        p("indoor-led-grade2", "1.1.15", "C3872", gb30255_grade=2),
        p("wafer-200", "1.1.15", "C3979", led_substrate_diameter_mm=200, cn_gfsp_1_1_15_met=True),
        p("wafer-150", "1.1.15", "C3979", led_substrate_diameter_mm=150, cn_gfsp_1_1_15_met=True),
    )
    assert status(out, "indoor-led") == ("eligible", None)
    assert status(out, "indoor-led-grade2") == ("not_eligible", None)
    assert status(out, "wafer-200") == ("eligible", None)
    assert status(out, "wafer-150") == ("not_eligible", None)


# ---- 1.1.16 炉具灶具 / 1.1.17 热交换器 / 1.2.5 港口设备 --------
def test_1_1_16_1_1_17_1_2_5() -> None:
    """1.1.16: 「4.家用燃气灶具能效不低于《家用燃气灶具能效限定值及能效等级》（GB 30720）规定的 1 级
    能效水平。」 1.1.17 (3463): 「1.热交换器（换热器）能效不低于《热交换器能效测试与评价规则》
    （TSG R0010）规定的 1 级能效水平。」 1.2.5 (3432): 「1.设备能效水平达到有关设备国家、行业能效
    等级及评定方法等规范标准规定的 1 级能效值。」"""
    out = results(
        p("cooker", "1.1.16", "C3861", gb30720_grade=1),
        p("cooker-grade2", "1.1.16", "C3861", gb30720_grade=2),
        p("exchanger", "1.1.17", "C3463", tsg_r0010_grade=1, cn_gfsp_1_1_17_met=True),
        p("exchanger-grade2", "1.1.17", "C3463", tsg_r0010_grade=2, cn_gfsp_1_1_17_met=True),
        p("exchanger-ask", "1.1.17", "C3463", tsg_r0010_grade=1),
        p("crane", "1.2.5", "C3432", equipment_energy_efficiency_grade=1),
        p("crane-grade2", "1.2.5", "C3432", equipment_energy_efficiency_grade=2),
    )
    assert status(out, "cooker") == ("eligible", None)
    assert status(out, "cooker-grade2") == ("not_eligible", None)
    assert status(out, "exchanger") == ("eligible", None)
    assert status(out, "exchanger-grade2") == ("not_eligible", None)
    # the row's description (用于余热回收的换热器…) stays an attestation
    assert status(out, "exchanger-ask") == ("insufficient_data", ["cn_gfsp_1_1_17_met"])
    assert status(out, "crane") == ("eligible", None)
    assert status(out, "crane-grade2") == ("not_eligible", None)


# ---- 1.3.5 绿色照明改造 / 1.4.1 节能降碳改造 --------
def test_1_3_5_lighting_retrofit_and_1_4_1_energy_quota() -> None:
    """1.3.5: 「3.高压钠灯照明灯具达到《高压钠灯能效限定值及能效等级》（GB 19573）规定的 1 级能效
    水平。」 1.4.1: 「1.设备、装置或设施产出产品的单位产品能耗指标值达到相应行业产品能源消耗限额标准
    规定的先进值或能耗等级 1 级值水平。」 (one of)"""
    rest = {"cn_gfsp_1_3_5_met": True}
    out = results(
        p("hps", "1.3.5", "E4861", gb19573_grade=1, **rest),
        p("hps-grade2", "1.3.5", "E4861", gb19573_grade=2, **rest),
        p("hps-and-led", "1.3.5", "E4861", gb19573_grade=1, gb30255_grade=1, **rest),
        p("retrofit-grade1", "1.4.1", "E4861", energy_quota_grade=1),
        p(
            "retrofit-grade2",
            "1.4.1",
            "E4861",
            energy_quota_grade=2,
            energy_quota_advanced_value_met=False,
            industrial_efficiency_benchmark_met=False,
            cn_gfsp_1_4_1_met=False,
        ),  # fmt: skip
        p("retrofit-benchmark", "1.4.1", "E4861", industrial_efficiency_benchmark_met=True),
    )
    assert status(out, "hps") == ("eligible", None)
    assert status(out, "hps-grade2") == ("not_eligible", None)
    assert status(out, "hps-and-led") == ("eligible", None)
    assert status(out, "retrofit-grade1") == ("eligible", None)
    assert status(out, "retrofit-grade2") == ("not_eligible", None)
    assert status(out, "retrofit-benchmark") == ("eligible", None)


# ---- the 1.1.11 engine row and the rows around it --------
def test_1_1_11_engine_row_only_is_graded() -> None:
    """3412: 「1.560kW 以下的非道路用柴油机制造。设备能效不低于《往复式内燃机能效评定规范
    第 1 部分：柴油机》（GB/T 38750.1）规定的 1 级能效水平。」; tractors (3571) are not asked
    the grade."""
    out = results(
        p("engine", "1.1.11", "C3412", gbt38750_1_grade=1, engine_rated_power_kw=100),
        p("engine-grade2", "1.1.11", "C3412", gbt38750_1_grade=2, engine_rated_power_kw=100),
        p("tractor", "1.1.11", "C3571", gbt38750_1_grade=2),
    )
    assert status(out, "engine") == ("eligible", None)
    assert status(out, "engine-grade2") == ("not_eligible", None)
    assert status(out, "tractor") == (
        "insufficient_data",
        ["cn_gfsp_1_1_11_met", "cn_gfsp_1_1_11_remark_met"],
    )


# ---- the file itself --------
AREA1_ITEMS = [
    "1.1.1", "1.1.2", "1.1.3", "1.1.5", "1.1.6", "1.1.7", "1.1.8", "1.1.9", "1.1.11", "1.1.12",
    "1.1.13", "1.1.14", "1.1.15", "1.1.16", "1.1.17", "1.1.18", "1.2.5", "1.3.5", "1.4.1",
]  # fmt: skip

AREA1_FIELDS = [
    # graded standards (number, 1 is best)
    "gb24500_grade", "gbt38750_1_grade", "gbt38750_2_grade", "gb32284_grade", "gb32030_grade",
    "gb19153_grade", "gb35971_grade", "gb18613_grade", "gb30253_grade", "gb30254_grade",
    "gb19761_grade", "gb20052_grade", "gb28736_grade", "gb21518_grade", "gb21521_grade",
    "gb32028_grade", "gb28380_grade", "gb26920_grade", "gb19577_grade", "gb19576_grade",
    "gb12021_2_grade", "gb21455_grade", "gb21454_grade", "gb36893_grade", "gb12021_9_grade",
    "gb12021_6_grade", "gb12021_4_grade", "gb24850_grade", "gb30255_grade", "gb37478_grade",
    "gb38450_grade", "gb30531_grade", "gb20665_grade", "gb30720_grade", "tsg_r0010_grade",
    "gb19573_grade", "gb20054_grade", "energy_quota_grade",
    # shared with area 2-9
    "equipment_energy_efficiency_grade", "equipment_industry_leading_efficiency",
    # levels that are not grades, and quantities
    "energy_quota_advanced_value_met", "industrial_efficiency_benchmark_met",
    "tsg91_efficiency_target_met", "gb19762_evaluation_value_met", "gb28381_evaluation_value_met",
    "gb31276_evaluation_value_met", "energy_saving_evaluation_value_met", "refrigerant_low_gwp",
    "refrigerant_free_product", "engine_rated_power_kw", "air_conditioner_cooling_capacity_w",
    "led_substrate_diameter_mm", "blowing_agent_odp",
    # attestations of the qualitative rest and the 备注
    "cn_gfsp_1_1_1_met", "cn_gfsp_1_1_1_remark_met", "cn_gfsp_1_1_2_met", "cn_gfsp_1_1_5_met",
    "cn_gfsp_1_1_7_met", "cn_gfsp_1_1_9_met", "cn_gfsp_1_1_11_met", "cn_gfsp_1_1_11_remark_met",
    "cn_gfsp_1_1_12_met", "cn_gfsp_1_1_15_met", "cn_gfsp_1_1_16_met",
    "cn_gfsp_1_1_17_met", "cn_gfsp_1_1_18_met", "cn_gfsp_1_2_5_met", "cn_gfsp_1_3_5_met",
    "cn_gfsp_1_4_1_met",
]  # fmt: skip


def test_every_declared_field_is_listed_and_read() -> None:
    declared = [f["name"] for f in area1()["fields"]]
    assert sorted(declared) == sorted(AREA1_FIELDS)
    assert sorted(area1()["items"]) == sorted(AREA1_ITEMS)
    reads: set[str] = set()
    for code in AREA1_ITEMS:
        for criterion in item(code).criteria:
            reads |= set(re.findall(r"[a-z_][a-z0-9_]*", criterion.condition))
    assert not set(declared) - reads
    for field in area1()["fields"]:
        desc = field["description"]
        assert desc["zh"] and desc["en"], field["name"]
        if field["name"].endswith("_grade"):
            assert field["type"] == "number" and "1" in desc["en"], field["name"]


@cache
def table() -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    with (SOURCES / "cn_gfsp_2025_items.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            out.setdefault(row["code"], []).append(row)
    return out


@pytest.mark.parametrize("code", AREA1_ITEMS)
def test_quotes_are_verbatim_from_the_rows_they_apply_to(code: str) -> None:
    """text.zh is a verbatim part of the 条件/标准 or 备注 of every row in applies_to."""
    for criterion in area1()["items"][code]["criteria"]:
        assert criterion["verification"] == "verified"
        codes = criterion.get("applies_to", {}).get("industry_codes")
        rows = [r for r in table()[code] if codes is None or r["industry_code"] in codes]
        assert rows, (code, criterion["id"])
        for row in rows:
            assert criterion["text"]["zh"] in row["conditions_zh"] + row["remarks_zh"], (
                code,
                criterion["id"],
            )
        assert criterion["clause"].startswith(f"绿色金融支持项目目录（2025年版） {code} ")
