"""Regression tests of the source review of pboc_cerf, glp_2025, cgt_2022, the three programmes
and the grid-region mapping (review logs: taxonomies/review/*.md).

Sources: shared/reference/taxonomy_facts.md (§B CERF, §E GLP, §D-bis CGT), emission_factors.md §1,
reporting_facts.md §1.1, and the seed digests 002 (Chongqing) and 003 (Lingang). Each test names
the finding it guards.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from greenscreen import screen
from greenscreen.emissions import EmissionsConfig, estimate, load_factors
from greenscreen.io import read_pipeline
from greenscreen.rulebook import load_rulebook
from greenscreen.subsidy import SubsidyConfig, load_programme

TAXONOMIES = Path(__file__).parents[1] / "taxonomies"
#: the seed digests the project was built from (shared/seeds/)
SEEDS = {
    "000_f4ae22b4c641da6d.txt",
    "001_9ef06ce2e31a69a2.txt",
    "002_cfa05d39120f313c.txt",
    "003_5ad68939a944197a.txt",
    "004_5cdef5601d7fc67d.txt",
}
REVIEWED = (
    "pboc_cerf.yaml",
    "glp_2025.yaml",
    "cgt_2022.yaml",
    "prog_cq_green_building_demo.yaml",
    "prog_lingang_storage.yaml",
    "prog_pboc_cerf_relending.yaml",
)


def _load(name: str):  # type: ignore[no-untyped-def]
    path = TAXONOMIES / name
    return load_programme(path) if name.startswith("prog_") else load_rulebook(path)


def awards(*projects: dict, config: SubsidyConfig | None = None) -> pl.DataFrame:
    rows = [{"project_id": f"P{i}", **p} for i, p in enumerate(projects)]
    result = screen(rows, subsidies=config)
    assert result.rejects.height == 0, result.rejects.to_dicts()
    assert result.subsidies is not None
    return result.subsidies.awards


# --- finding 1: GLP verification follows the tags of taxonomy_facts.md §E ---------------------
def test_glp_criteria_carry_the_tag_of_the_row_they_encode() -> None:
    """use-of-proceeds quotes the Definition row [S] (ghgauditor summary); the 2023-edition
    benefits criterion rests on the 2018/2021 text and an inferred "should" (secondary); the
    2025 "shall" row, evaluation, management and reporting rows are [V]; key recommendations [R]."""
    book = load_rulebook(TAXONOMIES / "glp_2025.yaml")
    item = book.item("GLP")
    assert {c.id: c.verification for c in item.criteria} == {
        "use-of-proceeds": "secondary",
        "benefits-quantified": "verified",
        "benefits-quantified-2023": "secondary",
        "evaluation-selection": "verified",
        "management-of-proceeds": "verified",
        "reporting": "verified",
        "external-review": "unverified",
    }
    assert (item.verification, book.verification) == ("secondary", "secondary")
    # the Definition row: "to finance, re-finance or guarantee, in whole or in part, new and/or
    # existing eligible Green Projects" (a contingent facility is a green loan too)
    use = next(c for c in item.criteria if c.id == "use-of-proceeds")
    assert "re-finance or guarantee, in whole or in" in " ".join((use.text.en or "").split())


# --- finding 2: the seven-region MEE mapping has no source -----------------------------------
def test_mee_region_mapping_is_unverified_for_every_province() -> None:
    regions = load_factors().regions
    mapped = regions.filter(pl.col("mee_region").fill_null("") != "")
    assert mapped.height == 31
    assert set(mapped["mee_verification"]) == {"unverified"}
    # the six-grid CDM mapping keeps its secondary source (360docs.net legacy mapping)
    cdm = regions.filter(pl.col("cdm_grid").fill_null("") != "")
    assert set(cdm["cdm_verification"]) == {"secondary"}


def test_grid_average_output_carries_the_unverified_mapping() -> None:
    """Guangdong → South (2023 South 0.4042 [V]); the mapping is unverified, so is the output."""
    project = {"activity": "solar_pv", "province": "广东", "annual_generation_mwh": 1}
    projects = read_pipeline([{"project_id": "P", **project}]).projects
    row = estimate(projects, EmissionsConfig(policy="grid_average")).row(0, named=True)
    assert (row["ef_region"], row["grid_ef_tco2_per_mwh"]) == ("South", 0.4042)
    assert row["ef_verification"] == "unverified"


# --- finding 3: source_url names a document a user can find ----------------------------------
@pytest.mark.parametrize("name", REVIEWED)
def test_source_url_is_no_repository_path_and_names_only_real_seeds(name: str) -> None:
    source = _load(name).source_url
    assert not source.startswith(("shared/", "/work/")), source
    for seed in re.findall(r"\d{3}_[0-9a-f]{16}\.txt", source):
        assert seed in SEEDS, seed
    assert re.search(r"https?://|seed \d{3}_", source), source


def test_chongqing_cites_the_government_page_the_seed_cites() -> None:
    # seed 002 line 155: (重庆市人民政府：https://www.cq.gov.cn/ywdt/zwhd/bmdt/202307/t20230727_12188736.html)
    source = _load("prog_cq_green_building_demo.yaml").source_url
    assert "https://www.cq.gov.cn/ywdt/zwhd/bmdt/202307/t20230727_12188736.html" in source


def test_seed_files_cited_exist_when_the_seeds_are_present() -> None:
    seeds = Path("/work/shared/seeds")
    if not seeds.is_dir():
        pytest.skip("shared seeds not available")
    assert {p.name for p in seeds.glob("*.txt")} >= SEEDS


# --- unknowns stay unknown: a missing province is asked for, not a silent out-of-scope -------
def test_chongqing_award_winner_without_a_province_is_asked_for_it() -> None:
    building = {"activity": "building_new", "floor_area_m2": 10_000, "green_building_award": 1}
    table = awards(building, {**building, "province": "四川"}, {**building, "province": "重庆"})
    cq = table.filter(pl.col("programme") == "cq_green_building_demo")
    unknown = cq.filter((pl.col("project_id") == "P0") & (pl.col("award") == "prize-1"))
    assert unknown.height == 1
    assert (unknown["status"][0], unknown["missing"][0].to_list()) == (
        "insufficient_data",
        ["province"],
    )
    assert cq.filter(pl.col("project_id") == "P1").height == 0  # Sichuan: out of scope
    cq_row = cq.filter((pl.col("project_id") == "P2") & (pl.col("award") == "prize-1"))
    assert (cq_row["status"][0], cq_row["final_amount"][0]) == ("eligible", 600_000)
    # a building that states no prize and no province is not claimed by the Chongqing programme
    assert (
        awards({"activity": "building_new", "floor_area_m2": 1})
        .filter(pl.col("programme") == "cq_green_building_demo")
        .is_empty()
    )


LINGANG = {
    "activity": "battery_storage",
    "cod": "2025-06-30",
    "storage_energy_mwh": 30,
    "storage_power_mw": 15,
    "cycles_per_year": 450,
    "lingang_user_side_storage": "是",
}


def test_lingang_attestation_decides_when_the_province_is_missing() -> None:
    table = awards(
        LINGANG,
        {**LINGANG, "lingang_user_side_storage": "否"},
        {**LINGANG, "lingang_user_side_storage": None},
        {**LINGANG, "province": "江苏"},
        {"activity": "battery_storage", "lingang_strategic_project": "是", "total_investment": 5e7},
    ).filter(pl.col("programme") == "lingang_storage")
    status = {(r["project_id"], r["award"]): r["status"] for r in table.iter_rows(named=True)}
    assert status[("P0", "user-side-storage")] == "eligible"  # the attestation names Lingang
    assert status[("P1", "user-side-storage")] == "not_eligible"
    assert ("P2", "user-side-storage") not in status  # nothing ties it to Lingang
    assert not any(project == "P3" for project, _ in status)  # Jiangsu
    assert status[("P4", "strategic-project")] == "eligible"


def test_lingang_attestations_all_name_the_lingang_new_area() -> None:
    """The province (Shanghai) is wider than the programme's area: each award's attestation
    field must carry the location."""
    programme = _load("prog_lingang_storage.yaml")
    fields = {f.name: f for f in programme.fields}
    for name in (
        "lingang_user_side_storage",
        "lingang_strategic_project",
        "lingang_core_tech_breakthrough",
        "first_of_kind",
    ):
        assert "临港新片区" in (fields[name].description.zh or ""), name
        assert "Lingang" in (fields[name].description.en or ""), name


# --- dates, issuers and texts as the sources give them ----------------------------------------
def test_cerf_relending_after_the_2026_change_is_unverified() -> None:
    """reporting_facts.md §1.1: whether the 60 % / 1.75 % terms changed in 2026 was NOT found."""
    wind = {"activity": "wind_onshore", "loan_amount": 100_000_000}
    table = awards(
        {**wind, "approval_date": "2025-06-01"},
        {**wind, "approval_date": "2026-01-16"},
        wind,
        config=SubsidyConfig(funding_cost=0.025),
    ).filter(pl.col("programme") == "pboc_cerf_relending")
    rows = {r["project_id"]: r for r in table.iter_rows(named=True)}
    assert table.height == 3  # one relending award per project, never both
    assert (rows["P0"]["award"], rows["P0"]["verification"]) == (
        "refinancing-before-2026",
        "verified",
    )
    for later in ("P1", "P2"):  # approved from 2026-01-16, or judged by the current rules
        assert (rows[later]["award"], rows[later]["verification"]) == ("refinancing", "unverified")
    for row in rows.values():
        assert (row["status"], row["final_amount"]) == ("eligible", 60_000_000)
        assert row["funding_benefit"] == pytest.approx(60_000_000 * (0.025 - 0.0175) * 3)


def test_pboc_cerf_transmission_mapping_is_unverified() -> None:
    """[S] names smart grid and cross-regional clean-power transmission; grid_transmission is
    any line."""
    assert load_rulebook(TAXONOMIES / "pboc_cerf.yaml").item("1.9").verification == "unverified"


def test_issuers_and_dates_are_not_beyond_the_source() -> None:
    cq = _load("prog_cq_green_building_demo.yaml")
    assert "财政局" not in cq.issuer  # seed 002 names only 市住房城乡建委
    lingang = _load("prog_lingang_storage.yaml")
    assert "管理委员会" not in lingang.issuer  # seed 003 names no issuer
    assert lingang.version == "undated"  # seed 003: "近日…正式实施", no date


def test_chongqing_criteria_quote_the_rule_verbatim() -> None:
    quote = (
        "我市将对获得全国绿色建筑创新奖一等奖、二等奖、三等奖的绿色建筑项目按照建筑面积分别给予"
        "60元/平方米、40元/平方米、20元/平方米的补助资金，单个示范项目补助资金总额，"
        "分别不得超过400万元、200万元、100万元。"
    )
    programme = _load("prog_cq_green_building_demo.yaml")
    for award in programme.awards:
        prize = next(c for c in award.criteria if c.id.startswith("award-"))
        assert prize.text.zh == quote, award.code


# --- guards: the figures match the seed text (unchanged by the review) ------------------------
@pytest.mark.parametrize(
    ("file", "code", "rate", "rate_max", "cap", "up_to", "shares"),
    [
        # seed 002 line 153: 60/40/20 元/平方米, 400/200/100万元
        ("prog_cq_green_building_demo.yaml", "prize-1", 60, None, 4_000_000, False, 1),
        ("prog_cq_green_building_demo.yaml", "prize-2", 40, None, 2_000_000, False, 1),
        ("prog_cq_green_building_demo.yaml", "prize-3", 20, None, 1_000_000, False, 1),
        # seed 003 line 127: 200元/千瓦时, 分3年, 最高不超过500万元
        ("prog_lingang_storage.yaml", "user-side-storage", 200, None, 5_000_000, False, 3),
        # seed 003 line 129
        ("prog_lingang_storage.yaml", "strategic-project", 0.10, None, 100_000_000, False, 1),
        ("prog_lingang_storage.yaml", "core-tech-breakthrough", 0.10, 0.30, None, False, 1),
        ("prog_lingang_storage.yaml", "first-of-kind-international", 0.20, None, 3e7, True, 1),
        ("prog_lingang_storage.yaml", "first-of-kind-domestic", 0.10, None, 2e7, True, 1),
        # taxonomy_facts.md §B: 60 % of loan principal
        ("prog_pboc_cerf_relending.yaml", "refinancing-before-2026", 0.60, None, None, False, 1),
        ("prog_pboc_cerf_relending.yaml", "refinancing", 0.60, None, None, False, 1),
    ],
)
def test_amounts_match_the_sources(
    file: str,
    code: str,
    rate: float,
    rate_max: float | None,
    cap: float | None,
    up_to: bool,
    shares: int,
) -> None:
    award = next(a for a in _load(file).awards if a.code == code)
    amount = award.amount
    assert (amount.rate, amount.rate_max, amount.cap, amount.up_to) == (rate, rate_max, cap, up_to)
    assert len(award.schedule.shares) == shares


def test_cerf_relending_terms_match_the_sources() -> None:
    """taxonomy_facts.md §B: 60 % of principal, 1.75 %, 1 year, may be rolled over twice."""
    terms = _load("prog_pboc_cerf_relending.yaml").relending
    assert terms is not None
    assert (terms.share_of_principal, terms.rate, terms.term_years, terms.rollovers) == (
        0.60,
        0.0175,
        1,
        2,
    )


def test_lingang_user_side_thresholds_match_seed_003() -> None:
    programme = _load("prog_lingang_storage.yaml")
    award = next(a for a in programme.awards if a.code == "user-side-storage")
    conditions = {c.id: c.condition for c in award.criteria}
    assert conditions["commissioned-2024-2026"] == (
        "cod >= DATE '2024-01-01' AND cod <= DATE '2026-12-31'"
    )
    assert conditions["capacity-1mwh"] == "storage_energy_mwh >= 1"
    assert conditions["duration-2h"] == "storage_duration_h >= 2"
    assert conditions["cycles-450"] == "cycles_per_year >= 450"
    assert award.amount.base == "storage_energy_mwh * 1000"  # MWh → kWh for 元/千瓦时


def test_cgt_and_relending_never_read_an_undecided_status_as_a_decision() -> None:
    """Every crosswalk criterion maps insufficient_data to unknown (nullif), so an undecided side
    is never a pass or a fail."""
    criteria = [c for item in _load("cgt_2022.yaml").items for c in item.criteria]
    criteria += [c for a in _load("prog_pboc_cerf_relending.yaml").awards for c in a.criteria]
    assert criteria
    for criterion in criteria:
        assert criterion.condition.startswith("nullif("), criterion.condition
        assert "'insufficient_data')" in criterion.condition


def test_cerf_2026_extension_date_and_pre_2026_scope() -> None:
    """taxonomy_facts.md §B: the 2026-01-16 additions apply from that date; the original key
    areas have no date."""
    book = _load("pboc_cerf.yaml")
    dated = {item.code: item.since for item in book.items if item.since}
    assert {code: str(day) for code, day in dated.items()} == {"4.1": "2026-01-16"}
    assert all(item.until is None for item in book.items)
