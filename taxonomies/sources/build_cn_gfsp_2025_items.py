"""Build cn_gfsp_2025_items.csv from the table conversion, checked against the official text.

    python taxonomies/sources/build_cn_gfsp_2025_items.py TABLE_CSV TABLE_XLSX [OFFICIAL_TXT] [OUT]

TABLE_CSV is the third-party table conversion (shared/reference/sources/
cn_gfsp_2025_catalogue_table.csv: header + 1,084 rows, columns 领域, 国民经济行业代码,
国民经济行业类别名称, 条件/标准, 备注, 温室气体减排贡献). TABLE_XLSX is the workbook it was
exported from (cn_gfsp_2025_catalogue_table.xlsx); only its merged-cell ranges are read: the CSV
leaves a 条件/标准 or 备注 cell that spans several GB/T rows in the PDF empty after its first row,
and such a cell is copied to the rows it spans (with a note). The workbook does not see a merge
that a page break interrupts: those are listed below (SPLIT_CONDITIONS, REMARK_CONTINUATIONS),
read on the rendered PDF pages and checked against the column text. OFFICIAL_TXT defaults to
cn_gfsp_2025_catalogue_columns.txt and OUT to cn_gfsp_2025_items.csv, both beside this script;
English item names come from cn_gfsp_2025_names_en.csv beside it.

Every table row is either a level-1 heading, a level-2 heading or one GB/T row of the current
level-3 item; anything else is an error, and on any error nothing is written (exit 1). The output
is sorted as the source and written with fixed quoting and line endings, so reruns are identical.
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIELDS = (
    "code",
    "name_zh",
    "name_en",
    "level1_code",
    "level1_name_zh",
    "level2_code",
    "level2_name_zh",
    "row",
    "industry_code",
    "industry_name_zh",
    "conditions_zh",
    "remarks_zh",
    "ghg_mark",
    "verified",
    "note",
)
TABLE_HEADER = 6
LEVEL1 = re.compile(r"(\d)\.(\S.*)", re.S)
LEVEL2 = re.compile(r"(\d\.\d{1,2})\s+(\S.*)", re.S)
LEVEL3 = re.compile(r"(\d\.\d{1,2}\.\d{1,2})\s*(\S.*)", re.S)
WIDE = re.compile(r"[^\x00-\x7f]")
SECTION = re.compile(r"^===== (?:列：)?(.+?) =====$", re.M)

# Where the table conversion and the official PDF disagree, the PDF wins. Each correction names the
# item, GB/T row, column, the table's text and the PDF's text (whitespace-insensitive); a correction
# whose table text is no longer found is an error, so none is applied silently to changed input.
CORRECTIONS: tuple[tuple[str, int, str, str, str], ...] = (
    ("1.1.15", 3, "conditions_zh", "3《.", "3.《"),  # converter swapped 3. and 《
    ("1.2.1", 2, "conditions_zh", "2《.", "2.《"),
    ("2.1.1", 1, "conditions_zh", "2《.", "2.《"),
    ("2.2.6", 1, "remarks_zh", "6129其他一般馆", "6129其他一般旅馆"),
    ("3.2.8", 1, "conditions_zh", "利用技术改造等活动。", "利用技术改造等活动"),  # PDF: no 。
    ("5.1.13", 9, "conditions_zh", "竹👉", "竹笋"),  # converter put 👉 for 笋
    ("5.1.13", 10, "conditions_zh", "👉干、腌👉等竹👉", "笋干、腌笋等竹笋"),
)
# A 领域 cell without a code that continues the name of the item above it (a page break split the
# cell); accepted only for these names, as found in the official text.
NAME_CONTINUATIONS = {("7.4.9", "生态保护修复", "产品和生态系统评估")}
# Item names the table cut short (the PDF cell continues on the next page): table name -> PDF name.
NAME_CORRECTIONS = {
    ("4.2.6", "地热能利用设"): "地热能利用设施建设和运营",
    ("6.4.6", "入河入海排污口排查整"): "入河入海排污口排查整治及规范化建设",
}
MERGED_COLUMNS = {4: "conditions_zh", 5: "remarks_zh"}  # xlsx column number -> field
MERGED_NOTE = "{label}: one cell spanning several GB/T rows in the PDF; text of row {row}"
# A table row holding only the end of the previous row's 条件/标准 (a page break split the cell):
# (item, text) -> appended to the row above. Accepted only for these.
TEXT_CONTINUATIONS = {("4.1.1", "活动。")}
# One 条件/标准 cell spanning two GB/T rows, cut at a page break: the table keeps the part on each
# page in its own row. (item, first row, second row, how the second part starts): the joined text
# is set on both rows, as for any merged cell. Checked on the rendered PDF pages (2.1.9: pp. 44–45).
SPLIT_CONDITIONS = (("2.1.9", 1, 2, "件之一的"),)
# A 备注 cell spanning all rows of an item whose last rows fall on the next page: the table leaves
# the cell empty there. (item, row) -> the row whose 备注 continues; the source 备注 must be the
# last text of its page's 备注 column (or run across the page break). Read on the rendered pages
# 155–156, 159–161, 166–169; a merged cell broken at a page top looks like an empty one, so a lone
# row is taken as continued where, as in these trade items, the 备注 covers every row of the item
# on the pages where the item does not break (its clause 2.包括 5181 贸易代理… names the `-` row).
REMARK_CONTINUATIONS = {
    ("8.3.1", 2): 1,
    ("8.4.2", 2): 1,
    ("8.4.2", 3): 1,
    ("8.4.3", 2): 1,
    ("8.5.6", 3): 1,
    ("8.5.8", 2): 1,
    ("8.5.9", 2): 1,
    ("8.5.9", 3): 1,
}
# GB/T 4754 codes of the 01–09 divisions lost their leading zero in the table (0711 → 711);
# the PDF prints four digits. A padded code must be in the official text.
SHORT_CODE = re.compile(r"\d{3}")


def squash(text: str) -> str:
    """All whitespace removed: how texts are compared with the official text."""
    return re.sub(r"\s+", "", text)


def replace_loose(text: str, old: str, new: str) -> str:
    """Replace ``old`` in ``text`` ignoring whitespace (the table breaks lines anywhere)."""
    pattern = r"\s*".join(re.escape(char) for char in squash(old))
    return re.sub(pattern, lambda _: new, text)


def unwrap(text: str) -> str:
    """Remove the line breaks of the PDF layout: join directly next to CJK text or full-width
    punctuation, with one space between two ASCII characters (``GB\\n32030`` → ``GB 32030``)."""
    lines = [line.strip() for line in text.strip().splitlines()]
    out = ""
    for line in lines:
        if not line:
            continue
        if out and not WIDE.match(out[-1]) and not WIDE.match(line[0]):
            out += " "
        out += line
    return out


def sections(official: str, *, raw: bool = False) -> dict[str, str]:
    """The whitespace-free text of each column section of the columns file (``raw``: as written,
    with its line breaks and the form feeds between pages)."""
    marks = list(SECTION.finditer(official))
    out = {}
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        end = following.start() if following else len(official)
        text = official[mark.end() : end]
        out[mark[1]] = text if raw else squash(text)
    return out


def reaches_page_end(text: str, column: str) -> bool:
    """Is ``text`` (whitespace aside) in ``column`` followed by nothing but the page break, or
    does it run across one? ``column`` is a raw column section of the columns file."""
    pattern = r"\s*".join(re.escape(char) for char in squash(text))
    return any(
        "\f" in found[0] or re.match(r"[^\S\f]*\f", column[found.end() :])
        for found in re.finditer(pattern, column)
    )


def join_split_conditions(
    out: list[dict[str, str]], conditions_text: str, errors: list[str]
) -> None:
    """SPLIT_CONDITIONS: one cell over two rows, cut at a page break, joined on both rows."""
    for code, first, second, start in SPLIT_CONDITIONS:
        pair = [r for r in out if r["code"] == code and r["row"] in (str(first), str(second))]
        if len(pair) != 2 or not pair[1]["conditions_zh"].startswith(start):
            errors.append(f"split condition {code} rows {first}-{second} matched no rows")
            continue
        joined = pair[0]["conditions_zh"] + pair[1]["conditions_zh"]
        if squash(joined) not in conditions_text:
            errors.append(f"split condition {code}: the joined text is not in the official text")
            continue
        codes = f"{pair[0]['industry_code']}, {pair[1]['industry_code']}"
        for row in pair:
            row["conditions_zh"] = joined
            row["verified"] = "true"
            row["note"] = "; ".join(
                filter(
                    None,
                    [
                        row["note"],
                        f"条件/标准: one cell spanning rows {first}-{second} ({codes}) in the PDF, "
                        "cut at a page break; the table keeps each page's part in its own row; "
                        "joined as in the PDF",
                    ],
                )
            )


def continue_remarks(out: list[dict[str, str]], remarks_column: str, errors: list[str]) -> None:
    """REMARK_CONTINUATIONS: a 备注 cell continued past a page break into rows left empty."""
    by_row = {(r["code"], int(r["row"])): r for r in out}
    for (code, row), source_row in REMARK_CONTINUATIONS.items():
        target, source = by_row.get((code, row)), by_row.get((code, source_row))
        if target is None or source is None or not source["remarks_zh"]:
            errors.append(f"remark continuation {code} row {row}: no such rows or no 备注")
            continue
        if target["remarks_zh"]:
            errors.append(f"remark continuation {code} row {row}: the row has a 备注 already")
            continue
        if not reaches_page_end(source["remarks_zh"], remarks_column):
            errors.append(f"remark continuation {code} row {row}: the 备注 ends before its page")
            continue
        target["remarks_zh"] = source["remarks_zh"]
        # the workbook may merge the empty cells on the new page among themselves: that note goes
        stale = re.escape(MERGED_NOTE.format(label="备注", row="")) + r"\d+"
        notes = [n for n in re.split(r"; (?!text of row)", target["note"]) if n]
        notes = [n for n in notes if not re.fullmatch(stale, n)]
        notes.append(
            "备注: one cell spanning several GB/T rows in the PDF, continued past a page break "
            f"(the table leaves it empty on the next page); text of row {source_row}"
        )
        target["note"] = "; ".join(notes)


def merged_ranges(
    workbook: Path, rows: list[list[str]], errors: list[str]
) -> dict[int, list[tuple[int, int]]]:
    """Vertical spans (first, last table record) of merged 条件/标准 and 备注 cells.

    The workbook has a title row above the header, so its row r is CSV record r - 2; every
    record's six cells must equal the workbook's (whitespace aside)."""
    from openpyxl import load_workbook  # a dev dependency; only this script needs it

    sheet = load_workbook(workbook, read_only=False).active
    assert sheet is not None
    values = [
        [squash(str(v)) if v is not None else "" for v in line[:TABLE_HEADER]]
        for line in sheet.iter_rows(min_row=2, values_only=True)
    ]
    while values and not any(values[-1]):
        values.pop()
    if values != [[squash(c) for c in cells] for cells in rows]:
        errors.append(f"{workbook} does not hold the same cells as the table CSV")
        return {}
    out: dict[int, list[tuple[int, int]]] = {4: [], 5: []}
    for cells in sheet.merged_cells.ranges:
        if cells.max_row > cells.min_row and cells.min_col in out:
            out[cells.min_col].append((cells.min_row - 2, cells.max_row - 2))
    return out


def fill_merged(
    rows: list[list[str]], spans: dict[int, list[tuple[int, int]]], errors: list[str]
) -> dict[int, list[tuple[str, int]]]:
    """Copy each merged 条件/标准 / 备注 cell into the rows it spans.

    Returns, per filled table record, the column label and the record the text came from."""
    filled: dict[int, list[tuple[str, int]]] = {}
    for column, ranges in spans.items():
        label = "条件/标准" if column == 4 else "备注"
        for first, last in sorted(ranges):
            text = rows[first][column - 1]
            if any(rows[r][0].strip() for r in range(first + 1, last + 1)):
                errors.append(f"merged {label} cell over records {first}-{last} spans two items")
                continue
            for record in range(first + 1, last + 1):
                if rows[record][column - 1].strip():
                    errors.append(f"table record {record}: merged {label} cell is not empty")
                    continue
                rows[record][column - 1] = text
                filled.setdefault(record, []).append((label, first))
    return filled


def build(
    table: Path, workbook: Path, official: Path, names_en: Path
) -> tuple[list[dict[str, str]], list[str]]:
    with table.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    errors: list[str] = []
    filled = fill_merged(rows, merged_ranges(workbook, rows, errors), errors)
    row_of: dict[int, str] = {}  # table record -> GB/T row within its item
    columns = sections(official.read_text(encoding="utf-8"))
    conditions_text, remarks_text = columns["条件/标准"], columns["备注"]
    remarks_column = sections(official.read_text(encoding="utf-8"), raw=True)["备注"]
    with names_en.open(encoding="utf-8", newline="") as handle:
        english = {r["code"]: r for r in csv.DictReader(handle)}
    out: list[dict[str, str]] = []
    if len(rows[0]) != TABLE_HEADER or squash(rows[0][0]) != "领域":
        return [], [f"unexpected table header {rows[0]!r}"]
    level1 = level2 = ("", "")
    item: dict[str, str] | None = None
    used_corrections: set[int] = set()
    used_names: set[str] = set()
    used_continuations: set[str] = set()
    layout = squash(official.with_name("cn_gfsp_2025_catalogue.txt").read_text(encoding="utf-8"))
    headings = 0
    for number, cells in enumerate(rows[1:], start=1):  # table record (CSV line - 1)
        if len(cells) != TABLE_HEADER:
            errors.append(f"table record {number}: {len(cells)} cells, expected {TABLE_HEADER}")
            continue
        area, code, name, conditions, remarks, mark = (c.strip() for c in cells)
        rest = any((code, name, conditions, remarks, mark))
        compact = squash(area)
        if area and (m3 := LEVEL3.fullmatch(area)):
            if not m3[1].startswith(level2[0] + "."):
                errors.append(f"table record {number}: item {m3[1]} outside level 2 {level2[0]}")
                continue
            item = {"code": m3[1], "name_zh": squash(m3[2]), "row": "0", "note": ""}
            if (fixed := NAME_CORRECTIONS.get((m3[1], item["name_zh"]))) is not None:
                was = item["name_zh"]
                item["note"] = f"name: table has {was!r}, PDF has {fixed!r} (PDF followed)"
                item["name_zh"] = fixed
                used_names.add(m3[1])
        elif area and (m2 := LEVEL2.fullmatch(area)) and not rest:
            if not m2[1].startswith(level1[0] + "."):
                errors.append(f"table record {number}: level 2 {m2[1]} outside {level1[0]}")
            level2, item, headings = (m2[1], squash(m2[2])), None, headings + 1
            continue
        elif area and (m1 := LEVEL1.fullmatch(compact)) and not rest:
            level1, level2, item, headings = (m1[1], m1[2]), ("", ""), None, headings + 1
            continue
        elif item is not None and (item["code"], item["name_zh"], compact) in NAME_CONTINUATIONS:
            used_names.add(item["code"])
            item["note"] = (
                f"name: the table splits it as {item['name_zh']!r} + {compact!r} over two rows; "
                "joined as in the PDF"
            )
            item["name_zh"] += compact
            for done in out:
                if done["code"] == item["code"]:
                    done["name_zh"] = item["name_zh"]
                    done["note"] = "; ".join(filter(None, [item["note"], done["note"]]))
        elif area:
            errors.append(f"table record {number}: 领域 {area!r} is no heading or item code")
            continue
        elif item is None:
            errors.append(f"table record {number}: GB/T row outside any level-3 item")
            continue
        elif (item["code"], squash(conditions)) in TEXT_CONTINUATIONS and not (
            code or name or remarks or mark
        ):
            if out and out[-1]["code"] == item["code"]:
                out[-1]["conditions_zh"] += unwrap(conditions)
                out[-1]["note"] = "; ".join(
                    filter(
                        None,
                        [
                            out[-1]["note"],
                            f"条件/标准: the table puts the end {squash(conditions)!r} in a row "
                            "of its own (page break); joined as in the PDF",
                        ],
                    )
                )
                out[-1]["verified"] = (
                    "true" if squash(out[-1]["conditions_zh"]) in conditions_text else "false"
                )
                used_continuations.add(item["code"])
            continue
        if not rest:
            errors.append(f"table record {number}: empty row in item {item['code']}")
            continue
        item["row"] = str(int(item["row"]) + 1)
        row_of[number] = item["row"]
        values = {
            "industry_code": unwrap(code),
            "industry_name_zh": unwrap(name),
            "conditions_zh": unwrap(conditions),
            "remarks_zh": unwrap(remarks),
        }
        notes = [item["note"]] if item["note"] else []
        if SHORT_CODE.fullmatch(values["industry_code"]):
            padded = "0" + values["industry_code"]
            if padded + squash(values["industry_name_zh"])[:2] not in layout:
                errors.append(f"table record {number}: code {padded} not in the official text")
            notes.append(f"industry_code: table has {values['industry_code']}, PDF has {padded}")
            values["industry_code"] = padded
        notes += [
            MERGED_NOTE.format(label=label, row=row_of[first])
            for label, first in filled.get(number, [])
        ]
        for index, (c_code, c_row, column, old, new) in enumerate(CORRECTIONS):
            if (c_code, str(c_row)) == (item["code"], item["row"]):
                if squash(old) not in squash(values[column]):
                    errors.append(f"correction {index} ({c_code} row {c_row}) no longer applies")
                    continue
                values[column] = replace_loose(values[column], old, new)
                used_corrections.add(index)
                notes.append(f"{column}: table has {old!r}, PDF has {new!r} (PDF followed)")
        ghg = squash(mark)
        if ghg not in ("", "√", "√√"):
            errors.append(f"table record {number}: 温室气体减排贡献 {mark!r}")
            continue
        verified = bool(values["conditions_zh"]) and squash(values["conditions_zh"]) in (
            conditions_text
        )
        if not values["conditions_zh"]:
            notes.append("no 条件/标准 text in the table")
        elif not verified:
            notes.append("条件/标准 not found verbatim in the official text")
        if values["remarks_zh"] and squash(values["remarks_zh"]) not in remarks_text:
            notes.append("备注 not found verbatim in the official text")
        out.append(
            {
                "code": item["code"],
                "name_zh": item["name_zh"],
                "name_en": "",  # filled below, once names split over rows are joined
                "level1_code": level1[0],
                "level1_name_zh": level1[1],
                "level2_code": level2[0],
                "level2_name_zh": level2[1],
                "row": item["row"],
                **values,
                "ghg_mark": ghg,
                "verified": "true" if verified else "false",
                "note": "; ".join(notes),
            }
        )
    join_split_conditions(out, conditions_text, errors)
    continue_remarks(out, remarks_column, errors)
    for row in out:
        translation = english.get(row["code"])
        if translation is None or translation["name_zh"] != row["name_zh"]:
            errors.append(f"cn_gfsp_2025_names_en.csv: no row {row['code']} {row['name_zh']}")
        else:
            row["name_en"] = translation["name_en"]
    for index in sorted(set(range(len(CORRECTIONS))) - used_corrections):
        errors.append(f"correction {index} {CORRECTIONS[index][:3]} matched no row")
    expected_names = {c for c, _, _ in NAME_CONTINUATIONS} | {c for c, _ in NAME_CORRECTIONS}
    errors.extend(f"name fix for {c} matched no row" for c in sorted(expected_names - used_names))
    expected = {c for c, _ in TEXT_CONTINUATIONS}
    errors.extend(f"continuation {c} matched no row" for c in sorted(expected - used_continuations))
    if len(out) + headings + len(used_continuations) + len(errors) < len(rows) - 1:
        errors.append("table rows unaccounted for")  # every record: a heading, a row or an error
    extra = set(english) - {r["code"] for r in out}
    errors.extend(f"cn_gfsp_2025_names_en.csv: {code} is not in the table" for code in extra)
    return out, errors


def main(argv: list[str]) -> int:
    if not 2 <= len(argv) <= 4:
        print(__doc__, file=sys.stderr)
        return 2
    table, workbook = Path(argv[0]), Path(argv[1])
    official = Path(argv[2]) if len(argv) > 2 else HERE / "cn_gfsp_2025_catalogue_columns.txt"
    target = Path(argv[3]) if len(argv) > 3 else HERE / "cn_gfsp_2025_items.csv"
    rows, errors = build(table, workbook, official, HERE / "cn_gfsp_2025_names_en.csv")
    if errors:
        print("\n".join(errors), file=sys.stderr)
        print(f"{len(errors)} errors; nothing written", file=sys.stderr)
        return 1
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    unverified = sum(r["verified"] == "false" for r in rows)
    items = len({r["code"] for r in rows})
    print(f"{target}: {items} items, {len(rows)} GB/T rows, {unverified} not verified")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
