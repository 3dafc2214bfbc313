"""Rulebooks: versioned YAML data files of items and criteria, validated on load.

A rulebook (a taxonomy, an exclusion list, loan principles, a crosswalk) lists **items** — the
activities it covers — each with a **scope** (which projects it applies to) and **criteria**
(conditions on input fields, each with its clause and verification status). Conditions are SQL
boolean expressions (``power_density_w_m2 > 5``) parsed by polars (``pl.sql_expr``); SQL's NULL
logic turns a missing input into "unknown". Nothing in a file is ever executed as code: the
loader allows only column names, literals, operators and a short list of pure functions.

See ``taxonomies/README.md`` for the file format with an example.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from greenscreen._resources import bundled_dir
from greenscreen.errors import RulebookError, did_you_mean
from greenscreen.schema import FIELDS, activity_ids, provinces

SCHEMA_TYPE = "greenscreen.rulebook"
SCHEMA_VERSION = 1

Verification = Literal["verified", "secondary", "unverified"]
Status = Literal[
    "aligned", "eligible", "not_eligible", "excluded", "not_excluded", "insufficient_data"
]
STATUSES: tuple[str, ...] = (
    "aligned",
    "eligible",
    "not_eligible",
    "excluded",
    "not_excluded",
    "insufficient_data",
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

# SQL functions a condition may call: pure, no I/O. Anything else is rejected at load.
_FUNCTIONS = {"coalesce", "abs", "lower", "upper", "length", "round", "greatest", "least", "nullif"}
# operators that may stand before a parenthesis: ``x IN (…)``, ``a AND (b OR c)``, ``NOT (…)``
_KEYWORDS_BEFORE_PARENS = {"in", "and", "or", "not"}
_FORBIDDEN_WORDS = {"select", "from", "join", "union", "with", "into", "over", "table"}
# string literals, comments and quoted identifiers, matched left to right: a comment or a quoted
# name must not hide a function call from the allowlist (sqrt/**/(x), "read_csv"('f'))
_TOKENS = re.compile(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?(?:\*/|$)|\"(?:[^\"]|\"\")*\"|`[^`]*`", re.S)
_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")
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
        return (self.en if lang == "en" else self.zh) or self.zh or self.en or ""


class FieldDecl(_Model):
    """An evidence field a rulebook needs beyond the template (e.g. a DNSH attestation)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: Literal["boolean", "number", "text", "date"]
    description: Text
    unit: str | None = None


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
    """How item results map to the five statuses for this kind of rulebook."""

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
    #: set by the loader, not the file
    path: str | None = None

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(f"schema_version {value} is not supported (expected {SCHEMA_VERSION})")
        return value

    @property
    def status_map(self) -> StatusMap:
        return self.statuses or _DEFAULT_STATUSES[self.kind]

    @property
    def leaf_items(self) -> list[Item]:
        return [item for item in self.items if item.scope is not None]

    def item(self, code: str) -> Item:
        for item in self.items:
            if item.code == code:
                return item
        raise KeyError(code)

    def criterion_kinds(self) -> list[tuple[Item, Criterion, str]]:
        """Every criterion of the leaf items with its kind: ``measured``, ``attestation`` or
        ``crosswalk`` (see :meth:`counts`)."""
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
class _Where:
    file: str
    item: str | None = None
    criterion: str | None = None


def load_rulebook(source: str | Path) -> Rulebook:
    """Load and validate one rulebook: a bundled id (``"cn_exclusions"``) or a YAML path.

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
    compliance team maintains its own copy); other ids are added. ``extra=False`` loads only
    ``directory``.
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


def _rulebook_files(folder: Path) -> list[Path]:
    """YAML files in ``folder`` whose schema_type says they are rulebooks."""
    found = []
    for path in sorted(folder.glob("*.y*ml")):
        text = path.read_text(encoding="utf-8", errors="replace")  # a top-level key, anywhere
        if re.search(rf"^schema_type:\s*['\"]?{re.escape(SCHEMA_TYPE)}\b", text, re.M):
            found.append(path)
    return found


def _load_file(path: Path) -> Rulebook:
    where = path.name
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RulebookError("file not found", file=str(path)) from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RulebookError(f"not valid YAML: {exc}", file=where) from exc
    if not isinstance(data, dict):
        raise RulebookError("expected a mapping with schema_type, id, items …", file=where)
    if data.get("schema_type") != SCHEMA_TYPE:
        raise RulebookError(
            f"schema_type is {data.get('schema_type')!r}; expected '{SCHEMA_TYPE}'", file=where
        )
    try:
        book = Rulebook.model_validate({**data, "path": str(path)})
    except ValidationError as exc:
        raise RulebookError(_describe(exc, data), file=where) from exc
    _check(book, where)
    return book


def _describe(exc: ValidationError, data: dict[str, Any]) -> str:
    """Turn pydantic's errors into 'item 4.5, criterion sc-b: field x: problem' lines."""
    lines = []
    for err in exc.errors()[:10]:
        loc = list(err["loc"])
        parts = []
        if len(loc) >= 2 and loc[0] == "items" and isinstance(loc[1], int):
            item = _nth(data.get("items"), loc[1])
            parts.append(f"item {item.get('code', f'#{loc[1] + 1}')}")
            loc = loc[2:]
            if len(loc) >= 2 and loc[0] == "criteria" and isinstance(loc[1], int):
                criterion = _nth(item.get("criteria"), loc[1])
                parts.append(f"criterion {criterion.get('id', f'#{loc[1] + 1}')}")
                loc = loc[2:]
        field = ".".join(str(x) for x in loc)
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field (check the spelling against taxonomies/README.md)"
        parts.append(f"{field}: {message}" if field else message)
        lines.append(", ".join(parts))
    return "; ".join(lines)


def _nth(entries: Any, index: int) -> dict[str, Any]:
    """The index-th mapping of a YAML list, or {} when it is not one."""
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
            compile_condition(item.scope.condition, known_fields, _Where(file, item.code, "scope"))
        known_provinces = set(provinces()["name_en"])
        for province in item.scope.provinces:
            if province not in known_provinces:
                raise RulebookError(
                    f"scope: unknown province '{province}' (English names of "
                    "greenscreen/data/provinces.csv)" + did_you_mean(province, known_provinces),
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
                criterion.condition, known_fields, _Where(file, item.code, criterion.id)
            )


def input_fields(book: Rulebook) -> dict[str, pl.DataType]:
    """Fields a condition of ``book`` may reference, with their types."""
    return condition_fields(book.fields, book.depends_on)


def condition_fields(
    declared: Iterable[FieldDecl], depends_on: Iterable[str]
) -> dict[str, pl.DataType]:
    """Template and derived inputs, the declared evidence fields, and the status and item of
    the rulebooks depended on: what a rulebook or programme condition may reference."""
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
    condition: str, fields: Iterable[str], where: _Where | None = None
) -> tuple[pl.Expr, list[str]]:
    """Parse a condition into a polars expression and the input fields it reads.

    Only column names, literals, operators and the functions in ``_FUNCTIONS`` are allowed;
    subqueries and any other function are rejected, so a rulebook can never run code or read
    files.
    """
    where = where or _Where("<condition>")

    def fail(message: str) -> RulebookError:
        return RulebookError(
            f"condition {condition!r}: {message}",
            file=where.file,
            item=where.item,
            criterion=where.criterion,
        )

    parsed = _parse(condition)
    if isinstance(parsed, str):
        raise fail(parsed)
    expr, roots = parsed
    known = set(fields)
    used = list(roots)
    for name in used:
        if name not in known:
            raise fail(f"unknown input field '{name}'" + did_you_mean(name, known))
    return expr, used


@lru_cache(maxsize=16384)
def _parse(condition: str) -> tuple[pl.Expr, tuple[str, ...]] | str:
    """The allowlist checks and polars' parse of a condition, once per distinct text (a
    screen compiles the same conditions for every rulebook evaluation): the expression and the
    names it reads, or the reason it is refused."""
    bare = _TOKENS.sub(_neutral, condition)
    for name in _CALL.findall(bare):
        if name.lower() not in _FUNCTIONS | _KEYWORDS_BEFORE_PARENS:
            return f"function '{name}' is not allowed (allowed: {', '.join(sorted(_FUNCTIONS))})"
    words = {w.lower() for w in _WORD.findall(bare)}
    if words & _FORBIDDEN_WORDS:
        return f"'{sorted(words & _FORBIDDEN_WORDS)[0].upper()}' is not allowed in a condition"
    try:
        expr = pl.sql_expr(condition)
    except Exception as exc:  # polars raises SQLInterfaceError / SQLSyntaxError
        return f"not a valid SQL boolean expression ({exc})"
    return expr, tuple(dict.fromkeys(expr.meta.root_names()))


def _neutral(match: re.Match[str]) -> str:
    """What the allowlist scan sees of a token: '' for a string, a space for a comment, the
    bare name of a quoted identifier (so "read_csv"( is checked like read_csv()."""
    token = match.group()
    if token.startswith("'"):
        return "''"
    if token.startswith(("--", "/*")):
        return " "
    return re.sub(r"\W", "_", token[1:-1]) or "_"


@cache
def bundled_rulebooks() -> tuple[Rulebook, ...]:
    """The rulebooks shipped in ``taxonomies/`` (loaded once per process)."""
    return tuple(load_rulebooks())
