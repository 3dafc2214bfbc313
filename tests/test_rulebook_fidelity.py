"""Regression tests for the findings of the rulebook review (issue 15): each statement below is
a claim about a legal text, with the clause it comes from. Every test failed before its fix."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
import yaml

from greenscreen import explain, screen
from greenscreen.rulebook import load_rulebook, load_rulebooks

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"


def one(**project: object) -> dict:
    """Screen one project and return its results row."""
    result = screen([{"project_id": "P", **project}])
    assert result.rejects.height == 0, result.rejects.to_dicts()
    return result.results.row(0, named=True)


def eu(**project: object) -> tuple[str, bool | None, list[str] | None]:
    row = one(**project)
    return row["eu_taxonomy__status"], row["eu_taxonomy__sc_met"], row["eu_taxonomy__missing"]


SAFE = {"eu_dnsh_evidenced": "yes", "eu_minimum_safeguards": "yes"}


# --------------------------------------------------------------------------------------------
# EU Taxonomy. Text: EU Taxonomy Compass 1.0.4 export of Delegated Regulation (EU) 2021/2139,
# Annex I (tests/data/eu_taxonomy_compass_1.0.4_mitigation.json).
def test_6_5_threshold_follows_the_approval_date() -> None:
    # Annex I 6.5: "until 31 December 2025, specific emissions of CO2 … are lower than
    # 50gCO2/km …; from 1 January 2026 … are zero."
    car = {"activity": "ev_passenger", "powertrain": "phev", "tailpipe_gco2_per_km": 40, **SAFE}
    assert eu(**car, approval_date="2024-06-01")[:2] == ("aligned", True)
    assert eu(**car, approval_date="2026-03-01")[:2] == ("eligible", False)
    # a battery-electric car is zero-emission whatever the date; without powertrain or a
    # tailpipe figure the criterion is unknown (it used to pass on coalesce(tailpipe, 0) = 0)
    assert eu(activity="ev_passenger", powertrain="bev", approval_date="2026-03-01", **SAFE)[
        :2
    ] == ("aligned", True)
    status, sc, missing = eu(activity="ev_passenger", approval_date="2026-03-01", **SAFE)
    assert (status, sc) == ("insufficient_data", None)
    assert missing == ["powertrain", "tailpipe_gco2_per_km"]


def test_4_29_gas_has_the_550_kg_per_kw_alternative_and_its_dates() -> None:
    # Complementary Climate DA, Annex I 4.29 1(b): direct < 270 gCO2e/kWh, or annual direct
    # emissions ≤ 550 kgCO2e/kW of capacity on average over 20 years (eu_taxonomy_tsc.md);
    # the Act applies from 1 January 2023.
    gas = {"activity": "gas_power", "eu_gas_transition_conditions": "yes", **SAFE}
    assert eu(**gas, gas_avg_direct_kgco2e_per_kw=500, approval_date="2024-01-01")[0] == "aligned"
    assert eu(**gas, gas_avg_direct_kgco2e_per_kw=600, direct_gco2e_per_kwh=350)[0] == (
        "insufficient_data"  # life-cycle route (a) still open
    )
    assert eu(**gas, gas_avg_direct_kgco2e_per_kw=500, approval_date="2022-06-01")[0] == (
        "not_eligible"  # gas was not in the taxonomy before 2023
    )
    item = load_rulebook("eu_taxonomy").item("4.29")
    assert str(item.since) == "2023-01-01"
    assert item.verification == "secondary"  # figures from a summary of the draft act
    assert {c.verification for c in item.criteria if c.component is None} <= {"secondary"}
    assert {c.verification for c in item.criteria if c.id.startswith("sc")} == {"secondary"}


def test_7_7_distinguishes_buildings_built_before_and_after_2020() -> None:
    # Annex I 7.7: 1. built before 31 December 2020: EPC A or top 15 %; 2. built after:
    # the criteria of 7.1; 3. large non-residential (> 290 kW): efficiently operated.
    base = {"activity": "building_acquisition", "eu_building_residential": "yes", **SAFE}
    assert eu(**base, epc_class="A", building_year_built=2015)[:2] == ("aligned", True)
    late = {"epc_class": "A", "building_year_built": 2022, "floor_area_m2": 3000}
    assert eu(**base, **late, eu_ped_kwh_m2=70, eu_nzeb_ped_kwh_m2=60)[:2] == ("eligible", False)
    assert eu(
        **base,
        building_year_built=2022,
        eu_ped_kwh_m2=50,
        eu_nzeb_ped_kwh_m2=60,
        floor_area_m2=3000,
    )[:2] == ("aligned", True)
    office = {
        **base,
        "eu_building_residential": "no",
        "epc_class": "A",
        "building_year_built": 2010,
    }
    assert eu(**office, eu_hvac_rated_output_kw=200)[0] == "aligned"
    assert eu(**office, eu_hvac_rated_output_kw=500, eu_efficient_operation_monitored="no")[:2] == (
        "eligible",
        False,
    )
    assert eu(**office, eu_hvac_rated_output_kw=500)[2] == ["eu_efficient_operation_monitored"]


def test_7_2_is_a_30_percent_cut_in_primary_energy_demand_against_before() -> None:
    # Annex I 7.2: "it leads to a reduction of primary energy demand (PED) of at least 30 %".
    reno = {"activity": "building_renovation", **SAFE}
    assert eu(**reno, eu_ped_kwh_m2=70, eu_ped_before_renovation_kwh_m2=100)[1] is True
    assert eu(**reno, eu_ped_kwh_m2=71, eu_ped_before_renovation_kwh_m2=100, eu_major_renovation=0)[
        :2
    ] == ("eligible", False)
    # operational energy use against a reference building is a different quantity: not used
    status, _, missing = eu(**reno, energy_use_kwh_m2=50, baseline_energy_use_kwh_m2=100)
    assert status == "insufficient_data"
    assert "eu_ped_before_renovation_kwh_m2" in missing


def test_7_1_6_6_and_6_3_carry_their_further_conditions() -> None:
    # 7.1 2.–3.: buildings > 5,000 m² need air-tightness/thermal testing and a disclosed
    # life-cycle GWP.
    new = {"activity": "building_new", "eu_ped_10pct_below_nzeb": "yes", **SAFE}
    assert eu(**new, floor_area_m2=4000)[0] == "aligned"
    status, _, missing = eu(**new, floor_area_m2=8000)
    assert status == "insufficient_data"
    assert missing == ["eu_airtightness_thermal_tested", "eu_lifecycle_gwp_disclosed"]
    # 6.6 1.(c)(ii) low-emission heavy-duty vehicles where zero is not feasible; 2. vehicles
    # not dedicated to the transport of fossil fuels.
    truck = {"activity": "ev_truck", **SAFE}
    assert eu(**truck, powertrain="bev", eu_not_fossil_fuel_transport="yes")[0] == "aligned"
    assert (
        eu(
            **truck,
            powertrain="ice",
            eu_low_emission_hdv_not_feasible="yes",
            eu_not_fossil_fuel_transport="yes",
        )[0]
        == "aligned"
    )
    assert eu(**truck, powertrain="bev", eu_not_fossil_fuel_transport="no")[0] == "eligible"
    # 6.3 (b): until 31 December 2025, interurban M2/M3 coaches meeting the latest Euro VI.
    coach = {"activity": "ev_bus", "powertrain": "ice", "eu_interurban_bus_euro_vi": "yes", **SAFE}
    assert eu(**coach, approval_date="2025-06-01")[0] == "aligned"
    assert eu(**coach, approval_date="2026-01-02")[0] == "insufficient_data"  # (a) only


def test_aligned_needs_substantial_contribution_dnsh_and_minimum_safeguards() -> None:
    # Regulation (EU) 2020/852 Art. 3: an activity is environmentally sustainable when it
    # contributes substantially, does no significant harm and meets the minimum safeguards.
    status, sc, missing = eu(activity="solar_pv")
    assert (status, sc) == ("insufficient_data", True)
    assert missing == ["eu_dnsh_evidenced", "eu_minimum_safeguards"]
    assert eu(activity="solar_pv", **SAFE)[:2] == ("aligned", True)
    assert eu(activity="solar_pv", eu_dnsh_evidenced="no", eu_minimum_safeguards="yes")[:2] == (
        "eligible",
        True,
    )
    # substantial contribution failing decides "eligible" whatever DNSH says
    assert eu(activity="hydropower", power_density_w_m2=3, hydro_run_of_river="no",
              lifecycle_gco2e_per_kwh=150)[:2] == ("eligible", False)  # fmt: skip
    assert eu(activity="coal_power")[:2] == ("not_eligible", None)


# --------------------------------------------------------------------------------------------
# China 2025 catalogue (绿色金融支持项目目录（2025年版）, taxonomies/sources/cn_gfsp_2025_items.csv)
def cn(**project: object) -> tuple[str, str | None, list[str] | None]:
    row = one(**project)
    return row["cn_gfsp_2025__status"], row["cn_gfsp_2025__item"], row["cn_gfsp_2025__missing"]


def test_9_1_1_new_energy_vehicles_are_battery_electric_or_fuel_cell() -> None:
    # 9.1.1 备注: 新能源汽车范围包括纯电动汽车、燃料电池汽车。
    assert cn(activity="ev_passenger", powertrain="纯电动")[:2] == ("eligible", "9.1.1")
    assert cn(activity="ev_passenger", powertrain="燃料电池")[0] == "eligible"
    assert cn(activity="ev_passenger", powertrain="插电式混合动力")[0] == "not_eligible"
    assert cn(activity="ev_passenger") == ("insufficient_data", "9.1.1", ["powertrain"])


def test_powertrain_is_a_closed_vocabulary() -> None:
    result = screen([{"project_id": "P", "activity": "ev_passenger", "powertrain": "steam"}])
    assert result.rejects.select("field", "code").row(0) == ("powertrain", "unknown_value")
    assert "bev, fcev, phev, hev, ice" in result.rejects["reason"][0]


def test_4_2_8_clean_power_is_asked_only_for_production_rows() -> None:
    # 4.2.8 rows 2619 / 2541 / 4413 / 4415 / 4416: 以可再生能源电力，核电电力电解水制氢 …;
    # 5266 加氢站, 5720 氢气管道 and 4420 电网企业电解水制氢 name no power source.
    claim = {"cn_gfsp_2025_item": "4.2.8"}
    assert cn(activity="hydrogen_electrolysis") == (
        "insufficient_data",
        "4.2.8",
        ["cn_hydrogen_from_clean_power"],
    )
    assert cn(industry_code="2619", **claim)[2] == ["cn_hydrogen_from_clean_power"]
    for code in ("5266", "5720", "4420"):
        assert cn(industry_code=code, **claim) == ("eligible", "4.2.8", None), code


def test_6_1_3_refrigerant_remark_and_rows() -> None:
    # 6.1.3 备注: 建筑空调制冷系统、低温仓储制冷设施改造应采用使用消耗臭氧潜能值为 0 和全球升温
    # 潜能值小于 750 制冷剂的空调制冷设备。 Row 7020 (物业管理) names no retrofit standard.
    reno = {
        "activity": "building_renovation",
        "cn_building_retrofit_standards_met": "yes",
        "cn_green_construction_met": "yes",
        "building_retrofit_cooling": "yes",
        "refrigerant_odp": 0,
    }
    assert cn(**reno, refrigerant_gwp=675)[0] == "eligible"  # R32
    assert cn(**reno, refrigerant_gwp=2088)[0] == "not_eligible"  # R410A
    assert cn(**{**reno, "building_retrofit_cooling": "no"})[0] == "eligible"
    assert cn(**{**reno, "refrigerant_odp": None}, refrigerant_gwp=675)[2] == ["refrigerant_odp"]
    operation = cn(activity="building_renovation", industry_code="7020")
    assert operation == ("insufficient_data", "6.1.3", ["cn_building_efficient_operation"])


def test_4_2_3_liquid_biofuel_is_non_grain_only() -> None:
    # 4.2.3 row 2541: 非粮原料生物质液体燃料生产设施运营活动。
    claim = {"cn_gfsp_2025_item": "4.2.3", "industry_code": "2541"}
    assert cn(**claim, cn_biofuel_non_grain_feedstock="no")[0] == "not_eligible"
    assert cn(**claim, cn_biofuel_non_grain_feedstock="yes")[0] == "eligible"
    assert cn(activity="biomass_power")[0] == "eligible"  # 4417: no feedstock condition


def test_6_2_8_stations_need_gb12349_and_tbt10429() -> None:
    # 6.2.8 row 4790: 铁路客运站、货运站需符合《工业企业厂界环境噪声排放标准》（GB 12349）…，
    # 客运站依据《绿色铁路客站评价标准》（TB/T 10429）…达到绿色客站标准。
    station = {"cn_gfsp_2025_item": "6.2.8", "industry_code": "4790"}
    assert cn(**station)[2] == [
        "cn_rail_station_gb12349_compliant",
        "cn_rail_passenger_station",
        "cn_rail_tbt10429_green_station",
    ]
    freight = {**station, "cn_rail_station_gb12349_compliant": "yes"}
    assert cn(**freight, cn_rail_passenger_station="no")[0] == "eligible"
    assert cn(**freight, cn_rail_passenger_station="yes", cn_rail_tbt10429_green_station="no")[
        0
    ] == ("not_eligible")
    # a line is asked about protected areas, not about stations
    assert cn(activity="rail_electrified")[2] == [
        "cn_rail_protected_area_crossing",
        "cn_rail_ecological_assessment",
    ]


def test_9_1_2_accepts_every_referenced_item() -> None:
    # 9.1.2 备注: 绿色低碳建筑范围，以及符合性条件参照本目录 6.1.1、6.1.2、6.1.3、6.1.4、6.1.6 …
    buy = {"activity": "building_acquisition"}
    for field in (
        "cn_gbt51350_compliant",
        "cn_building_retrofit_standards_met",
        "cn_rural_housing_gbt50824",
        "cn_prefab_standards_met",
    ):
        assert cn(**buy, **{field: "yes"})[:2] == ("eligible", "9.1.2"), field
    assert cn(**buy, green_building_star=1)[0] == "eligible"
    # five routes; 6.1.2's is the GB/T 51350 level, else its attestation
    assert cn(**buy)[2] == [
        "green_building_star",
        "gbt51350_level",
        "cn_gbt51350_compliant",
        "cn_building_retrofit_standards_met",
        "cn_rural_housing_gbt50824",
        "cn_prefab_standards_met",
    ]
    assert cn(**buy, gbt51350_level=2)[0] == "eligible"  # nearly-zero energy


# --------------------------------------------------------------------------------------------
# Exclusions (seed 001: 赛西碳索《碳达峰碳中和工作简报》2021年8月刊; seed 002: 《重庆碳讯》)
def excl(**project: object) -> tuple[str, str | None, list[str] | None]:
    row = one(**project)
    return row["cn_exclusions__status"], row["cn_exclusions__item"], row["cn_exclusions__missing"]


def test_lianggao_five_substitutions_is_shandong_rule() -> None:
    # seed 001 §4.4 (line 538): 山东《实施意见》: 所有新、改、扩“两高”项目，必须坚决实行…五个减量
    # 替代，对不符合要求的项目一律不批。 A Shandong rule: elsewhere the national rule applies.
    coal = {"activity": "coal_power", "capacity_mw": 1320, "new_or_expanded": "yes"}
    assert excl(**coal, province="山东", lianggao_five_substitutions="否")[:2] == (
        "excluded",
        "LH-1",
    )
    # any exclusion that applies excludes: "not excluded" needs every undecided item decided,
    # so the client is asked for the evidence of all of them
    assert excl(**coal, province="山东") == (
        "insufficient_data",
        "LH-1",
        ["lianggao_five_substitutions", "industrial_structure_category", "coal_captive_boiler"],
    )
    henan = excl(**coal, province="河南")
    assert henan == ("insufficient_data", "LH-2", ["industrial_structure_category"])
    assert excl(**coal, province="河南", industrial_structure_category="允许类")[0] == (
        "not_excluded"
    )
    assert excl(**coal, province="河南", industrial_structure_category="淘汰类")[0] == "excluded"
    # a Chinese project without a province cannot be placed under a regional rule
    assert excl(**coal, industrial_structure_category="允许类")[2] == ["province"]


def test_guangdong_closes_existing_noncompliant_units_below_300mw() -> None:
    # seed 001 §4.2 (line 482): 坚决关停环保、能耗、安全等不达标的 30 万千瓦以下燃煤机组
    unit = {
        "activity": "coal_power",
        "capacity_mw": 200,
        "province": "广东",
        "industrial_structure_category": "允许类",
    }
    existing = {**unit, "new_or_expanded": "no"}
    assert excl(**existing, coal_unit_meets_standards="no")[:2] == ("excluded", "COAL-1")
    assert excl(**existing, coal_unit_meets_standards="yes")[0] == "not_excluded"
    assert excl(**unit, new_or_expanded="yes")[0] == "not_excluded"  # says nothing of new units
    assert excl(**{**existing, "province": "山东"}, lianggao_five_substitutions="yes",
                coal_captive_boiler="no")[0] == "not_excluded"  # fmt: skip


def test_exclusion_sources_name_existing_seed_files() -> None:
    book = load_rulebook("cn_exclusions")
    named = re.findall(r"\d{3}_[0-9a-f]{16}\.txt", book.source_url)
    assert named
    if SEEDS.is_dir():  # the seeds sit beside the repository in the workplace
        assert all((SEEDS / name).is_file() for name in named), named


def test_exclusion_lists_say_not_excluded() -> None:
    row = one(activity="solar_pv", province="山东")
    assert (row["cn_exclusions__status"], row["cn_exclusions__missing"]) == ("not_excluded", None)
    result = screen([{"project_id": "P", "activity": "solar_pv", "province": "山东"}])
    assert (
        "eligible"
        not in result.decisions.filter(pl.col("rulebook") == "cn_exclusions")["result"].to_list()
    )


def test_an_exclusion_decided_on_missing_evidence_names_it(tmp_path: Path) -> None:
    # a bank's own exclusion rule that treats missing evidence as failing (coalesce): the
    # status is decided, and the evidence it was decided without is listed
    book = {
        "schema_type": "greenscreen.rulebook",
        "schema_version": 1,
        "id": "bank_excl",
        "version": "1",
        "kind": "exclusion",
        "title": {"en": "Bank exclusions"},
        "issuer": "Bank",
        "document": "Policy 1",
        "source_url": "https://intranet.example/1",
        "verification": "verified",
        "fields": [{"name": "eia_done", "type": "boolean", "description": {"en": "EIA done"}}],
        "items": [
            {
                "code": "E1",
                "name": {"en": "No EIA"},
                "scope": {"activities": ["coal_power"]},
                "criteria": [
                    {
                        "id": "no-eia",
                        "condition": "coalesce(eia_done, FALSE) = FALSE",
                        "clause": "Policy 1 §2",
                        "text": {"en": "Missing EIA excludes."},
                        "verification": "verified",
                    }
                ],
            }
        ],
    }
    (tmp_path / "bank.yaml").write_text(yaml.safe_dump(book, allow_unicode=True), "utf-8")
    books = load_rulebooks(tmp_path, extra=False)
    rows = screen([{"project_id": "A", "activity": "coal_power"}], rulebooks=books).results
    assert rows.select("bank_excl__status", "bank_excl__missing").row(0) == (
        "excluded",
        ["eia_done"],
    )
    given = [{"project_id": "A", "activity": "coal_power", "eia_done": "no"}]
    assert screen(given, rulebooks=books).results["bank_excl__missing"][0] is None


def test_cbam_hydrogen_is_flagged_unverified() -> None:
    # seed 001 line 153 lists 水泥、钢铁、铝、化肥、电力: hydrogen is not in the sources
    book = load_rulebook("cn_exclusions")
    assert book.item("CBAM-4").verification == "unverified"
    assert "hydrogen_electrolysis" not in (book.item("CBAM-1").scope.activities)  # type: ignore[union-attr]
    assert one(activity="hydrogen_electrolysis")["cn_exclusions__flags"] == ["CBAM-4"]


# --------------------------------------------------------------------------------------------
# Counts and engine semantics
def test_rulebook_counts_report_the_verified_share_of_criteria() -> None:
    counts = load_rulebook("cn_gfsp_2025").counts()
    assert counts["verified_share"] == 1.0  # every item's text is verified
    assert counts["criteria_verified_share"] < 1.0  # the PUE 1.30 limit is not
    assert counts["measured"] + counts["attestation"] + counts["crosswalk"] == counts["criteria"]


def test_an_unidentified_project_is_insufficient_data_with_the_nearest_activities() -> None:
    row = one(description="农林生物质直燃发电厂 30MW")
    assert row["activity"] is None
    assert row["activity_candidates"] == ["biomass_power"]
    for book in ("cn_gfsp_2025", "eu_taxonomy", "cn_exclusions", "pboc_cerf"):
        assert row[f"{book}__status"] == "insufficient_data", book
        assert row[f"{book}__missing"] == ["activity"], book
    # an industry code alone identifies the project for the China catalogue (its GB/T rows),
    # not for the EU Taxonomy, which asks for the activity
    coal = one(industry_code="D4411")
    assert coal["cn_gfsp_2025__item"] == "2.5.1"
    assert coal["cn_gfsp_2025__missing"] == ["cn_gfsp_2_5_1_met"]
    assert coal["eu_taxonomy__missing"] == ["activity"]


def test_an_industry_code_that_contradicts_the_activity_is_flagged() -> None:
    # hydropower maps to 4.2.4 (4413 / 4872) and 4.3.4; 4411 (火力发电) is neither
    result = screen([{"project_id": "P", "activity": "hydropower", "industry_code": "4411"}])
    row = result.results.row(0, named=True)
    assert row["cn_gfsp_2025__status"] == "insufficient_data"
    assert "industry_code" in row["cn_gfsp_2025__missing"]
    assert row["cn_gfsp_2025__flags"] == ["industry_code_conflict"]
    trace = explain(result, "P")
    assert "industry_code 4411 is not a GB/T row" in trace
    assert "industry_code=4411; activity=hydropower" in trace
    agreeing = one(activity="hydropower", industry_code="4413")
    assert agreeing["cn_gfsp_2025__flags"] == []
    assert "industry_code" not in (agreeing["cn_gfsp_2025__missing"] or [])


@pytest.mark.parametrize("status", ["excluded", "not_excluded", "insufficient_data"])
def test_exclusion_vocabulary_is_documented(status: str) -> None:
    readme = (Path(__file__).resolve().parents[1] / "taxonomies" / "README.md").read_text("utf-8")
    assert status in readme


def test_programmes_refuse_rulebook_keys_they_do_not_apply(tmp_path: Path) -> None:
    # scope.provinces and dated criteria are rulebook features; a programme that set them would
    # be screened without them, so the loader refuses the file
    from greenscreen.errors import RulebookError
    from greenscreen.subsidy import load_programmes

    source = Path(__file__).resolve().parents[1] / "taxonomies" / "prog_lingang_storage.yaml"
    data = yaml.safe_load(source.read_text("utf-8"))
    data["awards"][0]["scope"]["provinces"] = ["Shanghai"]
    (tmp_path / "prog.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    with pytest.raises(RulebookError, match="scope.provinces is not applied"):
        load_programmes(tmp_path, extra=False)


def test_result_columns_do_not_depend_on_the_data() -> None:
    # flags and SC columns exist for a rulebook whatever the pipeline holds (a stable contract)
    def columns(rows: list[dict]) -> list[str]:
        return [c for c in screen(rows).results.columns if "__" in c]

    plain = columns([{"project_id": "A", "activity": "solar_pv"}])
    mixed = columns(
        [
            {"project_id": "B", "activity": "hydropower", "industry_code": "4411"},
            {"project_id": "C", "activity": "cement", "cn_gfsp_2025_item": "4.2.1"},
        ]
    )
    assert plain == mixed
    assert {"cn_gfsp_2025__flags", "cn_exclusions__flags", "eu_taxonomy__sc_met"} <= set(plain)
