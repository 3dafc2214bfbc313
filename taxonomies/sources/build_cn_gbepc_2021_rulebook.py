"""Generate taxonomies/cn_gbepc_2021.yaml: the legacy 2021 catalogue from the 2019 item texts.

    python taxonomies/sources/build_cn_gbepc_2021_rulebook.py [OUT]

Reads, beside this script:

* ``cn_gic_2019_items.csv`` — the 211 level-3 items of the 2019 Green Industry Guidance
  Catalogue with their official explanations (说明), a public transcription [S];
* ``cn_gic_2019_explanations.txt`` — ``pdftotext`` of the official explanations PDF (Annex 2 of
  发改环资〔2019〕293号): an item is ``verified`` when its code and name followed by its 说明 are
  found in it, else ``secondary``. Compared without whitespace and without page furniture (the
  page-number line that ends every page, and any running header or footer; see
  ``official_text``), so an item that runs over a page break is compared as printed;
* ``cn_gbepc_2021_criteria.yaml`` — header, evidence fields, corrections of the transcription,
  the items the 2021 catalogue removed, the activities and criteria per item, and the 2021 items
  not in 2019 (CCUS).

Items not given criteria get one attestation criterion ``cn_gbepc_<code>_met``; so do items with
criteria and ``attest: true`` (their 说明 has conditions the hand-written criteria do not cover).
Items without activities are reached by naming them (``cn_gbepc_2021_item``) — the 2019
catalogue has no GB/T 4754 codes. Removed items fail with a criterion that says so. A correction
re-splits a row's name and 说明 where the transcription cut them elsewhere than the PDF; it may
not change their text. Deterministic output.
"""

from __future__ import annotations

import csv
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from _generated_rulebook import attestation, squash, write  # beside this script

HERE = Path(__file__).resolve().parent
TARGET = HERE.parent / "cn_gbepc_2021.yaml"
CLAUSE = "绿色产业指导目录（2019年版）解释说明"
LEVEL = re.compile(r"(\d+(?:\.\d+)*)\.?\s*(.*)", re.S)


def attestation_field(code: str) -> str:
    return f"cn_gbepc_{code.replace('.', '_')}_met"


def official_text(raw: str) -> str:
    """The PDF text as printed, without page furniture, whitespace removed.

    ``pdftotext`` ends each page with a form feed, and the last line of page N is its number
    ``N``: that line is dropped (a page that does not end with its number stops the build, the
    text is then not the extraction this expects). A running header or footer, a line that opens
    or closes at least half the pages and at least three, is dropped from the page edges too
    (the 2019 PDF has none). Nothing else is removed: a digit-only line inside a page is text,
    and so is any character that differs from the transcription.
    """
    pages: list[list[str]] = []
    for number, page in enumerate(raw.split("\f"), start=1):
        lines = [line.strip() for line in page.splitlines() if line.strip()]
        if not lines:
            continue  # after the last form feed
        if lines[-1] != str(number):
            raise SystemExit(f"page {number} of the 2019 text does not end with its number")
        pages.append(lines[:-1])
    edges = Counter(edge for lines in pages if lines for edge in {lines[0], lines[-1]})
    running = {line for line, count in edges.items() if count >= max(3, len(pages) / 2)}
    kept: list[str] = []
    for lines in pages:
        while lines and lines[0] in running:
            lines = lines[1:]
        while lines and lines[-1] in running:
            lines = lines[:-1]
        kept += lines
    return squash("".join(kept))


def verbatim(code: str, name: str, explanation: str, official: str) -> bool:
    """Whether the item's heading followed by its 说明 is in the official text."""
    return squash(code + name + explanation) in official


def build() -> dict[str, Any]:
    overlay = yaml.safe_load((HERE / "cn_gbepc_2021_criteria.yaml").read_text(encoding="utf-8"))
    official = official_text((HERE / "cn_gic_2019_explanations.txt").read_text(encoding="utf-8"))
    with (HERE / "cn_gic_2019_items.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    fields = list(overlay["fields"])
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row in rows:
        heads = [LEVEL.fullmatch(squash(row[c])) for c in ("一级目录", "二级目录", "目录")]
        if not all(heads):
            raise SystemExit(f"cannot read the item codes of {row['目录']!r}")
        (c1, n1), (c2, n2), (code, name) = ((m[1], m[2]) for m in heads if m)
        explanation = row["说明"]
        fix = overlay["corrections"].get(code)
        if fix:  # the same characters, split between name and 说明 as in the PDF
            if squash(fix["name"] + fix["explanation"]) != squash(name + explanation):
                raise SystemExit(f"correction of {code} changes the text, not only its split")
            name, explanation = fix["name"], fix["explanation"]
        for level, level_name, parent in ((c1, n1, None), (c2, n2, c1)):
            if level not in seen:
                seen.add(level)
                heading: dict[str, Any] = {"code": level, "name": {"zh": level_name}}
                if parent:
                    heading["parent"] = parent
                items.append(heading)
        items.append(_item(code, name, c2, explanation, official, overlay, fields))
    named = set(overlay["items"]) | set(overlay["removed"]) | set(overlay["corrections"])
    unknown = named - {i["code"] for i in items}
    if unknown:
        raise SystemExit(f"not 2019 items: {sorted(unknown)}")
    items += overlay["extra_items"]
    header = dict(overlay["header"])
    header["notes"] = (
        "GENERATED by taxonomies/sources/build_cn_gbepc_2021_rulebook.py. Legacy China rulebook: "
        "governs loans approved before 2025-10-01 (the 2025 catalogue's transition rule). The "
        "2021 official text is not among the sources; its level IV reuses the 2019 Green Industry "
        "Guidance Catalogue's level-3 names, so the 211 items carry the 2019 codes, names and "
        "official explanations (verified where heading and explanation are found verbatim in "
        "the 2019 PDF text, page numbers aside, else secondary). Fossil-fuel clean utilisation "
        "(2019 3.3.1–3.3.3) was removed in 2021 and fails with a criterion saying so; CCUS was "
        "added (secondary). Items without "
        "greenscreen activities are reached by naming them in cn_gbepc_2021_item."
    )
    return {**header, "fields": fields, "items": items}


def _item(
    code: str,
    name: str,
    parent: str,
    explanation: str,
    official: str,
    overlay: dict[str, Any],
    fields: list[dict[str, Any]],
) -> dict[str, Any]:
    text = explanation.strip()
    found = verbatim(code, name, text, official)
    item: dict[str, Any] = {
        "code": code,
        "name": {"zh": name},
        "parent": parent,
        "verification": "verified" if found else "secondary",
    }
    own = overlay["items"].get(code)
    if code in overlay["removed"]:
        item["scope"] = {"claimed_only": True}
        item["criteria"] = [
            {
                "id": "removed-2021",
                "condition": "FALSE",
                "clause": "银发〔2021〕96号《绿色债券支持项目目录（2021年版）》",
                "threshold": "not in the 2021 catalogue",
                "text": {
                    "zh": "2021年版目录不再纳入煤炭等化石能源清洁利用项目",
                    "en": "The 2021 catalogue no longer includes clean use of fossil fuels",
                },
                "verification": "secondary",
            }
        ]
    elif own is not None and not own.get("attest"):
        item["scope"] = _scope(own)
        item["criteria"] = own["criteria"]
    else:
        item["scope"] = _scope(own) if own else {"claimed_only": True}
        criterion, field = attestation(
            attestation_field(code),
            clause=f"{CLAUSE} {code} {name}",
            threshold="the analyst confirms the item's 说明 (attestation)",
            text={"zh": text, "en": f"Meets the explanation (说明) of 2019 item {code}"},
            verification=item["verification"],
            description={
                "zh": f"符合《绿色产业指导目录（2019年版）》{code}「{name}」的解释说明",
                "en": f"Meets the explanation of 2019 catalogue item {code}",
            },
        )
        item["criteria"] = [*(own["criteria"] if own else []), criterion]
        fields.append(field)
    item["notes"] = f"说明: {text}"
    return item


HEAD = "# GENERATED by taxonomies/sources/build_cn_gbepc_2021_rulebook.py — do not edit by hand.\n"


def _scope(own: dict[str, Any]) -> dict[str, Any]:
    """Mapped activities, or reached by naming the item when it has criteria but no activity."""
    return {"activities": own["activities"]} if own.get("activities") else {"claimed_only": True}


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else TARGET
    book = build()
    write(target, book, HEAD)
    leaves = [i for i in book["items"] if "scope" in i]
    verified = sum(i.get("verification") == "verified" for i in leaves)
    print(f"{target}: {len(leaves)} items, {verified} verified against the 2019 text")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
