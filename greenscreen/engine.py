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
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from greenscreen.rulebook import (
    DERIVED_INPUTS,
    Criterion,
    Item,
    Rulebook,
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
    """The engine's output: ``summary`` (one row per project) and ``decisions`` (long)."""

    summary: pl.DataFrame
    decisions: pl.DataFrame


def prepare(projects: pl.DataFrame, rulebooks: Sequence[Rulebook]) -> pl.DataFrame:
    """Add the derived inputs, infer missing activities, type the evidence fields."""
    frame = infer_activity(projects)
    hours = pl.col("capacity_mw") * pl.col("full_load_hours")
    frame = frame.with_columns(
        (pl.col("storage_energy_mwh") / pl.col("storage_power_mw"))
        .fill_nan(None)
        .alias("storage_duration_h"),
        pl.coalesce(pl.col("annual_generation_mwh"), hours).alias("generation_mwh"),
        pl.col("industry_code").str.replace(r"^[A-T]", "").alias("industry_class"),
    )
    declared: dict[str, pl.DataType] = {}
    for book in rulebooks:
        for name, dtype in input_fields(book).items():
            if name not in FIELDS and name not in DERIVED_INPUTS:
                declared[name] = dtype
    casts = [_evidence(frame, name, dtype) for name, dtype in declared.items()]
    return frame.with_columns(casts) if casts else frame


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
    return projects.with_columns(
        pl.when(pl.col("activity").is_not_null())
        .then(pl.lit("input"))
        .when(guess.is_not_null())
        .then(pl.lit("inferred"))
        .alias("activity_source"),
        pl.coalesce(pl.col("activity"), guess).alias("activity"),
    )


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
    scope: pl.Expr
    criteria: list[tuple[Criterion, pl.Expr, list[str]]]


def _dated(expr: pl.Expr, since: object, until: object) -> pl.Expr:
    """Restrict to loans approved in [since, until); a missing date means 'current'."""
    date = pl.col("approval_date")
    if since is not None:
        expr = expr & (date.is_null() | (date >= pl.lit(since)))
    if until is not None:
        expr = expr & date.is_not_null() & (date < pl.lit(until))
    return expr


def _compile(book: Rulebook) -> list[_Compiled]:
    fields = input_fields(book)
    compiled = []
    for item in book.leaf_items:
        scope = item.scope
        assert scope is not None
        parts: list[pl.Expr] = []
        codes = [c.lstrip("ABCDEFGHIJKLMNOPQRST") for c in scope.industry_codes]
        if scope.activities:
            parts.append(pl.col("activity").is_in(scope.activities).fill_null(False))
            if codes:  # a given industry code must confirm the activity
                cls = pl.col("industry_class")
                parts.append(cls.is_null() | cls.is_in(codes))
        elif codes:
            parts.append(pl.col("industry_class").is_in(codes).fill_null(False))
        if scope.condition:
            expr, _ = compile_condition(scope.condition, fields)
            parts.append(expr.fill_null(False))
        in_scope = pl.all_horizontal(parts) if parts else pl.lit(True)
        in_scope = _dated(in_scope, item.since, item.until)
        criteria = []
        for criterion in item.criteria:
            expr, used = compile_condition(criterion.condition, fields)
            expr = expr.cast(pl.Boolean)
            if criterion.since or criterion.until:  # not in force for this loan: neutral
                in_force = _dated(pl.lit(True), criterion.since, criterion.until)
                expr = pl.when(in_force).then(expr).otherwise(pl.lit(True))
            criteria.append((criterion, expr, used))
        compiled.append(_Compiled(item, in_scope, criteria))
    return compiled


def _combine(criteria: list[tuple[Criterion, str]]) -> pl.Expr:
    """Kleene AND over required criteria and over OR-groups of alternatives."""
    groups: dict[str, list[pl.Expr]] = {}
    required: list[pl.Expr] = []
    for criterion, column in criteria:
        if not criterion.gate or criterion.level == "should":
            continue
        if criterion.alternative:
            groups.setdefault(criterion.alternative, []).append(pl.col(column))
        else:
            required.append(pl.col(column))
    terms = required + [pl.any_horizontal(members) for members in groups.values()]
    return pl.all_horizontal(terms) if terms else pl.lit(True)


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
        ``summary``: project_id, activity, activity_source, and per rulebook R the columns
        ``R__status``, ``R__item``, ``R__applies`` (R governs the loan by approval date) and
        ``R__missing`` (fields to request); ``decisions``: see :data:`DECISION_SCHEMA`.
    """
    frame = prepare(projects, rulebooks)
    summary = frame.select("project_id", "activity", "activity_source")
    decisions: list[pl.DataFrame] = []
    for book in rulebooks:
        columns, book_decisions = _evaluate_book(frame, book)
        summary = summary.with_columns(columns)
        decisions.append(book_decisions)
    table = pl.concat(decisions, how="vertical") if decisions else DECISION_SCHEMA.to_frame()
    missing = (
        table.filter(pl.col("selected") & pl.col("gate") & (pl.col("result") == "unknown"))
        .explode("fields")
        .group_by("project_id", "rulebook", maintain_order=True)
        .agg(pl.col("fields").unique(maintain_order=True).alias("missing"))
    )
    for book in rulebooks:
        per_book = missing.filter(pl.col("rulebook") == book.id).select(
            "project_id", pl.col("missing").alias(f"{book.id}__missing")
        )
        summary = summary.join(per_book, on="project_id", how="left", maintain_order="left")
        status = pl.col(f"{book.id}__status")
        summary = summary.with_columns(
            pl.when(status == "insufficient_data")
            .then(pl.col(f"{book.id}__missing"))
            .otherwise(None)
            .alias(f"{book.id}__missing")
        )
    return Screening(summary=summary, decisions=table)


def _evaluate_book(frame: pl.DataFrame, book: Rulebook) -> tuple[list[pl.Series], pl.DataFrame]:
    compiled = _compile(book)
    exprs: list[pl.Expr] = []
    for k, comp in enumerate(compiled):
        exprs.append(comp.scope.alias(f"s{k}"))
        exprs += [expr.alias(f"c{k}_{j}") for j, (_, expr, _) in enumerate(comp.criteria)]
    work = frame.select("project_id", "activity", "approval_date", *exprs)
    work = work.with_columns(
        _combine([(c, f"c{k}_{j}") for j, (c, _, _) in enumerate(comp.criteria)]).alias(f"r{k}")
        for k, comp in enumerate(compiled)
    )
    statuses = book.status_map
    status_items = [k for k, c in enumerate(compiled) if c.item.effect == "status"]
    flag_items = [k for k, c in enumerate(compiled) if c.item.effect == "flag"]

    def when_items(condition: str) -> list[pl.Expr]:
        return [
            pl.when(pl.col(f"s{k}") & _state(f"r{k}", condition)).then(
                pl.lit(compiled[k].item.code)
            )
            for k in status_items
        ]

    passed, unknown, failed = when_items("pass"), when_items("unknown"), when_items("fail")
    item = pl.coalesce(passed + unknown + failed) if status_items else pl.lit(None, pl.String)
    status = (
        pl.when(_any_set(passed))
        .then(pl.lit(statuses.in_scope_pass))
        .when(_any_set(unknown))
        .then(pl.lit("insufficient_data"))
        .when(_any_set(failed))
        .then(pl.lit(statuses.in_scope_fail))
        .otherwise(pl.lit(statuses.out_of_scope))
    )
    work = work.with_columns(status.alias("_status"), item.alias("_item"))
    window = book.applies_to_approvals
    applies = _dated(pl.lit(True), window.from_, window.before)
    columns = [
        work["_status"].alias(f"{book.id}__status"),
        work["_item"].alias(f"{book.id}__item"),
        frame.select("approval_date")
        .with_columns(applies.alias("a"))["a"]
        .alias(f"{book.id}__applies"),
    ]
    if flag_items:
        flags = pl.concat_list(
            pl.when(pl.col(f"s{k}") & pl.col(f"r{k}").fill_null(False)).then(
                pl.lit(compiled[k].item.code)
            )
            for k in flag_items
        ).list.drop_nulls()
        columns.append(work.select(flags.alias(f"{book.id}__flags")).to_series())
    decisions = _decisions(frame, work, book, compiled)
    return columns, decisions


def _any_set(exprs: list[pl.Expr]) -> pl.Expr:
    return pl.any_horizontal(e.is_not_null() for e in exprs) if exprs else pl.lit(False)


def _result(column: str) -> pl.Expr:
    col = pl.col(column)
    return (
        pl.when(col)
        .then(pl.lit("pass"))
        .when(~col)
        .then(pl.lit("fail"))
        .otherwise(pl.lit("unknown"))
    )


def _state(column: str, state: str) -> pl.Expr:
    col = pl.col(column)
    return {"pass": col.fill_null(False), "fail": ~col.fill_null(True), "unknown": col.is_null()}[
        state
    ]


def _decisions(
    frame: pl.DataFrame, work: pl.DataFrame, book: Rulebook, compiled: list[_Compiled]
) -> pl.DataFrame:
    """Long table of criterion results for every in-scope item; a 'scope' row otherwise."""
    parts = []
    for k, comp in enumerate(compiled):
        rows = work.with_row_index("_i").filter(pl.col(f"s{k}"))
        if rows.height == 0:
            continue
        for j, (criterion, _, used) in enumerate(comp.criteria):
            if criterion.since or criterion.until:  # only loans the criterion is in force for
                dated = _dated(pl.lit(True), criterion.since, criterion.until)
                current = rows.filter(rows.select(dated.alias("f"))["f"])
            else:
                current = rows
            if current.height == 0:
                continue
            parts.append(
                current.select(
                    "project_id",
                    pl.lit(book.id).alias("rulebook"),
                    pl.lit(comp.item.code).alias("item"),
                    (pl.col("_item") == comp.item.code).fill_null(False).alias("selected"),
                    pl.lit(criterion.id).alias("criterion"),
                    _result(f"c{k}_{j}").alias("result"),
                    pl.lit(_seen(frame, used, current["_i"])).alias("value"),
                    pl.lit(criterion.threshold or criterion.condition).alias("threshold"),
                    pl.lit(criterion.clause).alias("clause"),
                    pl.lit(criterion.verification).alias("verification"),
                    pl.lit(criterion.gate and criterion.level == "shall").alias("gate"),
                    pl.lit(used, dtype=pl.List(pl.String)).alias("fields"),
                )
            )
    out_of_scope = work.filter(pl.col("_item").is_null()).select(
        "project_id",
        pl.lit(book.id).alias("rulebook"),
        pl.lit(None, pl.String).alias("item"),
        pl.lit(False).alias("selected"),
        pl.lit("scope").alias("criterion"),
        pl.lit("fail").alias("result"),
        pl.format("activity={}", pl.col("activity").fill_null("(none)")).alias("value"),
        pl.lit("activity or industry code in the scope of an item").alias("threshold"),
        pl.lit(book.document).alias("clause"),
        pl.lit(book.verification).alias("verification"),
        pl.lit(True).alias("gate"),
        pl.lit(["activity"], dtype=pl.List(pl.String)).alias("fields"),
    )
    parts.append(out_of_scope)
    return pl.concat(parts, how="vertical").cast(dict(DECISION_SCHEMA))  # type: ignore[arg-type]


def _seen(frame: pl.DataFrame, used: list[str], rows: pl.Series) -> pl.Series:
    """The input values a criterion read, as text: ``power_density_w_m2=6.0``."""
    if not used:
        return pl.Series("value", [None] * rows.len(), dtype=pl.String)
    return (
        frame.select(pl.col(used).gather(rows))
        .select(
            pl.concat_str(
                [
                    pl.format(
                        "{}={}", pl.lit(name), pl.col(name).cast(pl.String).fill_null("(missing)")
                    )
                    for name in used
                ],
                separator="; ",
            )
        )
        .to_series()
    )
