"""Measured criteria of the legacy catalogue (cn_gbepc_2021): the numeric conditions of the 2019
Green Industry Guidance Catalogue explanations (说明), evaluated from data (issue 16).

Each case quotes the 说明 it exercises (taxonomies/sources/cn_gic_2019_explanations.txt). Approval
dates are before 2025-10-01, so the 2021 catalogue governs; its status is computed regardless.
"""

from __future__ import annotations

import pytest

from greenscreen import screen

LEGACY = {"project_id": "P", "approval_date": "2024-06-01"}
PV_STANDARDS = {
    "cn_gbepc_3_2_2_standards_met": "yes"
}  # 符合《光伏发电站设计规范》(GB50797)…等国家标准


def gbepc(**project: object) -> tuple[str, str | None, list[str] | None]:
    """Status, item and missing fields of cn_gbepc_2021 for one project."""
    result = screen([{**LEGACY, **project}])
    assert result.rejects.height == 0, result.rejects.to_dicts()
    row = result.results.row(0, named=True)
    return (
        row["cn_gbepc_2021__status"],
        row["cn_gbepc_2021__item"],
        row["cn_gbepc_2021__missing"],
    )


def failed(**project: object) -> set[str]:
    """The cn_gbepc_2021 criteria of the selected item that fail."""
    row = screen([{**LEGACY, **project}]).results.row(0, named=True)
    pairs = (part.split("=") for part in row["cn_gbepc_2021__criteria"].split("; "))
    return {criterion for criterion, result in pairs if result == "fail"}


def pv(module_type: str, **measured: float) -> dict[str, object]:
    return {"activity": "solar_pv", "pv_module_type": module_type, **measured, **PV_STANDARDS}


# ---- 3.2.2 太阳能利用设施建设和运营: 限定条件 1)–5) ------------------------------
# (module type, a passing set of measurements at the limits, the failing variants with the
#  criterion each fails)
PV_CASES = [
    # 1）多晶硅电池组件光电转化效率≥16.0%，组件自项目投产运行之日起，一年内衰减率≤2.5%，
    #    之后年衰减率≤0.7%；
    # 5）多晶硅、单晶硅和薄膜电池项目全生命周期内衰减率≤20%。
    (
        "poly_si",
        {
            "pv_module_efficiency": 0.16,
            "pv_first_year_degradation": 0.025,
            "pv_annual_degradation": 0.007,
            "pv_lifetime_degradation": 0.2,
        },
        [
            ("pv_module_efficiency", 0.159, "poly-si-efficiency"),
            ("pv_first_year_degradation", 0.026, "poly-si-first-year"),
            ("pv_annual_degradation", 0.008, "poly-si-annual"),
            ("pv_lifetime_degradation", 0.21, "lifetime"),
        ],
    ),
    # 2）单晶硅电池组件光电转化效率≥16.5%，组件自项目投产运行之日起，一年内衰减率≤3%，
    #    之后年衰减率≤0.7%；
    (
        "mono_si",
        {
            "pv_module_efficiency": 0.165,
            "pv_first_year_degradation": 0.03,
            "pv_annual_degradation": 0.007,
            "pv_lifetime_degradation": 0.2,
        },
        [
            ("pv_module_efficiency", 0.164, "mono-si-efficiency"),
            ("pv_first_year_degradation", 0.031, "mono-si-first-year"),
            ("pv_annual_degradation", 0.0071, "mono-si-annual"),
            ("pv_lifetime_degradation", 0.25, "lifetime"),
        ],
    ),
    # 3）高倍聚光光伏组件光电转化效率≥28%，项目投产运行之日起，一年内衰减率≤2%，之后年衰减率≤0.5%，
    #    项目全生命周期内衰减率≤10%；
    (
        "cpv",
        {
            "pv_module_efficiency": 0.28,
            "pv_first_year_degradation": 0.02,
            "pv_annual_degradation": 0.005,
            "pv_lifetime_degradation": 0.1,
        },
        [
            ("pv_module_efficiency", 0.27, "cpv-efficiency"),
            ("pv_first_year_degradation", 0.021, "cpv-first-year"),
            ("pv_annual_degradation", 0.006, "cpv-annual"),
            ("pv_lifetime_degradation", 0.11, "cpv-lifetime"),
        ],
    ),
    # 4）硅基薄膜电池组件光电转化效率≥10%；… 5）…薄膜电池项目全生命周期内衰减率≤20%。
    (
        "si_thin_film",
        {"pv_module_efficiency": 0.1, "pv_lifetime_degradation": 0.2},
        [
            ("pv_module_efficiency", 0.099, "si-thin-film-efficiency"),
            ("pv_lifetime_degradation", 0.201, "lifetime"),
        ],
    ),
    # 4）…铜铟镓硒（CIGS）薄膜电池组件光电转化效率≥14%；
    (
        "cigs",
        {"pv_module_efficiency": 0.14, "pv_lifetime_degradation": 0.2},
        [("pv_module_efficiency", 0.139, "cigs-efficiency")],
    ),
    # 4）…碲化镉（CdTe）薄膜电池组件光电转化效率≥14%；
    (
        "cdte",
        {"pv_module_efficiency": 0.14, "pv_lifetime_degradation": 0.2},
        [("pv_module_efficiency", 0.13, "cdte-efficiency")],
    ),
    # 4）…其他薄膜电池组件光电转化效率≥10%；
    (
        "other_thin_film",
        {"pv_module_efficiency": 0.1, "pv_lifetime_degradation": 0.2},
        [("pv_module_efficiency", 0.09, "other-thin-film-efficiency")],
    ),
]


@pytest.mark.parametrize(("module_type", "passing", "failing"), PV_CASES)
def test_pv_module_limits_are_measured(
    module_type: str, passing: dict[str, float], failing: list[tuple[str, float, str]]
) -> None:
    assert gbepc(**pv(module_type, **passing)) == ("eligible", "3.2.2", None)
    for field, value, criterion in failing:
        project = pv(module_type, **{**passing, field: value})
        assert gbepc(**project) == ("not_eligible", "3.2.2", None), (field, value)
        assert failed(**project) == {criterion}, (field, value)


def test_the_issue_example_mono_si_asks_for_the_degradation_it_lacks() -> None:
    # 2）单晶硅电池组件光电转化效率≥16.5%，…一年内衰减率≤3%，之后年衰减率≤0.7%；5）…≤20%。
    project = {"activity": "solar_pv", "pv_module_type": "mono_si", "pv_module_efficiency": 0.17}
    assert gbepc(**project) == (
        "insufficient_data",
        "3.2.2",
        [
            "pv_first_year_degradation",
            "pv_annual_degradation",
            "pv_lifetime_degradation",
            "cn_gbepc_3_2_2_standards_met",
        ],
    )
    # a failing efficiency decides although the degradation is unknown
    assert gbepc(**{**project, "pv_module_efficiency": 0.16})[:2] == ("not_eligible", "3.2.2")


def test_thin_films_have_no_yearly_degradation_limit() -> None:
    # 4）硅基薄膜…≥10%；铜铟镓硒（CIGS）…≥14%；碲化镉（CdTe）…≥14%；其他薄膜…≥10%: the text sets
    # no first-year or yearly limit for thin films, so none is asked or applied.
    measured = {"pv_module_efficiency": 0.15, "pv_lifetime_degradation": 0.1}
    for module_type in ("si_thin_film", "cigs", "cdte", "other_thin_film"):
        project = pv(module_type, **measured, pv_first_year_degradation=0.5)
        assert gbepc(**project) == ("eligible", "3.2.2", None)


def test_a_pv_project_without_module_data_asks_for_it() -> None:
    # 太阳能光伏发电站、太阳能高温热发电站需满足如下限定条件：1）…5）
    assert gbepc(activity="solar_pv") == (
        "insufficient_data",
        "3.2.2",
        [
            "pv_module_type",
            "pv_module_efficiency",
            "pv_first_year_degradation",
            "pv_annual_degradation",
            "pv_lifetime_degradation",
            "cn_gbepc_3_2_2_standards_met",
        ],
    )


def test_a_module_type_the_limits_do_not_name_fails() -> None:
    # The limits 1)–4) name multi-Si, mono-Si, high-concentration PV and thin films (incl. 其他薄膜
    # 电池组件); a value outside them (here a typo) is not silently passed.
    project = pv(
        "mono",
        pv_module_efficiency=0.2,
        pv_first_year_degradation=0.01,
        pv_annual_degradation=0.005,
        pv_lifetime_degradation=0.1,
    )
    assert gbepc(**project)[:2] == ("not_eligible", "3.2.2")
    assert failed(**project) == {"module-type"}


def test_pv_limits_do_not_replace_the_standards_attestation() -> None:
    # 符合《光伏发电站设计规范》(GB50797)、…等国家标准 stays an attestation (qualitative).
    project = pv(
        "mono_si",
        pv_module_efficiency=0.17,
        pv_first_year_degradation=0.02,
        pv_annual_degradation=0.006,
        pv_lifetime_degradation=0.15,
    )
    del project["cn_gbepc_3_2_2_standards_met"]
    assert gbepc(**project) == ("insufficient_data", "3.2.2", ["cn_gbepc_3_2_2_standards_met"])
    assert gbepc(**project, cn_gbepc_3_2_2_standards_met="no")[:2] == ("not_eligible", "3.2.2")


# ---- wind and hydro: the 2019 text states no number ------------------------------------------
def test_wind_has_no_numeric_condition_only_its_standards() -> None:
    # 3.2.1 风力发电设施建设和运营: 符合《风力发电场设计规范》（GB51096）、
    # 《风力发电工程施工与验收规范》（GB/T51121）、《风电场接入电力系统技术规定》(GB/T19963)、
    # 《大型风电场并网设计技术规范》(NB/T31003)等标准。
    # No size or capacity factor: nothing numeric is asked or applied.
    for activity in ("wind_onshore", "wind_offshore"):
        assert gbepc(activity=activity, capacity_mw=1) == (
            "insufficient_data",
            "3.2.1",
            ["cn_gbepc_3_2_1_met"],
        )
        assert gbepc(activity=activity, capacity_mw=1, cn_gbepc_3_2_1_met="yes") == (
            "eligible",
            "3.2.1",
            None,
        )
        assert gbepc(activity=activity, cn_gbepc_3_2_1_met="no")[:2] == ("not_eligible", "3.2.1")


def test_large_hydro_is_the_named_bases_not_a_capacity() -> None:
    # 3.2.4 大型水力发电设施建设和运营: 仅含《“十三五”可再生能源规划》中明确的重点大型水电基地
    # 建设，包括金沙江流域白鹤滩、…等区域重点项目。
    # The text gives no MW limit: a list of bases (attested).
    assert gbepc(activity="hydropower", capacity_mw=16000) == (
        "insufficient_data",
        "3.2.4",
        ["cn_hydro_in_13fyp_base"],
    )
    assert gbepc(activity="hydropower", capacity_mw=10, cn_hydro_in_13fyp_base="yes") == (
        "eligible",
        "3.2.4",
        None,
    )
    assert gbepc(activity="hydropower", capacity_mw=16000, cn_hydro_in_13fyp_base="no")[:2] == (
        "not_eligible",
        "3.2.4",
    )


# ---- buildings ---------------------------------------------------------------------------------
def test_green_building_needs_one_star_or_more() -> None:
    # 5.1.2 绿色建筑: 建筑需达到《绿色建筑评价标准》（GB/T50378）、
    # 《绿色工业建筑评价标准》（GB/T50878）等标准中一星及以上标准要求
    # (building_new is also 5.1.1 超低能耗建筑, attested).
    assert gbepc(activity="building_new", green_building_star=1) == ("eligible", "5.1.2", None)
    assert gbepc(activity="building_new", green_building_star=3) == ("eligible", "5.1.2", None)
    status, _, missing = gbepc(activity="building_new", green_building_star=0)
    assert status == "insufficient_data"  # 0 stars fails 5.1.2; 5.1.1 is still undecided
    assert missing == ["cn_ultra_low_energy_building"]
    assert (
        gbepc(activity="building_new", green_building_star=0, cn_ultra_low_energy_building="no")[0]
        == "not_eligible"
    )


# ---- 1.1.x 高效节能装备制造 and 3.1.2, 5.1.4: graded standards ---------------------------------
# One number field per graded standard (`gb<number>_grade`, 1 is best; "优于…1级能效水平" is
# grade <= 1), shared with the 2025 catalogue where it declares the same standard. A text field
# names the product type where the type decides which standard applies: a project that names
# another type is not asked for the grade; one that names no type is asked for every type's grade
# (a grade it gives decides). The standards and the rest of the 说明 stay the item's attestation.
MANUFACTURING = {"description": "设备制造"}


def claimed(item: str, **project: object) -> dict[str, object]:
    """A project claimed under a 2019 item, its 说明 otherwise attested."""
    met = f"cn_gbepc_{item.replace('.', '_')}_met"
    return {**MANUFACTURING, "cn_gbepc_2021_item": item, met: "yes", **project}


BOILER = {"tsg_g0002_efficiency_target_met": "yes"}


def test_industrial_boilers_need_better_than_gb24500_grade_2() -> None:
    # 1.1.1 节能锅炉制造: 工业锅炉能效优于《工业锅炉能效限定值及能效等级》（GB 24500）规定的 2 级
    # 能效等级要求 — better than grade 2 is grade 1.
    assert gbepc(**claimed("1.1.1", gb24500_grade=1, **BOILER)) == ("eligible", "1.1.1", None)
    assert gbepc(**claimed("1.1.1", gb24500_grade=2, **BOILER))[:2] == ("not_eligible", "1.1.1")
    assert failed(**claimed("1.1.1", gb24500_grade=2, **BOILER)) == {"gb24500-better-than-grade2"}
    status, item, missing = gbepc(**claimed("1.1.1", **BOILER))
    assert (status, item) == ("insufficient_data", "1.1.1")
    assert missing is not None and "gb24500_grade" in missing
    # 节能型电站锅炉、工业锅炉和船用锅炉: GB 24500 is the industrial boilers' standard only
    for boiler in ("power_station", "marine"):
        assert gbepc(**claimed("1.1.1", boiler_type=boiler, **BOILER)) == (
            "eligible",
            "1.1.1",
            None,
        )


def test_boilers_need_the_tsg_g0002_target_value() -> None:
    # 1.1.1: 锅炉能效等级达到《锅炉节能技术监督管理规程》（含修改单）（TSG G0002）中热效率指标的
    # 目标值要求 (the value is in the regulation, not in the sources: a boolean, no number).
    # (or the boiler type: …以及先进煤气化装备等制造 are no boilers)
    assert gbepc(**claimed("1.1.1", gb24500_grade=1)) == (
        "insufficient_data",
        "1.1.1",
        ["boiler_type", "tsg_g0002_efficiency_target_met"],
    )
    project = claimed("1.1.1", gb24500_grade=1, tsg_g0002_efficiency_target_met="no")
    assert failed(**project) == {"tsg-g0002-target"}
    # …以及先进煤气化装备等制造: not a boiler
    assert gbepc(**claimed("1.1.1", boiler_type="not_a_boiler")) == ("eligible", "1.1.1", None)


# (item, type field, type, grade field, criterion, the 说明's clause)
GRADED = [
    # 1.1.3 节能型泵及真空设备制造
    ("1.1.3", "pump_type", "petrochemical_centrifugal", "gb32284_grade", "gb32284-grade1",
     "石油化工离心泵能效优于《石油化工离心泵能效限定值及能效等级》（GB 32284）标准中 1 级能效水平"),
    ("1.1.3", "pump_type", "well_submersible", "gb32030_grade", "gb32030-grade1",
     "潜水电泵能效优于《井用潜水电泵能效限定值及能效等级》（GB 32030）…标准中 1 级能效水平"),
    ("1.1.3", "pump_type", "small_submersible", "gb32029_grade", "gb32029-grade1",
     "潜水电泵能效优于…《小型潜水电泵能效限定值及能效等级》（GB 32029）…标准中 1 级能效水平"),
    ("1.1.3", "pump_type", "sewage_submersible", "gb32031_grade", "gb32031-grade1",
     "潜水电泵能效优于…《污水污物潜水电泵能效限定值及能效等级》（GB 32031）标准中 1 级能效水平"),
    # 1.1.4 节能型气体压缩设备制造
    ("1.1.4", "compressor_type", "positive_displacement_air", "gb19153_grade", "gb19153-grade1",
     "容积式空气压缩机能效优于《容积式空气压缩机能效限定值及能效等级》（GB 19153）标准中 1 级"),
    ("1.1.4", "compressor_type", "ac_hermetic", "gb35971_grade", "gb35971-grade1",
     "空气调节器用全封闭型电动机-压缩机能效优于…（GB 35971）标准中 1 级能效水平"),
    # 1.1.6 节能风机风扇制造
    ("1.1.6", "fan_type", "fan", "gb19761_grade", "gb19761-grade1",
     "通风机能效优于《通风机能效限定值及能效等级》（GB 19761）标准中 1 级能效水平"),
    # 1.1.8 节能电机制造
    ("1.1.8", "motor_type", "small_medium_three_phase_async", "gb18613_grade", "gb18613-grade1",
     "中小型三相异步电动机能效优于…（GB 18613）标准中 1 级能效水平"),
    ("1.1.8", "motor_type", "pm_synchronous", "gb30253_grade", "gb30253-grade1",
     "永磁同步电动机能效优于《永磁同步电动机能效限定值及能效等级》（GB 30253）标准中 1 级"),
    ("1.1.8", "motor_type", "high_voltage_cage_async", "gb30254_grade", "gb30254-grade1",
     "高压三相笼型异步电动机能效优于…（GB 30254）标准 1 级能效水平"),
    ("1.1.8", "motor_type", "small_power", "gb25958_grade", "gb25958-grade1",
     "小功率电动机能效优于《小功率电动机能效限定值及能效等级》（GB 25958）标准 1 级能效水平"),
    # 1.1.9 节能型变压器、整流器、电感器和电焊机制造
    ("1.1.9", "power_equipment_type", "distribution_transformer", "gb20052_grade",
     "gb20052-grade1", "三相配电变压器能效优于…（GB 20052）标准 1 级能效水平"),
    ("1.1.9", "power_equipment_type", "power_transformer", "gb24790_grade", "gb24790-grade1",
     "电力变压器能效优于《电力变压器能效限定值及能效等级》（GB 24790）标准 1 级能效水平"),
    ("1.1.9", "power_equipment_type", "ac_contactor", "gb21518_grade", "gb21518-grade1",
     "交流接触器能效优于《交流接触器能效限定值及能效等级》（GB 21518）标准 1 级能效水平"),
    # 1.1.11 高效节能家用电器制造
    ("1.1.11", "appliance_type", "room_ac", "gb12021_3_grade", "gb12021-3-grade1",
     "房间空气调节器能效优于《房间空气调节器能效限定值及能效等级》（GB 12021.3）标准 1 级"),
    ("1.1.11", "appliance_type", "variable_speed_room_ac", "gb21455_grade", "gb21455-grade1",
     "转速可控型房间空气调节器能效优于…（GB 21455）标准 1 级能效水平"),
    ("1.1.11", "appliance_type", "multi_split_ac", "gb21454_grade", "gb21454-grade1",
     "多联式空调（热泵）机组能效比优于…（GB 21454）标准 1 级能效水平"),
    ("1.1.11", "appliance_type", "refrigerator", "gb12021_2_grade", "gb12021-2-grade1",
     "家用电冰箱能效优于《家用电冰箱耗电量限定值及能效等级》（GB 12021.2）标准 1 级能效水平"),
    ("1.1.11", "appliance_type", "washing_machine", "gb12021_4_grade", "gb12021-4-grade1",
     "电动洗衣机能效优于《电动洗衣机能效水效限定值及等级》（GB 12021.4）标准 1 级能效水平"),
    ("1.1.11", "appliance_type", "rice_cooker", "gb12021_6_grade", "gb12021-6-grade1",
     "电饭煲能效优于《电饭锅能效限定值及能效等级》（GB 12021.6）标准 1 级能效水平"),
    ("1.1.11", "appliance_type", "flat_panel_tv", "gb24850_grade", "gb24850-grade1",
     "平板电视机能效优于《平板电视能效限定值及能效等级》（GB 24850）标准 1 级能效水平"),
    ("1.1.11", "appliance_type", "ac_fan", "gb12021_9_grade", "gb12021-9-grade1",
     "交流电风扇能效优于《交流电风扇能效限定值及能效等级》（GB 12021.9）标准 1 级能效水平"),
    ("1.1.11", "appliance_type", "other", "equipment_energy_efficiency_grade", "other-grade1",
     "其他高效节能家用电器能效均优于相应国家强制性标准 1 级能效水平"),
    # 1.1.12 高效节能商用设备制造: 产品能效优于《…》（GB 21521）、…（GB 19576）等相应国家强制性
    # 能效标准 1 级能效水平
    ("1.1.12", "commercial_equipment_type", "copier_printer_fax", "gb21521_grade",
     "gb21521-grade1", "《复印机、打印机和传真机能效限定值及能效等级》（GB 21521）…1 级"),
    ("1.1.12", "commercial_equipment_type", "microcomputer", "gb28380_grade", "gb28380-grade1",
     "《微型计算机能效限定值及能效等级》（GB 28380）…1 级能效水平"),
    ("1.1.12", "commercial_equipment_type", "projector", "gb32028_grade", "gb32028-grade1",
     "《投影机能效限定值及能效等级》（GB 32028）…1 级能效水平"),
    ("1.1.12", "commercial_equipment_type", "chiller", "gb19577_grade", "gb19577-grade1",
     "《冷水机组能效限定值及能效等级》（GB 19577）…1 级能效水平"),
    ("1.1.12", "commercial_equipment_type", "unitary_ac", "gb19576_grade", "gb19576-grade1",
     "《单元式空气调节机能效限定值及能源效率等级》（GB 19576）…1 级能效水平"),
    ("1.1.12", "commercial_equipment_type", "other", "equipment_energy_efficiency_grade",
     "other-grade1", "…等相应国家强制性能效标准 1 级能效水平 (商用制冷器具、热泵机组…)"),
    # 3.1.2 太阳能发电装备制造
    ("3.1.2", "solar_equipment_type", "pv_cell", "pv_cell_cleaner_production_grade",
     "pv-cell-cleaner-production-level1",
     "光伏电池生产需达到《光伏电池行业清洁生产评价指标体系》Ⅰ级水平（国际清洁生产领先水平）"),
]  # fmt: skip


@pytest.mark.parametrize(("item", "type_field", "kind", "grade", "criterion", "quote"), GRADED)
def test_graded_standards_are_measured(
    item: str, type_field: str, kind: str, grade: str, criterion: str, quote: str
) -> None:
    typed = claimed(item, **{type_field: kind})
    assert gbepc(**typed, **{grade: 1}) == ("eligible", item, None), quote
    assert gbepc(**typed, **{grade: 2})[:2] == ("not_eligible", item), quote
    assert failed(**typed, **{grade: 2}) == {criterion}
    assert gbepc(**typed) == ("insufficient_data", item, [grade])
    # the type names the standard: another type of the item is not asked for this grade
    other = claimed(item, **{type_field: "other" if kind != "other" else "unlisted"})
    status, _, missing = gbepc(**other)
    assert grade not in (missing or []), (status, missing)
    # a grade given decides for a project that does not name its type
    assert failed(**claimed(item, **{grade: 2})) == {criterion}


def test_the_attestation_stays_for_the_rest_of_the_explanation() -> None:
    # 1.1.9: 1kV 及以下通用变频调速设备符合《…技术条件》（GB/T 30844.1）标准要求 — a standard to
    # comply with, no grade: the item's attestation (quoting the whole 说明) still decides.
    project = claimed("1.1.9", power_equipment_type="ac_contactor", gb21518_grade=1)
    assert gbepc(**project) == ("eligible", "1.1.9", None)
    del project["cn_gbepc_1_1_9_met"]
    assert gbepc(**project) == ("insufficient_data", "1.1.9", ["cn_gbepc_1_1_9_met"])
    assert gbepc(**project, cn_gbepc_1_1_9_met="no")[:2] == ("not_eligible", "1.1.9")


def test_clean_water_pumps_need_the_gb19762_evaluation_value() -> None:
    # 1.1.3: 清水离心泵能效指标优于《清水离心泵能效限定值及节能评价值》（GB 19762）标准中节能评价
    # 值水平 — a level, not a grade (a boolean shared with the 2025 catalogue).
    typed = claimed("1.1.3", pump_type="clean_water_centrifugal")
    assert gbepc(**typed, gb19762_evaluation_value_met="yes") == ("eligible", "1.1.3", None)
    assert failed(**typed, gb19762_evaluation_value_met="no") == {"gb19762-evaluation-value"}
    assert gbepc(**typed) == ("insufficient_data", "1.1.3", ["gb19762_evaluation_value_met"])


def test_heat_exchangers_need_the_tsg_r0010_target_value() -> None:
    # 1.1.10 余热余压余气利用设备制造: 热交换器能效等级达到《热交换器能效测试与评价规则》
    # （TSG R0010）中的目标值要求 (a target, not a grade: no number is in the sources).
    typed = claimed("1.1.10", waste_heat_equipment_type="heat_exchanger")
    assert gbepc(**typed, tsg_r0010_target_value_met="yes") == ("eligible", "1.1.10", None)
    assert failed(**typed, tsg_r0010_target_value_met="no") == {"tsg-r0010-target"}
    assert gbepc(**typed) == ("insufficient_data", "1.1.10", ["tsg_r0010_target_value_met"])
    # 低热值煤气燃气轮机…等设备制造: the target is the heat exchangers' only
    assert gbepc(**claimed("1.1.10", waste_heat_equipment_type="other")) == (
        "eligible",
        "1.1.10",
        None,
    )


def test_a_motor_project_names_its_type_or_gives_every_grade() -> None:
    # 1.1.8: each motor type has its standard; a project that names no type is asked for them all.
    status, item, missing = gbepc(**claimed("1.1.8", gb30253_grade=1))
    assert (status, item) == ("insufficient_data", "1.1.8")
    assert missing == ["motor_type", "gb18613_grade", "gb30254_grade", "gb25958_grade"]
    typed = claimed("1.1.8", motor_type="pm_synchronous", gb30253_grade=1)
    assert gbepc(**typed) == ("eligible", "1.1.8", None)


def test_prefabricated_buildings_need_gbt51129_grade_a_or_above() -> None:
    # 5.1.4 装配式建筑: 建筑需达到《装配式建筑评价标准》（GB/T 51129）A 级及以上标准要求
    # (gbt51129_grade as in the 2025 catalogue: A, AA or AAA).
    building = claimed("5.1.4", description="装配式建筑")
    for grade in ("A", "AA", "AAA", "aa"):
        assert gbepc(**building, gbt51129_grade=grade) == ("eligible", "5.1.4", None)
    assert gbepc(**building, gbt51129_grade="none")[:2] == ("not_eligible", "5.1.4")
    assert failed(**building, gbt51129_grade="none") == {"gbt51129-grade-a"}
    assert gbepc(**building) == ("insufficient_data", "5.1.4", ["gbt51129_grade"])


def test_special_turbine_components_need_3_mw_turbines() -> None:
    # 3.1.1 风力发电装备制造: 3 兆瓦及以上海上和高原型、低温型、低风速风力发电机组配套的各类
    # 发电机、风轮叶片、轴承等零部件 — the limit is on the turbines the components are for.
    parts = claimed("3.1.1", wind_component_for_special_turbine="yes")
    assert gbepc(**parts, wind_turbine_rated_power_mw=3) == ("eligible", "3.1.1", None)
    assert gbepc(**parts, wind_turbine_rated_power_mw=2.5)[:2] == ("not_eligible", "3.1.1")
    assert failed(**parts, wind_turbine_rated_power_mw=2.5) == {"special-turbine-components-3mw"}
    assert gbepc(**parts) == ("insufficient_data", "3.1.1", ["wind_turbine_rated_power_mw"])
    # 风力发电电缆、变速箱、塔筒等零部件: no rating asked
    other = claimed("3.1.1", wind_component_for_special_turbine="no")
    assert gbepc(**other) == ("eligible", "3.1.1", None)
    # nothing said about the product: both fields are asked
    status, _, missing = gbepc(**claimed("3.1.1"))
    assert status == "insufficient_data"
    assert missing == ["wind_component_for_special_turbine", "wind_turbine_rated_power_mw"]
