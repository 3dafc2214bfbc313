"""Generate greenscreen/data/cities.csv: prefecture- and county-level names → province.

    python taxonomies/sources/build_cities.py

Source: the 2023 统计用区划代码 of the National Bureau of Statistics (cut-off 2023-06-30,
published 2023-09-11) as kept by github.com/modood/Administrative-divisions-of-China
(dist/cities.csv and dist/areas.csv, commit 57a0aa9, WTFPL), copied beside this script as
divisions/nbs_2023_cities.csv and divisions/nbs_2023_areas.csv.

Each name is written with its level (prefecture or county), its province's GB/T 2260 code and
whether it is unambiguous: a name (or its short form without the 市/地区/盟/自治州/县/区 suffix)
found in two provinces (朝阳区: Beijing and Changchun) is kept with ``ambiguous`` so the reader
can say so instead of guessing. Placeholders (市辖区, 县, 省直辖县级行政区划) are left out.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parents[1] / "greenscreen" / "data" / "cities.csv"
PLACEHOLDERS = {"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"}
# suffixes a writer leaves out (宝鸡 for 宝鸡市); the short form must keep two characters
SUFFIX = re.compile(r"(?:特别行政区|自治州|自治县|自治旗|地区|林区|新区|市|盟|县|区|旗)$")


def main() -> None:
    rows: list[tuple[str, str, str, str]] = []  # name, level, province code, official name
    for file, level in (("nbs_2023_cities.csv", "prefecture"), ("nbs_2023_areas.csv", "county")):
        with (HERE / "divisions" / file).open(encoding="utf-8", newline="") as handle:
            for rec in csv.DictReader(handle):
                name = rec["name"].strip()
                if name in PLACEHOLDERS:
                    continue
                province = f"{rec['provinceCode']}0000"
                rows.append((name, level, province, name))
                short = SUFFIX.sub("", name)
                if short != name and len(short) >= 2:
                    rows.append((short, level, province, name))
    provinces: dict[str, set[str]] = {}
    for name, _, province, _ in rows:
        provinces.setdefault(name, set()).add(province)
    seen: set[tuple[str, str]] = set()
    out = []
    for name, level, province, official in sorted(rows, key=lambda r: (r[0], r[1] != "prefecture")):
        if (name, province) in seen:
            continue
        seen.add((name, province))
        ambiguous = len(provinces[name]) > 1
        out.append([name, level, province, official, "yes" if ambiguous else ""])
    with OUT.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["name", "level", "province_code", "official_name", "ambiguous"])
        writer.writerows(out)
    print(f"{OUT}: {len(out)} names, {sum(1 for r in out if r[4])} ambiguous")


if __name__ == "__main__":
    main()
