"""Read a pipeline into typed projects plus rejects; write the Excel input template.

:func:`read_pipeline` accepts CSV (UTF-8, UTF-8 with BOM, GBK/GB18030), Excel (xlsx, xlsm, xls,
xlsb, ods), Parquet, JSON / JSON lines, an in-memory polars or pandas DataFrame, or a list of
dicts. Every input row ends up either in ``projects`` or in ``rejects`` (row, project_id, field,
value, reason); fully blank rows are counted and reported. All checks are column expressions
over the whole table: there is no per-row Python loop.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from greenscreen.errors import GreenscreenError, PipelineError, did_you_mean
from greenscreen.schema import (
    FIELDS,
    VOCABULARIES,
    FieldSpec,
    HeaderMatch,
    _activity_lookup,
    _province_lookup,
    activity_ids,
    provinces,
    resolve_header,
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

_EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}
_PREFERRED_SHEETS = ("pipeline", "projects", "项目清单", "项目")
_MAX_VALUE_CHARS = 200  # reject rows quote at most this much of a bad cell

# Synonyms accepted for the two code columns analysts most often type by hand.
_COUNTRY_SYNONYMS = {"中国": "CN", "CHINA": "CN", "PRC": "CN", "CHN": "CN", "中华人民共和国": "CN"}
_CURRENCY_SYNONYMS = {"人民币": "CNY", "RMB": "CNY", "元": "CNY", "美元": "USD", "欧元": "EUR"}


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
        return self.projects.height

    @property
    def n_rejected(self) -> int:
        """Number of input rows rejected (a row with several problems counts once)."""
        return self.rejects["row"].n_unique() if self.rejects.height else 0

    def summary(self) -> str:
        text = (
            f"{self.n_input_rows} rows read from {self.source.name}: "
            f"{self.n_accepted} accepted, {self.n_rejected} rejected "
            f"({self.rejects.height} reject rows)"
        )
        if self.n_blank:
            text += f", {self.n_blank} blank rows ignored"
        return text


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
        (:func:`greenscreen.schema.polars_schema`), ``source_row`` and ``province_code``, then
        the unknown extra columns unchanged. ``rejects`` holds one row per problem found.
    """
    raw, info, first_row = _read_raw(source, sheet=sheet, encoding=encoding, separator=separator)
    n_input = raw.height
    raw, matches, extras = _map_columns(raw, info.name)
    raw, label_row = _drop_label_row(raw)
    first_row += int(label_row)
    n_input -= int(label_row)
    info = SourceInfo(
        name=info.name,
        format=info.format,
        sha256=info.sha256,
        encoding=info.encoding,
        sheet=info.sheet,
        columns=tuple(matches.values()),
        extra_columns=tuple(extras),
        label_row_skipped=label_row,
    )
    pipeline = _validate(raw, matches, extras, info, first_row, n_input)
    if strict and pipeline.rejects.height:
        raise PipelineError(
            f"{pipeline.summary()}; strict mode does not accept rejects", pipeline.rejects
        )
    return pipeline


# --------------------------------------------------------------------------------------------
# Raw readers: return the table as read (strings for text formats), its SourceInfo and the
# source row number of its first data row.
def _read_raw(
    source: Any, *, sheet: str | int | None, encoding: str | None, separator: str | None
) -> tuple[pl.DataFrame, SourceInfo, int]:
    if isinstance(source, pl.LazyFrame):
        source = source.collect()
    if isinstance(source, pl.DataFrame):
        return source, SourceInfo(name="<DataFrame>", format="dataframe"), 1
    if type(source).__module__.startswith("pandas"):
        return _from_pandas(source), SourceInfo(name="<pandas.DataFrame>", format="pandas"), 1
    if isinstance(source, Sequence) and not isinstance(source, str | bytes):
        return _from_records(source), SourceInfo(name="<records>", format="records"), 1
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
            frame, sheet_name = _read_excel(path, sheet)
            return frame, SourceInfo(path.name, suffix[1:], digest, sheet=sheet_name), 2
        if suffix == ".parquet":
            return pl.read_parquet(io.BytesIO(data)), SourceInfo(path.name, "parquet", digest), 1
        if suffix in {".jsonl", ".ndjson"}:
            text, enc = _decode(data, encoding, path.name)
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
            return _from_records(rows), SourceInfo(path.name, "ndjson", digest, enc), 1
        if suffix == ".json":
            text, enc = _decode(data, encoding, path.name)
            rows = json.loads(text)
            if isinstance(rows, dict):  # {"projects": [...]} or a single project
                rows = rows.get("projects", [rows])
            return _from_records(rows), SourceInfo(path.name, "json", digest, enc), 1
        if suffix in {".csv", ".txt", ".tsv", ""}:
            text, enc = _decode(data, encoding, path.name)
            # polars parses UTF-8 bytes natively; other encodings are re-encoded once
            utf8 = data if enc == "utf-8-sig" else text.encode("utf-8")
            header = text[: text.find("\n")] if "\n" in text else text
            sep = separator or ("\t" if suffix == ".tsv" else None)
            try:
                frame = _read_csv(utf8, header, sep)
            except pl.exceptions.PolarsError as exc:
                raise PipelineError(
                    f"cannot read {path.name} as csv: {_csv_problem(text, header, sep, exc)}"
                ) from exc
            return frame, SourceInfo(path.name, "csv", digest, enc), 2
    except GreenscreenError:
        raise
    except (pl.exceptions.PolarsError, json.JSONDecodeError, ValueError, OSError) as exc:
        raise PipelineError(f"cannot read {path.name} as {suffix[1:] or 'csv'}: {exc}") from exc
    raise PipelineError(
        f"unsupported pipeline file type '{suffix}' ({path.name}); use .csv, .xlsx, .xls, "
        ".ods, .parquet, .json or .jsonl"
    )


def _decode(data: bytes, encoding: str | None, name: str) -> tuple[str, str]:
    """Decode text strictly: the given encoding, else UTF-8 (BOM allowed), else GB18030.

    A strict fallback chain rather than a statistical detector: Chinese bank exports are
    UTF-8 or GBK, and guessing wrong would corrupt names silently.
    """
    for enc in [encoding] if encoding else ["utf-8-sig", "gb18030"]:
        try:
            return data.decode(enc), enc
        except (UnicodeDecodeError, LookupError) as exc:
            if encoding:
                raise PipelineError(f"cannot decode {name} as {encoding}: {exc}") from exc
    raise PipelineError(
        f"cannot decode {name}: it is neither UTF-8 nor GBK/GB18030; "
        "save it as UTF-8 CSV or pass encoding="
    )


def _separator(header: str, separator: str | None) -> str:
    if separator is None:
        try:
            separator = csv.Sniffer().sniff(header, delimiters=",;\t|").delimiter
        except csv.Error:
            separator = ","
    return separator


def _csv_problem(text: str, header: str, separator: str | None, exc: Exception) -> str:
    """Say which row of a CSV polars could not read: a stray separator, an unclosed quote."""
    sep = _separator(header, separator)
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
    separator = _separator(header, separator)
    return pl.read_csv(
        io.BytesIO(data),
        separator=separator,
        infer_schema=False,
        truncate_ragged_lines=False,
    )


_OLE2 = bytes.fromhex("D0CF11E0A1B11AE1")  # Compound File header: encrypted Office files, .xls


def _read_excel(path: Path, sheet: str | int | None) -> tuple[pl.DataFrame, str]:
    import fastexcel

    if path.suffix.lower() in {".xlsx", ".xlsm"}:
        with path.open("rb") as handle:
            if handle.read(8) == _OLE2:
                raise PipelineError(
                    f"{path.name} is not an xlsx workbook but an OLE2 container: a "
                    "password-protected (encrypted) workbook, or an old .xls renamed; remove the "
                    "password or save it as .xlsx"
                )
    try:
        names = fastexcel.read_excel(path).sheet_names
    except Exception as exc:  # fastexcel raises its own hierarchy for corrupt/encrypted files
        raise PipelineError(
            f"cannot open {path.name} as a workbook (corrupt or password-protected?): {exc}"
        ) from exc
    if sheet is None:
        lowered = {n.strip().lower(): n for n in names}
        chosen = next((lowered[p] for p in _PREFERRED_SHEETS if p in lowered), names[0])
    elif isinstance(sheet, int):
        if not 0 <= sheet < len(names):
            raise PipelineError(f"{path.name} has {len(names)} sheets; no sheet index {sheet}")
        chosen = names[sheet]
    elif sheet in names:
        chosen = sheet
    else:
        raise PipelineError(
            f"{path.name} has no sheet '{sheet}' (sheets: {', '.join(names)})"
            + did_you_mean(sheet, names)
        )
    try:
        frame = pl.read_excel(path, sheet_name=chosen, infer_schema_length=0)
    except Exception as exc:
        if "no rows" in str(exc).lower() or "empty" in str(exc).lower():
            raise PipelineError(f"sheet '{chosen}' of {path.name} is empty") from exc
        raise PipelineError(f"cannot read sheet '{chosen}' of {path.name}: {exc}") from exc
    return frame, chosen


def _from_records(rows: Any) -> pl.DataFrame:
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        raise PipelineError("a JSON pipeline must be a list of objects, one per project")
    # Values go in as text so one bad value cannot break type inference for the whole column;
    # the same parsers as for CSV then type them.
    texts = [{str(k): None if v is None else str(v) for k, v in row.items()} for row in rows]
    columns = list(dict.fromkeys(k for row in texts for k in row))
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
    raw: pl.DataFrame, name: str
) -> tuple[pl.DataFrame, dict[str, HeaderMatch], list[str]]:
    """Resolve headers to template fields; keep the rest as extra columns."""
    matches: dict[str, HeaderMatch] = {}
    extras: list[str] = []
    for column in raw.columns:
        if _is_placeholder_header(column):
            if raw[column].null_count() == raw.height:
                raw = raw.drop(column)  # an empty, unnamed spreadsheet column carries nothing
                continue
        match = resolve_header(column) or _duplicate_of(column, raw.columns)
        if match is None:
            extras.append(column)
        elif match.field in matches:
            raise PipelineError(
                f"{name}: columns '{matches[match.field].header}' and '{column}' both map to "
                f"field {match.field}; keep one of them"
            )
        else:
            matches[match.field] = match
    if "project_id" not in matches:
        raise PipelineError(
            f"{name}: no project_id column (项目编号). Columns found: "
            f"{', '.join(raw.columns[:20])}" + did_you_mean("project_id", raw.columns)
        )
    if not {"activity", "description", "industry_code"} & set(matches):
        raise PipelineError(
            f"{name}: needs an activity (活动类型), a description (项目描述) or an "
            "industry_code (国民经济行业代码) column; "
            f"columns found: {', '.join(raw.columns[:20])}"
        )
    # Columns greenscreen derives itself (e.g. from a results file read back) are kept under
    # an input_ prefix and recomputed.
    renamed = {c: f"input_{c}" for c in extras if c in _DERIVED}
    raw = raw.rename(renamed)
    extras = [renamed.get(c, c) for c in extras]
    return raw, matches, extras


_DERIVED = {"source_row", "province_code"}
# a repeated header, as renamed by the readers: polars "name_duplicated_0", fastexcel "name_1"
_REPEATED = re.compile(r"^(?P<base>.+?)_(?:duplicated_)?\d+$")


def _duplicate_of(column: str, columns: list[str]) -> HeaderMatch | None:
    """The field of a repeated header (a second ``project_id`` column): two columns for one
    field is an error, not an extra column silently ignored."""
    found = _REPEATED.match(column)
    if found is None or found["base"] not in columns:
        return None
    match = resolve_header(found["base"])
    return None if match is None else replace(match, header=column)


def _is_placeholder_header(column: str) -> bool:
    return column.strip() == "" or column.startswith(("__UNNAMED__", "_duplicated_"))


def _drop_label_row(raw: pl.DataFrame) -> tuple[pl.DataFrame, bool]:
    """Drop a second header row of labels (the template's Chinese row), if present.

    It is a label row when every non-empty cell of the first row is a label of its own
    column's field (``装机容量(MW)`` under ``capacity_mw``) and there are at least two.
    """
    if raw.height == 0:
        return raw, False
    first = raw.row(0, named=True)
    hits = 0
    for column, value in first.items():
        if value is None or str(value).strip() == "":
            continue
        try:
            here, there = resolve_header(column), resolve_header(str(value))
        except PipelineError:
            return raw, False
        if here is None or there is None or here.field != there.field:
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


def _validate(
    raw: pl.DataFrame,
    matches: dict[str, HeaderMatch],
    extras: list[str],
    info: SourceInfo,
    first_row: int,
    n_input: int,
) -> Pipeline:
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
    n_blank = frame.select(blank.sum()).item()
    frame = frame.filter(~blank).with_columns(pl.col(_t("project_id")).alias("_pid"))

    specs = {name: FIELDS[name] for name in matches}
    stages = (
        lambda name, spec: _clean(name, spec, dtypes[name]),
        lambda name, spec: _convert(name, spec, matches[name], raw_of[name], dtypes[name]),
        lambda name, spec: _error(name, spec),
    )
    for stage in stages:
        exprs = [e for name, spec in specs.items() if (e := stage(name, spec)) is not None]
        if exprs:
            frame = frame.with_columns(exprs)
    frame = frame.with_columns(_typed(name, spec, name in matches) for name, spec in FIELDS.items())
    frame = frame.with_columns(_province_code()).with_columns(
        pl.when(pl.col("province_code").is_not_null())
        .then(pl.col("province_code").replace_strict(_province_names(), default=None))
        .otherwise(pl.col("province"))
        .alias("province")
    )

    problems = [_problems(frame, specs[name], matches[name]) for name in matches]
    problems.append(_province_problems(frame, matches))
    problems.append(_row_problems(frame, matches))
    rejects = (
        pl.concat(problems, how="vertical")
        .sort("row", "field", maintain_order=True)
        .unique(subset=["row", "field", "code"], maintain_order=True)
    )
    projects = frame.select(
        *FIELDS, pl.col("_row").alias("source_row"), "province_code", *extras
    ).join(
        rejects.select(pl.col("row").alias("source_row")),
        on="source_row",
        how="anti",
        maintain_order="left",
    )
    notes = tuple(
        f"column '{m.header}' read as {m.field} (× {m.scale:g} from {m.unit})"
        for m in matches.values()
        if m.scale != 1.0
    )
    return Pipeline(projects, rejects, info, n_input, n_blank, notes)


def _as_text(expr: pl.Expr) -> pl.Expr:
    """Any column as stripped text, empty strings as null."""
    text = expr.cast(pl.String).str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text)


_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_GROUPED = r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$"  # 1,234,567.8 (never 1,5: that is not a grouping)
_MULTIPLIERS = {"万": 1e4, "亿": 1e8}
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y%m%d")
_EXCEL_EPOCH = pl.date(1899, 12, 30)


def _clean(name: str, spec: FieldSpec, dtype: pl.DataType) -> pl.Expr | None:
    """Stage 1: normalise the text of number and date cells."""
    text = pl.col(_t(name))
    if spec.kind in ("float", "int") and not dtype.is_numeric():
        squeezed = text.str.replace_all(r"[\s\u00a0]", "")
        ungrouped = squeezed.str.replace_all(",", "")
        return (
            pl.when(squeezed.str.contains(_GROUPED))
            .then(ungrouped)
            .otherwise(squeezed)
            .alias(_c(name))
        )
    if spec.kind == "date" and not dtype.is_temporal():
        return text.str.replace(r"[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$", "").alias(_c(name))
    return None


def _convert(
    name: str, spec: FieldSpec, match: HeaderMatch, raw: str, dtype: pl.DataType
) -> pl.Expr | None:
    """Stage 2: parse to the field's type; null where the cell cannot be parsed."""
    text = pl.col(_t(name))
    value: pl.Expr
    if spec.kind in ("float", "int"):
        if dtype.is_numeric():
            value = pl.col(raw).cast(pl.Float64)
        else:
            value = _parse_number(pl.col(_c(name)), allow_percent=spec.unit == "fraction")
        value = value * match.scale
    elif spec.kind == "date":
        if dtype == pl.Date:
            value = pl.col(raw)
        elif isinstance(dtype, pl.Datetime):
            value = pl.col(raw).dt.date()
        else:
            value = _parse_date(pl.col(_c(name)))
    elif name == "activity":
        value = _label_expr(text).replace_strict(_activity_lookup(), default=None)
    elif name in VOCABULARIES:
        value = _label_expr(text).replace_strict(
            VOCABULARIES[name], default=None, return_dtype=pl.String
        )
    elif spec.kind == "code" and name != "project_id":
        value = text.str.to_uppercase().str.replace_all(r"\s+", "")
        if name == "country":
            value = value.replace(_COUNTRY_SYNONYMS)
        elif name == "currency":
            value = value.replace(_CURRENCY_SYNONYMS)
    else:
        return None
    return value.alias(_n(name))


def _parse_number(text: pl.Expr, allow_percent: bool) -> pl.Expr:
    """Cleaned text to Float64: plain, ``万``/``亿`` suffixed, ``%`` (rates only)."""
    scale = pl.lit(1.0)
    core = text
    for suffix, factor in _MULTIPLIERS.items():
        scale = pl.when(text.str.ends_with(suffix)).then(pl.lit(factor)).otherwise(scale)
        core = core.str.strip_suffix(suffix)
    if allow_percent:
        scale = pl.when(text.str.ends_with("%")).then(pl.lit(0.01)).otherwise(scale)
        core = core.str.strip_suffix("%")
    return pl.when(core.str.contains(_NUMBER)).then(core.cast(pl.Float64, strict=False)) * scale


def _parse_date(text: pl.Expr) -> pl.Expr:
    """Cleaned text to Date: ISO and common Chinese formats, or an Excel date serial."""
    parsed = [text.str.to_date(fmt, strict=False) for fmt in _DATE_FORMATS]
    # An Excel date serial (a date cell read without its format): 5 digits, 1927..2173.
    serial = pl.when(text.str.contains(r"^\d{5}(\.0+)?$")).then(
        _EXCEL_EPOCH + pl.duration(days=text.cast(pl.Float64, strict=False).cast(pl.Int64))
    )
    return pl.coalesce(*parsed, serial)


def _error(name: str, spec: FieldSpec) -> pl.Expr | None:
    """Stage 3: the reject code of each cell, null when the cell is fine."""
    present = pl.col(_t(name)).is_not_null()
    value = pl.col(_n(name))
    code: pl.Expr
    if spec.kind in ("float", "int"):
        not_whole = (value != value.round(0)) if spec.kind == "int" else pl.lit(False)
        code = (
            pl.when(present & (value.is_null() | value.is_nan()))
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
    if spec.kind in ("float", "int", "date"):
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


def _label_expr(text: pl.Expr) -> pl.Expr:
    """Vectorised :func:`greenscreen.schema._label_key`."""
    return (
        text.str.normalize("NFKC").str.replace_all(r"\s+", " ").str.strip_chars().str.to_lowercase()
    )


def _reason(spec: FieldSpec, code: str, header: str) -> str:
    unit = f" {spec.unit}" if spec.unit and spec.unit not in {"fraction", "currency"} else ""
    what = f"{spec.name}" + (f" (column '{header}')" if header != spec.name else "")
    return {
        "invalid_number": f"{what} must be a number{unit and f' in{unit}'}",
        "not_finite": f"{what} must be a finite number",
        "not_whole_number": f"{what} must be a whole number",
        "out_of_range": f"{what} must be {_range_text(spec)}{unit}",
        "invalid_date": f"{what} is not a valid calendar date (expected YYYY-MM-DD)",
        "date_range": f"{what} must be between 1900 and 2100",
        "bad_code": f"{what} is not valid: {spec.description}",
        "unknown_activity": "unknown activity",
        "unknown_value": f"{what} must be one of: "
        + ", ".join(dict.fromkeys(VOCABULARIES.get(spec.name, {}).values())),
    }[code]


def _range_text(spec: FieldSpec) -> str:
    text = spec.range_text()
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
        reasons = {code: _reason(spec, code, match.header) for code in failed["code"].unique()}
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


def _province_code() -> pl.Expr:
    lookup = _province_lookup()
    return (
        pl.when(pl.col("country") == "CN")
        .then(
            _label_expr(pl.col("province")).replace_strict(
                {k: v[1] for k, v in lookup.items()}, default=None, return_dtype=pl.String
            )
        )
        .alias("province_code")
    )


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
    names = provinces()["name_en"].to_list()
    reasons = {
        v: f"unknown Chinese province '{v}'{did_you_mean(v, names)}"
        for v in failed["value"].unique()
    }
    return failed.select(
        "row",
        "project_id",
        pl.lit("province").alias("field"),
        pl.lit(header).alias("column"),
        _clip(pl.col("value")).alias("value"),
        pl.col("value").replace_strict(reasons, return_dtype=pl.String).alias("reason"),
        pl.lit("unknown_province").alias("code"),
    )


def duplicate_id_rejects(rows: pl.DataFrame, column: str) -> pl.DataFrame:
    """Reject rows for every copy of a project_id that appears more than once.

    ``rows``: (row, project_id) of every row with an id; ``column``: the id's input header.
    Shared with batch mode, which collects the ids of the whole file batch by batch.
    """
    repeated = (
        rows.group_by("project_id")
        .agg(pl.col("row").sort().alias("_rows"))
        .filter(pl.col("_rows").list.len() > 1)
    )
    return rows.join(repeated, on="project_id", how="inner", maintain_order="left").select(
        "row",
        "project_id",
        pl.lit("project_id").alias("field"),
        pl.lit(column).alias("column"),
        pl.col("project_id").alias("value"),
        pl.format(
            "duplicate project_id: appears in rows {}; all copies are rejected",
            pl.col("_rows").cast(pl.List(pl.String)).list.join(", "),
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
