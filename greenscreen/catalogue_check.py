"""Check the 2025 Green Finance Support Project Catalogue against the official text.

``check_items(items, official_text)`` reads either the item CSV (one row per GB/T 4754 row,
columns ``code``, ``name_zh``, ``row``, ``conditions_zh``, ``remarks_zh``, ``verified`` …; see
taxonomies/sources/README.md) or a rulebook YAML whose items carry ``rows`` (the shipped
``taxonomies/cn_gfsp_2025.yaml``), and a text extraction of the official PDF, and reports

* level-3 item codes found on one side only, and item names that differ (whitespace ignored);
* every condition (条件/标准) and remark (备注) not found in the official text once all
  whitespace is removed from both, and, for a rulebook, every criterion text in Chinese (the
  criteria quote the catalogue in ``text.zh``; greenscreen's own wording is in ``text.en`` and
  ``threshold``);
* CSV rows whose ``verified`` flag disagrees with that search.

Without arguments, ``python -m greenscreen.catalogue_check`` checks the bundled rulebook against
the bundled column text.

The official text may be the column-by-column extraction
(taxonomies/sources/cn_gfsp_2025_catalogue_columns.txt, where each cell is contiguous) or plain
``pdftotext -layout`` output (codes and names are found there too, but the layout interleaves the
cells of a row, so conditions are rarely contiguous in it)::

    python -m greenscreen.catalogue_check ITEMS_CSV OFFICIAL_TXT

prints the report and exits 1 on any mismatch.
"""

from __future__ import annotations

import csv
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from greenscreen._resources import bundled_dir

__all__ = ["NameMismatch", "Report", "check_items", "official_items", "main"]

_ITEM = re.compile(r"(\d\.\d{1,2}\.\d{1,2})\s*(.*)")
_HEADING = re.compile(r"\d\.(\d{1,2}\s|\S)")  # 1.节能降碳产业 / 1.1 高效节能装备制造
_AREA_SECTION = re.compile(r"^===== 列：领域 =====$(.*?)(?=^===== )", re.M | re.S)
_NOTES = "注："
_INDUSTRY_CODE = re.compile(r"[\d-]+")


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@dataclass(frozen=True)
class NameMismatch:
    code: str
    items_name: str
    official_name: str


@dataclass(frozen=True)
class Report:
    official_codes: int
    items_codes: int
    missing_in_items: tuple[str, ...] = ()
    missing_in_official: tuple[str, ...] = ()
    name_mismatches: tuple[NameMismatch, ...] = ()
    conditions_checked: int = 0
    conditions_not_found: tuple[tuple[str, str], ...] = ()  # (item code, GB/T row)
    verified_flag_wrong: tuple[tuple[str, str], ...] = field(default=())
    remarks_checked: int = 0
    remarks_not_found: tuple[tuple[str, str], ...] = ()
    #: a rulebook's criterion texts (zh) that quote the catalogue: (item code, criterion id)
    quotes_checked: int = 0
    quotes_not_found: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return not (
            self.missing_in_items
            or self.missing_in_official
            or self.name_mismatches
            or self.conditions_not_found
            or self.verified_flag_wrong
            or self.remarks_not_found
            or self.quotes_not_found
        )

    def render(self) -> str:
        found = self.conditions_checked - len(self.conditions_not_found)
        lines = [
            f"level-3 items: {self.official_codes} in the official text, {self.items_codes} in "
            "the item table",
            f"missing in the item table: {len(self.missing_in_items)}",
            *(f"  {code}" for code in self.missing_in_items),
            f"missing in the official text: {len(self.missing_in_official)}",
            *(f"  {code}" for code in self.missing_in_official),
            f"names that differ: {len(self.name_mismatches)}",
            *(
                f"  {m.code}: table {m.items_name!r}, official {m.official_name!r}"
                for m in self.name_mismatches
            ),
            f"conditions found in the official text: {found} of {self.conditions_checked}",
            *(f"  not found: {code} row {row}" for code, row in self.conditions_not_found),
            f"remarks found in the official text: "
            f"{self.remarks_checked - len(self.remarks_not_found)} of {self.remarks_checked}",
            *(f"  not found: {code} row {row}" for code, row in self.remarks_not_found),
            f"criterion texts (zh) found in the official text: "
            f"{self.quotes_checked - len(self.quotes_not_found)} of {self.quotes_checked}",
            *(f"  not found: {code} criterion {cid}" for code, cid in self.quotes_not_found),
            f"rows whose verified flag disagrees: {len(self.verified_flag_wrong)}",
            *(f"  {code} row {row}" for code, row in self.verified_flag_wrong),
            "OK" if self.ok else "MISMATCH",
        ]
        return "\n".join(lines)


def official_items(text: str) -> dict[str, str]:
    """Level-3 item codes and names (whitespace removed) in the official text.

    In the column-by-column extraction only the 领域 column is read; in ``pdftotext -layout``
    text, the 领域 cell is the part of a line before the first gap of two or more spaces, on lines
    that start in the first column. A name continues over the following lines until the next item
    code, heading or the notes (注：)."""
    section = _AREA_SECTION.search(text)
    if section:
        text = section[1]
    items: dict[str, str] = {}
    current: str | None = None
    for raw in text.replace("\f", "\n").splitlines():
        if not raw or raw[0].isspace():
            continue  # layout text: nothing in the 领域 column on this line
        segment = re.split(r"\s{2,}", raw.strip())[0]
        if match := _ITEM.match(segment):
            current = match[1]
            items[current] = _squash(_area_part(match[2]))
        elif _HEADING.match(segment) or segment.startswith(_NOTES):
            current = None
        elif current is not None:
            items[current] += _squash(_area_part(segment))
    return items


def _area_part(segment: str) -> str:
    """The 领域 text of a layout segment: the words before a GB/T code ("3591", "-") that the
    layout put next to it with a single space."""
    words = []
    for word in segment.split():
        if _INDUSTRY_CODE.fullmatch(word):
            break
        words.append(word)
    return "".join(words)


def _rulebook_rows(book: dict[str, Any]) -> list[dict[str, str]]:
    """The catalogue rows of a rulebook, in the item CSV's column names."""
    return [
        {
            "code": item["code"],
            "name_zh": item["name"]["zh"],
            "row": str(n),
            "conditions_zh": row.get("conditions") or "",
            "remarks_zh": row.get("remarks") or "",
        }
        for item in book.get("items", [])
        for n, row in enumerate(item.get("rows", []), start=1)
    ]


def check_items(items: str | Path, official_text: str | Path) -> Report:
    """Compare the item CSV or rulebook with the official text; see the module docstring."""
    text = Path(official_text).read_text(encoding="utf-8")
    items = Path(items)
    quotes: list[tuple[str, str, str]] = []  # (item, criterion, zh text)
    if items.suffix in (".yaml", ".yml"):
        book = yaml.safe_load(items.read_text(encoding="utf-8"))
        rows = _rulebook_rows(book)
        quotes = [
            (item["code"], criterion["id"], criterion["text"]["zh"])
            for item in book.get("items", [])
            for criterion in item.get("criteria", [])
            if (criterion.get("text") or {}).get("zh")
        ]
    else:
        with items.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    official = official_items(text)
    table: dict[str, str] = {}
    mismatches: list[NameMismatch] = []
    for row in rows:
        name = _squash(row["name_zh"])
        if table.setdefault(row["code"], name) != name:  # one item, two names in the table
            mismatches.append(NameMismatch(row["code"], name, table[row["code"]]))
    for code in sorted(set(table) & set(official), key=_code_key):
        if table[code] != official[code]:
            mismatches.append(NameMismatch(code, table[code], official[code]))
    haystack = _squash(text)
    not_found: list[tuple[str, str]] = []
    flag_wrong: list[tuple[str, str]] = []
    for row in rows:
        needle = _squash(row["conditions_zh"])
        found = bool(needle) and needle in haystack
        if not found:
            not_found.append((row["code"], row["row"]))
        if "verified" in row and (row["verified"] == "true") != found:
            flag_wrong.append((row["code"], row["row"]))
    remarks = [r for r in rows if r.get("remarks_zh")]
    remarks_missing = [
        (r["code"], r["row"]) for r in remarks if _squash(r["remarks_zh"]) not in haystack
    ]
    return Report(
        official_codes=len(official),
        items_codes=len(table),
        missing_in_items=tuple(sorted(set(official) - set(table), key=_code_key)),
        missing_in_official=tuple(sorted(set(table) - set(official), key=_code_key)),
        name_mismatches=tuple(mismatches),
        conditions_checked=len(rows),
        conditions_not_found=tuple(not_found),
        verified_flag_wrong=tuple(flag_wrong),
        remarks_checked=len(remarks),
        remarks_not_found=tuple(remarks_missing),
        quotes_checked=len(quotes),
        quotes_not_found=tuple((c, i) for c, i, zh in quotes if _squash(zh) not in haystack),
    )


def _code_key(code: str) -> tuple[int, ...]:
    return tuple(int(part) for part in code.split("."))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        taxonomies = bundled_dir("taxonomies")
        args = [
            str(taxonomies / "cn_gfsp_2025.yaml"),
            str(taxonomies / "sources" / "cn_gfsp_2025_catalogue_columns.txt"),
        ]
    if len(args) != 2:
        print(
            "usage: python -m greenscreen.catalogue_check [ITEMS_CSV|RULEBOOK_YAML OFFICIAL_TXT]",
            file=sys.stderr,
        )
        return 2
    report = check_items(args[0], args[1])
    print(report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
