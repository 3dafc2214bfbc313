"""The 2025 catalogue item table (taxonomies/sources) against the official text (issue 11)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from greenscreen.catalogue_check import check_items, main, official_items

SOURCES = Path(__file__).resolve().parents[1] / "taxonomies" / "sources"
ITEMS = SOURCES / "cn_gfsp_2025_items.csv"
COLUMNS = SOURCES / "cn_gfsp_2025_catalogue_columns.txt"  # the PDF text, column by column
LAYOUT = SOURCES / "cn_gfsp_2025_catalogue.txt"  # pdftotext -layout of the PDF


def rows() -> list[dict[str, str]]:
    with ITEMS.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write(path: Path, data: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(data[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(data)
    return path


def test_the_table_holds_the_whole_catalogue() -> None:
    data = rows()
    assert len(data) == 1036  # 1,084 table rows less 9 + 38 headings and 4.1.1's split row
    assert len({r["code"] for r in data}) == 271
    assert len({r["level2_code"] for r in data}) == 38
    assert len({r["level1_code"] for r in data}) == 9
    assert all(r["code"].startswith(r["level2_code"] + ".") for r in data)
    assert all(r["level2_code"].startswith(r["level1_code"] + ".") for r in data)
    assert {r["ghg_mark"] for r in data} == {"", "√", "√√"}
    assert all(r["name_zh"] and r["name_en"] and r["conditions_zh"] for r in data)
    for code in {r["code"] for r in data}:  # rows numbered 1..n within each item
        numbers = [int(r["row"]) for r in data if r["code"] == code]
        assert numbers == list(range(1, len(numbers) + 1)), code


def test_every_code_name_and_condition_is_in_the_official_text() -> None:
    report = check_items(ITEMS, COLUMNS)
    assert (report.official_codes, report.items_codes) == (271, 271)
    assert report.missing_in_items == report.missing_in_official == ()
    assert report.name_mismatches == ()
    assert report.conditions_checked == 1036
    assert report.conditions_not_found == ()
    assert report.verified_flag_wrong == ()
    assert report.ok
    assert all(r["verified"] == "true" for r in rows())


def test_the_layout_text_gives_the_same_codes_and_names() -> None:
    """An independent extraction of the names; its conditions are interleaved line by line."""
    assert official_items(LAYOUT.read_text(encoding="utf-8")) == official_items(
        COLUMNS.read_text(encoding="utf-8")
    )
    report = check_items(ITEMS, LAYOUT)
    assert report.official_codes == 271 and report.name_mismatches == ()
    assert len(report.conditions_not_found) == 907  # only one-line conditions survive the layout


def test_spot_checked_items() -> None:
    """Checked by hand against the PDF pages (see taxonomies/sources/README.md)."""
    by_code: dict[str, list[dict[str, str]]] = {}
    for r in rows():
        by_code.setdefault(r["code"], []).append(r)
    assert by_code["1.1.1"][0]["name_zh"] == "节能锅炉制造"
    assert [r["industry_code"] for r in by_code["1.1.1"]] == ["3411", "3521"]
    assert by_code["4.2.4"][0]["name_zh"] == "大型水力发电设施建设和运营"
    assert by_code["4.3.2"][0]["name_zh"] == "新型储能设施建设和运营"
    assert by_code["6.1.1"][0]["name_zh"] == "绿色建筑建设和运营"
    assert by_code["6.6.2"][0]["name_zh"] == "绿色数据中心建设"
    assert by_code["4.2.6"][0]["name_zh"] == "地热能利用设施建设和运营"  # table cut it short


@pytest.mark.parametrize("damage", ["rename", "drop", "condition"])
def test_the_check_catches_a_damaged_table(tmp_path: Path, damage: str) -> None:
    data = rows()
    if damage == "rename":
        for r in data:
            if r["code"] == "4.2.4":
                r["name_zh"] = "大型水力发电设施建设"
    elif damage == "drop":
        data = [r for r in data if r["code"] != "6.6.2"]
    else:
        data[0]["conditions_zh"] = data[0]["conditions_zh"].replace("热效率目标值", "热效率基准值")
    damaged = write(tmp_path / "items.csv", data)
    report = check_items(damaged, COLUMNS)
    assert not report.ok
    if damage == "rename":
        assert [(m.code, m.official_name) for m in report.name_mismatches] == [
            ("4.2.4", "大型水力发电设施建设和运营")
        ]
    elif damage == "drop":
        assert report.missing_in_items == ("6.6.2",)
        assert report.items_codes == 270
    else:
        assert report.conditions_not_found == (("1.1.1", "1"),)
        assert report.verified_flag_wrong == (("1.1.1", "1"),)
    assert main([str(damaged), str(COLUMNS)]) == 1


def test_cli_passes_on_the_committed_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(ITEMS), str(COLUMNS)]) == 0
    out = capsys.readouterr().out
    assert "conditions found in the official text: 1036 of 1036" in out
    assert out.rstrip().endswith("OK")
