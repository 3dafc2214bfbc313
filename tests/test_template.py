"""The Excel input template: layout, dropdowns, round trip through screening."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import openpyxl
import pytest

from greenscreen import FIELDS, read_pipeline, screen, write_template


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template written once for the tests that read it (none writes to it)."""
    return write_template(tmp_path_factory.mktemp("template") / "t.xlsx")


def test_layout_and_dropdowns(template: Path) -> None:
    book = openpyxl.load_workbook(template)
    assert book.sheetnames == ["pipeline", "fields", "evidence", "example", "lists"]
    sheet = book["pipeline"]
    names = [c.value for c in sheet[1]]
    labels = [c.value for c in sheet[2]]
    assert names == list(FIELDS)
    assert labels[names.index("capacity_mw")] == "装机容量(MW)"
    assert labels[names.index("project_id")] == "项目编号"
    assert (
        "installed capacity" in sheet.cell(1, names.index("capacity_mw") + 1).comment.text.lower()
    )
    lists = {
        str(v.sqref).split(":")[0]: v
        for v in sheet.data_validations.dataValidation
        if v.type == "list"
    }
    letters = {name: openpyxl.utils.get_column_letter(i + 1) for i, name in enumerate(names)}
    for field in ("activity", "province", "currency"):
        assert f"{letters[field]}3" in lists, field
    assert lists[f"{letters['activity']}3"].formula1 == "lists!$A$2:$A$36"
    numbers = [v for v in sheet.data_validations.dataValidation if v.type == "decimal"]
    assert any(f"{letters['capacity_mw']}3" in str(v.sqref) for v in numbers)
    activity_ids = [c.value for c in book["lists"]["A"][1:] if c.value]
    assert "solar_pv" in activity_ids and len(activity_ids) == 35


def test_filled_template_round_trips_through_screen(template: Path, tmp_path: Path) -> None:
    """Issue #2, acceptance 2: template → fill → screen."""
    book = openpyxl.load_workbook(template)
    sheet = book["pipeline"]
    col = {c.value: c.column for c in sheet[1]}
    rows = [
        {
            "project_id": "T-1",
            "activity": "solar_pv",
            "province": "青海省",
            "capacity_mw": 100,
            "full_load_hours": 1500,
            "cod": dt.datetime(2026, 12, 31),
            "interest_rate": 0.035,
        },
        {
            "project_id": "T-2",
            "activity": "building_new",
            "province": "重庆",
            "floor_area_m2": 80000,
            "green_building_star": 2,
        },
        {"project_id": "T-3", "activity": "solar", "capacity_mw": -1},
    ]
    for r, row in enumerate(rows, start=3):
        for name, value in row.items():
            sheet.cell(r, col[name], value)
    filled = tmp_path / "filled.xlsx"  # not over the shared template
    book.save(filled)

    result = screen(filled)
    assert result.pipeline.source.label_row_skipped
    assert result.results["project_id"].to_list() == ["T-1", "T-2"]
    first = result.results.row(0, named=True)
    assert (first["province"], first["capacity_mw"], first["cod"]) == (
        "Qinghai",
        100.0,
        dt.date(2026, 12, 31),
    )
    assert result.rejects.select("row", "field").sort("field").rows() == [
        (5, "activity"),
        (5, "capacity_mw"),
    ]
    paths = result.write(tmp_path / "out")
    assert read_pipeline(paths["results"]).n_accepted == 2  # results read back as a pipeline


def test_examples_screen_cleanly(template: Path) -> None:
    pipeline = read_pipeline(template, sheet="example")
    assert pipeline.n_accepted == 2 and pipeline.rejects.height == 0


def test_template_is_byte_identical(template: Path, tmp_path: Path) -> None:
    a = template.read_bytes()  # written earlier, by the fixture
    b = write_template(tmp_path / "b.xlsx").read_bytes()
    assert a == b
    assert zipfile.is_zipfile(template)


def test_evidence_sheet_lists_the_rulebooks_fields(template: Path) -> None:
    """Issue 16 / 18: the evidence fields rulebooks and programmes define are discoverable."""
    book = openpyxl.load_workbook(template)
    rows = list(book["evidence"].iter_rows(values_only=True))
    assert rows[0][:2] == ("rulebook / programme", "field")
    found = {(r[0], r[1]): r for r in rows[1:]}
    assert rows[0][4] == "range"
    assert found[("cn_exclusions", "lianggao_five_substitutions")][7] == "LH-1"
    assert found[("eu_taxonomy", "eu_dnsh_evidenced")][2] == "boolean"
    assert found[("lingang_storage", "lingang_user_side_storage")][7]
    # numbers carry their range: a grade ≥ 1, a fraction 0–1
    assert found[("cn_gfsp_2025", "gb24500_grade")][4] == "≥ 1"
    assert found[("cn_gfsp_2025", "chp_overall_efficiency")][4] == "≥ 0 and ≤ 1"
    # a field is attributed only to the criteria that read it as a whole word
    gwp = found[("eu_taxonomy", "refrigerant_gwp")][7]
    assert "4.16" not in gwp.split(", ")  # 4.16 reads heat_pump_refrigerant_gwp
