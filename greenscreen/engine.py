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
unknown; one passed alternative passes the group.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import NamedTuple

import polars as pl

from greenscreen.errors import RulebookError
from greenscreen.rulebook import (
    DERIVED_INPUTS,
    Criterion,
    Item,
    Rulebook,
    Scope,
    compile_condition,
    input_fields,
)
from greenscreen.schema import FIELDS, activities

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

_TRUE = ("true", "yes", "y", "1", "是", "有", "√", "✓", "x")
_FALSE = ("false", "no", "n", "0", "否", "无", "×", "✗")


@dataclass(frozen=True)
class Screening:
    """The engine's output: ``summary`` (one row per project) and the decisions (long, lazy:
    materialised when written or first read)."""

    summary: pl.DataFrame
    decisions_lazy: pl.LazyFrame

    @cached_property
    def decisions(self) -> pl.DataFrame:
        return self.decisions_lazy.collect()


def prepare(projects: pl.DataFrame, rulebooks: Sequence[Rulebook]) -> pl.DataFrame:
    """Add the derived inputs, infer missing activities, type the evidence fields."""
    frame = with_derived_inputs(infer_activity(projects))
    declared: dict[str, pl.DataType] = {}
    for book in rulebooks:
        for name, dtype in input_fields(book).items():
            if name not in FIELDS and name not in DERIVED_INPUTS:
                declared[name] = dtype
    casts = [_evidence(frame, name, dtype) for name, dtype in declared.items()]
    return frame.with_columns(casts) if casts else frame


def with_derived_inputs(frame: pl.DataFrame) -> pl.DataFrame:
    """Add the inputs rulebooks and programmes may use besides the template's
    (:data:`greenscreen.rulebook.DERIVED_INPUTS`)."""
    hours = pl.col("capacity_mw") * pl.col("full_load_hours")
    return frame.with_columns(
        (pl.col("storage_energy_mwh") / pl.col("storage_power_mw"))
        .fill_nan(None)
        .alias("storage_duration_h"),
        pl.coalesce(pl.col("annual_generation_mwh"), hours).alias("generation_mwh"),
        pl.col("industry_code").str.replace(r"^[A-T]", "").alias("industry_class"),
    )


def _evidence(frame: pl.DataFrame, name: str, dtype: pl.DataType) -> pl.Expr:
    """An evidence column typed as its rulebook declares it; all-null when not supplied."""
    if name not in frame.columns:
        return pl.lit(None, dtype=dtype).alias(name)
    if frame.schema[name] == dtype:
        return pl.col(name)
    text = pl.col(name).cast(pl.String).str.strip_chars().str.to_lowercase()
    if dtype == pl.Boolean:
        return (
            pl.when(text.is_in(_TRUE))
            .then(True)
            .when(text.is_in(_FALSE))
            .then(False)
            .otherwise(None)
            .alias(name)
        )
    if dtype == pl.Date:
        return text.str.to_date("%Y-%m-%d", strict=False).alias(name)
    return pl.col(name).cast(dtype, strict=False).alias(name)


def infer_activity(projects: pl.DataFrame) -> pl.DataFrame:
    """Fill a blank ``activity`` from ``description`` keywords (zh and en); never silently.

    Adds ``activity_source``: ``input``, ``inferred`` (lower confidence: check it) or null
    when neither the input nor the keywords give an activity.
    """
    guess: pl.Expr = pl.lit(None, dtype=pl.String)
    # The activity with the most specific (longest) keyword is tried first, so "海上风电"
    # (wind_offshore) wins over "风电" (wind_onshore). Built innermost-last.
    for act, words in reversed(_keywords()):
        pattern = "(?i)" + "|".join(re.escape(w) for w in words)
        guess = (
            pl.when(pl.col("description").str.contains(pattern)).then(pl.lit(act)).otherwise(guess)
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
    empty = pl.Series("activity_candidates", [None] * frame.height, dtype=pl.List(pl.String))
    if not blank.any():
        return empty
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
        if claim:  # a project that names an item is screened under that item only
            named = pl.col(claim).str.strip_chars()
            clash = _claim_clash(scope, codes, (named == item.code).fill_null(False))
            claimed = named == item.code
            if clash is not None:
                claimed = claimed & ~clash
            in_scope = pl.when(named.is_not_null()).then(claimed).otherwise(in_scope)
            if conflict is not None:
                conflict = conflict & named.is_null()
        in_scope = _dated(in_scope, item.since, item.until)
        if conflict is not None:
            conflict = _dated(conflict, item.since, item.until)
        if clash is not None:
            clash = _dated(clash, item.since, item.until)
        criteria, in_force, defaults = [], [], []
        for criterion in item.criteria:
            expr, used = compile_condition(criterion.condition, fields)
            expr = expr.cast(pl.Boolean)
            force = _in_force(criterion)
            if force is not None:  # not in force for this project: neutral (an alternative
                # not in force offers nothing; see _combine for a group with none in force)
                expr = pl.when(force).then(expr).otherwise(pl.lit(criterion.alternative is None))
            criteria.append((criterion, expr, used))
            in_force.append(force)
            defaults.append(_decides_without(criterion.condition, used, fields))
        compiled.append(
            _Compiled(item, in_scope, criteria, in_force, defaults, conflict, clash, claim)
        )
    return compiled


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


def _decides_without(condition: str, used: list[str], fields: dict[str, pl.DataType]) -> bool:
    """Does the condition give true or false when all its inputs are missing (a ``coalesce``
    default)? Then a decision it takes may rest on missing evidence, which is reported."""
    if not used:
        return False
    return _decides_on_nulls(condition, tuple((name, fields[name]) for name in used))


@lru_cache(maxsize=4096)
def _decides_on_nulls(condition: str, inputs: tuple[tuple[str, pl.DataType], ...]) -> bool:
    empty = pl.DataFrame({name: pl.Series([None], dtype=dtype) for name, dtype in inputs})
    expr, _ = compile_condition(condition, dict(inputs))
    return empty.select(expr.cast(pl.Boolean).alias("v"))["v"][0] is not None


def _classes(scope: Scope) -> list[str]:
    """The scope's GB/T 4754 codes as classes (section letter dropped, as ``industry_class``)."""
    return [c.lstrip("ABCDEFGHIJKLMNOPQRST") for c in scope.industry_codes]


class _Present(NamedTuple):
    """What occurs in a pipeline: activities, GB/T classes and, per claim field, item codes."""

    activities: set[str]
    classes: set[str]
    claims: dict[str, set[str]]


def _present(frame: pl.DataFrame, rulebooks: Sequence[Rulebook]) -> _Present:
    """Read once per screen, for all rulebooks."""

    def values(column: pl.Series) -> set[str]:
        return set(column.drop_nulls().unique().to_list())

    fields = {book.item_field for book in rulebooks if book.item_field} & set(frame.columns)
    return _Present(
        values(frame["activity"]),
        values(frame["industry_class"]),
        {f: values(frame[f].cast(pl.String).str.strip_chars()) for f in fields},
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


def _combine(
    criteria: list[tuple[Criterion, str]], forces: dict[str, str] | None = None
) -> pl.Expr:
    """Kleene AND over required criteria and over OR-groups of alternatives. ``forces`` maps a
    criterion column to its in-force column: a group none of whose members is in force for a
    project does not constrain it."""
    forces = forces or {}
    groups: dict[str, list[str]] = {}
    required: list[pl.Expr] = []
    for criterion, column in criteria:
        if not _gates(criterion):
            continue
        if criterion.alternative:
            groups.setdefault(criterion.alternative, []).append(column)
        else:
            required.append(pl.col(column))
    terms = required
    for members in groups.values():
        group = pl.any_horizontal(pl.col(m) for m in members)
        if all(m in forces for m in members):
            group = pl.when(pl.any_horizontal(pl.col(forces[m]) for m in members)).then(group)
            group = group.otherwise(pl.lit(True))
        terms.append(group)
    return pl.all_horizontal(terms) if terms else pl.lit(True)


def _gates(criterion: Criterion) -> bool:
    """Does the criterion decide the status? ("should" and gate: false are only reported)"""
    return criterion.gate and criterion.level == "shall"


_PASS, _UNKNOWN, _FAIL = 2, 1, 0


def evaluate(projects: pl.DataFrame, rulebooks: Sequence[Rulebook]) -> Screening:
    """Screen every project against every rulebook.

    Parameters
    ----------
    projects
        Accepted projects as returned by :func:`greenscreen.read_pipeline`.
    rulebooks
        Loaded rulebooks (:func:`greenscreen.rulebook.load_rulebooks`).

    Returns
    -------
    Screening
        ``summary``: project_id, activity, activity_source, rules_basis (which rule versions
        were applied: by approval_date, or the current ones when it is missing), and per
        rulebook R the columns
        ``R__status``, ``R__item``, ``R__applies`` (R governs the loan by approval date),
        ``R__missing`` (fields to request when insufficient_data), ``R__criteria`` (the
        selected item's criteria and results), ``R__ghg_mark`` where items carry marks and, for
        rulebooks with flag items, ``R__flags``. ``decisions``: see :data:`DECISION_SCHEMA`,
        built lazily.
    """
    frame = prepare(projects, rulebooks)
    summary = frame.select(
        "project_id",
        "activity",
        "activity_source",
        "activity_candidates",
        pl.when(pl.col("approval_date").is_null())
        .then(pl.lit("current rules (no approval_date)"))
        .otherwise(pl.lit("approval_date"))
        .alias("rules_basis"),
    )
    decisions: list[pl.LazyFrame] = []
    present = _present(frame, rulebooks)
    for book in _dependency_order(rulebooks):
        columns, book_decisions = _evaluate_book(frame, book, present)
        summary = summary.with_columns(columns)
        if any(book.id in other.depends_on for other in rulebooks):
            frame = frame.with_columns(
                c for c in columns if c.name.endswith(("__status", "__item"))
            )
        decisions.append(book_decisions)
    summary = summary.with_columns(_inherit_missing(book) for book in rulebooks if book.depends_on)
    table = pl.concat(decisions, how="vertical") if decisions else DECISION_SCHEMA.to_frame().lazy()
    return Screening(summary=summary, decisions_lazy=table)


def _inherit_missing(book: Rulebook) -> pl.Expr:
    """A criterion over another rulebook's status is unknown because that rulebook lacks data:
    ask the client for *its* missing fields, not for ``eu_taxonomy__status``."""
    own = pl.col(f"{book.id}__missing")
    internal = [f"{dep}__{part}" for dep in book.depends_on for part in ("status", "item")]
    inherited = [
        pl.when(own.list.contains(f"{dep}__status"))
        .then(pl.col(f"{dep}__missing"))
        .otherwise(pl.lit([], dtype=pl.List(pl.String)))
        for dep in book.depends_on
    ]
    merged = pl.concat_list(
        own.list.eval(pl.element().filter(~pl.element().is_in(internal))), *inherited
    ).list.unique(maintain_order=True)
    return pl.when(own.is_null()).then(own).otherwise(merged).alias(f"{book.id}__missing")


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


def _evaluate_book(
    frame: pl.DataFrame, book: Rulebook, present: _Present
) -> tuple[list[pl.Series], pl.LazyFrame]:
    """Columns of the summary for one rulebook, and its decisions (lazy).

    Staged like the reader: scope and criterion columns, then one item result per item, then
    one state per item (2 pass, 1 unknown, 0 fail, null out of scope); the rulebook's status
    is the best state over its items and its item the first item in file order with it.

    Unknowns are never decisions: an item whose regional scope meets a project without a
    province, or whose activity matches while the given industry code is not one of its rows
    (a conflict, flagged), is unknown; so is a rulebook for a project whose activity is neither
    given nor inferred (and no industry code decides it): ``insufficient_data`` naming
    ``province``, ``industry_code`` or ``activity``.
    """
    compiled = _compile(book, present)
    exprs: list[pl.Expr] = []
    for k, comp in enumerate(compiled):
        exprs.append(comp.scope.alias(f"s{k}"))
        exprs += [expr.alias(f"c{k}_{j}") for j, (_, expr, _) in enumerate(comp.criteria)]
        exprs += [f.alias(f"f{k}_{j}") for j, f in enumerate(comp.in_force) if f is not None]
        if comp.conflict is not None:
            exprs.append(comp.conflict.alias(f"x{k}"))
        if comp.claim_clash is not None:
            exprs.append(comp.claim_clash.alias(f"y{k}"))
        if comp.item.effect == "status":
            inputs = _inputs(comp, _gating(comp))
            if len(inputs) <= 62:
                exprs += [pl.col(f).is_null().alias(f"n{k}_{b}") for b, f in enumerate(inputs)]
        exprs += [
            _reads_missing(comp, j).alias(f"m{k}_{j}")
            for j, default in enumerate(comp.defaults)
            if default
        ]
    noid = pl.col("activity").is_null()  # nothing says what the project is
    if any(item.scope and item.scope.industry_codes for item in book.leaf_items):
        noid = noid & pl.col("industry_class").is_null()
    if book.item_field:
        noid = noid & pl.col(book.item_field).is_null()
    work = frame.select(
        "project_id", "activity", "approval_date", "industry_class", noid.alias("_noid"), *exprs
    )
    work = work.with_columns(
        _combine(*_columns(k, comp)).alias(f"r{k}") for k, comp in enumerate(compiled)
    )
    work = work.with_columns(_state(k, comp).alias(f"st{k}") for k, comp in enumerate(compiled))
    status_items = [k for k, c in enumerate(compiled) if c.item.effect == "status"]
    flag_items = [k for k, c in enumerate(compiled) if c.item.effect == "flag"]
    best = (
        pl.max_horizontal(pl.col(f"st{k}") for k in status_items)
        if status_items
        else pl.lit(None, pl.Int8)
    )
    # no item in scope and nothing says what the project is: unknown, ask for the activity
    unidentified = best.is_null() & pl.col("_noid")
    work = work.with_columns(
        pl.when(unidentified).then(pl.lit(_UNKNOWN, pl.Int8)).otherwise(best).alias("_best"),
        unidentified.alias("_unidentified"),
    )
    # Integers until the end: the selected item's index and a bitmask of the criteria behind
    # its missing fields; the few distinct (index, mask) pairs are then mapped to codes and
    # field lists.
    # on a tie an item the project is plainly in scope of wins over one whose code or claim
    # contradicts it (that one is chosen only when no other item has the best state)
    doubts = {k: d for k in status_items if (d := _doubt(k, compiled[k])) is not None}
    best_here = {k: pl.col(f"st{k}") == pl.col("_best") for k in status_items}
    selected = [
        pl.when(best_here[k] & ~doubts[k] if k in doubts else best_here[k]).then(
            pl.lit(k, pl.Int32)
        )
        for k in status_items
    ] + [pl.when(best_here[k]).then(pl.lit(k, pl.Int32)) for k in doubts]
    work = work.with_columns(
        (pl.coalesce(selected) if selected else pl.lit(None, pl.Int32)).alias("_sel")
    )
    gating = {k: _gating(compiled[k]) for k in status_items}
    nulls = _null_mask(compiled, gating)
    work = work.with_columns(
        _missing_mask(compiled, gating).alias("_mask"),
        (pl.coalesce(nulls) if nulls else pl.lit(None, pl.Int64)).alias("_nulls"),
    )
    codes = {k: compiled[k].item.code for k in status_items}
    statuses = book.status_map
    work = work.with_columns(
        pl.col("_sel").replace_strict(codes, default=None, return_dtype=pl.String).alias("_item"),
        pl.col("_best")
        .replace_strict(
            {
                _PASS: statuses.in_scope_pass,
                _UNKNOWN: "insufficient_data",
                _FAIL: statuses.in_scope_fail,
            },
            default=statuses.out_of_scope,
            return_dtype=pl.String,
        )
        .alias("_status"),
    )
    window = book.applies_to_approvals
    ghg, work = _ghg_marks(work, compiled, status_items)
    flags = _flags(compiled, flag_items)
    summary = work.select(
        pl.col("_status").alias(f"{book.id}__status"),
        pl.col("_item").alias(f"{book.id}__item"),
        *(e.alias(f"{book.id}__ghg_mark") for e in ghg),
        _dated(pl.lit(True), window.from_, window.before).alias(f"{book.id}__applies"),
        *([flags.alias(f"{book.id}__flags")] if flags is not None else []),
        *(
            [_sc_met(compiled, status_items).alias(f"{book.id}__sc_met")]
            if has_components(book)
            else []
        ),
    ).with_columns(
        (
            _missing_all_items(work, compiled, gating, status_items)
            if book.kind == "exclusion"
            else _missing(work, compiled, gating)
        ).alias(f"{book.id}__missing"),
        _criteria_used(work, compiled, status_items).alias(f"{book.id}__criteria"),
    )
    return summary.get_columns(), _decisions(frame, work, book, compiled)


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
    scope, result = pl.col(f"s{k}"), pl.col(f"r{k}")
    state = (
        pl.when(scope & result)
        .then(pl.lit(_PASS, pl.Int8))
        .when(scope & result.is_null())
        .then(pl.lit(_UNKNOWN, pl.Int8))
        .when(scope)
        .then(pl.lit(_FAIL, pl.Int8))
        # region unknown: a failed criterion fails the item anywhere, else it is unknown
        .when(scope.is_null() & result.not_().fill_null(False))
        .then(pl.lit(_FAIL, pl.Int8))
        .when(scope.is_null())
        .then(pl.lit(_UNKNOWN, pl.Int8))
    )
    if comp.conflict is not None:
        state = state.when(pl.col(f"x{k}")).then(pl.lit(_UNKNOWN, pl.Int8))
    if comp.claim_clash is not None:
        state = state.when(pl.col(f"y{k}")).then(pl.lit(_UNKNOWN, pl.Int8))
    return state.otherwise(None)


def has_components(book: Rulebook) -> bool:
    """Does the rulebook split its criteria into SC / DNSH / minimum safeguards (EU-style)?"""
    return any(c.component for item in book.leaf_items for c in item.criteria)


_NOT_SC = ("dnsh", "minimum_safeguards")


def _sc_met(compiled: list[_Compiled], status_items: list[int]) -> pl.Expr:
    """The substantial-contribution result of the selected item: its gating criteria other
    than DNSH and minimum safeguards, in Kleene logic (null when none is selected)."""
    results = []
    for k in status_items:
        columns, forces = _columns(k, compiled[k])
        criteria = [(c, col) for c, col in columns if c.component not in _NOT_SC]
        results.append(pl.when(pl.col("_sel") == k).then(_combine(criteria, forces)))
    return pl.coalesce(results) if results else pl.lit(None, pl.Boolean)


def _gating(comp: _Compiled) -> list[int]:
    """Criteria whose unknown (or defaulted) inputs are asked for: gating ones reading inputs."""
    return [j for j, (c, _, used) in enumerate(comp.criteria) if _gates(c) and used]


# bits after an item's criteria in the missing-fields mask: scope facts that were unknown
_REGION_BIT, _CONFLICT_BIT, _CLAIM_BIT = 0, 1, 2


def _missing_mask(compiled: list[_Compiled], gating: dict[int, list[int]]) -> pl.Expr:
    """Per project, a bitmask over the selected item's gating criteria (then its unknown
    region and its code conflict): for an unknown status the criteria that are unknown, for a
    decided one those that decided on a default although their inputs were missing."""
    masks = []
    for k, criteria in gating.items():
        comp = compiled[k]
        n = len(criteria)
        groups: dict[str, list[str]] = {}
        for j in criteria:
            if alternative := comp.criteria[j][0].alternative:
                groups.setdefault(alternative, []).append(f"c{k}_{j}")

        terms = [
            _unknown_bit(k, comp, j, groups).cast(pl.Int64) * (1 << b)
            for b, j in enumerate(criteria)
        ]
        if comp.conflict is not None:
            terms.append(pl.col(f"x{k}").cast(pl.Int64) * (1 << (n + _CONFLICT_BIT)))
        if comp.claim_clash is not None:
            terms.append(pl.col(f"y{k}").cast(pl.Int64) * (1 << (n + _CLAIM_BIT)))
        # a regional rule without the project's province: the province decides first
        unknown = (
            pl.when(pl.col(f"s{k}").is_null())
            .then(pl.lit(1 << (n + _REGION_BIT), pl.Int64))
            .otherwise(pl.sum_horizontal(terms) if terms else pl.lit(0, pl.Int64))
        )
        defaulted = [
            pl.col(f"m{k}_{j}").cast(pl.Int64) * (1 << b)
            for b, j in enumerate(criteria)
            if comp.defaults[j]
        ]
        masks.append(
            pl.when(pl.col("_sel") == k).then(
                pl.when(pl.col("_best") == _UNKNOWN)
                .then(unknown)
                .otherwise(pl.sum_horizontal(defaulted) if defaulted else pl.lit(0, pl.Int64))
            )
        )
    return pl.coalesce(masks) if masks else pl.lit(None, pl.Int64)


def _inputs(comp: _Compiled, criteria: list[int]) -> list[str]:
    """The input fields the given criteria of an item read, in order, once each."""
    return list(dict.fromkeys(f for j in criteria for f in comp.criteria[j][2]))


def _null_mask(compiled: list[_Compiled], gating: dict[int, list[int]]) -> list[pl.Expr]:
    """Per project, a bitmask of which inputs of the selected item's gating criteria are
    missing (so a criterion reading a given and a missing input asks only for the latter)."""
    masks: list[pl.Expr] = [
        pl.when(pl.col("_sel") == k).then(
            pl.sum_horizontal(
                pl.col(f"n{k}_{b}").cast(pl.Int64) * (1 << b)
                for b in range(len(_inputs(compiled[k], criteria)))
            )
        )
        for k, criteria in gating.items()
        if 0 < len(_inputs(compiled[k], criteria)) <= 62
    ]
    return masks


def _unknown_bit(k: int, comp: _Compiled, j: int, groups: dict[str, list[str]]) -> pl.Expr:
    """The criterion is unknown and, for an alternative, its group is undecided too (a passed
    alternative settles the group: the others are not asked for)."""
    bit = pl.col(f"c{k}_{j}").is_null()
    if alternative := comp.criteria[j][0].alternative:
        bit = bit & pl.any_horizontal(pl.col(c) for c in groups[alternative]).is_null()
    return bit


def _reads_missing(comp: _Compiled, j: int) -> pl.Expr:
    """The criterion is in force and one of its inputs is missing."""
    missing = pl.any_horizontal(pl.col(name).is_null() for name in comp.criteria[j][2])
    force = comp.in_force[j]
    return missing if force is None else missing & force


def _missing_all_items(
    work: pl.DataFrame,
    compiled: list[_Compiled],
    gating: dict[int, list[int]],
    status_items: list[int],
) -> pl.Series:
    """For an exclusion list: any item that applies excludes, so "not excluded" needs every
    undecided item decided; an undecided project is asked for the fields of all of them (not
    only of the first), in item order."""
    selected = _missing(work, compiled, gating)
    undecided = (work["_best"] == _UNKNOWN).fill_null(False) & ~work["_unidentified"]
    if not undecided.any() or len(status_items) < 2:
        return selected
    per_item = []
    for k in status_items:
        one = work.with_columns(
            pl.when(pl.col(f"st{k}") == _UNKNOWN).then(pl.lit(k, pl.Int32)).alias("_sel"),
            pl.lit(False).alias("_unidentified"),
        )
        nulls = _null_mask(compiled, {k: gating[k]})
        one = one.with_columns(
            _missing_mask(compiled, {k: gating[k]}).alias("_mask"),
            (pl.coalesce(nulls) if nulls else pl.lit(None, pl.Int64)).alias("_nulls"),
        )
        per_item.append(_missing(one, compiled, gating).fill_null([]))
    union = (
        pl.DataFrame({f"m{i}": m for i, m in enumerate(per_item)})
        .select(pl.concat_list(pl.all()).list.unique(maintain_order=True))
        .to_series()
    )
    return pl.select(
        pl.when(pl.lit(undecided)).then(pl.lit(union)).otherwise(pl.lit(selected))
    ).to_series()


def _missing(
    work: pl.DataFrame, compiled: list[_Compiled], gating: dict[int, list[int]]
) -> pl.Series:
    """The input fields to ask the client for: for ``insufficient_data``, those of the selected
    item's unknown gating criteria (and ``province`` / ``industry_code`` where the scope was
    unknown, ``activity`` where nothing identified the project); for a decided status, those a
    criterion decided without (a ``coalesce`` default), else null."""

    def fields(k: int, mask: int | None, nulls: int | None) -> list[str] | None:
        if mask is None:
            return None
        criteria = gating.get(k, [])
        inputs = _inputs(compiled[k], criteria)
        absent = {f for b, f in enumerate(inputs) if (nulls or 0) >> b & 1}
        out: list[str] = []
        for n, j in enumerate(criteria):
            if mask >> n & 1:
                used = compiled[k].criteria[j][2]
                # the inputs that are missing; all of them if none is (an evidence clash)
                asked = [f for f in used if f in absent] or used
                out += [f for f in asked if f not in out]
        if mask >> (len(criteria) + _REGION_BIT) & 1:
            out.append("province")
        if mask >> (len(criteria) + _CONFLICT_BIT) & 1:
            out.append("industry_code")
        if mask >> (len(criteria) + _CLAIM_BIT) & 1 and compiled[k].claim_field:
            out.append(str(compiled[k].claim_field))
        return out

    found = _per_distinct(work.select("_sel", "_mask", "_nulls"), fields, pl.List(pl.String))
    decided = (work["_best"] != _UNKNOWN).fill_null(True) & (work["_mask"].fill_null(0) == 0)
    return (
        pl.DataFrame({"m": found, "d": decided, "u": work["_unidentified"]})
        .select(
            pl.when(pl.col("u"))
            .then(pl.lit(["activity"], dtype=pl.List(pl.String)))
            .when(pl.col("d"))
            .then(pl.lit(None, dtype=pl.List(pl.String)))
            .otherwise(pl.col("m"))
        )
        .to_series()
    )


def _per_distinct(
    keys: pl.DataFrame, describe: Callable[..., object], dtype: pl.DataType
) -> pl.Series:
    """``describe(selected item, *packed codes)`` for every row of ``keys`` (columns ``_sel``
    and integer codes), called once per distinct combination: a million projects have a
    handful of (item, results) combinations. Rows without a selected item get null."""
    pairs = keys.filter(pl.col("_sel").is_not_null()).unique()
    values = [describe(*row) for row in pairs.iter_rows()]
    lookup = pairs.with_columns(pl.Series("_value", values, dtype=dtype))
    joined = keys.join(lookup, on=keys.columns, how="left", maintain_order="left", nulls_equal=True)
    return joined["_value"]


def _ghg_marks(
    work: pl.DataFrame, compiled: list[_Compiled], status_items: list[int]
) -> tuple[list[pl.Expr], pl.DataFrame]:
    """The GHG mark (√ / √√) of the selected item. Where an item's GB/T rows carry different
    marks (e.g. 3.2.9: 7514 √, 7516 none): the mark of the row the project's industry code
    names, else that of the rows its activity corresponds to (``activity_ghg_marks``), else
    none."""
    if not any(
        compiled[k].item.ghg_mark or compiled[k].item.rows or compiled[k].item.activity_ghg_marks
        for k in status_items
    ):
        return [], work
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
    # the activity's rows, then (deciding) the row the industry code names; a row may have none
    work, mark = _mark_by(work, "activity", by_activity, mark)
    work, mark = _mark_by(work, "industry_class", pairs, mark)
    return [mark], work


def _mark_by(
    work: pl.DataFrame, key: str, entries: Sequence[tuple[int, str, str | None]], mark: pl.Expr
) -> tuple[pl.DataFrame, pl.Expr]:
    """Where (selected item, ``key``) is one of ``entries``, its mark replaces ``mark``."""
    if not entries:
        return work, mark
    value, known = f"_mark_{key}", f"_known_{key}"
    lookup = pl.DataFrame(
        entries, schema={"_sel": pl.Int32, key: pl.String, value: pl.String}, orient="row"
    ).with_columns(pl.lit(True).alias(known))
    work = work.join(lookup, on=["_sel", key], how="left", maintain_order="left")
    return work, pl.when(pl.col(known)).then(pl.col(value)).otherwise(mark)


def _criteria_used(
    work: pl.DataFrame, compiled: list[_Compiled], status_items: list[int]
) -> pl.Series:
    """The selected item's criteria and their results: ``star-1=pass; gbt51350=unknown``
    (``n/a`` where a criterion is not in force for the project: other dates or GB/T rows), or
    ``scope=pass`` for an item whose conditions only describe the activity.

    Each project's results are packed into one integer (4 states per criterion), and only the
    distinct (item, results) pairs are turned into text, as for the missing fields."""

    def state(k: int, j: int) -> pl.Expr:
        value = pl.col(f"c{k}_{j}").cast(pl.Int64).fill_null(2)
        if compiled[k].in_force[j] is not None:
            value = pl.when(pl.col(f"f{k}_{j}")).then(value).otherwise(3)
        return value * (4**j)

    with_criteria = [k for k in status_items if compiled[k].criteria]
    states = [
        pl.when(pl.col("_sel") == k).then(
            pl.sum_horizontal(state(k, j) for j in range(len(compiled[k].criteria)))
        )
        for k in with_criteria
        if len(compiled[k].criteria) <= 31  # 4**31 < 2**63
    ]
    packed = work.select(
        "_sel", (pl.coalesce(states) if states else pl.lit(None, pl.Int64)).alias("_states")
    )
    words = ("fail", "pass", "unknown", "n/a")  # 0 false, 1 true, 2 null, 3 not in force

    def text(k: int, code: int | None) -> str | None:
        criteria = compiled[k].criteria
        if code is None:  # no criteria: being in scope (activity / GB/T code) is the test
            return "scope=pass" if not criteria else None
        return "; ".join(
            f"{c.id}={words[code // 4**j % 4]}" for j, (c, _, _) in enumerate(criteria)
        )

    return _per_distinct(packed, text, pl.String())


#: the flag raised where an activity matches an item but the industry code is not its row
CONFLICT_FLAG = "industry_code_conflict"
#: the flag raised where a claimed item is not one the project's activity or code belongs to
CLAIM_FLAG = "claimed_item_conflict"


def _flags(compiled: list[_Compiled], flag_items: list[int]) -> pl.Expr | None:
    """Codes of the flag items that apply (e.g. CBAM exposure) and ``industry_code_conflict``
    where the given industry code is none of the rows of the items the activity matches."""
    conflicts = [k for k, comp in enumerate(compiled) if comp.conflict is not None]
    clashes = [k for k, comp in enumerate(compiled) if comp.claim_clash is not None]
    if not flag_items and not conflicts and not clashes:
        return None
    raised = [
        pl.when(pl.col(f"st{k}") == _PASS).then(pl.lit(compiled[k].item.code)) for k in flag_items
    ]
    if conflicts:
        any_conflict = pl.any_horizontal(pl.col(f"x{k}") for k in conflicts)
        # only when no item of the activity accepted the code
        clash = any_conflict & (pl.col("_sel").is_null() | _selected_conflicts(conflicts))
        raised.append(pl.when(clash).then(pl.lit(CONFLICT_FLAG)))
    if clashes:
        doubtful = pl.any_horizontal((pl.col("_sel") == k) & pl.col(f"y{k}") for k in clashes)
        raised.append(pl.when(doubtful.fill_null(False)).then(pl.lit(CLAIM_FLAG)))
    return pl.concat_list(raised).list.drop_nulls()


def _selected_conflicts(conflicts: list[int]) -> pl.Expr:
    """The selected item is one the activity matched but the industry code did not."""
    return pl.any_horizontal((pl.col("_sel") == k) & pl.col(f"x{k}") for k in conflicts).fill_null(
        False
    )


def _result(column: str) -> pl.Expr:
    col = pl.col(column)
    return (
        pl.when(col)
        .then(pl.lit("pass"))
        .when(~col)
        .then(pl.lit("fail"))
        .otherwise(pl.lit("unknown"))
    )


def _decisions(
    frame: pl.DataFrame, work: pl.DataFrame, book: Rulebook, compiled: list[_Compiled]
) -> pl.LazyFrame:
    """Long table of criterion results for every in-scope item; a 'scope' row otherwise.

    Lazy: nothing is materialised until the table is written (streamed to Parquet) or read.
    """
    inputs = frame.lazy()
    base = work.lazy()  # scope, criterion, state and item columns per project
    parts: list[pl.LazyFrame] = []
    for k, comp in enumerate(compiled):
        scope = comp.item.scope
        assert scope is not None
        # in scope, or unknown (region), or a code conflict: the criteria are shown
        shown = pl.col(f"s{k}").fill_null(True)
        if comp.conflict is not None:
            shown = shown | pl.col(f"x{k}")
        if comp.claim_clash is not None:
            shown = shown | pl.col(f"y{k}")
        for j, (criterion, _, used) in enumerate(comp.criteria):
            rows = shown if comp.in_force[j] is None else shown & pl.col(f"f{k}_{j}")
            parts.append(
                pl.concat([base, inputs.select(_seen(used))], how="horizontal")
                .filter(rows)
                .select(
                    "project_id",
                    pl.lit(book.id).alias("rulebook"),
                    pl.lit(comp.item.code).alias("item"),
                    (pl.col("_item") == comp.item.code).fill_null(False).alias("selected"),
                    pl.lit(criterion.id).alias("criterion"),
                    _result(f"c{k}_{j}").alias("result"),
                    pl.col("_seen").alias("value"),
                    pl.lit(criterion.threshold or criterion.condition).alias("threshold"),
                    pl.lit(criterion.clause).alias("clause"),
                    pl.lit(criterion.verification).alias("verification"),
                    pl.lit(_gates(criterion)).alias("gate"),
                    pl.lit(used, dtype=pl.List(pl.String)).alias("fields"),
                )
            )
        if scope.provinces:
            parts.append(
                _scope_row(
                    base.filter(pl.col(f"s{k}").is_null()),
                    book,
                    comp.item,
                    "province",
                    pl.lit("province=(missing)"),
                    "province in " + ", ".join(scope.provinces) + " (a regional rule)",
                )
            )
        if comp.conflict is not None:
            parts.append(
                _scope_row(
                    base.filter(pl.col(f"x{k}")),
                    book,
                    comp.item,
                    "industry_code",
                    pl.format(
                        "industry_code={}; activity={}",
                        pl.col("industry_class"),
                        pl.col("activity"),
                    ),
                    "industry_code one of the item's GB/T rows: " + ", ".join(_classes(scope)),
                )
            )
        if comp.claim_clash is not None and comp.claim_field:
            parts.append(
                _scope_row(
                    base.filter(pl.col(f"y{k}")),
                    book,
                    comp.item,
                    comp.claim_field,
                    pl.format(
                        "claimed {}; activity={}; industry_code={}",
                        pl.lit(comp.item.code),
                        pl.col("activity").fill_null("(none)"),
                        pl.col("industry_class").fill_null("(none)"),
                    ),
                    "the claimed item's activities / GB/T rows: "
                    + ", ".join([*scope.activities, *_classes(scope)]),
                )
            )
    parts.append(
        base.filter(pl.col("_item").is_null()).select(
            "project_id",
            pl.lit(book.id).alias("rulebook"),
            pl.lit(None, pl.String).alias("item"),
            pl.lit(False).alias("selected"),
            pl.lit("scope").alias("criterion"),
            pl.when(pl.col("_unidentified"))
            .then(pl.lit("unknown"))
            .otherwise(pl.lit("fail"))
            .alias("result"),
            pl.format("activity={}", pl.col("activity").fill_null("(none)")).alias("value"),
            pl.lit("activity or industry code in the scope of an item").alias("threshold"),
            pl.lit(book.document).alias("clause"),
            pl.lit(book.verification).alias("verification"),
            pl.lit(True).alias("gate"),
            pl.lit(["activity"], dtype=pl.List(pl.String)).alias("fields"),
        )
    )
    return pl.concat(parts, how="vertical").cast(dict(DECISION_SCHEMA))  # type: ignore[arg-type]


def _scope_row(
    rows: pl.LazyFrame, book: Rulebook, item: Item, name: str, value: pl.Expr, threshold: str
) -> pl.LazyFrame:
    """A decision row for a scope fact that is unknown for the project (its province for a
    regional rule, or an industry code that contradicts its activity)."""
    return rows.select(
        "project_id",
        pl.lit(book.id).alias("rulebook"),
        pl.lit(item.code).alias("item"),
        (pl.col("_item") == item.code).fill_null(False).alias("selected"),
        pl.lit(name).alias("criterion"),
        pl.lit("unknown").alias("result"),
        value.alias("value"),
        pl.lit(threshold).alias("threshold"),
        pl.lit(book.document).alias("clause"),
        pl.lit(item.verification).alias("verification"),
        pl.lit(True).alias("gate"),
        pl.lit([name], dtype=pl.List(pl.String)).alias("fields"),
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
