"""The rules engine: every criterion of every rulebook as a polars expression, evaluated over
the whole pipeline at once, with the reasons kept.

For each project × rulebook the engine decides a status (``aligned``, ``eligible``,
``not_eligible``, ``excluded``, ``insufficient_data``), the matched item, whether that rulebook
governs the loan (by approval date), the input fields that would decide an
``insufficient_data``, and one decision row per criterion evaluated (value seen, threshold,
pass/fail/unknown, clause, verification).

Three-valued logic throughout: a criterion over a missing input is *unknown* (SQL NULL).
Alternatives (criteria sharing an ``alternative`` label) combine with OR, everything else with
AND, both in Kleene logic: one failed required criterion fails the item even when others are
unknown; one passed alternative passes the group (:mod:`greenscreen.logic`, shared with the
programme evaluator).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from functools import cache, cached_property, lru_cache
from typing import NamedTuple

import numpy as np
import polars as pl

from greenscreen.errors import RulebookError
from greenscreen.logic import combine, gates, typed_evidence
from greenscreen.rulebook import (
    DERIVED_INPUTS,
    Criterion,
    Item,
    Rulebook,
    Scope,
    compile_condition,
    generation_mwh,
    input_fields,
)
from greenscreen.schema import FIELDS
from greenscreen.vocabularies import activities

DECISION_SCHEMA = pl.Schema(
    {
        "project_id": pl.String(),
        "rulebook": pl.String(),
        "item": pl.String(),
        "selected": pl.Boolean(),
        "criterion": pl.String(),
        "result": pl.String(),
        "value": pl.String(),
        "threshold": pl.String(),
        "clause": pl.String(),
        "verification": pl.String(),
        "gate": pl.Boolean(),
        "fields": pl.List(pl.String()),
    }
)
"""The decisions table: one row per project × rulebook × criterion evaluated. ``result`` is
``pass``, ``fail`` or ``unknown``; ``selected`` marks the item that gave the status. A project
in the scope of no item gets one row with criterion ``scope``."""

#: the decisions' label columns: a few hundred texts (clauses, thresholds …) repeated on
#: millions of rows
_LABELS = ("rulebook", "item", "criterion", "result", "threshold", "clause", "verification")
_RESULTS = ("pass", "fail", "unknown")
#: the threshold of the decision row of a project in the scope of no item
_NO_ITEM = "activity or industry code in the scope of an item"


def decision_vocabulary(rulebooks: Sequence[Rulebook]) -> dict[str, tuple[str, ...]]:
    """Every text the decisions' label columns and ``fields`` can hold for these rulebooks,
    sorted, by column: what the rulebook files say, whatever the pipeline (batch parts and
    Spark chunks of one run share it).

    Parameters
    ----------
    rulebooks : sequence of Rulebook

    Returns
    -------
    dict of str to tuple of str
        Keys: the label columns (``rulebook``, ``item``, ``criterion``, ``result``,
        ``threshold``, ``clause``, ``verification``) and ``fields``.
    """
    words: dict[str, set[str | None]] = {name: set() for name in (*_LABELS, "fields")}
    words["result"].update(_RESULTS)
    words["criterion"].add("scope")
    words["threshold"].add(_NO_ITEM)
    words["fields"].add("activity")
    for book in rulebooks:
        words["rulebook"].add(book.id)
        words["clause"].add(book.document)
        words["verification"].add(book.verification)
        fields = input_fields(book)
        for item in book.leaf_items:
            words["item"].add(item.code)
            words["verification"].add(item.verification)
            for criterion in item.criteria:
                _, used = compile_condition(criterion.condition, fields)
                words["criterion"].add(criterion.id)
                words["threshold"].add(criterion.threshold or criterion.condition)
                words["clause"].add(criterion.clause)
                words["verification"].add(criterion.verification)
                words["fields"].update(used)
            for name, threshold in _scope_facts(book, item).values():
                words["criterion"].add(name)
                words["threshold"].add(threshold)
                words["fields"].add(name)
    return {name: tuple(sorted(w for w in texts if w is not None)) for name, texts in words.items()}


def _scope_facts(book: Rulebook, item: Item) -> dict[str, tuple[str, str]]:
    """The scope facts an item can find unknown for a project — the province of a regional
    rule (``region``), an industry code contradicting the activity (``conflict``), a doubtful
    claim of the item (``claim``) — each with the field and threshold its decision row shows
    (see :func:`_decisions`)."""
    scope = item.scope
    assert scope is not None
    codes = _classes(scope)
    facts = {}
    if scope.provinces:
        provinces = ", ".join(scope.provinces)
        facts["region"] = ("province", f"province in {provinces} (a regional rule)")
    if codes:
        rows = ", ".join(codes)
        facts["conflict"] = ("industry_code", f"industry_code one of the item's GB/T rows: {rows}")
    if book.item_field:
        rows = ", ".join([*scope.activities, *codes])
        facts["claim"] = (book.item_field, f"the claimed item's activities / GB/T rows: {rows}")
    return facts


def decision_file_schema(rulebooks: Sequence[Rulebook]) -> pl.Schema:
    """The decisions as built and as ``decisions.parquet`` stores them: the label columns are
    polars Enums of :func:`decision_vocabulary` and ``fields`` a list of one (Arrow
    dictionaries: pandas reads categories, DuckDB and Spark text).

    Written as Enums, the label columns and ``fields`` of 14 million decision rows (1,000,000
    projects) cost 0.5 and 0.55 CPU s to encode instead of 1.85 and 1.24 as Categoricals and
    lists of text, whose dictionaries the writer builds again from the values (benchmarks/
    README.md, issue 23).

    Parameters
    ----------
    rulebooks : sequence of Rulebook

    Returns
    -------
    polars.Schema
    """
    return _vocabulary(rulebooks).schema


def decisions_file(
    decisions: pl.LazyFrame | pl.DataFrame, rulebooks: Sequence[Rulebook]
) -> pl.LazyFrame:
    """Decisions in the file's types (:func:`decision_file_schema`), ready to be sunk.

    Parameters
    ----------
    decisions : polars.LazyFrame or polars.DataFrame
        A decisions table of these rulebooks, labels as text or in the file's types.
    rulebooks : sequence of Rulebook
        The rulebooks that made it.

    Returns
    -------
    polars.LazyFrame
    """
    return decisions.lazy().cast(dict(decision_file_schema(rulebooks)))  # type: ignore[arg-type]


class _Vocabulary:
    """The decisions' Enum types for a set of rulebooks and their constants."""

    def __init__(self, rulebooks: Sequence[Rulebook]) -> None:
        words = decision_vocabulary(rulebooks)
        self.rulebooks = tuple(rulebooks)  # held: the cache is keyed by their ids
        self.types = {name: pl.Enum(words[name]) for name in _LABELS}
        self.fields = pl.List(pl.Enum(words["fields"]))
        self.schema = pl.Schema(
            {
                name: self.types.get(name, self.fields if name == "fields" else dtype)
                for name, dtype in DECISION_SCHEMA.items()
            }
        )
        self._constants: dict[tuple[str, object], pl.Expr] = {}

    def label(self, column: str, text: str | None) -> pl.Expr:
        """A label column's constant (never a column of repeated text)."""
        key = (column, text)
        if key not in self._constants:
            self._constants[key] = pl.lit(text, dtype=self.types[column])
        return self._constants[key]

    def names(self, names: tuple[str, ...]) -> pl.Expr:
        """A ``fields`` constant."""
        key = ("fields", names)
        if key not in self._constants:
            self._constants[key] = pl.lit(list(names), dtype=self.fields)
        return self._constants[key]

    def result(self, column: str) -> pl.Expr:
        """pass / fail / unknown from a criterion's three-valued column."""
        col = pl.col(column)
        return (
            pl.when(col)
            .then(self.label("result", "pass"))
            .when(~col)
            .then(self.label("result", "fail"))
            .otherwise(self.label("result", "unknown"))
        )


_VOCABULARIES: dict[tuple[tuple[int, str, str], ...], _Vocabulary] = {}


def _vocabulary(rulebooks: Sequence[Rulebook]) -> _Vocabulary:
    """The vocabulary of these rulebook objects, made once (a few tens of ms) and kept for the
    last few sets (each holds its rulebooks, so their ids cannot be reused meanwhile)."""
    key = tuple((id(book), book.id, book.version) for book in rulebooks)
    if key not in _VOCABULARIES:
        while len(_VOCABULARIES) >= 8:
            del _VOCABULARIES[next(iter(_VOCABULARIES))]
        _VOCABULARIES[key] = _Vocabulary(rulebooks)
    return _VOCABULARIES[key]


def decisions_frame(decisions: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """Decisions as Python code reads them (:data:`DECISION_SCHEMA`: labels as text).

    Parameters
    ----------
    decisions : polars.LazyFrame or polars.DataFrame
        A decisions table in either schema.

    Returns
    -------
    polars.DataFrame
    """
    return decisions.lazy().cast(dict(DECISION_SCHEMA)).collect()  # type: ignore[arg-type]


@dataclass(frozen=True)
class Screening:
    """The engine's output: ``per_project`` (one row per project: status, item, missing fields
    and flags per rulebook) and the decisions (long, lazy: materialised when written or first
    read)."""

    per_project: pl.DataFrame
    decisions_lazy: pl.LazyFrame

    @cached_property
    def decisions(self) -> pl.DataFrame:
        """The decisions table (:data:`DECISION_SCHEMA`), collected on first use."""
        return decisions_frame(self.decisions_lazy)


def prepare(projects: pl.DataFrame, rulebooks: Sequence[Rulebook]) -> pl.DataFrame:
    """The projects as the rulebooks read them.

    Parameters
    ----------
    projects : polars.DataFrame
        Accepted projects (:func:`greenscreen.read_pipeline`).
    rulebooks : sequence of Rulebook
        The rulebooks to be evaluated: their declared evidence fields are typed.

    Returns
    -------
    polars.DataFrame
        ``projects`` with the derived inputs (:func:`with_derived_inputs`), a blank activity
        inferred (:func:`infer_activity`) and every evidence field typed as declared
        (:func:`greenscreen.logic.typed_evidence`; all null when not supplied).
    """
    # one chunk per column (a no-op when so, as from read_pipeline): on a frame whose columns'
    # chunks are not aligned, polars 2.1's streaming engine panics in a string function of the
    # decisions (`assertion failed: i < self.len()`, e.g. a column gathered in parts)
    frame = with_derived_inputs(infer_activity(projects.rechunk()))
    declared: dict[str, pl.DataType] = {}
    bounds = {f.name: f.bounds() for book in rulebooks for f in book.fields}
    for book in rulebooks:
        for name, dtype in input_fields(book).items():
            if name not in FIELDS and name not in DERIVED_INPUTS:
                declared[name] = dtype
    given = set(frame.columns)
    casts = [
        typed_evidence(frame, name, dtype, bounds.get(name))
        for name, dtype in declared.items()
        if name in given
    ]
    # evidence not supplied: all null, as typed_evidence gives it (one literal per type)
    casts += [_null(dtype).alias(name) for name, dtype in declared.items() if name not in given]
    return frame.with_columns(casts) if casts else frame


@lru_cache(maxsize=64)
def _null(dtype: pl.DataType) -> pl.Expr:
    """An all-null column's literal, built once per type (hundreds of evidence fields)."""
    return pl.lit(None, dtype=dtype)


def with_derived_inputs(frame: pl.DataFrame) -> pl.DataFrame:
    """Add the inputs rulebooks and programmes may use besides the template's.

    Parameters
    ----------
    frame : polars.DataFrame
        Projects with the template columns.

    Returns
    -------
    polars.DataFrame
        With :data:`greenscreen.rulebook.DERIVED_INPUTS`: ``storage_duration_h`` [h]
        (``storage_energy_mwh`` / ``storage_power_mw``), ``generation_mwh`` [MWh/yr]
        (``annual_generation_mwh``, else ``capacity_mw`` × ``full_load_hours``) and
        ``industry_class`` (``industry_code`` without its section letter).
    """
    return frame.with_columns(
        (pl.col("storage_energy_mwh") / pl.col("storage_power_mw"))
        .fill_nan(None)
        .alias("storage_duration_h"),
        generation_mwh(),
        pl.col("industry_code").str.replace(r"^[A-T]", "").alias("industry_class"),
    )


def infer_activity(projects: pl.DataFrame) -> pl.DataFrame:
    """Fill a blank ``activity`` from ``description`` keywords (zh and en); never silently.

    The activity with the most specific (longest) keyword wins: ``海上风电`` is
    ``wind_offshore``, not ``wind_onshore``. Keywords: ``data/activities.csv``.

    Parameters
    ----------
    projects : polars.DataFrame
        Projects with ``activity`` and ``description``.

    Returns
    -------
    polars.DataFrame
        ``activity`` filled where a keyword matched, ``activity_source`` (``input``,
        ``inferred``: lower confidence, check it; or null when neither gives an activity) and
        ``activity_candidates`` (for those: the activities whose keywords the description
        nearly matches, best first, at most three).
    """
    # read on the distinct descriptions of the projects without an activity only (a regular
    # expression per activity over every description is slow and, where one is given, unused)
    blank = pl.col("activity").is_null() & pl.col("description").is_not_null()
    texts = projects.filter(blank)["description"].unique()
    guess: pl.Expr = pl.lit(None, dtype=pl.String)
    if len(texts):
        # The activity with the most specific (longest) keyword is tried first, so "海上风电"
        # (wind_offshore) wins over "风电" (wind_onshore). Built innermost-last.
        for act, words in reversed(_keywords()):
            pattern = "(?i)" + "|".join(re.escape(w) for w in words)
            guess = (
                pl.when(pl.col("description").str.contains(pattern))
                .then(pl.lit(act))
                .otherwise(guess)
            )
        found = texts.to_frame().select(guess).to_series()
        guess = pl.when(blank).then(
            pl.col("description").replace_strict(texts, found, default=None, return_dtype=pl.String)
        )
    inferred = projects.with_columns(
        pl.when(pl.col("activity").is_not_null())
        .then(pl.lit("input"))
        .when(guess.is_not_null())
        .then(pl.lit("inferred"))
        .alias("activity_source"),
        pl.coalesce(pl.col("activity"), guess).alias("activity"),
    )
    return inferred.with_columns(_candidates(inferred))


def _candidates(frame: pl.DataFrame) -> pl.Series:
    """For a project whose activity is neither given nor inferred: the activities whose
    keywords its description nearly matches (at least half of a keyword's character pairs,
    or words for Latin keywords, occur in it), best first, at most three. Computed once per
    distinct description of those projects only."""
    blank = frame["activity"].is_null() & frame["description"].is_not_null()
    if not blank.any():
        empty = pl.repeat(None, frame.height, dtype=pl.List(pl.String), eager=True)
        return empty.alias("activity_candidates")
    texts = frame.filter(blank)["description"].unique().to_frame("description")
    text = pl.col("description").str.to_lowercase()
    scores = []
    for act, words in _keywords():
        best: list[pl.Expr] = []
        for word in words:
            parts = _keyword_parts(word.lower())
            if parts:
                hits = pl.sum_horizontal(text.str.contains(p, literal=True) for p in parts)
                best.append(hits / len(parts))
        if best:
            scores.append(pl.max_horizontal(best).alias(act))
    scored = texts.with_columns(scores).unpivot(index="description", variable_name="activity")
    near = (
        scored.filter(pl.col("value") >= 0.5)
        .sort(["description", "value", "activity"], descending=[False, True, False])
        .group_by("description", maintain_order=True)
        .agg(pl.col("activity").head(3).alias("activity_candidates"))
    )
    joined = frame.select("description", blank.alias("_blank")).join(
        near, on="description", how="left", maintain_order="left"
    )
    return (
        joined.select(pl.when(pl.col("_blank")).then(pl.col("activity_candidates").fill_null([])))
        .to_series()
        .alias("activity_candidates")
    )


def _keyword_parts(word: str) -> list[str]:
    """What must occur for a near match: character pairs of a Chinese keyword, the words
    (3+ letters) of a Latin one."""
    if word.isascii():
        return [w for w in re.findall(r"[a-z0-9]+", word) if len(w) >= 3]
    chars = word.replace(" ", "")
    return list(dict.fromkeys(chars[i : i + 2] for i in range(len(chars) - 1))) or [chars]


def _keywords() -> list[tuple[str, list[str]]]:
    """(activity, keywords) from activities.csv, most specific first."""
    table = activities().filter(pl.col("keywords").is_not_null())
    pairs = [
        (act, [w.strip() for w in words.split(";") if w.strip()])
        for act, words in zip(table["id"], table["keywords"], strict=True)
    ]
    return sorted(pairs, key=lambda pair: -max(len(w) for w in pair[1]))


# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Compiled:
    item: Item
    #: in scope: true / false, or null where a regional rule meets a project without a province
    scope: pl.Expr
    criteria: list[tuple[Criterion, pl.Expr, list[str]]]
    #: per criterion: for which projects it is in force (None: all)
    in_force: list[pl.Expr | None]
    #: per criterion: does it decide although its inputs are missing (``coalesce``)?
    defaults: list[bool]
    #: the activity matches but the given industry code is not one of the item's rows
    conflict: pl.Expr | None
    #: the project claims the item (``item_field``) but its activity or industry code is not
    #: one of the item's
    claim_clash: pl.Expr | None = None
    claim_field: str | None = None
    #: ``scope``, ``conflict`` and ``claim_clash`` before the item's dates (``since`` /
    #: ``until``) restrict them: what the scope facts (activity, code, region, claim) say
    undated: tuple[pl.Expr, pl.Expr | None, pl.Expr | None] = (pl.lit(True), None, None)


def _dated(expr: pl.Expr, since: object, until: object) -> pl.Expr:
    """Restrict to loans approved in [since, until); a missing date means 'current'."""
    date = pl.col("approval_date")
    if since is not None:
        expr = expr & (date.is_null() | (date >= pl.lit(since)))
    if until is not None:
        expr = expr & date.is_not_null() & (date < pl.lit(until))
    return expr


def _compile(book: Rulebook, present: _Present | None = None) -> list[_Compiled]:
    """Scope and criterion expressions of the leaf items; with ``present``, only of the items
    some project of the pipeline can be in scope of (see :func:`_reachable`)."""
    fields = input_fields(book)
    compiled = []
    nulls_read: list[list[_NullRead | None]] = []  # per item, per criterion (see _decides)
    claim = book.item_field
    for item in book.leaf_items:
        scope = item.scope
        assert scope is not None
        if present is not None and not _reachable(item.code, scope, present, claim):
            continue
        parts: list[pl.Expr] = []
        codes = _classes(scope)
        conflict: pl.Expr | None = None
        if scope.claimed_only:
            parts.append(pl.lit(False))
        elif scope.activities:
            activity = pl.col("activity").is_in(scope.activities).fill_null(False)
            parts.append(activity)
            if codes and scope.industry_confirms:  # a given industry code must confirm it
                cls = pl.col("industry_class")
                parts.append(cls.is_null() | cls.is_in(codes))
                # only where some project of the pipeline gives another code
                if present is None or not present.classes.issubset(codes):
                    conflict = activity & cls.is_not_null() & ~cls.is_in(codes)
        elif codes:
            parts.append(pl.col("industry_class").is_in(codes).fill_null(False))
            if scope.codes_only_without_activity:
                parts.append(pl.col("activity").is_null())
        if scope.condition:
            expr, _ = compile_condition(scope.condition, fields)
            parts.append(expr.fill_null(False))
        if scope.provinces:  # a regional rule; null (unknown) for a Chinese project without one
            parts.append(
                pl.when(pl.col("country") == "CN")
                .then(pl.col("province").is_in(scope.provinces))
                .otherwise(pl.lit(False))
            )
        in_scope = pl.all_horizontal(parts) if parts else pl.lit(True)
        clash: pl.Expr | None = None
        claims = None if present is None else present.claims.get(claim or "")
        if claim and (claims is None or claims):  # a project naming an item: that item only
            named = pl.col(claim).str.strip_chars()
            if claims is None or item.code in claims:  # a claim of this item may be doubtful
                clash = _claim_clash(scope, codes, (named == item.code).fill_null(False))
            claimed = named == item.code
            if clash is not None:
                claimed = claimed & ~clash
            in_scope = pl.when(named.is_not_null()).then(claimed).otherwise(in_scope)
            if conflict is not None:
                conflict = conflict & named.is_null()
        undated = (in_scope, conflict, clash)
        in_scope = _dated(in_scope, item.since, item.until)
        if conflict is not None:
            conflict = _dated(conflict, item.since, item.until)
        if clash is not None:
            clash = _dated(clash, item.since, item.until)
        criteria, in_force = [], []
        for criterion in item.criteria:
            expr, used = compile_condition(criterion.condition, fields)
            expr = expr.cast(pl.Boolean)
            force = _in_force(criterion)
            if force is not None:  # not in force for this project: neutral (an alternative
                # not in force offers nothing; see logic.combine for a group with none in force)
                expr = pl.when(force).then(expr).otherwise(pl.lit(criterion.alternative is None))
            criteria.append((criterion, expr, used))
            in_force.append(force)
        nulls_read.append([_null_read(c.condition, used, fields) for c, _, used in criteria])
        compiled.append(
            _Compiled(item, in_scope, criteria, in_force, [], conflict, clash, claim, undated)
        )
    decides = _decides(tuple(dict.fromkeys(r for reads in nulls_read for r in reads if r)))
    return [
        replace(comp, defaults=[r is not None and decides[r] for r in reads])
        for comp, reads in zip(compiled, nulls_read, strict=True)
    ]


def _claim_clash(scope: Scope, codes: list[str], claimed: pl.Expr) -> pl.Expr | None:
    """A project claims the item while its activity is not one of the item's activities, or
    its industry code not one of the item's rows: the claim is doubtful, not a pass."""
    clashes = []
    if scope.activities:
        activity = pl.col("activity")
        clashes.append(activity.is_not_null() & ~activity.is_in(scope.activities))
    if codes and scope.industry_confirms:
        cls = pl.col("industry_class")
        clashes.append(cls.is_not_null() & ~cls.is_in(codes))
    return claimed & pl.any_horizontal(clashes) if clashes else None


def _in_force(criterion: Criterion) -> pl.Expr | None:
    """For which projects a criterion is in force: its dates (by approval_date) and its GB/T
    rows (``applies_to``); None when always."""
    force: pl.Expr | None = None
    if criterion.since or criterion.until:
        force = _dated(pl.lit(True), criterion.since, criterion.until)
    if criterion.applies_to:
        cls = pl.col("industry_class")
        rows = criterion.applies_to
        activity = pl.col("activity")
        by_activity = activity.is_null() | activity.is_in(rows.activities).fill_null(False)
        codes = [c.lstrip("ABCDEFGHIJKLMNOPQRST") for c in rows.industry_codes]
        concerned = cls.is_in(codes).fill_null(False) | (cls.is_null() & by_activity)
        force = concerned if force is None else force & concerned
    return force


#: a condition and the inputs it reads, with their types
_NullRead = tuple[str, tuple[tuple[str, pl.DataType], ...]]


def _null_read(condition: str, used: list[str], fields: dict[str, pl.DataType]) -> _NullRead | None:
    """What :func:`_decides` evaluates for a criterion (None: it reads no input)."""
    return (condition, tuple((name, fields[name]) for name in used)) if used else None


@lru_cache(maxsize=64)
def _decides(reads: tuple[_NullRead, ...]) -> dict[_NullRead, bool]:
    """Does each condition give true or false when all its inputs are missing (a ``coalesce``
    default)? Then a decision it takes may rest on missing evidence, which is reported. All
    of a rulebook's conditions over one row of nulls, in one query."""
    if not reads:
        return {}
    types = {name: dtype for _, inputs in reads for name, dtype in inputs}
    empty = pl.DataFrame({name: pl.Series([None], dtype=dtype) for name, dtype in types.items()})
    values = empty.select(
        compile_condition(condition, dict(inputs))[0].cast(pl.Boolean).alias(f"v{i}")
        for i, (condition, inputs) in enumerate(reads)
    ).row(0)
    return {read: value is not None for read, value in zip(reads, values, strict=True)}


def _classes(scope: Scope) -> list[str]:
    """The scope's GB/T 4754 codes as classes (section letter dropped, as ``industry_class``)."""
    return [c.lstrip("ABCDEFGHIJKLMNOPQRST") for c in scope.industry_codes]


class _Present(NamedTuple):
    """What occurs in a pipeline: activities, GB/T classes and, per claim field, item codes."""

    activities: set[str]
    classes: set[str]
    claims: dict[str, set[str]]


def _present(keys: pl.DataFrame, rulebooks: Sequence[Rulebook]) -> _Present:
    """Read once per screen, for all rulebooks, from the distinct combinations of the scope
    facts (:class:`_Groups`)."""

    def values(column: pl.Series) -> set[str]:
        return set(column.drop_nulls().unique().to_list())

    fields = {book.item_field for book in rulebooks if book.item_field} & set(keys.columns)
    return _Present(
        values(keys["activity"]),
        values(keys["industry_class"]),
        {f: values(keys[f].cast(pl.String).str.strip_chars()) for f in fields},
    )


def _reachable(code: str, scope: Scope, present: _Present, claim: str | None) -> bool:
    """Can some project of the pipeline be in the item's scope? An item no project can reach is
    out of scope for all and is skipped: a 271-item catalogue then costs what the items a
    pipeline touches cost, and the results are the same."""
    if code in present.claims.get(claim or "", ()) or scope.condition or scope.all_projects:
        return True
    if scope.claimed_only:
        return False
    if scope.activities:
        return not present.activities.isdisjoint(scope.activities)
    if not scope.industry_codes:  # a regional rule without activities or codes
        return True
    return not present.classes.isdisjoint(_classes(scope))


_PASS, _UNKNOWN, _FAIL = 2, 1, 0


def evaluate(
    projects: pl.DataFrame, rulebooks: Sequence[Rulebook], *, prepared: bool = False
) -> Screening:
    """Screen every project against every rulebook.

    Parameters
    ----------
    projects
        Accepted projects as returned by :func:`greenscreen.read_pipeline`.
    rulebooks
        Loaded rulebooks (:func:`greenscreen.rulebook.load_rulebooks`).
    prepared
        ``projects`` is already :func:`prepare`'s output for these rulebooks (a caller that
        reads the inferred activity before the rules are evaluated).

    Returns
    -------
    Screening
        ``per_project``: project_id, activity, activity_source, rules_basis (which rule versions
        were applied: by approval_date, or the current ones when it is missing), and per
        rulebook R the columns
        ``R__status``, ``R__item``, ``R__applies`` (R governs the loan by approval date),
        ``R__missing`` (fields to request when insufficient_data), ``R__criteria`` (the
        selected item's criteria and results), ``R__ghg_mark`` where items carry marks and, for
        rulebooks with flag items, ``R__flags``. ``decisions``: see :data:`DECISION_SCHEMA`,
        built lazily in the file's types (:func:`decision_file_schema`).
    """
    frame = projects if prepared else prepare(projects, rulebooks)
    summary = frame.select(
        "project_id",
        "activity",
        "activity_source",
        "activity_candidates",
        "generation_mwh",
        pl.when(pl.col("approval_date").is_null())
        .then(pl.lit("current rules (no approval_date)"))
        .otherwise(pl.lit("approval_date"))
        .alias("rules_basis"),
    )
    decisions: list[pl.LazyFrame] = []
    words = _vocabulary(rulebooks)
    groups = _groups(frame, rulebooks)
    present = _present(groups.keys, rulebooks)
    # one column of empty flag lists for the rulebooks that raise none (24 ms each at 1M)
    height = frame.height
    no_flags = cache(lambda: pl.repeat([], height, dtype=pl.List(pl.String), eager=True))

    def run(book: Rulebook, done: dict[str, _Evaluated]) -> _Evaluated:
        # a rulebook over others' statuses reads their status and item columns
        read = [c for dep in book.depends_on for c in done[dep][0] if _is_status(c.name)]
        return _evaluate_book(
            frame.with_columns(read) if read else frame, book, present, groups, no_flags, words
        )

    codes: dict[str, np.ndarray] = {}
    evaluated = _by_dependency(_dependency_order(rulebooks), run)
    for book in _dependency_order(rulebooks):
        columns, book_decisions, codes[book.id] = evaluated[book.id]
        summary = summary.with_columns(columns)
        decisions.append(book_decisions)
    summary = summary.with_columns(
        _inherit_missing(summary, book, codes) for book in rulebooks if book.depends_on
    )
    table = (
        pl.concat(decisions, how="vertical")
        if decisions
        else decisions_file(DECISION_SCHEMA.to_frame(), rulebooks)
    )
    return Screening(per_project=summary, decisions_lazy=table)


def _inherit_missing(
    summary: pl.DataFrame, book: Rulebook, codes: dict[str, np.ndarray]
) -> pl.Series:
    """A criterion over another rulebook's status is unknown because that rulebook lacks data:
    ask the client for *its* missing fields, not for ``eu_taxonomy__status``. Worked out once
    per distinct combination of the lists involved, told apart by the integers each list was
    decoded from (``codes``: see :func:`_summary_codes`)."""
    own = f"{book.id}__missing"
    deps = [f"{dep}__missing" for dep in book.depends_on]
    internal = {f"{dep}__{part}" for dep in book.depends_on for part in ("status", "item")}
    lists = summary.select(own, *deps)

    def merged(mine: list[str] | None, *theirs: list[str] | None) -> list[str] | None:
        if mine is None:
            return None
        out = [f for f in mine if f not in internal]
        for dep, fields in zip(book.depends_on, theirs, strict=True):
            if f"{dep}__status" in mine:
                out += [f for f in fields or [] if f not in out]
        return list(dict.fromkeys(out))

    known = [codes[name] for name in (book.id, *book.depends_on)]
    return _per_codes(lists, known, merged, pl.List(pl.String)).alias(own)


def _per_codes(
    keys: pl.DataFrame,
    codes: list[np.ndarray],
    describe: Callable[..., object],
    dtype: pl.DataType,
) -> pl.Series:
    """``describe(*row)`` for every row of ``keys``, whose rows are functions of integer codes
    (rows with equal codes are equal): called once per distinct combination of the codes
    (:func:`_combinations`), read from one row that has it, and put back in place."""
    combination, first = _combinations(codes)
    picked = keys[pl.Series(first)]
    values = pl.Series("_value", [describe(*row) for row in picked.iter_rows()], dtype=dtype)
    return values.gather(pl.Series(combination))


def _dense(key: np.ndarray, span: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of non-negative integers below ``span`` (ascending) and each one's
    position among them: ``np.unique(key, return_inverse=True)`` without its sort of all the
    keys (a million keys with a handful of values): by a lookup table when the span is small,
    else by a search among the distinct values."""
    if span > 1 << 22:  # as np.unique(key, return_inverse=True), hashed instead of sorted
        seen = np.sort(pl.Series(key).unique().to_numpy())
        return seen, np.searchsorted(seen, key)
    found = np.zeros(span, dtype=bool)
    found[key] = True
    seen = np.flatnonzero(found)
    lookup = np.zeros(span, dtype=np.int64)
    lookup[seen] = np.arange(len(seen))
    return seen, lookup[key]


_Evaluated = tuple[list[pl.Series], pl.LazyFrame, np.ndarray]


def _is_status(name: str) -> bool:
    return name.endswith(("__status", "__item"))


def _by_dependency(
    order: list[Rulebook], run: Callable[[Rulebook, dict[str, _Evaluated]], _Evaluated]
) -> dict[str, _Evaluated]:
    """``run`` for every rulebook, two at a time, each once those it depends on are done.

    A rulebook's evaluation holds the interpreter lock about half of its time (building plans,
    numpy on item-sized arrays) and runs polars queries the other half: two side by side keep
    both cores busy (the rules alone at 1M projects left one idle for ~3 s; see
    benchmarks/README.md, issue 23). Each rulebook reads only its own inputs and the outputs
    of those it depends on, so the result does not depend on the interleaving.
    """
    done: dict[str, _Evaluated] = {}
    waiting = list(order)
    running: dict[Future[_Evaluated], Rulebook] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        while waiting or running:
            ready = [b for b in waiting if all(dep in done for dep in b.depends_on)]
            for book in ready[: 2 - len(running)]:
                running[pool.submit(run, book, dict(done))] = book
                waiting.remove(book)
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                done[running.pop(future).id] = future.result()
    return done


def _dependency_order(rulebooks: Sequence[Rulebook]) -> list[Rulebook]:
    """Rulebooks ordered so that every one comes after those it depends on."""
    by_id = {book.id: book for book in rulebooks}
    ordered: list[Rulebook] = []
    visiting: set[str] = set()

    def visit(book: Rulebook) -> None:
        if book in ordered:
            return
        if book.id in visiting:
            raise RulebookError(f"rulebook dependency cycle through {book.id}", file=book.path)
        visiting.add(book.id)
        for dep in book.depends_on:
            if dep not in by_id:
                raise RulebookError(
                    f"depends on rulebook '{dep}', which is not loaded", file=book.path
                )
            visit(by_id[dep])
        visiting.discard(book.id)
        ordered.append(book)

    for book in rulebooks:
        visit(book)
    return ordered


class _Groups(NamedTuple):
    """The projects grouped by the facts items' scopes read (activity, GB/T class, country,
    province, claimed items): a million projects share a few thousand combinations."""

    #: the distinct combinations
    keys: pl.DataFrame
    #: per project: the position of its combination in ``keys``
    key_of: np.ndarray
    #: the projects, combination by combination: those of combination ``g`` are
    #: ``rows[starts[g]:starts[g + 1]]``
    rows: np.ndarray
    starts: np.ndarray


#: the scope facts grouped on (with the rulebooks' claim fields)
_SCOPE_KEYS = ("activity", "industry_class", "country", "province")


def _groups(frame: pl.DataFrame, rulebooks: Sequence[Rulebook]) -> _Groups:
    """Read once per screen, for all rulebooks."""
    claims = [book.item_field for book in rulebooks if book.item_field]
    return _group(frame, [c for c in dict.fromkeys([*_SCOPE_KEYS, *claims]) if c in frame.columns])


def _group(frame: pl.DataFrame, names: list[str]) -> _Groups:
    """The projects grouped by the columns ``names``."""
    grouped = (
        frame.select(names)
        .with_row_index("_r")
        .group_by(names, maintain_order=True)
        .agg(pl.col("_r"))
    )
    lengths = grouped["_r"].list.len().to_numpy().astype(np.int64)
    rows = grouped["_r"].explode().to_numpy().astype(np.int64)
    index = np.empty(frame.height, dtype=np.int64)
    index[rows] = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    starts = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(lengths)])
    return _Groups(grouped.drop("_r"), index, rows, starts)


def _few_values(frame: pl.DataFrame, name: str) -> bool:
    """Is the column one of labels (text, yes/no) rather than of measurements?"""
    return name in frame.columns and frame.get_column(name).dtype in (pl.String, pl.Boolean)


def _members(groups: _Groups, relevant: np.ndarray) -> np.ndarray:
    """The projects (ascending) of the combinations marked in ``relevant``."""
    ids = np.flatnonzero(relevant)
    if not len(ids):
        return np.zeros(0, dtype=np.int64)
    starts = groups.starts
    # a pass over all projects where they are many (or the combinations), else their rows
    if len(ids) > 256 or (starts[ids + 1] - starts[ids]).sum() > len(groups.key_of) // 8:
        return np.flatnonzero(relevant[groups.key_of])
    return np.sort(np.concatenate([groups.rows[starts[g] : starts[g + 1]] for g in ids]))


class _Part(NamedTuple):
    """One item over the projects where its state can be set: in scope, region unknown, code
    conflict or doubtful claim. Everywhere else the item is out of scope (state null) and its
    criteria are neither reported nor read."""

    #: the projects (ascending positions)
    pos: np.ndarray
    #: on those: ``s{k}``, ``x{k}``, ``y{k}``, ``c{k}_{j}``, ``f{k}_{j}``, ``n{k}_{b}``,
    #: ``m{k}_{j}``, ``r{k}``, ``st{k}``
    frame: pl.DataFrame
    #: the state (-1 where null) and whether it rests on a contradiction (see :func:`_doubt`)
    state: np.ndarray
    doubt: np.ndarray
    #: a status item's codes (:func:`_item_codes`: ``_states``, ``_extra``, ``_nulls``)
    codes: list[np.ndarray] | None = None


def _relevant(scope: pl.Expr, conflict: pl.Expr | None, clash: pl.Expr | None) -> pl.Expr:
    """Where an item's state can be set: in scope or unknown, or a contradiction."""
    out = scope.fill_null(True)
    for fact in (conflict, clash):
        if fact is not None:
            out = out | fact.fill_null(False)
    return out


def _item_exprs(k: int, comp: _Compiled) -> list[pl.Expr]:
    """Criterion, in-force and null-tracking columns of item ``k``."""
    exprs = [expr.alias(f"c{k}_{j}") for j, (_, expr, _) in enumerate(comp.criteria)]
    exprs += [f.alias(f"f{k}_{j}") for j, f in enumerate(comp.in_force) if f is not None]
    if comp.item.effect == "status":
        inputs = _inputs(comp, _gating(comp))
        if len(inputs) <= 62:
            exprs += [pl.col(f).is_null().alias(f"n{k}_{b}") for b, f in enumerate(inputs)]
    exprs += [
        _reads_missing(comp, j).alias(f"m{k}_{j}")
        for j, default in enumerate(comp.defaults)
        if default
    ]
    return exprs


def _parts(frame: pl.DataFrame, compiled: list[_Compiled], groups: _Groups) -> dict[int, _Part]:
    """Every item evaluated on its own projects only (see :class:`_Part`).

    The scope facts are evaluated once per distinct combination of the columns they read
    (:class:`_Groups`), or over all projects when they read others (a ``condition``); the
    item's dates, criteria, result and state on its projects only (items whose projects nearly
    coincide in one query over the union of theirs: see :func:`_batches`)."""
    keys = set(groups.keys.columns)
    by_key: list[int] = []
    by_row: list[int] = []
    facts: dict[int, list[pl.Expr]] = {}
    relevant: dict[int, pl.Expr] = {}
    for k, comp in enumerate(compiled):
        scope, conflict, clash = comp.undated
        named = [scope.alias(f"_s{k}")]
        named += [e.alias(f"_{p}{k}") for p, e in (("x", conflict), ("y", clash)) if e is not None]
        facts[k] = named
        # from the columns, not the expressions again (one pass of hundreds of expressions
        # with repeated subexpressions took seconds to plan)
        relevant[k] = _relevant(
            pl.col(f"_s{k}"),
            pl.col(f"_x{k}") if conflict is not None else None,
            pl.col(f"_y{k}") if clash is not None else None,
        ).alias(f"_rel{k}")
        reads = {n for e in named for n in e.meta.root_names()}
        (by_key if reads <= keys else by_row).append(k)
    # per group of items: the table of their scope facts, the row of each project in it (None:
    # the project's own) and the items' projects
    located: list[tuple[pl.DataFrame, np.ndarray | None, list[int]]] = []
    pos: dict[int, np.ndarray] = {}
    if by_key:
        table = groups.keys.with_columns(e for k in by_key for e in facts[k])
        table = table.with_columns(relevant[k] for k in by_key)
        for k in by_key:
            pos[k] = _members(groups, table[f"_rel{k}"].to_numpy())
        located.append((table, groups.key_of, by_key))
    names = list(dict.fromkeys(n for k in by_row for e in facts[k] for n in e.meta.root_names()))
    if len(by_row) >= 4 and frame.height > 4096 and all(_few_values(frame, n) for n in names):
        # scopes on other facts given as text or yes/no (another rulebook's item, a category):
        # once per distinct combination of those too
        own = _group(frame, names)
        table = own.keys.with_columns(e for k in by_row for e in facts[k])
        table = table.with_columns(relevant[k] for k in by_row)
        for k in by_row:
            pos[k] = _members(own, table[f"_rel{k}"].to_numpy())
        located.append((table, own.key_of, by_row))
    elif by_row:
        table = frame.select(pl.col("project_id"), *(e for k in by_row for e in facts[k]))
        table = table.with_columns(relevant[k] for k in by_row)
        for k in by_row:
            pos[k] = np.flatnonzero(table[f"_rel{k}"].to_numpy())
        located.append((table, None, by_row))
    parts = {k: _Part(pos[k], pl.DataFrame(), *_NO_STATE) for k in pos}
    for table, table_row, items in located:
        for batch, rows in _batches(items, pos, frame.height):
            at = rows if table_row is None else table_row[rows]
            parts.update(_evaluate_items(frame, compiled, batch, table, rows, at, pos))
    return {k: parts[k] for k in range(len(compiled))}


#: Items are evaluated together, in one query over the union of their projects, where that
#: adds at most this many projects to each one's own: evaluating an item on them costs less
#: than a query of its own (about what it costs over 20,000 projects). At ten thousand
#: projects a rulebook is evaluated in one query; at a million each item on its own.
_SHARED_ROWS = 20_000


def _batches(
    items: list[int], pos: dict[int, np.ndarray], height: int
) -> list[tuple[list[int], np.ndarray]]:
    """The items with projects, grouped as they are evaluated, each group with the union of its
    items' projects (ascending): together those whose own projects are all but at most
    :data:`_SHARED_ROWS` of the union of theirs, every other item alone."""
    items = [k for k in items if len(pos[k])]
    largest = max((len(pos[k]) for k in items), default=0)
    # the union has at least the largest item's projects: only those near it can share
    candidates = [k for k in items if len(pos[k]) >= largest - _SHARED_ROWS]
    if len(candidates) < 2:
        return [([k], pos[k]) for k in items]
    union = np.zeros(height, dtype=bool)
    for k in candidates:
        union[pos[k]] = True
    size = int(np.count_nonzero(union))
    shared = [k for k in candidates if size - len(pos[k]) <= _SHARED_ROWS]
    if len(shared) < 2:
        return [([k], pos[k]) for k in items]
    union[:] = False
    for k in shared:
        union[pos[k]] = True
    return [(shared, np.flatnonzero(union))] + [([k], pos[k]) for k in items if k not in shared]


def _evaluate_items(
    frame: pl.DataFrame,
    compiled: list[_Compiled],
    items: list[int],
    table: pl.DataFrame,
    rows: np.ndarray,
    at: np.ndarray,
    pos: dict[int, np.ndarray],
) -> dict[int, _Part]:
    """The items on the projects ``rows`` (the union of their own, ``pos``), whose undated
    scope facts are the rows ``at`` of ``table``: criteria, dates, result, state, doubt and (a
    status item) codes in one query for all; then each item on its own projects only."""
    facts: list[str] = []
    exprs: list[pl.Expr] = []  # the criteria and the dated scope facts
    results: list[pl.Expr] = []  # the results (and where the dates keep an item in scope)
    states: list[pl.Expr] = []
    read: list[pl.Expr] = []  # the states, doubts and codes, read with numpy
    columns: dict[int, list[str]] = {}  # each item's columns (see _Part)
    dates: dict[int, bool] = {}
    codes: dict[int, bool] = {}
    for k in items:
        comp, item = compiled[k], compiled[k].item
        _, conflict, clash = comp.undated
        present = [p for p, e in (("x", conflict), ("y", clash)) if e is not None]
        facts += [f"_s{k}", *(f"_{p}{k}" for p in present)]
        own = _item_exprs(k, comp)
        own += [
            _dated(pl.col(f"_{p}{k}"), item.since, item.until).alias(f"{p}{k}")
            for p in ["s", *present]
        ]
        exprs += own
        columns[k] = [*(e.meta.output_name() for e in own), f"r{k}", f"st{k}"]
        results.append(combine(*_columns(k, comp)).alias(f"r{k}"))
        dates[k] = item.since is not None or item.until is not None
        if dates[k]:  # the dates may put it out of scope
            x, y = (pl.col(f"{p}{k}") if p in present else None for p in ("x", "y"))
            results.append(_relevant(pl.col(f"s{k}"), x, y).alias(f"_keep{k}"))
        states.append(_state(k, comp).alias(f"st{k}"))
        doubt = _doubt(k, comp)
        read += [
            pl.col(f"st{k}").fill_null(-1).alias(f"_st{k}"),
            (doubt if doubt is not None else pl.lit(False)).alias(f"_doubt{k}"),
        ]
        # a status item's codes, for the projects that will select it (not computed where the
        # item tracks more inputs than _nulls holds: no n-columns, see _item_exprs)
        codes[k] = item.effect == "status" and len(_inputs(comp, _gating(comp))) <= 62
        if codes[k]:
            read += [e.alias(f"{e.meta.output_name()}{k}") for e in _item_codes(k, comp)]
    reads = dict.fromkeys(n for e in exprs for n in e.meta.root_names())
    inputs = [n for n in reads if n not in facts]
    # plain gathers of the columns read (no query over the wide frame)
    sub = table[facts][_index(at)]
    if inputs:
        sub = frame[inputs][_index(rows)].hstack(sub)
    sub = sub.select(exprs).with_columns(results).with_columns(states)
    flags = sub.select(read)
    parts = {}
    for k in items:
        # the item's projects among the rows (all of them where it is evaluated alone)
        local = np.searchsorted(rows, pos[k]) if len(items) > 1 else np.arange(len(rows))
        if dates[k]:
            local = local[sub.get_column(f"_keep{k}").to_numpy()[local]]
        if not len(local):
            parts[k] = _Part(rows[local], pl.DataFrame(), *_NO_STATE)
            continue
        whole = len(local) == len(rows)
        pick = slice(None) if whole else local
        read_k = flags[[f"_st{k}", f"_doubt{k}", *(f"{name}{k}" for name in _CODES if codes[k])]]
        state, doubted, *item_codes = (c.to_numpy()[pick] for c in read_k.get_columns())
        parts[k] = _Part(
            rows[pick],
            sub[columns[k]] if whole else sub[columns[k]][_index(local)],
            state,
            doubted,
            item_codes if codes[k] else None,
        )
    return parts


#: the state and doubt of an item without projects
_NO_STATE = (np.zeros(0, dtype=np.int8), np.zeros(0, dtype=bool))

#: polars' row index type, in numpy
_INDEX = np.uint32 if pl.get_index_type() == pl.UInt32 else np.uint64


def _index(positions: np.ndarray) -> pl.Series:
    """Row positions in polars' index type: taken as they are (an Int64 Series is checked for
    negative and oversized positions and cast on every use)."""
    return pl.Series(positions.astype(_INDEX))


def _evaluate_book(
    frame: pl.DataFrame,
    book: Rulebook,
    present: _Present,
    groups: _Groups,
    no_flags: Callable[[], pl.Series],
    words: _Vocabulary,
) -> tuple[list[pl.Series], pl.LazyFrame, np.ndarray]:
    """Columns of the summary for one rulebook, its decisions (lazy) and the integer each
    project's ``R__missing`` was decoded from (see :func:`_summary_codes`).

    Staged like the reader: each item's scope, then on the projects it can concern only (see
    :class:`_Part`) its criterion columns, result and state (2 pass, 1 unknown, 0 fail, null
    out of scope); the rulebook's status is the best state over its items and its item the
    first item in file order with it.

    Unknowns are never decisions: an item whose regional scope meets a project without a
    province, or whose activity matches while the given industry code is not one of its rows
    (a conflict, flagged), is unknown; so is a rulebook for a project whose activity is neither
    given nor inferred (and no industry code decides it): ``insufficient_data`` naming
    ``province``, ``industry_code`` or ``activity``.
    """
    compiled = _compile(book, present)
    parts = _parts(frame, compiled, groups)
    noid = pl.col("activity").is_null()  # nothing says what the project is
    if any(item.scope and item.scope.industry_codes for item in book.leaf_items):
        noid = noid & pl.col("industry_class").is_null()
    if book.item_field:
        noid = noid & pl.col(book.item_field).is_null()
    work = frame.select(
        "project_id", "activity", "approval_date", "industry_class", noid.alias("_noid")
    )
    status_items = [k for k, c in enumerate(compiled) if c.item.effect == "status"]
    flag_items = [k for k, c in enumerate(compiled) if c.item.effect == "flag"]
    # the best state (-1: none) and the selected item (-1: none), over the items' own projects
    best = np.full(frame.height, -1, dtype=np.int8)
    for k in status_items:
        pos, state = parts[k].pos, parts[k].state
        best[pos] = np.maximum(best[pos], state)
    # no item in scope and nothing says what the project is: unknown, ask for the activity
    unidentified = (best < 0) & work["_noid"].to_numpy()
    best[unidentified] = _UNKNOWN
    # On a tie an item the project is plainly in scope of wins over one whose code or claim
    # contradicts it (that one is chosen only when no other item has the best state)
    sel = np.full(frame.height, -1, dtype=np.int32)
    chosen = {k: np.zeros(0, dtype=np.int64) for k in status_items}  # where, in its part
    doubted = [k for k in status_items if _doubt(k, compiled[k]) is not None]
    for k, plain in [(k, True) for k in status_items] + [(k, False) for k in doubted]:
        part = parts[k]
        wins = (part.state >= 0) & (part.state == best[part.pos])
        if plain:
            wins &= ~part.doubt
        local = np.flatnonzero(wins)
        local = local[sel[part.pos[local]] < 0]
        sel[part.pos[local]] = k
        chosen[k] = np.sort(np.concatenate([chosen[k], local])) if len(chosen[k]) else local
    statuses = book.status_map
    texts = [statuses.out_of_scope, statuses.in_scope_fail, "insufficient_data"]
    codes = [compiled[k].item.code if k in status_items else None for k in range(len(compiled))]
    # Integers until the end: the selected item's index, then its codes (see _item_codes),
    # decoded once per distinct value into the missing fields, criteria text and SC result.
    work = work.with_columns(
        _nonnegative("_best", best),
        _nonnegative("_sel", sel),
        pl.Series("_unidentified", unidentified),
        pl.Series("_item", [*codes, None], dtype=pl.String).gather(
            pl.Series(np.where(sel < 0, len(compiled), sel))
        ),
        pl.Series("_status", [*texts, statuses.in_scope_pass], dtype=pl.String).gather(
            pl.Series(best.astype(np.int64) + 1)
        ),
    )
    window = book.applies_to_approvals
    ghg = _ghg_marks(compiled, status_items, groups, sel)
    flags = _flags(work.height, compiled, flag_items, book, parts, sel, no_flags)
    series, missing_codes = _summary_codes(
        compiled, status_items, book, parts, chosen, best, unidentified
    )
    decoded = {s.name: s for s in series}
    summary = work.select(
        pl.col("_status").alias(f"{book.id}__status"),
        pl.col("_item").alias(f"{book.id}__item"),
        *(mark.alias(f"{book.id}__ghg_mark") for mark in ghg),
        _dated(pl.lit(True), window.from_, window.before).alias(f"{book.id}__applies"),
        *([flags.alias(f"{book.id}__flags")] if flags is not None else []),
    )
    order = [f"{book.id}__{part}" for part in ("sc_met", "missing", "criteria")]
    decisions = _decisions(frame, work, book, compiled, parts, sel, words)
    columns = summary.get_columns() + [decoded[name] for name in order if name in decoded]
    return columns, decisions, missing_codes


def _nonnegative(name: str, values: np.ndarray) -> pl.Series:
    """The values, null where negative (none)."""
    return pl.Series(name, np.ma.masked_array(values, values < 0))


def _columns(k: int, comp: _Compiled) -> tuple[list[tuple[Criterion, str]], dict[str, str]]:
    """The item's criteria with their result columns, and their in-force columns."""
    columns = [(c, f"c{k}_{j}") for j, (c, _, _) in enumerate(comp.criteria)]
    forces = {f"c{k}_{j}": f"f{k}_{j}" for j, f in enumerate(comp.in_force) if f is not None}
    return columns, forces


def _doubt(k: int, comp: _Compiled) -> pl.Expr | None:
    """The item's state rests on a contradiction (code conflict or doubtful claim)."""
    parts = [
        pl.col(f"{prefix}{k}").fill_null(False)
        for prefix, expr in (("x", comp.conflict), ("y", comp.claim_clash))
        if expr is not None
    ]
    return pl.any_horizontal(parts) if parts else None


def _state(k: int, comp: _Compiled) -> pl.Expr:
    """An item's state for each project: pass, unknown, fail, or null (out of scope)."""
    return _state_of(k, comp.conflict is not None, comp.claim_clash is not None)


@lru_cache(maxsize=4096)
def _state_of(k: int, conflict: bool, clash: bool) -> pl.Expr:
    """:func:`_state`, built once per shape (the typed literals alone took 0.2 ms per item)."""
    scope, result = pl.col(f"s{k}"), pl.col(f"r{k}")
    passed, unknown, failed = (pl.lit(v, pl.Int8) for v in (_PASS, _UNKNOWN, _FAIL))
    state = (
        pl.when(scope & result)
        .then(passed)
        .when(scope & result.is_null())
        .then(unknown)
        .when(scope)
        .then(failed)
        # region unknown: a failed criterion fails the item anywhere, else it is unknown
        .when(scope.is_null() & result.not_().fill_null(False))
        .then(failed)
        .when(scope.is_null())
        .then(unknown)
    )
    if conflict:
        state = state.when(pl.col(f"x{k}")).then(unknown)
    if clash:
        state = state.when(pl.col(f"y{k}")).then(unknown)
    return state.otherwise(None)


def has_components(book: Rulebook) -> bool:
    """Does the rulebook split its criteria into SC / DNSH / minimum safeguards (EU-style)?

    Parameters
    ----------
    book : Rulebook

    Returns
    -------
    bool
        True when a criterion names a ``component``: the results then carry ``R__sc_met``.
    """
    return any(c.component for item in book.leaf_items for c in item.criteria)


_NOT_SC = ("dnsh", "minimum_safeguards")


def _gating(comp: _Compiled) -> list[int]:
    """Criteria whose unknown (or defaulted) inputs are asked for: gating ones reading inputs."""
    return [j for j, (c, _, used) in enumerate(comp.criteria) if gates(c) and used]


# --------------------------------------------------------------------------------------------
# Per-project codes of an item, computed on the projects that selected it only: everything the
# summary says about the selected item (missing fields, SC result, criteria text) is decoded
# from three integers, once per distinct value. _extra's bits: the scope facts, then one bit
# per criterion that decided on a default although its inputs were missing.
_REGION_BIT, _CONFLICT_BIT, _CLAIM_BIT, _DEFAULT_BASE = 0, 1, 2, 3
_CODES = ("_states", "_extra", "_nulls")
_FAIL_S, _PASS_S, _UNKNOWN_S, _NA_S = 0, 1, 2, 3  # criterion states in _states (base 4)
#: criteria an item may have: 4 states each must fit one Int64 (4**31 < 2**63)
MAX_CRITERIA = 31


def _item_codes(k: int, comp: _Compiled) -> list[pl.Expr]:
    """``_states`` (per criterion: 0 fail, 1 pass, 2 unknown, 3 not in force, base 4),
    ``_extra`` (unknown region, code conflict, doubtful claim, defaulted criteria) and
    ``_nulls`` (which tracked inputs are missing) of item ``k``."""
    return _codes_of(
        k,
        tuple(force is not None for force in comp.in_force),
        comp.conflict is not None,
        comp.claim_clash is not None,
        tuple(comp.defaults),
        len(_inputs(comp, _gating(comp))),
    )


@lru_cache(maxsize=4096)
def _codes_of(
    k: int,
    in_force: tuple[bool, ...],
    conflict: bool,
    clash: bool,
    defaults: tuple[bool, ...],
    tracked: int,
) -> list[pl.Expr]:
    """:func:`_item_codes`, built once per shape of item (items share it across rulebooks)."""

    def state(j: int) -> pl.Expr:
        value = pl.col(f"c{k}_{j}").cast(pl.Int64).fill_null(_int(_UNKNOWN_S))
        if in_force[j]:
            value = pl.when(pl.col(f"f{k}_{j}")).then(value).otherwise(_int(_NA_S))
        return value * _int(4**j)

    def bit(flag: pl.Expr, b: int) -> pl.Expr:
        return flag.cast(pl.Int64) * _int(1 << b)

    states = pl.sum_horizontal(state(j) for j in range(len(in_force))) if in_force else _int(0)
    extra = [bit(pl.col(f"s{k}").is_null(), _REGION_BIT)]
    if conflict:
        extra.append(bit(pl.col(f"x{k}").fill_null(False), _CONFLICT_BIT))
    if clash:
        extra.append(bit(pl.col(f"y{k}").fill_null(False), _CLAIM_BIT))
    extra += [
        bit(pl.col(f"m{k}_{j}"), _DEFAULT_BASE + j) for j, default in enumerate(defaults) if default
    ]
    nulls = (
        pl.sum_horizontal(bit(pl.col(f"n{k}_{b}"), b) for b in range(tracked))
        if tracked
        else _int(0)
    )
    return [
        states.alias("_states"),
        pl.sum_horizontal(extra).alias("_extra"),
        nulls.alias("_nulls"),
    ]


@lru_cache(maxsize=256)
def _int(value: int) -> pl.Expr:
    """An Int64 literal, built once (a typed literal takes some 30 µs to build)."""
    return pl.lit(value, pl.Int64)


def _part_codes(part: _Part, k: int, comp: _Compiled, local: np.ndarray) -> list[np.ndarray]:
    """The codes (:func:`_item_codes`) of item ``k`` for its projects ``part.pos[local]``."""
    if part.codes is None:  # not read with the part (see _evaluate_items): from its columns
        codes = part.frame[pl.Series(local)].select(_item_codes(k, comp))
        return [codes.get_column(name).to_numpy() for name in _CODES]
    return [code[local] for code in part.codes]


def _decode(k: int, comp: _Compiled, states: int) -> list[int]:
    return [states // 4**j % 4 for j in range(len(comp.criteria))]


def _kleene(comp: _Compiled, state: list[int], keep: Callable[[Criterion], bool]) -> bool | None:
    """The item's result over its gating criteria that ``keep`` selects, from their states, as
    the engine combines them (required AND, alternative groups OR; not in force is neutral)."""
    required: list[bool | None] = []
    groups: dict[str, list[bool | None]] = {}
    for j, (criterion, _, _) in enumerate(comp.criteria):
        if not gates(criterion) or not keep(criterion) or state[j] == _NA_S:
            continue
        value = {_FAIL_S: False, _PASS_S: True, _UNKNOWN_S: None}[state[j]]
        if criterion.alternative:
            groups.setdefault(criterion.alternative, []).append(value)
        else:
            required.append(value)
    terms = required + [
        True if True in members else (None if None in members else False)
        for members in groups.values()
    ]
    if False in terms:
        return False
    return None if None in terms else True


def _in_group(alternative: str) -> Callable[[Criterion], bool]:
    return lambda criterion: criterion.alternative == alternative


def _fields(
    compiled: list[_Compiled], k: int, unknown: bool, states: int, extra: int, nulls: int
) -> list[str] | None:
    """The fields to ask for about item ``k``: for an unknown result, the missing inputs of its
    unknown gating criteria (an alternative only while its group is undecided), ``province``
    for a regional rule without one, ``industry_code`` / the claim field for a contradiction;
    for a decided one, the inputs of criteria that decided on a default (None if none)."""
    comp = compiled[k]
    assert comp.item.scope is not None
    if unknown and comp.item.scope.provinces and extra >> _REGION_BIT & 1:
        return ["province"]  # a regional rule: the province decides first
    state = _decode(k, comp, states)
    gating = _gating(comp)
    if unknown:
        undecided = {
            c.alternative
            for c, _, _ in comp.criteria
            if c.alternative and _kleene(comp, state, _in_group(c.alternative)) is None
        }
        asked = [
            j
            for j in gating
            if state[j] == _UNKNOWN_S
            and (
                comp.criteria[j][0].alternative is None
                or comp.criteria[j][0].alternative in undecided
            )
        ]
    else:
        asked = [j for j in gating if extra >> (_DEFAULT_BASE + j) & 1]
    tracked = _inputs(comp, gating)
    absent = {f for b, f in enumerate(tracked) if nulls >> b & 1}
    out: list[str] = []
    for j in asked:
        used = comp.criteria[j][2]
        # a criterion reading several inputs asks for the missing ones (all if none is)
        wanted = [f for f in used if f in absent] if len(used) > 1 else used
        out += [f for f in (wanted or used) if f not in out]
    if unknown and extra >> _CONFLICT_BIT & 1:
        out.append("industry_code")
    if unknown and extra >> _CLAIM_BIT & 1 and comp.claim_field:
        out.append(comp.claim_field)
    return out if (out or unknown) else None


def _summary_codes(
    compiled: list[_Compiled],
    status_items: list[int],
    book: Rulebook,
    parts: dict[int, _Part],
    chosen: dict[int, np.ndarray],
    best: np.ndarray,
    unidentified: np.ndarray,
) -> tuple[list[pl.Series], np.ndarray]:
    """``R__missing``, ``R__criteria`` and (with components) ``R__sc_met`` of every project,
    decoded from the selected item's codes once per distinct (item, status, codes): the codes
    of each item read, and told apart, on the projects that selected it only (``chosen``: their
    positions in its part). With them, the position of each project's ``R__missing`` among the
    distinct ones (projects with equal positions have equal ``R__missing``)."""
    words = ("fail", "pass", "unknown", "n/a")
    with_components = has_components(book)

    def describe(k: int, unknown: bool, states: int, extra: int, nulls: int) -> tuple:
        comp = compiled[k]
        state = _decode(k, comp, states)
        text = (
            "; ".join(f"{c.id}={words[state[j]]}" for j, (c, _, _) in enumerate(comp.criteria))
            if comp.criteria
            else "scope=pass"  # no criteria: being in scope (activity / GB/T code) is the test
        )
        sc = _kleene(comp, state, lambda c: c.component not in _NOT_SC) if with_components else None
        return _fields(compiled, k, unknown, states, extra, nulls), text, sc

    # 0: no item selected; 1: nothing says what the project is, ask for the activity
    described: list[tuple] = [(None, None, None), (["activity"], None, None)]
    index = unidentified.astype(np.int64)
    unknown = best == _UNKNOWN
    for k in status_items:
        part, local = parts[k], chosen[k]
        if not len(local):
            continue
        rows = part.pos[local]
        keys = [unknown[rows], *_part_codes(part, k, compiled[k], local)]
        combination, first = _combinations(keys)
        index[rows] = len(described) + combination
        described += [describe(k, *row) for row in _rows(keys, first)]
    # an exclusion list asks an undecided project for the fields of all its items
    missing = [d[0] for d in described]
    missing_index = index
    asked = (
        _missing_all_items(compiled, status_items, parts, best, unidentified)
        if book.kind == "exclusion"
        else None
    )
    if asked is not None:
        where, union_index, unions = asked
        missing_index = index.copy()
        missing_index[where] = len(missing) + union_index
        missing += unions
    out = [
        pl.Series(f"{book.id}__missing", missing, dtype=pl.List(pl.String)).gather(
            pl.Series(missing_index)
        ),
        pl.Series(f"{book.id}__criteria", [d[1] for d in described], dtype=pl.String).gather(
            pl.Series(index)
        ),
    ]
    if with_components:
        sc = pl.Series(f"{book.id}__sc_met", [d[2] for d in described], dtype=pl.Boolean)
        out.append(sc.gather(pl.Series(index)))
    return out, missing_index


def _combinations(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each row's combination of values of the integer (or boolean) columns, numbered from 0
    (equal combinations, equal numbers), and a row with each combination: with numpy, a
    column at a time (see :func:`_dense`)."""
    key = np.zeros(len(columns[0]), dtype=np.int64)
    if not len(key):
        return key, key
    span = 1
    for column in columns:
        if not len(column) or _constant(column):
            continue
        values = column.astype(np.int64)
        low = values.min()
        seen, position = _dense(values - low, int(values.max() - low) + 1)
        seen, key = _dense(key * len(seen) + position, span * len(seen))
        span = len(seen)
    first = np.zeros(span, dtype=np.int64)
    first[key] = np.arange(len(key))  # any row of each combination
    return key, first


def _rows(columns: list[np.ndarray], at: np.ndarray) -> list[tuple]:
    """The rows ``at`` of the columns, as Python values."""
    return list(zip(*(column[at].tolist() for column in columns), strict=True))


def _constant(values: np.ndarray) -> bool:
    """Are all values equal (and not NaN, a null)?"""
    return bool((values == values[0]).all())


def _missing_all_items(
    compiled: list[_Compiled],
    status_items: list[int],
    parts: dict[int, _Part],
    best: np.ndarray,
    unidentified: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, list[list[str]]] | None:
    """For an exclusion list: any item that applies excludes, so "not excluded" needs every
    undecided item decided; an undecided project is asked for the fields of all of them (not
    only of the first), in item order. Decoded once per distinct combination of the items'
    codes, over the undecided projects only: those projects, the position of each one's
    fields among the distinct ones, and those (None where no project is asked)."""
    undecided = (best == _UNKNOWN) & ~unidentified
    if len(status_items) < 2 or not undecided.any():
        return None
    where = np.flatnonzero(undecided)
    columns = []  # per item: undecided on it, then its codes (0 where not)
    for k in status_items:
        part = parts[k]
        unknown = np.flatnonzero((part.state == _UNKNOWN) & undecided[part.pos])
        slots = np.searchsorted(where, part.pos[unknown])
        marked = np.zeros(len(where), dtype=bool)
        marked[slots] = True
        codes = [np.zeros(len(where), dtype=np.int64) for _ in _CODES]
        if len(unknown):
            for column, code in zip(codes, _part_codes(part, k, compiled[k], unknown), strict=True):
                column[slots] = code
        columns += [marked, *codes]

    def union(*codes: int) -> list[str]:
        out: list[str] = []
        for i, k in enumerate(status_items):
            marked, states, extra, nulls = codes[4 * i : 4 * i + 4]
            if marked:
                asked = _fields(compiled, k, True, states, extra, nulls) or []
                out += [f for f in asked if f not in out]
        return out

    at, first = _combinations(columns)
    return where, at, [union(*row) for row in _rows(columns, first)]


def _inputs(comp: _Compiled, criteria: list[int]) -> list[str]:
    """The inputs whose absence is tracked per project: those of the given criteria that read
    more than one input (an unknown criterion reading one input is missing that input)."""
    return list(
        dict.fromkeys(
            f for j in criteria if len(comp.criteria[j][2]) > 1 for f in comp.criteria[j][2]
        )
    )


def _reads_missing(comp: _Compiled, j: int) -> pl.Expr:
    """The criterion is in force and one of its inputs is missing."""
    missing = pl.any_horizontal(pl.col(name).is_null() for name in comp.criteria[j][2])
    force = comp.in_force[j]
    return missing if force is None else missing & force


def _ghg_marks(
    compiled: list[_Compiled], status_items: list[int], groups: _Groups, sel: np.ndarray
) -> list[pl.Series]:
    """The GHG mark (√ / √√) of the selected item. Where an item's GB/T rows carry different
    marks (e.g. 3.2.9: 7514 √, 7516 none): the mark of the row the project's industry code
    names, else that of the rows its activity corresponds to (``activity_ghg_marks``), else
    none. Worked out once per distinct (activity and code combination, selected item)."""
    if not any(
        compiled[k].item.ghg_mark or compiled[k].item.rows or compiled[k].item.activity_ghg_marks
        for k in status_items
    ):
        return []
    marks = {k: compiled[k].item.ghg_mark for k in status_items if compiled[k].item.ghg_mark}
    mark = pl.col("_sel").replace_strict(marks, default=None, return_dtype=pl.String)
    by_row: dict[tuple[int, str], str | None] = {}
    ambiguous: set[tuple[int, str]] = set()
    for k in status_items:
        rows = compiled[k].item.rows
        if len({row.ghg_mark for row in rows}) < 2:
            continue
        for row in rows:
            if row.industry_code is None:
                continue
            key = (k, row.industry_code)
            if key in by_row and by_row[key] != row.ghg_mark:
                ambiguous.add(key)  # one code in two rows with different marks: say nothing
            by_row[key] = row.ghg_mark
    pairs = [(k, code, m) for (k, code), m in by_row.items() if (k, code) not in ambiguous]
    by_activity = [
        (k, activity, m)
        for k in status_items
        for activity, m in compiled[k].item.activity_ghg_marks.items()
    ]
    items = len(compiled) + 1  # the selected item, or none
    seen, index = _dense(groups.key_of * items + (sel + 1), groups.keys.height * items)
    table = groups.keys.select("activity", "industry_class")[_index(seen // items)]
    table = table.with_columns(_nonnegative("_sel", (seen % items - 1).astype(sel.dtype)))
    # the activity's rows, then (deciding) the row the industry code names; a row may have none
    table, mark = _mark_by(table, "activity", by_activity, mark)
    table, mark = _mark_by(table, "industry_class", pairs, mark)
    return [table.select(mark).to_series().gather(pl.Series(index))]


def _mark_by(
    table: pl.DataFrame, key: str, entries: Sequence[tuple[int, str, str | None]], mark: pl.Expr
) -> tuple[pl.DataFrame, pl.Expr]:
    """Where (selected item, ``key``) is one of ``entries``, its mark replaces ``mark``."""
    if not entries:
        return table, mark
    value, known = f"_mark_{key}", f"_known_{key}"
    lookup = pl.DataFrame(
        entries, schema={"_sel": pl.Int32, key: pl.String, value: pl.String}, orient="row"
    ).with_columns(pl.lit(True).alias(known))
    table = table.join(lookup, on=["_sel", key], how="left", maintain_order="left")
    return table, pl.when(pl.col(known)).then(pl.col(value)).otherwise(mark)


#: the flag raised where an activity matches an item but the industry code is not its row
CONFLICT_FLAG = "industry_code_conflict"
#: the flag raised where a claimed item is not one the project's activity or code belongs to
CLAIM_FLAG = "claimed_item_conflict"


def has_flags(book: Rulebook) -> bool:
    """Does the rulebook report ``R__flags``?

    It does when it has flag items, or items whose activity an industry code or a claimed
    item can contradict. Decided by the file, not by the pipeline, so the result columns do
    not depend on the data.

    Parameters
    ----------
    book : Rulebook

    Returns
    -------
    bool
    """
    return bool(book.item_field) or any(
        item.effect == "flag"
        or bool(
            item.scope.activities and item.scope.industry_codes and item.scope.industry_confirms
        )
        for item in book.leaf_items
        if item.scope
    )


def _flags(
    height: int,
    compiled: list[_Compiled],
    flag_items: list[int],
    book: Rulebook,
    parts: dict[int, _Part],
    sel: np.ndarray,
    no_flags: Callable[[], pl.Series],
) -> pl.Series | None:
    """Codes of the flag items that apply (e.g. CBAM exposure), ``industry_code_conflict``
    where the given industry code is none of the rows of the items the activity matches, and
    ``claimed_item_conflict`` where the selected item is a doubtful claim. Packed into one
    integer per project (set with numpy on the items' own projects) and decoded once per
    distinct value."""
    conflicts = [k for k, comp in enumerate(compiled) if comp.conflict is not None]
    clashes = [k for k, comp in enumerate(compiled) if comp.claim_clash is not None]
    names = [compiled[k].item.code for k in flag_items]
    names += [CONFLICT_FLAG] * bool(conflicts) + [CLAIM_FLAG] * bool(clashes)
    if not names:
        return no_flags() if has_flags(book) else None
    raised = [np.zeros(height, dtype=bool) for _ in names]
    for flag, k in zip(raised, flag_items, strict=False):
        flag[parts[k].pos[parts[k].state == _PASS]] = True
    if conflicts:
        # only when no item of the activity accepted the code
        any_conflict, chosen = raised[len(flag_items)], np.zeros(height, dtype=bool)
        for k in conflicts:
            pos, fact = _fact(parts[k], f"x{k}")
            any_conflict[pos[fact]] = True
            chosen[pos[fact & (sel[pos] == k)]] = True
        any_conflict &= (sel < 0) | chosen
    if clashes:
        doubtful = raised[-1]
        for k in clashes:
            pos, fact = _fact(parts[k], f"y{k}")
            doubtful[pos[fact & (sel[pos] == k)]] = True
    bits = np.zeros(height, dtype=np.int64)
    for i, flag in enumerate(raised):
        bits |= flag.astype(np.int64) << i
    # one integer per project with a few distinct values: told apart with numpy
    seen, index = _dense(bits, 1 << len(names))
    found = [[name for i, name in enumerate(names) if value >> i & 1] for value in seen.tolist()]
    return pl.Series("_value", found, dtype=pl.List(pl.String)).gather(pl.Series(index))


def _fact(part: _Part, name: str) -> tuple[np.ndarray, np.ndarray]:
    """An item's projects and where a scope fact (conflict, clash) is true on them."""
    if not len(part.pos):
        return part.pos, np.zeros(0, dtype=bool)
    return part.pos, part.frame[name].fill_null(False).to_numpy()


def _decisions(
    frame: pl.DataFrame,
    work: pl.DataFrame,
    book: Rulebook,
    compiled: list[_Compiled],
    parts: dict[int, _Part],
    sel: np.ndarray,
    words: _Vocabulary,
) -> pl.LazyFrame:
    """Long table of criterion results for every in-scope item; a 'scope' row otherwise.

    Lazy: nothing is materialised until the table is written (streamed to Parquet) or read.
    Each item's rows come from its own projects (:class:`_Part`), the inputs its criteria
    read gathered there.
    """
    base = work.lazy()  # item and status columns per project
    out: list[pl.LazyFrame] = []
    for k, comp in enumerate(compiled):
        scope = comp.item.scope
        assert scope is not None
        part = parts[k]
        if not len(part.pos):  # no project where the item is shown
            continue
        same = [i for i, c in enumerate(compiled) if c.item.code == comp.item.code]
        # the inputs shown, gathered once per item (a gather in each part's plan made
        # collecting the plan slow: minutes for 20,000 projects)
        seen = ["project_id", "activity", "industry_class"]
        shown_inputs = [
            name
            for name in dict.fromkeys([*seen, *(n for _, _, used in comp.criteria for n in used)])
            if name not in part.frame.columns
        ]
        facts = (
            part.frame.with_columns(pl.Series("_selected", _selected(sel[part.pos], same)))
            .hstack(frame.select(pl.col(shown_inputs).gather(pl.Series(part.pos))).get_columns())
            .lazy()
        )
        # in scope, or unknown (region), or a code conflict: the criteria are shown
        shown = pl.col(f"s{k}").fill_null(True)
        if comp.conflict is not None:
            shown = shown | pl.col(f"x{k}")
        if comp.claim_clash is not None:
            shown = shown | pl.col(f"y{k}")
        for j, (criterion, _, used) in enumerate(comp.criteria):
            rows = shown if comp.in_force[j] is None else shown & pl.col(f"f{k}_{j}")
            # only this criterion's columns: a part over all of `work` (columns per item) made
            # the plan quadratic in items (2,000 items: 2.7 GB for 3 projects); the values it
            # read are formatted after the filter, on the projects shown only
            own = list(dict.fromkeys(["_selected", f"c{k}_{j}", *rows.meta.root_names()]))
            read = [name for name in dict.fromkeys(["project_id", *used]) if name not in own]
            out.append(
                facts.select(*own, *read)
                .filter(rows)
                .select(
                    "project_id",
                    words.label("rulebook", book.id).alias("rulebook"),
                    words.label("item", comp.item.code).alias("item"),
                    pl.col("_selected").alias("selected"),
                    words.label("criterion", criterion.id).alias("criterion"),
                    words.result(f"c{k}_{j}").alias("result"),
                    _seen(used).alias("value"),
                    words.label("threshold", criterion.threshold or criterion.condition).alias(
                        "threshold"
                    ),
                    words.label("clause", criterion.clause).alias("clause"),
                    words.label("verification", criterion.verification).alias("verification"),
                    pl.lit(gates(criterion)).alias("gate"),
                    words.names(tuple(used)).alias("fields"),
                )
            )
        unknown = _scope_facts(book, comp.item)
        if scope.provinces:
            out.append(
                _scope_row(
                    facts.filter(pl.col(f"s{k}").is_null()),
                    book,
                    comp.item,
                    unknown["region"],
                    pl.lit("province=(missing)"),
                    words,
                )
            )
        if comp.conflict is not None:
            out.append(
                _scope_row(
                    facts.filter(pl.col(f"x{k}")),
                    book,
                    comp.item,
                    unknown["conflict"],
                    pl.format(
                        "industry_code={}; activity={}",
                        pl.col("industry_class"),
                        pl.col("activity"),
                    ),
                    words,
                )
            )
        if comp.claim_clash is not None and comp.claim_field:
            out.append(
                _scope_row(
                    facts.filter(pl.col(f"y{k}")),
                    book,
                    comp.item,
                    unknown["claim"],
                    pl.format(
                        "claimed {}; activity={}; industry_code={}",
                        pl.lit(comp.item.code),
                        pl.col("activity").fill_null("(none)"),
                        pl.col("industry_class").fill_null("(none)"),
                    ),
                    words,
                )
            )
    out.append(
        base.filter(pl.col("_item").is_null()).select(
            "project_id",
            words.label("rulebook", book.id).alias("rulebook"),
            words.label("item", None).alias("item"),
            pl.lit(False).alias("selected"),
            words.label("criterion", "scope").alias("criterion"),
            pl.when(pl.col("_unidentified"))
            .then(words.label("result", "unknown"))
            .otherwise(words.label("result", "fail"))
            .alias("result"),
            pl.format("activity={}", pl.col("activity").fill_null("(none)")).alias("value"),
            words.label("threshold", _NO_ITEM).alias("threshold"),
            words.label("clause", book.document).alias("clause"),
            words.label("verification", book.verification).alias("verification"),
            pl.lit(True).alias("gate"),
            words.names(("activity",)).alias("fields"),
        )
    )
    return pl.concat(out, how="vertical")


def _selected(sel: np.ndarray, items: list[int]) -> np.ndarray:
    """Where the selected item is one of ``items`` (mostly one: a comparison, ~20x cheaper
    than ``np.isin``)."""
    return sel == items[0] if len(items) == 1 else np.isin(sel, items)


def _scope_row(
    rows: pl.LazyFrame,
    book: Rulebook,
    item: Item,
    fact: tuple[str, str],
    value: pl.Expr,
    words: _Vocabulary,
) -> pl.LazyFrame:
    """A decision row for a scope fact that is unknown for the project (its province for a
    regional rule, or an industry code that contradicts its activity: see
    :func:`_scope_facts`)."""
    name, threshold = fact
    return rows.select(
        "project_id",
        words.label("rulebook", book.id).alias("rulebook"),
        words.label("item", item.code).alias("item"),
        pl.col("_selected").alias("selected"),
        words.label("criterion", name).alias("criterion"),
        words.label("result", "unknown").alias("result"),
        value.alias("value"),
        words.label("threshold", threshold).alias("threshold"),
        words.label("clause", book.document).alias("clause"),
        words.label("verification", item.verification).alias("verification"),
        pl.lit(True).alias("gate"),
        words.names((name,)).alias("fields"),
    )


def _seen(used: list[str]) -> pl.Expr:
    """The input values a criterion read, as text: ``power_density_w_m2=6.0``."""
    if not used:
        return pl.lit(None, dtype=pl.String).alias("_seen")
    return pl.concat_str(
        [
            pl.format("{}={}", pl.lit(name), pl.col(name).cast(pl.String).fill_null("(missing)"))
            for name in used
        ],
        separator="; ",
    ).alias("_seen")
