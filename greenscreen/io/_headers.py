"""Stage 2, map headers: the raw table's column names → template fields.

Takes the raw table of :mod:`greenscreen.io._readers` (its own headers, the repeated ones as
the reader renamed them) and a :class:`Contract` (the template: fields, header resolver, id
field, required columns, row rules). Gives the table with the template columns found, a
:class:`HeaderMatch` per field (the header as written, the unit and its scale to the field's
canonical unit), the extra columns passed through, notes on dropped columns, and whether a
second header row of Chinese labels was dropped.

Header resolution lives here (:func:`resolve_header`, :func:`resolve_header_in`,
:func:`header_index`; re-exported by :mod:`greenscreen.schema`): a header in English or
Chinese, with or without a unit, to a field and a scale factor (``总投资(万元)`` →
``total_investment`` × 10 000), using the units table of :mod:`greenscreen._units`. A header
that names a field in an unknown unit or a unit of the wrong kind, two columns for one field,
a missing required column or a table too wide raise a
:class:`~greenscreen.errors.PipelineError`: never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache

import polars as pl

from greenscreen._units import CANONICAL_DIMENSION, UNITS
from greenscreen.errors import PipelineError, did_you_mean
from greenscreen.schema import FIELDS, FieldSpec
from greenscreen.vocabularies import label_key

# Limits on the header of a pipeline (README, "Data safety"). Past one, the read stops with a
# one-line PipelineError naming the file, before the reader allocates for it.
MAX_COLUMNS = 2_000
MAX_HEADER_CHARS = 256


# --------------------------------------------------------------------------------------------
# Header resolution: one header as written → a field and the scale of its unit.
@dataclass(frozen=True)
class HeaderMatch:
    """How one input header maps onto the template."""

    header: str
    field: str
    scale: float = 1.0
    unit: str | None = None
    #: the unit as the header writes it (``kW``), for messages
    written_unit: str | None = None


_UNIT_SUFFIX = re.compile(
    r"^(?P<base>.*?)\s*(?:\((?P<p>[^()]*)\)|\[(?P<b>[^\[\]]*)\]|/\s*(?P<s>[^/()]+))$"
)


def header_index(fields: dict[str, FieldSpec]) -> dict[str, str]:
    """Exact header spellings of a template's fields.

    Parameters
    ----------
    fields : dict of str to FieldSpec
        A template's fields (:data:`FIELDS`, or the loan book's).

    Returns
    -------
    dict of str to str
        :func:`~greenscreen.vocabularies.label_key` of the field name, the name with spaces,
        the Chinese label with and without its canonical unit, and every alias → field name.
    """
    index: dict[str, str] = {}
    for spec in fields.values():
        for label in (spec.name, spec.zh, spec.label_zh, *spec.aliases):
            index.setdefault(label_key(label), spec.name)
        index.setdefault(label_key(spec.name.replace("_", " ")), spec.name)
    return index


@cache
def _header_index() -> dict[str, str]:
    return header_index(FIELDS)


def resolve_header(header: str) -> HeaderMatch | None:
    """Map an input header to a template field, or ``None`` for an extra column.

    Accepts the field name (``capacity_mw``), its Chinese label with or without a unit
    (``装机容量``, ``装机容量（MW）``, ``装机容量(kW)``) and the aliases in the field metadata.
    A unit in the header is converted to the field's canonical unit (``kW`` → × 0.001 for
    ``capacity_mw``; ``万元`` → × 10 000 for money).

    Parameters
    ----------
    header : str
        The header as written.

    Returns
    -------
    HeaderMatch or None
        The field, the scale factor to its canonical unit and the unit as written.

    Raises
    ------
    PipelineError
        The header names a field in an unknown unit, or in a unit of the wrong kind
        (``capacity_mw`` in ``万元``): never a guess.
    """
    return resolve_header_in(header, FIELDS, _header_index())


def resolve_header_in(
    header: str, fields: dict[str, FieldSpec], index: dict[str, str]
) -> HeaderMatch | None:
    """:func:`resolve_header` against another template.

    Parameters
    ----------
    header : str
        The header as written.
    fields : dict of str to FieldSpec
        The template's fields.
    index : dict of str to str
        :func:`header_index` of ``fields``.

    Returns
    -------
    HeaderMatch or None

    Raises
    ------
    PipelineError
        As :func:`resolve_header`.
    """
    key = label_key(header)
    if key in index:
        return HeaderMatch(header, index[key])
    match = _UNIT_SUFFIX.match(key)
    if not match:
        return None
    base = match["base"].strip()
    unit = (match["p"] or match["b"] or match["s"] or "").strip()
    if base not in index:
        return None
    spec = fields[index[base]]
    if unit not in UNITS:
        raise PipelineError(
            f"column '{header}': unknown unit '{unit}' for field {spec.name} "
            f"(expected {spec.unit or 'no unit'}); rename the column to '{spec.name}' "
            "after converting the values"
        )
    expected = CANONICAL_DIMENSION.get(spec.unit or "", "dimensionless")
    factor = UNITS[unit].get(expected)
    if factor is None:
        raise PipelineError(
            f"column '{header}' is in '{unit}' but field {spec.name} is measured in "
            f"{spec.unit or 'no unit'}; convert the values or fix the header"
        )
    written = _UNIT_SUFFIX.match(header.strip())
    shown = (written["p"] or written["b"] or written["s"] or "").strip() if written else unit
    return HeaderMatch(header, spec.name, factor, unit, shown or unit)


# --------------------------------------------------------------------------------------------
# The template a table is mapped onto, and checks on the table's headers as read.
@dataclass(frozen=True)
class Contract:
    """What one input template is: its fields, how headers resolve, the row id, the columns a
    file must have and the row-level rules. The pipeline is one; the loan book
    (:mod:`greenscreen.loans`) another, read by the same validating machinery."""

    fields: dict[str, FieldSpec]
    resolve: Callable[[str], HeaderMatch | None]
    id_field: str
    required: Callable[[dict[str, HeaderMatch], pl.DataFrame, str], None]
    row_problems: Callable[[pl.DataFrame, dict[str, HeaderMatch]], pl.DataFrame]
    places: bool = False  # province / city normalisation (pipeline only)


def _check_columns(columns: Sequence[str], name: str) -> None:
    if len(columns) > MAX_COLUMNS:
        raise PipelineError(
            f"{name} has {len(columns):,} columns; a pipeline may have at most {MAX_COLUMNS:,} "
            "(delete the unused columns)"
        )
    for k, column in enumerate(columns):
        if len(column) > MAX_HEADER_CHARS:
            raise PipelineError(
                f"{name}: the header of column {k + 1} is {len(column):,} characters long "
                f"({column[:40]!r}…); a header may have at most {MAX_HEADER_CHARS}"
            )


# a repeated header as polars renames it: "notes", "notes_duplicated_0"
_DUPLICATED = re.compile(r"^(?P<base>.+)_duplicated_\d+$")


def _renamed(frame: pl.DataFrame) -> dict[str, str]:
    """Repeated headers of a table read by polars (CSV, Parquet or a DataFrame from them)."""
    present = set(frame.columns)
    return {
        column: found["base"]
        for column in frame.columns
        if (found := _DUPLICATED.match(column)) and found["base"] in present
    }


# --------------------------------------------------------------------------------------------
# Mapping: the table's columns → template fields, extra columns and notes.
def _map_columns(
    raw: pl.DataFrame, name: str, repeated: Mapping[str, str], contract: Contract
) -> tuple[pl.DataFrame, dict[str, HeaderMatch], list[str], tuple[str, ...]]:
    """Resolve headers to template fields; keep the rest as extra columns (one pass: linear
    in the number of columns). Returns the table, the matches, the extras and notes."""
    resolve_header = contract.resolve
    columns = raw.columns
    _check_columns(columns, name)
    schema = raw.schema
    matches: dict[str, HeaderMatch] = {}
    extras: list[str] = []
    dropped: list[str] = []
    notes: list[str] = []
    for column in columns:
        if _is_placeholder_header(column) and raw[column].null_count() == raw.height:
            dropped.append(column)  # an empty, unnamed spreadsheet column carries nothing
            continue
        match = resolve_header(column)
        if match is None and column in repeated:  # two columns for one field: an error
            base = resolve_header(repeated[column])
            match = None if base is None else replace(base, header=column)
        unreadable = _unreadable(schema[column])
        if match is None and unreadable:
            dropped.append(column)
            notes.append(
                f"column '{column}' ({schema[column]}) dropped: {unreadable} columns are not "
                "passed through"
            )
        elif match is None:
            extras.append(column)
        elif unreadable:
            raise PipelineError(
                f"{name}: column '{column}' ({match.field}) is a {unreadable} column "
                f"({schema[column]}); it must hold one text, number or date per row"
            )
        elif match.field in matches:
            raise PipelineError(
                f"{name}: columns '{matches[match.field].header}' and '{column}' both map to "
                f"field {match.field}; keep one of them"
            )
        else:
            matches[match.field] = match
    raw = raw.drop(dropped)
    contract.required(matches, raw, name)
    # Columns greenscreen derives itself (e.g. from a results file read back) are kept under
    # an input_ prefix and recomputed.
    renamed = {c: f"input_{c}" for c in extras if c in _DERIVED}
    raw = raw.rename(renamed)
    extras = [renamed.get(c, c) for c in extras]
    return raw, matches, extras, tuple(notes)


def _pipeline_required(matches: dict[str, HeaderMatch], raw: pl.DataFrame, name: str) -> None:
    """A pipeline needs a project_id and something that says what the project does."""
    if "project_id" not in matches:
        raise PipelineError(
            f"{name}: no project_id column (项目编号). Columns found: "
            f"{', '.join(raw.columns[:20])}" + did_you_mean("project_id", raw.columns[:MAX_COLUMNS])
        )
    if not {"activity", "description", "industry_code"} & set(matches):
        raise PipelineError(
            f"{name}: needs an activity (活动类型), a description (项目描述) or an "
            "industry_code (国民经济行业代码) column; "
            f"columns found: {', '.join(raw.columns[:20])}"
        )


_DERIVED = {"source_row", "province_code", "city"}


def _unreadable(dtype: pl.DataType) -> str | None:
    """What kind of column cannot be read as one value per row (nested, binary, durations)."""
    if isinstance(dtype, pl.List | pl.Array | pl.Struct):
        return "nested"
    if isinstance(dtype, pl.Binary | pl.Object):
        return "binary"
    if isinstance(dtype, pl.Duration):
        return "duration"
    return None


def _is_placeholder_header(column: str) -> bool:
    return column.strip() == "" or column.startswith(("__UNNAMED__", "_duplicated_"))


def _drop_label_row(
    raw: pl.DataFrame, resolve_header: Callable[[str], HeaderMatch | None] = resolve_header
) -> tuple[pl.DataFrame, bool]:
    """Drop a second header row of labels (the template's Chinese row), if present.

    It is a label row when every non-empty cell of the first row under a template column is
    the label of that column's field (``装机容量(MW)`` under ``capacity_mw``), and there are at
    least two; what extra columns carry there (an analyst's own label) does not matter.
    """
    if raw.height == 0:
        return raw, False
    first = raw.row(0, named=True)
    hits = 0
    for column, value in first.items():
        if value is None or str(value).strip() == "":
            continue
        try:
            here = resolve_header(column)
            if here is None:  # an extra column: its row-2 text says nothing either way
                continue
            there = resolve_header(str(value))
        except PipelineError:
            return raw, False
        if there is None or here.field != there.field:
            return raw, False
        hits += 1
    return (raw.slice(1), True) if hits >= 2 else (raw, False)
