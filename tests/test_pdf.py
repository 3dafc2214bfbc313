"""Printed packs (issue 18 items 7 and 9): the HTML pack printed to PDF by headless Chromium
(the A4 print stylesheet, text extractable, fonts embedded, CJK included), a clear error without
Chromium; the Excel CashFlow sheet prints its years across landscape pages with the row labels
repeated, one page tall, instead of 42 columns squeezed onto one page."""

from __future__ import annotations

import shutil
import unicodedata
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from greenscreen.errors import GreenscreenError
from greenscreen.report import html as html_module
from greenscreen.report import write_excel_pack
from greenscreen.report.html import write_pdf_pack


@pytest.fixture
def result(sample_result):  # noqa: ANN001, ANN201 - a ScreenResult
    return sample_result  # the sample screened once per session (conftest)


def pdf_fonts(reader) -> list[tuple[str, bool]]:  # noqa: ANN001 - a pypdf PdfReader
    """(font, embedded) of every font the pages use: a Type3 font's glyphs are in the PDF."""
    out = []
    for page in reader.pages:
        for font in (page["/Resources"].get("/Font") or {}).values():
            font = font.get_object()
            if font.get("/Subtype") == "/Type3":
                out.append(("Type3", True))
                continue
            if font.get("/Subtype") == "/Type0":
                font = font["/DescendantFonts"][0].get_object()
            descriptor = font.get("/FontDescriptor")
            files = descriptor.get_object() if descriptor is not None else {}
            embedded = any(k in files for k in ("/FontFile", "/FontFile2", "/FontFile3"))
            out.append((str(font.get("/BaseFont")), embedded))
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("pid", "lang"), [("GS-003", "zh"), ("GS-009", "en")])
def test_the_pdf_pack_prints_the_engine_figures(
    result, tmp_path: Path, pid: str, lang: str
) -> None:  # noqa: ANN001
    from pypdf import PdfReader

    if not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")):
        pytest.fail("chromium is not installed (.ci/run installs it)")
    path = write_pdf_pack(result, pid, tmp_path / f"{pid}.pdf", lang=lang)  # type: ignore[arg-type]
    reader = PdfReader(path)
    assert 2 <= len(reader.pages) <= 12
    box = reader.pages[0].mediabox  # A4: 595 × 842 pt
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)
    # Chromium maps some CJK glyphs to compatibility code points (⾊ for 色): NFKC undoes it
    text = unicodedata.normalize("NFKC", " ".join(p.extract_text() for p in reader.pages))
    row = result.results.filter(pl.col("project_id") == pid).row(0, named=True)
    assert pid in text
    npv = f"{row['npv'] / 1e4:,.1f} 万" if lang == "zh" else f"{row['npv']:,.0f}"
    assert npv in text
    if lang == "zh":
        assert "绿色贷款评估报告" in text and "需向借款人索取的资料" in text
    fonts = pdf_fonts(reader)
    assert fonts and all(embedded for _, embedded in fonts), fonts


def test_without_chromium_the_pdf_is_one_clear_error(
    result,  # noqa: ANN001
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(html_module.shutil, "which", lambda name: None)
    with pytest.raises(GreenscreenError, match="needs Chromium"):
        write_pdf_pack(result, "GS-003", tmp_path / "x.pdf")
    assert not (tmp_path / "x.pdf").exists()


def test_the_cashflow_sheet_prints_years_across_pages(result, tmp_path: Path) -> None:  # noqa: ANN001
    path = write_excel_pack(result, "GS-008", tmp_path / "p.xlsx")
    book = openpyxl.load_workbook(path)
    cashflow = book["CashFlow"]
    setup = cashflow.page_setup
    assert setup.orientation == "landscape" and setup.paperSize == 9
    # an absent fitToHeight/fitToWidth is 1, the OOXML default
    assert setup.fitToWidth == 0 and setup.fitToHeight in (None, 1)
    assert cashflow.print_title_cols == "$A:$C" and cashflow.print_title_rows == "$1:$2"
    summary = book["Summary"].page_setup
    assert summary.fitToWidth in (None, 1) and summary.fitToHeight == 0
