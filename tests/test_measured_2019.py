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
