"""Avoided emissions: factor tables, methods, lifetime, attribution, flags.

Reference values: shared/reference/emission_factors.md (MEE+NBS tables, TOOL07 weights,
CCER 2019 OM), shared/reference/data/*.csv, and hand computations written out in each test.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from numpy.testing import assert_allclose

from greenscreen import GreenscreenError, read_pipeline
from greenscreen.emissions import EmissionsConfig, estimate, load_factors


def run(config: EmissionsConfig | None = None, **project: object) -> dict:
    """Estimate one project (read through the same reader as a pipeline row)."""
    projects = read_pipeline([{"project_id": "P", **project}]).projects
    assert projects.height == 1
    return estimate(projects, config).row(0, named=True)


# --- factor tables --------------------------------------------------------------------------
def _mee(year: int, scope: str, region: str) -> float:
    grid = load_factors().grid
    row = grid.filter(
        (pl.col("series") == "mee_nbs_average")
        & (pl.col("vintage") == year)
        & (pl.col("scope") == scope)
        & (pl.col("region") == region)
    )
    assert row.height == 1, (year, scope, region)
    return float(row["value_tco2_per_mwh"][0])


def test_mee_year_on_year_changes_match_the_published_percentages() -> None:
    """Issue #4, acceptance 3: the press releases' % changes are reproduced from the table
    (emission_factors.md §1: national 2021→2022 −3.6 %, 2022→2023 −1.1 %; regions 2022→2023
    N −6.1, NE −8.0/−7.9, E −2.1, C −2.3, NW −5.4, S +4.5, SW +9.0). Published to 0.1 %."""

    def change(a: float, b: float) -> float:
        return (b / a - 1) * 100

    assert change(
        _mee(2021, "national", "China"), _mee(2022, "national", "China")
    ) == pytest.approx(-3.6, abs=0.05)
    assert change(
        _mee(2022, "national", "China"), _mee(2023, "national", "China")
    ) == pytest.approx(-1.1, abs=0.05)
    published = {
        "North": -6.1,
        "Northeast": -7.95,
        "East": -2.1,
        "Central": -2.3,
        "Northwest": -5.4,
        "South": 4.5,
        "Southwest": 9.0,
    }
    for region, pct in published.items():
        tol = 0.1 if region == "Northeast" else 0.05  # quoted as −8.0 and −7.9
        assert change(_mee(2022, "region", region), _mee(2023, "region", region)) == pytest.approx(
            pct, abs=tol
        ), region


def test_series_are_kept_apart() -> None:
    grid = load_factors().grid
    assert set(grid["series"]) == {
        "mee_nbs_average",
        "mee_nbs_excl_market_nonfossil",
        "mee_nbs_fossil",
        "ets_grid_average",
        "ccer_om",
        "ccer_bm",
    }
    ets = grid.filter(pl.col("series") == "ets_grid_average").row(0, named=True)
    assert (ets["vintage"], ets["value_tco2_per_mwh"], ets["verification"]) == (
        2022,
        0.5703,
        "verified",
    )
    bm = grid.filter(pl.col("series") == "ccer_bm")
    assert set(bm["verification"]) == {"unverified"}  # recollection only in the sources
    assert grid.filter(pl.col("verification").is_null() | pl.col("source").is_null()).height == 0


# --- grid power -----------------------------------------------------------------------------
def test_factor_override_is_used_exactly() -> None:
    """Acceptance 1: given a factor override, avoided = generation × factor exactly."""
    row = run(
        activity="solar_pv",
        province="青海",
        annual_generation_mwh=150_000,
        grid_ef_tco2_per_mwh=0.6,
    )
    assert row["avoided_tco2e_per_year"] == 150_000 * 0.6
    assert (row["ef_series"], row["ef_verification"]) == ("project_override", "project")


@pytest.mark.parametrize(
    ("activity", "w_om"), [("wind_onshore", 0.75), ("solar_pv", 0.75), ("hydropower", 0.5)]
)
def test_om_bm_overrides_use_tool07_weights(activity: str, w_om: float) -> None:
    """Acceptance 1: CM = wOM·OM + wBM·BM; 0.75/0.25 for wind and solar, 0.5/0.5 otherwise
    (TOOL07, first crediting period)."""
    row = run(
        activity=activity,
        annual_generation_mwh=1000,
        grid_ef_om_tco2_per_mwh=0.9,
        grid_ef_bm_tco2_per_mwh=0.3,
    )
    cm = w_om * 0.9 + (1 - w_om) * 0.3
    assert row["grid_ef_tco2_per_mwh"] == pytest.approx(cm, rel=1e-12)
    assert row["avoided_tco2e_per_year"] == pytest.approx(1000 * cm, rel=1e-12)
    assert row["ef_weights"] == f"OM {w_om} / BM {1 - w_om}"


def test_published_combined_margin_for_a_north_grid_wind_farm() -> None:
    # CCER 2019 North grid: OM 0.9419 [S], BM 0.4819 [R]; wind CM = 0.75·0.9419 + 0.25·0.4819
    # = 0.8269 (emission_factors.md §3 table, to 4 decimals).
    row = run(activity="wind_onshore", province="内蒙古", capacity_mw=200, full_load_hours=2800)
    assert row["grid_ef_tco2_per_mwh"] == pytest.approx(0.8269, abs=5e-5)
    assert row["avoided_tco2e_per_year"] == pytest.approx(200 * 2800 * 0.8269, rel=1e-4)
    assert (row["ef_series"], row["ef_region"], row["ef_vintage"]) == (
        "ccer_combined_margin",
        "North",
        2019,
    )
    assert row["ef_verification"] == "unverified"  # the BM is
    assert "North grid" in row["ef_source"] and "0.9419" in row["ef_source"]


def test_yunnan_and_sichuan_grids_in_both_series() -> None:
    """Acceptance 2, as far as the sources go: the CDM six-grid mapping puts Yunnan in South
    and Sichuan in Central; the seven MEE regions (2022+) add Southwest, which takes Sichuan
    (and Chongqing) out of Central. The sources do not give the seven-region mapping itself,
    so Yunnan stays in South there (flagged unverified); the output says which series and
    region were used."""
    cm = run(activity="hydropower", province="云南", annual_generation_mwh=1000)
    avg = run(
        EmissionsConfig(policy="grid_average"),
        activity="hydropower",
        province="云南",
        annual_generation_mwh=1000,
    )
    assert (cm["ef_series"], cm["ef_region"]) == ("ccer_combined_margin", "South")
    assert (avg["ef_series"], avg["ef_region"], avg["ef_vintage"]) == (
        "mee_nbs_average",
        "South",
        2023,
    )
    sichuan_cm = run(activity="hydropower", province="四川", annual_generation_mwh=1000)
    sichuan_avg = run(
        EmissionsConfig(policy="grid_average"),
        activity="hydropower",
        province="四川",
        annual_generation_mwh=1000,
    )
    assert sichuan_cm["ef_region"] == "Central"
    assert (sichuan_avg["ef_region"], sichuan_avg["grid_ef_tco2_per_mwh"]) == ("Southwest", 0.2472)
    assert sichuan_avg["ef_verification"] == "unverified"  # the Southwest mapping is greenscreen's
    # the grid_region column overrides the mapping, in either language
    forced = run(
        EmissionsConfig(policy="grid_average"),
        activity="hydropower",
        province="云南",
        grid_region="西南电网",
        annual_generation_mwh=1000,
    )
    assert (forced["ef_region"], forced["grid_ef_tco2_per_mwh"]) == ("Southwest", 0.2472)


def test_provincial_average_where_published() -> None:
    # MEE+NBS 2022 provincial factor Yunnan 0.1073 [V]; Guangdong has none → South region.
    config = EmissionsConfig(policy="grid_average", average_vintage=2022, average_scope="province")
    yunnan = run(config, activity="solar_pv", province="云南", annual_generation_mwh=1000)
    assert (yunnan["grid_ef_tco2_per_mwh"], yunnan["ef_region"], yunnan["ef_verification"]) == (
        0.1073,
        "Yunnan",
        "verified",
    )
    guangdong = run(config, activity="solar_pv", province="广东", annual_generation_mwh=1000)
    assert (guangdong["grid_ef_tco2_per_mwh"], guangdong["ef_region"]) == (0.3869, "South")


def test_generation_from_capacity_and_hours_lowers_data_quality() -> None:
    given = run(
        activity="solar_pv",
        province="河南",
        annual_generation_mwh=227_000,
        grid_ef_tco2_per_mwh=0.6,
    )
    estimated = run(
        activity="solar_pv",
        province="河南",
        capacity_mw=227,
        full_load_hours=1000,
        grid_ef_tco2_per_mwh=0.6,
    )
    assert (
        given["avoided_tco2e_per_year"]
        == estimated["avoided_tco2e_per_year"]
        == pytest.approx(136_200)
    )
    assert given["data_quality_score"] == 1 and estimated["data_quality_score"] == 4


# --- other methods --------------------------------------------------------------------------
def test_electric_trucks_on_a_coal_heavy_grid_are_negative() -> None:
    """Acceptance 4: 0.85 tCO2/MWh grid, efficient diesel baseline → negative, not clamped.

    Hand computation: 10 trucks × 100,000 km = 1,000,000 km.
    Diesel 25 L/100km → 250,000 L × 0.84 kg/L = 210 t × 3.1863 tCO2/t = 669.123 t.
    EV 150 kWh/100km → 1,500 MWh × 0.85 = 1,275 t. Avoided = 669.123 − 1,275 = −605.877 t.
    """
    row = run(
        activity="ev_truck",
        vehicle_count=10,
        annual_km_per_vehicle=100_000,
        baseline_fuel_l_per_100km=25,
        ev_kwh_per_100km=150,
        fuel_type="diesel",
        grid_ef_tco2_per_mwh=0.85,
    )
    assert row["avoided_tco2e_per_year"] == pytest.approx(-605.877, abs=1e-3)
    assert "negative avoided emissions: the project adds emissions" in row["emissions_flags"]


def test_efficiency_buildings_methane_ccus_and_storage() -> None:
    # electricity 12,000 MWh × 0.6 + coal 1,000 t × 2.44068 = 7,200 + 2,440.68
    eff = run(
        activity="industrial_energy_efficiency",
        electricity_saved_mwh=12_000,
        fuel_saved_t=1000,
        fuel_type="coal",
        grid_ef_tco2_per_mwh=0.6,
    )
    assert eff["avoided_tco2e_per_year"] == pytest.approx(9640.68)
    # (95 − 65) kWh/m² × 80,000 m² / 1000 × 0.6 = 1,440
    bld = run(
        activity="building_new",
        floor_area_m2=80_000,
        energy_use_kwh_m2=65,
        baseline_energy_use_kwh_m2=95,
        grid_ef_tco2_per_mwh=0.6,
    )
    assert bld["avoided_tco2e_per_year"] == pytest.approx(1440.0)
    # 1,000 t CH4 × 27.9 (AR6) = 27,900; AR5: × 28
    assert run(activity="biogas", ch4_captured_t=1000)["avoided_tco2e_per_year"] == pytest.approx(
        27_900
    )
    assert run(EmissionsConfig(gwp="AR5"), activity="biogas", ch4_captured_t=1000)[
        "avoided_tco2e_per_year"
    ] == pytest.approx(28_000)
    assert run(activity="ccus", co2_stored_t=150_000)["avoided_tco2e_per_year"] == 150_000
    storage = run(activity="battery_storage", storage_energy_mwh=30)
    assert storage["avoided_tco2e_per_year"] is None
    assert "displacement basis" in storage["emissions_note"]
    assert (
        run(activity="battery_storage", displaced_tco2e_per_year=500)["avoided_tco2e_per_year"]
        == 500
    )
    unknown_fuel = run(
        activity="industrial_energy_efficiency", fuel_saved_t=10, fuel_type="whale oil"
    )
    assert (
        unknown_fuel["avoided_tco2e_per_year"] is None
        and "unknown fuel_type" in unknown_fuel["emissions_note"]
    )
    assert (
        run(activity="coal_power")["emissions_note"]
        == "no avoided-emissions method for this activity"
    )


# --- lifetime, attribution, coal, flags -----------------------------------------------------
def test_lifetime_with_degradation_and_pro_rated_first_year() -> None:
    """Acceptance 5, hand-computed.

    E = 1,000 t/yr, d = 0.5 %, N = 3, COD 2025-07-01: f1 = (31 Dec − 1 Jul + 1 day) / 365
    = 184/365. Lifetime = E (f1 + r + r² + (1 − f1) r³), r = 0.995.
    """
    f1 = 184 / 365
    r = 0.995
    expected = 1000 * (f1 + r + r**2 + (1 - f1) * r**3)
    row = run(
        activity="solar_pv",
        annual_generation_mwh=1000,
        grid_ef_tco2_per_mwh=1.0,
        cod="2025-07-01",
        degradation_rate=0.005,
        operating_years=3,
    )
    assert row["avoided_tco2e_first_year"] == pytest.approx(1000 * f1)
    assert row["avoided_tco2e_lifetime"] == pytest.approx(expected, rel=1e-12)
    # operation from 1 January: plain sum over operating years, no degradation: N × E
    flat = run(
        activity="solar_pv",
        annual_generation_mwh=1000,
        grid_ef_tco2_per_mwh=1.0,
        cod="2025-01-01",
        operating_years=25,
    )
    assert flat["avoided_tco2e_lifetime"] == pytest.approx(25_000)
    assert (
        run(activity="solar_pv", annual_generation_mwh=1000, grid_ef_tco2_per_mwh=1.0)[
            "avoided_tco2e_lifetime"
        ]
        is None
    )


def test_attribution_intensity_and_standard_coal() -> None:
    """PCAF project finance: share = loan / total investment (capped at 1).
    50,000 MWh × 0.8 = 40,000 t; loan 70 of 100 million → 28,000 t attributable,
    400 t per million lent. Standard coal: 50,000 MWh × 305.5 gce/kWh = 15,275 tce."""
    row = run(
        activity="wind_onshore",
        annual_generation_mwh=50_000,
        grid_ef_tco2_per_mwh=0.8,
        total_investment=100_000_000,
        loan_amount=70_000_000,
    )
    assert row["attributable_share"] == pytest.approx(0.7)
    assert row["attributable_tco2e_per_year"] == pytest.approx(28_000)
    assert row["tco2e_per_million_lent"] == pytest.approx(400)
    assert row["standard_coal_saved_tce_per_year"] == pytest.approx(15_275)
    over = run(
        activity="wind_onshore",
        annual_generation_mwh=1,
        grid_ef_tco2_per_mwh=1,
        total_investment=100,
        loan_amount=150,
    )
    assert over["attributable_share"] == 1.0


def test_baoji_tailings_pv_is_flagged() -> None:
    # Seed 003: 50 MW, 5,762.1 MWh/yr → 115 full-load hours, far below any PV site.
    row = run(
        activity="solar_pv",
        province="陕西",
        capacity_mw=50,
        annual_generation_mwh=5762.1,
        approval_date=dt.date(2023, 9, 15),
    )
    assert any(flag.startswith("implausible yield: 115") for flag in row["emissions_flags"])
    consistent = run(
        activity="solar_pv",
        province="陕西",
        capacity_mw=50,
        annual_generation_mwh=65_000,
        approval_date=dt.date(2023, 9, 15),
    )
    assert not any(f.startswith("implausible") for f in consistent["emissions_flags"])
    inconsistent = run(
        activity="solar_pv", capacity_mw=50, full_load_hours=1300, annual_generation_mwh=40_000
    )
    assert any("differs from capacity" in f for f in inconsistent["emissions_flags"])


def test_old_factor_vintage_is_flagged() -> None:
    old = run(
        activity="wind_onshore",
        province="河北",
        annual_generation_mwh=1,
        approval_date="2025-11-01",
    )
    assert any("vintage 2019 is more than 5 years before 2025" in f for f in old["emissions_flags"])
    recent = run(
        activity="wind_onshore",
        province="河北",
        annual_generation_mwh=1,
        approval_date="2023-01-01",
    )
    assert not any("vintage" in f for f in recent["emissions_flags"])


def test_vectorised_over_many_projects_matches_one_by_one() -> None:
    acts = ["solar_pv", "wind_onshore", "hydropower", "ev_truck", "biogas"]
    rows = [
        {
            "project_id": str(i),
            "activity": acts[i % 5],
            "province": "河北",
            "capacity_mw": 10 + i,
            "full_load_hours": 1500,
            "vehicle_count": 5,
            "annual_km_per_vehicle": 50_000,
            "baseline_fuel_l_per_100km": 30,
            "ev_kwh_per_100km": 120,
            "ch4_captured_t": 100 + i,
        }
        for i in range(50)
    ]
    batch = estimate(read_pipeline(rows).projects)["avoided_tco2e_per_year"].to_numpy()
    single = [estimate(read_pipeline([r]).projects)["avoided_tco2e_per_year"][0] for r in rows]
    assert_allclose(batch, single, rtol=1e-12)


def test_users_can_replace_a_factor_file(tmp_path: Path) -> None:
    (tmp_path / "grid_factors.csv").write_text(
        "series,vintage,scope,region,value_tco2_per_mwh,verification,source\n"
        "ccer_om,2019,cdm_grid,North,1.0,verified,bank PDD\n"
        "ccer_bm,2019,cdm_grid,North,0.2,verified,bank PDD\n",
        encoding="utf-8",
    )
    row = run(
        EmissionsConfig(factors_dir=str(tmp_path)),
        activity="hydropower",
        province="河北",
        annual_generation_mwh=100,
    )
    assert row["grid_ef_tco2_per_mwh"] == pytest.approx(0.6)  # 0.5·1.0 + 0.5·0.2
    assert row["ef_verification"] == "verified"
    (tmp_path / "fuels.csv").write_text("fuel,name\ncoal,Coal\n", encoding="utf-8")
    with pytest.raises(GreenscreenError, match="fuels.csv: missing columns"):
        load_factors(tmp_path)
    with pytest.raises(GreenscreenError, match="factor directory not found"):
        load_factors(tmp_path / "nope")


def test_generation_is_derived_once_and_kept_in_the_results() -> None:
    """Issue 17 (finding 2): generation_mwh = annual_generation_mwh, else capacity_mw ×
    full_load_hours, is a results column, and the emissions and the appraisal use it."""
    from greenscreen import screen

    rows = [
        {"project_id": "given", "activity": "solar_pv", "province": "陕西", "capacity_mw": 50,
         "full_load_hours": 1300, "annual_generation_mwh": 60000},
        {"project_id": "estimated", "activity": "solar_pv", "province": "陕西",
         "capacity_mw": 50, "full_load_hours": 1300},
        {"project_id": "unknown", "activity": "solar_pv", "province": "陕西", "capacity_mw": 50},
    ]  # fmt: skip
    results = screen(rows).results
    assert results["generation_mwh"].to_list() == [60000.0, 65000.0, None]
    factor = results["grid_ef_tco2_per_mwh"]
    assert (
        results["avoided_tco2e_per_year"] - results["generation_mwh"] * factor
    ).abs().max() < 1e-9
