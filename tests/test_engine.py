"""Golden cases for the rules engine; each cites the clause it exercises."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from greenscreen import screen


def one(**project: object) -> dict:
    """Screen one project and return its results row."""
    result = screen([{"project_id": "P", **project}])
    assert result.rejects.height == 0, result.rejects.to_dicts()
    return result.results.row(0, named=True)


def decisions(**project: object) -> pl.DataFrame:
    return screen([{"project_id": "P", **project}]).decisions


SAFE = {"eu_dnsh_evidenced": "yes", "eu_minimum_safeguards": "yes"}


def test_coal_power_unit_is_excluded() -> None:
    # cn_exclusions LH-1: Shandong 实施意见 二(一): new/expanded 两高 projects without the five
    # reduction substitutions are not approved (seed 001 §4.4).
    row = one(
        activity="coal_power",
        capacity_mw=1320,
        province="山东",
        new_or_expanded="是",
        lianggao_five_substitutions="否",
    )
    assert row["cn_exclusions__status"] == "excluded"
    assert row["cn_exclusions__item"] == "LH-1"
    # the Guangdong 2021 plan closes existing non-compliant units below 300 MW (seed 001 §4.2)
    small = one(
        activity="coal_power",
        capacity_mw=200,
        province="广东",
        new_or_expanded="否",
        coal_unit_meets_standards="否",
    )
    assert (small["cn_exclusions__status"], small["cn_exclusions__item"]) == ("excluded", "COAL-1")
    large = one(
        activity="coal_power",
        capacity_mw=660,
        province="广东",
        new_or_expanded="否",
        coal_unit_meets_standards="是",
        industrial_structure_category="允许类",
    )
    assert large["cn_exclusions__status"] == "not_excluded"


def test_restricted_industry_and_captive_boiler_flags_exclude() -> None:
    assert (
        one(activity="solar_pv", industrial_structure_category="淘汰类")["cn_exclusions__status"]
        == "excluded"
    )
    # Shandong 实施意见 三: 两高 projects may in principle not build coal-fired captive boilers
    boiler = one(
        activity="chemicals",
        province="山东",
        new_or_expanded="true",
        lianggao_five_substitutions="true",
        coal_captive_boiler="true",
        industrial_structure_category="鼓励类",
    )
    assert (boiler["cn_exclusions__status"], boiler["cn_exclusions__item"]) == (
        "excluded",
        "COAL-2",
    )
    assert one(activity="solar_pv")["cn_exclusions__status"] == "not_excluded"


def test_cbam_is_a_flag_not_an_exclusion() -> None:
    row = one(activity="cement", industrial_structure_category="鼓励类", province="河南")
    assert row["cn_exclusions__status"] == "not_excluded"
    assert row["cn_exclusions__flags"] == ["CBAM-1"]
    assert one(activity="chemicals", industry_code="C2621", lianggao_five_substitutions="1")[
        "cn_exclusions__flags"
    ] == ["CBAM-2"]


def test_hydropower_power_density_above_5_w_m2_is_eu_aligned() -> None:
    # EU Taxonomy, Delegated Regulation (EU) 2021/2139 Annex I 4.5 (b): power density > 5 W/m².
    row = one(activity="hydropower", power_density_w_m2=6, **SAFE)
    assert (row["eu_taxonomy__status"], row["eu_taxonomy__item"]) == ("aligned", "4.5")
    assert row["eu_taxonomy__missing"] is None
    # without DNSH and minimum-safeguards evidence it is not aligned (Reg. 2020/852 Art. 3)
    sc_only = one(activity="hydropower", power_density_w_m2=6)
    assert (sc_only["eu_taxonomy__status"], sc_only["eu_taxonomy__sc_met"]) == (
        "insufficient_data",
        True,
    )


def test_hydropower_4_w_m2_without_lifecycle_is_insufficient_data() -> None:
    # Annex I 4.5: (b) fails at 4 W/m², (c) < 100 gCO2e/kWh cannot be decided without a figure.
    row = one(activity="hydropower", power_density_w_m2=4, **SAFE)
    assert row["eu_taxonomy__status"] == "insufficient_data"
    assert "lifecycle_gco2e_per_kwh" in row["eu_taxonomy__missing"]
    assert "power_density_w_m2" not in row["eu_taxonomy__missing"]
    # the life-cycle figure decides it either way
    assert (
        one(activity="hydropower", power_density_w_m2=4, lifecycle_gco2e_per_kwh=24, **SAFE)[
            "eu_taxonomy__status"
        ]
        == "aligned"
    )
    failed = one(
        activity="hydropower",
        power_density_w_m2=4,
        lifecycle_gco2e_per_kwh=180,
        hydro_run_of_river="否",
    )
    assert failed["eu_taxonomy__status"] == "eligible"  # covered by 4.5, criteria not met


def test_hydropower_decision_rows_record_value_threshold_and_clause() -> None:
    table = decisions(activity="hydropower", power_density_w_m2=4).filter(
        pl.col("rulebook") == "eu_taxonomy"
    )
    rows = {r["criterion"]: r for r in table.iter_rows(named=True)}
    assert rows["sc-b-power-density"]["result"] == "fail"
    assert rows["sc-b-power-density"]["value"] == "power_density_w_m2=4.0"
    assert rows["sc-b-power-density"]["threshold"] == "> 5 W/m²"
    assert rows["sc-b-power-density"]["clause"].startswith("Annex I 4.5 (b)")
    assert rows["sc-c-lifecycle"]["result"] == "unknown"
    assert rows["dnsh"]["gate"] is True and rows["dnsh"]["result"] == "unknown"
    assert all(r["selected"] for r in rows.values())


def test_solar_pv_in_china_is_cerf_eligible() -> None:
    # PBoC CERF clean-energy sub-area "solar" (taxonomy_facts.md B, pandpower.com [S]).
    row = one(activity="solar_pv", province="青海", capacity_mw=100)
    assert (row["pboc_cerf__status"], row["pboc_cerf__item"]) == ("eligible", "1.2")
    # Annex I 4.1 has no SC threshold; aligned also needs DNSH and minimum safeguards
    assert (row["eu_taxonomy__status"], row["eu_taxonomy__sc_met"]) == ("insufficient_data", True)


def test_cerf_2026_extension_is_dated() -> None:
    # 2026-01-16 PBoC extension: energy-saving retrofits with a direct carbon-reduction effect.
    before = one(
        activity="building_renovation",
        approval_date="2025-12-31",
        cerf_direct_carbon_reduction="true",
    )
    after = one(
        activity="building_renovation",
        approval_date="2026-02-01",
        cerf_direct_carbon_reduction="true",
    )
    assert before["pboc_cerf__status"] == "not_eligible"
    assert (after["pboc_cerf__status"], after["pboc_cerf__item"]) == ("eligible", "4.1")
    undated = one(activity="building_renovation")  # no approval date: current rules
    assert undated["pboc_cerf__status"] == "insufficient_data"
    assert undated["pboc_cerf__missing"] == ["cerf_direct_carbon_reduction"]


GLP_ALL = {
    "glp_use_of_proceeds_green": "true",
    "glp_selection_process": "true",
    "glp_proceeds_tracked": "true",
    "glp_annual_reporting": "true",
}


def test_glp_version_follows_the_approval_date() -> None:
    # GLP 2025 makes quantified environmental benefits mandatory ("shall"); under the 2023
    # edition it was a recommendation. Loans approved before 2025-03-26 use the 2023 edition.
    old = one(activity="wind_onshore", approval_date="2024-06-01", **GLP_ALL)
    new = one(activity="wind_onshore", approval_date="2025-06-01", **GLP_ALL)
    assert old["glp_2025__status"] == "aligned"
    assert new["glp_2025__status"] == "insufficient_data"
    assert new["glp_2025__missing"] == ["glp_benefits_quantified"]
    full = one(
        activity="wind_onshore",
        approval_date="2025-06-01",
        glp_benefits_quantified="yes",
        **GLP_ALL,
    )
    assert full["glp_2025__status"] == "aligned"
    refused = one(activity="wind_onshore", approval_date="2025-06-01", glp_proceeds_tracked="no")
    assert refused["glp_2025__status"] == "not_eligible"  # one failed "shall" decides


def test_applies_flag_follows_the_approval_window() -> None:
    row = one(activity="solar_pv", approval_date=dt.date(2024, 6, 1))
    assert row["eu_taxonomy__applies"] is True  # no window: always governs


def test_activity_is_inferred_from_the_description_and_marked() -> None:
    result = screen(
        [
            {"project_id": "A", "description": "海上风电项目 300MW"},
            {"project_id": "B", "description": "屋顶分布式光伏"},
            {"project_id": "C", "description": "something else entirely"},
            {"project_id": "D", "activity": "wind_onshore", "description": "海上风电"},
        ]
    ).results.sort("project_id")
    assert result["activity"].to_list() == ["wind_offshore", "solar_pv", None, "wind_onshore"]
    assert result["activity_source"].to_list() == ["inferred", "inferred", None, "input"]
    # nothing says what C is: undecided, and the activity is what to ask for
    unknown = result.row(2, named=True)
    assert (unknown["eu_taxonomy__status"], unknown["eu_taxonomy__missing"]) == (
        "insufficient_data",
        ["activity"],
    )


@pytest.mark.parametrize("n", [1, 500])
def test_every_project_gets_a_status_for_every_rulebook(n: int) -> None:
    acts = ["solar_pv", "coal_power", "hydropower", "data_centre", "cement"]
    result = screen([{"project_id": str(i), "activity": acts[i % 5]} for i in range(n)])
    for book in result.rulebooks:
        assert result.results[f"{book.id}__status"].null_count() == 0
    assert set(result.decisions["project_id"]) == {str(i) for i in range(n)}


def test_solar_pv_is_eligible_in_the_2025_catalogue() -> None:
    # 绿色金融支持项目目录（2025年版） 4.2.2 太阳能利用设施建设和运营 (4416 太阳能发电, √√).
    row = one(
        activity="solar_pv", province="青海", industry_code="D4416", approval_date="2025-11-01"
    )
    assert (row["cn_gfsp_2025__status"], row["cn_gfsp_2025__item"]) == ("eligible", "4.2.2")
    assert row["cn_gfsp_2025__ghg_mark"] == "√√"
    assert row["cn_gfsp_2025__applies"] is True and row["cn_gbepc_2021__applies"] is False


def test_a_loan_approved_2024_06_01_is_judged_against_the_2021_catalogue() -> None:
    # 2025 catalogue notice: loans approved before it keep the historical standard;
    # cn_gbepc_2021 applies to approvals before 2025-10-01.
    row = one(activity="wind_onshore", approval_date="2024-06-01", cn_gbepc_3_2_1_met="是")
    assert row["cn_gbepc_2021__applies"] is True
    assert row["cn_gfsp_2025__applies"] is False
    assert (row["cn_gbepc_2021__status"], row["cn_gbepc_2021__item"]) == ("eligible", "3.2.1")


def test_large_hydro_needs_plan_membership_evidence() -> None:
    # 2025 catalogue 4.2.4: only large hydro bases listed in the 14th Five-Year plans.
    row = one(activity="hydropower", capacity_mw=120, approval_date="2025-11-01")
    assert (row["cn_gfsp_2025__status"], row["cn_gfsp_2025__item"]) == (
        "insufficient_data",
        "4.2.4",
    )
    assert row["cn_gfsp_2025__missing"] == ["cn_hydro_in_14fyp_base"]
    listed = one(activity="hydropower", cn_hydro_in_14fyp_base="是")
    assert listed["cn_gfsp_2025__status"] == "eligible"


@pytest.mark.parametrize(
    ("answer", "result"),
    [
        ("✓", "pass"),
        ("1.0", "pass"),  # a 1 in a spreadsheet cell read back as text
        ("Ｙｅｓ", "pass"),  # full-width, as an IME may type it
        ("否", "fail"),
        ("×", "fail"),
        ("x", "unknown"),  # a cross marks no as often as yes: read as neither
    ],
)
def test_evidence_yes_no_uses_the_readers_vocabulary(answer: str, result: str) -> None:
    # greenscreen.vocabularies.BOOLEANS: the yes/no of template columns and evidence fields
    found = decisions(activity="hydropower", cn_hydro_in_14fyp_base=answer).filter(
        pl.col("criterion") == "14fyp-hydro-base"
    )
    assert found["result"].to_list() == [result]


@pytest.mark.parametrize(
    ("star", "status", "item"), [(2, "eligible", "6.1.1"), (0, "insufficient_data", "6.1.2")]
)
def test_green_building_star_rating(star: int, status: str, item: str) -> None:
    # 2025 catalogue 6.1.1: 达到1星级及以上绿色建筑标准. An unrated building fails 6.1.1; it could
    # still qualify under 6.1.2 (GB/T 51350), which needs evidence.
    result = screen([{"project_id": "P", "activity": "building_new", "green_building_star": star}])
    row = result.results.row(0, named=True)
    assert (row["cn_gfsp_2025__status"], row["cn_gfsp_2025__item"]) == (status, item)
    star_rule = result.decisions.filter(
        (pl.col("rulebook") == "cn_gfsp_2025") & (pl.col("criterion") == "star-1")
    ).row(0, named=True)
    assert star_rule["result"] == ("pass" if star >= 1 else "fail")
    assert star_rule["clause"].startswith("绿色金融支持项目目录（2025年版） 6.1.1")


@pytest.mark.parametrize(
    ("grade", "status"), [(1, "eligible"), (2, "eligible"), (3, "not_eligible")]
)
def test_data_centre_gb40879_grade(grade: int, status: str) -> None:
    # 2025 catalogue 6.6.2: 电能比不低于 GB 40879 中 2 级能效水平.
    assert (
        one(activity="data_centre", data_centre_gb40879_grade=grade)["cn_gfsp_2025__status"]
        == status
    )


@pytest.mark.parametrize(("pue", "status"), [(1.25, "eligible"), (1.6, "not_eligible")])
def test_data_centre_pue_against_gb40879_level_2(pue: float, status: str) -> None:
    # 2025 catalogue 6.6.2 绿色数据中心建设 (4910 / 4920, √√): 电能比不低于 GB 40879 2 级. Without
    # an assessed level the measured PUE is compared with the level-2 limit 1.30 (GB 40879-2021
    # 表1 as commonly quoted; shipped as unverified because the standard is not in the sources).
    result = screen([{"project_id": "P", "activity": "data_centre", "pue": pue}])
    row = result.results.row(0, named=True)
    assert (row["cn_gfsp_2025__status"], row["cn_gfsp_2025__item"]) == (status, "6.6.2")
    assert row["cn_gfsp_2025__ghg_mark"] == "√√"
    rule = result.decisions.filter(
        (pl.col("rulebook") == "cn_gfsp_2025") & (pl.col("criterion") == "gb40879-level2")
    ).row(0, named=True)
    assert rule["value"] == f"data_centre_gb40879_grade=(missing); pue={pue}"
    assert rule["verification"] == "unverified"
    # an assessed level decides over the PUE
    graded = one(activity="data_centre", pue=pue, data_centre_gb40879_grade=3)
    assert graded["cn_gfsp_2025__status"] == "not_eligible"


def test_unrated_building_is_not_eligible_under_6_1_1() -> None:
    # 2025 catalogue 6.1.1 绿色建筑建设和运营: 达到1星级及以上绿色建筑标准. Screened under 6.1.1
    # (the claimed item), an unrated building is not eligible; a 2-star one is.
    unrated = one(activity="building_new", green_building_star=0, cn_gfsp_2025_item="6.1.1")
    assert (unrated["cn_gfsp_2025__status"], unrated["cn_gfsp_2025__item"]) == (
        "not_eligible",
        "6.1.1",
    )
    assert unrated["cn_gfsp_2025__criteria"] == "star-1=fail"
    rated = one(activity="building_new", green_building_star=2, cn_gfsp_2025_item="6.1.1")
    assert (rated["cn_gfsp_2025__status"], rated["cn_gfsp_2025__criteria"]) == (
        "eligible",
        "star-1=pass",
    )


def test_user_side_battery_is_4_3_2_with_direct_reduction_mark() -> None:
    # 2025 catalogue 4.3.2 新型储能设施建设和运营: electrochemical storage of power users
    # (各用电、用热（冷）行业, no GB/T code in the PDF) is in scope whatever the user's industry.
    row = one(
        activity="battery_storage",
        province="上海",
        storage_energy_mwh=30,
        storage_power_mw=10,
        cycles_per_year=600,
        industry_code="C3825",
        lingang_user_side_storage="是",
        approval_date="2025-11-01",
    )
    assert (row["cn_gfsp_2025__status"], row["cn_gfsp_2025__item"]) == ("eligible", "4.3.2")
    assert row["cn_gfsp_2025__ghg_mark"] == "√√"
    assert row["cn_gfsp_2025__criteria"] == "scope=pass"  # the 条件/标准 describe the activity


def test_an_industry_code_alone_reaches_the_catalogue_items_of_its_row() -> None:
    # GB/T 4754 3441 泵及真空设备制造 is a row of 1.1.5 节能泵及真空设备制造 (√): with no activity
    # the code puts the project in scope and the item's 条件/标准 must be met: the graded pump
    # standards (measured, issue 16) and the attested rest.
    row = one(industry_code="C3441", description="磁悬浮真空泵生产线")
    assert (row["cn_gfsp_2025__status"], row["cn_gfsp_2025__item"]) == (
        "insufficient_data",
        "1.1.5",
    )
    assert row["cn_gfsp_2025__missing"][-1] == "cn_gfsp_1_1_5_met"
    assert "gb32284_grade" in row["cn_gfsp_2025__missing"]
    assert row["cn_gfsp_2025__ghg_mark"] == "√"
    met = one(industry_code="3441", gb32284_grade=1, cn_gfsp_1_1_5_met="是")
    assert (met["cn_gfsp_2025__status"], met["cn_gfsp_2025__item"]) == ("eligible", "1.1.5")


def test_ghg_mark_follows_the_row_when_an_items_rows_differ() -> None:
    # 2025 catalogue 3.2.9 木材高效加工及循环利用: 7514 √, 7516 no mark (PDF p. 76).
    marked = one(industry_code="M7514", cn_gfsp_2025_item="3.2.9")
    unmarked = one(industry_code="M7516", cn_gfsp_2025_item="3.2.9")
    assert marked["cn_gfsp_2025__item"] == unmarked["cn_gfsp_2025__item"] == "3.2.9"
    assert (marked["cn_gfsp_2025__ghg_mark"], unmarked["cn_gfsp_2025__ghg_mark"]) == ("√", None)


def test_a_claimed_item_is_the_only_item_screened() -> None:
    # Naming 4.2.9 (热泵) for a solar project screens it under 4.2.9 only; an unknown code is in
    # the scope of no item.
    assert one(activity="solar_pv", cn_gfsp_2025_item="4.2.9")["cn_gfsp_2025__item"] == "4.2.9"
    wrong = one(activity="solar_pv", cn_gfsp_2025_item="4.2.99")
    assert (wrong["cn_gfsp_2025__status"], wrong["cn_gfsp_2025__item"]) == ("not_eligible", None)


def test_cgt_crosswalk_needs_both_sides() -> None:
    # cgt_2022 pairs cn_gbepc_2021 3.2.4 (large hydro) with EU Annex I 4.5; aligned only when
    # both sides are met (pairs are greenscreen's, flagged unverified in the file).
    both = one(activity="hydropower", power_density_w_m2=6, cn_hydro_in_13fyp_base="yes", **SAFE)
    assert (both["cgt_2022__status"], both["cgt_2022__item"]) == ("aligned", "3.2.4~4.5")
    eu_only = one(activity="hydropower", power_density_w_m2=6, cn_hydro_in_13fyp_base="no", **SAFE)
    assert eu_only["cgt_2022__status"] == "not_eligible"
    undecided = one(activity="hydropower", power_density_w_m2=6, **SAFE)
    assert undecided["cgt_2022__status"] == "insufficient_data"
    assert one(activity="coal_power")["cgt_2022__status"] == "not_eligible"


def test_cgt_asks_for_the_eu_side_fields_not_for_an_internal_status() -> None:
    # The CGT pair is undecided because the EU side lacks the lifecycle figure: the client is
    # asked for that figure, never for "eu_taxonomy__status".
    row = one(activity="hydropower", power_density_w_m2=4, cn_hydro_in_13fyp_base="yes")
    assert row["eu_taxonomy__status"] == "insufficient_data"
    assert row["cgt_2022__status"] == "insufficient_data"
    assert set(row["eu_taxonomy__missing"]) <= set(row["cgt_2022__missing"])
    assert not any(f.endswith(("__status", "__item")) for f in row["cgt_2022__missing"])


def test_the_rule_basis_is_recorded() -> None:
    assert one(activity="solar_pv")["rules_basis"] == "current rules (no approval_date)"
    assert one(activity="solar_pv", approval_date="2024-06-01")["rules_basis"] == "approval_date"


def test_the_decisions_file_keeps_labels_as_dictionaries(sample_result, tmp_path) -> None:
    # issue 23: the label columns (a few hundred texts on millions of rows) and the names in
    # `fields` are written dictionary-encoded over the rulebooks' closed vocabulary; Python
    # code reads them as text, the values are the same
    import pyarrow as pa
    import pyarrow.parquet as pq

    from greenscreen.engine import DECISION_SCHEMA, decision_vocabulary

    sample_result.write_data(tmp_path)
    stored = pq.read_schema(tmp_path / "decisions.parquet")
    labels = {"rulebook", "item", "criterion", "result", "threshold", "clause", "verification"}
    for name in stored.names:
        kind = stored.field(name).type
        if name == "fields":
            kind = kind.value_type
        assert pa.types.is_dictionary(kind) == (name in labels | {"fields"}), name
    assert sample_result.decisions.schema == DECISION_SCHEMA
    read = pl.read_parquet(tmp_path / "decisions.parquet")
    assert read.cast(dict(DECISION_SCHEMA)).equals(sample_result.decisions)
    words = decision_vocabulary(sample_result.rulebooks)
    assert read.schema["result"] == pl.Enum(["fail", "pass", "unknown"])
    assert read.schema["clause"] == pl.Enum(words["clause"])
    assert read.schema["fields"] == pl.List(pl.Enum(words["fields"]))
    # every bundled clause is in the vocabulary, whether or not the sample reaches its item
    clauses = {c.clause for b in sample_result.rulebooks for i in b.leaf_items for c in i.criteria}
    assert clauses <= set(words["clause"]) and len(words["clause"]) > 400
    assert set(read["clause"].cast(pl.String).unique()) < set(words["clause"])


def test_the_decision_vocabulary_holds_every_scope_row_threshold() -> None:
    # a regional item meeting a Chinese project without a province, an industry code that
    # contradicts the activity: each scope row's threshold is a word of the vocabulary (a
    # text outside it would make building the decisions fail, never write a wrong label)
    from greenscreen.engine import decision_vocabulary

    result = screen(
        [
            {"project_id": "A", "activity": "coal_power", "country": "CN"},
            {"project_id": "B", "activity": "solar_pv", "industry_code": "4411"},
        ]
    )
    rows = result.decisions.filter(pl.col("criterion").is_in(["province", "industry_code"]))
    regional = rows.filter(project_id="A", criterion="province")
    conflict = rows.filter(project_id="B", criterion="industry_code")
    assert regional.height >= 2 and conflict.height >= 1
    assert set(regional["threshold"]) == {
        "province in Shandong (a regional rule)",
        "province in Guangdong (a regional rule)",
    }
    assert conflict["threshold"].str.starts_with("industry_code one of the item's GB/T rows").all()
    assert set(rows["result"]) == {"unknown"}
    assert set(rows["threshold"]) <= set(decision_vocabulary(result.rulebooks)["threshold"])


def test_values_per_code_combination_are_exact() -> None:
    # the engine describes a million rows once per distinct combination of their integer
    # codes; every row must get its own combination's value, also where the codes' ranges
    # multiply past 64 bits (the combinations are numbered a column at a time)
    import numpy as np

    from greenscreen import engine

    keys = pl.DataFrame(
        {"a": [1, 2, 1, None, 2, None], "b": [["x"], ["y"], ["x"], None, ["y"], None]}
    )
    codes = [np.array([0, 1, 0, 2, 1, 2]), np.array([2**40, 7, 2**40, 0, 7, 0])]
    codes.append(np.array([2**40, 2**40, 2**40, 0, 2**40, 0]))
    calls: list[tuple] = []

    def describe(a: int | None, b: list[str] | None) -> str:
        calls.append((a, b))
        return f"{a}:{b}"

    values = engine._per_codes(keys, codes, describe, pl.String())
    assert values.to_list() == [f"{a}:{b}" for a, b in keys.iter_rows()]
    assert len(calls) == 3  # once per distinct combination
    assert engine._per_codes(keys.head(0), [c[:0] for c in codes], describe, pl.String()).len() == 0


def test_projects_in_several_chunks_are_screened_as_one() -> None:
    """A pipeline read with repeated activities and provinces, and the same projects handed
    to the engine as a frame of unaligned chunks (one column in two parts): the same results
    and decisions. polars 2.1's streaming engine panicked formatting the
    decisions of such a frame (`assertion failed: i < self.len()`)."""
    from greenscreen import read_pipeline
    from greenscreen.engine import evaluate
    from greenscreen.rulebook import bundled_rulebooks

    rows = [
        {"project_id": f"P{i}", "activity": a, "province": p, "capacity_mw": "10"}
        for i, (a, p) in enumerate([("solar_pv", "陕西"), ("coal_power", "Henan")] * 5)
    ]
    projects = read_pipeline(rows).projects
    assert {c.n_chunks() for c in projects.get_columns()} == {1}
    activity = pl.concat([projects["activity"][:6], projects["activity"][6:]], rechunk=False)
    halves = projects.with_columns(activity)  # one column in two chunks, the others in one
    assert halves["activity"].n_chunks() == 2 and halves["province"].n_chunks() == 1
    books = bundled_rulebooks()
    whole, parts = evaluate(projects, books), evaluate(halves, books)
    assert parts.per_project.equals(whole.per_project)
    assert parts.decisions.equals(whole.decisions)
    assert whole.decisions.height > 10 * len(books)
