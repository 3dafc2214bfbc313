"""Loan book template v1, attribution and the periodic reports (issue 21).

Hand-computed examples; published reference figures cite their source (reporting_facts.md, the
notes in ../shared/reference that copy each bank's disclosure).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
from conftest import run_cli
from numpy.testing import assert_allclose

from greenscreen._resources import data_file
from greenscreen.loans import (
    attribute,
    parse_period,
    project_emissions,
    read_loans,
    write_loan_template,
)
from greenscreen.report.book import build_report, report_book, write_report

Q3 = parse_period("2026-Q3")


def _results(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """A screen's results table with just the columns the report reads."""
    base: dict[str, Any] = {
        "activity": "solar_pv",
        "province": "Shaanxi",
        "approval_date": dt.date(2025, 11, 1),
        "currency": "CNY",
        "total_investment": 1000.0,
        "cn_gfsp_2025__status": "eligible",
        "cn_gfsp_2025__item": "4.2.2",
        "cn_gbepc_2021__status": "aligned",
        "cn_gbepc_2021__item": "3.2.2",
        "pboc_cerf__status": "eligible",
        "pboc_cerf__item": "1.2",
        "avoided_tco2e_per_year": 500.0,
        "standard_coal_saved_tce_per_year": 200.0,
        "annual_generation_mwh": 1000.0,
        "capacity_mw": None,
        "full_load_hours": None,
        "energy_use_kwh_m2": None,
        "floor_area_m2": None,
        "fuel_type": None,
        "ef_source": "test",
    }
    return pl.DataFrame([{**base, **row} for row in rows])


def _loans(rows: list[dict[str, Any]], results: pl.DataFrame) -> pl.DataFrame:
    return read_loans(rows, project_ids=results["project_id"]).loans


def _loan(**values: Any) -> dict[str, Any]:
    return {"approval_date": "2025-11-01", "interest_rate": "3.5%", **values}


# --------------------------------------------------------------------------------------------
def test_attribution_over_tranches_and_a_syndicate_share() -> None:
    # P1: investment 1,000; tranche A 400 outstanding (whole), tranche B 300 at a 50 % share
    # → 400/1000 = 0.4 and 300 × 0.5 / 1000 = 0.15; avoided 500 t → 200 t and 75 t.
    # P2: investment 100, loans 80 + 60 = 140 > 100 → capped at 80/140 and 60/140 (sum 1).
    results = _results([{"project_id": "P1"}, {"project_id": "P2", "total_investment": 100.0}])
    loans = _loans(
        [
            _loan(loan_id="A", project_id="P1", tranche="A", outstanding_amount=400),
            _loan(
                loan_id="B",
                project_id="P1",
                tranche="B",
                outstanding_amount=300,
                syndicate_share="50%",
            ),
            _loan(loan_id="C", project_id="P2", outstanding_amount=80),
            _loan(loan_id="D", project_id="P2", outstanding_amount=60),
        ],
        results,
    )
    table = attribute(loans, results, Q3).sort("loan_id")
    assert_allclose(table["attribution"].to_numpy(), [0.4, 0.15, 80 / 140, 60 / 140])
    assert_allclose(
        table["avoided_tco2e_attributed"].to_numpy(), [200, 75, 500 * 80 / 140, 500 * 60 / 140]
    )
    assert_allclose(table["standard_coal_tce_attributed"][:2].to_numpy(), [80, 30])
    assert_allclose(table["outstanding_cny"].to_numpy(), [400, 150, 80, 60])
    # the loans of a project never carry more than the project
    per_project = table.group_by("project_id").agg(pl.col("attribution").sum())
    assert per_project["attribution"].max() <= 1 + 1e-12


def test_catalogue_by_approval_date() -> None:
    # 银发〔2025〕132号: the 2025 catalogue applies from 2025-10-01; the 2021 one before
    results = _results([{"project_id": "P1"}])
    loans = _loans(
        [
            _loan(loan_id="old", project_id="P1", approval_date="2025-09-30", outstanding_amount=1),
            _loan(loan_id="new", project_id="P1", approval_date="2025-10-01", outstanding_amount=1),
        ],
        results,
    )
    table = attribute(loans, results, Q3).sort("loan_id")
    assert table["catalogue"].to_list() == ["cn_gfsp_2025", "cn_gbepc_2021"]  # new, old
    assert table["green_category"].to_list() == ["4", "3"]
    assert table["green_category_l2"].to_list() == ["4.2", "3.2"]


def test_period_flows_and_invariants() -> None:
    results = _results([{"project_id": "P1"}])
    loans = _loans(
        [
            _loan(
                loan_id="q",
                project_id="P1",
                first_drawdown_date="2026-08-01",
                outstanding_amount=90,
                drawn_in_period=100,
                repaid_in_period=10,
            ),
            _loan(
                loan_id="h1",
                project_id="P1",
                first_drawdown_date="2026-02-01",
                outstanding_amount=50,
                drawn_in_period=0,
                repaid_in_period=5,
            ),
            _loan(
                loan_id="old",
                project_id="P1",
                first_drawdown_date="2025-12-01",
                outstanding_amount=20,
            ),
        ],
        results,
    )
    report = build_report(attribute(loans, results, Q3), Q3)
    green = report.statistics.filter(pl.col("breakdown") == "green_class").row(0, named=True)
    assert (green["loans"], green["balance_cny"]) == (3, 160)
    assert (green["new_lending_cny"], green["repaid_cny"]) == (100, 15)
    assert Q3.start == dt.date(2026, 7, 1) and Q3.end == dt.date(2026, 9, 30)
    assert parse_period("2026-H1").end == dt.date(2026, 6, 30)


def test_cerf_disclosure_reproduces_a_published_notice() -> None:
    # Shangrao Bank, 2023 Q2 (published 2023-10-09), reporting_facts.md §1.2,
    # http://m.debaiwuliu.com/srbank/syxx/xxzx/important/7358.html:
    # quarter 1 project / 10000 万元 / 4.2 % / 24428 t; year to date 2 / 11500 / 4.14 % /
    # 42674.43 t. The second loan is therefore 1500 万元 at (4.14×11500 − 4.2×10000)/1500 =
    # 3.74 % driving 18246.43 t. Each project is financed by its loan alone (attribution 1).
    results = _results(
        [
            {"project_id": "P1", "total_investment": 1e8, "avoided_tco2e_per_year": 24428.0},
            {"project_id": "P2", "total_investment": 1.5e7, "avoided_tco2e_per_year": 18246.43},
        ]
    )
    period = parse_period("2023-Q2")
    loans = _loans(
        [
            _loan(
                loan_id="L1",
                project_id="P1",
                approval_date="2023-04-01",
                first_drawdown_date="2023-05-10",
                interest_rate="4.2%",
                commitment_amount="10000",
                outstanding_amount="10000",
                cerf_refinanced_amount="6000",
            ),
            _loan(
                loan_id="L2",
                project_id="P2",
                approval_date="2023-01-05",
                first_drawdown_date="2023-02-10",
                interest_rate="3.74%",
                commitment_amount="1500",
                outstanding_amount="1500",
                cerf_refinanced_amount="900",
            ),
        ],
        results,
    )
    # the loan book in 万元 through its header would be the same; here amounts are ×10,000
    loans = loans.with_columns(
        pl.col("commitment_amount", "outstanding_amount", "cerf_refinanced_amount") * 1e4
    )
    cerf = build_report(attribute(loans, results, period), period).cerf
    clean = cerf.filter(pl.col("cerf_area") == "1")
    quarter = clean.filter(pl.col("scope") == "quarter").row(0, named=True)
    ytd = clean.filter(pl.col("scope") == "year_to_date").row(0, named=True)
    since = clean.filter(pl.col("scope") == "since_first_support").row(0, named=True)
    assert (quarter["projects"], ytd["projects"]) == (1, 2)
    assert_allclose([quarter["loan_amount_10k_cny"], ytd["loan_amount_10k_cny"]], [10000, 11500])
    assert_allclose(quarter["weighted_avg_rate_pct"], 4.2, atol=0.005)
    assert_allclose(ytd["weighted_avg_rate_pct"], 4.14, atol=0.005)  # published to 2 decimals
    assert_allclose(quarter["annual_reduction_tco2e"], 24428, atol=0.005)
    assert_allclose(ytd["annual_reduction_tco2e"], 42674.43, atol=0.005)
    # in the first year of support, since-start = year to date (reporting_facts.md §1.2)
    assert since["loan_amount_10k_cny"] == ytd["loan_amount_10k_cny"]
    # 60 % of principal refinanceable at 1.75 % [V] (taxonomy_facts.md §B)
    assert_allclose(ytd["refinanceable_10k_cny"], 6900)
    assert_allclose(ytd["relending_cost_10k_cny"], 6900 * 0.0175)


def test_pcaf_scores_and_project_emissions() -> None:
    # PCAF project-finance options as cited (reporting_facts.md §5): 1a→1, 1b→2, 2a/2b→3.
    results = _results(
        [
            {
                "project_id": "V",
                "activity": "gas_power",
                "project_emissions_tco2e": "1000",
                "project_emissions_verified": "yes",
                "fuel_consumed_t": None,
            },
            {
                "project_id": "U",
                "activity": "gas_power",
                "project_emissions_tco2e": "1000",
                "project_emissions_verified": "no",
                "fuel_consumed_t": None,
            },
            {
                "project_id": "F",
                "activity": "gas_power",
                "project_emissions_tco2e": None,
                "project_emissions_verified": None,
                "fuel_consumed_t": "100",
                "fuel_type": "natural_gas",
            },
            {
                "project_id": "C",
                "activity": "coal_power",
                "project_emissions_tco2e": None,
                "project_emissions_verified": None,
                "fuel_consumed_t": None,
            },
            {
                "project_id": "S",
                "activity": "solar_pv",
                "project_emissions_tco2e": None,
                "project_emissions_verified": None,
                "fuel_consumed_t": None,
            },
            {
                "project_id": "X",
                "activity": "cement",
                "project_emissions_tco2e": None,
                "project_emissions_verified": None,
                "fuel_consumed_t": None,
            },
        ]
    )
    table = project_emissions(results).sort("project_id")
    got = dict(zip(table["project_id"], table["pcaf_data_quality"], strict=True))
    assert got == {"C": 3, "F": 3, "S": 3, "U": 2, "V": 1, "X": None}
    value = dict(zip(table["project_id"], table["project_emissions_tco2e"], strict=True))
    # natural gas 2.6928 tCO2/t (IPCC 2006 Vol. 2: 56,100 kg/TJ × 48.0 TJ/Gg; fuels.csv)
    assert_allclose(value["F"], 269.28, rtol=1e-4)
    # coal power: 1,000 MWh × 0.8273 tCO2/MWh, MEE+NBS 2023 national fossil-power factor [V]
    # (emission_factors.md §1)
    assert_allclose(value["C"], 827.3, rtol=1e-6)
    assert value["S"] == 0.0 and value["X"] is None
    # financed emissions = outstanding / (equity + debt) × project emissions; avoided apart
    loans = _loans([_loan(loan_id="c", project_id="C", outstanding_amount=250)], results)
    row = attribute(loans, results, Q3).row(0, named=True)
    assert_allclose(row["financed_emissions_tco2e"], 0.25 * 827.3)
    assert_allclose(row["avoided_tco2e_pcaf"], 0.25 * 500)


def test_rejects_unknown_project_duplicate_and_outstanding_above_commitment() -> None:
    rows = [
        _loan(loan_id="A", project_id="P1", outstanding_amount=10, commitment_amount=20),
        _loan(loan_id="B", project_id="NOPE", outstanding_amount=10),
        _loan(loan_id="C", project_id="P1", outstanding_amount=10),
        _loan(loan_id="C", project_id="P1", outstanding_amount=10),
        _loan(loan_id="D", project_id="P1", outstanding_amount=30, commitment_amount=20),
        {},
    ]
    book = read_loans(rows, project_ids=pl.Series(["P1"]))
    codes = dict(zip(book.rejects["loan_id"], book.rejects["code"], strict=True))
    assert codes == {
        "B": "unknown_project",
        "C": "duplicate_id",
        "D": "outstanding_above_commitment",
    }
    assert book.loans["loan_id"].to_list() == ["A"]
    assert all(book.rejects["reason"].str.len_chars() > 0)
    # nothing lost: 6 rows = 1 accepted + 4 rejected + 1 blank
    assert book.n_input_rows == book.n_accepted + book.n_rejected + book.n_blank == 6


def test_template_headers_and_units_round_trip(tmp_path: Path) -> None:
    path = write_loan_template(tmp_path / "loans.xlsx")
    sheet = openpyxl.load_workbook(path)["loans"]
    assert sheet["A1"].value == "loan_id" and sheet["A2"].value == "贷款编号"
    # Chinese headers with units: 期末余额(万元) × 10,000; 利率 in %
    book = read_loans(
        [{"贷款编号": "L", "项目编号": "P", "期末余额(万元)": "1.5", "贷款利率(%)": "3.5"}]
    )
    row = book.loans.row(0, named=True)
    assert row["outstanding_amount"] == 15000 and row["interest_rate"] == pytest.approx(0.035)


@pytest.fixture(scope="module")
def sample_report() -> Any:
    return report_book(
        data_file("sample_loans.csv"), "2026-Q3", pipeline=data_file("sample_pipeline.csv")
    )


def test_sample_report_totals_reconcile(sample_report: Any) -> None:
    loans = sample_report.loans
    assert sample_report.book.n_rejected == 0 and loans.height == 50
    stats = sample_report.statistics.filter(pl.col("breakdown") == "green_class")
    assert_allclose(stats["balance_cny"].sum(), loans["outstanding_cny"].sum())
    assert_allclose(stats["new_lending_cny"].sum(), loans["drawn_in_period_cny"].sum())
    green = loans.filter(pl.col("green_class") == "green")
    for key in ("category_l1", "category_l2", "province", "borrower_type"):
        part = sample_report.statistics.filter(pl.col("breakdown") == key)
        assert_allclose(part["balance_cny"].sum(), green["outstanding_cny"].sum())
    benefits = sample_report.benefits
    assert_allclose(
        benefits["avoided_tco2e_attributed"].sum(), loans["avoided_tco2e_attributed"].sum()
    )
    assert (
        benefits["avoided_tco2e_attributed"].abs() <= benefits["project_avoided_tco2e"].abs() + 1e-6
    ).all()
    # attributed ≤ the project's own figure, in size (an EV fleet on a coal grid is negative)
    per_project = loans.group_by("project_id").agg(
        pl.col("avoided_tco2e_attributed").sum().abs(),
        pl.col("avoided_tco2e_per_year").first().abs().fill_null(0),
    )
    assert (
        per_project["avoided_tco2e_attributed"] <= per_project["avoided_tco2e_per_year"] + 1e-6
    ).all()
    assert_allclose(
        sample_report.pcaf["financed_emissions_tco2e"].sum(),
        loans["financed_emissions_tco2e"].sum(),
    )
    cerf = sample_report.cerf
    for area in cerf["cerf_area"].unique():
        rows = cerf.filter(pl.col("cerf_area") == area)
        q, y, s = (
            rows.filter(pl.col("scope") == k)["loan_amount_10k_cny"].item()
            for k in ("quarter", "year_to_date", "since_first_support")
        )
        assert q <= y <= s  # reporting_facts.md §1.2 invariants


def test_excel_totals_recalculate_to_the_parquet_figures(
    sample_report: Any, tmp_path: Path
) -> None:
    from test_excel import recalculate

    paths = write_report(sample_report, tmp_path / "out")
    (recalculated,) = recalculate([paths["xlsx"]], tmp_path)
    book = openpyxl.load_workbook(recalculated, data_only=True)
    cached = openpyxl.load_workbook(paths["xlsx"], data_only=True)

    def totals(workbook: Any, sheet: str) -> list[list[Any]]:
        return [
            [c for c in row]
            for row in workbook[sheet].iter_rows(values_only=True)
            if row[0] == "合计 Total"
        ]

    for sheet in ("statistics", "cerf", "benefits", "pcaf"):
        live, written = totals(book, sheet), totals(cached, sheet)
        assert len(live) == len(written) > 0
        for a, b in zip(live, written, strict=True):
            for x, y in zip(a[1:], b[1:], strict=True):
                if isinstance(y, float | int):
                    assert_allclose(x, y, rtol=1e-9, atol=1e-6)
    stats = pl.read_parquet(paths["statistics"]).filter(pl.col("breakdown") == "green_class")
    assert_allclose(totals(book, "statistics")[0][4], stats["balance_cny"].sum())
    pcaf = pl.read_parquet(paths["pcaf"])
    assert_allclose(totals(book, "pcaf")[0][3], pcaf["financed_emissions_tco2e"].sum())
    share = [r for r in book["jrt0227"].iter_rows(values_only=True) if r[0] == "green_loan_share"]
    jrt = pl.read_parquet(paths["jrt0227"]).filter(pl.col("indicator") == "green_loan_share")
    assert_allclose(share[0][3], jrt["value"].item())


def test_cli_report_and_loan_template(tmp_path: Path) -> None:
    result = run_cli("template", "--kind", "loans", str(tmp_path / "t.xlsx"))
    assert result.returncode == 0, result.stderr
    out = tmp_path / "r"
    result = run_cli(
        *[
            "report",
            str(data_file("sample_loans.csv")),
            "--pipeline",
            str(data_file("sample_pipeline.csv")),
            "--period",
            "2026-Q3",
            "--out",
            str(out),
        ]
    )
    assert result.returncode == 0, result.stderr
    for name in (
        "loans.parquet",
        "green_loan_statistics.parquet",
        "cerf_disclosure.parquet",
        "benefits.parquet",
        "pcaf.parquet",
        "disclosure_jrt0227.parquet",
        "report.xlsx",
        "report.html",
        "run.json",
    ):
        assert (out / name).is_file(), name
    columns = pl.read_parquet(out / "loans.parquet").columns
    for column in (
        "loan_id",
        "project_id",
        "outstanding_cny",
        "attribution",
        "avoided_tco2e_attributed",
        "standard_coal_tce_attributed",
        "financed_emissions_tco2e",
        "pcaf_data_quality",
        "green_category",
        "cerf_area",
    ):
        assert column in columns
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html and "碳减排贷款信息披露表" in html


def test_report_on_a_registered_run_equals_the_report_on_its_results(tmp_path: Path) -> None:
    """Issue 21: `greenscreen report BOOK --run RUN` takes the screened results from the run
    register (issue 20): the same tables as `--results out/results.parquet`."""
    from conftest import run_cli

    sample = str(data_file("sample_pipeline.csv"))
    loans = str(data_file("sample_loans.csv"))
    register = str(tmp_path / "runs.duckdb")
    done = run_cli("screen", sample, "--out", str(tmp_path / "o"), "-q", "--register", register)
    assert done.returncode == 0, done.stderr
    for name, source in (
        ("by-run", ["--run", "latest", "--register", register]),
        ("by-file", ["--results", str(tmp_path / "o" / "results.parquet")]),
    ):
        done = run_cli(
            "report", loans, *source, "--period", "2026-Q3", "--out", str(tmp_path / name), "-q"
        )
        assert done.returncode == 0, done.stderr
    for table in ("loans.parquet", "green_loan_statistics.parquet", "cerf_disclosure.parquet"):
        a = pl.read_parquet(tmp_path / "by-run" / table)
        b = pl.read_parquet(tmp_path / "by-file" / table)
        assert a.equals(b), table
