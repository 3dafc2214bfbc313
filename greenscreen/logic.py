"""Three-valued logic over criteria, shared by the rules engine and the programme evaluator.

A criterion over a missing input is *unknown* (a null, SQL's NULL), not false. Criteria
combine in Kleene's logic, as SQL's ``AND``/``OR`` do over NULL: required criteria with AND,
alternatives (criteria sharing an ``alternative`` label) with OR, so one failed required
criterion fails the item even when others are unknown, and one passed alternative passes its
group. Only gating criteria (:func:`gates`) take part; the others are evaluated and reported.

Evidence an analyst supplies in extra columns (a rulebook's or programme's ``fields``) is
typed here too (:func:`typed_evidence`): what cannot be read as the declared type is unknown,
so the decision stays undecided and asks for it again rather than deciding on it.

:mod:`greenscreen.engine` (rulebooks) and :mod:`greenscreen.subsidy` (programme awards) both
use these; neither has its own copy.
"""

from __future__ import annotations

import polars as pl

from greenscreen.rulebook import Criterion
from greenscreen.vocabularies import BOOLEANS, label_expr


def gates(criterion: Criterion) -> bool:
    """Does the criterion decide the status?

    Parameters
    ----------
    criterion : Criterion
        A rulebook criterion or a programme award's criterion.

    Returns
    -------
    bool
        True for a ``shall`` criterion with ``gate: true`` (the default); ``should`` criteria
        and ``gate: false`` ones are only reported.
    """
    return criterion.gate and criterion.level == "shall"


def combine(criteria: list[tuple[Criterion, str]], forces: dict[str, str] | None = None) -> pl.Expr:
    """Kleene AND over the required criteria and over OR-groups of alternatives.

    Parameters
    ----------
    criteria : list of (Criterion, str)
        Each criterion with the name of the Boolean column holding its result (true, false,
        or null for unknown). Criteria that do not :func:`gate <gates>` are skipped.
    forces : dict of str to str, optional
        A criterion column → the Boolean column saying whether the criterion is in force for
        the project (its ``since``/``until``, ``applies_to``). A group of alternatives none of
        whose members is in force does not constrain the project.

    Returns
    -------
    polars.Expr
        True, false or null (undecided) per row; true when no criterion gates.
    """
    forces = forces or {}
    groups: dict[str, list[str]] = {}
    required: list[pl.Expr] = []
    for criterion, column in criteria:
        if not gates(criterion):
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


def typed_evidence(
    frame: pl.DataFrame,
    name: str,
    dtype: pl.DataType,
    bounds: tuple[float | None, float | None] | None = None,
) -> pl.Expr:
    """An evidence column typed as its rulebook or programme declares it.

    Parameters
    ----------
    frame : polars.DataFrame
        The projects, with the evidence columns the input supplied (as text, or typed when
        read from Parquet or a DataFrame).
    name : str
        The evidence field (a ``fields`` entry of the rulebook or programme).
    dtype : polars.DataType
        Its declared type: Boolean, Float64, Int64, Date or String.
    bounds : (float or None, float or None), optional
        The range a number may take, in the field's unit (:meth:`FieldDecl.bounds
        <greenscreen.rulebook.FieldDecl.bounds>`).

    Returns
    -------
    polars.Expr
        The column named ``name``, all null when the input does not have it. A number outside
        ``bounds`` (a grade 0, a fraction 1.6) is null, so the decision stays undecided and
        asks for it again; a boolean is read with :data:`greenscreen.vocabularies.BOOLEANS`
        (yes/no, 是/否, true/false, 1/0, √/×), anything else is null; a date is
        ``YYYY-MM-DD``.
    """
    if name not in frame.columns:
        return pl.lit(None, dtype=dtype).alias(name)
    low, high = bounds or (None, None)
    if dtype.is_numeric() and (low is not None or high is not None):
        value = (
            pl.col(name).cast(dtype, strict=False)  # typed already (Parquet): no text round trip
            if frame.schema[name].is_numeric()
            else pl.col(name).cast(pl.String).str.strip_chars().cast(dtype, strict=False)
        )
        inside = pl.lit(True)
        if low is not None:
            inside = inside & (value >= low)
        if high is not None:
            inside = inside & (value <= high)
        return pl.when(inside).then(value).alias(name)
    if frame.schema[name] == dtype:
        return pl.col(name)
    if dtype == pl.Boolean:
        text = label_expr(pl.col(name).cast(pl.String))
        return text.replace_strict(BOOLEANS, default=None, return_dtype=pl.Boolean).alias(name)
    if dtype == pl.Date:
        text = pl.col(name).cast(pl.String).str.strip_chars().str.to_lowercase()
        return text.str.to_date("%Y-%m-%d", strict=False).alias(name)
    return pl.col(name).cast(dtype, strict=False).alias(name)
