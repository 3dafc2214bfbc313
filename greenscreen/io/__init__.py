"""Read a pipeline into typed projects plus rejects.

:func:`read_pipeline` accepts CSV (UTF-8, UTF-8 with BOM, GBK/GB18030), Excel (xlsx, xlsm, xls,
xlsb, ods), Parquet, JSON / JSON lines, an in-memory polars or pandas DataFrame, or a list of
dicts. Every input row ends up either in ``projects`` or in ``rejects`` (row, project_id, field,
column, value, reason, code); fully blank rows are counted and reported. All checks are column
expressions over the whole table: there is no per-row Python loop.

:func:`read_with` reads another template (a :class:`Contract`: the loan book) with the same
machinery; :func:`read_table` gives a file as written, unvalidated (``greenscreen merge``). The
vocabularies the cells are matched against live in :mod:`greenscreen.vocabularies`; the Excel
input template is written by :mod:`greenscreen._template`.

The read runs in three stages, one private module each, and :func:`read_with` calls them in
order: :mod:`~greenscreen.io._readers` (a source → the raw table, its own headers),
:mod:`~greenscreen.io._headers` (the raw headers → template fields; header resolution and the
units in headers) and :mod:`~greenscreen.io._validate` (the mapped table → typed columns plus
reject rows).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from greenscreen.errors import PipelineError
from greenscreen.io._headers import (
    MAX_COLUMNS,
    MAX_HEADER_CHARS,
    Contract,
    HeaderMatch,
    _drop_label_row,
    _map_columns,
    _pipeline_required,
    header_index,
    resolve_header,
    resolve_header_in,
)
from greenscreen.io._readers import (
    MAX_SHEET_CELLS,
    MAX_SHEET_ROWS,
    MAX_WORKBOOK_BYTES,
    MAX_WORKBOOK_PART_BYTES,
    SourceInfo,
    _read_raw,
    csv_separator,
    read_table,
)
from greenscreen.io._validate import (
    REJECT_SCHEMA,
    Pipeline,
    _row_problems,
    duplicate_id_rejects,
    validate,
)
from greenscreen.schema import FIELDS

__all__ = [
    "MAX_COLUMNS",
    "MAX_HEADER_CHARS",
    "MAX_SHEET_CELLS",
    "MAX_SHEET_ROWS",
    "MAX_WORKBOOK_BYTES",
    "MAX_WORKBOOK_PART_BYTES",
    "PIPELINE",
    "REJECT_SCHEMA",
    "Contract",
    "HeaderMatch",
    "Pipeline",
    "SourceInfo",
    "csv_separator",
    "duplicate_id_rejects",
    "header_index",
    "read_pipeline",
    "read_table",
    "read_with",
    "resolve_header",
    "resolve_header_in",
]

PIPELINE = Contract(FIELDS, resolve_header, "project_id", _pipeline_required, _row_problems, True)
"""Pipeline template v1 (:mod:`greenscreen.schema`)."""


def read_pipeline(
    source: Any,
    *,
    sheet: str | int | None = None,
    encoding: str | None = None,
    separator: str | None = None,
    strict: bool = False,
) -> Pipeline:
    """Read and validate a pipeline of candidate projects.

    Parameters
    ----------
    source
        Path to a CSV, Excel, Parquet, JSON or JSON-lines file; a polars or pandas DataFrame;
        or a list of dicts (one project each).
    sheet
        Excel sheet name or 0-based index. Default: a sheet named ``pipeline`` (or ``projects``,
        ``项目清单``) if there is one, else the first sheet.
    encoding
        CSV text encoding. Default: UTF-8 (with or without BOM), else GB18030 (a superset of
        GBK, the encoding of Chinese Excel CSV exports).
    separator
        CSV field separator. Default: sniffed from the header among ``,`` ``;`` tab ``|``.
    strict
        Raise :class:`~greenscreen.errors.PipelineError` (carrying the rejects) if any row is
        rejected.

    Returns
    -------
    Pipeline
        ``projects`` holds every accepted row with the template v1 columns typed
        (:func:`greenscreen.schema.polars_schema`), ``source_row``, ``province_code`` and
        ``city``, then the unknown extra columns unchanged. ``rejects`` holds one row per
        problem found.
    """
    return read_with(
        PIPELINE, source, sheet=sheet, encoding=encoding, separator=separator, strict=strict
    )


def read_with(
    contract: Contract,
    source: Any,
    *,
    sheet: str | int | None = None,
    encoding: str | None = None,
    separator: str | None = None,
    strict: bool = False,
) -> Pipeline:
    """Read and validate ``source`` against another input template.

    Parameters
    ----------
    contract : Contract
        The template: its fields, header resolver, id field, required columns and row rules
        (:data:`PIPELINE`, or the loan book's ``greenscreen.loans.LOANS``).
    source, sheet, encoding, separator, strict
        As :func:`read_pipeline`.

    Returns
    -------
    Pipeline
        The accepted rows typed by ``contract.fields``, and the rejects.

    Raises
    ------
    PipelineError
        The file cannot be read, lacks a required column, or (``strict``) has rejected rows.
    """
    # 1. read: the table with its own headers (_readers)
    raw = _read_raw(source, sheet=sheet, encoding=encoding, separator=separator)
    n_input = raw.frame.height
    # 2. map headers: columns to the contract's fields, a row of Chinese labels dropped (_headers)
    frame, matches, extras, notes = _map_columns(raw.frame, raw.info.name, raw.repeated, contract)
    frame, label_row = _drop_label_row(frame, contract.resolve)
    first_row = raw.first_row + int(label_row)
    n_input -= int(label_row)
    info = replace(
        raw.info,
        columns=tuple(matches.values()),
        extra_columns=tuple(extras),
        label_row_skipped=label_row,
    )
    # 3. validate: typed fields and reject rows (_validate)
    pipeline = validate(
        frame, matches, extras, info, first_row, n_input, raw.cells, raw.notes + notes, contract
    )
    if strict and pipeline.rejects.height:
        raise PipelineError(
            f"{pipeline.summary()}; strict mode does not accept rejects", pipeline.rejects
        )
    return pipeline
