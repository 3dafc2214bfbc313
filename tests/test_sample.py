"""The bundled illustrative sample pipeline covers every activity family and the seed cases."""

from __future__ import annotations

import polars as pl
import pytest

from greenscreen import read_pipeline
from greenscreen._resources import data_file
from greenscreen.vocabularies import activities


@pytest.fixture(scope="module")
def sample() -> pl.DataFrame:
    pipeline = read_pipeline(data_file("sample_pipeline.csv"))
    assert pipeline.rejects.height == 0
    return pipeline.projects


def test_every_activity_family_is_present(sample: pl.DataFrame) -> None:
    families = activities().join(sample.select("activity"), left_on="id", right_on="activity")
    assert set(families["family"]) == set(activities()["family"])


def test_baoji_tailings_pv_exactly_as_reported(sample: pl.DataFrame) -> None:
    # Seed 003 (shared/seeds/003_5ad68939a944197a.txt): 50 MW, investment about 150 million
    # yuan, annual generation 576.21万kWh = 5,762.1 MWh, output value about 3.5 million yuan.
    row = sample.filter(pl.col("project_name").str.contains("Baoji")).row(0, named=True)
    assert row["capacity_mw"] == 50
    assert row["annual_generation_mwh"] == pytest.approx(5762.1, abs=0.05)
    assert row["total_investment"] == 150_000_000
    assert row["annual_revenue"] == 3_500_000
    assert row["province"] == "Shaanxi"
    # the implausible yield is kept on purpose: 115 full-load hours
    assert row["annual_generation_mwh"] / row["capacity_mw"] == pytest.approx(115.2, abs=0.1)


@pytest.mark.parametrize(
    ("activity", "province"),
    [
        ("solar_pv", "Henan"),  # county rooftop PV (seed 000)
        ("building_new", "Chongqing"),  # national green-building award (seed 002)
        ("battery_storage", "Shanghai"),  # Lingang user-side storage (seed 003)
        ("ev_truck", None),  # electric heavy trucks (seed 003)
        ("coal_power", None),
        ("data_centre", None),
        ("hydropower", None),
        ("wind_onshore", "Inner Mongolia"),
    ],
)
def test_seed_cases_present(sample: pl.DataFrame, activity: str, province: str | None) -> None:
    rows = sample.filter(pl.col("activity") == activity)
    if province:
        rows = rows.filter(pl.col("province") == province)
    assert rows.height >= 1


def test_award_building_and_storage_carry_their_programme_inputs(sample: pl.DataFrame) -> None:
    building = sample.filter(pl.col("green_building_award").is_not_null()).row(0, named=True)
    assert (building["province"], building["green_building_award"]) == ("Chongqing", 2)
    storage = sample.filter(pl.col("activity") == "battery_storage").row(0, named=True)
    assert storage["storage_energy_mwh"] / storage["storage_power_mw"] >= 2
    assert storage["cycles_per_year"] >= 450


def test_sample_is_marked_illustrative(sample: pl.DataFrame) -> None:
    assert sample["source_note"].is_not_null().all()
    assert (sample["borrower"].str.contains("illustrative")).all()
