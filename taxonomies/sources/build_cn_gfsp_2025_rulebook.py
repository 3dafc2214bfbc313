"""Generate taxonomies/cn_gfsp_2025.yaml: all 271 items of the 2025 catalogue as a rulebook.

    python taxonomies/sources/build_cn_gfsp_2025_rulebook.py [OUT]

Reads, beside this script:

* ``cn_gfsp_2025_items.csv`` — every item and GB/T 4754 row with the verbatim 条件/标准, 备注 and
  GHG mark (built and checked against the official text by build_cn_gfsp_2025_items.py);
* ``cn_gfsp_2025_activity_map.csv`` — greenscreen activity ↔ item (many-to-many) with the basis;
* ``cn_gfsp_2025_criteria.yaml`` — the rulebook header, the evidence fields and the hand-written
  criteria per item (measured or attestation; ``[]`` where being in scope is the test);
* ``cn_gfsp_2025_remark_requirements.csv`` — the items (and GB/T rows) whose 备注 states a
  requirement or an exemption that the 条件/标准 do not (hand-maintained; see the README).

Every other item gets one attestation criterion on a generated field ``cn_gfsp_<code>_met``.
An item listed as ``requirement`` gets a second one, ``remark`` on ``cn_gfsp_<code>_remark_met``,
quoting the 备注 verbatim and, when the 备注 is on some rows only, in force on those rows
(``applies_to``); an ``exemption`` is added to the threshold of the item's attestation.
Scope: the mapped activities, the GB/T codes of the item's rows and the codes its 备注 name
("包括但不限于 5431 普通货物道路运输、…"); an item with a row that names no code (e.g. 4.3.2
各用电、用热（冷）行业) lets an activity match whatever the industry code; an item with neither
activities nor codes is reached by naming it (``cn_gfsp_2025_item``). The output is
deterministic: rerunning it on unchanged inputs rewrites the same bytes (a test checks this).
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from _generated_rulebook import attestation, write  # beside this script

HERE = Path(__file__).resolve().parent
TARGET = HERE.parent / "cn_gfsp_2025.yaml"
CLAUSE = "绿色金融支持项目目录（2025年版）"
# a four-digit GB/T class code followed by its Chinese name, as the 备注 list them
REMARK_CODE = re.compile(r"(?<![\d./A-Za-z])(\d{4})(?=\s*[\u4e00-\u9fff])")
# in cn_gfsp_2025_remark_requirements.csv, a verbatim excerpt of the 备注 in the note
REMARK_QUOTE = re.compile(r"「(.+?)」")
REMARK_KINDS = ("requirement", "exemption")


def _read_csv(name: str) -> list[dict[str, str]]:
    with (HERE / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def attestation_field(code: str) -> str:
    return f"cn_gfsp_{code.replace('.', '_')}_met"


def remark_field(code: str) -> str:
    return f"cn_gfsp_{code.replace('.', '_')}_remark_met"


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _overlay() -> dict[str, Any]:
    """The hand-written criteria: ``cn_gfsp_2025_criteria.yaml`` (header, fields, items) and
    any ``cn_gfsp_2025_criteria_*.yaml`` beside it (fields and items only; measured criteria
    kept per catalogue area). An item may be written in one file only; a field declared twice
    must be declared the same way."""
    main = yaml.safe_load((HERE / "cn_gfsp_2025_criteria.yaml").read_text(encoding="utf-8"))
    fields = {f["name"]: f for f in main["fields"]}
    items = dict(main["items"])
    for path in sorted(HERE.glob("cn_gfsp_2025_criteria_*.yaml")):
        part = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for field in part.get("fields", []):
            if fields.setdefault(field["name"], field) != field:
                raise SystemExit(f"{path.name}: field {field['name']} declared differently")
        for code, entry in (part.get("items") or {}).items():
            if code in items:
                raise SystemExit(f"{path.name}: item {code} is written in another file too")
            items[code] = entry
    return {"header": main["header"], "fields": list(fields.values()), "items": items}


def _code_key(code: str) -> tuple[int, ...]:
    return tuple(int(part) for part in code.split("."))


def build() -> dict[str, Any]:
    rows = _read_csv("cn_gfsp_2025_items.csv")
    overlay = _overlay()
    mapping: dict[str, list[str]] = {}
    activity_rows: dict[str, dict[str, list[str]]] = {}
    for entry in _read_csv("cn_gfsp_2025_activity_map.csv"):
        mapping.setdefault(entry["item_code"], []).append(entry["activity"])
        if entry["rows"]:
            activity_rows.setdefault(entry["item_code"], {})[entry["activity"]] = entry[
                "rows"
            ].split()
    by_item: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_item.setdefault(row["code"], []).append(row)
    unknown = (set(mapping) | set(overlay["items"])) - set(by_item)
    if unknown:
        raise SystemExit(f"not items of the catalogue: {sorted(unknown, key=_code_key)}")
    remarks = _remark_requirements(by_item, overlay["items"])

    fields = list(overlay["fields"])
    items: list[dict[str, Any]] = []
    headings: set[str] = set()
    for code, item_rows in by_item.items():
        first = item_rows[0]
        for level, name in ((first["level1_code"], first["level1_name_zh"]),
                            (first["level2_code"], first["level2_name_zh"])):  # fmt: skip
            if level not in headings:
                headings.add(level)
                parent = level.rsplit(".", 1)[0] if "." in level else None
                items.append({"code": level, "name": {"zh": name}, **_parent(parent)})
        item = _item(code, item_rows, mapping.get(code, []), overlay["items"], fields)
        if code in remarks:
            _add_remarks(item, item_rows, remarks[code], activity_rows.get(code, {}), fields)
        if "ghg_mark" not in item and code in activity_rows:
            item["activity_ghg_marks"] = _activity_marks(code, item_rows, activity_rows[code])
        items.append(item)
    header = dict(overlay["header"])
    header["notes"] = (
        "GENERATED by taxonomies/sources/build_cn_gfsp_2025_rulebook.py from the item table, the "
        "activity map and the hand-written criteria beside it: edit those and rerun. All 271 "
        "level-3 items with their GB/T 4754 rows, 条件/标准 and 备注 verbatim from the official "
        "text (python -m greenscreen.catalogue_check checks them). Criteria: measured where the "
        "text states something measurable, else an attestation field the analyst supplies "
        "(missing -> insufficient_data naming it); cn_gfsp_<code>_met is the generic one. "
        "ghg_mark: √√ direct reduction, √ low-carbon enabling; where an item's rows differ the "
        "item has none and a project gets the mark of the row its industry_code names."
    )
    return {**header, "fields": fields, "items": items}


def _remark_requirements(
    by_item: dict[str, list[dict[str, str]]], overlay: dict[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    """cn_gfsp_2025_remark_requirements.csv, checked: per item, its entries with ``codes`` (the
    GB/T codes named, or None for ``all``), ``kind``, ``note`` and the 备注 they concern."""
    out: dict[str, list[dict[str, Any]]] = {}
    for number, entry in enumerate(_read_csv("cn_gfsp_2025_remark_requirements.csv"), start=2):
        code, where = entry["code"], f"cn_gfsp_2025_remark_requirements.csv line {number}"
        rows = by_item.get(code)
        if rows is None:
            raise SystemExit(f"{where}: {code} is not an item of the catalogue")
        if code in overlay:
            raise SystemExit(f"{where}: {code} has hand-written criteria; encode its 备注 there")
        if entry["kind"] not in REMARK_KINDS:
            raise SystemExit(f"{where}: kind {entry['kind']!r}, expected one of {REMARK_KINDS}")
        codes = None if entry["rows"].strip() == "all" else entry["rows"].split()
        if codes is None:
            chosen = rows
        else:
            chosen = [r for r in rows if r["industry_code"] in codes]
            named = {r["industry_code"] for r in chosen}
            if (
                not codes
                or len(set(codes)) != len(codes)
                or named != set(codes)
                or not all(re.fullmatch(r"\d{4}", c) for c in codes)  # `-` rows: use `all`
            ):
                raise SystemExit(f"{where}: rows {entry['rows']!r} are not GB/T codes of {code}")
        texts = {r["remarks_zh"] for r in chosen}
        if len(texts) != 1 or not (remark := texts.pop()):
            raise SystemExit(f"{where}: the rows of {code} named do not share one 备注")
        quotes = REMARK_QUOTE.findall(entry["note"])
        if not quotes or any(_squash(q) not in _squash(remark) for q in quotes):
            raise SystemExit(f"{where}: the note must quote the 备注 of {code} in 「」 verbatim")
        for other in out.get(code, []):
            if other["kind"] == entry["kind"] and (
                codes is None or other["codes"] is None or set(codes) & set(other["codes"])
            ):
                raise SystemExit(f"{where}: rows of {code} listed twice")
        out.setdefault(code, []).append(
            {"codes": codes, "kind": entry["kind"], "note": entry["note"], "remark": remark}
        )
    return out


def _add_remarks(
    item: dict[str, Any],
    rows: list[dict[str, str]],
    entries: list[dict[str, Any]],
    activity_rows: dict[str, list[str]],
    fields: list[dict[str, Any]],
) -> None:
    """The 备注 requirements (one ``remark`` criterion each, one field per item) and exemptions
    (added to the threshold of the item's attestation) of one item."""
    code, name, name_en = item["code"], rows[0]["name_zh"], rows[0]["name_en"]
    activities = item["scope"].get("activities", [])
    requirements = [e for e in entries if e["kind"] == "requirement"]
    for entry in entries:
        english = REMARK_QUOTE.sub("", entry["note"]).strip()
        codes = entry["codes"]
        rows_named = f"GB/T row{'s' if len(codes or []) > 1 else ''} {', '.join(codes or [])}"
        if entry["kind"] == "exemption":
            criterion = next(c for c in item["criteria"] if c["id"] == "conditions")
            where = f" of {rows_named}" if codes else ""
            criterion["threshold"] += f"; exemption in the 备注{where}: {entry['note']}"
            continue
        criterion = {
            "id": "remark" if len(requirements) == 1 else f"remark-{codes[0]}",
            "condition": f"{remark_field(code)} = TRUE",
            "clause": f"{CLAUSE} {code} {name} 备注",
            "threshold": "the analyst confirms the requirement stated in the item's 备注 "
            + (f"(attestation; {rows_named} only)" if codes else "(attestation)"),
            "text": {
                "zh": entry["remark"],
                "en": f"Meets the requirement in the 备注 of item {code} ({name_en})"
                + (f", {rows_named}" if codes else "")
                + f": {english}",
            },
            "verification": "verified",
        }
        if codes:
            criterion["applies_to"] = {"industry_codes": list(codes)}
            concerned = [
                a
                for a in activities
                if not activity_rows.get(a) or set(activity_rows[a]) & set(codes)
            ]
            if concerned:
                criterion["applies_to"]["activities"] = concerned
        item["criteria"].append(criterion)
    if requirements:
        fields.append(
            {
                "name": remark_field(code),
                "type": "boolean",
                "description": {
                    "zh": f"符合《目录》{code}「{name}」备注规定的要求",
                    "en": f"Meets the requirement stated in the 备注 (remarks) of catalogue item "
                    f"{code} ({name_en})",
                },
            }
        )


def _activity_marks(
    code: str, rows: list[dict[str, str]], chosen: dict[str, list[str]]
) -> dict[str, str]:
    """The GHG mark of each activity, from the rows it corresponds to (the map's ``rows``
    column: GB/T codes, ``-`` for a row without one), where an item's rows differ."""
    out = {}
    for activity, codes in sorted(chosen.items()):
        picked = [r for r in rows if (r["industry_code"] or "-") in codes]
        if {r["industry_code"] or "-" for r in picked} != set(codes):
            raise SystemExit(f"activity map: {activity} → {code}: rows {codes} not all in the item")
        marks = {r["ghg_mark"] for r in picked}
        if len(marks) != 1:
            raise SystemExit(f"activity map: {activity} → {code}: rows with different marks")
        if mark := marks.pop():
            out[activity] = mark
    return out


def _parent(parent: str | None) -> dict[str, str]:
    return {"parent": parent} if parent else {}


def _item(
    code: str,
    rows: list[dict[str, str]],
    activities: list[str],
    overlay: dict[str, Any],
    fields: list[dict[str, Any]],
) -> dict[str, Any]:
    first = rows[0]
    codes = {r["industry_code"] for r in rows if r["industry_code"] not in ("", "-")}
    for r in rows:
        codes.update(REMARK_CODE.findall(r["remarks_zh"]))
    uncoded = any(r["industry_code"] in ("", "-") for r in rows)
    scope: dict[str, Any] = {}
    if activities:
        scope["activities"] = sorted(activities)
    if codes:
        scope["industry_codes"] = sorted(codes)
        if not activities:  # the code names the industry, the activity names the project
            scope["codes_only_without_activity"] = True
    if activities and codes and uncoded:
        scope["industry_confirms"] = False
    if not scope:
        scope["claimed_only"] = True
    marks = {r["ghg_mark"] for r in rows}
    item: dict[str, Any] = {
        "code": code,
        "name": {"zh": first["name_zh"], "en": first["name_en"]},
        "parent": first["level2_code"],
        "scope": scope,
        "rows": [_row(r) for r in rows],
        "verification": "verified" if all(r["verified"] == "true" for r in rows) else "unverified",
    }
    if len(marks) == 1 and (mark := marks.pop()):
        item["ghg_mark"] = mark
    if code in overlay:
        item["criteria"] = overlay[code]["criteria"]
    else:
        criterion, field = _attestation(code, rows)
        item["criteria"] = [criterion]
        fields.append(field)
    notes = sorted({r["note"] for r in rows if r["note"]})
    if notes:
        item["notes"] = " | ".join(notes)
    return item


def _row(r: dict[str, str]) -> dict[str, str]:
    out = {
        "industry_code": r["industry_code"] if r["industry_code"] not in ("", "-") else None,
        "industry_name": r["industry_name_zh"],
        "conditions": r["conditions_zh"],
        "remarks": r["remarks_zh"] or None,
        "ghg_mark": r["ghg_mark"] or None,
    }
    return {k: v for k, v in out.items() if v is not None}


def _attestation(code: str, rows: list[dict[str, str]]) -> tuple[dict[str, Any], dict[str, Any]]:
    name, name_en = rows[0]["name_zh"], rows[0]["name_en"]
    conditions = list(dict.fromkeys(r["conditions_zh"] for r in rows))
    # zh: only the official words (the harness checks every zh text of the rulebook)
    text = {"zh": conditions[0]} if len(conditions) == 1 else {}
    text["en"] = f"Meets the 条件/标准 of item {code} ({name_en})" + (
        "" if len(conditions) == 1 else " of the project's GB/T row, quoted in the item's rows"
    )
    return attestation(
        attestation_field(code),
        clause=f"{CLAUSE} {code} {name}",
        threshold="the analyst confirms the item's 条件/标准 (attestation)",
        text=text,
        verification="verified",
        description={
            "zh": f"符合《目录》{code}「{name}」的条件/标准",
            "en": f"Meets the 条件/标准 of catalogue item {code} ({name_en})",
        },
    )


HEAD = (
    "# GENERATED by taxonomies/sources/build_cn_gfsp_2025_rulebook.py — do not edit by hand.\n"
    "# 绿色金融支持项目目录（2025年版）: 9 areas, 38 level-2 and 271 level-3 items.\n"
)


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else TARGET
    book = build()
    write(target, book, HEAD)
    leaves = [i for i in book["items"] if "scope" in i]
    print(f"{target}: {len(leaves)} items, {sum(len(i['rows']) for i in leaves)} GB/T rows")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
