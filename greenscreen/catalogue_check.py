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

**Condition kinds** (issue 16). ``check_condition_kinds(book_id)`` reads the classification of
every condition row, ``taxonomies/sources/cn_gfsp_2025_condition_kinds.csv`` (per GB/T row of the
2025 item table) or ``cn_gic_2019_condition_kinds.csv`` (per item of the 2019 explanations, for
``cn_gbepc_2021``), written by ``classify_conditions.py``, and reports

* rows of the item table not classified, classified twice, or classified but not in the table;
  unknown kinds; a ``basis`` that is not a verbatim substring of its row's text (条件/标准 or
  备注, resp. 说明), or missing for a measured / standard-reference row;
* the counts by kind (``measured``, ``standard_reference``, ``qualitative``);
* encoding coverage: a measured row is *encoded* when the rulebook item has a measured criterion
  (one that reads a template field or a declared number or date, not a yes/no attestation; see
  ``Rulebook.criterion_kinds``) in force on that row: without ``applies_to``, or with the row's
  GB/T code in ``applies_to.industry_codes`` (a row without a code counts only when the criterion
  has no ``applies_to``). Incomplete coverage is reported, never an error.

``python -m greenscreen.catalogue_check --kinds [--verbose]`` prints these reports for both
catalogues (``--verbose`` lists the measured rows not encoded); without arguments they are
printed before the rulebook check.
"""

from __future__ import annotations

import csv
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from greenscreen._resources import bundled_dir

if TYPE_CHECKING:
    from greenscreen.rulebook import Rulebook

__all__ = [
    "CONDITION_KINDS",
    "ConditionKinds",
    "NameMismatch",
    "Report",
    "check_condition_kinds",
    "check_items",
    "main",
    "official_items",
]

_ITEM = re.compile(r"(\d\.\d{1,2}\.\d{1,2})\s*(.*)")
_HEADING = re.compile(r"\d\.(\d{1,2}\s|\S)")  # 1.节能降碳产业 / 1.1 高效节能装备制造
_AREA_SECTION = re.compile(r"^===== 列：领域 =====$(.*?)(?=^===== )", re.M | re.S)
_NOTES = "注："
_INDUSTRY_CODE = re.compile(r"[\d-]+")


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@dataclass(frozen=True)
class NameMismatch:
    """An item whose name differs between the item table (or rulebook) and the official text.

    Parameters
    ----------
    code : str
        The level-3 item code (``1.1.1``).
    items_name, official_name : str
        The two names, whitespace removed.
    """

    code: str
    items_name: str
    official_name: str


@dataclass(frozen=True)
class Report:
    """What :func:`check_items` found: codes, names, conditions, remarks and quotes compared.

    Parameters
    ----------
    official_codes, items_codes : int
        Level-3 items in the official text and in the item table.
    missing_in_items, missing_in_official : tuple of str
        Item codes found on one side only.
    name_mismatches : tuple of NameMismatch
    conditions_checked : int
        GB/T rows whose condition (条件/标准) was searched for.
    conditions_not_found, verified_flag_wrong : tuple of (str, str)
        (item code, row) not found; rows whose ``verified`` flag disagrees with the search.
    remarks_checked : int
    remarks_not_found : tuple of (str, str)
    quotes_checked : int
        A rulebook's criterion texts (zh) that quote the catalogue.
    quotes_not_found : tuple of (str, str)
        (item code, criterion id).
    """

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
        """No mismatch of any kind."""
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
        """The report as text, one finding a line.

        Returns
        -------
        str
        """
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
    text, the 领域 cell is the part of a line before the first gap of two or more spaces, on
    lines that start in the first column. A name continues over the following lines until the
    next item code, heading or the notes (注：).

    Parameters
    ----------
    text : str
        The official text, as extracted.

    Returns
    -------
    dict of str to str
        Item code → name.

    References
    ----------
    People's Bank of China et al., 银发〔2025〕132号 附件《绿色金融支持项目目录（2025年版）》;
    the text as extracted in ``taxonomies/sources/`` (see its README).
    """
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
    """Compare the item table or rulebook with the official text (see the module docstring).

    Parameters
    ----------
    items : str or pathlib.Path
        The item CSV (``taxonomies/sources/cn_gfsp_2025_items.csv``) or a rulebook YAML whose
        items carry ``rows``.
    official_text : str or pathlib.Path
        A UTF-8 text extraction of the official PDF.

    Returns
    -------
    Report

    References
    ----------
    People's Bank of China et al., 银发〔2025〕132号 附件《绿色金融支持项目目录（2025年版）》;
    the text as extracted in ``taxonomies/sources/`` (see its README).
    """
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


# ---- condition kinds (issue 16) ---------------------------------------------------------------
CONDITION_KINDS = ("measured", "standard_reference", "qualitative")
#: rulebook id -> (classification CSV, item table) in taxonomies/sources
_KIND_FILES = {
    "cn_gfsp_2025": ("cn_gfsp_2025_condition_kinds.csv", "cn_gfsp_2025_items.csv"),
    "cn_gbepc_2021": ("cn_gic_2019_condition_kinds.csv", "cn_gic_2019_items.csv"),
}
_CODE_2019 = re.compile(r"\d+\.\d+\.\d+")


@dataclass(frozen=True)
class ConditionRow:
    """A condition row of a catalogue: key ``1.1.1 row 1`` (2025) or ``1.1.1`` (2019)."""

    key: str
    code: str
    industry_code: str | None
    kind: str
    basis: str


@dataclass(frozen=True)
class ConditionKinds:
    """The classification of a catalogue's conditions and how much of it the rulebook encodes."""

    rulebook: str
    rows_total: int  # rows (2025) or items (2019) in the item table
    rows_classified: int  # distinct rows of the item table with a classification
    missing: tuple[str, ...] = ()  # in the item table, not classified
    duplicated: tuple[str, ...] = ()  # classified more than once
    unknown: tuple[str, ...] = ()  # classified, not in the item table
    bad_kind: tuple[str, ...] = ()
    basis_not_verbatim: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    #: measured rows with and without a measured criterion in force on them
    encoded: tuple[str, ...] = ()
    unencoded: tuple[str, ...] = ()
    measured_items: int = 0
    row_label: str = "rows"

    @property
    def ok(self) -> bool:
        """Every row classified once with a known kind and a verbatim basis (coverage aside)."""
        return not (
            self.missing
            or self.duplicated
            or self.unknown
            or self.bad_kind
            or self.basis_not_verbatim
        )

    @property
    def measured(self) -> int:
        """Rows (items, for 2019) classified ``measured``."""
        return self.counts.get("measured", 0)

    @property
    def encoded_share(self) -> float:
        """Share of the measured rows the rulebook encodes [fraction, 0–1]; 1 when none."""
        return len(self.encoded) / self.measured if self.measured else 1.0

    def render(self, verbose: bool = False) -> str:
        """The report as text.

        Parameters
        ----------
        verbose : bool
            Also list every measured row not encoded.

        Returns
        -------
        str
        """
        label = self.row_label
        where = f"; in {self.measured_items} items" if label == "rows" else ""
        lines = [
            f"{self.rulebook}: {label} classified: {self.rows_classified} of {self.rows_total}",
            *(f"  not classified: {key}" for key in self.missing),
            *(f"  classified twice: {key}" for key in self.duplicated),
            *(f"  not in the item table: {key}" for key in self.unknown),
            *(f"  unknown kind: {key}" for key in self.bad_kind),
            *(f"  basis not verbatim: {key}" for key in self.basis_not_verbatim),
            "  by kind: " + ", ".join(f"{k} {self.counts.get(k, 0)}" for k in CONDITION_KINDS),
            f"  measured {label} encoded: {len(self.encoded)} of {self.measured} "
            f"({self.encoded_share:.0%}{where})",
        ]
        if verbose:
            lines += [f"  not encoded: {key}" for key in self.unencoded]
        elif self.unencoded:
            lines.append(f"  ({len(self.unencoded)} not encoded; --verbose lists them)")
        return "\n".join(lines)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _table_rows(
    book_id: str, items_csv: Path
) -> dict[str, tuple[str, str | None, tuple[str, ...]]]:
    """key -> (item code, GB/T code or None, the texts a basis may quote) of the item table."""
    out: dict[str, tuple[str, str | None, tuple[str, ...]]] = {}
    for row in _read_csv(items_csv):
        if book_id == "cn_gbepc_2021":
            match = _CODE_2019.match(row["目录"])
            code = match[0] if match else row["目录"]
            out[code] = (code, None, (row["说明"],))
        else:
            industry = row["industry_code"].strip()
            out[f"{row['code']} row {row['row']}"] = (
                row["code"],
                industry if industry not in ("", "-") else None,
                (row["conditions_zh"], row["remarks_zh"]),
            )
    return out


def check_condition_kinds(
    book_id: str,
    rulebook: Rulebook | None = None,
    sources: str | Path | None = None,
    kinds_csv: str | Path | None = None,
) -> ConditionKinds:
    """Check a catalogue's condition classification and measure what the rulebook encodes.

    See the module docstring for the checks.

    Parameters
    ----------
    book_id : {"cn_gfsp_2025", "cn_gbepc_2021"}
        The catalogue rulebook (``cn_gbepc_2021`` is classified per item of the 2019
        explanations).
    rulebook : Rulebook, optional
        The rulebook whose measured criteria count as encoding; default the bundled one.
    sources : str or pathlib.Path, optional
        The folder with the classification and item table; default
        ``taxonomies/sources``.
    kinds_csv : str or pathlib.Path, optional
        Another classification file to check.

    Returns
    -------
    ConditionKinds

    Raises
    ------
    ValueError
        No classification exists for ``book_id``.
    """
    if book_id not in _KIND_FILES:
        raise ValueError(f"no condition classification for {book_id!r}")
    folder = Path(sources) if sources else bundled_dir("taxonomies") / "sources"
    kinds_name, items_name = _KIND_FILES[book_id]
    table = _table_rows(book_id, folder / items_name)
    seen: dict[str, ConditionRow] = {}
    duplicated: list[str] = []
    unknown: list[str] = []
    bad_kind: list[str] = []
    not_verbatim: list[str] = []
    for row in _read_csv(Path(kinds_csv) if kinds_csv else folder / kinds_name):
        key = row["code"] if book_id == "cn_gbepc_2021" else f"{row['code']} row {row['row']}"
        if key not in table:
            unknown.append(key)
            continue
        if key in seen:
            duplicated.append(key)
            continue
        code, industry, texts = table[key]
        kind, basis = row["condition_kind"], row["basis"]
        seen[key] = ConditionRow(key, code, industry, kind, basis)
        if kind not in CONDITION_KINDS:
            bad_kind.append(key)
        if (kind != "qualitative" and not basis) or (basis and not any(basis in t for t in texts)):
            not_verbatim.append(key)
    if rulebook is None:
        from greenscreen.rulebook import load_rulebook

        rulebook = load_rulebook(book_id)
    # item code -> the industry-code sets of its measured criteria (None: no applies_to)
    measured: dict[str, list[frozenset[str] | None]] = {}
    for item, criterion, kind in rulebook.criterion_kinds():
        if kind == "measured":
            where = criterion.applies_to
            measured.setdefault(item.code, []).append(
                frozenset(where.industry_codes) if where else None
            )
    encoded: list[str] = []
    unencoded: list[str] = []
    for key, cond in seen.items():
        if cond.kind != "measured":
            continue
        in_force = any(
            codes is None or (cond.industry_code is not None and cond.industry_code in codes)
            for codes in measured.get(cond.code, [])
        )
        (encoded if in_force else unencoded).append(key)
    return ConditionKinds(
        rulebook=book_id,
        rows_total=len(table),
        rows_classified=len(seen),
        missing=tuple(key for key in table if key not in seen),
        duplicated=tuple(duplicated),
        unknown=tuple(unknown),
        bad_kind=tuple(bad_kind),
        basis_not_verbatim=tuple(not_verbatim),
        counts={k: sum(c.kind == k for c in seen.values()) for k in CONDITION_KINDS},
        encoded=tuple(encoded),
        unencoded=tuple(unencoded),
        measured_items=len({c.code for c in seen.values() if c.kind == "measured"}),
        row_label="items" if book_id == "cn_gbepc_2021" else "rows",
    )


def condition_summary(book: Rulebook) -> ConditionKinds | None:
    """The classification report for a China catalogue rulebook.

    Parameters
    ----------
    book : Rulebook

    Returns
    -------
    ConditionKinds or None
        None for another rulebook, or when the bundled sources are not there.
    """
    if book.id not in _KIND_FILES:
        return None
    try:
        return check_condition_kinds(book.id, rulebook=book)
    except (OSError, KeyError):
        return None


def main(argv: list[str] | None = None) -> int:
    """The command line: ``python -m greenscreen.catalogue_check [--kinds] [--verbose]
    [ITEMS_CSV|RULEBOOK_YAML OFFICIAL_TXT]``.

    Parameters
    ----------
    argv : list of str, optional
        The arguments; default ``sys.argv[1:]``. Without files: the bundled rulebook against
        the bundled column text, after the condition-kind reports.

    Returns
    -------
    int
        The exit code: 0 all found, 1 a mismatch, 2 a usage error.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = any(a in ("-v", "--verbose") for a in args)
    kinds_only = "--kinds" in args
    args = [a for a in args if a not in ("-v", "--verbose", "--kinds")]
    kinds_ok = True
    if kinds_only or not args:
        for book_id in _KIND_FILES:
            kinds = check_condition_kinds(book_id)
            print(kinds.render(verbose=verbose))
            kinds_ok = kinds_ok and kinds.ok
        if kinds_only:
            print("OK" if kinds_ok else "MISMATCH")
            return 0 if kinds_ok else 1
    if not args:
        taxonomies = bundled_dir("taxonomies")
        args = [
            str(taxonomies / "cn_gfsp_2025.yaml"),
            str(taxonomies / "sources" / "cn_gfsp_2025_catalogue_columns.txt"),
        ]
    if len(args) != 2:
        print(
            "usage: python -m greenscreen.catalogue_check [--kinds] [--verbose] "
            "[ITEMS_CSV|RULEBOOK_YAML OFFICIAL_TXT]",
            file=sys.stderr,
        )
        return 2
    report = check_items(args[0], args[1])
    if not kinds_ok:
        print("condition kinds: MISMATCH")
    print(report.render())
    return 0 if report.ok and kinds_ok else 1


if __name__ == "__main__":
    sys.exit(main())
