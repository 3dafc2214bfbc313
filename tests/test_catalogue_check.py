"""The 2025 catalogue item table (taxonomies/sources) against the official text (issue 11)."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
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


# ---- the shipped rulebook (taxonomies/cn_gfsp_2025.yaml) -------------------------------------
RULEBOOK = SOURCES.parent / "cn_gfsp_2025.yaml"
GENERATOR = SOURCES / "build_cn_gfsp_2025_rulebook.py"


def test_the_shipped_rulebook_passes_the_harness(capsys: pytest.CaptureFixture[str]) -> None:
    """Acceptance 1: all 271 codes and names equal to the official text, and no condition or
    remark string of the rulebook that is not in it (whitespace-normalised)."""
    report = check_items(RULEBOOK, COLUMNS)
    assert (report.official_codes, report.items_codes) == (271, 271)
    assert report.missing_in_items == report.missing_in_official == ()
    assert report.name_mismatches == ()
    assert (report.conditions_checked, report.conditions_not_found) == (1036, ())
    assert (report.remarks_checked, report.remarks_not_found) == (226, ())  # 8.x: F12
    # 138 before issue 16 (incl. 43 备注 criteria); area 2-9 measured criteria: +46 quotes, less
    # 5.1.5's generated attestation and 6.3.2's two generated 备注 criteria = +43; area 1
    # (cn_gfsp_2025_criteria_area1.yaml): +153 quotes, less 7 generated attestations with one
    # condition text and the 备注 criteria of 1.1.1, 1.1.11 and 1.1.13 = +143; 8.5.1 (area 2-9
    # file): +5 quotes less its generated 备注 criterion = +4
    assert (report.quotes_checked, report.quotes_not_found) == (138 + 43 + 143 + 4, ())
    assert report.ok
    # codes and names agree with the layout text of the PDF as well
    layout = check_items(RULEBOOK, LAYOUT)
    assert (layout.official_codes, layout.name_mismatches, layout.missing_in_items) == (271, (), ())
    assert main([]) == 0  # no arguments: the bundled rulebook against the bundled text
    assert capsys.readouterr().out.rstrip().endswith("OK")


def test_the_harness_catches_a_damaged_rulebook(tmp_path: Path) -> None:
    text = RULEBOOK.read_text(encoding="utf-8")
    damaged = tmp_path / "cn_gfsp_2025.yaml"
    damaged.write_text(
        text.replace("水力发电设施中列入", "水力发电设施中纳入")
        .replace("zh: 绿色数据中心建设\n", "zh: 数据中心建设\n")
        .replace("中达到1星级及以上", "中达到2星级及以上"),
        encoding="utf-8",
    )
    report = check_items(damaged, COLUMNS)
    assert report.conditions_not_found == (("4.2.4", "1"),)
    assert ("6.1.1", "star-1") in report.quotes_not_found
    assert [(m.code, m.items_name) for m in report.name_mismatches] == [("6.6.2", "数据中心建设")]
    assert main([str(damaged), str(COLUMNS)]) == 1


def test_the_rulebook_is_what_the_generator_writes(tmp_path: Path) -> None:
    """The YAML is generated (item table + activity map + hand-written criteria): a catalogue
    revision is a diff of those inputs, and a hand edit of the output is caught here."""
    out = tmp_path / "cn_gfsp_2025.yaml"
    done = subprocess.run(
        [sys.executable, str(GENERATOR), str(out)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "271 items, 1036 GB/T rows" in done.stdout
    assert out.read_bytes() == RULEBOOK.read_bytes()


def test_the_activity_map_is_many_to_many_and_matches_the_rulebook() -> None:
    from greenscreen.rulebook import bundled_rulebooks
    from greenscreen.vocabularies import activity_ids

    with (SOURCES / "cn_gfsp_2025_activity_map.csv").open(encoding="utf-8") as handle:
        pairs = [(r["activity"], r["item_code"]) for r in csv.DictReader(handle)]
    book = next(b for b in bundled_rulebooks() if b.id == "cn_gfsp_2025")
    scoped = {
        (activity, item.code)
        for item in book.leaf_items
        for activity in (item.scope.activities if item.scope else [])
    }
    assert scoped == set(pairs)
    items_of: dict[str, set[str]] = {}
    activities_of: dict[str, set[str]] = {}
    for activity, code in pairs:
        items_of.setdefault(activity, set()).add(code)
        activities_of.setdefault(code, set()).add(activity)
    assert items_of["hydropower"] == {"4.2.4", "4.3.4"}  # one activity, several items
    assert items_of["building_new"] == {"6.1.1", "6.1.2"}
    assert activities_of["4.2.1"] == {"wind_onshore", "wind_offshore"}  # one item, several
    assert set(items_of) <= set(activity_ids())
    # activities the catalogue does not finance (fossil power, heavy industry) map to no item
    unmapped = set(activity_ids()) - set(items_of)
    assert unmapped == {"coal_power", "gas_power", "cement", "steel", "aluminium", "chemicals"}


def test_every_item_has_criteria_of_a_known_kind() -> None:
    from greenscreen.rulebook import bundled_rulebooks

    book = next(b for b in bundled_rulebooks() if b.id == "cn_gfsp_2025")
    counts = book.counts()
    assert (counts["items"], counts["industry_rows"]) == (271, 1036)
    assert counts["measured"] + counts["attestation"] == counts["criteria"]
    assert counts["measured"] >= 3  # 6.1.1 star rating, 6.6.2 GB 40879 level / PUE, 9.1.2
    declared = {f.name for f in book.fields}
    for item in book.leaf_items:
        assert item.rows, item.code
        for criterion in item.criteria:
            if criterion.id == "conditions":  # the generic attestation
                assert criterion.condition == f"cn_gfsp_{item.code.replace('.', '_')}_met = TRUE"
                assert criterion.condition.split(" ")[0] in declared


# ---- the legacy rulebook (taxonomies/cn_gbepc_2021.yaml) --------------------------------------
def test_the_legacy_rulebook_is_what_its_generator_writes(tmp_path: Path) -> None:
    out = tmp_path / "cn_gbepc_2021.yaml"
    done = subprocess.run(
        [sys.executable, str(SOURCES / "build_cn_gbepc_2021_rulebook.py"), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "212 items, 200 verified against the 2019 text" in done.stdout
    assert out.read_bytes() == (SOURCES.parent / "cn_gbepc_2021.yaml").read_bytes()


def test_the_legacy_rulebook_holds_every_2019_item_and_marks_fossil_clean_use_removed() -> None:
    from greenscreen import screen
    from greenscreen.rulebook import bundled_rulebooks

    book = next(b for b in bundled_rulebooks() if b.id == "cn_gbepc_2021")
    codes = {item.code for item in book.leaf_items}
    assert len(codes) == 212 and "CCUS" in codes  # 211 items of 2019 + CCUS (2021)
    text = (SOURCES / "cn_gic_2019_explanations.txt").read_text(encoding="utf-8")
    squashed = "".join(text.split())
    for item in book.leaf_items:
        if item.code != "CCUS":  # every 2019 code and name is in the official 2019 text
            assert f"{item.code}{item.name.zh}" in squashed, item.code
    # 2019 3.3.2 煤炭清洁利用 is not in the 2021 catalogue: named, it is not eligible and says why
    result = screen([{"project_id": "P", "activity": "coal_power", "cn_gbepc_2021_item": "3.3.2"}])
    row = result.results.row(0, named=True)
    assert (row["cn_gbepc_2021__status"], row["cn_gbepc_2021__item"]) == ("not_eligible", "3.3.2")
    assert row["cn_gbepc_2021__criteria"] == "removed-2021=fail"
    # an item outside greenscreen's activities, named by the analyst, needs its attestation
    named = screen([{"project_id": "P", "description": "节水灌溉", "cn_gbepc_2021_item": "4.1.2"}])
    assert named.results.row(0, named=True)["cn_gbepc_2021__missing"] == ["cn_gbepc_4_1_2_met"]


# ---- condition kinds of both China catalogues (issue 16) ----------------------------------------
def _kinds(name: str) -> dict[str, dict[str, str]]:
    with (SOURCES / name).open(encoding="utf-8", newline="") as handle:
        data = list(csv.DictReader(handle))
    if "row" in data[0]:
        return {f"{r['code']} row {r['row']}": r for r in data}
    return {r["code"]: r for r in data}


def test_every_condition_row_is_classified_once_with_a_verbatim_basis() -> None:
    from greenscreen.catalogue_check import CONDITION_KINDS, check_condition_kinds

    for book_id, total, counts in (
        ("cn_gfsp_2025", 1036, (68, 97, 871)),
        ("cn_gbepc_2021", 211, (14, 74, 123)),  # the 211 items of the 2019 explanations
    ):
        report = check_condition_kinds(book_id)
        assert report.ok, report.render(verbose=True)
        assert report.rows_total == report.rows_classified == total
        assert (report.missing, report.duplicated, report.unknown) == ((), (), ())
        assert report.basis_not_verbatim == report.bad_kind == ()
        assert tuple(report.counts[k] for k in CONDITION_KINDS) == counts
        assert sum(report.counts.values()) == total
        # every measured row (2025) and item (2019 explanations) has a measured criterion
        assert len(report.encoded) == report.measured and report.unencoded == ()
        assert report.encoded_share == 1.0
    gfsp = check_condition_kinds("cn_gfsp_2025")
    assert gfsp.measured_items == 32
    # hand-written measured criteria from before issue 16: 6.1.1 star rating, 6.6.2 GB 40879
    assert {f"6.1.1 row {n}" for n in range(1, 7)} | {"6.6.2 row 1", "6.6.2 row 2"} <= set(
        gfsp.encoded
    )


def test_hand_picked_condition_kinds() -> None:
    """Rows read against their text (quoted)."""
    gfsp = _kinds("cn_gfsp_2025_condition_kinds.csv")
    expected = {
        # 「2.锅炉能效达到《工业锅炉能效限定值及能效等级》（GB 24500）规定的 1 级能效水平。」
        "1.1.1 row 1": ("measured", "（GB 24500）规定的 1 级能效水平"),
        # 「…碳转化率、单位产品综合能耗等能源转换效率指标达到行业领先水平的煤气化装备制造…」
        # (the rules saw the boilers' 热效率目标值 in the shared 备注: overridden)
        "1.1.1 row 2": ("qualitative", ""),
        # 「2. 1kV—35kV 通用变频调速设备需符合《1kV 以上不超过 35kV的通用变频调速设备》…」: a
        # title is no limit; the row is measured by
        # 「三相电力变压器能效不低于…（GB 20052）规定的 1 级能效水平」
        "1.1.9 row 1": ("measured", "（GB 20052）规定的 1 级能效水平"),
        # 「…热电冷三联供设施综合能效应不低于 70%。」
        "4.3.1 row 5": ("measured", "不低于 70%"),
        # 「…5 兆瓦及以上陆上风力发电机整 机…」
        "4.1.1 row 2": ("measured", "5 兆瓦及以上"),
        # 「风力发电设施运营活动。」-like description only
        "4.2.1 row 1": ("qualitative", ""),
        # 「房屋建筑活动中达到1 星级及以上绿色建筑标准的房屋建筑建设活动。」
        "6.1.1 row 4": ("measured", "1 星级及以上"),
        # 「符合《近零能耗建筑技术标准》（GB/T 51350）规定要求的超低能耗、近零能耗、零能耗…」
        "6.1.2 row 4": ("measured", "超低能耗、近零能耗、零能耗"),
        # 「住宅房屋建筑活动中符合《农村居住建筑节能设计标准》（GB/T 50824）规定要求的…」
        "6.1.4 row 3": ("standard_reference", "《农村居住建筑节能设计标准》（GB/T 50824）"),
        # 「电能比不低于《数据中心能效限定值及能效等级》（GB 40879）中 2 级能效水平的…」
        "6.6.2 row 1": ("measured", "（GB 40879）中 2 级能效水平"),
        # 「…列入省级最新农机购置与应用补贴机具种类范围…符合《农机专项鉴定产品购置补贴实施工作
        # 规范（试行）》规定要求」: a subsidy work rule, not a standard
        "1.1.11 row 3": ("qualitative", ""),
    }
    for key, (kind, basis) in expected.items():
        assert (gfsp[key]["condition_kind"], gfsp[key]["basis"]) == (kind, basis), key
    gic = _kinds("cn_gic_2019_condition_kinds.csv")
    expected_2019 = {
        # 「1）多晶硅电池组件光电转化效率≥16.0%，…一年内衰减率≤2.5%…」
        "3.2.2": ("measured", "≥16.0%"),
        # 「符合《风力发电场设计规范》（GB51096）、…等标准。」
        "3.2.1": ("standard_reference", "《风力发电场设计规范》（GB51096）"),
        # 「仅含《“十三五”可再生能源规划》中明确的重点大型水电基地建设，…」: a plan, no standard
        "3.2.4": ("qualitative", ""),
        # 「建筑需达到《绿色建筑评价标准》（GB/T50378）…等标准中一星及以上标准要求」
        "5.1.2": ("measured", "一星及以上"),
        # 「光伏电池生产需达到《光伏电池行业清洁生产评价指标体系》I级水平」
        "3.1.2": ("measured", "I级水平"),
        # 「工业锅炉能效优于《工业锅炉能效限定值及能效等级》（GB24500）规定的2级能效等级要求」
        "1.1.1": ("measured", "（GB24500）规定的2级能效等级"),
    }
    for code, (kind, basis) in expected_2019.items():
        assert (gic[code]["condition_kind"], gic[code]["basis"]) == (kind, basis), code


def test_the_condition_kinds_are_what_the_classifier_writes(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SOURCES / "classify_conditions.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "2025: 1036 rows, measured 68, standard_reference 97, qualitative 871" in done.stdout
    for name in ("cn_gfsp_2025_condition_kinds.csv", "cn_gic_2019_condition_kinds.csv"):
        assert (tmp_path / name).read_bytes() == (SOURCES / name).read_bytes(), name


def test_the_kinds_check_catches_a_damaged_classification(tmp_path: Path) -> None:
    from greenscreen.catalogue_check import check_condition_kinds

    lines = (SOURCES / "cn_gfsp_2025_condition_kinds.csv").read_text(encoding="utf-8").splitlines()
    damaged = [line for line in lines if not line.startswith("6.6.2,2,")]  # a row dropped
    damaged = [line.replace("1 星级及以上", "2 星级及以上") for line in damaged]  # not verbatim
    damaged.append(damaged[1])  # a row classified twice
    path = tmp_path / "kinds.csv"
    path.write_text("\n".join(damaged) + "\n", encoding="utf-8")
    report = check_condition_kinds("cn_gfsp_2025", kinds_csv=path)
    assert not report.ok
    assert report.missing == ("6.6.2 row 2",)
    assert report.duplicated == ("1.1.1 row 1",)
    assert report.basis_not_verbatim == tuple(f"6.1.1 row {n}" for n in range(1, 7))
    assert main(["--kinds"]) == 0  # the shipped files are consistent


def test_a_measured_row_is_encoded_only_where_the_criterion_is_in_force(tmp_path: Path) -> None:
    """applies_to on one GB/T row: only that row of the item is encoded."""
    import yaml

    from greenscreen.catalogue_check import check_condition_kinds
    from greenscreen.rulebook import load_rulebook

    book = yaml.safe_load(RULEBOOK.read_text(encoding="utf-8"))
    for item in book["items"]:
        if item["code"] == "6.1.1":
            star = next(c for c in item["criteria"] if c["id"] == "star-1")
            item["criteria"] = [{**star, "applies_to": {"industry_codes": ["7484"]}}]
    path = tmp_path / "cn_gfsp_2025.yaml"
    path.write_text(yaml.safe_dump(book, allow_unicode=True, sort_keys=False), encoding="utf-8")
    report = check_condition_kinds("cn_gfsp_2025", rulebook=load_rulebook(path))
    assert [k for k in report.encoded if k.startswith("6.1.1 ")] == ["6.1.1 row 1"]  # 7484
    assert {f"6.1.1 row {n}" for n in range(2, 7)} <= set(report.unencoded)


def test_rulebooks_command_shows_the_condition_kinds() -> None:
    from conftest import run_cli

    done = run_cli("rulebooks")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "meas/std/qual" in out and "encoded" in out
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 5}
    assert "68/97/871" in lines["cn_gfsp_2025"]
    assert "14/74/123" in lines["cn_gbepc_2021"]
    assert re.search(r"\b\d+/68 \d+%", lines["cn_gfsp_2025"])
    assert re.search(r"\b\d+/14 \d+%", lines["cn_gbepc_2021"])
    assert "/" not in lines["eu_taxonomy"].split("│")[12]  # blank for other rulebooks
    for book_id in ("cgt_2022", "cn_exclusions", "cn_gbepc_2021", "cn_gfsp_2025", "pboc_cerf"):
        assert book_id in lines  # the id column is never wrapped or cut
