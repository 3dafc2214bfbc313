"""The portfolio (xlsx and html) reports the figures green-loan statistics need (issue 18 item
11): loan amount, projects and avoided tCO2e by rulebook × status, the legacy 2021 × current
2025 catalogue crosswalk, IRR and currency, and the rejected rows themselves; columns fit their
content (item 6)."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import polars as pl
import pytest

from greenscreen import screen
from greenscreen.report import write_portfolio_html
from greenscreen.report.portfolio import crosswalk, status_totals, write_portfolio


@pytest.fixture
def result(sample_result):  # noqa: ANN001, ANN201 - a ScreenResult
    return sample_result  # the sample screened once per session (conftest)


def test_status_totals_are_the_sums_of_the_results(result) -> None:  # noqa: ANN001
    frame = result.results
    totals = status_totals(frame.lazy(), [b.id for b in result.rulebooks])
    eligible = frame.filter(pl.col("cn_gfsp_2025__status") == "eligible")
    row = totals.filter(
        (pl.col("rulebook") == "cn_gfsp_2025") & (pl.col("status") == "eligible")
    ).row(0, named=True)
    assert row["projects"] == eligible.height == 21
    assert row["loan_amount"] == pytest.approx(eligible["loan_amount"].sum())
    assert row["avoided_tco2e_per_year"] == pytest.approx(
        eligible["avoided_tco2e_per_year"].fill_nan(None).sum()
    )
    # every rulebook's statuses add up to the pipeline
    per_book = totals.group_by("rulebook").agg(pl.col("projects").sum())
    assert set(per_book["projects"]) == {frame.height}


def test_crosswalk_is_the_legacy_by_current_migration(result) -> None:  # noqa: ANN001
    cross = crosswalk(result.results.lazy())
    assert cross is not None
    assert cross["projects"].sum() == result.results.height
    moved = cross.filter((pl.col("legacy") == "not_eligible") & (pl.col("current") == "eligible"))
    expected = result.results.filter(
        (pl.col("cn_gbepc_2021__status") == "not_eligible")
        & (pl.col("cn_gfsp_2025__status") == "eligible")
    )
    assert moved["projects"].item() == expected.height
    assert moved["loan_amount"].item() == pytest.approx(expected["loan_amount"].sum())


def test_the_workbook_holds_the_tables_and_fits_its_columns(result, tmp_path: Path) -> None:  # noqa: ANN001
    path = write_portfolio(result, tmp_path / "portfolio.xlsx")
    assert path is not None
    book = openpyxl.load_workbook(path, data_only=True)
    summary = book["Summary"]
    labels = [summary.cell(r, 1).value for r in range(1, summary.max_row + 1)]
    assert any(str(v).startswith("Legacy 2021 catalogue status") for v in labels if v)
    heads = [c.value for c in book["Results"][1]]
    assert {"currency", "project_irr", "irr_reason"} <= set(heads)
    # widths in characters (openpyxl) cover the longest value of the column
    sheet = book["Results"]
    name_col = heads.index("project_name") + 1
    letter = openpyxl.utils.get_column_letter(name_col)
    longest = max(
        len(str(sheet.cell(r, name_col).value or "")) for r in range(2, sheet.max_row + 1)
    )
    assert sheet.column_dimensions[letter].width >= min(longest, 58)
    date_col = openpyxl.utils.get_column_letter(heads.index("approval_date") + 1)
    assert sheet.column_dimensions[date_col].width >= 12  # 2025-10-01 without ###


_TOTALS_SCRIPT = """
import math, numpy as np, polars as pl
from greenscreen.report.portfolio import status_totals
rng = np.random.default_rng(1)
n = 400_000
frame = pl.DataFrame({
    "eu_taxonomy__status": rng.choice(["aligned", "eligible"], n),
    "avoided_tco2e_per_year": rng.lognormal(8, 2, n),
    "loan_amount": rng.lognormal(18, 1.5, n),
})
totals = status_totals(frame.lazy(), ["eu_taxonomy"]).sort("status")
for row in totals.iter_rows(named=True):
    part = frame.filter(pl.col("eu_taxonomy__status") == row["status"])
    for name in ("avoided_tco2e_per_year", "loan_amount"):
        exact = math.fsum(part[name].to_list())
        assert abs(row[name] - exact) <= 1e-6 * part.height, (name, row[name], exact)
print(totals.rows())
"""


def test_status_totals_do_not_depend_on_the_number_of_threads() -> None:
    """Found comparing two runs of the same 100,000 projects: a float sum in a parallel
    group-by gave 1926507891.155328, …329 or …330 with 1, 2 or 3 threads, so portfolio.xlsx
    differed between runs. Sums are now exact over values in millionths (math.fsum agrees to
    1e-6 per project), the same with any number of threads."""
    import os
    import subprocess
    import sys

    printed = {
        subprocess.run(
            [sys.executable, "-c", _TOTALS_SCRIPT],
            env={**os.environ, "POLARS_MAX_THREADS": str(threads)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for threads in (1, 2, 3)
    }
    assert len(printed) == 1, printed


def test_the_html_lists_status_totals_irr_and_rejected_rows(tmp_path: Path) -> None:
    rows = [
        {"project_id": "A", "activity": "solar_pv", "loan_amount": 1e6, "province": "陕西"},
        {"project_id": "B", "activity": "solar_pv", "capacity_mw": "fifty"},
    ]
    result = screen(rows)
    assert result.rejects.height == 1
    html = write_portfolio_html(result, tmp_path / "p.html").read_text(encoding="utf-8")
    assert "By rulebook and status" in html and "Loan amount (CNY)" in html
    assert "Rejected input rows" in html and "fifty" in html
    assert "Project IRR" in html or "IRR" in html
