"""Measured conditions of the 2025 catalogue's level-1 areas 2 to 9 (issue 16): each encoded item
passes and fails on the number its 条件/标准 or 备注 states, quoted from the official text
(taxonomies/sources/cn_gfsp_2025_criteria_area2_9.yaml)."""

from __future__ import annotations

import pytest
from catalogue import R, criterion, item, outcome, results


# ---- 2.1.1 大气污染防治装备制造, row 3591 ----
def test_2_1_1_dust_collector_gb37484_grade() -> None:
    # 「1.烟气除尘设备或装置达到《除尘器能效限定值及能效等级》（GB 37484）规定的 2 级及
    # 以上能效水平。」
    base = {"cn_gfsp_2025_item": "2.1.1", "industry_code": "C3591", "cn_gfsp_2_1_1_met": True}
    out = results(
        {"project_id": "grade-2", **base, "gb37484_grade": 2},
        {"project_id": "grade-3", **base, "gb37484_grade": 3},
        {"project_id": "desulfuriser", **base, "product_is_dust_collector": False},
        {"project_id": "ask", "cn_gfsp_2025_item": "2.1.1", "industry_code": "C3591"},
        {"project_id": "purifier", "cn_gfsp_2025_item": "2.1.1", "industry_code": "C3852"},
    )
    assert outcome(out["grade-2"]) == ("eligible", None)
    assert outcome(out["grade-3"]) == ("not_eligible", None)
    assert outcome(out["desulfuriser"]) == ("eligible", None)  # GB 37484 covers dust collectors
    assert out["ask"][R + "missing"] == [
        "gb37484_grade",
        "product_is_dust_collector",
        "cn_gfsp_2_1_1_met",
    ]
    # row 3852 (air purifiers) has no grade: only its own condition is asked
    assert out["purifier"][R + "missing"] == ["cn_gfsp_2_1_1_met"]
    assert "gb37484-grade2=n/a" in out["purifier"][R + "criteria"]


# ---- 2.1.2 水污染防治装备制造, row 3591 ----
def test_2_1_2_aerator_and_mixer_grades() -> None:
    # 「1.旋转曝气机设备达到《污水处理用旋转曝气机能效限定值及能效等级》（GB37483）规定的 2 级及
    # 以上能效水平。」 「3.潜水推流式搅拌机设备达到《污水处理用潜水推流式搅拌机能效限定值及能效
    # 等级》（GB 37485）规定的 2 级及以上能效水平。」
    base = {"cn_gfsp_2025_item": "2.1.2", "industry_code": "C3591", "cn_gfsp_2_1_2_met": True}
    aerator = {**base, "product_is_submersible_mixer": False}
    mixer = {**base, "product_is_rotary_aerator": False}
    out = results(
        {"project_id": "aerator-1", **aerator, "gb37483_grade": 1},
        {"project_id": "aerator-3", **aerator, "gb37483_grade": 3},
        {"project_id": "mixer-2", **mixer, "gb37485_grade": 2},
        {"project_id": "mixer-3", **mixer, "gb37485_grade": 3},
        {
            "project_id": "membrane",
            **base,
            "product_is_rotary_aerator": False,
            "product_is_submersible_mixer": False,
        },
    )
    assert outcome(out["aerator-1"]) == ("eligible", None)
    assert outcome(out["aerator-3"]) == ("not_eligible", None)
    assert outcome(out["mixer-2"]) == ("eligible", None)
    assert outcome(out["mixer-3"]) == ("not_eligible", None)
    assert outcome(out["membrane"]) == ("eligible", None)


# ---- 2.3.1 水体保护及地下水污染防治, row 7721 ----
def test_2_3_1_class_iii_water_after_treatment() -> None:
    # 「1.治理后水质达到或优于Ⅲ类水质的江河湖库水污染治理活动。」 (one of the row's activities)
    base = {"cn_gfsp_2025_item": "2.3.1", "industry_code": "N7721", "cn_gfsp_2_3_1_met": True}
    out = results(
        {"project_id": "class-ii", **base, "surface_water_quality_class": 2},
        {"project_id": "class-iii", **base, "surface_water_quality_class": 3},
        {
            "project_id": "class-iv",
            **base,
            "surface_water_quality_class": 4,
            "cn_gfsp_2_3_1_other_activity": False,
        },
        {"project_id": "backup-source", **base, "cn_gfsp_2_3_1_other_activity": True},
        {"project_id": "ask", "cn_gfsp_2025_item": "2.3.1", "industry_code": "N7721"},
    )
    assert outcome(out["class-ii"]) == ("eligible", None)
    assert outcome(out["class-iii"]) == ("eligible", None)
    assert outcome(out["class-iv"]) == ("not_eligible", None)
    assert outcome(out["backup-source"]) == ("eligible", None)  # 「3.备用水源建设活动。」
    assert out["ask"][R + "missing"] == [
        "cn_gfsp_2_3_1_met",
        "surface_water_quality_class",
        "cn_gfsp_2_3_1_other_activity",
    ]


# ---- 3.2.4 农林废弃物综合利用, rows 2021–2029 ----
def test_3_2_4_wood_panels_e0_or_better() -> None:
    # 「人造板制造活动中以林业三剩物等农林废弃物为原料，达到相应产品规范标准规定要求，以及 E0 级
    # 及以上环保要求的人造板制造。」
    base = {"cn_gfsp_2025_item": "3.2.4", "cn_gfsp_3_2_4_met": True}
    out = results(
        {
            "project_id": "e0",
            **base,
            "industry_code": "C2021",
            "wood_panel_formaldehyde_class": "E0",
        },
        {
            "project_id": "enf",
            **base,
            "industry_code": "C2022",
            "wood_panel_formaldehyde_class": "enf",
        },
        {
            "project_id": "e1",
            **base,
            "industry_code": "C2023",
            "wood_panel_formaldehyde_class": "E1",
        },
        {"project_id": "pellets", **base, "industry_code": "C2542"},  # other rows: no class asked
        {"project_id": "ask", "cn_gfsp_2025_item": "3.2.4", "industry_code": "C2029"},
    )
    assert outcome(out["e0"]) == ("eligible", None)
    assert outcome(out["enf"]) == ("eligible", None)
    assert outcome(out["e1"]) == ("not_eligible", None)
    assert outcome(out["pellets"]) == ("eligible", None)
    assert out["ask"][R + "missing"] == ["cn_gfsp_3_2_4_met", "wood_panel_formaldehyde_class"]
    assert criterion("3.2.4", "e0").verification == "verified"
    assert criterion("3.2.4", "enf").verification == "unverified"  # the ranking is GB/T 39600's


# ---- 4.1.1 风力发电装备制造, row 3811 ----
def test_4_1_1_onshore_turbines_of_5_mw_and_above() -> None:
    # 「发电机及发电机组制造活动中 5 兆瓦及以上陆上风力发电机整机、海上风力发电机整机，以及…
    # 高原型…低温型…低风速风力发电机整机制造…」
    base = {"cn_gfsp_2025_item": "4.1.1", "industry_code": "C3811"}
    out = results(
        {"project_id": "6-mw", **base, "wind_turbine_rated_power_mw": 6.25},
        {"project_id": "5-mw", **base, "wind_turbine_rated_power_mw": 5},
        {
            "project_id": "3-mw",
            **base,
            "wind_turbine_rated_power_mw": 3,
            "cn_gfsp_4_1_1_met": False,
        },
        {
            "project_id": "3-mw-low-wind-speed",
            **base,
            "wind_turbine_rated_power_mw": 3,
            "cn_gfsp_4_1_1_met": True,
        },
        {"project_id": "ask", **base},
    )
    assert outcome(out["6-mw"]) == ("eligible", None)
    assert outcome(out["5-mw"]) == ("eligible", None)
    assert outcome(out["3-mw"]) == ("not_eligible", None)
    assert outcome(out["3-mw-low-wind-speed"]) == ("eligible", None)
    assert out["ask"][R + "missing"] == ["wind_turbine_rated_power_mw", "cn_gfsp_4_1_1_met"]


# ---- 4.3.1 电力源网荷储一体化及多能互补, rows 4910 / 4920 and `-` ----
def test_4_3_1_cchp_design_efficiency_on_the_construction_rows() -> None:
    # 「其中，热电冷三联供设施设计综合能效应不低于 70%。」 (rows 4910, 4920)
    base = {"cn_gfsp_2025_item": "4.3.1", "cn_gfsp_4_3_1_met": True}
    out = results(
        {"project_id": "72", **base, "industry_code": "4910", "chp_overall_efficiency": 0.72},
        {"project_id": "70", **base, "industry_code": "E4920", "chp_overall_efficiency": 0.70},
        {"project_id": "65", **base, "industry_code": "E4910", "chp_overall_efficiency": 0.65},
        {"project_id": "no-cchp", **base, "industry_code": "E4910", "includes_cchp": False},
        {"project_id": "ask", "cn_gfsp_2025_item": "4.3.1", "industry_code": "E4910"},
        {"project_id": "pv-plant", **base, "industry_code": "D4416"},  # not asked on 4416
    )
    assert outcome(out["72"]) == ("eligible", None)
    assert outcome(out["70"]) == ("eligible", None)
    assert outcome(out["65"]) == ("not_eligible", None)
    assert outcome(out["no-cchp"]) == ("eligible", None)
    assert out["ask"][R + "missing"] == [
        "cn_gfsp_4_3_1_met",
        "chp_overall_efficiency",
        "includes_cchp",
    ]
    assert outcome(out["pv-plant"]) == ("eligible", None)
    assert "cchp-design-efficiency=n/a" in out["pv-plant"][R + "criteria"]


def test_4_3_1_cchp_efficiency_on_the_end_use_row() -> None:
    # row `-` 各用电、用热（冷）行业: 「其中，热电冷三联供设施综合能效应不低于 70%。」
    base = {"cn_gfsp_2025_item": "4.3.1", "cn_gfsp_4_3_1_met": True}
    out = results(
        {"project_id": "75", **base, "chp_overall_efficiency": 0.75},
        {"project_id": "60", **base, "chp_overall_efficiency": 0.60},
    )
    assert outcome(out["75"]) == ("eligible", None)
    assert outcome(out["60"]) == ("not_eligible", None)
    assert "cchp-efficiency=fail" in out["60"][R + "criteria"]


# ---- 5.1.5 农作物种植保护地、保护区建设和运营, row 0519 ----
def test_5_1_5_no_reclamation_on_slopes_of_25_degrees_or_more() -> None:
    # 「禁止在 25 度以上陡坡开垦、复垦耕地，」
    base = {"cn_gfsp_2025_item": "5.1.5", "industry_code": "A0519", "cn_gfsp_5_1_5_met": True}
    out = results(
        {"project_id": "15-deg", **base, "reclaimed_land_max_slope_deg": 15},
        {"project_id": "25-deg", **base, "reclaimed_land_max_slope_deg": 25},
        {"project_id": "irrigation", **base, "farmland_reclamation": False},
        {"project_id": "ask", "cn_gfsp_2025_item": "5.1.5", "industry_code": "A0519"},
    )
    assert outcome(out["15-deg"]) == ("eligible", None)
    assert outcome(out["25-deg"]) == ("not_eligible", None)  # 以上 includes 25°
    assert outcome(out["irrigation"]) == ("eligible", None)
    assert out["ask"][R + "missing"] == [
        "reclaimed_land_max_slope_deg",
        "farmland_reclamation",
        "cn_gfsp_5_1_5_met",
    ]


# ---- 6.1.6 装配式建筑设计和建造, row 7484 ----
def test_6_1_6_gbt51129_grade_a_or_above_for_design() -> None:
    # 「建筑相关设计技术指标达到《装配式建筑评价标准》（GB/T 51129）中 A 级及以上等级要求」
    base = {"cn_gfsp_2025_item": "6.1.6", "cn_prefab_standards_met": True}
    out = results(
        {"project_id": "aa", **base, "industry_code": "M7484", "gbt51129_grade": "AA"},
        {"project_id": "a", **base, "industry_code": "M7484", "gbt51129_grade": "a"},
        {"project_id": "none", **base, "industry_code": "M7484", "gbt51129_grade": "none"},
        {"project_id": "build", **base, "industry_code": "E4710"},  # grade asked of design only
        {"project_id": "ask", "cn_gfsp_2025_item": "6.1.6", "industry_code": "M7484"},
    )
    assert outcome(out["aa"]) == ("eligible", None)
    assert outcome(out["a"]) == ("eligible", None)
    assert outcome(out["none"]) == ("not_eligible", None)
    assert outcome(out["build"]) == ("eligible", None)
    assert out["ask"][R + "missing"] == ["cn_prefab_standards_met", "gbt51129_grade"]


# ---- 6.3.2 绿色仓储设施（含冷库）建设, row 4840 备注 ----
def test_6_3_2_cold_store_equipment_grade_1_or_industry_leading() -> None:
    # 备注: 「2.节能装备指设备能效达到有关规范标准规定的 1 级能效水平或行业领先值的
    # 设备、装备。」
    base = {
        "cn_gfsp_2025_item": "6.3.2",
        "industry_code": "E4840",
        "cn_gfsp_6_3_2_met": True,
        "cn_gfsp_6_3_2_remark_met": True,
    }
    out = results(
        {"project_id": "grade-1", **base, "equipment_energy_efficiency_grade": 1},
        {
            "project_id": "grade-2",
            **base,
            "equipment_energy_efficiency_grade": 2,
            "equipment_industry_leading_efficiency": False,
        },
        {
            "project_id": "leading",
            **base,
            "equipment_energy_efficiency_grade": 2,
            "equipment_industry_leading_efficiency": True,
        },
        {"project_id": "ask", "cn_gfsp_2025_item": "6.3.2", "industry_code": "E4840"},
        {"project_id": "warehouse", "cn_gfsp_2025_item": "6.3.2", "industry_code": "E4790"},
    )
    assert outcome(out["grade-1"]) == ("eligible", None)
    assert outcome(out["grade-2"]) == ("not_eligible", None)
    assert outcome(out["leading"]) == ("eligible", None)
    assert out["ask"][R + "missing"] == [
        "cn_gfsp_6_3_2_met",
        "cn_gfsp_6_3_2_remark_met",
        "equipment_energy_efficiency_grade",
        "equipment_industry_leading_efficiency",
    ]
    # row 4790 (warehouses, green building materials): its own condition and 备注, no grade
    assert out["warehouse"][R + "missing"] == ["cn_gfsp_6_3_2_met", "cn_gfsp_6_3_2_remark_met"]
    remark = criterion("6.3.2", "remark-4790")
    assert remark.text.zh is not None and remark.text.zh.startswith("绿色建筑材料指")


# ---- 8.5.1 风力发电装备贸易, row 5179 ----
def test_8_5_1_wholesale_of_onshore_turbines_of_5_mw_and_above() -> None:
    # 「其他机械设备及电子产品批发活动中风电整机控制系统、风电变桨系统、风电偏航系统，5 兆瓦及
    # 以上陆上风力发电机整机，海上风力发电机整机，…的批发贸易活动。」 (row 5179; the 备注's
    # 「设备、产品符合性条件参照本目录 4.1.1 规定要求」 stays an attestation, on every row)
    base = {
        "cn_gfsp_2025_item": "8.5.1",
        "industry_code": "F5179",
        "cn_gfsp_8_5_1_remark_met": True,
    }
    out = results(
        {"project_id": "6-mw", **base, "wind_turbine_rated_power_mw": 6},
        {
            "project_id": "3-mw",
            **base,
            "wind_turbine_rated_power_mw": 3,
            "cn_gfsp_8_5_1_met": False,
        },
        {"project_id": "pitch-systems", **base, "cn_gfsp_8_5_1_met": True},
        {"project_id": "ask", "cn_gfsp_2025_item": "8.5.1", "industry_code": "F5179"},
        # row 5175 (generators, converters): no rating asked
        {
            "project_id": "converters",
            **base,
            "industry_code": "F5175",
            "cn_gfsp_8_5_1_met": True,
        },
    )
    assert outcome(out["6-mw"]) == ("eligible", None)
    assert outcome(out["3-mw"]) == ("not_eligible", None)
    assert outcome(out["pitch-systems"]) == ("eligible", None)
    assert outcome(out["converters"]) == ("eligible", None)
    assert out["ask"][R + "missing"] == [
        "wind_turbine_rated_power_mw",
        "cn_gfsp_8_5_1_met",
        "cn_gfsp_8_5_1_remark_met",
    ]
    assert criterion("8.5.1", "onshore-5mw").text.zh == "5 兆瓦及以上陆上风力发电机整机"


# ---- areas 7 and 9: no measured row in area 7 (services), 9.1.2 reads the building's rating ----
def test_7_2_2_energy_performance_contracting_is_attested_row_by_row() -> None:
    # 7.2.2 合同能源管理, row 4861: 「节能工程施工活动中采用节能效益分享、能源费用托管、节能量
    # 保证、融资租赁等形式开展的合同能源管理节能技术改造服务活动。」 — qualitative: attested.
    base = {"cn_gfsp_2025_item": "7.2.2", "industry_code": "E4861"}
    out = results(
        {"project_id": "epc", **base, "cn_gfsp_7_2_2_met": True},
        {"project_id": "not-epc", **base, "cn_gfsp_7_2_2_met": False},
        {"project_id": "ask", **base},
    )
    assert outcome(out["epc"]) == ("eligible", None)
    assert outcome(out["not-epc"]) == ("not_eligible", None)
    assert outcome(out["ask"]) == ("insufficient_data", ["cn_gfsp_7_2_2_met"])
    assert [r.industry_code for r in item("7.2.2").rows] == ["4861", "7499"]


def test_9_1_2_green_building_purchase_reads_the_star_rating() -> None:
    # 9.1.2 绿色低碳建筑消费, 备注: 「绿色低碳建筑范围，以及符合性条件参照本目录 6.1.1、6.1.2、
    # 6.1.3、6.1.4、6.1.6 规定要求。」; 6.1.1: 「达到1 星级及以上绿色建筑标准」.
    base = {"activity": "building_acquisition", "approval_date": "2025-11-01"}
    out = results(
        {"project_id": "one-star", **base, "green_building_star": 1},
        {
            "project_id": "unrated",
            **base,
            "green_building_star": 0,
            "gbt51350_level": 4,
            "cn_building_retrofit_standards_met": False,
            "cn_rural_housing_gbt50824": False,
            "cn_prefab_standards_met": False,
        },
        {"project_id": "near-zero", **base, "gbt51350_level": 2},
    )
    assert outcome(out["one-star"])[0] == "eligible"
    assert outcome(out["near-zero"])[0] == "eligible"
    assert outcome(out["unrated"]) == ("not_eligible", None)
    assert criterion("9.1.2", "star-1").alternative == "green-low-carbon"


# ---- the file as a whole ----
MEASURED = {
    "2.1.1": {"gb37484-grade2"},
    "2.1.2": {"gb37483-grade2", "gb37485-grade2"},
    "2.3.1": {"class-iii-water"},
    "3.2.4": {"e0", "enf"},
    "4.1.1": {"onshore-5mw"},
    "4.3.1": {"cchp-efficiency", "cchp-design-efficiency"},
    "5.1.5": {"slope-below-25"},
    "6.1.6": {"gbt51129-grade-a"},
    "6.3.2": {"equipment-grade-1"},
    "8.5.1": {"onshore-5mw"},
}


@pytest.mark.parametrize("code", sorted(MEASURED))
def test_every_criterion_quotes_its_rows_and_names_them(code: str) -> None:
    """text.zh is part of the 条件/标准 or 备注 of the rows in applies_to (or, without it, of the
    item's `-` row); the clause names the item and the rows."""
    rows = item(code).rows
    ids = {c.id for c in item(code).criteria}
    assert MEASURED[code] <= ids
    for c in item(code).criteria:
        assert c.clause.startswith(f"绿色金融支持项目目录（2025年版） {code} "), c.id
        assert c.verification in ("verified", "unverified"), c.id
        concerned = [
            r
            for r in rows
            if (c.applies_to is None and r.industry_code is None)
            or (c.applies_to is not None and r.industry_code in c.applies_to.industry_codes)
        ]
        assert concerned, c.id
        squash = "".join((c.text.zh or "").split())
        for r in concerned:
            cell = "".join((r.conditions + (r.remarks or "")).split())
            assert squash in cell, (code, c.id, r.industry_code)
