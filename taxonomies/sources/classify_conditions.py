"""Classify every condition of the two China catalogues as measured, standard_reference or
qualitative (issue 16).

    python taxonomies/sources/classify_conditions.py [OUT_DIR]

Reads, beside this script, ``cn_gfsp_2025_items.csv`` (1,036 GB/T rows of the 2025 catalogue:
条件/标准 ``conditions_zh`` and 备注 ``remarks_zh``) and ``cn_gic_2019_items.csv`` (the 211 items
of the 2019 explanations: 说明), and writes beside it

* ``cn_gfsp_2025_condition_kinds.csv`` — ``code,row,industry_code,condition_kind,basis``;
* ``cn_gic_2019_condition_kinds.csv`` — ``code,condition_kind,basis``

(or into OUT_DIR; a test writes them there and compares bytes).

``condition_kind``:

* ``measured`` — the text states a level, grade, star, number or limit (「…规定的 1 级能效水平」,
  「1 星级及以上」, 「不低于 70%」, 「5 兆瓦及以上」, a standard's 节能评价值 / 先进值 / 目标值);
* ``standard_reference`` — it requires compliance with a named standard (a standard number such
  as （GB/T 30843）, or a title naming a technical standard: 《…标准》《…规范》《…规程》《…导则》
  《…技术要求》《…规范条件》《…评价指标体系》…) and states no level;
* ``qualitative`` — neither: 「达到同类可比产品行业领先值」, 「符合…有关规范标准」 with no standard
  named, inclusion in a named list (《…目录》《…名录》), or only a description of the activity.

``basis`` is the verbatim phrase (a substring of 条件/标准 or 备注, resp. 说明) that decided the
kind: the first measured phrase, else the first named standard; empty for qualitative. The rules
are the regular expressions below, applied to the 条件/标准 first and then the 备注; measured
phrases are not searched inside a 《title》 (「《1kV 以上不超过 35kV的通用变频调速设备》」 is a
title, not a limit). ``OVERRIDES`` corrects the rules where a reading of the row disagrees, each
with its reason. The output is deterministic; ``greenscreen.catalogue_check`` checks that every
row is classified once and every basis is verbatim.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ITEMS_2025 = HERE / "cn_gfsp_2025_items.csv"
ITEMS_2019 = HERE / "cn_gic_2019_items.csv"
OUT_2025 = HERE / "cn_gfsp_2025_condition_kinds.csv"
OUT_2019 = HERE / "cn_gic_2019_condition_kinds.csv"

KINDS = ("measured", "standard_reference", "qualitative")

# a standard number in brackets: （GB 24500）, （GB/T38750.1）, （TSG R0010）, （GB/Z32501）,
# (GB/T 40060)
_STANDARD_NUMBER = r"[（(]\s*[A-Z]{2,5}(?:\s*[/∕]\s*[TZ])?\s*[\dR][^（）()]*[）)]"

# ---- measured: a level, grade, star, number or limit ------------------------------------------
_NUM = r"\d+(?:\.\d+)?"
_UNIT = (
    r"(?:%|％|‰|℃|°C|kWh|kW|MW|GW|kV|kVA|Pa|MPa|mm|cm|km|m²|m³|m|t|h|W|"
    r"万千瓦|千瓦时|千瓦|兆瓦|瓦|千伏|万吨|吨|万立方米|立方米|平方米|公顷|亩|公里|千米|米|毫米|"
    r"度|小时|年|天|个|台|座|辆|人)"
)
MEASURED: tuple[tuple[str, re.Pattern[str]], ...] = (
    # a graded level of a standard, optionally with the standard number in front:
    # （GB 24500）规定的 1 级能效水平 / 2 级及以上能效水平 / 能耗等级 1 级值 / E0 级 / A 级及以上 /
    # 《…清洁生产评价指标体系》I级水平
    (
        "grade",
        re.compile(
            r"(?:" + _STANDARD_NUMBER + r"\s*(?:规定的|标准中|标准|中)?\s*)?"
            r"(?:(?<![0-9A-Za-z.])(?:[1-5]|[A-E]\d?|I{1,3}|[ⅠⅡⅢ])|[一二三](?=\s*级能效))\s*级"
            r"(?:及以上)?"
            r"(?:能效水平|能效等级|能效值|能效|等级要求|等级|值水平|水平|值|环保要求)?"
        ),
    ),
    # a green-building star rating: 1 星级及以上
    ("star", re.compile(r"(?:\d|[一二三])\s*星级?(?:及以上)?")),
    # a level a standard defines by name: 节能评价值, 热效率目标值, 先进值, 能效标杆水平
    (
        "named_level",
        re.compile(
            r"节能评价值(?:水平)?|热效率目标值(?:水平)?|目标值(?:水平|要求)|(?<!行业)先进值|能效标杆水平"
        ),
    ),
    # a comparison with a number: ≥ 200mm, 不低于 70%, ≤ 14000W
    (
        "limit",
        re.compile(
            r"(?:≥|≤|＞|＜|>|<|不低于|不高于|不超过|不少于|不大于|不小于|低于|高于|小于|大于)\s*"
            + _NUM
            + r"\s*"
            + _UNIT
            + r"?"
        ),
    ),
    # a size or capacity bound: 560kW 以下, 5 兆瓦及以上, 25 度以上
    ("bound", re.compile(_NUM + r"\s*" + _UNIT + r"\s*(?:及)?(?:以上|以下|以内)")),
    # a share: 70%
    ("share", re.compile(_NUM + r"\s*(?:%|％)")),
    # a refrigerant with zero ozone depletion potential: （ODP）为 0
    ("odp", re.compile(r"（ODP）\s*为\s*0(?![\d.])")),
)

# ---- standard reference: a named standard ------------------------------------------------------
STANDARD = re.compile(
    r"《[^《》]*》\s*"
    + _STANDARD_NUMBER  # 《…》（GB/T …）
    # a standard's title without its number; not a subsidy programme's work rules
    # (《农机专项鉴定产品购置补贴实施工作规范（试行）》)
    + r"|《(?![^《》]*补贴)[^《》]*(?:标准|规范|规程|导则|通则|技术要求|技术条件|技术指南|"
    r"规范条件|指标体系|评价规则|水质)(?:（[^（）》]*）)*\s*》"
    + r"|"
    + _STANDARD_NUMBER  # a bare standard number
)
_TITLE = re.compile(r"《[^《》]*》")

# ---- hand corrections after reading the rows: (code, row) or code -> (kind, basis, reason) ----
_GBT51350_LEVELS = (
    "measured",
    "超低能耗、近零能耗、零能耗",
    "the three graded levels of GB/T 51350 (ultra-low / nearly zero / zero energy building), any "
    "one of which qualifies, are named: a level, not only a standard (no number or 级 for the "
    "rules to find)",
)
OVERRIDES_2025: dict[tuple[str, str], tuple[str, str, str]] = {
    ("1.1.1", "2"): (
        "qualitative",
        "",
        "the rules read 「热效率目标值」 in the 备注 the item's rows share, but that clause is "
        "about low-calorific-value boilers (row 1, 3411); row 2 (3521) is coal gasification "
        "equipment, whose condition is 「达到行业领先水平」",
    ),
    ("6.1.3", "1"): (
        "measured",
        "全球升温潜能值小于 750",
        "the rules find 「小于 750」 in the 备注; the basis is widened to name the quantity "
        "(GWP of the refrigerant < 750; ODP 0)",
    ),
    **{("6.1.2", str(row)): _GBT51350_LEVELS for row in range(1, 7)},
}
OVERRIDES_2019: dict[str, tuple[str, str, str]] = {}


def _mask_titles(text: str) -> str:
    """The text with every 《title》 blanked (same length), so no level is read in a title."""
    return _TITLE.sub(lambda m: "《" + "\u3000" * (len(m[0]) - 2) + "》", text)


def classify(*texts: str) -> tuple[str, str]:
    """(kind, basis) of a condition from its texts, in order (条件/标准, then 备注)."""
    for text in texts:
        masked = _mask_titles(text)
        for _, pattern in MEASURED:  # the rules in order of precedence, each its first match
            if m := pattern.search(masked):
                return "measured", text[m.start() : m.end()].strip()
    for text in texts:
        if m := STANDARD.search(text):
            return "standard_reference", m[0].strip()
    return "qualitative", ""


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _apply(
    key: Any,
    kind: str,
    basis: str,
    overrides: Mapping[Any, tuple[str, str, str]],
    texts: tuple[str, ...],
    used: set[object],
) -> tuple[str, str]:
    if key in overrides:
        kind, basis, _reason = overrides[key]
        used.add(key)
    if kind not in KINDS:
        raise SystemExit(f"{key}: unknown kind {kind!r}")
    if (kind == "qualitative") != (not basis) or (basis and not any(basis in t for t in texts)):
        raise SystemExit(f"{key}: basis {basis!r} is not verbatim in the row (or kind mismatch)")
    return kind, basis


def classify_2025() -> list[list[str]]:
    out: list[list[str]] = []
    used: set[object] = set()
    for row in _read(ITEMS_2025):
        texts = (row["conditions_zh"], row["remarks_zh"])
        kind, basis = classify(*texts)
        kind, basis = _apply((row["code"], row["row"]), kind, basis, OVERRIDES_2025, texts, used)
        out.append([row["code"], row["row"], row["industry_code"], kind, basis])
    if unused := set(OVERRIDES_2025) - used:
        raise SystemExit(f"overrides for rows that do not exist: {sorted(unused)}")
    return out


_CODE_2019 = re.compile(r"(\d+\.\d+\.\d+)")


def classify_2019() -> list[list[str]]:
    out: list[list[str]] = []
    used: set[object] = set()
    for row in _read(ITEMS_2019):
        match = _CODE_2019.match(row["目录"])
        if not match:
            raise SystemExit(f"no code in {row['目录']!r}")
        code, texts = match[1], (row["说明"],)
        kind, basis = classify(*texts)
        kind, basis = _apply(code, kind, basis, OVERRIDES_2019, texts, used)
        out.append([code, kind, basis])
    if unused := set(OVERRIDES_2019) - used:
        raise SystemExit(f"overrides for items that do not exist: {sorted(unused)}")
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else HERE
    rows_2025 = classify_2025()
    rows_2019 = classify_2019()
    header_2025 = ["code", "row", "industry_code", "condition_kind", "basis"]
    _write(folder / OUT_2025.name, header_2025, rows_2025)
    _write(folder / OUT_2019.name, ["code", "condition_kind", "basis"], rows_2019)
    for name, rows, col in (("2025", rows_2025, 3), ("2019", rows_2019, 1)):
        counts = {k: sum(r[col] == k for r in rows) for k in KINDS}
        print(f"{name}: {len(rows)} rows, " + ", ".join(f"{k} {n}" for k, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
