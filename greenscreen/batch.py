"""Screening files larger than memory: the pipeline is read and screened in batches of rows,
each batch's outputs go to part files, and the parts are streamed into the usual outputs.

Memory is bounded by the batch size, not by the file. The outputs are the same files as
:meth:`ScreenResult.write <greenscreen.run.ScreenResult.write>` writes (without the portfolio
workbook, which Excel could not hold); row numbers in rejects are those of the whole file, and
a project_id repeated anywhere in the file rejects every copy, as in a single read.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from greenscreen._outputs import (
    CSV_MAX_ROWS,
    DATA_FILES,
    OUTPUT_FILES,
    ZSTD_LEVEL,
    atomic_write,
    csv_compatible,
    output_set,
    sink_parquet,
    write_parquet,
    writes_csv,
)
from greenscreen.engine import decision_file_schema, decisions_file
from greenscreen.errors import GreenscreenError, PipelineError
from greenscreen.io import Pipeline, SourceInfo, duplicate_id_rejects, read_pipeline
from greenscreen.report import write_run_reports
from greenscreen.report.html import write_portfolio_html
from greenscreen.report.labels import Lang
from greenscreen.run import ScreenResult, screen

if TYPE_CHECKING:
    import pyarrow as pa

    from greenscreen.rulebook import Rulebook

#: outputs assembled from per-batch parts (key → file name): the Parquet data files
_PARTS = {k: OUTPUT_FILES[k].name for k in DATA_FILES if OUTPUT_FILES[k].format == "parquet"}


@dataclass(frozen=True)
class BatchRun:
    """What a batched run wrote, and its counts (input = accepted + rejected + blank)."""

    paths: dict[str, Path]
    n_input_rows: int
    n_accepted: int
    n_rejected: int
    n_blank: int
    batches: int
    #: the last batch's result: the run's rulebooks, programmes and configuration (what the run
    #: register records besides the output files)
    result: ScreenResult | None = field(default=None, repr=False, compare=False)

    def summary(self) -> str:
        """One line for a person: rows read, batches, accepted, rejected, blank.

        Returns
        -------
        str
        """
        text = (
            f"{self.n_input_rows:,} rows read in {self.batches} batches: {self.n_accepted:,} "
            f"accepted, {self.n_rejected:,} rejected"
        )
        return text + (f", {self.n_blank:,} blank rows ignored" if self.n_blank else "")


def screen_batched(
    path: str | Path,
    out_dir: str | Path,
    *,
    batch_rows: int = 250_000,
    lang: Lang = "en",
    on_batch: Callable[[int, int], object] | None = None,
    csv_max_rows: int = CSV_MAX_ROWS,
    **options: Any,
) -> BatchRun:
    """Screen a UTF-8 CSV or Parquet pipeline of any size in batches and write the outputs.

    Memory is bounded by the batch size, not by the file; the outputs are those of
    :meth:`ScreenResult.write <greenscreen.run.ScreenResult.write>` without the portfolio
    workbook, written as one output set.

    Parameters
    ----------
    path : str or pathlib.Path
        A CSV (UTF-8), TSV/TXT or Parquet file.
    out_dir : str or pathlib.Path
        The output folder.
    batch_rows : int
        Rows read and screened at a time; a file of at most this many rows is screened in
        one piece.
    lang : {"en", "zh"}
        The report's language.
    on_batch : callable, optional
        ``on_batch(rows_done, rows_total)`` reports progress (each row counts twice: read,
        then screened).
    csv_max_rows : int
        Above this many accepted projects ``results.csv`` is not written (0: never).
    **options
        Those of :func:`greenscreen.screen` (and ``encoding``, ``separator``).

    Returns
    -------
    BatchRun
        The files written and the counts (input = accepted + rejected + blank).

    Raises
    ------
    PipelineError
        The file is missing, not CSV or Parquet, not UTF-8, or unreadable part-way.
    GreenscreenError
        ``batch_rows`` < 1.
    """
    source = Path(path)
    if batch_rows < 1:
        raise GreenscreenError("batch_rows must be at least 1")
    if not source.is_file():
        raise PipelineError(f"pipeline file not found: {source}")
    out = Path(out_dir)
    # the set is written into a new hidden folder and swapped in (greenscreen._outputs): the
    # parts folder is always a fresh folder of this run, never a file or a symlink found there
    with output_set(out) as staged:
        parts = staged.path / ".greenscreen-parts"
        parts.mkdir()
        try:
            run, record = _run(
                source, staged.path, parts, batch_rows, lang, on_batch, options, csv_max_rows
            )
        finally:
            shutil.rmtree(parts, ignore_errors=True)
        staged.commit(record)
    paths = {key: out / path.name for key, path in {**run.paths, "run": out / "run.json"}.items()}
    return replace(run, paths=paths)


def _scan(source: Path, options: dict[str, Any]) -> tuple[pl.LazyFrame, int, str]:
    """The file as a lazy table of text columns, its row count, and its format."""
    suffix = source.suffix.lower()
    if suffix == ".parquet":
        frame = pl.scan_parquet(source)
        return frame, frame.select(pl.len()).collect().item(), "parquet"
    if suffix not in {".csv", ".txt", ".tsv"}:
        raise PipelineError(
            f"batch mode reads CSV or Parquet, not {suffix or 'a file without suffix'}; "
            "screen it without --batch-rows or convert it"
        )
    with source.open("rb") as handle:
        head = handle.read(1 << 16)
    try:
        header = head.decode("utf-8-sig").splitlines()[0] if head.strip() else ""
    except UnicodeDecodeError as exc:
        if len(head) < (1 << 16) or exc.start < len(head) - 4:  # not a cut multi-byte char
            raise PipelineError(
                f"{source.name} is not UTF-8 (a GBK export?); batch mode reads UTF-8 CSV or "
                "Parquet: save it as UTF-8, or screen it without --batch-rows"
            ) from None
        header = head[: exc.start].decode("utf-8-sig").splitlines()[0]
    if not header:
        raise PipelineError(f"{source.name} is empty")
    from greenscreen.io import csv_separator  # the reader's own separator sniffing

    frame = pl.scan_csv(
        source,
        separator=csv_separator(header, options.get("separator")),
        infer_schema=False,
        encoding="utf8",
    )
    try:
        rows = frame.select(pl.len()).collect().item()
    except pl.exceptions.ComputeError as exc:
        raise PipelineError(f"{source.name}: {str(exc).splitlines()[0]}") from None
    return frame, rows, "csv"


def _batches(
    frame: pl.LazyFrame, batch_rows: int, name: str, first_row: int
) -> Iterator[tuple[int, pl.DataFrame]]:
    """(offset of the first row, batch) over the file, streamed. A file that turns out to be
    unreadable part-way (a ragged row, invalid UTF-8) is a PipelineError naming where."""
    offset = 0
    batches = iter(frame.collect_batches(chunk_size=batch_rows))
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except pl.exceptions.PolarsError as exc:
            problem = str(exc).strip().splitlines()[0]
            hint = (
                "; save it as UTF-8 or screen it without --batch-rows"
                if "utf-8" in problem.lower()
                else ""
            )
            raise PipelineError(
                f"cannot read {name} in batches after row {offset + first_row - 1}: {problem}{hint}"
            ) from None
        for start in range(0, batch.height, batch_rows):  # chunk_size is a hint
            piece = batch.slice(start, batch_rows)
            yield offset, piece
            offset += piece.height


def _shifted(pipeline: Pipeline, by: int) -> Pipeline:
    """Row numbers of a batch made those of the whole file."""
    return replace(
        pipeline,
        projects=pipeline.projects.with_columns(pl.col("source_row") + by),
        rejects=pipeline.rejects.with_columns(pl.col("row") + by),
    )


def _run(
    source: Path,
    out: Path,
    parts: Path,
    batch_rows: int,
    lang: Lang,
    on_batch: Callable[[int, int], object] | None,
    options: dict[str, Any],
    csv_max_rows: int = CSV_MAX_ROWS,
) -> tuple[BatchRun, dict[str, Any]]:
    """The outputs but run.json, written to ``out``, and the run record for run.json."""
    frame, total, fmt = _scan(source, options)
    first_row = 2 if fmt == "csv" else 1  # the file's row number of the first data row
    options.pop("sheet", None)  # CSV and Parquet have no sheets
    read_options = {k: options.pop(k) for k in ("encoding", "separator") if k in options}
    if total <= batch_rows:  # one batch: the in-memory run writes the same outputs
        result = screen(source, **read_options, **options)
        paths = result.write_data(
            out,
            csv_max_rows=csv_max_rows,
            alongside=partial(write_run_reports, result, out, portfolio=False, lang=lang),
        )
        p = result.pipeline
        run = BatchRun(paths, p.n_input_rows, p.n_accepted, p.n_rejected, p.n_blank, 1, result)
        return run, result.metadata()

    # Pass 1: read and validate every batch; keep (project_id, row) of every row with an id,
    # so that an id repeated in two batches rejects every copy, as a single read would.
    pipelines: list[str] = []
    ids: list[pl.DataFrame] = []
    n_blank = 0
    info = SourceInfo(name=source.name, format=fmt)
    notes: tuple[str, ...] = ()
    for k, (offset, batch) in enumerate(_batches(frame, batch_rows, source.name, first_row)):
        pipeline = _shifted(read_pipeline(batch, **read_options), offset + first_row - 1)
        if k == 0:  # the column mapping and unit conversions are the same for every batch
            info = replace(
                pipeline.source,
                name=source.name,
                format=fmt,
                encoding="utf-8" if fmt == "csv" else None,
            )
            notes = pipeline.notes
        n_blank += pipeline.n_blank
        dup = pipeline.rejects.filter(pl.col("code") == "duplicate_id")
        ids.append(
            pl.concat(
                [
                    pipeline.projects.select("project_id", row=pl.col("source_row")),
                    dup.select("project_id", "row").unique(),
                ]
            )
        )
        stem = str(parts / f"pipeline-{k:05d}")
        pipeline.projects.write_parquet(f"{stem}-projects.parquet")
        pipeline.rejects.filter(pl.col("code") != "duplicate_id").write_parquet(
            f"{stem}-rejects.parquet"
        )
        pipelines.append(stem)
        if on_batch is not None:
            on_batch(offset + batch.height, 2 * total)
    seen = (
        pl.concat(ids) if ids else pl.DataFrame(schema={"project_id": pl.String, "row": pl.Int64})
    )
    id_column = next((m.header for m in info.columns if m.field == "project_id"), "project_id")
    duplicate_rejects = duplicate_id_rejects(seen, id_column).sort("row")
    repeated_ids = duplicate_rejects["project_id"].unique().implode()
    del seen, ids

    # Pass 2: screen each batch and write its parts.
    last: ScreenResult | None = None
    for k, part in enumerate(pipelines):
        projects = pl.read_parquet(f"{part}-projects.parquet")
        rejects = pl.read_parquet(f"{part}-rejects.parquet")
        projects = projects.filter(~pl.col("project_id").is_in(repeated_ids))
        pipeline = Pipeline(projects, rejects, info, projects.height, 0, notes)
        result = screen(pipeline, **options)
        write_parquet(result.results, parts / f"results-{k:05d}.parquet")
        sink_parquet(
            decisions_file(result.decisions_lazy, result.rulebooks),
            parts / f"decisions-{k:05d}.parquet",
        )
        if result.subsidies is not None:
            write_parquet(result.subsidies.awards, parts / f"subsidies-{k:05d}.parquet")
            write_parquet(result.subsidies.schedule, parts / f"schedule-{k:05d}.parquet")
        if result.appraisal is not None and result.appraisal.sensitivities.height:
            write_parquet(result.appraisal.sensitivities, parts / f"sensitivities-{k:05d}.parquet")
        rejects.write_parquet(parts / f"rejects-{k:05d}.parquet")
        last = result
        if on_batch is not None:
            on_batch(total + min((k + 1) * batch_rows, total), 2 * total)
    rejects_all = pl.concat(
        [pl.read_parquet(p) for p in sorted(parts.glob("rejects-*.parquet"))] + [duplicate_rejects],
        how="vertical_relaxed",
    ).sort("row", maintain_order=True)
    return finish_outputs(
        source, out, parts, last, rejects_all, total, n_blank, len(pipelines), lang, csv_max_rows
    )


def finish_outputs(
    source: Path,
    out: Path,
    parts: Path,
    last: ScreenResult | None,
    rejects: pl.DataFrame,
    total: int,
    n_blank: int,
    batches: int,
    lang: Lang,
    csv_max_rows: int = CSV_MAX_ROWS,
) -> tuple[BatchRun, dict[str, Any]]:
    """Assemble a run written in parts into the usual outputs and its run record.

    Batch mode and Spark runs (:func:`greenscreen.spark.screen_spark_file`) write every
    table's parts into ``parts`` (``KEY-NNNNN.parquet``, in input order); this streams them
    into the data files (:data:`greenscreen._outputs.DATA_FILES`), writes ``rejects.csv`` and
    ``portfolio.html``, and makes the run record from ``last``'s with the whole file's
    SHA-256 and counts (:meth:`ScreenResult.metadata
    <greenscreen.run.ScreenResult.metadata>`).

    Parameters
    ----------
    source : pathlib.Path
        The input file.
    out : pathlib.Path
        The output set's staging folder.
    parts : pathlib.Path
        The folder of part files.
    last : ScreenResult or None
        A screened part: the run's rulebooks, programmes and configuration.
    rejects : polars.DataFrame
        All the run's rejects, in row order.
    total : int
        Input rows of the file.
    n_blank : int
        Blank rows ignored.
    batches : int
        Parts screened.
    lang : {"en", "zh"}
        The report's language.
    csv_max_rows : int
        Above this many accepted projects ``results.csv`` is not written (0: never).

    Returns
    -------
    run : BatchRun
        Paths inside ``out``.
    record : dict
        The run record for ``run.json``.
    """
    if last is None:  # total > batch_rows: there was a batch
        raise GreenscreenError(f"{source.name}: no batch was read")
    n_rejected = rejects["row"].n_unique() if rejects.height else 0
    accepted = total - n_blank - n_rejected
    paths: dict[str, Path] = {}
    for key, name in _PARTS.items():
        files = sorted(parts.glob(f"{key}-*.parquet"))
        if files:
            paths[key] = out / name
            schema = _decisions_arrow(last.rulebooks) if key == "decisions" else None
            atomic_write(paths[key], partial(_append_parquet, files, schema))
    if "results" in paths and writes_csv(accepted, csv_max_rows):
        files = sorted(parts.glob("results-*.parquet"))
        paths["results_csv"] = out / OUTPUT_FILES["results_csv"].name
        atomic_write(paths["results_csv"], lambda tmp: _append_csv(files, tmp))
    paths["rejects"] = out / OUTPUT_FILES["rejects"].name
    atomic_write(paths["rejects"], lambda p: rejects.write_csv(p, include_bom=True))
    counts = {
        "input_rows": total,
        "accepted": accepted,
        "rejected": n_rejected,
        "reject_rows": rejects.height,
        "blank_rows_ignored": n_blank,
        "batches": batches,
    }
    meta = last.metadata(sha256=_sha256(source), counts=counts)
    if "results" in paths:
        paths["portfolio_html"] = out / OUTPUT_FILES["portfolio_html"].name
        pipeline = replace(last.pipeline, rejects=rejects, n_input_rows=total, n_blank=n_blank)
        whole = replace(last, pipeline=pipeline)
        scan = pl.scan_parquet(paths["results"])
        atomic_write(
            paths["portfolio_html"],
            lambda p: write_portfolio_html(whole, p, lang=lang, link_prefix="packs/", results=scan),
        )
    return BatchRun(paths, total, accepted, n_rejected, n_blank, batches, last), meta


def _append_parquet(files: list[Path], schema: pa.Schema | None, path: str) -> None:
    """The parts, in order, as one Parquet file in ``schema`` (default: the first part's), a
    row group at a time. pyarrow's writer appends; polars' multi-file sink buffers every part
    (memory grew with the part count)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = schema or pq.read_schema(files[0])
    with pq.ParquetWriter(
        path,
        schema,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        write_statistics=False,
    ) as writer:
        for file in files:
            for batch in pq.ParquetFile(file).iter_batches(batch_size=65_536):
                writer.write_table(pa.Table.from_batches([batch]).cast(schema))


def _decisions_arrow(rulebooks: Sequence[Rulebook]) -> pa.Schema:
    """decisions.parquet's Arrow schema as polars writes it (Spark's parts hold the labels as
    plain text)."""
    import io

    import pyarrow.parquet as pq

    empty = io.BytesIO()
    decision_file_schema(rulebooks).to_frame().write_parquet(empty)
    return pq.read_schema(empty)


def _append_csv(files: list[Path], path: str) -> None:
    """results.csv from the parts, one part in memory at a time (lists joined with '; ')."""
    with open(path, "wb") as handle:
        for k, file in enumerate(files):
            part = csv_compatible(pl.read_parquet(file))
            part.write_csv(handle, include_header=k == 0, include_bom=k == 0)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
