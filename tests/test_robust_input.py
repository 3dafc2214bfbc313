"""Issue 19 (input side): input bombs and silently wrong values.

Each test names the item of the issue it covers. Files are generated in ``tmp_path`` (a
workbook is a few XML parts in a zip, built here with ``zipfile``); the few small hand-made
ones are in ``tests/data/adversarial/`` (listed in its README).
"""

from __future__ import annotations

import io
import json
import math
import re
import time
import zipfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import openpyxl
import polars as pl
import pytest
import xlsxwriter
from hypothesis import given, settings
from hypothesis import strategies as st

from greenscreen import PipelineError, read_pipeline
from greenscreen import screen as screen_pipeline
from greenscreen.io import MAX_COLUMNS, MAX_HEADER_CHARS, duplicate_id_rejects

CORPUS = Path(__file__).parent / "data" / "adversarial"


# --------------------------------------------------------------------------------------------
# A workbook made by hand: what a hostile or program-written .xlsx holds, in a few hundred bytes
def inline(text: str) -> tuple[str, str]:
    """An inline-string cell: (attributes, content)."""
    return ' t="inlineStr"', f"<is><t>{escape(text)}</t></is>"


def number(value: str) -> tuple[str, str]:
    return "", f"<v>{value}</v>"


def tiny_xlsx(
    cells: dict[str, tuple[str, str]],
    *,
    dimension: str | None = None,
    recalculate: bool = False,
    shared_strings: bytes | None = None,
    sheets: int = 1,
) -> bytes:
    """A workbook whose first sheet holds ``cells`` ({"A1": (attributes, content)})."""
    rows: dict[int, list[str]] = {}
    for ref, (attributes, content) in cells.items():
        row = int(re.sub(r"[A-Z]", "", ref))
        rows.setdefault(row, []).append(f'<c r="{ref}"{attributes}>{content}</c>')
    data = "".join(f'<row r="{r}">{"".join(c)}</row>' for r, c in sorted(rows.items()))
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006/relationships"
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    sheet = f'<worksheet xmlns="{main}">{dim}<sheetData>{data}</sheetData></worksheet>'
    names = "".join(
        f'<sheet name="{"pipeline" if k == 0 else f"s{k}"}" sheetId="{k + 1}" r:id="rId{k + 1}"/>'
        for k in range(sheets)
    )
    calc = '<calcPr fullCalcOnLoad="1"/>' if recalculate else ""
    workbook = f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets>{names}</sheets>{calc}</workbook>'
    targets = "".join(
        f'<Relationship Id="rId{k + 1}" Type="{rel}/worksheet" Target="worksheets/s{k + 1}.xml"/>'
        for k in range(sheets)
    )
    if shared_strings is not None:
        targets += f'<Relationship Id="rS" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/>'
    root = (
        f'<Relationships xmlns="{pkg}"><Relationship Id="r1" Type="{rel}/officeDocument" '
        'Target="xl/workbook.xml"/></Relationships>'
    )
    types = (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.sheet.main+xml"/>'
        + "".join(
            f'<Override PartName="/xl/worksheets/s{k + 1}.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            for k in range(sheets)
        )
        + "</Types>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("[Content_Types].xml", types)
        book.writestr("_rels/.rels", root)
        book.writestr("xl/workbook.xml", workbook)
        book.writestr(
            "xl/_rels/workbook.xml.rels", f'<Relationships xmlns="{pkg}">{targets}</Relationships>'
        )
        for k in range(sheets):
            book.writestr(f"xl/worksheets/s{k + 1}.xml", sheet)
        if shared_strings is not None:
            book.writestr("xl/sharedStrings.xml", shared_strings)
    return buffer.getvalue()


HEADER = {"A1": inline("project_id"), "B1": inline("activity"), "C1": inline("capacity_mw")}


def project(row: int, pid: str, capacity: tuple[str, str] | None = None) -> dict[str, Any]:
    cells = {f"A{row}": inline(pid), f"B{row}": inline("solar_pv")}
    if capacity is not None:
        cells[f"C{row}"] = capacity
    return cells


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def codes(pipeline: Any) -> dict[str, str]:
    return dict(pipeline.rejects.select("project_id", "code").rows())


# --------------------------------------------------------------------------------------------
# 1. Reject reasons for a shared project_id are bounded
def test_item1_shared_id_reasons_name_a_few_rows_and_a_count(tmp_path: Path) -> None:
    rows = "".join("TBD,solar_pv\n" for _ in range(5_000))
    pipeline = read_pipeline(write(tmp_path / "tbd.csv", "project_id,activity\n" + rows))
    assert pipeline.n_rejected == 5_000
    reasons = pipeline.rejects["reason"]
    assert reasons.str.len_chars().max() < 120  # was 5,000 row numbers in every reason
    assert reasons[0] == (
        "duplicate project_id: appears in rows 2, 3, 4, … and 4,997 more; all copies are rejected"
    )
    small = duplicate_id_rejects(pl.DataFrame({"row": [7, 3], "project_id": ["A", "A"]}), "id")
    assert (
        small["reason"][0] == "duplicate project_id: appears in rows 3, 7; all copies are rejected"
    )


def test_item1_batch_mode_rejects_are_bounded_too(tmp_path: Path) -> None:
    from greenscreen.batch import screen_batched

    rows = "".join("TBD,solar_pv\n" for _ in range(3_000))
    path = write(tmp_path / "tbd.csv", "project_id,activity\n" + rows)
    run = screen_batched(path, tmp_path / "out", batch_rows=1_000)
    assert run.n_rejected == 3_000
    assert (tmp_path / "out" / "rejects.csv").stat().st_size < 3_000 * 200


# --------------------------------------------------------------------------------------------
# 2. Sheet-dimension bombs: refused from the sheet XML, before the reader allocates
@pytest.mark.parametrize(
    ("far", "corner"),
    [
        ("XFD1048576", "XFD1048576"),  # 17 billion cells: the reader asked for 550 GB
        ("CV1048576", "CV1048576"),  # 100 columns × 1,048,576 rows: 3.8 GB
        ("A1048577", "C1048577"),  # beyond Excel's last row
        ("CXZ2", "CXZ2"),  # 2,366 columns
    ],
)
def test_item2_far_cells_are_refused_before_reading(tmp_path: Path, far: str, corner: str) -> None:
    cells = {**HEADER, **project(2, "P1"), far: number("1")}
    path = write(tmp_path / "bomb.xlsx", tiny_xlsx(cells, dimension=f"A1:{far}"))
    assert path.stat().st_size < 3_000
    start = time.perf_counter()
    with pytest.raises(PipelineError, match=rf"bomb.xlsx has cells from A1 to {corner} \(") as info:
        read_pipeline(path)
    assert time.perf_counter() - start < 5
    assert "\n" not in str(info.value)


def test_item2_a_declared_dimension_alone_is_harmless(tmp_path: Path) -> None:
    cells = {**HEADER, **project(2, "P1", number("5"))}
    path = write(tmp_path / "dim.xlsx", tiny_xlsx(cells, dimension="A1:XFD1048576"))
    assert read_pipeline(path).projects["capacity_mw"].to_list() == [5.0]


def test_item2_shared_strings_zip_bomb_is_refused(tmp_path: Path) -> None:
    # 300 MB of shared strings in a ~300 KB file
    bomb = b"<sst>" + b"<si><t>x</t></si>" * (300 * 2**20 // 17) + b"</sst>"
    path = write(
        tmp_path / "zip.xlsx", tiny_xlsx({**HEADER, **project(2, "P")}, shared_strings=bomb)
    )
    assert path.stat().st_size < 2_000_000
    with pytest.raises(
        PipelineError, match=r"sharedStrings.xml decompresses to .* \(a zip bomb\?\)"
    ):
        read_pipeline(path)


def test_item2_rows_of_a_sheet_starting_below_a1_are_numbered_as_in_excel(tmp_path: Path) -> None:
    """A table starting at C3 (blank rows above): rows are the sheet's, row 5 blank."""
    cells = {
        "C3": inline("project_id"),
        "D3": inline("activity"),
        "C4": inline("P1"),
        "D4": inline("solar"),
        "C6": inline("P2"),
        "D6": inline("wind"),
    }
    pipeline = read_pipeline(write(tmp_path / "low.xlsx", tiny_xlsx(cells)))
    assert pipeline.rejects["row"].to_list() == [4, 6]
    assert pipeline.n_blank == 1


def test_item2_a_thousand_sheets(tmp_path: Path) -> None:
    cells = {**HEADER, **project(2, "P1", number("5"))}
    path = write(tmp_path / "many.xlsx", tiny_xlsx(cells, sheets=1_000))
    assert read_pipeline(path).n_accepted == 1
    with pytest.raises(
        PipelineError, match=r"no sheet 'x' \(sheets: pipeline, s1, .*1000 sheets\)"
    ):
        read_pipeline(path, sheet="x")


# --------------------------------------------------------------------------------------------
# 4. Wide files: refused quickly past MAX_COLUMNS, linear below it
def test_item4_a_million_column_csv_is_refused_from_its_header(tmp_path: Path) -> None:
    header = "project_id,activity," + ",".join(f"c{k}" for k in range(1_000_000))
    path = write(tmp_path / "wide.csv", header + "\nP1,solar_pv" + ",x" * 1_000_000 + "\n")
    start = time.perf_counter()
    with pytest.raises(PipelineError, match="wide.csv: the header line is .* characters long"):
        read_pipeline(path)
    assert time.perf_counter() - start < 10


def test_item4_too_many_columns_in_every_format(tmp_path: Path) -> None:
    columns = {"project_id": ["P1"], "activity": ["solar_pv"]}
    columns |= {f"c{k}": ["x"] for k in range(MAX_COLUMNS)}
    frame = pl.DataFrame(columns)
    message = rf"has {MAX_COLUMNS + 2:,} columns; a pipeline may have at most {MAX_COLUMNS:,}"
    frame.write_csv(tmp_path / "w.csv")
    frame.write_parquet(tmp_path / "w.parquet")
    (tmp_path / "w.json").write_text(json.dumps(frame.to_dicts()))
    for source in (tmp_path / "w.csv", tmp_path / "w.parquet", tmp_path / "w.json", frame):
        with pytest.raises(PipelineError, match=message):
            read_pipeline(source)


def test_item4_header_mapping_is_linear(tmp_path: Path) -> None:
    """1,990 columns read in seconds (5,000 took 23 s: quadratic header mapping)."""
    columns = {"project_id": ["P1", "P2"], "activity": ["solar_pv", "wind_onshore"]}
    columns |= {f"extra_{k}": ["a", "b"] for k in range(MAX_COLUMNS - 10)}
    pl.DataFrame(columns).write_csv(tmp_path / "wide.csv")
    start = time.perf_counter()
    pipeline = read_pipeline(tmp_path / "wide.csv")
    assert time.perf_counter() - start < 20
    assert pipeline.n_accepted == 2 and len(pipeline.source.extra_columns) == MAX_COLUMNS - 10


# --------------------------------------------------------------------------------------------
# 8. Deep JSON, nested Parquet columns, giant headers
def test_item8_deeply_nested_json_is_one_error(tmp_path: Path) -> None:
    path = write(tmp_path / "deep.json", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(PipelineError, match="deep.json is nested too deeply"):
        read_pipeline(path)
    deep = '[{"project_id": "P", "activity": ' + "[" * 100_000 + "]" * 100_000 + "}]"
    with pytest.raises(PipelineError, match="nested too deeply"):
        read_pipeline(write(tmp_path / "value.json", deep))


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([[1.0, 2.0]], "nested"),
        ([{"a": 1}], "nested"),
        ([b"\x00\x01"], "binary"),
        (pl.Series([1], dtype=pl.Duration("us")), "duration"),
    ],
)
def test_item8_parquet_columns_of_unreadable_types(tmp_path: Path, values: Any, kind: str) -> None:
    """A template field of a nested, binary or duration type is an error naming the column;
    an extra column of such a type is dropped with a note (results.csv cannot hold it)."""
    base = {"project_id": ["P1"], "activity": ["solar_pv"]}
    pl.DataFrame({**base, "capacity_mw": values}).write_parquet(tmp_path / "field.parquet")
    with pytest.raises(PipelineError, match=rf"column 'capacity_mw' \(capacity_mw\) is a {kind}"):
        read_pipeline(tmp_path / "field.parquet")
    pl.DataFrame({**base, "tags": values}).write_parquet(tmp_path / "extra.parquet")
    pipeline = read_pipeline(tmp_path / "extra.parquet")
    assert pipeline.n_accepted == 1 and "tags" not in pipeline.projects.columns
    assert any(note.startswith("column 'tags'") and kind in note for note in pipeline.notes)
    screen_pipeline(pipeline).write(tmp_path / "out")  # results.csv is writable


def test_item8_giant_header_cell_is_refused_and_never_copied(tmp_path: Path) -> None:
    giant = "x" * 10_000_000
    path = write(tmp_path / "giant.csv", f"project_id,activity,{giant}\nP1,solar_pv,1\n")
    with pytest.raises(PipelineError, match=r"giant.csv: the header line is 10,000,020") as info:
        read_pipeline(path)
    assert len(str(info.value)) < 300
    long = "y" * (MAX_HEADER_CHARS + 1)
    for source in (
        write(tmp_path / "long.csv", f"project_id,activity,{long}\nP1,solar_pv,1\n"),
        [{"project_id": "P1", "activity": "solar_pv", long: 1}],
    ):
        with pytest.raises(PipelineError, match=rf"column 3 is {MAX_HEADER_CHARS + 1} characters"):
            read_pipeline(source)


# --------------------------------------------------------------------------------------------
# 9. One unit per value: the cell's own, or the header's
def test_item9_a_percent_cell_in_a_percent_column_is_not_divided_twice(tmp_path: Path) -> None:
    text = "project_id,activity,利率(%)\nA,solar_pv,4.5%\nB,solar_pv,4.5\nC,solar_pv,4.5 %\n"
    pipeline = read_pipeline(write(tmp_path / "rate.csv", text))
    assert pipeline.projects["interest_rate"].to_list() == pytest.approx([0.045] * 3)


def test_item9_a_multiplier_in_a_column_already_in_wan_is_ambiguous(tmp_path: Path) -> None:
    text = (
        "project_id,activity,总投资(万元),capacity_mw\n"
        "A,solar_pv,1.2亿,1\nB,solar_pv,12000,1.5万\nC,solar_pv,3万,1\n"
    )
    pipeline = read_pipeline(write(tmp_path / "wan.csv", text))
    assert codes(pipeline) == {"A": "ambiguous_unit", "C": "ambiguous_unit"}
    assert pipeline.rejects["reason"][0] == (
        "total_investment (column '总投资(万元)') is already in 万元: a value with its own "
        "万 or 亿 is ambiguous; write the number in 万元"
    )
    # a column in a plain unit takes the cell's multiplier: 1.5万 MW; 12000 万元 = 1.2亿 yuan
    accepted = pipeline.projects.row(0, named=True)
    assert (accepted["total_investment"], accepted["capacity_mw"]) == (1.2e8, 15_000.0)
    kw = read_pipeline(
        write(tmp_path / "kw.csv", "project_id,activity,装机容量(kW)\nA,solar_pv,1.5万\n")
    )
    assert kw.projects["capacity_mw"].to_list() == [15.0]


# --------------------------------------------------------------------------------------------
# 10. Spaces and stacked multipliers inside numbers
@pytest.mark.parametrize(
    "text", ["1 5", "1.5 2", "1\t5", "1亿万", "1万亿", "1,5", "1 50", "1 5000", "1,500 000"]
)
def test_item10_spaces_inside_a_number_are_rejected(tmp_path: Path, text: str) -> None:
    rows = [{"project_id": "A", "activity": "solar_pv", "total_investment": text}]
    pipeline = read_pipeline(rows)
    assert codes(pipeline) == {"A": "invalid_number"}
    assert pipeline.rejects["reason"][0] == "total_investment must be a number"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1 500", 1500.0),
        ("1 500 000.5", 1_500_000.5),
        ("1\u00a0500", 1500.0),
        ("1\u202f500", 1500.0),
        ("1,500", 1500.0),
        ("-2 000", -2000.0),
        ("1.5 万", 15_000.0),
    ],
)
def test_item10_thousands_separators_are_still_read(text: str, value: float) -> None:
    rows = [{"project_id": "A", "activity": "solar_pv", "annual_opex": text}]
    pipeline = read_pipeline(rows)
    if value < 0:
        assert codes(pipeline) == {"A": "out_of_range"}  # read as -2000, then out of range
    else:
        assert pipeline.projects["annual_opex"].to_list() == [value]


# --------------------------------------------------------------------------------------------
# 11. Seven-digit dates are not guessed
def test_item11_seven_digit_dates_are_rejected() -> None:
    rows = [
        {"project_id": "A", "activity": "solar_pv", "cod": "2024111"},
        {"project_id": "B", "activity": "solar_pv", "cod": "20241101"},
        {"project_id": "C", "activity": "solar_pv", "cod": "202411"},
    ]
    pipeline = read_pipeline(rows)
    assert codes(pipeline) == {"A": "invalid_date", "C": "invalid_date"}
    assert pipeline.projects["cod"].to_list()[0].isoformat() == "2024-11-01"


# --------------------------------------------------------------------------------------------
# 12. Numbers from xlsx at full precision: the same rules as CSV
def xlsx_of(rows: list[list[Any]]) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet("pipeline")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    book.close()
    return buffer.getvalue()


def test_item12_xlsx_numbers_keep_full_precision(tmp_path: Path) -> None:
    rows = [
        ["project_id", "activity", "capacity_mw", "vehicle_count", "interest_rate"],
        ["A", "ev_bus", 1e-10, 3, 0.000012345678],
        ["B", "ev_bus", 0.5, 3.0000000001, 0.05],
        ["C", "ev_bus", "2", 4, "0.000012345678"],
    ]
    book = read_pipeline(write(tmp_path / "p.xlsx", xlsx_of(rows)))
    assert codes(book) == {"B": "not_whole_number"}  # was accepted as 3 from xlsx
    assert book.projects["capacity_mw"].to_list() == [1e-10, 2.0]  # was 0
    assert book.projects["interest_rate"].to_list() == [0.000012345678] * 2  # was 0.000012346
    text = "\n".join(",".join(map(repr, row)).replace("'", "") for row in rows) + "\n"
    csv = read_pipeline(write(tmp_path / "p.csv", text))
    assert codes(csv) == codes(book)
    assert csv.projects.drop("source_row").equals(book.projects.drop("source_row"))


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_item12_any_float_reads_the_same_from_xlsx_and_csv(value: float) -> None:
    rows = [["project_id", "activity", "capacity_mw"], ["A", "solar_pv", value]]
    book = read_pipeline(_xlsx_path(rows))
    written = f"{value:.16g}"  # what xlsxwriter writes in the cell (Excel keeps 15-17 digits)
    csv = read_pipeline([{"project_id": "A", "activity": "solar_pv", "capacity_mw": written}])
    assert book.projects["capacity_mw"].to_list() == csv.projects["capacity_mw"].to_list()
    assert book.projects["capacity_mw"].to_list() == [float(written)]


def _xlsx_path(rows: list[list[Any]]) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "p.xlsx"
    path.write_bytes(xlsx_of(rows))
    return path


# --------------------------------------------------------------------------------------------
# 13. Formulas without a value and Excel error cells are rejected
def test_item13_formula_cells_without_a_value_are_rejected(tmp_path: Path) -> None:
    cells = {
        **HEADER,
        **project(2, "P1", ("", "<f>1+1</f>")),  # openpyxl: no <v> at all
        **project(3, "P2", ("", "<f>A3*2</f><v/>")),
        **project(4, "P3", ("", "<f>1+1</f><v>2</v>")),  # calculated by Excel: fine
    }
    pipeline = read_pipeline(write(tmp_path / "f.xlsx", tiny_xlsx(cells)))
    assert codes(pipeline) == {"P1": "formula_without_value", "P2": "formula_without_value"}
    assert pipeline.rejects["value"].to_list() == ["=1+1", "=A3*2"]
    assert pipeline.projects["capacity_mw"].to_list() == [2.0]


def test_item13_program_written_formulas_are_not_read_as_zero(tmp_path: Path) -> None:
    """xlsxwriter writes 0 as a formula's value and asks Excel to recalculate on opening."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet("pipeline")
    sheet.write_row(0, 0, ["project_id", "activity", "capacity_mw", "notes"])
    sheet.write_row(1, 0, ["P1", "solar_pv"])
    sheet.write_formula(1, 2, "=10*5")
    sheet.write_row(2, 0, ["P2", "solar_pv", 7])
    sheet.write_row(3, 0, ["P3", "solar_pv", 8])
    sheet.write_formula(3, 3, '="a"&"b"')
    book.close()
    pipeline = read_pipeline(write(tmp_path / "x.xlsx", buffer.getvalue()))
    assert codes(pipeline) == {"P1": "formula_without_value", "P3": "formula_without_value"}
    assert pipeline.rejects.filter(pl.col("project_id") == "P3")["field"].to_list() == ["notes"]
    assert pipeline.projects["capacity_mw"].to_list() == [7.0]


def test_item13_excel_error_cells_are_rejected(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "pipeline"
    sheet.append(["project_id", "activity", "capacity_mw", "notes"])
    errors = ["#DIV/0!", "#N/A", "#REF!", "#VALUE!"]
    for k, error in enumerate(errors):
        sheet.append([f"P{k}", "solar_pv", error, None])
    sheet.append(["P9", "solar_pv", 1, "#NAME?"])  # in an extra column: the row is rejected
    sheet.append([None, None, "#N/A", None])  # an otherwise blank row is rejected, not blank
    sheet.append(["P10", "solar_pv", 3, None])
    book.save(tmp_path / "e.xlsx")
    pipeline = read_pipeline(tmp_path / "e.xlsx")
    rejects = pipeline.rejects.filter(pl.col("code") == "excel_error")
    assert rejects["value"].to_list() == [*errors, "#NAME?", "#N/A"]
    assert rejects["row"].to_list() == [2, 3, 4, 5, 6, 7]
    assert rejects["reason"][0] == (
        "capacity_mw: the cell holds an Excel error; fix the formula or its inputs"
    )
    assert pipeline.projects["project_id"].to_list() == ["P10"]
    assert pipeline.n_input_rows == pipeline.n_accepted + pipeline.n_rejected + pipeline.n_blank


# --------------------------------------------------------------------------------------------
# 14. A cp1252 file is not decoded as GB18030 without a word
def test_item14_cp1252_is_refused_not_decoded_as_gbk() -> None:
    path = CORPUS / "cp1252.csv"
    with pytest.raises(
        PipelineError, match=r"\('P-M黮ler'\); as cp1252 it reads 'P-Müller'"
    ) as info:
        read_pipeline(path)
    assert "save it as UTF-8" in str(info.value)
    assert "P-Müller" in read_pipeline(path, encoding="cp1252").projects["borrower"].to_list()


def test_item14_gbk_is_read_and_the_encoding_said(tmp_path: Path) -> None:
    text = "project_id,activity,borrower\nA,solar_pv,华能集团\nB,wind_onshore,國家電網\n"
    pipeline = read_pipeline(write(tmp_path / "gbk.csv", text.encode("gbk")))
    assert pipeline.projects["borrower"].to_list() == ["华能集团", "國家電網"]
    assert pipeline.source.encoding == "gb18030"
    assert pipeline.notes == ("gbk.csv is not UTF-8: read as GB18030 (GBK)",)
    # mostly Chinese with one Latin-1 name: read, and the odd characters pointed out
    mixed = text.encode("gbk") + "C,solar_pv,P-Müller\n".encode("cp1252")
    noted = read_pipeline(write(tmp_path / "mixed.csv", mixed))
    assert "1 unusual characters next to Latin letters, e.g. 'P-M黮ler'" in noted.notes[0]


# --------------------------------------------------------------------------------------------
# 15. Absurd magnitudes are rejects, never an infinite result
def test_item15_absurd_magnitudes_are_rejected() -> None:
    rows = [
        {"project_id": "A", "activity": "solar_pv", "capacity_mw": "1e306"},
        {"project_id": "B", "activity": "solar_pv", "capacity_mw": "100", "loan_amount": "1e300"},
        {"project_id": "C", "activity": "solar_pv", "capacity_mw": "1000000"},
    ]
    pipeline = read_pipeline(rows)
    assert codes(pipeline) == {"A": "out_of_range", "B": "out_of_range"}
    assert pipeline.rejects["reason"][0] == "capacity_mw must be ≥ 0 and ≤ 1,000,000 MW"
    result = screen_pipeline(pipeline)
    for column, dtype in result.results.schema.items():
        if dtype == pl.Float64:
            assert not any(math.isinf(v) for v in result.results[column].drop_nulls()), column


# --------------------------------------------------------------------------------------------
# 20. A column named like a field plus a suffix is an extra column, not a duplicate
def test_item20_loan_amount_2024_is_not_a_duplicate(tmp_path: Path) -> None:
    text = "project_id,activity,loan_amount,loan_amount_2024,loan_amount_1\nA,solar_pv,5,6,7\n"
    pipeline = read_pipeline(write(tmp_path / "l.csv", text))
    assert pipeline.source.extra_columns == ("loan_amount_2024", "loan_amount_1")
    book = xlsx_of(
        [["project_id", "activity", "loan_amount", "loan_amount_1"], ["A", "solar_pv", 5, 7]]
    )
    assert read_pipeline(write(tmp_path / "l.xlsx", book)).n_accepted == 1
    with pytest.raises(PipelineError, match="'loan_amount' and 'loan_amount_duplicated_0' both"):
        read_pipeline(write(tmp_path / "d.csv", "project_id,activity,loan_amount,loan_amount\n"))


# --------------------------------------------------------------------------------------------
# Probing: byte-level oddities of text files
def test_nul_bytes_are_one_error(tmp_path: Path) -> None:
    path = write(tmp_path / "nul.csv", b"project_id,activity\nA,solar\x00_pv\n")
    with pytest.raises(PipelineError, match=r"nul.csv contains a NUL character \(line 2\)"):
        read_pipeline(path)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_with_a_bom_are_read(tmp_path: Path, encoding: str) -> None:
    text = "project_id,activity,borrower\nA,solar_pv,华能\n"
    bom = {"utf-16-be": "\ufeff"}.get(encoding, "")
    pipeline = read_pipeline(write(tmp_path / "u.csv", (bom + text).encode(encoding)))
    assert pipeline.projects["borrower"].to_list() == ["华能"]


def test_utf16_without_a_bom_is_one_error(tmp_path: Path) -> None:
    path = write(tmp_path / "u.csv", "project_id,activity\nA,solar_pv\n".encode("utf-16-le"))
    with pytest.raises(PipelineError, match="NUL character .* UTF-16 without a byte-order mark"):
        read_pipeline(path)


def test_cr_only_line_ends_are_read(tmp_path: Path) -> None:
    path = write(tmp_path / "mac.csv", "project_id,activity\rA,solar_pv\rB,wind_onshore\r")
    assert read_pipeline(path).projects["project_id"].to_list() == ["A", "B"]


def test_a_time_of_day_column_for_a_date_is_rejected_per_cell_not_a_traceback() -> None:
    # polars counts Time as temporal: it used to reach the date parse with no cleaned text
    # (ColumnNotFoundError); a time of day is not an approval date
    import datetime as dt

    frame = pl.DataFrame(
        {
            "project_id": ["A", "B"],
            "activity": ["solar_pv", "solar_pv"],
            "approval_date": [dt.time(10, 0), None],
        }
    )
    pipeline = read_pipeline(frame)
    assert pipeline.projects["project_id"].to_list() == ["B"]
    reject = pipeline.rejects.row(0, named=True)
    assert (reject["row"], reject["field"], reject["value"], reject["code"]) == (
        1,
        "approval_date",
        "10:00:00",
        "invalid_date",
    )
