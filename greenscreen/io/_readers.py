"""Stage 1, read: a source (file path, polars/pandas DataFrame, list of dicts) → the raw table.

Takes what :func:`greenscreen.io.read_pipeline` accepts: CSV (UTF-8, UTF-8 with BOM,
UTF-16/32 with a BOM, GBK/GB18030, with notes when GB18030 was used; separator sniffed),
Excel (xlsx, xlsm, xls, xlsb, ods; an .xlsx/.xlsm is first scanned as streamed XML for its used
range, uncalculated formulas and numbers the reader would round), Parquet, JSON / JSON lines,
a polars or pandas DataFrame, or a list of dicts.

Gives a :class:`_Raw`: the table with its own headers (text cells for text formats, typed
columns for Parquet and DataFrames), the :class:`SourceInfo` so far (name, format, sha256,
encoding, sheet), the source row number of its first data row, the repeated headers as the
reader renamed them, the spreadsheet cells without a usable value (Excel errors, formulas
without a value) and notes. Nothing is mapped or validated here; a file that cannot be read
safely (too large, too wide, not decodable, corrupt) raises a one-line
:class:`~greenscreen.errors.PipelineError`. :func:`read_table` gives the raw table alone.
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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import polars as pl

from greenscreen.errors import GreenscreenError, PipelineError, did_you_mean
from greenscreen.io._headers import (
    MAX_COLUMNS,
    MAX_HEADER_CHARS,
    HeaderMatch,
    _check_columns,
    _renamed,
    resolve_header,
)
from greenscreen.schema import FIELDS

# Limits on what a workbook may hold (README, "Data safety"; the limits on columns and header
# length are in the header stage). Past one, the read stops with a one-line PipelineError
# naming the file, before the reader allocates for it.
MAX_SHEET_ROWS = 1_048_576  # Excel's own limit
MAX_SHEET_CELLS = 50_000_000  # rows × columns of a sheet's used range: ~2 GB once read
MAX_WORKBOOK_BYTES = 2 << 30  # a workbook's parts, decompressed
MAX_WORKBOOK_PART_BYTES = 256 << 20  # a part the reader loads whole (shared strings, styles)

_EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}
_PREFERRED_SHEETS = ("pipeline", "projects", "项目清单", "项目")


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
    if not data[:4096].strip() and not data.strip():  # the whole file copied only if need be
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
