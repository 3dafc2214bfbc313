"""Excel appraisal packs: live formulas recalculate (LibreOffice) to the engine's numbers.

The packs are written *without* cached formula results, converted by LibreOffice headless
with forced recalculation (DESIGN.md: OOXMLRecalcMode = 0 in a throw-away profile), and read
back: every compared figure can only have come from the formulas. Then the other way round
(issue 18 item 1): written *with* cached results, every formula's cached value is what
LibreOffice computes, and a plain conversion to PDF (no recalculation, as LibreOffice opens an
xlsx by default) prints the engine's figures.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import zipfile
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from conftest import run_cli

from greenscreen import screen
from greenscreen._resources import data_file
from greenscreen.appraisal import AppraisalConfig
from greenscreen.report import MANIFEST, write_excel_pack, write_packs
from greenscreen.run import ScreenResult

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
PROFILE_XCU = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<oor:items xmlns:oor="http://openoffice.org/2001/registry">\n'
    '<item oor:path="/org.openoffice.Office.Calc/Formula/Load">'
    '<prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop></item>\n'
    "</oor:items>\n"
)
COMPARED = {
    "cf_npv": "npv",
    "cf_irr": "project_irr",
    "cf_equity_irr": "equity_irr",
    "cf_min_dscr": "min_dscr",
    "cf_llcr": "llcr",
    "cf_lcoe": "lcoe",
    "cf_debt": "debt_amount",
    "em_avoided": "avoided_tco2e_per_year",
    "em_lifetime": "avoided_tco2e_lifetime",
    "em_attributable": "attributable_tco2e_per_year",
    "sub_total": "subsidy_total",
}
CASES = [  # (project, debt profile, language)
    ("GS-009", "annuity", "en"),  # Inner Mongolia wind
    ("GS-001", "annuity", "zh"),  # Baoji PV: negative IRR
    ("GS-003", "equal_principal", "en"),  # Chongqing building: award subsidy
    ("GS-004", "sculpted", "zh"),  # Lingang storage: subsidy over 3 years
    ("GS-008", "sculpted", "en"),  # Yunnan hydro: 4 construction years, IDC
    ("GS-013", "equal_principal", "zh"),  # nuclear: long construction and grace
    ("GS-030", "annuity", "en"),  # landfill gas: methane method
]


def recalculate(
    files: list[Path], out: Path, to: str = "xlsx", *, force: bool = True
) -> list[Path]:
    """LibreOffice headless, saved as ``to``: with forced recalculation on load, or (``force``
    false) with a fresh default profile, which does not recalculate an xlsx on load."""
    if SOFFICE is None:
        pytest.skip("LibreOffice (soffice) is not installed; .ci/run installs libreoffice-calc")
    profile = out / ("profile" if force else "profile-default")
    (profile / "user").mkdir(parents=True, exist_ok=True)
    if force:
        (profile / "user" / "registrymodifications.xcu").write_text(PROFILE_XCU, encoding="utf-8")
    target = out / ("recalculated" if force else "converted")
    subprocess.run(
        [
            SOFFICE,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--convert-to",
            to,
            "--outdir",
            str(target),
            *map(str, files),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return [target / f"{f.stem}.{to}" for f in files]


def formula_cells(path: Path) -> list[tuple[str, str]]:
    """(sheet, cell) of every formula in a workbook."""
    book = openpyxl.load_workbook(path)
    return [
        (sheet.title, cell.coordinate)
        for sheet in book
        for line in sheet.iter_rows()
        for cell in line
        if cell.data_type == "f"
    ]


def cached_mismatches(written: Path, recalculated: Path) -> list[tuple[str, str, object, object]]:
    """Formula cells whose cached value (as written) differs from LibreOffice's result."""
    cached = openpyxl.load_workbook(written, data_only=True)
    computed = openpyxl.load_workbook(recalculated, data_only=True)
    out = []
    for sheet, ref in formula_cells(written):
        mine, theirs = cached[sheet][ref].value, computed[sheet][ref].value
        if isinstance(theirs, (int, float)) and isinstance(mine, (int, float)):
            if mine == pytest.approx(theirs, rel=1e-6, abs=1e-6):
                continue
        elif (mine or "") == (theirs or ""):  # "" and an empty cell are both blank
            continue
        out.append((sheet, ref, mine, theirs))
    return out


def named_value(book: openpyxl.Workbook, name: str) -> object:
    sheet, ref = next(iter(book.defined_names[name].destinations))
    return book[sheet][ref.replace("$", "")].value


@pytest.fixture(scope="module")
def profile_results() -> dict[str, ScreenResult]:
    """The sample screened under each debt profile of CASES, with a carbon price."""
    return {
        profile: screen(
            data_file("sample_pipeline.csv"),
            appraisal=AppraisalConfig(debt_profile=profile, carbon_price=61.05),  # type: ignore[arg-type]
        )
        for profile in sorted({case[1] for case in CASES})
    }


@pytest.fixture(scope="module")
def forced_recalculation(
    tmp_path_factory: pytest.TempPathFactory,
    profile_results: dict[str, ScreenResult],
    sample_result: ScreenResult,
) -> dict[str, list[tuple[Path, Path]]]:
    """(written, recalculated by LibreOffice) for the workbooks recalculated on load, in one
    LibreOffice run (it starts in seconds, not milliseconds): "uncached", each CASE's pack
    written without cached formula results; "cached", each CASE's pack with them; "portfolio",
    the sample's portfolio.xlsx."""
    out = tmp_path_factory.mktemp("packs")
    written: dict[str, list[Path]] = {"uncached": [], "cached": []}
    for pid, profile, lang in CASES:
        result = profile_results[profile]
        name = f"{pid}_{profile}_{lang}"
        written["uncached"].append(
            write_excel_pack(result, pid, out / f"{name}.xlsx", lang=lang, cached_values=False)  # type: ignore[arg-type]
        )
        written["cached"].append(
            write_excel_pack(result, pid, out / f"{name}_cached.xlsx", lang=lang)  # type: ignore[arg-type]
        )
    written["portfolio"] = [sample_result.write(out / "out")["portfolio"]]
    files = [path for paths in written.values() for path in paths]
    converted = iter(recalculate(files, out))
    return {kind: [(path, next(converted)) for path in paths] for kind, paths in written.items()}


@pytest.fixture(scope="module")
def recalculated(
    forced_recalculation: dict[str, list[tuple[Path, Path]]],
    profile_results: dict[str, ScreenResult],
) -> dict[tuple[str, str, str], tuple[Path, dict]]:
    """Each CASE's pack written without cached results, recalculated; the engine's row."""
    out = {}
    for (pid, profile, lang), (_, path) in zip(
        CASES, forced_recalculation["uncached"], strict=True
    ):
        frame = profile_results[profile].results
        out[(pid, profile, lang)] = (
            path,
            frame.filter(pl.col("project_id") == pid).row(0, named=True),
        )
    return out


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_formulas_recalculate_to_the_engine(recalculated: dict, case: tuple[str, str, str]) -> None:
    """Issue #7: NPV, IRR, min DSCR, LCOE, avoided tCO2e and subsidy totals within 1e-6."""
    path, row = recalculated[case]
    book = openpyxl.load_workbook(path, data_only=True)
    compared = 0
    for name, column in COMPARED.items():
        engine = row[column]
        sheet_value = named_value(book, name)
        if engine is None or (isinstance(engine, float) and math.isnan(engine)):
            assert sheet_value in ("n/a", 0, None), (name, sheet_value)
            continue
        assert isinstance(sheet_value, (int, float)), (name, sheet_value)
        assert sheet_value == pytest.approx(engine, rel=1e-6, abs=1e-9), name
        compared += 1
    assert compared >= 6
    errors = [
        (sheet.title, cell.coordinate, cell.value)
        for sheet in book
        for line in sheet.iter_rows()
        for cell in line
        if isinstance(cell.value, str)
        and cell.value.startswith(("#DIV/0", "#REF", "#NAME", "#VALUE", "#NUM", "#N/A", "Err:"))
    ]
    assert errors == []


@pytest.mark.slow
def test_every_cached_value_is_what_the_formula_computes(
    forced_recalculation: dict[str, list[tuple[Path, Path]]],
) -> None:
    """Issue 18 item 1: each formula of the packs (every CASE, both languages, the three debt
    profiles) and of portfolio.xlsx carries the figure LibreOffice computes from it, so a viewer
    that does not recalculate shows the same numbers as one that does."""
    files = forced_recalculation["cached"] + forced_recalculation["portfolio"]
    assert len(files) == len(CASES) + 1
    for written, recalculated in files:
        assert len(formula_cells(written)) > 40, written.name
        assert cached_mismatches(written, recalculated) == [], written.name


@pytest.mark.slow
def test_a_plain_pdf_conversion_prints_the_engine_figures(
    sample_result: ScreenResult, tmp_path: Path
) -> None:
    """``soffice --headless --convert-to pdf`` with LibreOffice's default settings (an xlsx is
    not recalculated on load) shows the engine's NPV, minimum DSCR, LCOE and debt — not the
    zeros of formulas without cached results."""
    from pypdf import PdfReader

    result = sample_result
    row = result.results.filter(pl.col("project_id") == "GS-009").row(0, named=True)
    pack = write_excel_pack(result, "GS-009", tmp_path / "GS-009.xlsx", lang="en")
    (pdf,) = recalculate([pack], tmp_path, "pdf", force=False)
    text = " ".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert f"{row['npv']:,.0f}" in text
    assert f"{row['min_dscr']:.3f}" in text
    assert f"{row['lcoe']:,.2f}" in text
    assert f"{row['debt_amount']:,.0f}" in text
    assert f"{row['project_irr']:.2%}" in text


def test_pipeline_text_is_never_a_formula_or_link(tmp_path: Path) -> None:
    """Issue #7: formula injection stays text."""
    hostile = {
        "project_id": "@SUM(1+1)*cmd|' /C calc'!A0",
        "project_name": '=HYPERLINK("http://x","y")',
        "borrower": "+cmd|' /C calc'!A0",
        "description": "-2+3 solar",
        "activity": "solar_pv",
        "capacity_mw": 10,
        "full_load_hours": 1500,
        "tariff_per_mwh": 300,
        "total_investment": 40_000_000,
        "operating_years": 20,
    }
    result = screen([hostile])
    path = write_excel_pack(result, hostile["project_id"], tmp_path / "h.xlsx")
    book = openpyxl.load_workbook(path)
    texts = {
        cell.value
        for sheet in book
        for line in sheet.iter_rows()
        for cell in line
        if cell.data_type == "s"
    }
    assert any(hostile["project_name"] in str(v) for v in texts)
    assert hostile["borrower"] in texts
    formulas = [
        cell.value
        for sheet in book
        for line in sheet.iter_rows()
        for cell in line
        if cell.data_type == "f"
    ]
    assert not any("HYPERLINK" in f or "cmd|" in f for f in formulas)
    with zipfile.ZipFile(path) as archive:
        assert not any("hyperlink" in name.lower() for name in archive.namelist())


def test_packs_are_byte_identical(sample_result: ScreenResult, tmp_path: Path) -> None:
    result = sample_result
    a = write_excel_pack(result, "GS-009", tmp_path / "a.xlsx").read_bytes()
    b = write_excel_pack(result, "GS-009", tmp_path / "b.xlsx").read_bytes()
    assert a == b


def test_the_pack_tables_are_the_engines_model() -> None:
    """The CashFlow lines, the debt sizing and the derived inputs of the pack (the tables in
    report/excel.py) are every line of ``Appraisal.workings``, and the metrics are results
    columns: each formula has the engine's cached value, and no working is left out."""
    from greenscreen.report import excel

    result = screen(data_file("sample_pipeline.csv"))
    assert result.appraisal is not None
    per_year, sizing = result.appraisal.workings("GS-009")
    assert [line.engine or line.key for line in excel._LINES] == list(
        dict.fromkeys(line.engine or line.key for line in excel._LINES)
    )  # no line twice
    assert {line.engine or line.key for line in excel._LINES} == set(per_year)
    assert {f.engine for f in (*excel._DERIVED, *excel._SIZING)} == set(sizing)
    assert {f.engine for f in excel._METRICS} <= set(result.results.columns)


def test_pack_file_names_cannot_leave_the_directory(tmp_path: Path) -> None:
    ids = ["../../escape", "CON", "a/b\\c", "名称\u202e"]
    rows = [{"project_id": pid, "activity": "solar_pv", "total_investment": 1e6} for pid in ids]
    result = screen(rows)
    out = tmp_path / "packs"
    written = write_packs(result, out, None)  # xlsx and html per project, and index.html
    assert len(written) == 9 and len({p.name for p in written}) == 9
    # no temporary files left behind; the manifest lets a re-run skip up-to-date packs
    assert sorted(p for p in out.iterdir() if p.name != MANIFEST) == sorted(written)
    for path in written:
        assert path.parent == out.resolve()
        assert path.is_file()
    assert not (tmp_path / "escape.xlsx").exists()


def test_cli_pack(tmp_path: Path) -> None:
    sample = str(data_file("sample_pipeline.csv"))
    done = run_cli(
        "pack",
        sample,
        "--project",
        "GS-009",
        "--project",
        "GS-003",
        "--lang",
        "zh",
        "--out",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.glob("*.xlsx")) == ["GS-003.xlsx", "GS-009.xlsx"]
    book = openpyxl.load_workbook(tmp_path / "GS-009.xlsx")
    assert book.sheetnames[:3] == ["摘要", "输入", "现金流"]
    missing = run_cli("pack", sample, "--project", "GS-999", "--out", str(tmp_path))
    assert missing.returncode == 1 and "no project 'GS-999'" in missing.stderr


@pytest.mark.slow
def test_portfolio_workbook_recalculates_to_the_results(
    sample_result: ScreenResult, forced_recalculation: dict[str, list[tuple[Path, Path]]]
) -> None:
    """portfolio.xlsx: an Excel table of the results, and summary formulas (COUNTIF/SUM over
    the table) that LibreOffice recalculates to the engine's totals."""
    result = sample_result
    ((portfolio, recalculated),) = forced_recalculation["portfolio"]  # result.write()'s
    book = openpyxl.load_workbook(portfolio)
    assert book.sheetnames == ["Summary", "Results", "Rejects", "Sources"]
    assert "results" in book["Results"].tables
    assert book["Results"].freeze_panes == "B2"
    values = openpyxl.load_workbook(recalculated, data_only=True)["Summary"]
    cells = {values.cell(r, 1).value: values.cell(r, 2).value for r in range(1, 12)}
    frame = result.results
    assert cells["Projects"] == frame.height
    assert cells["Loan amount"] == pytest.approx(frame["loan_amount"].sum(), rel=1e-9)
    assert cells["Avoided emissions per year [tCO2e/yr]"] == pytest.approx(
        frame["avoided_tco2e_per_year"].sum(), rel=1e-9
    )
    assert cells["Subsidies (committed)"] == pytest.approx(frame["subsidy_total"].sum(), rel=1e-9)
    rows: dict[object, int] = {}
    for r in range(1, 80):  # the first row a label is on: the counts table
        rows.setdefault(values.cell(r, 1).value, r)
    excluded_col = (
        1
        + list(("aligned", "eligible", "insufficient_data", "excluded", "not_eligible")).index(
            "excluded"
        )
        + 1
    )
    assert (
        values.cell(rows["cn_exclusions"], excluded_col).value
        == frame.filter(pl.col("cn_exclusions__status") == "excluded").height
    )


def test_portfolio_is_skipped_above_the_row_limit(
    sample_result: ScreenResult, tmp_path: Path
) -> None:
    result = sample_result
    paths = result.write(tmp_path, portfolio_max_rows=10)
    assert "portfolio" not in paths and not (tmp_path / "portfolio.xlsx").exists()
