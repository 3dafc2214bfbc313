"""Stage 3, validate: the mapped table → typed columns plus reject rows.

Takes the table with its template columns (:mod:`greenscreen.io._headers`: the header
matches, the extra columns, the :class:`~greenscreen.io._headers.Contract`), the source info,
the first data row's number and the spreadsheet cells without a usable value. Gives a
:class:`Pipeline`: the accepted rows with every template field typed (``source_row``, and for
the pipeline ``province_code`` and ``city``, then the extra columns unchanged), the rejects
(:data:`REJECT_SCHEMA`: row, id, field, column, value, reason, code), the reconciled counts and
the notes. Each cell is parsed in stages of polars expressions over the whole table (unit →
cleaned text → value → reject code → typed field); there is no per-row Python loop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from greenscreen.errors import did_you_mean
from greenscreen.io._headers import Contract, HeaderMatch
from greenscreen.io._readers import SourceInfo
from greenscreen.schema import FieldSpec
from greenscreen.vocabularies import (
    BOOLEANS,
    COUNTRY_SYNONYMS,
    CURRENCY_SYNONYMS,
    VOCABULARIES,
    activity_ids,
    activity_lookup,
    city_lookup,
    label_expr,
    label_key,
    province_lookup,
    provinces,
)

REJECT_SCHEMA = pl.Schema(
    {
        "row": pl.Int64(),
        "project_id": pl.String(),
        "field": pl.String(),
        "column": pl.String(),
        "value": pl.String(),
        "reason": pl.String(),
        "code": pl.String(),
    }
)
"""Columns of the rejects table. ``row`` is the row number a person sees in the source: for a
spreadsheet or CSV the header is row 1, so the first project is row 2; for Parquet, JSON and
DataFrames the first record is row 1. ``code`` is a machine-readable reason code."""

_MAX_VALUE_CHARS = 200  # reject rows quote at most this much of a bad cell


@dataclass(frozen=True)
class Pipeline:
    """A pipeline after validation: typed ``projects``, ``rejects`` and reconciled counts.

    ``n_input_rows == n_accepted + n_rejected + n_blank`` always holds.
    """

    projects: pl.DataFrame
    rejects: pl.DataFrame
    source: SourceInfo
    n_input_rows: int
    n_blank: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def n_accepted(self) -> int:
        """Number of projects accepted (rows of ``projects``)."""
        return self.projects.height

    @property
    def n_rejected(self) -> int:
        """Number of input rows rejected (a row with several problems counts once)."""
        return self.rejects["row"].n_unique() if self.rejects.height else 0

    def summary(self) -> str:
        """One line for a person: rows read, accepted, rejected, blank.

        Returns
        -------
        str
            E.g. ``120 rows read from loans.xlsx: 117 accepted, 3 rejected (4 reject rows)``.
        """
        text = (
            f"{self.n_input_rows} rows read from {self.source.name}: "
            f"{self.n_accepted} accepted, {self.n_rejected} rejected "
            f"({self.rejects.height} reject rows)"
        )
        if self.n_blank:
            text += f", {self.n_blank} blank rows ignored"
        return text


# --------------------------------------------------------------------------------------------
# Validation. Parsing runs in stages, each a set of columns computed once for the whole table:
# text -> cleaned text -> parsed value -> error code -> typed field. (One nested expression per
# field would re-evaluate shared sub-expressions many times over: 20x slower, measured.)
def _t(name: str) -> str:
    return f"__text__{name}"


def _c(name: str) -> str:
    return f"__clean__{name}"


def _n(name: str) -> str:
    return f"__value__{name}"


def _e(name: str) -> str:
    return f"__error__{name}"


def _u(name: str) -> str:
    return f"__unit__{name}"


def validate(
    raw: pl.DataFrame,
    matches: dict[str, HeaderMatch],
    extras: list[str],
    info: SourceInfo,
    first_row: int,
    n_input: int,
    cells: pl.DataFrame | None,
    notes: tuple[str, ...],
    contract: Contract,
) -> Pipeline:
    """The stage: type every field of ``contract`` and collect the rejects (module docstring)."""
    fields = contract.fields
    # Input columns are renamed apart from the typed fields they feed ("activity" may be both).
    raw_of = {name: f"__in__{name}" for name in matches}
    frame = raw.rename({m.header: raw_of[name] for name, m in matches.items()})
    # One chunk per column: new columns come in one chunk, and a frame of unaligned chunks
    # (a Parquet or CSV read in parts) would be realigned by every later with_columns.
    frame = frame.rechunk()
    dtypes = {name: frame.schema[raw_of[name]] for name in matches}
    specs = {name: fields[name] for name in matches}
    # A number written as text is cast before its text is stripped (_fast): a cell the cast
    # reads has no space to strip, and only the others are stripped (_strip_unread).
    numbers = [
        n for n, spec in specs.items() if _from_text(spec, dtypes[n]) and spec.kind != "date"
    ]
    text = {n: pl.col(raw_of[n]).cast(pl.String).replace("", None) for n in numbers}
    frame = frame.with_columns(
        pl.int_range(pl.len(), dtype=pl.Int64).add(first_row).alias("_row"),
        *(text.get(n, _as_text(pl.col(raw_of[n]))).alias(_t(n)) for n in matches),
        *(e for n in numbers for e in _fast(text[n], n, specs[n], matches[n])),
    )
    frame = _strip_unread(frame, numbers)
    # A fully blank row is a spreadsheet artefact, not a project: counted, not rejected.
    empty = [pl.col(_t(name)).is_null() for name in matches]
    empty += [
        _as_text(pl.col(c)).is_null() if raw.schema[c] == pl.String else pl.col(c).is_null()
        for c in extras
    ]
    blank = pl.all_horizontal(empty)
    if cells is not None:  # after a label row is dropped, its cells are not data
        cells = cells.filter(pl.col("row") >= first_row)
        blank = blank & ~pl.col("_row").is_in(cells["row"].implode())  # an error is not blank
    n_blank = frame.select(blank.sum()).item()
    if n_blank:
        frame = frame.filter(~blank)
    frame = frame.with_columns(pl.col(_t(contract.id_field)).alias("_pid"))

    frame = _values(frame, specs, matches, raw_of, dtypes)
    errors = [_error(name, spec, matches[name], dtypes[name]) for name, spec in specs.items()]
    if errors := [e for e in errors if e is not None]:
        frame = frame.with_columns(errors)
    frame = frame.with_columns(_typed(name, spec, name in matches) for name, spec in fields.items())
    derived: list[str] = []
    if contract.places:
        derived = ["province_code", "city"]
        frame = frame.with_columns(_province_code(frame))

    problems = [_problems(frame, specs[name], matches[name]) for name in matches]
    if contract.places:
        problems.append(_province_problems(frame, matches))
    problems.append(contract.row_problems(frame, matches))
    if cells is not None and cells.height:
        problems.append(_cell_rejects(frame, cells, matches))
    rejects = (
        pl.concat(problems, how="vertical")
        .sort("row", "field", maintain_order=True)
        .unique(subset=["row", "field", "code"], maintain_order=True)
    )
    projects = frame.select(*fields, pl.col("_row").alias("source_row"), *derived, *extras).filter(
        ~pl.col("source_row").is_in(rejects["row"].implode())
    )
    notes += tuple(
        f"column '{m.header}' read as {m.field} (× {m.scale:g} from {m.unit})"
        for m in matches.values()
        if m.scale != 1.0
    )
    return Pipeline(projects, rejects, info, n_input, n_blank, notes)


def _cell_rejects(
    frame: pl.DataFrame, cells: pl.DataFrame, matches: dict[str, HeaderMatch]
) -> pl.DataFrame:
    """Reject rows for spreadsheet cells without a usable value (an Excel error, a formula
    never calculated), in template fields and extra columns alike: the value is unknown."""
    field_of = {m.header: name for name, m in matches.items()}
    reasons = {
        "excel_error": "the cell holds an Excel error; fix the formula or its inputs",
        "formula_without_value": "the cell holds a formula whose value was never calculated "
        "(a workbook written by a program): open and save it in Excel or LibreOffice, or type "
        "the value",
    }
    return cells.join(
        frame.select(pl.col("_row").alias("row"), pl.col("_pid").alias("project_id")),
        on="row",
        how="inner",
        maintain_order="left",
    ).select(
        "row",
        "project_id",
        pl.col("column").replace_strict(field_of, default=pl.col("column")).alias("field"),
        "column",
        _clip(pl.col("value")).alias("value"),
        pl.format(
            "{}: {}",
            pl.col("column").replace_strict(field_of, default=pl.col("column")),
            pl.col("code").replace_strict(reasons, return_dtype=pl.String),
        ).alias("reason"),
        "code",
    )


def _as_text(expr: pl.Expr) -> pl.Expr:
    """Any column as stripped text, empty strings as null."""
    return expr.cast(pl.String).str.strip_chars().replace("", None)  # cheaper than when/then


_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
# 1,234,567.8 or 1 234 567.8 (a space, no-break or narrow no-break space): groups of exactly
# 3 digits, one kind of separator (never 1,5 or 1 5: those are not groupings)
_SPACES = " \u00a0\u202f"
_SEPARATED = rf"^[+-]?\d{{1,3}}((,\d{{3}})+|([{_SPACES}]\d{{3}})+)(\.\d+)?$"
_CELL_UNITS = ("%", "万", "亿")  # a cell's own unit, at most one: 1.5万, 2亿, 8%, 8 %
_MULTIPLIERS = {"万": 1e4, "亿": 1e8}
# header units that already carry a multiplier: 万元, 亿kWh, 千元, million…
_MULTIPLIED_UNIT = re.compile(r"万|亿|百万|千元|thousand|million|^mn$|^m$")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日")
_EXCEL_EPOCH = pl.date(1899, 12, 30)


def _values(
    frame: pl.DataFrame,
    specs: dict[str, FieldSpec],
    matches: dict[str, HeaderMatch],
    raw_of: dict[str, str],
    dtypes: dict[str, pl.DataType],
) -> pl.DataFrame:
    """Stages 1-3 (unit, cleaned text, value) of every field, the common case cheaply.

    A number or date written plainly (``1234.5``, ``2024-03-01``) is cast at once
    (:func:`_fast`; a number already in :func:`validate`, before its text is stripped); only
    the rows holding another cell go through the full parse (:func:`_reparse`). A lookup
    (activity, yes/no, vocabularies, codes) normalises each distinct cell once
    (:func:`_per_distinct`), not each of a million rows.
    """
    texts = {name: spec for name, spec in specs.items() if _from_text(spec, dtypes[name])}
    values: list[pl.Expr | pl.Series] = []
    for name, spec in specs.items():
        if name in texts:
            if spec.kind == "date":
                values += _fast(pl.col(_t(name)), name, spec, matches[name])
        elif (value := _convert(name, spec, matches[name], raw_of[name], dtypes[name])) is not None:
            if spec.kind in ("float", "int", "date"):
                values.append(value)
            else:  # a lookup, of the text column only
                values += _per_distinct(frame, _t(name), {_n(name): value})
    if values:
        frame = frame.with_columns(values)
    return _reparse(frame, texts, matches, raw_of, dtypes)


def _from_text(spec: FieldSpec, dtype: pl.DataType) -> bool:
    """A number or date field in a column of text (not already typed)."""
    if spec.kind in ("float", "int"):
        return not dtype.is_numeric()
    return spec.kind == "date" and not _is_date_type(dtype)


def _fast(text: pl.Expr, name: str, spec: FieldSpec, match: HeaderMatch) -> list[pl.Expr]:
    """The value of a plainly written cell (``text``); any other is null, or for a number not
    finite, and :func:`_reparse` parses it again.

    Exactly what the full parse gives: text without ``:`` has no time to strip, and the first
    date format that parses wins. A number is the bare cast, without the ``_NUMBER`` test the
    full parse makes (a regex: a third of this stage's time): polars' cast gives a finite
    number only for text matching ``_NUMBER`` (its parser reads that grammar plus
    ``inf``/``nan``; tests/test_io.py), text with no space to strip, no unit of its own and no
    separator, so the value is the cast times the header's scale. A cast that is not finite
    (``inf``, ``nan``, ``1e400``) is left to the full parse, which refuses the words.
    """
    if spec.kind == "date":
        iso = text.str.to_date(_DATE_FORMATS[0], strict=False)
        return [pl.when(~text.str.contains(":", literal=True)).then(iso).alias(_n(name))]
    number = text.cast(pl.Float64, strict=False)
    if match.scale != 1.0:  # x * 1.0 is x
        number = number * match.scale
    return [number.alias(_n(name)), pl.lit(None, pl.String).alias(_u(name))]


def _strip_unread(frame: pl.DataFrame, numbers: list[str]) -> pl.DataFrame:
    """The text of ``numbers``' cells the fast cast did not read, stripped as every other
    column's (:func:`_as_text`), put back in place: only these cells can hold a space."""
    unread = [
        pl.col(_t(n)).is_not_null() & ~pl.col(_n(n)).is_finite().fill_null(False) for n in numbers
    ]
    if not unread:
        return frame
    rows = frame.select(pl.arg_where(pl.any_horizontal(unread))).to_series()
    part = frame.select(_t(n) for n in numbers)[rows]
    part = part.select(_as_text(pl.col(c)) for c in part.columns)
    return _put_back(frame, rows, part, part.columns)


def _reparse(
    frame: pl.DataFrame,
    specs: dict[str, FieldSpec],
    matches: dict[str, HeaderMatch],
    raw_of: dict[str, str],
    dtypes: dict[str, pl.DataType],
) -> pl.DataFrame:
    """The full parse (stages 1-3) of the rows where :func:`_fast` gave no value (or a number
    not finite) for a non-blank cell, put back in place: the other rows are not parsed twice."""
    slow = [
        pl.col(_t(name)).is_not_null()
        & (
            pl.col(_n(name)).is_null()
            if spec.kind == "date"
            else ~pl.col(_n(name)).is_finite().fill_null(False)
        )
        for name, spec in specs.items()
    ]
    if not slow:
        return frame
    rows = frame.select(pl.arg_where(pl.any_horizontal(slow))).to_series()
    if rows.len() == 0:
        return frame
    part = frame.select(_t(name) for name in specs)[rows]
    stages = (
        lambda name, spec: _split(name, spec, dtypes[name]),
        lambda name, spec: _clean(name, spec, dtypes[name]),
        lambda name, spec: _convert(name, spec, matches[name], raw_of[name], dtypes[name]),
    )
    for stage in stages:
        exprs = [e for name, spec in specs.items() if (e := stage(name, spec)) is not None]
        if exprs:
            part = part.with_columns(exprs)
    # only the columns the full parse changes in these rows are put back (each a copy of the
    # column): a row parsed again for one cell has its other cells' fast values already
    parsed = [c for name in specs for c in (_n(name), _u(name)) if c in part.columns]
    return _put_back(frame, rows, part, parsed)


def _put_back(
    frame: pl.DataFrame, rows: pl.Series, part: pl.DataFrame, columns: list[str]
) -> pl.DataFrame:
    """The ``columns`` of ``part`` (the ``rows`` of ``frame``, worked again) scattered into
    ``frame``: only those whose values changed, as each scatter copies the whole column."""
    changed = [c for c in columns if not _unchanged(part[c], frame[c].gather(rows))]
    return frame.with_columns(frame[c].scatter(rows, part[c]) for c in changed)


def _unchanged(new: pl.Series, old: pl.Series) -> bool:
    """Bit for bit: floats as their shortest text, so that -0.0 is not 0.0."""
    if new.dtype.is_float():
        new, old = new.cast(pl.String), old.cast(pl.String)
    return new.equals(old, check_dtypes=True, null_equal=True)


def _per_distinct(frame: pl.DataFrame, column: str, values: dict[str, pl.Expr]) -> list[pl.Series]:
    """``values`` (name: expression of ``column`` alone that keeps nulls null) as columns of
    ``frame``, computed once per distinct cell when the cells repeat (a column of distinct
    cells is computed directly). Each row looks up the position of its cell among the
    distinct ones, once, and takes every value from there: several values of one column
    (a province's code, city and name) cost one lookup per row, and a position is cheaper to
    return than a string."""
    cells = frame.get_column(column).drop_nulls().unique()
    if 2 * cells.len() > frame.height:
        # shared parts once; one chunk per column as the rest of the frame (see validate)
        return frame.lazy().select(**values).collect().rechunk().get_columns()
    mapped = cells.to_frame().select(**values)
    number = pl.int_range(cells.len(), dtype=pl.UInt32, eager=True)
    index = frame.select(pl.col(column).replace_strict(cells, number, default=None)).to_series()
    return [value.gather(index) for value in mapped.get_columns()]


def _split(name: str, spec: FieldSpec, dtype: pl.DataType) -> pl.Expr | None:
    """Stage 1: the unit a number cell carries itself (``%``, ``万``, ``亿``), or null."""
    if spec.kind in ("float", "int") and not dtype.is_numeric():
        text = pl.col(_t(name))
        unit = pl.lit(None, dtype=pl.String)
        for suffix in _CELL_UNITS:
            unit = pl.when(text.str.ends_with(suffix)).then(pl.lit(suffix)).otherwise(unit)
        return unit.alias(_u(name))
    return None


def _clean(name: str, spec: FieldSpec, dtype: pl.DataType) -> pl.Expr | None:
    """Stage 2: normalise the text of number and date cells.

    The unit goes (one: ``1亿万`` stays invalid), then thousands separators (``1,500``,
    ``1 500 000``); any other space inside a number makes it invalid: ``1 5`` is not 15,
    ``1.5 2`` not 1.52.
    """
    if spec.kind in ("float", "int") and not dtype.is_numeric():
        number = (
            pl.col(_t(name))
            .str.strip_suffix(pl.col(_u(name)).fill_null(""))
            .str.strip_chars_end(_SPACES)
        )
        return (
            pl.when(number.str.contains(_SEPARATED))
            .then(number.str.replace_all(f"[,{_SPACES}]", ""))
            .otherwise(number)
            .alias(_c(name))
        )
    if spec.kind == "date" and not _is_date_type(dtype):
        text = pl.col(_t(name))
        return text.str.replace(r"[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$", "").alias(_c(name))
    return None


def _is_date_type(dtype: pl.DataType) -> bool:
    """A column that holds dates already; a time of day or a duration is read as text (and
    refused as not a date) — polars counts those as temporal too."""
    return dtype == pl.Date or isinstance(dtype, pl.Datetime)


def _convert(
    name: str, spec: FieldSpec, match: HeaderMatch, raw: str, dtype: pl.DataType
) -> pl.Expr | None:
    """Stage 3: parse to the field's type; null where the cell cannot be parsed."""
    text = pl.col(_t(name))
    value: pl.Expr
    if spec.kind in ("float", "int"):
        if dtype.is_numeric():
            value = pl.col(raw).cast(pl.Float64) * match.scale
        else:
            value = _parse_number(name, spec, match)
    elif spec.kind == "date":
        if dtype == pl.Date:
            value = pl.col(raw)
        elif isinstance(dtype, pl.Datetime):
            value = pl.col(raw).dt.date()
        else:
            value = _parse_date(pl.col(_c(name)))
    elif spec.kind == "bool":
        value = label_expr(text).replace_strict(BOOLEANS, default=None, return_dtype=pl.Boolean)
    elif name == "activity":
        value = label_expr(text).replace_strict(activity_lookup(), default=None)
    elif name in VOCABULARIES:
        value = label_expr(text).replace_strict(
            VOCABULARIES[name], default=None, return_dtype=pl.String
        )
    elif spec.kind == "code" and name != "project_id":
        value = text.str.to_uppercase().str.replace_all(r"\s+", "")
        if name == "country":
            value = value.replace(COUNTRY_SYNONYMS)
        elif name == "currency":
            value = value.replace(CURRENCY_SYNONYMS)
    else:
        return None
    return value.alias(_n(name))


def _parse_number(name: str, spec: FieldSpec, match: HeaderMatch) -> pl.Expr:
    """Cleaned text to Float64 in the field's unit.

    One unit is applied, never two: a cell's own ``%`` replaces the header's (``4.5%`` in a
    ``(%)`` column is 0.045); a cell's ``万``/``亿`` multiplies the header's unit when that
    unit has no multiplier of its own (``1.5万`` in a ``(kW)`` column is 15 MW) and is
    ambiguous, hence rejected, when it has (``1.2亿`` in a ``(万元)`` column).
    """
    number = pl.col(_c(name))
    unit = pl.col(_u(name))
    multiplied = _has_multiplier(match)
    factor: Any = pl.when(unit.is_null()).then(pl.lit(match.scale))  # a when/then chain
    factor = factor.when(unit == "%").then(pl.lit(0.01 if spec.unit == "fraction" else None))
    for suffix, times in _MULTIPLIERS.items():
        factor = factor.when(unit == suffix).then(None if multiplied else times * match.scale)
    parsed = pl.when(number.str.contains(_NUMBER)).then(number.cast(pl.Float64, strict=False))
    return parsed * factor.otherwise(None).cast(pl.Float64)


def _has_multiplier(match: HeaderMatch) -> bool:
    return match.unit is not None and _MULTIPLIED_UNIT.search(match.unit) is not None


def _parse_date(text: pl.Expr) -> pl.Expr:
    """Cleaned text to Date: ISO and common Chinese formats, or an Excel date serial."""
    parsed = [text.str.to_date(fmt, strict=False) for fmt in _DATE_FORMATS]
    # 20240301, exactly 8 digits: 2024111 is 2024-11-01 or 2024-01-11, never guessed
    compact = pl.when(text.str.contains(r"^\d{8}$")).then(text.str.to_date("%Y%m%d", strict=False))
    # An Excel date serial (a date cell read without its format): 5 digits, 1927..2173.
    serial = pl.when(text.str.contains(r"^\d{5}(\.0+)?$")).then(
        _EXCEL_EPOCH + pl.duration(days=text.cast(pl.Float64, strict=False).cast(pl.Int64))
    )
    return pl.coalesce(*parsed, compact, serial)


def _error(name: str, spec: FieldSpec, match: HeaderMatch, dtype: pl.DataType) -> pl.Expr | None:
    """Stage 4: the reject code of each cell, null when the cell is fine."""
    present = pl.col(_t(name)).is_not_null()
    value = pl.col(_n(name))
    code: pl.Expr
    if spec.kind in ("float", "int"):
        not_whole = (value != value.round(0)) if spec.kind == "int" else pl.lit(False)
        ambiguous = pl.lit(False)
        if _has_multiplier(match) and not dtype.is_numeric():
            ambiguous = pl.col(_u(name)).is_in(list(_MULTIPLIERS))
        code = (
            pl.when(present & ambiguous)
            .then(pl.lit("ambiguous_unit"))
            .when(present & (value.is_null() | value.is_nan()))
            .then(pl.lit("invalid_number"))
            .when(value.is_infinite())
            .then(pl.lit("not_finite"))
            .when(not_whole)
            .then(pl.lit("not_whole_number"))
            .when(_out_of_range(value, spec))
            .then(pl.lit("out_of_range"))
        )
    elif spec.kind == "date":
        code = (
            pl.when(present & value.is_null())
            .then(pl.lit("invalid_date"))
            .when(~value.dt.year().is_between(1900, 2100))  # one year per row, not two
            .then(pl.lit("date_range"))
        )
    elif spec.kind == "bool":
        code = pl.when(present & value.is_null()).then(pl.lit("invalid_boolean"))
    elif name == "activity":
        code = pl.when(present & value.is_null()).then(pl.lit("unknown_activity"))
    elif name in VOCABULARIES:
        code = pl.when(present & value.is_null()).then(pl.lit("unknown_value"))
    elif spec.kind == "code" and spec.pattern and name != "project_id":
        code = pl.when(present & ~value.str.contains(spec.pattern)).then(pl.lit("bad_code"))
    else:
        return None
    return code.alias(_e(name))


def _typed(name: str, spec: FieldSpec, present: bool) -> pl.Expr:
    """Stage 4: the typed output column (defaults where the field is absent or blank)."""
    if not present:
        return pl.lit(spec.default, dtype=spec.dtype).alias(name)
    if (
        spec.kind in ("text", "enum")
        and name not in VOCABULARIES
        and name != "activity"
        or (name == "project_id")
    ):
        value = pl.col(_t(name))
    else:
        value = pl.col(_n(name))
    if spec.kind in ("float", "int", "date", "bool"):
        value = pl.when(pl.col(_e(name)).is_null()).then(value)
    if spec.default is not None:
        value = value.fill_null(pl.lit(spec.default))
    return value.cast(spec.dtype).alias(name)


_INT_LIMIT = 2**53  # whole numbers beyond this are not exact in a float cell (and overflow Int64)


def _out_of_range(number: pl.Expr, spec: FieldSpec) -> pl.Expr:
    checks = []
    if spec.kind == "int":
        checks.append(number.abs() > _INT_LIMIT)
    if spec.ge is not None:
        checks.append(number < spec.ge)
    if spec.gt is not None:
        checks.append(number <= spec.gt)
    if spec.le is not None:
        checks.append(number > spec.le)
    return pl.any_horizontal(checks).fill_null(False) if checks else pl.lit(False)


def _reason(
    spec: FieldSpec, code: str, header: str, header_unit: str | None = None, scale: float = 1.0
) -> str:
    """The reason of a reject, in the unit the column is written in: a value typed under
    ``装机容量(kW)`` is told about kW, one under ``贷款利率(%)`` about percent."""
    unit = f" {spec.unit}" if spec.unit and spec.unit not in {"fraction", "currency"} else ""
    if header_unit and scale != 1.0:
        unit = f" {header_unit}"
    what = f"{spec.name}" + (f" (column '{header}')" if header != spec.name else "")
    return {
        "invalid_number": f"{what} must be a number{unit and f' in{unit}'}",
        "ambiguous_unit": f"{what} is already in {header_unit}: a value with its own 万 or 亿 "
        f"is ambiguous; write the number in {header_unit}",
        "not_finite": f"{what} must be a finite number",
        "not_whole_number": f"{what} must be a whole number",
        "out_of_range": f"{what} must be {_range_text(spec, scale)}{unit}",
        "invalid_date": f"{what} is not a valid calendar date (expected YYYY-MM-DD)",
        "date_range": f"{what} must be between 1900 and 2100",
        "bad_code": f"{what} is not valid: {spec.description}",
        "unknown_activity": "unknown activity",
        "invalid_boolean": f"{what} must be yes or no (是/否, true/false, 1/0)",
        "unknown_value": f"{what} must be one of: "
        + ", ".join(dict.fromkeys(VOCABULARIES.get(spec.name, {}).values())),
    }[code]


def _range_text(spec: FieldSpec, scale: float = 1.0) -> str:
    """The field's bounds, in the column's unit (a bound divided by the column's scale)."""
    text = spec.range_text(scale)
    if spec.kind == "int" and spec.le is None:
        text = " and ".join(filter(None, [text, f"≤ {_INT_LIMIT:,}"]))
    return text


def _problems(frame: pl.DataFrame, spec: FieldSpec, match: HeaderMatch) -> pl.DataFrame:
    """Reject rows for one field: one per failing cell."""
    if _e(spec.name) not in frame.columns:
        return REJECT_SCHEMA.to_frame()
    failed = frame.select(  # the 4 columns, then the rows: not a filter of the whole frame
        pl.col("_row").alias("row"),
        pl.col("_pid").alias("project_id"),
        pl.col(_t(spec.name)).alias("value"),
        pl.col(_e(spec.name)).alias("code"),
    ).filter(pl.col("code").is_not_null())
    if failed.height == 0:
        return REJECT_SCHEMA.to_frame()
    if spec.name == "activity":
        reasons = {
            v: f"unknown activity '{v}'{did_you_mean(v, activity_ids())}"
            for v in failed["value"].unique()
        }
        reason = pl.col("value").replace_strict(reasons, return_dtype=pl.String)
    else:
        reasons = {
            code: _reason(spec, code, match.header, match.written_unit or match.unit, match.scale)
            for code in failed["code"].unique()
        }
        reason = pl.col("code").replace_strict(reasons, return_dtype=pl.String)
    return failed.select(
        "row",
        "project_id",
        pl.lit(spec.name).alias("field"),
        pl.lit(match.header).alias("column"),
        _clip(pl.col("value")).alias("value"),
        reason.alias("reason"),
        "code",
    )


def _clip(value: pl.Expr) -> pl.Expr:
    long = value.str.len_chars() > _MAX_VALUE_CHARS
    head = value.str.slice(0, _MAX_VALUE_CHARS)
    return pl.when(long).then(head + pl.lit("…")).otherwise(value)


def _province_names() -> dict[str, str]:
    return dict(zip(provinces()["code"], provinces()["name_en"], strict=True))


def _province_code(frame: pl.DataFrame) -> list[pl.Expr]:
    """The province's GB/T 2260 code and its English name (``province``); a prefecture or
    county written instead of a province (宝鸡, 浦东新区) gives its province's code and is
    kept as ``city``. Each distinct place is looked up once."""
    lookup = province_lookup()
    places, _ = city_lookup()
    key = label_expr(pl.col("province"))
    province, place, official = (
        key.replace_strict(codes, default=None, return_dtype=pl.String)
        for codes in (
            {k: v[1] for k, v in lookup.items()},
            {k: v[0] for k, v in places.items()},
            {k: v[1] for k, v in places.items()},
        )
    )
    found = pl.coalesce(province, place)
    code, city, name = _per_distinct(
        frame,
        "province",
        {
            "code": found,
            "city": pl.when(province.is_null()).then(official),
            "name": found.replace_strict(_province_names(), default=None),
        },
    )
    china = pl.col("country") == "CN"
    return [
        pl.when(china).then(code).alias("province_code"),
        pl.when(china).then(city).alias("city"),
        # where there is a province_code: the province's name
        pl.when(china & code.is_not_null())
        .then(name)
        .otherwise(pl.col("province"))
        .alias("province"),
    ]


def _province_problems(out: pl.DataFrame, matches: dict[str, HeaderMatch]) -> pl.DataFrame:
    """Unknown Chinese provinces are rejected; known ones are normalised in place."""
    if "province" not in matches:
        return REJECT_SCHEMA.to_frame()
    header = matches["province"].header
    unknown = (
        (pl.col("country") == "CN")
        & pl.col("province").is_not_null()
        & pl.col("province_code").is_null()
    )
    failed = (  # lazy: the rows of the 3 columns, not of the whole frame
        out.lazy()
        .filter(unknown)
        .select(
            pl.col("_row").alias("row"),
            pl.col("_pid").alias("project_id"),
            pl.col("province").alias("value"),
        )
        .collect()
    )
    reasons = {v: _unknown_place(v) for v in failed["value"].unique()}
    return failed.select(
        "row",
        "project_id",
        pl.lit("province").alias("field"),
        pl.lit(header).alias("column"),
        _clip(pl.col("value")).alias("value"),
        pl.col("value").replace_strict(reasons, return_dtype=pl.String).alias("reason"),
        pl.lit("unknown_province").alias("code"),
    )


def _unknown_place(value: str) -> str:
    """Why a province cell is not read: a place in several provinces, or nothing known."""
    _, ambiguous = city_lookup()
    codes = ambiguous.get(label_key(value))
    if codes:
        names = dict(zip(provinces()["code"], provinces()["name_zh"], strict=True))
        where = "、".join(sorted({names.get(c, c) for c in codes}))
        return f"'{value}' is a place in several provinces ({where}); write the province"
    known = provinces()["name_en"].to_list() + provinces()["name_zh"].to_list()
    return f"unknown Chinese province or city '{value}'{did_you_mean(value, known)}"


def duplicate_id_rejects(
    rows: pl.DataFrame, column: str, id_name: str = "project_id"
) -> pl.DataFrame:
    """Reject rows for every copy of a project id that appears more than once.

    Shared with batch and Spark runs, which collect the ids of the whole file in parts. A
    reason names at most the first few rows and counts the rest: an id shared by N rows must
    not write N row numbers N times.

    Parameters
    ----------
    rows : polars.DataFrame
        ``row`` and ``project_id`` of every row with an id.
    column : str
        The id's input header (the rejects' ``column``).
    id_name : str
        The id's field (``loan_id`` in a loan book).

    Returns
    -------
    polars.DataFrame
        Reject rows (:data:`REJECT_SCHEMA`), code ``duplicate_id``, one per copy.
    """
    shown = 5
    rows = _maybe_repeated(rows)
    repeated = (
        rows.group_by("project_id")
        .agg(pl.col("row").sort().head(shown).alias("_rows"), pl.len().alias("_n"))
        .filter(pl.col("_n") > 1)
    )
    # "… and 4,997 more": the few distinct counts formatted once, with thousands separators
    more = {n: f"{n - shown + 2:,}" for n in repeated["_n"].unique().to_list() if n > shown}
    listed = (
        pl.when(pl.col("_n") > shown)
        .then(pl.col("_rows").list.head(shown - 2))
        .otherwise(pl.col("_rows"))
        .cast(pl.List(pl.String))
        .list.join(", ")
    )
    rest = pl.col("_n").replace_strict(more, default=None, return_dtype=pl.String)
    where = (
        pl.when(rest.is_null()).then(listed).otherwise(pl.format("{}, … and {} more", listed, rest))
    )
    reasons = repeated.select("project_id", where.alias("_where"))
    return rows.join(reasons, on="project_id", how="inner", maintain_order="left").select(
        "row",
        "project_id",
        pl.lit(id_name).alias("field"),
        pl.lit(column).alias("column"),
        pl.col("project_id").alias("value"),
        pl.format(
            f"duplicate {id_name}: appears in rows {{}}; all copies are rejected", pl.col("_where")
        ).alias("reason"),
        pl.lit("duplicate_id").alias("code"),
    )


def _maybe_repeated(rows: pl.DataFrame) -> pl.DataFrame:
    """The rows whose ``project_id`` may repeat: every repeated id, plus the rare hash
    collision (left out by the grouping that follows). Sorting a million hashes is much
    cheaper than grouping a million distinct ids."""
    hashes = rows.select(pl.col("project_id").hash()).to_series().sort()
    repeated = hashes.filter(hashes == hashes.shift(1))
    return rows.filter(pl.col("project_id").hash().is_in(repeated.implode()))


def _row_problems(out: pl.DataFrame, matches: dict[str, HeaderMatch]) -> pl.DataFrame:
    """Row-level rules: project_id present and unique; activity or description present."""
    pid_header = matches["project_id"].header
    base = [pl.col("_row").alias("row"), pl.col("_pid").alias("project_id")]
    missing_id = out.filter(pl.col("_pid").is_null()).select(
        *base,
        pl.lit("project_id").alias("field"),
        pl.lit(pid_header).alias("column"),
        pl.lit(None, dtype=pl.String).alias("value"),
        pl.lit("project_id is required").alias("reason"),
        pl.lit("missing_required").alias("code"),
    )
    duplicates = duplicate_id_rejects(
        out.filter(pl.col("_pid").is_not_null()).select(*base), pid_header
    )
    nothing = out.filter(
        pl.col("activity").is_null()
        & pl.col("description").is_null()
        & pl.col("industry_code").is_null()
    )
    # a row whose activity is present but unknown already has its own reject row
    if "activity" in matches:
        nothing = nothing.filter(pl.col(_t("activity")).is_null())
    no_activity = nothing.select(
        *base,
        pl.lit("activity").alias("field"),
        pl.lit(matches["activity"].header if "activity" in matches else "activity").alias("column"),
        pl.lit(None, dtype=pl.String).alias("value"),
        pl.lit("activity, description or industry_code is required").alias("reason"),
        pl.lit("missing_required").alias("code"),
    )
    return pl.concat([missing_id, duplicates, no_activity], how="vertical")
