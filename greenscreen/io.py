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
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import posixpath
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import polars as pl

from greenscreen.errors import GreenscreenError, PipelineError, did_you_mean
from greenscreen.schema import FIELDS, FieldSpec, HeaderMatch, resolve_header
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

# Limits on what a pipeline may hold (README, "Data safety"). Past one, the read stops with a
# one-line PipelineError naming the file, before the reader allocates for it.
MAX_COLUMNS = 2_000
MAX_HEADER_CHARS = 256
MAX_SHEET_ROWS = 1_048_576  # Excel's own limit
MAX_SHEET_CELLS = 50_000_000  # rows × columns of a sheet's used range: ~2 GB once read
MAX_WORKBOOK_BYTES = 2 << 30  # a workbook's parts, decompressed
MAX_WORKBOOK_PART_BYTES = 256 << 20  # a part the reader loads whole (shared strings, styles)

_EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}
_PREFERRED_SHEETS = ("pipeline", "projects", "项目清单", "项目")
_MAX_VALUE_CHARS = 200  # reject rows quote at most this much of a bad cell


@dataclass(frozen=True)
class SourceInfo:
    """Where a pipeline came from and how its columns were mapped."""

    name: str
    format: str
    sha256: str | None = None
    encoding: str | None = None
    sheet: str | None = None
    columns: tuple[HeaderMatch, ...] = ()
    extra_columns: tuple[str, ...] = ()
    label_row_skipped: bool = False


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
    raw = _read_raw(source, sheet=sheet, encoding=encoding, separator=separator)
    n_input = raw.frame.height
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
    pipeline = _validate(
        frame, matches, extras, info, first_row, n_input, raw.cells, raw.notes + notes, contract
    )
    if strict and pipeline.rejects.height:
        raise PipelineError(
            f"{pipeline.summary()}; strict mode does not accept rejects", pipeline.rejects
        )
    return pipeline


# --------------------------------------------------------------------------------------------
# Raw readers: the table as read (strings for text formats) and what the reader learnt on the way.
@dataclass(frozen=True)
class _Raw:
    frame: pl.DataFrame
    info: SourceInfo
    first_row: int  # the source row number of the first data row
    # header of a repeated column as renamed by the reader -> the header as written
    repeated: dict[str, str] = field(default_factory=dict)
    # spreadsheet cells without a usable value: row, column, value, code
    cells: pl.DataFrame | None = None
    notes: tuple[str, ...] = ()


def read_table(
    source: str | Path, *, sheet: str | int | None = None, encoding: str | None = None
) -> pl.DataFrame:
    """A pipeline file as written, for tools that edit it (``greenscreen merge``).

    Its own headers, cells as the reader found them, nothing typed or rejected; the same checks
    on size, encoding and structure as :func:`read_pipeline`.

    Parameters
    ----------
    source : str or pathlib.Path
        A CSV, Excel, Parquet or JSON file.
    sheet, encoding
        As :func:`read_pipeline`.

    Returns
    -------
    polars.DataFrame
    """
    return _read_raw(source, sheet=sheet, encoding=encoding, separator=None).frame


def _read_raw(
    source: Any, *, sheet: str | int | None, encoding: str | None, separator: str | None
) -> _Raw:
    if isinstance(source, pl.LazyFrame):
        source = source.collect()
    if isinstance(source, pl.DataFrame):
        frame = source
        return _Raw(frame, SourceInfo(name="<DataFrame>", format="dataframe"), 1, _renamed(frame))
    if type(source).__module__.startswith("pandas"):
        frame = _from_pandas(source)
        return _Raw(frame, SourceInfo(name="<pandas.DataFrame>", format="pandas"), 1)
    if isinstance(source, Sequence) and not isinstance(source, str | bytes):
        return _Raw(_from_records(source, "<records>"), SourceInfo("<records>", "records"), 1)
    if not isinstance(source, str | Path):
        raise PipelineError(
            f"cannot read a pipeline from {type(source).__name__}; pass a file path, "
            "a polars or pandas DataFrame, or a list of dicts"
        )
    path = Path(source)
    if not path.is_file():
        raise PipelineError(f"pipeline file not found: {path}")
    data = path.read_bytes()
    if not data.strip():
        raise PipelineError(f"{path.name} is empty")
    digest = hashlib.sha256(data).hexdigest()
    suffix = path.suffix.lower()
    try:
        if suffix in _EXCEL_SUFFIXES:
            return _read_excel(path, sheet, digest)
        if suffix == ".parquet":
            # the schema first: a file too wide to read is refused before its data is read
            _check_columns(list(pl.read_parquet_schema(io.BytesIO(data))), path.name)
            frame = pl.read_parquet(io.BytesIO(data))
            return _Raw(frame, SourceInfo(path.name, "parquet", digest), 1, _renamed(frame))
        if suffix in {".jsonl", ".ndjson", ".json"}:
            text, enc, notes = _decode(data, encoding, path.name)
            try:
                if suffix == ".json":
                    rows = json.loads(text)
                    if isinstance(rows, dict):  # {"projects": [...]} or a single project
                        rows = rows.get("projects", [rows])
                else:
                    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
            except RecursionError:
                raise PipelineError(
                    f"{path.name} is nested too deeply to be a pipeline (a list of flat objects)"
                ) from None
            fmt = "json" if suffix == ".json" else "ndjson"
            frame = _from_records(rows, path.name)
            return _Raw(frame, SourceInfo(path.name, fmt, digest, enc), 1, notes=notes)
        if suffix in {".csv", ".txt", ".tsv", ""}:
            return _read_csv_file(path.name, data, digest, suffix, encoding, separator)
    except GreenscreenError:
        raise
    except (pl.exceptions.PolarsError, json.JSONDecodeError, ValueError, OSError) as exc:
        problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PipelineError(f"cannot read {path.name} as {suffix[1:] or 'csv'}: {problem}") from exc
    raise PipelineError(
        f"unsupported pipeline file type '{suffix}' ({path.name}); use .csv, .xlsx, .xls, "
        ".ods, .parquet, .json or .jsonl"
    )


def _read_csv_file(
    name: str, data: bytes, digest: str, suffix: str, encoding: str | None, separator: str | None
) -> _Raw:
    text, enc, notes = _decode(data, encoding, name)
    nul = text.find("\x00")
    if nul >= 0:
        raise PipelineError(
            f"{name} contains a NUL character (line {text.count(chr(10), 0, nul) + 1}): not a "
            "text file, or UTF-16 without a byte-order mark; save it as UTF-8 CSV"
        )
    if "\n" not in text and "\r" in text:  # classic Mac line ends, which polars does not split
        text = text.replace("\r", "\n")
        enc_bytes = None
    else:
        # polars parses UTF-8 bytes natively; other encodings are re-encoded once
        enc_bytes = data if enc == "utf-8-sig" else None
    end = text.find("\n")
    header = (text if end < 0 else text[:end]).removesuffix("\r")
    sep = separator or ("\t" if suffix == ".tsv" else None)
    _check_csv_header(header, sep, name)  # before polars parses the body
    try:
        frame = _read_csv(enc_bytes or text.encode("utf-8"), header, sep)
    except pl.exceptions.PolarsError as exc:
        raise PipelineError(
            f"cannot read {name} as csv: {_csv_problem(text, header, sep, exc)}"
        ) from exc
    return _Raw(frame, SourceInfo(name, "csv", digest, enc), 2, _renamed(frame), notes=notes)


def _check_csv_header(header: str, separator: str | None, name: str) -> None:
    """Count and measure the header cells of a CSV from its first line alone."""
    if len(header) > MAX_COLUMNS * (MAX_HEADER_CHARS + 3):
        raise PipelineError(
            f"{name}: the header line is {len(header):,} characters long; a pipeline has at most "
            f"{MAX_COLUMNS:,} columns with headers of at most {MAX_HEADER_CHARS} characters"
        )
    try:
        cells = next(csv.reader([header], delimiter=csv_separator(header, separator)), [])
    except csv.Error:
        return  # an unreadable header is reported by the full read
    _check_columns(cells, name)


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


def _decode(data: bytes, encoding: str | None, name: str) -> tuple[str, str, tuple[str, ...]]:
    """Decode text strictly: the given encoding, else UTF-8 (BOM allowed), UTF-16/32 with a BOM,
    else GB18030. Returns the text, the encoding used and notes for the user.

    A strict fallback chain rather than a statistical detector: Chinese bank exports are
    UTF-8 or GBK, and guessing wrong would corrupt names silently. A Latin-1/cp1252 file can
    also decode as GB18030 (``Müller`` → ``M黮ler``): text that is mostly characters outside
    the common Chinese set (GB2312) is refused instead.
    """
    if encoding:
        try:
            return data.decode(encoding), encoding, ()
        except (UnicodeDecodeError, LookupError) as exc:
            raise PipelineError(f"cannot decode {name} as {encoding}: {exc}") from exc
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(enc), enc, ()
            except UnicodeDecodeError as exc:
                raise PipelineError(
                    f"cannot decode {name} as {enc} (it starts with a {enc} byte-order mark): {exc}"
                ) from None
    try:
        return data.decode("utf-8-sig"), "utf-8-sig", ()
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        raise PipelineError(
            f"cannot decode {name}: it is neither UTF-8 nor GBK/GB18030; "
            "save it as UTF-8 CSV or pass encoding="
        ) from None
    return text, "gb18030", _gb18030_notes(text, data, name)


_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def _gb18030_notes(text: str, data: bytes, name: str) -> tuple[str, ...]:
    """Refuse GB18030 text that is not plausibly Chinese; otherwise say the encoding was used.

    A cp1252 letter followed by an ASCII letter decodes as one rare hanzi (``ü`` + ``l`` →
    ``黮``), so Latin text read as GB18030 is full of rare characters glued to ASCII letters,
    which Chinese text (common hanzi, or traditional ones next to other hanzi) is not.
    """
    note = f"{name} is not UTF-8: read as GB18030 (GBK)"
    try:
        text.encode("gb2312")  # every character a common one: the usual case, checked in C
        return (note,)
    except UnicodeEncodeError:
        pass
    glued = [m.start() for m in _GLUED.finditer(text) if not _common_chinese(m.group())]
    if not glued:
        return (note,)
    n_other = len(text) - len(text.encode("ascii", "ignore"))
    if 2 * len(glued) >= n_other:
        at = glued[0]
        byte_at = len(text[:at].encode("gb18030"))
        try:
            latin = f"; as cp1252 it reads '{_around(data.decode('cp1252'), byte_at)}'"
        except UnicodeDecodeError:
            latin = ""
        raise PipelineError(
            f"{name} is not UTF-8, and read as GB18030 (GBK) it gives unlikely characters "
            f"('{_around(text, at)}'){latin}: save it as UTF-8 CSV, or pass its encoding "
            "(encoding='cp1252', --encoding cp1252)"
        )
    return (
        f"{note}; {len(glued)} unusual characters next to Latin letters, e.g. "
        f"'{_around(text, glued[0])}': if names look wrong, save the file as UTF-8",
    )


# a non-ASCII character with an ASCII letter right before or after it
_GLUED = re.compile(r"(?<=[A-Za-z])[^\x00-\x7f]|[^\x00-\x7f](?=[A-Za-z])")


def _common_chinese(char: str) -> bool:
    """In GB2312: common hanzi, CJK punctuation, full-width forms."""
    try:
        char.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def _around(text: str, at: int) -> str:
    """The cell around character ``at``: up to a separator or a line end, 12 characters."""
    window = text[max(0, at - 12) : at + 12]
    at = min(at, 12)
    start = max(window.rfind(sep, 0, at) for sep in ',;\t|"\n') + 1
    ends = [k for sep in ',;\t|"\r\n' if (k := window.find(sep, at)) >= 0]
    return window[start : min(ends, default=len(window))].strip()


def csv_separator(header: str, separator: str | None) -> str:
    """The separator of a CSV file, sniffed from its header line unless given.

    Parameters
    ----------
    header : str
        The file's first line.
    separator : str or None
        The separator the caller asked for; None to sniff one of ``,`` ``;`` tab ``|``.

    Returns
    -------
    str
        ``separator`` when given, else the sniffed one, else ``,``.
    """
    if separator is None:
        try:
            separator = csv.Sniffer().sniff(header, delimiters=",;\t|").delimiter
        except csv.Error:
            separator = ","
    return separator


def _csv_problem(text: str, header: str, separator: str | None, exc: Exception) -> str:
    """Say which row of a CSV polars could not read: a stray separator, an unclosed quote."""
    sep = csv_separator(header, separator)
    try:
        rows = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True)
        width = None
        for fields in rows:
            if width is None:
                width = len(fields)
            elif len(fields) > width:
                return (
                    f"row {rows.line_num} has {len(fields)} fields but the header has {width} "
                    f"(a stray '{sep}' or an unquoted value containing it?)"
                )
    except csv.Error as error:
        return f"row {rows.line_num}: {error} (an unclosed quote?)"
    return str(exc).strip().splitlines()[0]


def _read_csv(data: bytes, header: str, separator: str | None) -> pl.DataFrame:
    separator = csv_separator(header, separator)
    return pl.read_csv(
        io.BytesIO(data),
        separator=separator,
        infer_schema=False,
        truncate_ragged_lines=False,
    )


_OLE2 = bytes.fromhex("D0CF11E0A1B11AE1")  # Compound File header: encrypted Office files, .xls


def _read_excel(path: Path, sheet: str | int | None, digest: str) -> _Raw:
    """A sheet as text cells, with the cells that hold an Excel error or an uncalculated formula.

    An .xlsx/.xlsm is inspected first (sizes, used range, formulas) so that a workbook that
    would make the reader allocate gigabytes is refused before it is read.
    """
    import fastexcel

    suffix = path.suffix.lower()
    xlsx = suffix in {".xlsx", ".xlsm"}
    if xlsx:
        with path.open("rb") as handle:
            if handle.read(8) == _OLE2:
                raise PipelineError(
                    f"{path.name} is not an xlsx workbook but an OLE2 container: a "
                    "password-protected (encrypted) workbook, or an old .xls renamed; remove the "
                    "password or save it as .xlsx"
                )
    if suffix != ".xls" and zipfile.is_zipfile(path):
        _check_workbook_parts(path)
    try:
        reader = fastexcel.read_excel(path)
        names = reader.sheet_names
    except Exception as exc:  # fastexcel raises its own hierarchy for corrupt/encrypted files
        raise PipelineError(
            f"cannot open {path.name} as a workbook (corrupt or password-protected?): "
            f"{_first_line(exc)}"
        ) from exc
    chosen = _choose_sheet(names, sheet, path.name)
    scan = _scan_sheet(path, chosen) if xlsx else _SheetScan()
    try:
        batch, errors = reader.load_sheet(
            chosen, header_row=None, dtypes="string"
        ).to_arrow_with_errors()
        grid = pl.DataFrame(pl.from_arrow(batch))
    except Exception as exc:
        raise PipelineError(
            f"cannot read sheet '{chosen}' of {path.name}: {_first_line(exc)}"
        ) from exc
    if grid.height == 0 or grid.width == 0:
        raise PipelineError(f"sheet '{chosen}' of {path.name} is empty")
    columns, repeated = _header_names(grid.row(0))
    _check_columns(columns, path.name)
    if scan.lossy:
        grid = _exact_numbers(reader, chosen, grid, columns)
    frame = grid.slice(1).rename(dict(zip(grid.columns, columns, strict=True)))
    cells = _cell_problems(errors, scan, columns)
    info = SourceInfo(path.name, suffix[1:], digest, sheet=chosen)
    return _Raw(frame, info, scan.origin[0] + 1, repeated, cells)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _choose_sheet(names: list[str], sheet: str | int | None, name: str) -> str:
    if not names:
        raise PipelineError(f"{name} has no sheets")
    if sheet is None:
        lowered = {n.strip().lower(): n for n in names}
        return next((lowered[p] for p in _PREFERRED_SHEETS if p in lowered), names[0])
    if isinstance(sheet, int):
        if not 0 <= sheet < len(names):
            raise PipelineError(f"{name} has {len(names)} sheets; no sheet index {sheet}")
        return names[sheet]
    if sheet in names:
        return sheet
    shown = ", ".join(names[:20]) + (f", … ({len(names)} sheets)" if len(names) > 20 else "")
    raise PipelineError(
        f"{name} has no sheet '{sheet}' (sheets: {shown})" + did_you_mean(sheet, names)
    )


def _header_names(values: tuple[Any, ...]) -> tuple[list[str], dict[str, str]]:
    """Column names from a sheet's header cells, as fastexcel names them (``notes``,
    ``notes_1``, ``__UNNAMED__4``), and which of them repeat an earlier header."""
    names: list[str] = []
    repeated: dict[str, str] = {}
    seen: set[str] = set()
    for k, value in enumerate(values):
        base = "" if value is None else str(value)
        name = base if base.strip() else f"__UNNAMED__{k}"
        n = 0
        while name in seen:
            n += 1
            name = f"{base}_{n}"
        if n:
            repeated[name] = base
        seen.add(name)
        names.append(name)
    return names, repeated


def _exact_numbers(reader: Any, sheet: str, grid: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Number cells of the numeric template columns at full precision.

    fastexcel writes a number cell as text with at most 9 decimals (1e-10 → "0",
    3.0000000001 → "3"), so such cells, which the sheet scan found, are read again as floats
    and written back with the shortest exact text, as CSV holds them.
    """
    wanted = [k for k, column in enumerate(columns) if _numeric_header(column)]
    if not wanted:
        return grid
    batch = reader.load_sheet(sheet, header_row=None, dtypes="float", use_columns=wanted)
    floats = pl.DataFrame(pl.from_arrow(batch.to_arrow_with_errors()[0]))
    floats = floats.rename({c: f"__float__{c}" for c in floats.columns})
    plain = r"^-?[0-9]+(\.[0-9]+)?$"  # how fastexcel writes a number cell
    return (
        grid.hstack(floats)
        .with_columns(
            pl.when(pl.col(c).str.contains(plain) & pl.col(f"__float__{c}").is_not_null())
            .then(pl.col(f"__float__{c}").cast(pl.String))
            .otherwise(pl.col(c))
            .alias(c)
            for c in (grid.columns[k] for k in wanted)
        )
        .drop(floats.columns)
    )


def _numeric_header(column: str) -> bool:
    try:
        match = resolve_header(column)
    except PipelineError:
        return False
    return match is not None and FIELDS[match.field].kind in ("float", "int")


_EXCEL_ERRORS = {
    "Div0": "#DIV/0!",
    "NA": "#N/A",
    "Name": "#NAME?",
    "Null": "#NULL!",
    "Num": "#NUM!",
    "Ref": "#REF!",
    "Value": "#VALUE!",
    "GettingData": "#GETTING_DATA",
}


def _cell_problems(errors: Any, scan: _SheetScan, columns: list[str]) -> pl.DataFrame | None:
    """Reject material for error cells (from the reader) and uncalculated formulas (from the
    sheet scan): source row, column header, value, code. Header cells are not data."""
    top, left = scan.origin
    found: list[tuple[int, int, str, str]] = []  # (row in the grid, column index, value, code)
    for error in errors.errors if errors is not None else ():
        kind = re.search(r"Error\((\w+)\)", error.detail)
        value = _EXCEL_ERRORS.get(kind[1], kind[1]) if kind else error.detail
        found.append((error.position[0], error.position[1], value, "excel_error"))
    for row, column, formula in scan.formulas:
        found.append((row - top, column - left, f"={formula}", "formula_without_value"))
    rows = [
        (top + r, columns[c], value, code)
        for r, c, value, code in found
        if r >= 1 and 0 <= c < len(columns)
    ]
    if not rows:
        return None
    return pl.DataFrame(
        rows,
        schema={"row": pl.Int64, "column": pl.String, "value": pl.String, "code": pl.String},
        orient="row",
    )


# --------------------------------------------------------------------------------------------
# Workbook inspection (.xlsx/.xlsm): a zip of XML parts, read with bounded reads and regular
# expressions over blocks of the sheet (polars' regex engine: linear, no per-cell Python).
@dataclass(frozen=True)
class _SheetScan:
    origin: tuple[int, int] = (1, 1)  # (row, column) of the reader's first cell, 1-based
    formulas: tuple[tuple[int, int, str], ...] = ()  # (row, column, formula) without a value
    lossy: bool = False  # number cells the reader's text would round


def _check_workbook_parts(path: Path) -> None:
    """Refuse a workbook whose parts decompress to more than the limits (a zip bomb)."""
    try:
        with zipfile.ZipFile(path) as book:
            parts = book.infolist()
            total = sum(part.file_size for part in parts)
            if total > MAX_WORKBOOK_BYTES:
                raise PipelineError(
                    f"{path.name} decompresses to {total / 2**30:,.1f} GB; greenscreen reads "
                    f"workbooks of at most {MAX_WORKBOOK_BYTES >> 30} GB: save the pipeline as "
                    "CSV or Parquet"
                )
            for part in parts:
                if _is_sheet_part(part.filename):
                    continue
                if part.file_size > MAX_WORKBOOK_PART_BYTES:
                    raise PipelineError(
                        f"{path.name}: its part {part.filename} decompresses to "
                        f"{part.file_size / 2**20:,.0f} MB, more than the "
                        f"{MAX_WORKBOOK_PART_BYTES >> 20} MB greenscreen reads (a zip bomb?)"
                    )
                if "sharedstrings" in part.filename.lower():  # declared sizes can lie: count
                    with book.open(part) as handle:
                        size = 0
                        while block := handle.read(1 << 20):
                            size += len(block)
                            if size > MAX_WORKBOOK_PART_BYTES:
                                raise PipelineError(
                                    f"{path.name}: its part {part.filename} decompresses to "
                                    f"more than {MAX_WORKBOOK_PART_BYTES >> 20} MB (a zip bomb?)"
                                )
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise PipelineError(
            f"cannot open {path.name} as a workbook (corrupt or truncated?): {_first_line(exc)}"
        ) from exc


def _is_sheet_part(name: str) -> bool:
    return name.startswith("xl/worksheets/") or name == "content.xml"


_P = r"(?:[A-Za-z_][\w.-]*:)?"  # an XML namespace prefix (x:c), rare but valid
_W = r"[ \t\r\n]*"
_REF = r'[ \t\r\n]r="[A-Z]{1,4}[0-9]{1,10}"'
_F = rf"(?:<{_P}f[^>]*/>|<{_P}f[^>]*>[^<]*</{_P}f>)"
# a cell with a value (<v>, or an inline string): the cells the reader keeps
_VALUED = rf"{_REF}[^>]*>{_W}(?:{_F}{_W})?<{_P}(?:v|is)>"
_FORMULA_NO_VALUE = rf"{_REF}[^>]*>{_W}{_F}{_W}(?:<{_P}v{_W}/>|<{_P}v></{_P}v>)?{_W}</{_P}c>"
_FORMULA_ANY = rf"{_REF}[^>]*>{_W}{_F}"
# a number the reader's text would round: 10+ decimals, or a negative exponent (1E-10)
_LOSSY = re.compile(rb"v>-?[0-9]*\.[0-9]{10}|v>-?[0-9.]+[eE]-")


def _scan_sheet(path: Path, sheet: str) -> _SheetScan:
    """Used range, formulas without a value and lossy numbers of one sheet, streamed.

    The reader allocates rows × columns of the range from the first to the last cell with a
    value: one cell at XFD1048576 next to A1 is 17 billion cells. Refused past the limits.
    Formulas count as without a value when they have no cached ``<v>``, or when the workbook
    asks to be recalculated on opening (``fullCalcOnLoad``, written by programs such as
    xlsxwriter, whose cached values are placeholders, 0).
    """
    with zipfile.ZipFile(path) as book:
        part, recalculate = _sheet_part(book, sheet, path.name)
        formula = _FORMULA_ANY if recalculate else _FORMULA_NO_VALUE
        rows: list[int] = []
        letters: set[str] = set()
        formulas: list[tuple[int, int, str]] = []
        lossy = False
        with book.open(part) as handle:
            for block in _xml_blocks(handle, path.name, sheet):
                text = pl.Series([block.decode("latin-1")])
                refs = text.str.extract_all(_VALUED).explode().drop_nulls()
                if len(refs):
                    parts = refs.str.extract_groups(r'r="([A-Z]+)([0-9]+)"').struct.unnest()
                    found = parts.get_column(parts.columns[1]).cast(pl.Int64)
                    rows += [found.min(), found.max()]  # type: ignore[list-item]
                    letters.update(parts.get_column(parts.columns[0]).unique().to_list())
                has_formula = b"<f" in block or b":f>" in block or b":f " in block
                for cell in (
                    text.str.extract_all(formula).explode().drop_nulls() if has_formula else ()
                ):
                    ref = re.search(r'r="([A-Z]+)([0-9]+)"', cell)
                    body = re.search(r"<(?:[\w.-]+:)?f[^>]*>([^<]*)<", cell)
                    if ref:  # the block was decoded as latin-1: back to UTF-8, then unescaped
                        source = (body[1] if body else "").encode("latin-1")
                        source = html.unescape(source.decode("utf-8", "replace"))
                        formulas.append((int(ref[2]), _column_number(ref[1]), source))
                lossy = lossy or _LOSSY.search(block) is not None
    if not rows:
        return _SheetScan()
    numbers = [_column_number(c) for c in letters]
    top, bottom, left, right = min(rows), max(rows), min(numbers), max(numbers)
    height, width = bottom - top + 1, right - left + 1
    if bottom > MAX_SHEET_ROWS or width > MAX_COLUMNS or height * width > MAX_SHEET_CELLS:
        raise PipelineError(
            f"sheet '{sheet}' of {path.name} has cells from {_column_letters(left)}{top} to "
            f"{_column_letters(right)}{bottom} ({height:,} rows × {width:,} columns); greenscreen "
            f"reads at most {MAX_COLUMNS:,} columns, {MAX_SHEET_ROWS:,} rows and "
            f"{MAX_SHEET_CELLS:,} cells: delete stray cells far from the table, or save the "
            "pipeline as CSV"
        )
    return _SheetScan((top, left), tuple(formulas), lossy)


def _xml_blocks(handle: Any, name: str, sheet: str) -> Iterator[bytes]:
    """The decompressed part in blocks of about 16 MB cut after a row (or a tag): no cell is
    split between two blocks. Stops past MAX_WORKBOOK_BYTES."""
    carry = b""
    total = 0
    while chunk := handle.read(1 << 24):
        total += len(chunk)
        if total > MAX_WORKBOOK_BYTES:
            raise PipelineError(
                f"sheet '{sheet}' of {name} decompresses to more than "
                f"{MAX_WORKBOOK_BYTES >> 30} GB: save the pipeline as CSV or Parquet"
            )
        block = carry + chunk
        cut = block.rfind(b"row>") + 4
        if cut < 4:
            cut = block.rfind(b">") + 1 or len(block)
        carry = block[cut:]
        yield block[:cut]
    if carry:
        yield carry


def _sheet_part(book: zipfile.ZipFile, sheet: str, name: str) -> tuple[str, bool]:
    """The zip part of a sheet, and whether the workbook asks to be recalculated on opening."""
    try:
        root_rels = _xml_part(book, "_rels/.rels")
        workbook_part = next(
            (
                e.get("Target", "").lstrip("/")
                for e in root_rels.iter()
                if _local(e.tag) == "Relationship" and e.get("Type", "").endswith("/officeDocument")
            ),
            "xl/workbook.xml",
        )
        folder, file = posixpath.split(workbook_part)
        workbook = _xml_part(book, workbook_part)
        rels = _xml_part(book, posixpath.join(folder, "_rels", f"{file}.rels"))
    except (KeyError, ElementTree.ParseError) as exc:
        raise PipelineError(f"cannot open {name} as a workbook (corrupt?): {exc}") from exc
    rid = next(
        (
            value
            for e in workbook.iter()
            if _local(e.tag) == "sheet" and e.get("name") == sheet
            for key, value in e.attrib.items()
            if key.endswith("}id")
        ),
        None,
    )
    target = next(
        (
            e.get("Target", "")
            for e in rels.iter()
            if _local(e.tag) == "Relationship" and e.get("Id") == rid
        ),
        None,
    )
    if not target:
        raise PipelineError(f"cannot find sheet '{sheet}' in {name} (a corrupt workbook?)")
    part = (
        target.lstrip("/")
        if target.startswith("/")
        else posixpath.normpath(posixpath.join(folder, target))
    )
    recalculate = any(
        _local(e.tag) == "calcPr" and e.get("fullCalcOnLoad") in ("1", "true")
        for e in workbook.iter()
    )
    return part, recalculate


def _xml_part(book: zipfile.ZipFile, part: str) -> ElementTree.Element:
    # part sizes are bounded by _check_workbook_parts
    return ElementTree.fromstring(book.read(part))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _column_number(letters: str) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + ord(letter) - 64
    return number


def _column_letters(number: int) -> str:
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _from_records(rows: Any, name: str) -> pl.DataFrame:
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        raise PipelineError("a JSON pipeline must be a list of objects, one per project")
    columns = list(dict.fromkeys(str(k) for row in rows for k in row))
    _check_columns(columns, name)
    # Values go in as text so one bad value cannot break type inference for the whole column;
    # the same parsers as for CSV then type them.
    try:
        texts = [{str(k): None if v is None else str(v) for k, v in row.items()} for row in rows]
    except RecursionError:  # a value nested thousands of levels deep
        raise PipelineError(f"{name}: a value is nested too deeply to be read") from None
    return pl.DataFrame(texts, schema=dict.fromkeys(columns, pl.String))


def _from_pandas(frame: Any) -> pl.DataFrame:
    try:
        return pl.from_pandas(frame)
    except Exception:  # mixed-type object columns: fall back to text, parsed like CSV
        texts = frame.astype(object).where(frame.notna(), None)
        return pl.DataFrame(
            {str(c): [None if v is None else str(v) for v in texts[c]] for c in texts.columns},
            schema=dict.fromkeys(map(str, texts.columns), pl.String),
        )


# --------------------------------------------------------------------------------------------
# Columns
def _map_columns(
    raw: pl.DataFrame, name: str, repeated: Mapping[str, str], contract: Contract | None = None
) -> tuple[pl.DataFrame, dict[str, HeaderMatch], list[str], tuple[str, ...]]:
    """Resolve headers to template fields; keep the rest as extra columns (one pass: linear
    in the number of columns). Returns the table, the matches, the extras and notes."""
    contract = contract or PIPELINE
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


def _validate(
    raw: pl.DataFrame,
    matches: dict[str, HeaderMatch],
    extras: list[str],
    info: SourceInfo,
    first_row: int,
    n_input: int,
    cells: pl.DataFrame | None = None,
    notes: tuple[str, ...] = (),
    contract: Contract | None = None,
) -> Pipeline:
    contract = contract or PIPELINE
    fields = contract.fields
    # Input columns are renamed apart from the typed fields they feed ("activity" may be both).
    raw_of = {name: f"__in__{name}" for name in matches}
    frame = raw.rename({m.header: raw_of[name] for name, m in matches.items()})
    dtypes = {name: frame.schema[raw_of[name]] for name in matches}
    frame = frame.with_columns(
        pl.int_range(pl.len(), dtype=pl.Int64).add(first_row).alias("_row"),
        *(_as_text(pl.col(raw_of[name])).alias(_t(name)) for name in matches),
    )
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
    frame = frame.filter(~blank).with_columns(pl.col(_t(contract.id_field)).alias("_pid"))

    specs = {name: fields[name] for name in matches}
    stages = (
        lambda name, spec: _split(name, spec, dtypes[name]),
        lambda name, spec: _clean(name, spec, dtypes[name]),
        lambda name, spec: _convert(name, spec, matches[name], raw_of[name], dtypes[name]),
        lambda name, spec: _error(name, spec, matches[name], dtypes[name]),
    )
    for stage in stages:
        exprs = [e for name, spec in specs.items() if (e := stage(name, spec)) is not None]
        if exprs:
            frame = frame.with_columns(exprs)
    frame = frame.with_columns(_typed(name, spec, name in matches) for name, spec in fields.items())
    derived: list[str] = []
    if contract.places:
        derived = ["province_code", "city"]
        frame = frame.with_columns(*_province_code()).with_columns(
            pl.when(pl.col("province_code").is_not_null())
            .then(pl.col("province_code").replace_strict(_province_names(), default=None))
            .otherwise(pl.col("province"))
            .alias("province")
        )

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
    projects = frame.select(*fields, pl.col("_row").alias("source_row"), *derived, *extras).join(
        rejects.select(pl.col("row").alias("source_row")),
        on="source_row",
        how="anti",
        maintain_order="left",
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
    text = expr.cast(pl.String).str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text)


_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
# 1,234,567.8 or 1 234 567.8 (a space, no-break or narrow no-break space): groups of exactly
# 3 digits, one kind of separator (never 1,5 or 1 5: those are not groupings)
_SPACES = " \u00a0\u202f"
_SEPARATED = rf"^[+-]?\d{{1,3}}((,\d{{3}})+|([{_SPACES}]\d{{3}})+)(\.\d+)?$"
_UNITS = ("%", "万", "亿")  # a cell's own unit, at most one: 1.5万, 2亿, 8%, 8 %
_MULTIPLIERS = {"万": 1e4, "亿": 1e8}
# header units that already carry a multiplier: 万元, 亿kWh, 千元, million…
_MULTIPLIED_UNIT = re.compile(r"万|亿|百万|千元|thousand|million|^mn$|^m$")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日")
_EXCEL_EPOCH = pl.date(1899, 12, 30)


def _split(name: str, spec: FieldSpec, dtype: pl.DataType) -> pl.Expr | None:
    """Stage 1: the unit a number cell carries itself (``%``, ``万``, ``亿``), or null."""
    if spec.kind in ("float", "int") and not dtype.is_numeric():
        text = pl.col(_t(name))
        unit = pl.lit(None, dtype=pl.String)
        for suffix in _UNITS:
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
    if spec.kind == "date" and not dtype.is_temporal():
        text = pl.col(_t(name))
        return text.str.replace(r"[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$", "").alias(_c(name))
    return None


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
        year = value.dt.year()
        code = (
            pl.when(present & value.is_null())
            .then(pl.lit("invalid_date"))
            .when((year < 1900) | (year > 2100))
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
    failed = frame.filter(pl.col(_e(spec.name)).is_not_null()).select(
        pl.col("_row").alias("row"),
        pl.col("_pid").alias("project_id"),
        pl.col(_t(spec.name)).alias("value"),
        pl.col(_e(spec.name)).alias("code"),
    )
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


def _province_code() -> list[pl.Expr]:
    """The province's GB/T 2260 code; a prefecture or county written instead of a province
    (宝鸡, 浦东新区) gives its province's code and is kept as ``city``."""
    lookup = province_lookup()
    places, _ = city_lookup()
    key = label_expr(pl.col("province"))
    province = key.replace_strict(
        {k: v[1] for k, v in lookup.items()}, default=None, return_dtype=pl.String
    )
    place = key.replace_strict(
        {k: v[0] for k, v in places.items()}, default=None, return_dtype=pl.String
    )
    official = key.replace_strict(
        {k: v[1] for k, v in places.items()}, default=None, return_dtype=pl.String
    )
    china = pl.col("country") == "CN"
    return [
        pl.when(china).then(pl.coalesce(province, place)).alias("province_code"),
        pl.when(china & province.is_null()).then(official).alias("city"),
    ]


def _province_problems(out: pl.DataFrame, matches: dict[str, HeaderMatch]) -> pl.DataFrame:
    """Unknown Chinese provinces are rejected; known ones are normalised in place."""
    if "province" not in matches:
        return REJECT_SCHEMA.to_frame()
    header = matches["province"].header
    failed = out.filter(
        (pl.col("country") == "CN")
        & pl.col("province").is_not_null()
        & pl.col("province_code").is_null()
    ).select(
        pl.col("_row").alias("row"),
        pl.col("_pid").alias("project_id"),
        pl.col("province").alias("value"),
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


PIPELINE = Contract(FIELDS, resolve_header, "project_id", _pipeline_required, _row_problems, True)
"""Pipeline template v1 (:mod:`greenscreen.schema`)."""
