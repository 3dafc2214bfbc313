"""Subsidy, incentive and relending programmes as data: eligibility, amounts, caps, schedules.

A programme file (``schema_type: greenscreen.programme``, YAML, a sibling of the rulebook
format) lists **awards**; each award has criteria (the rulebook criterion model: condition,
clause, text, verification) and an amount:

    gross = rate × base          (rate_max: a range, e.g. 10–30 % of new investment)
    final = min(gross, cap)      ("up_to" awards are ceilings, not commitments)

paid on a schedule of yearly shares from the commissioning (or approval) year. Relending
programmes (the PBoC Carbon Emission Reduction Facility) are the lending bank's funding, not
the project's income: their amount is the refinanceable principal and the bank's funding
benefit against a configurable funding cost; they are kept out of ``subsidy_total`` and the
payment schedule.

Everything is evaluated over the whole pipeline at once, in the rules engine's three-valued
logic: an award whose criteria cannot be decided is ``insufficient_data`` and names the fields.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.json_schema import SkipJsonSchema

from greenscreen._resources import bundled_dir
from greenscreen.engine import with_derived_inputs
from greenscreen.errors import GreenscreenError, RulebookError
from greenscreen.logic import combine, gates, typed_evidence
from greenscreen.rulebook import (
    Criterion,
    FieldDecl,
    Scope,
    Text,
    Verification,
    Where,
    check_count,
    check_field_decls,
    compile_condition,
    condition_fields,
    has_schema_type,
    nth_mapping,
    read_checked,
)

SCHEMA_TYPE = "greenscreen.programme"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Amount(_Model):
    """gross = rate × base (× rate_max for the upper end of a range); final = min(gross, cap)."""

    base: str  # a numeric SQL expression over input fields, e.g. storage_energy_mwh * 1000
    base_unit: str
    rate: float = Field(ge=0, allow_inf_nan=False)
    rate_max: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    rate_unit: str
    up_to: bool = False
    cap: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    clause: str


class Schedule(_Model):
    start: Literal["cod", "approval_date"] = "cod"
    shares: list[float] = [1.0]

    @field_validator("shares")
    @classmethod
    def _sum_to_one(cls, shares: list[float]) -> list[float]:
        # NaN passed both comparisons: a payment of NaN a year
        if not shares or not abs(sum(shares) - 1) <= 1e-9 or not min(shares) >= 0:
            raise ValueError("shares must be non-negative and sum to 1")
        return shares


class Award(_Model):
    code: str
    name: Text
    scope: Scope
    criteria: list[Criterion]
    amount: Amount
    schedule: Schedule = Schedule()
    verification: Verification
    notes: str | None = None


class Relending(_Model):
    """Dated, editable relending terms (they may change)."""

    share_of_principal: float = Field(ge=0, le=1)
    rate: float = Field(ge=0, allow_inf_nan=False)
    term_years: float = Field(gt=0, allow_inf_nan=False)
    rollovers: int = Field(ge=0)
    as_of: dt.date
    source: str


class Programme(_Model):
    schema_type: Literal["greenscreen.programme"]
    schema_version: int
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    version: str
    kind: Literal["subsidy", "relending"]
    title: Text
    issuer: str
    document: str
    source_url: str
    verification: Verification
    currency: str = "CNY"
    depends_on: list[str] = []
    fields: list[FieldDecl] = []
    relending: Relending | None = None
    awards: list[Award]
    notes: str | None = None
    #: set by the loader, not the file (so not in the JSON schema)
    path: SkipJsonSchema[str | None] = None

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != 1:
            raise ValueError(f"schema_version {value} is not supported (expected 1)")
        return value


# --------------------------------------------------------------------------------------------
def load_programmes(directory: str | Path | None = None, *, extra: bool = True) -> list[Programme]:
    """Bundled programmes, replaced (same id) or extended by those in ``directory``.

    Parameters
    ----------
    directory : str or pathlib.Path, optional
        A folder of programme files (``schema_type: greenscreen.programme``).
    extra : bool
        False: only the folder's programmes, not the bundled ones.

    Returns
    -------
    list of Programme

    Raises
    ------
    RulebookError
        The folder is missing or a file is invalid (naming the file, award and criterion).
    """
    found: dict[str, Programme] = {}
    folders = [] if (directory and not extra) else [bundled_dir("taxonomies")]
    if directory:
        if not Path(directory).is_dir():
            raise RulebookError(f"programme directory not found: {directory}")
        folders.append(Path(directory))
    for folder in folders:
        for path in sorted(folder.glob("*.y*ml")):
            if has_schema_type(path, SCHEMA_TYPE):
                programme = load_programme(path)
                found[programme.id] = programme
    return list(found.values())


@cache
def bundled_programmes() -> tuple[Programme, ...]:
    return tuple(load_programmes())


def load_programme(path: str | Path) -> Programme:
    """Load and validate one programme file.

    Parameters
    ----------
    path : str or pathlib.Path
        A programme YAML file.

    Returns
    -------
    Programme

    Raises
    ------
    RulebookError
        Naming the file, award and criterion of the first problem.
    """
    path = Path(path)
    # a regular file of bounded size; safe, bounded YAML (or the checked object from the cache)
    return read_checked(path, "programme", Programme, lambda data: _build(path, data))


def _build(path: Path, data: Any) -> Programme:
    name = path.name
    if not isinstance(data, dict) or data.get("schema_type") != SCHEMA_TYPE:
        raise RulebookError(f"schema_type must be '{SCHEMA_TYPE}'", file=name)
    check_count(data.get("awards"), "awards", name)
    try:
        programme = Programme.model_validate({**data, "path": str(path)})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = list(err["loc"])
        award = criterion = None
        if len(loc) >= 2 and loc[0] == "awards" and isinstance(loc[1], int):
            entry = nth_mapping(data.get("awards"), loc[1])
            award = entry.get("code", f"#{loc[1] + 1}")
            loc = loc[2:]
            if len(loc) >= 2 and loc[0] == "criteria" and isinstance(loc[1], int):
                criterion = nth_mapping(entry.get("criteria"), loc[1]).get("id", f"#{loc[1] + 1}")
                loc = loc[2:]
        where = ".".join(map(str, loc))
        message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        raise RulebookError(
            f"{where}: {message}" if where else message, file=name, item=award, criterion=criterion
        ) from exc
    check_field_decls(programme.fields, name)
    fields = programme_fields(programme)
    codes: set[str] = set()
    for award in programme.awards:
        if award.code in codes:
            raise RulebookError("duplicate award code", file=name, item=award.code)
        codes.add(award.code)
        _refuse_unsupported(award, name)
        if award.scope.condition:
            compile_condition(award.scope.condition, fields, Where(name, award.code, "scope"))
        for criterion in award.criteria:
            compile_condition(criterion.condition, fields, Where(name, award.code, criterion.id))
        base = Where(name, award.code, "amount.base")
        compile_condition(award.amount.base, fields, base, result="number")
    if programme.kind == "relending" and programme.relending is None:
        raise RulebookError("a relending programme needs its relending terms", file=name)
    return programme


# rulebook keys an award shares the model of but the programme evaluator does not apply: a file
# that sets one is refused rather than silently screened without it
_SCOPE_KEYS_NOT_APPLIED = ("industry_codes", "provinces", "claimed_only", "all_projects")
_CRITERION_KEYS_NOT_APPLIED = ("since", "until", "applies_to", "component")


def _refuse_unsupported(award: Award, file: str) -> None:
    for key in _SCOPE_KEYS_NOT_APPLIED:
        if getattr(award.scope, key):
            raise RulebookError(
                f"scope.{key} is not applied to programme awards; use scope.condition "
                "(e.g. province = 'Shanghai', approval_date >= DATE '2026-01-16')",
                file=file,
                item=award.code,
            )
    for criterion in award.criteria:
        for key in _CRITERION_KEYS_NOT_APPLIED:
            if getattr(criterion, key):
                raise RulebookError(
                    f"{key} is not applied to programme criteria; write it into the condition",
                    file=file,
                    item=award.code,
                    criterion=criterion.id,
                )


def programme_fields(programme: Programme) -> dict[str, pl.DataType]:
    """The input fields a programme's conditions may read and their types (template fields,
    its declared evidence fields and the status columns of the rulebooks it depends on)."""
    return condition_fields(programme.fields, programme.depends_on)


# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SubsidyConfig:
    """Run choices. ``funding_cost``: the bank's marginal funding cost (fraction) against
    which relending benefit is computed; None leaves the benefit blank with a note."""

    funding_cost: float | None = None


@dataclass(frozen=True)
class Subsidies:
    """``awards``: one row per project × award in the award's scope (projects outside it are
    not_eligible and not listed); ``schedule``: one row per payment (project, programme, award,
    year, amount); ``per_project``: one row per project."""

    awards: pl.DataFrame
    schedule: pl.DataFrame
    per_project: pl.DataFrame


AWARD_COLUMNS = [
    "project_id",
    "programme",
    "programme_kind",
    "award",
    "status",
    "missing",
    "base",
    "base_unit",
    "rate",
    "rate_max",
    "gross_amount",
    "gross_amount_max",
    "cap",
    "cap_applied",
    "final_amount",
    "final_amount_max",
    "potential_amount",
    "up_to",
    "currency",
    "reasons",
    "clause",
    "verification",
]

#: the award table's types when no programme is evaluated (with the working columns)
_NO_AWARDS: dict[str, pl.DataType | type[pl.DataType]] = {
    **dict.fromkeys(AWARD_COLUMNS, pl.String),
    "missing": pl.List(pl.String),
    **dict.fromkeys(
        ["base", "rate", "rate_max", "gross_amount", "gross_amount_max", "cap", "final_amount"]
        + ["final_amount_max", "potential_amount", "funding_benefit"],
        pl.Float64,
    ),
    "cap_applied": pl.Boolean,
    "up_to": pl.Boolean,
    "_start_year": pl.Int32,
    "_row": pl.UInt32,
}


def evaluate_programmes(
    results: pl.DataFrame, programmes: Sequence[Programme], config: SubsidyConfig | None = None
) -> Subsidies:
    """Eligibility and amounts of every award of every programme, for every project.

    An award's criteria are three-valued (:mod:`greenscreen.logic`): a project is
    ``eligible``, ``not_eligible`` or ``insufficient_data`` naming the fields to ask for.
    Projects outside an award's scope are not listed for it (not eligible by definition).

    Parameters
    ----------
    results : polars.DataFrame
        The screened projects: template columns plus rulebook results such as
        ``pboc_cerf__status``, which relending programmes read.
    programmes : sequence of Programme
        The programmes (:func:`bundled_programmes`, :func:`load_programmes`).
    config : SubsidyConfig, optional
        ``funding_cost`` [fraction]: the bank's marginal funding cost, for the relending
        benefit.

    Returns
    -------
    Subsidies
        ``awards``: one row per project × award in scope (status, missing fields, base,
        rate, gross/final/potential amounts [currency], cap, clause, verification, funding
        benefit); ``schedule``: payments by year of eligible subsidy awards; ``per_project``:
        totals per project (``subsidy_total``, ``subsidy_total_max``, ``subsidy_awards``,
        ``relending_refinanceable``, ``relending_funding_benefit``, ``subsidy_potential``).
    """
    config = config or SubsidyConfig()
    derived = with_derived_inputs(results)
    awards: list[pl.DataFrame] = []
    for programme in programmes:
        frame = _programme_inputs(derived, programme)
        for award in programme.awards:
            awards.append(_evaluate_award(frame, programme, award, config))
    table = pl.concat(awards, how="vertical_relaxed") if awards else pl.DataFrame(schema=_NO_AWARDS)
    schedule = _schedule(results, table, programmes)
    per_project = _per_project(results, table)
    # the schedule's and the totals' working columns, not output columns
    table = table.drop("_start_year", "_row")
    return Subsidies(table, schedule, per_project)


def _programme_inputs(derived: pl.DataFrame, programme: Programme) -> pl.DataFrame:
    """The projects with the programme's declared evidence fields typed (and bounded); a
    rulebook it depends on must have been screened."""
    for dep in programme.depends_on:
        if f"{dep}__status" not in derived.columns:
            raise GreenscreenError(
                f"programme {programme.id} depends on rulebook {dep}, which was not screened"
            )
    casts = [
        typed_evidence(derived, f.name, dtype, f.bounds())
        for f in programme.fields
        for dtype in [programme_fields(programme)[f.name]]
    ]
    return derived.with_columns(casts) if casts else derived


def _per_project(results: pl.DataFrame, table: pl.DataFrame) -> pl.DataFrame:
    """One row per project, in the order of ``results``: the eligible subsidy totals
    (``subsidy_total`` without the ``up_to`` ceilings, ``subsidy_total_max``) and awards, the
    eligible relending principal and funding benefit, and the potential subsidy [currency].

    One pass grouped by the project's row in ``results`` (``_row``), put back in place by
    that integer (at 1M projects 0.56-0.62 → 0.37-0.53 CPU s against three filters of the
    wide award table, three group-bys and three joins on the text ids; benchmarks/README.md,
    issue 23)."""
    kind, up_to = pl.col("programme_kind"), pl.col("up_to")
    eligible = pl.col("status") == "eligible"
    subsidy = (kind == "subsidy") & eligible
    relending = (kind == "relending") & eligible
    potential = (kind == "subsidy") & ~up_to.fill_null(False)
    # each total's values masked (null elsewhere) before grouping: plain sums per group, not
    # a filter evaluated group by group
    totals = (
        table.lazy()
        .filter(subsidy | relending | potential)
        .select(
            "_row",
            pl.when(subsidy & ~up_to).then("final_amount").alias("subsidy_total"),
            pl.when(subsidy).then("final_amount_max").alias("subsidy_total_max"),
            pl.when(subsidy).then(pl.format("{}:{}", "programme", "award")).alias("awards"),
            pl.when(relending).then("final_amount").alias("relending_refinanceable"),
            pl.when(relending).then("funding_benefit").alias("relending_funding_benefit"),
            pl.when(potential).then("potential_amount").alias("subsidy_potential"),
        )
        .group_by("_row")
        .agg(
            pl.col("subsidy_total", "subsidy_total_max", "subsidy_potential").sum(),
            pl.col("awards").drop_nulls().alias("subsidy_awards"),
            *(
                pl.when(pl.col(name).is_not_null().any()).then(pl.col(name).sum())
                for name in ("relending_refinanceable", "relending_funding_benefit")
            ),
        )
        # a project without an eligible subsidy has no list of awards (not an empty one)
        .with_columns(
            pl.when(pl.col("subsidy_awards").list.len() > 0).then(pl.col("subsidy_awards"))
        )
        .collect()
    )
    rows = pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row")
    return (
        results.select("project_id", rows)
        .join(totals, on="_row", how="left", maintain_order="left")
        .select(
            "project_id",
            pl.col("subsidy_total").fill_null(0.0),
            pl.col("subsidy_total_max").fill_null(0.0),
            "subsidy_awards",
            "relending_refinanceable",
            "relending_funding_benefit",
            pl.col("subsidy_potential").fill_null(0.0),
        )
    )


#: An award's criteria compiled: (criterion, its condition as a polars expression, the
#: fields it reads); criterion j is evaluated into column ``c{j}``.
_Compiled = list[tuple[Criterion, pl.Expr, list[str]]]


def _evaluate_award(
    frame: pl.DataFrame, programme: Programme, award: Award, config: SubsidyConfig
) -> pl.DataFrame:
    """One award over the projects in its scope: criteria, status, amounts, reasons and the
    relending benefit; the columns of :data:`AWARD_COLUMNS` (with ``funding_benefit``),
    ``_start_year`` for the schedule and ``_row`` for the totals."""
    fields = programme_fields(programme)
    compiled = [(c, *compile_condition(c.condition, fields)) for c in award.criteria]
    base_expr, base_fields = compile_condition(award.amount.base, fields, result="number")
    # lazily: only the columns the award reads are taken to its projects, not the hundred and
    # more of the screened results (measured at 1M projects: 1.5 → 0.5 CPU s for the bundled
    # programmes' awards)
    work = (
        _in_scope(frame.lazy().with_row_index("_row"), award, fields)
        .select(
            "project_id",
            "_row",
            *(expr.cast(pl.Boolean).alias(f"c{j}") for j, (_, expr, _) in enumerate(compiled)),
            base_expr.cast(pl.Float64).alias("base"),
            pl.col("approval_date"),
            pl.col("cod"),
        )
        .collect()
    )
    gross, gross_max, final, final_max = _amounts(award.amount)
    out = work.with_columns(
        _status(compiled).alias("status"),
        _missing(compiled, base_fields).alias("missing"),
        _reasons(compiled).alias("reasons"),
        gross.alias("gross_amount"),
        gross_max.alias("gross_amount_max"),
        final.alias("final_amount"),
        final_max.alias("final_amount_max"),
    )
    out = out.with_columns(_settled(programme))
    return out.select(_award_columns(programme, award, config))


def _in_scope(frame: pl.LazyFrame, award: Award, fields: dict[str, pl.DataType]) -> pl.LazyFrame:
    """The projects in the award's scope (its activities and scope condition; undecided is
    out). Out-of-scope projects are not_eligible by definition and not listed: at a million
    projects × awards the rows would dominate memory (measured: 7.1 GiB → see benchmarks),
    and they are left out before anything is computed for them."""
    in_scope: list[pl.Expr] = []
    if award.scope.activities:
        in_scope.append(pl.col("activity").is_in(award.scope.activities).fill_null(False))
    if award.scope.condition:
        in_scope.append(compile_condition(award.scope.condition, fields)[0].fill_null(False))
    return frame.filter(pl.all_horizontal(in_scope)) if in_scope else frame


def _status(compiled: _Compiled) -> pl.Expr:
    """``eligible``, ``not_eligible`` or ``insufficient_data`` from the criteria (columns
    ``c{j}``) in three-valued logic (:func:`greenscreen.logic.combine`); eligible needs the
    amount too: criteria met with a missing base is insufficient data."""
    criteria_met = combine([(c, f"c{j}") for j, (c, _, _) in enumerate(compiled)])
    result = (
        pl.when(criteria_met & pl.col("base").is_null())
        .then(pl.lit(None, pl.Boolean))
        .otherwise(criteria_met)
    )
    return (
        pl.when(result)
        .then(pl.lit("eligible"))
        .when(~result)
        .then(pl.lit("not_eligible"))
        .otherwise(pl.lit("insufficient_data"))
    )


def _missing(compiled: _Compiled, base_fields: list[str]) -> pl.Expr:
    """The fields to ask for, once each in order: those of every undecided gating criterion
    and of a missing base (List[String]; narrowed to undecided awards by :func:`_settled`)."""
    missing_parts = [
        pl.when(pl.col(f"c{j}").is_null()).then(pl.lit(";".join(used)))
        for j, (c, _, used) in enumerate(compiled)
        if gates(c) and used
    ] + [pl.when(pl.col("base").is_null()).then(pl.lit(";".join(base_fields)))]
    return (
        pl.concat_str(missing_parts, separator=";", ignore_nulls=True)
        .str.split(";")
        .list.unique(maintain_order=True)
        if missing_parts
        else pl.lit(None, pl.List(pl.String))
    )


def _reasons(compiled: _Compiled) -> pl.Expr:
    """The evidence text: ``✓``, ``✗`` or ``?`` (undecided), the criterion id and its
    threshold (else its condition) for each criterion, joined by ``; ``."""
    reasons_parts = [
        pl.format(
            "{} {}: {}",
            pl.when(pl.col(f"c{j}"))
            .then(pl.lit("✓"))
            .when(~pl.col(f"c{j}"))
            .then(pl.lit("✗"))
            .otherwise(pl.lit("?")),
            pl.lit(c.id),
            pl.lit(c.threshold or c.condition),
        )
        for j, (c, _, _) in enumerate(compiled)
    ]
    return pl.concat_str(reasons_parts, separator="; ") if reasons_parts else pl.lit("")


def _amounts(amount: Amount) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """Gross (rate × base), gross at ``rate_max``, and both capped (final) [currency]; null
    where the base is missing."""
    gross = pl.col("base") * amount.rate
    gross_max = pl.col("base") * (amount.rate_max if amount.rate_max is not None else amount.rate)
    cap = pl.lit(amount.cap, pl.Float64)
    # min_horizontal skips nulls: guard it, or a missing base would become the cap
    final = (
        pl.when(gross.is_not_null()).then(pl.min_horizontal(gross, cap))
        if amount.cap is not None
        else gross
    )
    final_max = (
        pl.when(gross_max.is_not_null()).then(pl.min_horizontal(gross_max, cap))
        if amount.cap is not None
        else gross_max
    )
    return gross, gross_max, final, final_max


def _settled(programme: Programme) -> list[pl.Expr]:
    """The amounts by status [currency]. The final amount is what the project gets: nothing
    when not eligible (gross_amount keeps the calculation), undecided (null) while data is
    missing; "potential" is what it would get once the client attests the yes/no evidence
    that is all it lacks. ``missing`` only where undecided; ``cap_applied``."""
    attestations = [f.name for f in programme.fields if f.type == "boolean"]
    only_attestations = (
        pl.col("missing").list.set_difference(pl.lit(attestations, pl.List(pl.String))).list.len()
        == 0
    )
    undecided = pl.col("status") == "insufficient_data"
    return [
        pl.when(undecided).then(pl.col("missing")).alias("missing"),
        (pl.col("gross_amount_max") > pl.col("final_amount_max"))
        .fill_null(False)
        .alias("cap_applied"),
        pl.when(undecided & only_attestations)
        .then(pl.col("final_amount"))
        .alias("potential_amount"),
        *(
            pl.when(pl.col("status") == "not_eligible")
            .then(0.0)
            .when(undecided)
            .then(None)
            .otherwise(pl.col(c))
            .alias(c)
            for c in ("final_amount", "final_amount_max")
        ),
    ]


def _funding_benefit(programme: Programme, config: SubsidyConfig) -> pl.Expr:
    """Relending: the bank's funding benefit, final amount × (funding cost − relending rate)
    × term × (1 + rollovers) [currency]; null for a subsidy or without a funding cost."""
    if programme.kind == "relending" and programme.relending and config.funding_cost is not None:
        terms = programme.relending
        years = terms.term_years * (1 + terms.rollovers)
        return pl.col("final_amount") * (config.funding_cost - terms.rate) * years
    return pl.lit(None, pl.Float64)


def _award_columns(programme: Programme, award: Award, config: SubsidyConfig) -> list[pl.Expr]:
    """The output columns, in order: :data:`AWARD_COLUMNS`, ``funding_benefit``,
    ``_start_year`` (the year the schedule starts from, for :func:`_schedule`) and ``_row``
    (the project's row in the results, for :func:`_per_project`)."""
    amount = award.amount
    return [
        pl.col("project_id"),
        pl.lit(programme.id).alias("programme"),
        pl.lit(programme.kind).alias("programme_kind"),
        pl.lit(award.code).alias("award"),
        pl.col("status"),
        pl.col("missing"),
        pl.col("base"),
        pl.lit(amount.base_unit).alias("base_unit"),
        pl.lit(amount.rate).alias("rate"),
        pl.lit(amount.rate_max, pl.Float64).alias("rate_max"),
        pl.col("gross_amount"),
        pl.col("gross_amount_max"),
        pl.lit(amount.cap, pl.Float64).alias("cap"),
        pl.col("cap_applied"),
        pl.col("final_amount"),
        pl.col("final_amount_max"),
        pl.col("potential_amount"),
        pl.lit(amount.up_to).alias("up_to"),
        pl.lit(programme.currency).alias("currency"),
        pl.col("reasons"),
        pl.lit(amount.clause).alias("clause"),
        pl.lit(award.verification).alias("verification"),
        _funding_benefit(programme, config).alias("funding_benefit"),
        pl.col(award.schedule.start).dt.year().alias("_start_year"),
        pl.col("_row"),
    ]


def _schedule(
    results: pl.DataFrame, table: pl.DataFrame, programmes: Sequence[Programme]
) -> pl.DataFrame:
    """Payments by calendar year for eligible subsidy awards (feeds the cash-flow model)."""
    shares = pl.DataFrame(
        [
            {
                "programme": p.id,
                "award": a.code,
                "start": a.schedule.start,
                "year_index": i,
                "share": s,
            }
            for p in programmes
            if p.kind == "subsidy"
            for a in p.awards
            for i, s in enumerate(a.schedule.shares)
        ],
        schema={
            "programme": pl.String,
            "award": pl.String,
            "start": pl.String,
            "year_index": pl.Int32,
            "share": pl.Float64,
        },
    )
    # lazily: only the columns the schedule reads are filtered (the award table is wide)
    paid = table.lazy().filter(
        (pl.col("programme_kind") == "subsidy") & (pl.col("status") == "eligible")
    )
    return (
        paid.join(shares.lazy(), on=["programme", "award"], how="inner")
        .select(
            "project_id",
            "programme",
            "award",
            "start",
            "year_index",
            (pl.col("_start_year") + pl.col("year_index")).alias("year"),
            (pl.col("final_amount") * pl.col("share")).alias("amount"),
            pl.col("up_to"),
        )
        .sort("project_id", "programme", "award", "year_index", maintain_order=True)
        .collect()
    )
