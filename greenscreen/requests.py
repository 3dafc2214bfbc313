"""The evidence request an analyst sends to the borrower, and its answers merged back.

Every rulebook decision that could not be made names the fields it lacks (``R__missing``), and
so does every undecided subsidy award. :func:`evidence_requests` turns them into one row per
project × field — each field asked once however many rulebooks need it — with a question in
Chinese and English, the unit, and the rulebook items and clauses that need it.
:func:`write_requests` writes it as ``requests.xlsx`` with an answer column to fill in;
:func:`merge_answers` puts the answers of a filled-in ``requests.xlsx`` into the pipeline, so
the projects can be screened again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import xlsxwriter
from xlsxwriter.utility import xl_range

from greenscreen.errors import PipelineError
from greenscreen.schema import FIELDS

if TYPE_CHECKING:
    from greenscreen.run import ScreenResult

#: columns of the requests table (and of the ``requests`` sheet, in this order)
REQUEST_COLUMNS = (
    "project_id",
    "project_name",
    "borrower",
    "field",
    "question_zh",
    "question_en",
    "unit",
    "type",
    "needed_by",
    "answer",
)
SHEET = "requests"
_YES, _NO = "是 yes", "否 no"
#: cell ranges one drop-down validation covers (its ``sqref``; kept moderate, as spreadsheet
#: apps read the whole list for every validation)
_RUNS_PER_VALIDATION = 1_000


@dataclass(frozen=True)
class FieldText:
    """What a field means, as a question: labels in both languages, unit and type."""

    zh: str
    en: str
    unit: str
    type: str  # boolean | number | text | date


def field_texts(
    rulebooks: Sequence[Any],
    programmes: Sequence[Any] = (),
    names: set[str] | None = None,
) -> dict[str, FieldText]:
    """Labels of the fields a decision can ask for.

    Parameters
    ----------
    rulebooks : sequence of Rulebook
        Their declared evidence fields are added after the template's.
    programmes : sequence of Programme
        Likewise.
    names : set of str, optional
        Only these fields; default every one.

    Returns
    -------
    dict of str to FieldText
        Field name → its Chinese and English label, unit and type.
    """
    out: dict[str, FieldText] = {}
    kinds = {"float": "number", "int": "number", "bool": "boolean", "date": "date"}
    for spec in FIELDS.values():
        if names is None or spec.name in names:
            out[spec.name] = FieldText(
                spec.zh, spec.description, spec.unit or "", kinds.get(spec.kind, "text")
            )
    for source in (*rulebooks, *programmes):
        for field in source.fields:
            if (names is not None and field.name not in names) or field.name in out:
                continue
            out.setdefault(
                field.name,
                FieldText(
                    field.description.zh or field.description.en or field.name,
                    field.description.en or field.description.zh or field.name,
                    field.unit or "",
                    field.type,
                ),
            )
    return out


# units as a borrower reads them (the template's "currency" is the project's, CNY by default)
_UNIT_TEXT = {
    "zh": {"currency": "元", "currency/MWh": "元/MWh", "years": "年", "m2": "平方米"},
    "en": {"currency": "CNY", "currency/MWh": "CNY/MWh"},
}


def question(text: FieldText, lang: str) -> str:
    """A field as a question to the borrower, with its unit.

    Parameters
    ----------
    text : FieldText
    lang : {"en", "zh"}

    Returns
    -------
    str
        ``请确认：…（是/否）`` / ``Please confirm (yes/no): …`` for a yes/no field, else a
        request for the value with its unit in brackets (``请提供：装机容量 [MW]``).
    """
    shown = _UNIT_TEXT["zh" if lang == "zh" else "en"].get(text.unit, text.unit)
    unit = f" [{shown}]" if shown and text.unit not in ("fraction", "grade") else ""
    if lang == "zh":
        if text.type == "boolean":
            return f"请确认：{text.zh}（是/否）"
        hint = "（小数，0.72 即 72%）" if text.unit == "fraction" else unit
        return f"请提供：{text.zh}{hint}"
    if text.type == "boolean":
        return f"Please confirm (yes/no): {text.en}"
    hint = " (a fraction: 0.72 = 72 %)" if text.unit == "fraction" else unit
    return f"Please provide: {text.en}{hint}"


def evidence_requests(
    result: ScreenResult, project_ids: Sequence[str] | None = None
) -> pl.DataFrame:
    """What the screening needs from the borrower: one row per project × field.

    A field is asked once per project across rulebooks and programmes.

    Parameters
    ----------
    result : ScreenResult
    project_ids : sequence of str, optional
        Only these projects (a pack's); default all.

    Returns
    -------
    polars.DataFrame
        :data:`REQUEST_COLUMNS`, sorted by project and first asking rulebook; ``answer`` is
        empty; ``needed_by`` lists the rulebooks and programmes (and clauses) asking.
    """
    results = result.results
    decisions = result.decisions
    awards = result.subsidies.awards if result.subsidies is not None else None
    if project_ids is not None:
        ids = pl.Series(list(project_ids), dtype=pl.String).implode()
        results = results.filter(pl.col("project_id").is_in(ids))
        decisions = decisions.filter(pl.col("project_id").is_in(ids))
        if awards is not None:
            awards = awards.filter(pl.col("project_id").is_in(ids))
    frames = []
    for book in result.rulebooks:
        missing = f"{book.id}__missing"
        if missing not in results.columns:
            continue
        frames.append(
            results.select(
                "project_id",
                pl.lit(book.id).alias("source"),
                pl.col(f"{book.id}__item").cast(pl.String).alias("item"),
                pl.col(missing).alias("field"),
            )
        )
    if awards is not None:
        frames.append(
            awards.filter(pl.col("status") == "insufficient_data").select(
                "project_id",
                pl.col("programme").alias("source"),
                pl.col("award").alias("item"),
                pl.col("missing").alias("field"),
            )
        )
    empty = pl.DataFrame(
        schema=dict.fromkeys(REQUEST_COLUMNS, pl.String) | {"sources": pl.List(pl.String)}
    )
    if not frames:
        return empty
    asks = (
        pl.concat(frames, how="vertical_relaxed")
        .explode("field")
        .drop_nulls("field")
        # a rulebook status read by another rulebook (cgt_2022 reads eu_taxonomy__status) is
        # asked through that rulebook's own fields, not as such
        .filter(~pl.col("field").str.ends_with("__status"))
        .with_columns(
            pl.format("{} {}", "source", pl.col("item").fill_null(""))
            .str.strip_chars()
            .alias("where")
        )
    )
    if asks.height == 0:
        return empty
    clauses = _clauses(decisions)
    if clauses is not None:
        asks = asks.join(clauses, on=["project_id", "source", "field"], how="left")
    else:
        asks = asks.with_columns(pl.lit(None, pl.String).alias("clause"))
    needed = asks.with_columns(
        pl.when(pl.col("clause").is_not_null())
        .then(pl.format("{}: {}", "where", "clause"))
        .otherwise(pl.col("where"))
        .alias("need")
    )
    texts = field_texts(
        result.rulebooks, getattr(result, "programmes", ()), set(needed["field"].unique())
    )
    labels = pl.DataFrame(
        {
            "field": list(texts),
            "question_zh": [question(v, "zh") for v in texts.values()],
            "question_en": [question(v, "en") for v in texts.values()],
            "unit": [v.unit for v in texts.values()],
            "type": [v.type for v in texts.values()],
        }
    )
    names = [c for c in ("project_name", "borrower") if c in results.columns]
    grouped = (
        needed.with_row_index("order")
        .group_by("project_id", "field", maintain_order=True)
        .agg(
            pl.col("order").min(),
            pl.col("need").unique(maintain_order=True).str.join("; "),
            pl.col("source").unique(maintain_order=True).alias("sources"),
        )
        .rename({"need": "needed_by"})
    )
    table = (
        grouped.join(labels, on="field", how="left")
        .join(results.select("project_id", *names), on="project_id", how="left")
        .with_columns(
            pl.coalesce("question_zh", pl.format("请提供：{}", "field")),
            pl.coalesce("question_en", pl.format("Please provide: {}", "field")),
            pl.col("unit").fill_null(""),
            pl.col("type").fill_null("text"),
            pl.lit(None, pl.String).alias("answer"),
            *(
                pl.lit(None, pl.String).alias(c)
                for c in ("project_name", "borrower")
                if c not in names
            ),
        )
    )
    order = results.select("project_id").with_row_index("project_order")
    return (
        table.join(order, on="project_id", how="left")
        .sort("project_order", "order")
        .select(*REQUEST_COLUMNS, "sources")
    )


def _clauses(decisions: pl.DataFrame | None) -> pl.DataFrame | None:
    """The clause of each undecided criterion of a selected item, per project and field."""
    if decisions is None or decisions.height == 0 or "fields" not in decisions.columns:
        return None
    return (
        decisions.lazy()
        .filter(pl.col("selected") & (pl.col("result") == "unknown"))
        .select("project_id", pl.col("rulebook").alias("source"), "fields", "clause")
        .explode("fields")
        .rename({"fields": "field"})
        .group_by("project_id", "source", "field", maintain_order=True)
        .agg(pl.col("clause").unique(maintain_order=True).str.join("; "))
        .collect()
    )


def write_requests(requests: pl.DataFrame, path: str | Path) -> Path:
    """Write ``requests.xlsx`` for a borrower.

    An instructions sheet and the ``requests`` sheet: one row per project × field, questions
    in both languages, the clause that needs each answer, and the answer column to fill in
    (a 是/否 drop-down for confirmations).

    Parameters
    ----------
    requests : polars.DataFrame
        :func:`evidence_requests`.
    path : str or pathlib.Path

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    book = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False})
    book.set_properties(
        {"title": "greenscreen evidence request", "created": dt.datetime(2025, 1, 1)}
    )
    wrap = book.add_format({"text_wrap": True, "valign": "top"})
    head = book.add_format(
        {"bold": True, "bg_color": "#1F4E79", "font_color": "#FFFFFF", "text_wrap": True}
    )
    answer = book.add_format({"bg_color": "#FFF2CC", "border": 1, "valign": "top"})
    about = book.add_worksheet("说明 instructions")
    lines = [
        "请在 requests 工作表的 answer 列填写答复（是/否、数值或文字），不要修改其他列。",
        "Fill in the answer column of the requests sheet (yes/no, a number or text); leave the "
        "other columns as they are.",
        "数值按 unit 列的单位填写；小数（fraction）如 0.72 表示 72%。",
        "Numbers are in the unit of the unit column; a fraction 0.72 means 72 %.",
        "填好后交回银行：greenscreen merge PIPELINE requests.xlsx --out NEW 合并后重新筛查。",
        "Return it to the bank: greenscreen merge PIPELINE requests.xlsx --out NEW merges the "
        "answers into the pipeline for a new screening.",
    ]
    about.set_column(0, 0, 120)
    for i, line in enumerate(lines):
        about.write_string(i, 0, line, wrap)
    sheet = book.add_worksheet(SHEET)
    sheet.write_row(0, 0, REQUEST_COLUMNS, head)
    widths = (14, 24, 20, 28, 48, 48, 10, 9, 48, 18)
    for col, width in enumerate(widths):
        sheet.set_column(col, col, width, answer if REQUEST_COLUMNS[col] == "answer" else wrap)
    # xlsxwriter writes cell by cell (~15 µs each): columns as lists, not a dict per row
    at = REQUEST_COLUMNS.index("answer")
    shown = [(col, name) for col, name in enumerate(REQUEST_COLUMNS) if col != at]
    texts = [requests.get_column(name).cast(pl.String).to_list() for _, name in shown]
    for row, record in enumerate(zip(*texts, strict=True), start=1):
        for (col, _), value in zip(shown, record, strict=True):
            if value is not None:
                sheet.write_string(row, col, value, wrap)
        sheet.write_blank(row, at, None, answer)
    # one validation per many runs of yes/no rows, not one per cell (150,000 at 20,000
    # projects: a third of the writing time, and as many <dataValidation> elements for a
    # spreadsheet app to load)
    runs = _yes_no_runs(requests)
    for start in range(0, len(runs), _RUNS_PER_VALIDATION):
        chunk = runs[start : start + _RUNS_PER_VALIDATION]
        cells = " ".join(xl_range(first, at, last, at) for first, last in chunk)
        sheet.data_validation(
            chunk[0][0],
            at,
            chunk[0][1],
            at,
            {"validate": "list", "source": [_YES, _NO], "multi_range": cells},
        )
    sheet.freeze_panes(1, 4)
    if requests.height:
        sheet.autofilter(0, 0, requests.height, len(REQUEST_COLUMNS) - 1)
    book.close()
    return path


def _yes_no_runs(requests: pl.DataFrame) -> list[tuple[int, int]]:
    """First and last sheet row (0-based, below the header) of each run of consecutive
    yes/no questions."""
    rows = (
        requests.select(pl.int_range(1, pl.len() + 1).alias("row"), "type")
        .filter(pl.col("type") == "boolean")
        .group_by((pl.col("row") - pl.int_range(pl.len())).alias("run"), maintain_order=True)
        .agg(pl.col("row").min().alias("first"), pl.col("row").max().alias("last"))
    )
    return list(zip(rows["first"].to_list(), rows["last"].to_list(), strict=True))


def read_answers(path: str | Path) -> pl.DataFrame:
    """The answered rows of a filled-in ``requests.xlsx``.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    polars.DataFrame
        ``project_id``, ``field``, ``answer``: text as typed (the drop-down's ``是 yes`` /
        ``否 no`` as ``yes`` / ``no``); the pipeline reader types and checks it like any cell.

    Raises
    ------
    PipelineError
        Not a requests workbook (no ``requests`` sheet, or its columns are missing), or one
        question answered twice.
    """
    path = Path(path)
    try:
        frame = pl.read_excel(path, sheet_name=SHEET, infer_schema_length=0)
    except Exception as exc:  # fastexcel raises its own types for every broken file
        raise PipelineError(
            f"{path.name}: not a requests.xlsx with a '{SHEET}' sheet ({exc})"
        ) from exc
    absent = {"project_id", "field", "answer"} - set(frame.columns)
    if absent:
        raise PipelineError(f"{path.name}: the '{SHEET}' sheet lacks {sorted(absent)}")
    answered = frame.select(
        pl.col("project_id").cast(pl.String),
        pl.col("field").cast(pl.String),
        pl.col("answer").cast(pl.String).str.strip_chars(),
    ).filter(pl.col("answer").is_not_null() & (pl.col("answer") != ""))
    # the drop-down shows both languages; the reader takes either word
    answered = answered.with_columns(pl.col("answer").replace({_YES: "yes", _NO: "no"}))
    twice = answered.filter(pl.struct("project_id", "field").is_duplicated())
    if twice.height:
        first = twice.row(0, named=True)
        raise PipelineError(
            f"{path.name}: {first['field']} of project {first['project_id']} is answered twice"
        )
    return answered


def merge_file(
    pipeline: str | Path,
    answers: str | Path,
    out: str | Path,
    *,
    sheet: str | None = None,
    encoding: str | None = None,
    force: bool = False,
) -> tuple[int, int]:
    """``greenscreen merge``: a pipeline file with the answers of a filled-in ``requests.xlsx``.

    The pipeline's own headers (Chinese, aliases) are kept and filled, for a new screening.

    Parameters
    ----------
    pipeline : str or pathlib.Path
        The pipeline file the requests were made from.
    answers : str or pathlib.Path
        The filled-in ``requests.xlsx``.
    out : str or pathlib.Path
        The merged pipeline: ``.csv`` (UTF-8 with BOM) or ``.xlsx``.
    sheet, encoding
        As :func:`greenscreen.read_pipeline`, for ``pipeline``.
    force : bool
        Overwrite ``out`` when it exists (never the pipeline itself).

    Returns
    -------
    answers_used : int
    projects : int
        Rows of the merged pipeline.
    """
    from greenscreen.io import read_table, resolve_header

    pipeline, out = Path(pipeline), Path(out)
    if out.suffix.lower() not in (".csv", ".xlsx"):
        raise PipelineError(f"{out.name}: the merged pipeline is written as .csv or .xlsx")
    if out.exists() and (not force or out.resolve() == pipeline.resolve()):
        raise PipelineError(
            f"{out} exists; choose another --out"
            + (
                " (the pipeline itself is never overwritten)"
                if out.resolve() == pipeline.resolve()
                else " or pass --force"
            )
        )
    table = read_table(pipeline, sheet=sheet, encoding=encoding)
    header_of = {
        match.field: column for column in table.columns if (match := resolve_header(column))
    }
    if "project_id" in header_of:
        table = table.rename({header_of["project_id"]: "project_id"})
    merged, used = merge_answers(table, read_answers(answers), header_of)
    if "project_id" in header_of:
        merged = merged.rename({"project_id": header_of["project_id"]})
    projects = merged.height
    if out.suffix.lower() == ".xlsx":
        merged.write_excel(out, worksheet="pipeline", autofit=True)
    else:
        merged.write_csv(out, include_bom=True)
    return used, projects


def merge_answers(
    pipeline: pl.DataFrame, answers: pl.DataFrame, header_of: dict[str, str] | None = None
) -> tuple[pl.DataFrame, int]:
    """A pipeline table with answers written into it.

    An answer fills its field's column — the pipeline's own header for it, else one added
    under the field's name — replacing what was there. An answer for a project that is not
    in the pipeline is an error: nothing is dropped silently.

    Parameters
    ----------
    pipeline : polars.DataFrame
        Raw text columns, as read (:func:`greenscreen.io.read_table`).
    answers : polars.DataFrame
        :func:`read_answers`.
    header_of : dict of str to str, optional
        Field → the pipeline's header for it (``capacity_mw`` → ``装机容量(MW)``).

    Returns
    -------
    merged : polars.DataFrame
    used : int
        The number of answers written.

    Raises
    ------
    PipelineError
        The pipeline has no ``project_id`` column, or an answer names a project not in it.
    """
    header_of = header_of or {}
    if "project_id" not in pipeline.columns:
        raise PipelineError("the pipeline has no project_id column to merge answers on")
    ids = set(pipeline.get_column("project_id").cast(pl.String).to_list())
    unknown = answers.filter(~pl.col("project_id").is_in(list(ids)))
    if unknown.height:
        shown = unknown["project_id"].unique(maintain_order=True).to_list()
        raise PipelineError(f"answers for projects not in the pipeline: {shown[:5]}")
    if answers.height == 0:
        return pipeline, 0
    wide = answers.with_columns(pl.col("field").replace(header_of)).pivot(
        on="field", index="project_id", values="answer"
    )
    merged = pipeline.with_columns(pl.col("project_id").cast(pl.String)).join(
        wide.rename({c: f"__answer__{c}" for c in wide.columns if c != "project_id"}),
        on="project_id",
        how="left",
        maintain_order="left",
    )
    updates = []
    for field in (c for c in wide.columns if c != "project_id"):
        new = pl.col(f"__answer__{field}")
        old = (
            pl.col(field).cast(pl.String) if field in pipeline.columns else pl.lit(None, pl.String)
        )
        updates.append(pl.coalesce(new, old).alias(field))
    merged = merged.with_columns(updates).drop(
        [c for c in merged.columns if c.startswith("__answer__")]
    )
    return merged, answers.height
