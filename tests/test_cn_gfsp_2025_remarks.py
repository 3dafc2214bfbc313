"""备注 (remarks) that state a requirement in the 2025 catalogue are asked, on the rows they concern
(review taxonomies/review/cn_gfsp_2025.md, findings F7, F7r), and the item table keeps a 条件/标准
cut at a page break whole (F1) and a 备注 continued past a page break on every row (F12)."""

from __future__ import annotations

import csv
import re
from functools import cache
from pathlib import Path

import pytest
from catalogue import item, results

from greenscreen.rulebook import bundled_rulebooks

SOURCES = Path(__file__).resolve().parents[1] / "taxonomies" / "sources"
REQUIREMENTS = SOURCES / "cn_gfsp_2025_remark_requirements.csv"
ITEMS = SOURCES / "cn_gfsp_2025_items.csv"
COLUMNS = SOURCES / "cn_gfsp_2025_catalogue_columns.txt"
R = "cn_gfsp_2025__"


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@cache
def item_rows() -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    with ITEMS.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            out.setdefault(row["code"], []).append(row)
    return out


@cache
def requirements() -> list[dict[str, str]]:
    with REQUIREMENTS.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# ---- 5.1.14 绿色畜牧业, row 0181 草种植 ----------------------------------------------------------
def test_the_grass_row_is_asked_its_remark() -> None:
    """5.1.14 row 5 (0181) 备注: 「仅包括人工种植并收获牧草的活动。」 — only cultivated forage."""
    out = results(
        {"project_id": "ask", "cn_gfsp_2025_item": "5.1.14", "industry_code": "A0181"},
        {
            "project_id": "both",
            "cn_gfsp_2025_item": "5.1.14",
            "industry_code": "A0181",
            "cn_gfsp_5_1_14_met": True,
            "cn_gfsp_5_1_14_remark_met": True,
        },
        {
            "project_id": "wild-grass",
            "cn_gfsp_2025_item": "5.1.14",
            "industry_code": "A0181",
            "cn_gfsp_5_1_14_met": True,
            "cn_gfsp_5_1_14_remark_met": False,
        },
        {"project_id": "no-code", "cn_gfsp_2025_item": "5.1.14"},  # row unknown: asked
    )
    assert out["ask"][R + "status"] == "insufficient_data"
    assert out["ask"][R + "missing"] == ["cn_gfsp_5_1_14_met", "cn_gfsp_5_1_14_remark_met"]
    assert (out["both"][R + "status"], out["both"][R + "item"]) == ("eligible", "5.1.14")
    assert out["both"][R + "criteria"] == "conditions=pass; remark=pass"
    assert out["wild-grass"][R + "status"] == "not_eligible"
    assert out["wild-grass"][R + "criteria"] == "conditions=pass; remark=fail"
    assert "cn_gfsp_5_1_14_remark_met" in out["no-code"][R + "missing"]
    remark = next(c for c in item("5.1.14").criteria if c.id == "remark")
    assert remark.text.zh == "仅包括人工种植并收获牧草的活动。"
    assert remark.clause == "绿色金融支持项目目录（2025年版） 5.1.14 绿色畜牧业 备注"
    assert remark.applies_to is not None and remark.applies_to.industry_codes == ["0181"]
    assert remark.verification == "verified"


def test_rows_the_remark_does_not_concern_are_not_asked() -> None:
    """5.1.14 row 2 (1351 牲畜屠宰) has no such 备注; 1.1.11 rows 1–2 (3640, 3412) and 13
    (0519) are outside the 备注 cell 「销往不同省份的农机设备、产品品目范围及设备、产品条件要求，
    执行相应省份最新农机购置与应用补贴有关政策规定要求。」 (rows 3571–3732), which 3571 is asked."""
    out = results(
        {"project_id": "slaughter", "cn_gfsp_2025_item": "5.1.14", "industry_code": "C1351"},
        {
            "project_id": "slaughter-met",
            "cn_gfsp_2025_item": "5.1.14",
            "industry_code": "C1351",
            "cn_gfsp_5_1_14_met": True,
        },
        {"project_id": "e-farm-vehicle", "cn_gfsp_2025_item": "1.1.11", "industry_code": "C3640"},
        {"project_id": "greenhouse", "cn_gfsp_2025_item": "1.1.11", "industry_code": "A0519"},
        {"project_id": "tractor", "cn_gfsp_2025_item": "1.1.11", "industry_code": "C3571"},
    )
    assert out["slaughter"][R + "missing"] == ["cn_gfsp_5_1_14_met"]
    assert out["slaughter"][R + "criteria"] == "conditions=unknown; remark=n/a"
    assert out["slaughter-met"][R + "status"] == "eligible"
    assert out["e-farm-vehicle"][R + "missing"] == ["cn_gfsp_1_1_11_met"]
    assert out["greenhouse"][R + "missing"] == ["cn_gfsp_1_1_11_met"]
    assert out["tractor"][R + "missing"] == ["cn_gfsp_1_1_11_met", "cn_gfsp_1_1_11_remark_met"]
    remark = next(c for c in item("1.1.11").criteria if c.id == "remark")
    assert remark.applies_to is not None
    assert (
        remark.applies_to.industry_codes
        == "3571 3572 3573 3574 3575 3577 3579 3492 3731 3732".split()
    )


# ---- a trade item: 8.4.2, one 备注 over all its rows ---------------------------------------------
def test_a_trade_item_asks_for_the_product_conditions_on_every_row() -> None:
    """8.4.2 备注: 「1.水资源高效及循环利用装备贸易包含设备、产品范围，以及设备、产品
    符合性条件参照本目录 3.1.2 规定要求。」 — a trade item's product conditions are in its 备注."""
    done = {"cn_gfsp_8_4_2_met": True, "cn_gfsp_8_4_2_remark_met": True}
    out = results(
        {"project_id": "wholesale", "cn_gfsp_2025_item": "8.4.2", "industry_code": "F5179"},
        {"project_id": "farm-machinery", "cn_gfsp_2025_item": "8.4.2", "industry_code": "F5171"},
        {"project_id": "agency", "cn_gfsp_2025_item": "8.4.2", "industry_code": "F5181"},
        {"project_id": "ok", "cn_gfsp_2025_item": "8.4.2", "industry_code": "F5179", **done},
        {
            "project_id": "not-3.1.2",
            "cn_gfsp_2025_item": "8.4.2",
            "industry_code": "F5179",
            **done,
            "cn_gfsp_8_4_2_remark_met": False,
        },
    )
    for project in ("wholesale", "farm-machinery", "agency"):  # 5181: the `-` row, by its 备注
        assert out[project][R + "missing"] == ["cn_gfsp_8_4_2_met", "cn_gfsp_8_4_2_remark_met"]
    assert out["ok"][R + "status"] == "eligible"
    assert out["not-3.1.2"][R + "status"] == "not_eligible"
    remark = next(c for c in item("8.4.2").criteria if c.id == "remark")
    assert remark.applies_to is None  # one 备注 cell over all three rows
    assert "设备、产品符合性条件参照本目录3.1.2规定要求" in squash(remark.text.zh or "")


# ---- 2.3.5 工业园区污水集中处理 ------------------------------------------------------------------
def test_industrial_wastewater_remark_is_asked_on_both_rows() -> None:
    """2.3.5 备注 (one cell, rows 4840 and 4620): 「2.冶金、电镀、化工、印染、原料药制造等
    工业企业排放的含重金属或难以生化降解废水，以及有关工业企业排放的高盐废水，原则上不得
    排入市政污水收集处理设施；」"""
    out = results(
        {"project_id": "build", "cn_gfsp_2025_item": "2.3.5", "industry_code": "E4840"},
        {"project_id": "operate", "cn_gfsp_2025_item": "2.3.5", "industry_code": "D4620"},
        {
            "project_id": "met",
            "cn_gfsp_2025_item": "2.3.5",
            "industry_code": "D4620",
            "cn_gfsp_2_3_5_met": True,
            "cn_gfsp_2_3_5_remark_met": True,
        },
    )
    for project in ("build", "operate"):
        assert out[project][R + "missing"] == ["cn_gfsp_2_3_5_met", "cn_gfsp_2_3_5_remark_met"]
    assert out["met"][R + "status"] == "eligible"
    remark = next(c for c in item("2.3.5").criteria if c.id == "remark")
    assert "原则上不得排入市政污水收集处理设施" in remark.text.zh  # type: ignore[operator]
    assert remark.applies_to is None


def test_two_remarks_of_one_item_each_on_its_row() -> None:
    """6.3.2 (hand-written, cn_gfsp_2025_criteria_area2_9.yaml): row 4790 「绿色建筑材料指…」, row
    4840 「…2.节能装备指设备能效达到有关规范标准规定的 1 级能效水平或行业领先值的设备、装备。」,
    each on its own row; the grade is measured (equipment_energy_efficiency_grade)."""
    criteria = {c.id: c for c in item("6.3.2").criteria}
    assert criteria["remark-4790"].applies_to.industry_codes == ["4790"]  # type: ignore[union-attr]
    for cid in ("remark-4840-refrigerant", "equipment-grade-1", "equipment-industry-leading"):
        assert criteria[cid].applies_to.industry_codes == ["4840"]  # type: ignore[union-attr]
        assert criteria[cid].clause.endswith(" 备注")
    assert (criteria["remark-4790"].text.zh or "").startswith("绿色建筑材料指")
    assert "1 级能效水平或行业领先值" in (criteria["equipment-grade-1"].text.zh or "")
    assert criteria["equipment-grade-1"].condition == "equipment_energy_efficiency_grade <= 1"


def test_an_exemption_is_said_in_the_threshold_not_asked() -> None:
    """1.1.14 row 2 (3852) 备注: 「空气净化器、离子发生器、除湿机、加湿机等不使用制冷剂的
    设备、产品不受采用消耗臭氧潜能值（ODP）为 0 和全球升温潜能值（GWP）相对较低的制冷剂的
    条件限制。」"""
    # hand-written since issue 16 (cn_gfsp_2025_criteria_area1.yaml): the refrigerant criterion
    # of row 3852 is waived for a product that uses none (refrigerant_free_product)
    criterion = next(c for c in item("1.1.14").criteria if c.id == "refrigerant-odp0-low-gwp-ac")
    assert criterion.threshold is not None
    assert "exemption in the 备注 of GB/T row 3852" in criterion.threshold
    assert "空气净化器" in criterion.threshold and "no refrigerant" in criterion.threshold
    out = results(
        {
            "project_id": "purifier",
            "cn_gfsp_2025_item": "1.1.14",
            "industry_code": "C3852",
            "refrigerant_free_product": True,
            "gb36893_grade": 1,
        }
    )
    assert (out["purifier"][R + "status"], out["purifier"][R + "missing"]) == ("eligible", None)


# ---- the hand-maintained list ----------------------------------------------------------------
def test_the_list_quotes_only_what_the_remarks_say() -> None:
    """Every 「…」 in a note is in the 备注 of every row listed, which all share that one 备注."""
    rows_of = item_rows()
    assert requirements(), "empty list"
    for entry in requirements():
        assert entry["kind"] in ("requirement", "exemption"), entry
        rows = rows_of[entry["code"]]
        if entry["rows"] != "all":
            codes = entry["rows"].split()
            rows = [r for r in rows if r["industry_code"] in codes]
            assert {r["industry_code"] for r in rows} == set(codes), entry
        quotes = re.findall(r"「(.+?)」", entry["note"])
        assert quotes, entry
        for row in rows:
            for quote in quotes:
                assert squash(quote) in squash(row["remarks_zh"]), (entry["code"], row["row"])
        assert len({r["remarks_zh"] for r in rows}) == 1, entry["code"]


def test_the_list_covers_the_review_and_leaves_hand_written_items_out() -> None:
    listed = {e["code"] for e in requirements() if e["kind"] == "requirement"}
    trade = {c for c in item_rows() if c.startswith("8.") and c < "8.6"}
    assert len(trade) == 34
    assert listed == trade - {"8.5.1"} | {
        "1.1.4",
        "2.3.5",
        "5.1.14",
        "9.1.3",
    }
    # 6.3.2, 8.5.1: area 2-9 file; 1.1.1, 1.1.11, 1.1.13: area 1 file
    assert len(listed) == 42 - 2 - 3
    # 1.1.14's exemption (3852) is encoded in cn_gfsp_2025_criteria_area1.yaml
    assert [(e["code"], e["rows"]) for e in requirements() if e["kind"] == "exemption"] == []
    # encoded by hand-written criteria (cn_gfsp_2025_criteria.yaml), or being so
    assert not listed & {"6.1.2", "6.1.3", "9.1.1", "9.1.2", "1.5.1", "6.3.2"}
    assert not listed & {"1.1.1", "1.1.11", "1.1.13", "1.1.14"}  # area 1 file


def test_the_rulebook_has_one_remark_criterion_per_listed_requirement() -> None:
    book = next(b for b in bundled_rulebooks() if b.id == "cn_gfsp_2025")
    declared = {f.name for f in book.fields}
    found = 0
    for entry in requirements():
        if entry["kind"] != "requirement":
            continue
        code = entry["code"]
        field = f"cn_gfsp_{code.replace('.', '_')}_remark_met"
        assert field in declared
        remarks = [c for c in item(code).criteria if c.id.startswith("remark")]
        codes = None if entry["rows"] == "all" else entry["rows"].split()
        (criterion,) = [
            c for c in remarks if (c.applies_to.industry_codes if c.applies_to else None) == codes
        ]
        assert criterion.condition == f"{field} = TRUE"
        assert criterion.clause.endswith(" 备注")
        rows = [r for r in item(code).rows if codes is None or r.industry_code in codes]
        assert {r.remarks for r in rows} == {criterion.text.zh}
        found += 1
    # 6.3.2 (two), 8.5.1: area 2-9 file; 1.1.1, 1.1.11, 1.1.13: area 1 file
    assert found == 43 - 3 - 3


# ---- the item table: F1 and F12 ----------------------------------------------------------------
def test_a_condition_cut_at_a_page_break_is_whole_on_both_rows() -> None:
    """2.1.9 (PDF pp. 44–45): one cell over rows 2631 and 2632, 「…且符合下列条」 +
    「件之一的…」."""
    rows = item_rows()["2.1.9"]
    first, second = rows[0], rows[1]
    assert (first["industry_code"], second["industry_code"]) == ("2631", "2632")
    assert first["conditions_zh"] == second["conditions_zh"]
    assert "且符合下列条件之一的农药制造生产工艺调整" in first["conditions_zh"]
    assert first["conditions_zh"].startswith("农药制造活动中获得农药登记")
    assert first["conditions_zh"].endswith("3.高效低毒低残留农药研发、制造。")
    official = squash(COLUMNS.read_text(encoding="utf-8"))
    assert squash(first["conditions_zh"]) in official
    assert "page break" in first["note"] and "page break" in second["note"]
    assert len(rows) == 3 and rows[2]["industry_code"] == "4840"  # no row added or lost
    assert [r.conditions for r in item("2.1.9").rows[:2]] == [first["conditions_zh"]] * 2


@pytest.mark.parametrize(
    ("code", "row"),
    [
        ("8.3.1", 2),
        ("8.4.2", 2),
        ("8.4.2", 3),
        ("8.4.3", 2),
        ("8.5.6", 3),
        ("8.5.8", 2),
        ("8.5.9", 2),
        ("8.5.9", 3),
    ],
)
def test_a_remark_continued_past_a_page_break_is_on_its_rows(code: str, row: int) -> None:
    rows = item_rows()[code]
    assert rows[row - 1]["remarks_zh"] == rows[0]["remarks_zh"] != ""
    assert "continued past a page break" in rows[row - 1]["note"]
    assert "text of row 2" not in rows[row - 1]["note"]  # the workbook's empty merge is gone


def test_every_row_of_the_trade_items_carries_its_remark() -> None:
    for code, rows in item_rows().items():
        if code.startswith("8.") and code < "8.6":
            assert len({r["remarks_zh"] for r in rows}) == 1, code
            assert rows[0]["remarks_zh"], code
