"""HTML packs and the portfolio report, checked in a real browser (headless Chromium; those
tests are marked slow) and as rendered HTML (a snapshot, the Chinese pack's wording)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image
from syrupy.assertion import SnapshotAssertion

from greenscreen import screen
from greenscreen.report import write_html_pack, write_packs, write_portfolio_html
from greenscreen.report.html import render_html_pack


@pytest.fixture
def sample(sample_result_sensitivities):  # type: ignore[no-untyped-def]
    return sample_result_sensitivities  # screened once per session (conftest)


def _browser():  # type: ignore[no-untyped-def]
    browser = pytest.importorskip("browser")
    if browser.CHROMIUM is None:
        pytest.skip("chromium is not installed; .ci/run installs it")
    return browser


def _non_blank(png: bytes) -> float:
    """Share of screenshot pixels darker than near-white."""
    image = Image.open(io.BytesIO(png)).convert("L")
    histogram = image.histogram()
    return sum(histogram[:235]) / (image.width * image.height)


@pytest.mark.slow  # drives headless Chromium
def test_pack_renders_in_chromium_and_fetches_nothing(sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Issue #8, acceptance 1: non-blank, title present, no network request."""
    browser = _browser()
    path = write_html_pack(sample, "GS-009", tmp_path / "GS-009.html")
    page = browser.visit(path)
    assert page.title == "Green loan appraisal pack — GS-009"
    assert all(url.startswith(("file://", "data:")) for url in page.requests), page.requests
    assert page.requests and page.requests[0].startswith("file://")
    assert _non_blank(page.screenshot) > 0.03
    (tmp_path / "GS-009.png").write_bytes(page.screenshot)


@pytest.mark.slow
def test_hostile_text_is_shown_as_text(tmp_path: Path) -> None:
    """Issue #8, acceptance 2: script and onerror payloads appear as text, never run."""
    project = {
        "project_id": "X-1",
        "project_name": "<script>alert(1)</script>",
        "description": "<img src=x onerror=alert(1)>",
        "borrower": '"><svg onload=alert(1)>',
        "activity": "solar_pv",
        "capacity_mw": 10,
        "full_load_hours": 1400,
        "tariff_per_mwh": 300,
        "total_investment": 40_000_000,
        "operating_years": 20,
    }
    result = screen([project])
    html = render_html_pack(result, "X-1")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<svg onload" not in html
    assert "<script" not in html  # no script at all, from us or pygal
    browser = _browser()
    path = tmp_path / "x.html"
    path.write_text(html, encoding="utf-8")
    page = browser.visit(path)
    assert all(url.startswith("file://") for url in page.requests), (
        page.requests
    )  # img src=x not loaded


def test_pack_html_snapshot(sample, snapshot: SnapshotAssertion) -> None:  # type: ignore[no-untyped-def]
    """Issue #8, acceptance 3: layout changes are reviewed diffs (rendered HTML: no browser,
    so not marked slow)."""
    html = render_html_pack(sample, "GS-003", lang="zh")
    assert html == render_html_pack(sample, "GS-003", lang="zh")  # deterministic
    assert html == snapshot


@pytest.mark.slow
def test_print_to_pdf_paginates_without_cut_tables(sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Issue #8, acceptance 4: A4 pages, several of them, and rows never split."""
    browser = _browser()
    path = write_html_pack(sample, "GS-008", tmp_path / "GS-008.html", lang="zh")
    page = browser.visit(path, pdf=True)
    pdf = page.pdf
    assert pdf.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert 3 <= pages <= 12
    boxes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)", pdf)
    assert boxes and all(
        abs(float(w) - 595.92) < 2 and abs(float(h) - 842.88) < 2 for w, h in boxes
    )  # A4
    (tmp_path / "GS-008.pdf").write_bytes(pdf)
    css = path.read_text(encoding="utf-8")
    assert "break-inside: avoid" in css and "@page { size: A4" in css


@pytest.mark.slow
def test_portfolio_report_links_packs(sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    browser = _browser()
    written = write_packs(sample, tmp_path, ["GS-001", "GS-009"], formats=("html",))
    index = tmp_path / "index.html"
    assert index in written
    html = index.read_text(encoding="utf-8")
    assert 'href="GS-009.html"' in html and 'href="GS-001.html"' in html
    page = browser.visit(index)
    assert page.title.startswith("Green loan pipeline screening")
    assert all(url.startswith("file://") for url in page.requests)
    paths = sample.write(tmp_path / "out")
    report = paths["portfolio_html"].read_text(encoding="utf-8")
    assert 'href="packs/GS-009.html"' in report
    big = write_portfolio_html(sample, tmp_path / "p.html")
    assert big.stat().st_size > 10_000
    zh = write_portfolio_html(sample, tmp_path / "zh.html", lang="zh").read_text(encoding="utf-8")
    assert "<title>绿色贷款项目筛查汇总" in zh and "信息不足 (insufficient_data)" in zh
    assert "greenscreen portfolio" not in zh


ENGINE_ENGLISH = (
    "combined margin",
    "grid factor",
    "activity data",
    "implausible yield",
    "(missing)",
    "needs ",
    "no sign change",
    "(unverified)",
    "(verified)",
    "grid_power",
)


def test_chinese_packs_speak_chinese(sample_result) -> None:  # type: ignore[no-untyped-def]
    """Issue 18 item 8: in a zh pack the engine's notes, flags, factor provenance, method,
    verification and yes/no are Chinese, and a criterion's inputs are named by their labels,
    not field ids (every sample project). EU and GLP thresholds stay in their source's
    English; the Chinese catalogues' conditions are quoted in Chinese."""
    result = sample_result
    for pid in result.results["project_id"]:
        page = render_html_pack(result, pid, lang="zh")
        body = re.sub(r"<(style|svg)\b.*?</\1>", "", page, flags=re.S)
        found = [words for words in ENGINE_ENGLISH if words in body]
        assert found == [], (pid, found)
        assert not re.search(r">[^<]*\b[a-z]+(_[a-z0-9]+)+=", body), pid  # field_id=value
    gs009 = render_html_pack(result, "GS-009", lang="zh")
    assert "CCER/CDM 2019 年组合边际排放因子，华北电网" in gs009
    assert "上网电量替代电网电量" in gs009
