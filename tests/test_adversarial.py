"""Issue #10: hostile and broken inputs, property-based tests and an adversarial corpus.

The hand-made files are in ``tests/data/adversarial/`` (its README lists each one); files that
are easier to generate than to commit (workbooks, 100,000-character cells, factor tables) are
made here in ``tmp_path``. Every outcome must be a clear ``GreenscreenError`` (for the CLI: exit
1 or 2, one line on stderr, no traceback) or a reject row; nothing lands outside the output
directory; the same input gives byte-identical outputs.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
import xlsxwriter
import yaml
from conftest import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenscreen import FIELDS, GreenscreenError, PipelineError, RulebookError, read_pipeline
from greenscreen import screen as screen_pipeline
from greenscreen._resources import data_file
from greenscreen.emissions import EmissionsConfig
from greenscreen.report import write_packs
from greenscreen.report._files import confined, safe_stem
from greenscreen.report.html import render_html_pack, write_portfolio_html
from greenscreen.rulebook import compile_condition, load_rulebook, load_rulebooks

CORPUS = Path(__file__).parent / "data" / "adversarial"
HOSTILE_TEXT = CORPUS / "hostile_text.csv"
HOSTILE_IDS = CORPUS / "hostile_ids.csv"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def assert_clean_failure(done: subprocess.CompletedProcess[str], message: str) -> None:
    """Exit 1, one line on stderr naming the problem, no traceback anywhere."""
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and message in lines[0], lines[0]


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def assert_confined(root: Path, before: set[Path]) -> None:
    """Every file written is under ``root``; nothing new appeared next to it."""
    resolved = root.resolve()
    for path in root.rglob("*"):
        assert path.resolve().is_relative_to(resolved), path
        assert not path.is_symlink(), path
        assert ".tmp" not in path.name, path  # no temporary file left behind
    assert set(root.parent.iterdir()) - before == {root}


# --------------------------------------------------------------------------------------------
# Broken files
def excel_bytes(rows: list[list[Any]]) -> bytes:
    """A workbook with one sheet 'pipeline'; datetimes as date cells, '=…' as formulas."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet("pipeline")
    date = book.add_format({"num_format": "yyyy-mm-dd"})
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if isinstance(value, dt.datetime):
                sheet.write_datetime(r, c, value, date)
            elif value is not None:
                sheet.write(r, c, value)
    book.close()
    return buffer.getvalue()


GOOD_BOOK = [
    ["project_id", "activity", "cod", "capacity_mw"],
    ["A", "solar_pv", dt.datetime(2024, 3, 1), 5],
    ["B", "wind_onshore", "2024-03-01", "1,234"],
]


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated_xlsx_is_a_clear_error(tmp_path: Path, keep: float) -> None:
    data = excel_bytes(GOOD_BOOK)
    path = tmp_path / "truncated.xlsx"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(PipelineError, match=r"cannot open truncated.xlsx as a workbook") as info:
        read_pipeline(path)
    assert "\n" not in str(info.value)


def test_encrypted_xlsx_is_named_as_such() -> None:
    """encrypted.xlsx is a hand-made OLE2 (Compound File) header: what a password-protected
    .xlsx is on disk (msoffcrypto-tool, which could make a real one, is not installed)."""
    with pytest.raises(PipelineError, match=r"password-protected \(encrypted\) workbook"):
        read_pipeline(CORPUS / "encrypted.xlsx")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.csv", "empty.csv is empty"),
        ("mixed_encoding.csv", "neither UTF-8 nor GBK/GB18030"),
        ("stray_delimiter.csv", "row 3 has 4 fields but the header has 3"),
        ("unclosed_quote.csv", "an unclosed quote"),
        ("duplicate_id_column.csv", "both map to field project_id"),
    ],
)
def test_broken_csv_files_are_one_line_errors(name: str, message: str) -> None:
    with pytest.raises(PipelineError, match=re.escape(message)) as info:
        read_pipeline(CORPUS / name)
    assert "\n" not in str(info.value)


def test_broken_files_through_the_cli(tmp_path: Path) -> None:
    for name, message in [
        ("stray_delimiter.csv", "row 3 has 4 fields"),
        ("encrypted.xlsx", "password-protected"),
        ("unclosed_quote.csv", "unclosed quote"),
    ]:
        done = run_cli("screen", str(CORPUS / name), "--out", str(tmp_path / "o"))
        assert_clean_failure(done, message)
    assert not (tmp_path / "o").exists()


def test_header_only_files_give_zero_rows(tmp_path: Path) -> None:
    (tmp_path / "h.xlsx").write_bytes(excel_bytes([["project_id", "activity"]]))
    for source in (CORPUS / "header_only.csv", tmp_path / "h.xlsx"):
        pipeline = read_pipeline(source)
        assert (pipeline.n_input_rows, pipeline.n_accepted, pipeline.n_rejected) == (0, 0, 0)
    assert screen_pipeline(CORPUS / "header_only.csv").results.height == 0


def test_no_accepted_project_still_writes_the_outputs(tmp_path: Path) -> None:
    """Was a bug (fixed in appraisal.py by f2b7679): with no accepted project irr_reason
    became an Object column and writing results.parquet failed (exit 3)."""
    result = screen_pipeline(CORPUS / "header_only.csv")
    paths = result.write(tmp_path / "out")
    assert pl.read_parquet(paths["results"]).height == 0
    assert pl.read_csv(paths["rejects"]).height == 0


def test_cli_with_every_row_rejected_exits_zero(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("project_id,activity\nA,solar\n", encoding="utf-8")
    done = run_cli("screen", str(path), "--out", str(tmp_path / "o"))
    assert done.returncode == 0, done.stderr
    assert pl.read_csv(tmp_path / "o" / "rejects.csv")["code"].to_list() == ["unknown_activity"]


def test_duplicate_header_in_a_workbook_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "dup.xlsx"
    path.write_bytes(
        excel_bytes([["project_id", "activity", "project_id"], ["A", "solar_pv", "B"]])
    )
    with pytest.raises(PipelineError, match="'project_id' and 'project_id_1' both map"):
        read_pipeline(path)


def test_repeated_and_blank_extra_columns_keep_their_values(tmp_path: Path) -> None:
    pipeline = read_pipeline(CORPUS / "duplicate_and_blank_columns.csv")
    first = pipeline.projects.row(0, named=True)
    assert (first["notes"], first["notes_duplicated_0"], first[""]) == (
        "first",
        "second",
        "unnamed",
    )
    path = tmp_path / "dup.xlsx"
    path.write_bytes(
        excel_bytes(
            [["project_id", "activity", "notes", "notes", None], ["A", "solar_pv", 1, 2, 3]]
        )
    )
    row = read_pipeline(path).projects.row(0, named=True)
    assert (row["notes"], row["notes_1"], row["__UNNAMED__4"]) == ("1", "2", "3")


def test_serial_and_text_dates_in_one_column(tmp_path: Path) -> None:
    pipeline = read_pipeline(CORPUS / "dates.csv")
    march_first = dt.date(2024, 3, 1)
    assert pipeline.projects["cod"].to_list() == [march_first] * 4
    assert pipeline.projects["approval_date"].to_list() == [march_first] * 4
    assert pipeline.rejects.select("row", "code").rows() == [
        (6, "invalid_date"),  # 2023-02-30
        (7, "date_range"),  # serial 99999 is in 2173
        (8, "invalid_date"),  # a serial with a time of day is not a date
    ]
    path = tmp_path / "dates.xlsx"
    path.write_bytes(
        excel_bytes(
            [
                ["project_id", "activity", "cod"],
                ["A", "solar_pv", dt.datetime(2024, 3, 1)],
                ["B", "solar_pv", 45352],
                ["C", "solar_pv", "2024年3月1日"],
                ["D", "solar_pv", "2024/3/1"],
            ]
        )
    )
    assert read_pipeline(path).projects["cod"].to_list() == [march_first] * 4


def test_numbers_as_people_type_them_and_hostile_floats() -> None:
    pipeline = read_pipeline(CORPUS / "numbers.csv")
    accepted = dict(pipeline.projects.select("project_id", "total_investment").rows())
    assert accepted == {"N1": 1_234_567.8, "N2": 15_000.0, "N3": 200_000_000.0}
    assert pipeline.projects["interest_rate"].to_list() == [0.08] * 3  # 8%, 0.08, 8 %
    assert dict(pipeline.rejects.select("project_id", "code").rows()) == {
        "N4": "invalid_number",  # NaN
        "N5": "invalid_number",  # inf
        "N6": "out_of_range",  # 1e308: above the field's bound (issue 19)
        "N7": "not_finite",  # 1e309 overflows
        "N8": "out_of_range",  # -1e308
        "N9": "invalid_number",  # 1,5 is ambiguous
        "N10": "out_of_range",  # a rate of 8 means 8 %
    }
    result = screen_pipeline(pipeline)
    assert result.results.height == 3


def test_huge_whole_numbers_are_rejected_not_a_crash() -> None:
    """Bug: a whole-number field (vehicle_count) of 1e308 overflowed the Int64 cast and raised
    polars' InvalidOperationError out of read_pipeline."""
    rows = [
        {"project_id": "A", "activity": "ev_truck", "vehicle_count": "1e308"},
        {"project_id": "B", "activity": "ev_truck", "vehicle_count": "9007199254740992"},
        {"project_id": "C", "activity": "ev_truck", "vehicle_count": 1e19},
    ]
    pipeline = read_pipeline(rows)
    assert pipeline.projects["vehicle_count"].to_list() == []
    assert pipeline.rejects.select("project_id", "code").rows() == [
        ("A", "out_of_range"),
        ("B", "out_of_range"),  # above the field's bound of 10 million (issue 19)
        ("C", "out_of_range"),
    ]
    assert pipeline.rejects["reason"][0] == "vehicle_count must be ≥ 0 and ≤ 10,000,000 count"


def test_hundred_thousand_character_cells(tmp_path: Path) -> None:
    long_name, long_number = "名" * 100_000, "9" * 100_000
    path = tmp_path / "long.csv"
    path.write_text(
        "project_id,activity,project_name,capacity_mw\n"
        f"A,solar_pv,{long_name},5\nB,solar_pv,x,{long_number}\nC,{'x' * 100_000},y,1\n",
        encoding="utf-8",
    )
    pipeline = read_pipeline(path)
    assert pipeline.projects["project_name"].to_list() == [long_name]  # kept whole
    rejects = dict(pipeline.rejects.select("project_id", "code").rows())
    assert rejects == {"B": "not_finite", "C": "unknown_activity"}
    assert all(len(v) <= 201 for v in pipeline.rejects["value"])  # quoted, clipped
    result = screen_pipeline(pipeline)
    out = tmp_path / "out"
    result.write(out)
    written = write_packs(result, out / "packs", None)
    book = openpyxl.load_workbook(written[0], read_only=True)
    cells = [c for s in book for r in s.iter_rows(values_only=True) for c in r]
    assert any(isinstance(c, str) and len(c) > 30_000 for c in cells)
    assert all(not isinstance(c, str) or len(c) <= 32_767 for c in cells)  # Excel's cell limit


# --------------------------------------------------------------------------------------------
# Hostile text
@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    out = tmp_path_factory.mktemp("hostile") / "out"
    result = screen_pipeline(HOSTILE_TEXT)
    result.write(out)
    write_packs(result, out / "packs", None, formats=("xlsx", "html"))
    return result, out


def test_hostile_text_is_read_verbatim(hostile: tuple[Any, Path]) -> None:
    result, _ = hostile
    names = dict(result.results.select("project_id", "project_name").rows())
    assert names["F1"] == '=HYPERLINK("http://evil.example","click")'
    assert names["F4"] == "\u200b\u200bzero\u200dwidth"  # zero-width characters kept
    borrowers = dict(result.results.select("project_id", "borrower").rows())
    assert borrowers["F4"] == "\u202eevil\u202c"  # right-to-left override kept


def test_formula_injection_stays_text_in_xlsx_packs(hostile: tuple[Any, Path]) -> None:
    result, out = hostile
    hostile_texts = [
        v
        for column in ("project_name", "borrower", "description")
        for v in result.results[column].to_list()
        if v and v.startswith(FORMULA_PREFIXES)
    ]
    assert len(hostile_texts) >= 5
    for pid in result.results["project_id"]:
        book = openpyxl.load_workbook(out / "packs" / f"{pid}.xlsx")
        cells = [cell for sheet in book for line in sheet.iter_rows() for cell in line]
        strings = {c.value for c in cells if c.data_type == "s"}
        formulas = [str(c.value) for c in cells if c.data_type == "f"]
        row = result.results.filter(pl.col("project_id") == pid).row(0, named=True)
        for column in ("project_name", "borrower"):
            if row[column]:
                assert any(row[column] in str(s) for s in strings), (pid, column)
        for text in hostile_texts:
            assert not any(text[1:] in f for f in formulas), (pid, text)
        assert not any(re.search(r"HYPERLINK|cmd\||SUM\(1\+1\)", f) for f in formulas)
        with zipfile.ZipFile(out / "packs" / f"{pid}.xlsx") as archive:
            assert not any("hyperlink" in n.lower() for n in archive.namelist())
            assert not any(n.endswith(".bin") for n in archive.namelist())  # no macros


def test_formula_injection_stays_text_in_portfolio_xlsx(hostile: tuple[Any, Path]) -> None:
    _, out = hostile
    book = openpyxl.load_workbook(out / "portfolio.xlsx")
    cells = [cell for sheet in book for line in sheet.iter_rows() for cell in line]
    strings = {c.value for c in cells if c.data_type == "s"}
    formulas = [str(c.value) for c in cells if c.data_type == "f"]
    assert '=HYPERLINK("http://evil.example","click")' in strings
    assert "+cmd|' /C calc'!A0" in strings
    assert formulas  # the summary's own COUNTIF/SUM formulas ...
    assert not any(re.search(r"HYPERLINK|cmd\||SUM\(1\+1\)|alert", f) for f in formulas)


def test_csv_outputs_hold_the_exact_text(hostile: tuple[Any, Path]) -> None:
    """results.csv carries pipeline text unchanged (as data, quoted where needed): reading it
    back gives the same strings. (Spreadsheet apps may still evaluate a CSV cell beginning
    with '=': see the README's Data safety section.)"""
    result, out = hostile
    back = pl.read_csv(out / "results.csv", infer_schema=False)
    for column in ("project_id", "project_name", "borrower", "description"):
        assert back[column].to_list() == result.results[column].to_list(), column


def test_html_injection_is_escaped_in_packs_and_portfolio(hostile: tuple[Any, Path]) -> None:
    _, out = hostile
    pages = [out / "portfolio.html", out / "packs" / "index.html"]
    pages += sorted((out / "packs").glob("F*.html"))
    assert len(pages) == 6
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert "<script" not in html.lower(), page.name
        assert "<img src=x" not in html and "<svg onload" not in html, page.name
        assert not re.search(r"<[^>]*\son(error|load)\s*=", html), page.name
    pack = (out / "packs" / "F3.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pack
    assert "&lt;img src=x onerror=alert(1)&gt;" in pack
    portfolio = (out / "portfolio.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in portfolio or "F3" in portfolio


def test_pack_of_a_project_without_financial_inputs_with_sensitivities(tmp_path: Path) -> None:
    """Bug: with sensitivities (screen --packs) a project without the financial inputs has
    NaN NPV deltas and pygal raised ValueError drawing the tornado: exit 3."""
    result = screen_pipeline([{"project_id": "A", "activity": "solar_pv"}], sensitivities=True)
    assert result.appraisal is not None and result.appraisal.sensitivities.height
    html = render_html_pack(result, "A")
    assert "chart-tornado" not in html and "<footer>" in html


def test_names_resolving_outside_the_directory_are_refused(tmp_path: Path) -> None:
    assert confined(tmp_path, "a.html") == tmp_path.resolve() / "a.html"
    for name in ("../a.html", "/etc/passwd", "sub/../../a.html", "sub/a.html"):
        with pytest.raises(GreenscreenError, match="refusing to write"):
            confined(tmp_path, name)


def test_reserved_device_names_are_changed_before_the_first_dot() -> None:
    """Bug: 'nul.txt' became 'nul.txt_<hash>', still the device NUL on Windows (the part before
    the first dot decides)."""
    for pid in ("nul.txt", "CON", "com1.tar.gz", "Aux", "LPT9.x"):
        stem = safe_stem(pid)
        assert stem.split(".")[0].upper() not in {"NUL", "CON", "COM1", "AUX", "LPT9"}, stem
        assert stem.startswith("_") and stem[1:].lower().startswith(pid.split(".")[0].lower())
    # only the exact device names (upper case: other ids get a hash suffix, issue 19)
    assert safe_stem("CONSOLE.LOG") == "CONSOLE.LOG"


def test_hostile_ids_in_links_and_attributes_are_escaped() -> None:
    pid = '"><script>alert(1)</script>'
    result = screen_pipeline([{"project_id": pid, "activity": "solar_pv"}])
    html = render_html_pack(result, pid)
    assert "<script" not in html.lower()
    assert "&#34;&gt;&lt;script&gt;" in html or "&quot;&gt;&lt;script&gt;" in html


def test_hostile_ids_never_leave_the_output_directory(tmp_path: Path) -> None:
    rows = read_pipeline(HOSTILE_IDS).projects.select("project_id", "activity").to_dicts()
    rows += [{"project_id": "nul\x00byte", "activity": "solar_pv"}]
    rows += [{"project_id": "/etc/passwd", "activity": "solar_pv"}]
    rows += [{"project_id": "C:\\Windows\\x", "activity": "solar_pv"}]
    result = screen_pipeline(rows)
    assert result.results.height == len(rows) == 11
    out = tmp_path / "packs"
    before = set(tmp_path.iterdir())
    written = write_packs(result, out, None)
    assert len(written) == 2 * 11 + 1 and len({p.name for p in written}) == len(written)
    assert_confined(out, before)
    for path in written:
        assert path.parent == out.resolve()
        assert "\x00" not in path.name and "/" not in path.name and "\\" not in path.name
        assert not re.search(r"[\u200b-\u200f\u202a-\u202e\u2066-\u2069]", path.name)
        assert path.name.split(".")[0].upper() not in {"CON", "NUL", "PRN", "AUX"}, path.name
    index = (out / "index.html").read_text(encoding="utf-8")
    for link in re.findall(r'href="([^"]+)"', index):
        assert (out / link).resolve().parent == out.resolve(), link


def test_cli_with_hostile_ids_and_packs(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    before = set(work.iterdir())
    done = run_cli("screen", str(HOSTILE_IDS), "--out", str(work / "out"), "--packs", "-q")
    assert done.returncode == 0, done.stderr
    assert_confined(work / "out", before)
    assert len(list((work / "out" / "packs").glob("*.html"))) == 9  # 8 packs + index
    assert not (tmp_path / "etc").exists()


# --------------------------------------------------------------------------------------------
# Hostile rulebooks and factor files
@pytest.mark.parametrize(
    "condition",
    [
        "read_csv('/etc/passwd') IS NULL",
        "read_parquet('x.parquet') IS NULL",
        "system('rm -rf /') = 0",
        "capacity_mw IN (SELECT 1)",
        "capacity_mw > 1; DROP TABLE projects",
        "EXISTS (SELECT * FROM read_csv('x'))",
        "\"read_csv\"('/etc/passwd') IS NULL",
        "`read_csv`('/etc/passwd') IS NULL",
        "read_csv/**/('/etc/passwd') IS NULL",
        "read_csv -- x\n('/etc/passwd') IS NULL",
        '"sqrt"(capacity_mw) > 1',  # pure, but not allowlisted: polars would run it
        "sqrt/**/(capacity_mw) > 1",
        "`date_part`('year', approval_date) > 2000",
        "capacity_mw > 1 UNION SELECT 1",
    ],
)
def test_conditions_outside_the_allowlist_are_rejected(condition: str) -> None:
    """Bug: a quoted name ("sqrt"(x)) or a comment (sqrt/**/(x)) hid a function call from the
    allowlist, so any function polars knows was accepted."""
    with pytest.raises(RulebookError, match=r"is not allowed"):
        compile_condition(condition, ["capacity_mw", "approval_date"])


@pytest.mark.parametrize(
    "condition",
    [
        "capacity_mw > 1 -- a comment may say read_csv('x')",
        "capacity_mw > 1 /* or select from */",
        "lower(\"province\") = 'read_csv(''x'')'",
    ],
)
def test_comments_quoted_names_and_strings_are_still_fine(condition: str) -> None:
    _, used = compile_condition(condition, ["capacity_mw", "province"])
    assert used in (["capacity_mw"], ["province"])


@pytest.mark.parametrize(
    ("folder", "message"),
    [
        ("function_call", "function 'read_csv' is not allowed"),
        ("comment_bypass", "function 'sqrt' is not allowed"),
        ("malformed", "hostile.yaml: not valid YAML"),
        ("python_tag", "hostile.yaml: not valid YAML"),
    ],
)
def test_hostile_rulebook_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)  # a !!python/object payload would write pwned.txt here
    with pytest.raises(RulebookError, match=re.escape(message)) as info:
        load_rulebooks(CORPUS / "rulebooks" / folder)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "pwned.txt").exists()


def test_python_tags_are_never_constructed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a) or 0)
    monkeypatch.setattr(yaml, "unsafe_load", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(yaml, "full_load", lambda *a, **k: calls.append(a))
    for payload in (
        "!!python/object/apply:os.system ['echo pwned']",
        "!!python/object/new:os.system ['echo pwned']",
        "!!python/name:os.system",
    ):
        path = tmp_path / "x.yaml"
        path.write_text(f"schema_type: greenscreen.rulebook\nid: {payload}\n", encoding="utf-8")
        with pytest.raises(RulebookError, match="not valid YAML"):
            load_rulebook(path)
    assert calls == []


def test_hostile_rulebooks_through_the_cli(tmp_path: Path) -> None:
    pipeline = CORPUS / "hostile_text.csv"
    for folder, message in [
        ("function_call", "function 'read_csv' is not allowed"),
        ("python_tag", "not valid YAML"),
    ]:
        done = run_cli(
            "screen", str(pipeline), "--out", str(tmp_path / folder), "--rulebooks",
            str(CORPUS / "rulebooks" / folder), cwd=tmp_path,
        )  # fmt: skip
        assert_clean_failure(done, message)
        assert not (tmp_path / folder).exists()
    assert not (tmp_path / "pwned.txt").exists()


def factor_dir(tmp_path: Path, name: str, edit: Any) -> Path:
    """A --factors directory with one bundled factor file edited."""
    folder = tmp_path / f"factors_{name.split('.')[0]}"
    folder.mkdir(exist_ok=True)
    text = Path(data_file(f"factors/{name}")).read_text(encoding="utf-8")
    data = edit(text)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return folder


def _first_value(text: str, column: str, new: str) -> str:
    """Replace ``column`` of the first data row of a factor CSV by ``new``."""
    lines = text.splitlines(keepends=True)
    header_at = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    header = next(csv.reader([lines[header_at]]))
    row = next(csv.reader([lines[header_at + 1]]))
    row[header.index(column)] = new
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(row)
    lines[header_at + 1] = buffer.getvalue()
    return "".join(lines)


SOLAR = [{"project_id": "A", "activity": "solar_pv", "province": "陕西", "capacity_mw": 50}]


@pytest.mark.parametrize(
    ("file", "edit", "message"),
    [
        ("grid_factors.csv", lambda t: _first_value(t, "value_tco2_per_mwh", "-0.5"), "negative"),
        ("grid_factors.csv", lambda t: _first_value(t, "value_tco2_per_mwh", "NaN"), "finite"),
        ("grid_factors.csv", lambda t: _first_value(t, "value_tco2_per_mwh", "inf"), "finite"),
        ("grid_factors.csv", lambda t: _first_value(t, "value_tco2_per_mwh", "abc"), "numeric"),
        ("fuels.csv", lambda t: _first_value(t, "tco2_per_t", "-3"), "non-negative"),
        ("fuels.csv", lambda t: _first_value(t, "tco2_per_t", "nan"), "finite"),
        ("grid_factors.csv", lambda t: t.replace("value_tco2_per_mwh", "value"), "missing columns"),
        ("constants.csv", lambda t: t.replace("name,", "nom,"), "missing columns"),
        ("grid_factors.csv", lambda t: (t + "# 说明\n").encode("gbk"), "is not UTF-8 text"),
        ("grid_factors.csv", lambda t: t + "a,b,c,d,e,f,g,h,i,j,k,l\n", "cannot read factor file"),
        ("grid_factors.csv", lambda t: "", "cannot read factor file"),
    ],
)
def test_hostile_factor_files(tmp_path: Path, file: str, edit: Any, message: str) -> None:
    """Bug: negative, NaN and infinite factors were used (negative avoided emissions), and a
    non-UTF-8 factor file raised UnicodeDecodeError (an internal error in the CLI)."""
    folder = factor_dir(tmp_path, file, edit)
    with pytest.raises(GreenscreenError, match=message) as info:
        screen_pipeline(SOLAR, emissions=EmissionsConfig(factors_dir=str(folder)))
    assert "\n" not in str(info.value)


def test_hostile_factor_file_through_the_cli(tmp_path: Path) -> None:
    folder = factor_dir(tmp_path, "grid_factors.csv", lambda t: (t + "# 说明\n").encode("gbk"))
    pipeline = tmp_path / "p.csv"
    pipeline.write_text("project_id,activity,capacity_mw\nA,solar_pv,5\n", encoding="utf-8")
    done = run_cli("screen", str(pipeline), "--out", str(tmp_path / "o"), "--factors", str(folder))
    assert_clean_failure(done, "is not UTF-8 text")


# --------------------------------------------------------------------------------------------
# Property-based: every row accepted or rejected with a reason, nothing else escapes
TEMPLATE = [
    "project_id",
    "activity",
    "description",
    "province",
    "country",
    "capacity_mw",
    "full_load_hours",
    "interest_rate",
    "green_building_star",
    "vehicle_count",
    "cod",
    "industry_code",
    "total_investment",
]
assert set(TEMPLATE) <= set(FIELDS)

_NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["1,234.5", "1.5万", "2亿", "8%", "0.08", "1,5", "-0", "1e308", "NaN", ""]),
)
_VALUE = st.one_of(
    st.none(),
    st.text(max_size=12),
    _NUMBER_TEXT,
    st.sampled_from(["solar_pv", "wind_onshore", "陕西", "Hebei", "CN", "45352", "2024-03-01"]),
    st.sampled_from(["=1+1", "@x", "<script>", "\u202e", "\u200b", " ", "\t", "项目编号"]),
)
_ROW = st.fixed_dictionaries(
    {"project_id": st.one_of(st.none(), st.sampled_from(["P1", "P2", "P3", ""]), st.text())},
    optional={name: _VALUE for name in TEMPLATE[1:]},
)
_ROWS = st.lists(_ROW, min_size=1, max_size=8)
PROPERTY = settings(
    max_examples=75, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _check_reconciled(pipeline: Any, n_rows: int) -> None:
    assert pipeline.n_input_rows + int(pipeline.source.label_row_skipped) == n_rows
    assert pipeline.n_input_rows == pipeline.n_accepted + pipeline.n_rejected + pipeline.n_blank
    rejects = pipeline.rejects
    assert rejects["reason"].null_count() == 0 and rejects["code"].null_count() == 0
    assert all(reason.strip() for reason in rejects["reason"])
    rows = set(rejects["row"].to_list())
    assert rows.isdisjoint(pipeline.projects["source_row"].to_list())
    assert len(set(pipeline.projects["project_id"].to_list())) == pipeline.n_accepted
    for column, dtype in pipeline.projects.schema.items():
        if column in FIELDS:
            assert dtype == FIELDS[column].dtype, column
    for name, spec in FIELDS.items():
        if spec.kind in ("float", "int"):
            values = pipeline.projects[name].drop_nulls().cast(pl.Float64).to_list()
            assert all(math.isfinite(v) for v in values), name


@PROPERTY
@given(rows=_ROWS)
def test_any_records_are_accepted_or_rejected(rows: list[dict[str, Any]]) -> None:
    try:
        pipeline = read_pipeline(rows)
    except GreenscreenError as exc:
        assert "\n" not in str(exc)
        return
    _check_reconciled(pipeline, len(rows))
    if pipeline.n_accepted:
        result = screen_pipeline(pipeline)
        assert result.results.height == pipeline.n_accepted


@PROPERTY
@given(rows=_ROWS)
def test_any_csv_is_accepted_or_rejected(tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
    path = tmp_path / "p.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    try:
        pipeline = read_pipeline(path)
    except GreenscreenError as exc:
        assert "\n" not in str(exc)
        return
    _check_reconciled(pipeline, len(rows))


# --------------------------------------------------------------------------------------------
# Reproducible outputs
def test_same_hostile_input_twice_gives_identical_outputs(tmp_path: Path) -> None:
    rows = read_pipeline(HOSTILE_TEXT).projects.select(
        "project_id", "activity", "project_name", "borrower", "description"
    )
    rows = pl.concat([rows, rows.head(1)])  # and a duplicate id: rejects.csv is not empty
    source = tmp_path / "hostile.parquet"
    rows.write_parquet(source)
    trees = []
    for name in ("a", "b"):
        result = screen_pipeline(source, sensitivities=True)
        result.write(tmp_path / name)
        write_packs(result, tmp_path / name / "packs", None)
        write_portfolio_html(result, tmp_path / name / "extra.html", lang="zh")
        trees.append(files_under(tmp_path / name))
    a, b = trees
    assert set(a) == set(b)
    expected = {"results.parquet", "results.csv", "rejects.csv", "run.json", "portfolio.xlsx"}
    assert expected | {"packs/F2.xlsx", "packs/F4.html", "packs/index.html"} <= set(a)
    assert pl.read_csv(io.BytesIO(a["rejects.csv"])).height == 2
    for file in a:
        assert a[file] == b[file], file


@pytest.mark.slow
def test_cli_screen_of_the_corpus_twice_is_byte_identical(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    shutil.copy(HOSTILE_TEXT, source)
    for name in ("a", "b"):
        done = run_cli("screen", str(source), "--out", str(tmp_path / name), "--packs", "-q")
        assert done.returncode == 0, done.stderr
    a, b = files_under(tmp_path / "a"), files_under(tmp_path / "b")
    assert set(a) == set(b) and len(a) >= 15
    assert all(a[f] == b[f] for f in a)
