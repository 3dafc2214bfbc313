"""Rulebooks: versioned YAML data files of items and criteria, validated on load.

A rulebook (a taxonomy, an exclusion list, loan principles, a crosswalk) lists **items** — the
activities it covers — each with a **scope** (which projects it applies to) and **criteria**
(conditions on input fields, each with its clause and verification status). Conditions are SQL
boolean expressions (``power_density_w_m2 > 5``), checked on a sqlglot syntax tree and compiled
by polars (``pl.sql_expr``); SQL's NULL logic turns a missing input into "unknown". Nothing in a
file is ever executed as code: the loader allows only column names, literals, operators and a
short list of pure functions, and bounds the size of files and conditions (see ``MAX_*``).

See ``taxonomies/README.md`` for the file format with an example.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from greenscreen import _cache
from greenscreen._resources import bundled_dir
from greenscreen.errors import RulebookError, did_you_mean
from greenscreen.schema import FIELDS
from greenscreen.vocabularies import activity_ids, provinces

_T = TypeVar("_T")

SCHEMA_TYPE = "greenscreen.rulebook"
SCHEMA_VERSION = 1

Verification = Literal["verified", "secondary", "unverified"]
Status = Literal[
    "aligned", "eligible", "not_eligible", "excluded", "not_excluded", "insufficient_data"
]
#: Every status, in the order reports and the command line show them (best first; the
#: report layer keys its colours by these).
STATUSES: tuple[str, ...] = (
    "aligned",
    "eligible",
    "insufficient_data",
    "excluded",
    "not_excluded",
    "not_eligible",
)
#: The parts of an EU-style alignment test: a rulebook whose criteria name them reports
#: ``R__sc_met`` (the substantial-contribution result) beside its status.
Component = Literal["substantial_contribution", "dnsh", "minimum_safeguards"]

#: Inputs the engine derives before evaluation; rulebooks may use them like template fields.
DERIVED_INPUTS: dict[str, tuple[pl.DataType, str]] = {
    "storage_duration_h": (pl.Float64(), "storage_energy_mwh / storage_power_mw [h]"),
    "generation_mwh": (
        pl.Float64(),
        "annual_generation_mwh, else capacity_mw × full_load_hours [MWh/yr]",
    ),
    "industry_class": (pl.String(), "industry_code without its section letter, e.g. 4416"),
}


def generation_mwh(columns: Sequence[str] = ()) -> pl.Expr:
    """Annual generation [MWh/yr]: ``annual_generation_mwh``, else ``capacity_mw`` ×
    ``full_load_hours``. Read from the ``generation_mwh`` column when ``columns`` has it (the
    screened results carry it: derived once, by the engine, and read by emissions, appraisal
    and the packs)."""
    if "generation_mwh" in columns:
        return pl.col("generation_mwh")
    return pl.coalesce(
        pl.col("annual_generation_mwh"), pl.col("capacity_mw") * pl.col("full_load_hours")
    ).alias("generation_mwh")


# SQL functions a condition may call: pure, no I/O. Anything else is rejected at load.
_FUNCTIONS = {"coalesce", "abs", "lower", "upper", "length", "round", "greatest", "least", "nullif"}
_FORBIDDEN_WORDS = {"select", "from", "join", "union", "with", "into", "over", "table"}
# string literals, comments and quoted identifiers, matched left to right: a comment or a quoted
# name must not hide a function call from the allowlist (sqrt/**/(x), "read_csv"('f'))
_TOKENS = re.compile(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?(?:\*/|$)|\"(?:[^\"]|\"\")*\"|`[^`]*`", re.S)
#: a boolean named after a standard and one of its levels (TSG 91 热效率目标值, GB 19762 节能评价值)
_STANDARD_LEVEL = re.compile(r"(?:gbt?|tsg_?[a-z]?)\d\w*_(?:target|evaluation)_(?:value_)?met")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


#: template fields that identify a project rather than measure it (see criterion_kinds)
_IDENTIFYING = {
    "project_id",
    "project_name",
    "borrower",
    "description",
    "activity",
    "industry_code",
    "industry_class",
    "nace_code",
    "country",
    "province",
    "grid_region",
    "currency",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Model):
    """A bilingual text; at least one language."""

    zh: str | None = None
    en: str | None = None

    @model_validator(mode="after")
    def _one_language(self) -> Text:
        if not (self.zh or self.en):
            raise ValueError("needs zh or en text")
        return self

    def get(self, lang: str = "en") -> str:
        """The text in a language, else in the other one.

        Parameters
        ----------
        lang : {"en", "zh"}

        Returns
        -------
        str
        """
        return (self.en if lang == "en" else self.zh) or self.zh or self.en or ""


class FieldDecl(_Model):
    """An evidence field a rulebook needs beyond the template (e.g. a DNSH attestation)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: Literal["boolean", "number", "text", "date"]
    description: Text
    unit: str | None = None
    #: the range a number may take (default: what its unit implies, see :meth:`bounds`)
    minimum: float | None = None
    maximum: float | None = None

    def bounds(self) -> tuple[float | None, float | None]:
        """The range a value is read in; a value outside it is not used (the decision stays
        undecided and asks for the field again). Declared bounds win; otherwise a graded
        standard's grade is ≥ 1 (1 is best), a fraction is 0–1, a year 1800–2100, and any
        other quantity (capacities, efficiencies, GWP, emissions) is ≥ 0.

        Returns
        -------
        low, high : float or None
            In the field's unit; None where open.
        """
        if self.type != "number":
            return None, None
        unit = (self.unit or "").strip()
        low: float | None
        high: float | None
        if self.name.endswith("_grade") or unit == "grade":
            low, high = 1.0, None
        elif unit.startswith("fraction"):
            low, high = 0.0, 1.0
        elif unit == "year":
            low, high = 1800.0, 2100.0
        else:
            low, high = 0.0, None
        return (
            self.minimum if self.minimum is not None else low,
            self.maximum if self.maximum is not None else high,
        )

    def range_text(self) -> str:
        """The range a value is read in (:meth:`bounds`), as text.

        Returns
        -------
        str
            ``≥ 0 and ≤ 1``; empty for a field that is not a number.
        """
        low, high = self.bounds()
        parts = [f"≥ {low:g}" if low is not None else "", f"≤ {high:g}" if high is not None else ""]
        return " and ".join(p for p in parts if p)


class AppliesTo(_Model):
    """The GB/T rows of an item a criterion concerns (a catalogue condition printed on one row
    applies to that row only): a project is concerned when its ``industry_code`` is one of
    ``industry_codes``; without an industry code, when its activity is one of ``activities``
    (the activities whose rows these are) or it has no activity either (its row is unknown,
    so the condition is asked)."""

    industry_codes: list[str] = Field(min_length=1)
    activities: list[str] = []


class Criterion(_Model):
    """One condition of an item, with the clause it comes from."""

    id: str
    condition: str
    clause: str
    text: Text
    verification: Verification
    threshold: str | None = None
    #: criteria sharing a label are alternatives (any one suffices); groups and lone
    #: criteria are all required
    alternative: str | None = None
    #: False: evaluated and reported, but does not decide the status (e.g. EU DNSH evidence)
    gate: bool = True
    level: Literal["shall", "should"] = "shall"
    since: dt.date | None = None
    until: dt.date | None = None
    #: only for projects in these GB/T rows (elsewhere the criterion is not in force)
    applies_to: AppliesTo | None = None
    #: which part of an alignment test the criterion is (EU: SC, DNSH, minimum safeguards)
    component: Component | None = None


class Scope(_Model):
    """Which projects an item applies to: activities, GB/T 4754 codes and/or a condition."""

    activities: list[str] = []
    industry_codes: list[str] = []
    #: With activities: does a given industry code have to be one of ``industry_codes``? Not
    #: when a row of the item names no code (e.g. 4.3.2's 各用电、用热（冷）行业).
    industry_confirms: bool = True
    #: Without activities: do the codes reach only projects that give no activity? (A catalogue
    #: item named by an industry's rows should not claim a project whose activity says what it
    #: is, e.g. a coal unit in 4411 火力发电; a flag such as CBAM exposure should.)
    codes_only_without_activity: bool = False
    condition: str | None = None
    #: a regional rule: only projects in these Chinese provinces (English names as in
    #: ``greenscreen/data/provinces.csv``); a Chinese project without a province is unknown
    #: for it (insufficient_data naming ``province``), a project outside China out of scope
    provinces: list[str] = []
    all_projects: bool = False
    #: reached only by a project that names the item in the rulebook's ``item_field``
    claimed_only: bool = False

    @model_validator(mode="after")
    def _says_something(self) -> Scope:
        if not (
            self.activities
            or self.industry_codes
            or self.condition
            or self.provinces
            or self.all_projects
            or self.claimed_only
        ):
            raise ValueError(
                "scope needs activities, industry_codes, condition, all_projects or claimed_only"
            )
        return self


class XRef(_Model):
    """A cross-reference from an item to an item of another rulebook (checked when both load)."""

    rulebook: str
    item: str


class IndustryRow(_Model):
    """One GB/T 4754 row of a China catalogue item as printed: the code (None where the
    catalogue prints '-' or nothing), the class name, 条件/标准, 备注 and the GHG mark."""

    industry_code: str | None = None
    industry_name: str
    conditions: str | None = None
    remarks: str | None = None
    ghg_mark: Literal["√", "√√"] | None = None


class Item(_Model):
    """One item of a rulebook: a catalogue entry, an exclusion or a test.

    An item with a ``scope`` is evaluated (a leaf); without one it is a heading that groups
    others. ``effect: flag`` items add to ``R__flags`` instead of deciding the status.
    """

    code: str
    name: Text
    parent: str | None = None
    scope: Scope | None = None  # None: a heading that only groups other items
    #: the catalogue's own rows, verbatim (checked against the official text)
    rows: list[IndustryRow] = []
    criteria: list[Criterion] = []
    effect: Literal["status", "flag"] = "status"
    verification: Verification = "unverified"
    ghg_mark: Literal["√", "√√"] | None = None
    #: where the rows' marks differ: the mark of the rows an activity corresponds to
    activity_ghg_marks: dict[str, Literal["√", "√√"]] = {}
    xref: list[XRef] = []
    since: dt.date | None = None
    until: dt.date | None = None
    notes: str | None = None


class StatusMap(_Model):
    """How item results map to statuses (:data:`STATUSES`) for this kind of rulebook."""

    in_scope_pass: Status
    in_scope_fail: Status
    out_of_scope: Status


_DEFAULT_STATUSES = {
    "taxonomy": StatusMap(
        in_scope_pass="eligible", in_scope_fail="not_eligible", out_of_scope="not_eligible"
    ),
    "exclusion": StatusMap(
        in_scope_pass="excluded", in_scope_fail="not_excluded", out_of_scope="not_excluded"
    ),
    "principles": StatusMap(
        in_scope_pass="aligned", in_scope_fail="not_eligible", out_of_scope="not_eligible"
    ),
}


class ApprovalWindow(_Model):
    """Loans approved in [from, before) are governed by this rulebook."""

    from_: dt.date | None = Field(default=None, alias="from")
    before: dt.date | None = None


class Rulebook(_Model):
    """A validated rulebook file."""

    schema_type: Literal["greenscreen.rulebook"]
    schema_version: int
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    version: str
    kind: Literal["taxonomy", "exclusion", "principles"]
    title: Text
    issuer: str
    document: str
    adopted: dt.date | None = None
    effective: dt.date | None = None
    source_url: str
    verification: Verification
    statuses: StatusMap | None = None
    applies_to_approvals: ApprovalWindow = ApprovalWindow()
    #: rulebooks whose results (``R__status``, ``R__item``) this one's conditions read
    depends_on: list[str] = []
    fields: list[FieldDecl] = []
    #: an input naming the item a project claims (e.g. ``4.2.4``): a project that names one is
    #: screened under that item only, whatever its activity or industry code
    item_field: str | None = None
    items: list[Item]
    notes: str | None = None
    #: set by the loader, not the file (so not in the JSON schema)
    path: SkipJsonSchema[str | None] = None

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(f"schema_version {value} is not supported (expected {SCHEMA_VERSION})")
        return value

    @property
    def status_map(self) -> StatusMap:
        """The rulebook's :class:`StatusMap`: its own, else its ``kind``'s default."""
        return self.statuses or _DEFAULT_STATUSES[self.kind]

    @property
    def leaf_items(self) -> list[Item]:
        """The items that are evaluated (those with a scope), in file order."""
        return [item for item in self.items if item.scope is not None]

    def item(self, code: str) -> Item:
        """The item with a code.

        Parameters
        ----------
        code : str
            The item's code (``4.2.4``, ``LH-1``).

        Returns
        -------
        Item

        Raises
        ------
        KeyError
            No item has that code.
        """
        for item in self.items:
            if item.code == code:
                return item
        raise KeyError(code)

    def criterion_kinds(self) -> list[tuple[Item, Criterion, str]]:
        """Every criterion of the leaf items with its kind: ``measured``, ``attestation`` or
        ``crosswalk`` (see :meth:`counts`).

        Returns
        -------
        list of (Item, Criterion, str)
        """
        # a declared number or date (a refrigerant GWP, a measured PUE) is measured too, and so
        # is a declared grade or class a standard assigns (``gbt51129_grade``: A/AA/AAA); the
        # fields that say what a project is (activity, industry code, region) scope, not measure
        # and so is a boolean saying a standard's named level that is not a grade is reached
        # (``tsg_r0010_target_value_met``: the standard defines the value, a test report shows it)
        graded = {
            f.name
            for f in self.fields
            if f.name.endswith(("_grade", "_class")) or _STANDARD_LEVEL.fullmatch(f.name)
        }
        declared = {f.name for f in self.fields if f.type in ("boolean", "text")} - graded
        template = (
            (set(FIELDS) | set(DERIVED_INPUTS) | {f.name for f in self.fields})
            - declared
            - _IDENTIFYING
        )
        out: list[tuple[Item, Criterion, str]] = []
        for item in self.leaf_items:
            for criterion in item.criteria:
                words = set(_WORD.findall(_TOKENS.sub(_neutral, criterion.condition)))
                if words & template:
                    kind = "measured"
                elif words & declared:
                    kind = "attestation"
                else:
                    kind = "crosswalk"
                out.append((item, criterion, kind))
        return out

    def counts(self) -> dict[str, Any]:
        """Items, GB/T 4754 rows in scopes, criteria by kind and the share verified.

        A criterion is *measured* when it reads a template or derived input or a number/date
        the rulebook declares (values the project data carries), *attestation* when it reads
        only yes/no or document evidence fields the rulebook declares (a fact the analyst
        confirms), and *crosswalk* otherwise (another rulebook's result).

        Returns
        -------
        dict
            ``items``, ``industry_rows``, ``criteria``, ``measured``, ``attestation``,
            ``crosswalk``, ``verified_share`` and ``criteria_verified_share`` [fraction].
        """
        leaves = self.leaf_items
        criteria = [c for item in leaves for c in item.criteria]
        verified = sum(item.verification == "verified" for item in leaves)
        kinds = {"measured": 0, "attestation": 0, "crosswalk": 0}
        for _, _, kind in self.criterion_kinds():
            kinds[kind] += 1
        return {
            "items": len(leaves),
            "industry_rows": sum(
                len(i.rows) or len(i.scope.industry_codes) for i in leaves if i.scope
            ),
            "criteria": len(criteria),
            **kinds,
            "verified_share": verified / len(leaves) if leaves else 0.0,
            "criteria_verified_share": (
                sum(c.verification == "verified" for c in criteria) / len(criteria)
                if criteria
                else 0.0
            ),
        }


# --------------------------------------------------------------------------------------------
# Loading
@dataclass(frozen=True)
class Where:
    """Where a condition is, for the error it may raise: file, item (or award), criterion.

    Parameters
    ----------
    file : str
        The file's name.
    item : str, optional
        The item's code (a programme's award code).
    criterion : str, optional
        The criterion's id, or the part of the item (``scope``, ``amount.base``).
    """

    file: str
    item: str | None = None
    criterion: str | None = None


def load_rulebook(source: str | Path) -> Rulebook:
    """Load and validate one rulebook.

    Parameters
    ----------
    source : str or pathlib.Path
        A bundled rulebook's id (``"cn_exclusions"``) or a YAML file.

    Returns
    -------
    Rulebook

    Raises
    ------
    RulebookError
        Naming the file, item and criterion, and what was expected.
    """
    path = Path(source)
    if not path.suffix:
        path = bundled_dir("taxonomies") / f"{source}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in _rulebook_files(bundled_dir("taxonomies")))
            raise RulebookError(
                f"no bundled rulebook '{source}' (available: {', '.join(known)})"
                + did_you_mean(str(source), known)
            )
    return _load_file(path)


def load_rulebooks(directory: str | Path | None = None, *, extra: bool = True) -> list[Rulebook]:
    """All rulebooks: the bundled ones, replaced or extended by those in ``directory``.

    A file in ``directory`` whose ``id`` matches a bundled rulebook replaces it (a bank's
    compliance team maintains its own copy); other ids are added. Cross-references and the
    types of evidence fields shared between rulebooks are checked across the set.

    Parameters
    ----------
    directory : str or pathlib.Path, optional
        A folder of rulebook files (YAML files whose ``schema_type`` is
        ``greenscreen.rulebook``; other files are ignored).
    extra : bool
        False loads only ``directory``, without the bundled rulebooks.

    Returns
    -------
    list of Rulebook

    Raises
    ------
    RulebookError
        A missing folder or an invalid file.
    """
    books: dict[str, Rulebook] = {}
    sources = [] if (directory and not extra) else [bundled_dir("taxonomies")]
    if directory:
        folder = Path(directory)
        if not folder.is_dir():
            raise RulebookError(f"rulebook directory not found: {folder}")
        sources.append(folder)
    for folder in sources:
        for path in _rulebook_files(folder):
            book = _load_file(path)
            books[book.id] = book
    _check_xrefs(books)
    _check_declared_types(books)
    return list(books.values())


def _check_xrefs(books: dict[str, Rulebook]) -> None:
    """Cross-references must name an item of a loaded rulebook (others cannot be checked)."""
    for book in books.values():
        for item in book.items:
            for ref in item.xref:
                target = books.get(ref.rulebook)
                if target is not None and ref.item not in {i.code for i in target.items}:
                    raise RulebookError(
                        f"xref to {ref.rulebook} item '{ref.item}', which that rulebook lacks",
                        file=Path(book.path).name if book.path else book.id,
                        item=item.code,
                    )


def check_field_decls(fields: Iterable[FieldDecl], file: str) -> None:
    """Declared evidence fields are new names, each declared once.

    A template or derived input keeps its own type in the engine, so redeclaring it
    (``capacity_mw`` as text) would let a condition pass the type check and stop the screen.

    Parameters
    ----------
    fields : iterable of FieldDecl
        A rulebook's or programme's ``fields``.
    file : str
        Its file name, for the error.

    Raises
    ------
    RulebookError
    """
    seen: set[str] = set()
    for decl in fields:
        if decl.name in FIELDS or decl.name in DERIVED_INPUTS:
            raise RulebookError(
                f"fields: '{decl.name}' is a template input; declare only new evidence fields",
                file=file,
            )
        if decl.name in seen:
            raise RulebookError(f"fields: '{decl.name}' is declared twice", file=file)
        seen.add(decl.name)


def _check_declared_types(books: dict[str, Rulebook]) -> None:
    """An evidence field shared by rulebooks has one type (the engine types its column once)."""
    types: dict[str, tuple[str, str]] = {}
    for book in books.values():
        for decl in book.fields:
            first = types.setdefault(decl.name, (decl.type, book.id))
            if first[0] != decl.type:
                raise RulebookError(
                    f"fields: '{decl.name}' is declared {decl.type} here and {first[0]} in "
                    f"rulebook {first[1]}",
                    file=Path(book.path).name if book.path else book.id,
                )


def _rulebook_files(folder: Path) -> list[Path]:
    """YAML files in ``folder`` whose schema_type says they are rulebooks."""
    return [path for path in sorted(folder.glob("*.y*ml")) if has_schema_type(path, SCHEMA_TYPE)]


def has_schema_type(path: Path, schema_type: str) -> bool:
    """Does the file say ``schema_type: <schema_type>`` (a top-level key, anywhere)?

    Parameters
    ----------
    path : pathlib.Path
        A YAML file (read as a bounded regular file, :data:`MAX_FILE_BYTES`).
    schema_type : str
        ``greenscreen.rulebook`` or ``greenscreen.programme``.

    Returns
    -------
    bool
    """
    text = _read_bytes(path).decode("utf-8", errors="replace")
    return bool(re.search(rf"^schema_type:\s*['\"]?{re.escape(schema_type)}\b", text, re.M))


# Limits on a rulebook or programme file, far above the shipped ones (largest: cn_gfsp_2025.yaml,
# about 1 MB, 50,000 YAML values, 6 levels deep, 318 items, 8 criteria in an item): a file
# beyond them is refused before it is built, not left to exhaust memory or the stack.
MAX_FILE_BYTES = 20 * 1024 * 1024
#: YAML values (scalars, lists, mappings) once aliases are expanded: 48 KB of nested aliases
#: expanded to 7.4 GB
MAX_YAML_VALUES = 1_000_000
MAX_YAML_DEPTH = 50
#: items of a rulebook, awards of a programme
MAX_ITEMS = 2_000
#: criteria of an item: the engine packs each one's state in 2 bits of an Int64
MAX_CRITERIA = 31


def _read_bytes(path: Path) -> bytes:
    """A regular file's bytes, at most MAX_FILE_BYTES of them.

    Opened without blocking and checked before reading: a FIFO would hang the open, a
    symlink to /dev/zero would never end, a directory cannot be read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError as exc:
        raise RulebookError("file not found", file=str(path)) from exc
    except OSError as exc:
        raise RulebookError(f"cannot read: {exc.strerror or exc}", file=path.name) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RulebookError(
                "not a regular file (a directory, FIFO, device or a link to one)", file=path.name
            )
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise RulebookError(
            f"larger than {MAX_FILE_BYTES // 2**20} MB (the limit for a rulebook file)",
            file=path.name,
        )
    return data


def read_yaml(path: Path) -> Any:
    """Read a rulebook or programme file.

    A bounded regular file (:data:`MAX_FILE_BYTES`), safe YAML (a ``!!python/…`` tag is an
    error and constructs nothing) whose size, depth and keys are checked before it is built
    (:data:`MAX_YAML_VALUES`, :data:`MAX_YAML_DEPTH`, no key twice in a mapping).

    Parameters
    ----------
    path : pathlib.Path

    Returns
    -------
    object
        The document (a mapping, for a valid file).

    Raises
    ------
    RulebookError
        Not a readable regular file within the limits, or not valid YAML.
    """
    return _yaml_document(_read_bytes(path), path.name)


def _yaml_document(data: bytes, file: str) -> Any:
    """A file's bytes as YAML, checked as :func:`read_yaml` says."""
    from greenscreen import _yaml  # PyYAML, imported when a file is parsed only (see _yaml)

    return _yaml.document(data, file)


def read_checked(path: Path, kind: str, model: type[_T], check: Callable[[Any], _T]) -> _T:
    """Read a rulebook or programme file (:func:`read_yaml`) and build and check its object, or
    take that object from the load cache when the file's bytes and greenscreen's code are those
    it was built from (``greenscreen._cache``; ``GREENSCREEN_CACHE_DIR``).

    Parameters
    ----------
    path : pathlib.Path
    kind : {"rulebook", "programme"}
    model : type
        The class ``check`` returns.
    check : callable
        Builds the object from the YAML document and checks it; raises RulebookError.

    Returns
    -------
    object
        ``check``'s result, or an equal one from the cache.

    Raises
    ------
    RulebookError
        As :func:`read_yaml` and ``check`` raise it (a file that fails is never cached).
    """
    data = _read_bytes(path)
    return _cache.load_checked(
        kind, path, data, lambda: check(_yaml_document(data, path.name)), model
    )


def _load_file(path: Path) -> Rulebook:
    return read_checked(path, "rulebook", Rulebook, lambda data: _build(path, data))


def _build(path: Path, data: Any) -> Rulebook:
    where = path.name
    if not isinstance(data, dict):
        raise RulebookError("expected a mapping with schema_type, id, items …", file=where)
    if data.get("schema_type") != SCHEMA_TYPE:
        raise RulebookError(
            f"schema_type is {data.get('schema_type')!r}; expected '{SCHEMA_TYPE}'", file=where
        )
    check_count(data.get("items"), "items", where)
    try:
        book = Rulebook.model_validate({**data, "path": str(path)})
    except ValidationError as exc:
        raise RulebookError(_describe(exc, data), file=where) from exc
    _check(book, where)
    return book


def check_count(entries: Any, what: str, file: str) -> None:
    """Refuse a file with more than :data:`MAX_ITEMS` entries in one list.

    Parameters
    ----------
    entries : object
        A rulebook's ``items`` or a programme's ``awards`` as read (anything but a list passes:
        the model check reports it).
    what : str
        What they are, for the message (``items``, ``awards``).
    file : str
        The file's name, for the message.

    Raises
    ------
    RulebookError
    """
    if isinstance(entries, list) and len(entries) > MAX_ITEMS:
        raise RulebookError(
            f"{len(entries):,} {what}: at most {MAX_ITEMS:,} are allowed in one file "
            "(split it into several rulebooks)",
            file=file,
        )


def _describe(exc: ValidationError, data: dict[str, Any]) -> str:
    """Turn pydantic's errors into 'item 4.5, criterion sc-b: field x: problem' lines."""
    lines = []
    for err in exc.errors()[:10]:
        loc = list(err["loc"])
        parts = []
        if len(loc) >= 2 and loc[0] == "items" and isinstance(loc[1], int):
            item = nth_mapping(data.get("items"), loc[1])
            parts.append(f"item {item.get('code', f'#{loc[1] + 1}')}")
            loc = loc[2:]
            if len(loc) >= 2 and loc[0] == "criteria" and isinstance(loc[1], int):
                criterion = nth_mapping(item.get("criteria"), loc[1])
                parts.append(f"criterion {criterion.get('id', f'#{loc[1] + 1}')}")
                loc = loc[2:]
        field = ".".join(str(x) for x in loc)
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field (check the spelling against taxonomies/README.md)"
        parts.append(f"{field}: {message}" if field else message)
        lines.append(", ".join(parts))
    return "; ".join(lines)


def nth_mapping(entries: Any, index: int) -> dict[str, Any]:
    """The ``index``-th mapping of a YAML list, to name the entry a validation error is in.

    Parameters
    ----------
    entries : object
        A list as read from YAML (or anything else).
    index : int

    Returns
    -------
    dict
        The entry, or ``{}`` when there is no such mapping.
    """
    if isinstance(entries, list) and index < len(entries) and isinstance(entries[index], dict):
        return entries[index]
    return {}


def _check(book: Rulebook, file: str) -> None:
    """Cross-field checks pydantic cannot do: codes, parents, vocabularies, conditions."""
    codes: set[str] = set()
    for item in book.items:
        if item.code in codes:
            raise RulebookError("duplicate item code", file=file, item=item.code)
        codes.add(item.code)
    check_field_decls(book.fields, file)
    known_fields = input_fields(book)
    if book.item_field and known_fields.get(book.item_field) != pl.String:
        raise RulebookError(
            f"item_field '{book.item_field}' must be a text input the rulebook declares",
            file=file,
        )
    activities = set(activity_ids())
    for item in book.items:
        if item.parent and item.parent not in codes:
            raise RulebookError(
                f"parent '{item.parent}' is not an item code", file=file, item=item.code
            )
        if item.scope is None:
            if item.criteria:
                raise RulebookError(
                    "a heading (no scope) cannot have criteria", file=file, item=item.code
                )
            continue
        for activity in item.scope.activities:
            if activity not in activities:
                raise RulebookError(
                    f"scope: unknown activity '{activity}'" + did_you_mean(activity, activities),
                    file=file,
                    item=item.code,
                )
        for code in item.scope.industry_codes:
            if not re.fullmatch(r"[A-T]?\d{2,4}", code):
                raise RulebookError(
                    f"scope: '{code}' is not a GB/T 4754 code", file=file, item=item.code
                )
        if item.scope.condition:
            compile_condition(item.scope.condition, known_fields, Where(file, item.code, "scope"))
        known_provinces = set(provinces()["name_en"])
        for province in item.scope.provinces:
            if province not in known_provinces:
                raise RulebookError(
                    f"scope: unknown province '{province}' (English names of "
                    "greenscreen/data/provinces.csv)" + did_you_mean(province, known_provinces),
                    file=file,
                    item=item.code,
                )
        if len(item.criteria) > MAX_CRITERIA:
            raise RulebookError(
                f"{len(item.criteria)} criteria: at most {MAX_CRITERIA} per item",
                file=file,
                item=item.code,
            )
        ids: set[str] = set()
        for criterion in item.criteria:
            if criterion.id in ids:
                raise RulebookError(
                    "duplicate criterion id", file=file, item=item.code, criterion=criterion.id
                )
            ids.add(criterion.id)
            if criterion.applies_to:
                where = {"file": file, "item": item.code, "criterion": criterion.id}
                for code in criterion.applies_to.industry_codes:
                    if not re.fullmatch(r"[A-T]?\d{2,4}", code):
                        raise RulebookError(
                            f"applies_to: '{code}' is not a GB/T 4754 code", **where
                        )
                for activity in criterion.applies_to.activities:
                    if activity not in activities:
                        raise RulebookError(
                            f"applies_to: unknown activity '{activity}'"
                            + did_you_mean(activity, activities),
                            **where,
                        )
            compile_condition(
                criterion.condition, known_fields, Where(file, item.code, criterion.id)
            )


def input_fields(book: Rulebook) -> dict[str, pl.DataType]:
    """The fields a condition of ``book`` may reference, with their types.

    Parameters
    ----------
    book : Rulebook

    Returns
    -------
    dict of str to polars.DataType
        As :func:`condition_fields` of the rulebook's fields and dependencies.
    """
    return condition_fields(book.fields, book.depends_on)


def condition_fields(
    declared: Iterable[FieldDecl], depends_on: Iterable[str]
) -> dict[str, pl.DataType]:
    """What a rulebook or programme condition may reference.

    Parameters
    ----------
    declared : iterable of FieldDecl
        The file's evidence fields.
    depends_on : iterable of str
        The rulebooks whose results the file reads.

    Returns
    -------
    dict of str to polars.DataType
        The template and derived inputs, the declared evidence fields (boolean → Boolean,
        number → Float64, text → String, date → Date), and ``R__status`` and ``R__item``
        (String) of each rulebook R depended on.
    """
    fields: dict[str, pl.DataType] = {name: spec.dtype for name, spec in FIELDS.items()}
    fields.update({name: dtype for name, (dtype, _) in DERIVED_INPUTS.items()})
    types = {
        "boolean": pl.Boolean(),
        "number": pl.Float64(),
        "text": pl.String(),
        "date": pl.Date(),
    }
    fields.update({f.name: types[f.type] for f in declared})
    for dep in depends_on:
        fields.update({f"{dep}__status": pl.String(), f"{dep}__item": pl.String()})
    return fields


def compile_condition(
    condition: str,
    fields: Iterable[str],
    where: Where | None = None,
    *,
    result: Literal["boolean", "number"] = "boolean",
) -> tuple[pl.Expr, list[str]]:
    """Parse a condition into a polars expression and the input fields it reads.

    The condition is parsed by sqlglot and checked on its syntax tree: only column names,
    literals, operators (comparison, boolean, arithmetic, ``IN`` lists, ``BETWEEN``, ``LIKE``,
    ``IS NULL``), ``DATE 'YYYY-MM-DD'`` and the functions in ``_FUNCTIONS``; no subquery,
    aggregate, window, clock, cast or other function, so a rulebook can never run code, read
    files or make a project's result depend on other rows or the time. Polars gets the SQL
    regenerated from that tree, never the text as written.

    Parameters
    ----------
    condition : str
        A SQL boolean expression (a number for an award's ``amount.base``), at most
        :data:`MAX_CONDITION_CHARS` characters, :data:`MAX_CONDITION_TOKENS` tokens and
        :data:`MAX_CONDITION_NESTING` levels of parentheses.
    fields : iterable of str, or mapping of str to polars.DataType
        The names the condition may read. With their types (:func:`condition_fields`), the
        result must be ``result`` and operands must fit their operators (no text compared
        with a number).
    where : Where, optional
        Where the condition is, for the error.
    result : {"boolean", "number"}
        What the condition must give: true/false (a criterion or scope) or a number (an
        amount).

    Returns
    -------
    expr : polars.Expr
        The condition over a projects frame, in SQL's three-valued logic: null (unknown)
        where the inputs it reads are missing and do not decide it.
    used : list of str
        The input fields it reads.

    Raises
    ------
    RulebookError
        A syntax error, a construct outside the allowlist, an unknown field or a type
        mismatch, naming file, item and criterion.
    """
    where = where or Where("<condition>")

    def fail(message: str) -> RulebookError:
        shown = condition if len(condition) <= 200 else condition[:200] + "…"
        return RulebookError(
            f"condition {shown!r}: {message}",
            file=where.file,
            item=where.item,
            criterion=where.criterion,
        )

    parsed = _parse(condition)
    if isinstance(parsed, str):
        raise fail(parsed)
    expr, roots, sql = parsed
    known = set(fields)
    used = list(roots)
    for name in used:
        if name not in known:
            raise fail(f"unknown input field '{name}'" + did_you_mean(name, known))
    types = fields if isinstance(fields, Mapping) else {}
    inputs = tuple((name, _kind_of(types[name]) if name in types else "any") for name in used)
    if (condition, inputs, result) not in _cache.known_types:
        from greenscreen import _sql  # sqlglot, imported when needed only (see _sql)

        problem = _sql.type_problem(condition, inputs, result)
        if problem:
            raise fail(problem)
    _cache.note((condition, inputs, result, sql, roots))
    return expr, used


# Limits on a condition, far above the shipped ones (longest 237 characters, 39 tokens, 2 levels
# of parentheses): a deeper expression overflowed the stack (6,000 ORs crashed polars).
MAX_CONDITION_CHARS = 4_000
MAX_CONDITION_TOKENS = 1_000
MAX_CONDITION_NESTING = 20


@lru_cache(maxsize=16384)
def _parse(condition: str) -> tuple[pl.Expr, tuple[str, ...], str] | str:
    """The checks and polars' parse of a condition, once per distinct text (a screen compiles
    the same conditions for every rulebook evaluation): the expression and the names it reads,
    or the reason it is refused, with the SQL polars was given."""
    known = _cache.known_sql.get(condition)
    if known is not None:  # accepted by an earlier process's checks (the load cache)
        return pl.sql_expr(known[0]), known[1], known[0]
    from greenscreen import _sql  # sqlglot, imported on a cache miss only (see _sql)

    return _sql.parse(condition)


def _kind_of(dtype: Any) -> str:
    """What a condition may do with an input of this polars type."""
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_numeric():
        return "number"
    if dtype == pl.String or dtype == pl.Categorical or dtype == pl.Enum:
        return "text"
    if dtype.is_temporal():
        return "date"
    return "any"


def _neutral(match: re.Match[str]) -> str:
    """What the allowlist scan sees of a token: '' for a string, a space for a comment, the
    bare name of a quoted identifier (so "read_csv"( is checked like read_csv()."""
    token = match.group()
    if token.startswith("'"):
        return "''"
    if token.startswith(("--", "/*")):
        return " "
    return re.sub(r"\W", "_", token[1:-1]) or "_"


def json_schema(kind: Literal["rulebook", "programme"] = "rulebook") -> str:
    """The JSON schema of rulebook (or programme) files, as published in
    ``taxonomies/rulebook.schema.json`` (``programme.schema.json``): pydantic's
    ``model_json_schema()`` of :class:`Rulebook` (``subsidy.Programme``), indented, with a final
    newline. Editors validate YAML files against it as they are typed; the loader's checks
    beyond the model (conditions, activities, codes, fields) run on load and in ``rulebooks
    check``."""
    import json

    from greenscreen.subsidy import Programme

    model: type[BaseModel] = Rulebook if kind == "rulebook" else Programme
    return json.dumps(model.model_json_schema(), ensure_ascii=False, indent=2) + "\n"


@cache
def bundled_rulebooks() -> tuple[Rulebook, ...]:
    """The rulebooks shipped in ``taxonomies/`` (loaded once per process).

    Returns
    -------
    tuple of Rulebook
    """
    return tuple(load_rulebooks())
