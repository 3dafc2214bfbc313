"""Subsidy and relending programmes: boundaries, caps, schedules, relending, bad files.

Programme facts: shared/reference/seed_facts.md (seeds 002 and 003) and taxonomy_facts.md §B.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml

from greenscreen import RulebookError, screen
from greenscreen.subsidy import AWARD_COLUMNS, SubsidyConfig, load_programme, load_programmes

LINGANG = {
    "activity": "battery_storage",
    "province": "上海",
    "cod": "2025-06-30",
    "storage_energy_mwh": 30,
    "storage_power_mw": 15,  # 2 h exactly
    "cycles_per_year": 450,
    "lingang_user_side_storage": "是",
}


def award(
    programme: str, code: str, config: SubsidyConfig | None = None, **project: object
) -> dict:
    result = screen([{"project_id": "P", **project}], subsidies=config)
    assert result.subsidies is not None
    table = result.subsidies.awards.filter(
        (pl.col("programme") == programme) & (pl.col("award") == code)
    )
    return {**table.row(0, named=True), "_result": result}


def test_lingang_boundaries() -> None:
    """Seed 003: commissioned 2024–2026, ≥ 1 MWh, ≥ 2 h, ≥ 450 cycles a year."""
    assert award("lingang_storage", "user-side-storage", **LINGANG)["status"] == "eligible"
    assert (
        award("lingang_storage", "user-side-storage", **{**LINGANG, "cycles_per_year": 449})[
            "status"
        ]
        == "not_eligible"
    )
    assert (
        award("lingang_storage", "user-side-storage", **{**LINGANG, "cod": "2027-01-01"})["status"]
        == "not_eligible"
    )
    assert (
        award("lingang_storage", "user-side-storage", **{**LINGANG, "storage_power_mw": 15.01})[
            "status"
        ]
        == "not_eligible"
    )
    assert (
        award("lingang_storage", "user-side-storage", **{**LINGANG, "cod": "2024-01-01"})["status"]
        == "eligible"
    )


def test_lingang_30_mwh_is_capped_and_paid_over_three_years() -> None:
    """30 MWh × 1,000 kWh/MWh × 200 yuan/kWh = 6,000,000 → cap 5,000,000, 1/3 a year."""
    row = award("lingang_storage", "user-side-storage", **LINGANG)
    assert (row["gross_amount"], row["final_amount"], row["cap_applied"]) == (
        6_000_000,
        5_000_000,
        True,
    )
    result = row["_result"]
    schedule = result.subsidies.schedule.filter(pl.col("award") == "user-side-storage")
    assert schedule["year"].to_list() == [2025, 2026, 2027]
    assert schedule["amount"].to_list() == pytest.approx([5_000_000 / 3] * 3)
    assert result.results["subsidy_total"][0] == pytest.approx(5_000_000)
    # the schedule's start year is a helper column: the awards table is the output contract
    assert result.subsidies.awards.columns == [*AWARD_COLUMNS, "funding_benefit"]


def test_lingang_without_the_location_attestation_names_it() -> None:
    row = award(
        "lingang_storage", "user-side-storage", **{**LINGANG, "lingang_user_side_storage": None}
    )
    assert row["status"] == "insufficient_data"
    assert row["missing"] == ["lingang_user_side_storage"]
    # undecided: no final amount, but what the attestation would unlock is the potential
    assert (row["gross_amount"], row["final_amount"], row["potential_amount"]) == (
        6_000_000,
        None,
        5_000_000,
    )
    results = row["_result"].results.row(0, named=True)
    assert (results["subsidy_total"], results["subsidy_potential"]) == (0, 5_000_000)
    # a missing amount input is not an attestation: no potential
    unsized = award(
        "lingang_storage",
        "user-side-storage",
        **{**LINGANG, "lingang_user_side_storage": None, "storage_energy_mwh": None},
    )
    assert unsized["status"] == "insufficient_data"
    assert unsized["potential_amount"] is None


def test_an_award_not_eligible_pays_nothing() -> None:
    """Issue 18 item 3: GS-003 (Chongqing, a 2nd-prize building) is not eligible for the 1st
    prize: its gross calculation is shown, its final amount is 0; the same for CERF relending of
    a coal plant."""
    building = {
        "activity": "building_new",
        "province": "重庆",
        "floor_area_m2": 80_000,
        "green_building_award": 2,
        "cod": "2027-06-30",
    }
    first = award("cq_green_building_demo", "prize-1", **building)
    assert (first["status"], first["gross_amount"], first["final_amount"]) == (
        "not_eligible",
        4_800_000,
        0,
    )
    coal = award("pboc_cerf_relending", "refinancing", activity="coal_power", loan_amount=1e8)
    assert (coal["status"], coal["gross_amount"], coal["final_amount"]) == (
        "not_eligible",
        60_000_000,
        0,
    )
    assert coal["_result"].results["relending_refinanceable"][0] is None


def test_chongqing_second_prize_80000_m2_is_capped() -> None:
    """Seed 002: 2nd prize 40 yuan/m² × 80,000 m² = 3,200,000 → cap 2,000,000."""
    building = {
        "activity": "building_new",
        "province": "重庆",
        "floor_area_m2": 80_000,
        "green_building_award": 2,
        "cod": "2027-06-30",
    }
    row = award("cq_green_building_demo", "prize-2", **building)
    assert (row["status"], row["gross_amount"], row["final_amount"], row["cap_applied"]) == (
        "eligible",
        3_200_000,
        2_000_000,
        True,
    )
    assert award("cq_green_building_demo", "prize-1", **building)["status"] == "not_eligible"
    small = award(
        "cq_green_building_demo",
        "prize-3",
        **{**building, "green_building_award": 3, "floor_area_m2": 10_000},
    )
    assert (small["final_amount"], small["cap_applied"]) == (200_000, False)
    elsewhere = screen([{"project_id": "P", **{**building, "province": "四川"}}])
    assert elsewhere.subsidies is not None
    listed = elsewhere.subsidies.awards.filter(pl.col("programme") == "cq_green_building_demo")
    assert listed.height == 0  # out of scope: not_eligible, not listed
    assert elsewhere.results["subsidy_total"][0] == 0


def test_cerf_refinances_60_percent_of_an_eligible_loan() -> None:
    """Taxonomy facts §B: 60 % of principal at 1.75 %, 1 year, rollable twice."""
    wind = {"activity": "wind_onshore", "loan_amount": 100_000_000}
    row = award("pboc_cerf_relending", "refinancing", **wind)
    assert (row["status"], row["final_amount"]) == ("eligible", 60_000_000)
    assert row["_result"].results["relending_refinanceable"][0] == 60_000_000
    assert row["_result"].results["subsidy_total"][0] == 0  # bank funding, not project income
    # funding benefit against a 2.5 % funding cost: 60,000,000 × (2.5 % − 1.75 %) × 3 years
    priced = award("pboc_cerf_relending", "refinancing", SubsidyConfig(funding_cost=0.025), **wind)
    assert priced["funding_benefit"] == pytest.approx(1_350_000)
    coal = award("pboc_cerf_relending", "refinancing", activity="coal_power", loan_amount=1e8)
    assert coal["status"] == "not_eligible"
    unknown_amount = award("pboc_cerf_relending", "refinancing", activity="wind_onshore")
    assert (unknown_amount["status"], unknown_amount["missing"]) == (
        "insufficient_data",
        ["loan_amount"],
    )


def test_industry_support_range_and_up_to() -> None:
    core = award(
        "lingang_storage",
        "core-tech-breakthrough",
        province="上海",
        activity="battery_storage",
        total_investment=50_000_000,
        lingang_core_tech_breakthrough="yes",
    )
    assert (core["final_amount"], core["final_amount_max"]) == (5_000_000, 15_000_000)  # 10–30 %
    first = award(
        "lingang_storage",
        "first-of-kind-international",
        province="上海",
        activity="battery_storage",
        contract_value=200_000_000,
        first_of_kind="International",
    )
    assert (first["status"], first["final_amount"], first["up_to"]) == (
        "eligible",
        30_000_000,
        True,
    )  # 20 % capped at 30M
    totals = first["_result"].results.row(0, named=True)
    assert (totals["subsidy_total"], totals["subsidy_total_max"]) == (0, 30_000_000)


def test_programme_files_with_bad_conditions_fail_with_file_and_award(tmp_path: Path) -> None:
    source = Path(__file__).parents[1] / "taxonomies" / "prog_cq_green_building_demo.yaml"
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data["awards"][1]["criteria"][2]["condition"] = "green_building_awrd = 2"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(
        RulebookError,
        match=r"file bad.yaml, item prize-2, criterion award-2: .*unknown input field 'green_buil",
    ):
        load_programme(bad)
    data["awards"][1]["criteria"][2]["condition"] = "green_building_award = 2"
    data["awards"][1]["amount"]["cap"] = -1
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RulebookError, match=r"item prize-2: amount.cap"):
        load_programme(bad)


def test_banks_add_their_own_programmes(tmp_path: Path) -> None:
    source = Path(__file__).parents[1] / "taxonomies" / "prog_cq_green_building_demo.yaml"
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data.update(id="bank_local_building", version="1")
    (tmp_path / "local.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    ids = {p.id for p in load_programmes(tmp_path)}
    assert {"bank_local_building", "cq_green_building_demo", "lingang_storage"} <= ids


def test_totals_per_project_in_a_mixed_pipeline() -> None:
    """Each project's totals come from its own awards, whatever the order of the rows: an
    eligible Lingang storage project (the 30 MWh award above) between a CERF-eligible wind
    farm and a project with no award; no programme evaluated at all, no totals."""
    projects = [
        {"project_id": "wind", "activity": "wind_onshore", "loan_amount": 100_000_000},
        {"project_id": "none", "activity": "coal_power", "loan_amount": 1e8},
        {"project_id": "storage", **LINGANG},
    ]
    rows = {r["project_id"]: r for r in screen(projects).results.iter_rows(named=True)}
    lingang = award("lingang_storage", "user-side-storage", **LINGANG)
    assert rows["storage"]["subsidy_total"] == lingang["final_amount"] > 0
    assert rows["storage"]["subsidy_awards"] == ["lingang_storage:user-side-storage"]
    assert rows["storage"]["relending_refinanceable"] is None
    # PBoC CERF refinances 60 % of loan principal (taxonomy_facts.md §B, [V] Xinhua)
    assert rows["wind"]["relending_refinanceable"] == 60_000_000
    assert (rows["wind"]["subsidy_total"], rows["wind"]["subsidy_awards"]) == (0, None)
    assert (rows["none"]["subsidy_total"], rows["none"]["relending_refinanceable"]) == (0, None)
    bare = screen(projects, programmes=[])
    assert bare.subsidies is not None and bare.subsidies.awards.height == 0
    assert bare.subsidies.schedule.height == 0
    assert bare.results["subsidy_total"].to_list() == [0, 0, 0]
    assert bare.results["subsidy_awards"].to_list() == [None, None, None]
