"""Screening on Spark: the same screen, partition by partition, when a bank's book lives on a
cluster (``pip install greenscreen[spark]``, pyspark ≥ 3.5).

Each partition reaches Python as Arrow batches (``mapInArrow``) and is read and screened by
:func:`greenscreen.io.read_pipeline` and :func:`greenscreen.screen`, in chunks of up to
``chunk_rows`` rows; nothing is collected to the driver. What needs the whole table is done by
Spark: rows are numbered before screening (their position in the input, as a single read
numbers them), and a project_id repeated anywhere rejects every copy (an aggregation over the
ids of all partitions), with the reject text of a single read.

A screened chunk is stored as compressed Arrow IPC payloads in one persisted table, so the
screen runs once and ``results``, ``decisions``, ``subsidies``, ``schedule`` and ``rejects`` are
cheap Spark DataFrames unpacked from it. Rulebooks, programmes and factor files are loaded and
checked on the driver (a ``RulebookError`` is raised before any task runs) and broadcast to
executors with the job: no shared file system is assumed.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from greenscreen._outputs import output_set
from greenscreen.appraisal import AppraisalConfig
from greenscreen.emissions import FACTOR_FILES, EmissionsConfig, load_factors
from greenscreen.errors import GreenscreenError, PipelineError
from greenscreen.io import Pipeline, duplicate_id_rejects, read_pipeline
from greenscreen.rulebook import Rulebook
from greenscreen.run import ScreenResult, resolve_rulebooks, screen
from greenscreen.subsidy import SubsidyConfig

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from greenscreen.batch import BatchRun
    from greenscreen.report.labels import Lang

__all__ = ["SparkScreenResult", "screen_spark", "screen_spark_file"]

_ROW = "__gs_row__"  # the input row number, assigned before screening
_KINDS = ("results", "decisions", "subsidies", "schedule", "rejects", "ids", "counts")
_PACKED = "kind string, chunk long, part int, schema binary, data binary"
#: rows per screened chunk: the polars engine's fixed cost per call is paid per chunk
CHUNK_ROWS = 50_000
_PAYLOAD_ROWS = 200_000  # rows per IPC payload (a Spark binary value stays far below 2 GB)
_LOCAL_HEAP = "3g"  # the driver's heap in local mode (GREENSCREEN_SPARK_MEMORY overrides)
_ARROW_BATCH = str(32 * 1024**2)  # spark.sql.execution.arrow.maxBytesPerBatch, local mode


def _pyspark() -> Any:
    try:
        import pyspark.sql.functions as F  # noqa: N812
    except ImportError:
        raise GreenscreenError(
            "Spark screening needs pyspark: pip install 'greenscreen[spark]'"
        ) from None
    return F


@dataclass(frozen=True)
class _Job:
    """What every task needs, pickled once and broadcast: loaded objects and factor bytes."""

    rulebooks: tuple[Rulebook, ...]
    programmes: tuple[Any, ...]
    emissions: EmissionsConfig
    subsidies: SubsidyConfig
    appraisal: AppraisalConfig
    factor_files: tuple[tuple[str, bytes], ...] = ()
    chunk_rows: int = CHUNK_ROWS


@dataclass(frozen=True)
class _Inline:
    """A broadcast stand-in (``.value``) where there is no SparkContext to broadcast with."""

    value: _Job


_factor_dirs: dict[str, str] = {}  # per executor process: factor files digest -> folder


def _executor_emissions(job: _Job) -> EmissionsConfig:
    """The emissions config with the shipped factor files written to a local folder once per
    executor process (the driver's ``factors_dir`` need not exist there)."""
    if not job.factor_files:
        return job.emissions
    digest = hashlib.sha256(pickle.dumps(job.factor_files)).hexdigest()
    if digest not in _factor_dirs:
        folder = Path(tempfile.mkdtemp(prefix="greenscreen-factors-"))
        for name, data in job.factor_files:
            (folder / name).write_bytes(data)
        _factor_dirs[digest] = str(folder)
    return replace(job.emissions, factors_dir=_factor_dirs[digest])


@dataclass
class SparkScreenResult:
    """The outputs of :func:`screen_spark` as Spark DataFrames (unordered, like any Spark
    table; ``source_row`` and ``row`` give the input order).

    ``results``, ``decisions``, ``subsidies`` (awards), ``schedule`` (subsidy payments) and
    ``rejects`` have the columns and types of :class:`~greenscreen.run.ScreenResult`'s tables.
    ``unpersist()`` frees the screened payloads Spark keeps on its executors' disks.
    """

    packed: DataFrame
    schemas: dict[str, pa.Schema]
    id_column: str
    probe: ScreenResult  # the run of no rows on the driver: rulebooks, configs, run record

    def _unpack(self, kind: str, order: bool = False) -> DataFrame:
        schema = self.schemas[kind]
        spark_schema = _spark_schema(schema.append(_CHUNK).append(_SEQ) if order else schema)
        return (
            self.packed.filter(self.packed.kind == kind)
            .select("chunk", "part", "data")
            .mapInArrow(partial(_unpack_batches, schema=schema, order=order), spark_schema)
        )

    @cached_property
    def _duplicates(self) -> DataFrame:
        """(project_id, row) of every copy of a project_id found in several input rows: a
        Spark aggregation over the ids of every row of every partition."""
        F = _pyspark()  # noqa: N806
        ids = self._unpack("ids")
        repeated = ids.groupBy("project_id").count().filter(F.col("count") > 1)
        copies = ids.join(repeated.select("project_id"), "project_id", "inner")
        from pyspark import StorageLevel

        return copies.persist(StorageLevel.MEMORY_AND_DISK)  # every table uses it

    def table(self, kind: str, *, order: bool = False) -> DataFrame:
        """One output by name.

        Parameters
        ----------
        kind : {"results", "decisions", "subsidies", "schedule", "rejects"}
        order : bool
            Add ``__gs_chunk__`` and ``__gs_seq__``: sorting by them gives the order a batched
            single process writes.

        Returns
        -------
        pyspark.sql.DataFrame
            Without the copies of a project id repeated in the input (they are rejects).
        """
        if kind == "rejects":
            return self._rejects()
        frame = self._unpack(kind, order)
        # broadcast: the table keeps its partitions and their order (no shuffle), so written
        # parts follow the input; the ids repeated in a pipeline are few
        F = _pyspark()  # noqa: N806
        repeated = F.broadcast(self._duplicates.select("project_id").distinct())
        return frame.join(repeated, "project_id", "left_anti").select(*frame.columns)

    @property
    def results(self) -> DataFrame:
        """The results table (one row per accepted project)."""
        return self.table("results")

    @property
    def decisions(self) -> DataFrame:
        """The decisions table (one row per project × rulebook × criterion)."""
        return self.table("decisions")

    @property
    def subsidies(self) -> DataFrame:
        """The programme awards table (one row per project × award in scope)."""
        return self.table("subsidies")

    @property
    def schedule(self) -> DataFrame:
        """The subsidy payment schedule (one row per payment and year)."""
        return self.table("schedule")

    @property
    def rejects(self) -> DataFrame:
        """The rejects, with one ``duplicate_id`` reject per copy of a repeated id."""
        return self.table("rejects")

    def _rejects(self) -> DataFrame:
        """Rejects of the chunks plus one duplicate_id reject per copy, its reason written by
        the single read's own function (all copies of an id meet in one Spark partition)."""
        schema = self.schemas["rejects"]
        dups = self._duplicates.repartition("project_id").mapInArrow(
            partial(_duplicate_rejects, column=self.id_column, schema=schema),
            _spark_schema(schema),
        )
        return self._unpack("rejects").unionByName(dups)

    def counts(self) -> dict[str, int]:
        """input_rows, accepted, rejected, reject_rows, blank_rows_ignored, as in run.json.

        Returns
        -------
        dict of str to int
        """
        F = _pyspark()  # noqa: N806
        sums = self._unpack("counts").agg(
            F.sum("n_input").alias("n_input"), F.sum("n_blank").alias("n_blank")
        )
        first = sums.first()
        assert first is not None
        n_input, n_blank = int(first["n_input"] or 0), int(first["n_blank"] or 0)
        stats = self.rejects.agg(
            F.countDistinct("row").alias("rows"), F.count("*").alias("n")
        ).first()
        assert stats is not None
        rejected = int(stats["rows"])
        return {
            "input_rows": n_input,
            "accepted": n_input - n_blank - rejected,
            "rejected": rejected,
            "reject_rows": int(stats["n"]),
            "blank_rows_ignored": n_blank,
        }

    def unpersist(self) -> None:
        """Free the screened payloads Spark keeps on its executors (memory and disk)."""
        # blocking: a session stopped right after would fail the pending removals (Java
        # printed RejectedExecutionException traces on stderr at the end of every CLI run)
        if "_duplicates" in self.__dict__:
            self._duplicates.unpersist(blocking=True)
        self.packed.unpersist(blocking=True)


def screen_spark(
    df: DataFrame,
    *,
    rulebooks: Sequence[Rulebook] | str | Path | None = None,
    emissions: EmissionsConfig | None = None,
    subsidies: SubsidyConfig | None = None,
    appraisal: AppraisalConfig | None = None,
    row_numbers: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> SparkScreenResult:
    """Screen a Spark DataFrame of pipeline rows with the same code and results as
    :func:`greenscreen.screen`.

    Rows are numbered 1, 2, … in the DataFrame's order, partition by partition: for a
    DataFrame read from one Parquet file that is the file's row order, as ``read_pipeline``
    numbers it. The screen runs here, once; the result's tables are unpacked from its
    persisted output. Rulebook and factor-file errors are raised here, on the driver.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        Template v1 columns, as a file holds them (text, or typed from Parquet).
    rulebooks, emissions, subsidies, appraisal
        As :func:`greenscreen.screen`.
    row_numbers : str, optional
        A column holding the row numbers instead (use it for a DataFrame that comes out of a
        shuffle, whose order is not reproducible); it is not screened.
    chunk_rows : int
        Rows screened per call of the polars engine on an executor (its fixed cost is paid
        per chunk).

    Returns
    -------
    SparkScreenResult

    Raises
    ------
    GreenscreenError
        ``chunk_rows`` < 1, or a problem with the rulebooks, factor files or columns.
    """
    if chunk_rows < 1:
        raise GreenscreenError("chunk_rows must be at least 1")
    books, programmes = resolve_rulebooks(rulebooks)  # rulebook errors: here, on the driver
    config = emissions or EmissionsConfig()
    factor_files: tuple[tuple[str, bytes], ...] = ()
    if config.factors_dir:
        load_factors(config.factors_dir)  # a broken factor file fails here too
        folder = Path(config.factors_dir)
        factor_files = tuple(
            (name, (folder / name).read_bytes())
            for name in FACTOR_FILES
            if (folder / name).is_file()
        )
    job = _Job(
        books,
        programmes,
        config,
        subsidies or SubsidyConfig(),
        appraisal or AppraisalConfig(),
        factor_files,
        chunk_rows,
    )
    # the columns as every task reads them: a missing project_id column, too many columns or
    # a unit of the wrong kind stop here; the empty run gives the run record and id header
    probe = _probe(df.drop(row_numbers) if row_numbers else df, job)
    id_column = next(
        (m.header for m in probe.pipeline.source.columns if m.field == "project_id"),
        "project_id",
    )
    numbered = _numbered(df, row_numbers)
    try:
        shipped: Any = df.sparkSession.sparkContext.broadcast(job)
    except Exception:  # Spark Connect has no SparkContext: the job travels in the closure
        shipped = _Inline(job)
    packed = numbered.mapInArrow(partial(_screen_partition, shipped=shipped), _PACKED)
    from pyspark import StorageLevel

    packed = packed.persist(StorageLevel.DISK_ONLY)
    found = packed.select("kind", "schema").distinct().collect()  # runs the screen, once
    schemas = {}
    for kind in _KINDS:  # columns a chunk adds (a rulebook item only its projects reach)
        written = sorted(bytes(r["schema"]) for r in found if r["kind"] == kind)
        if written:
            schemas[kind] = _merged([pa.ipc.read_schema(pa.py_buffer(b)) for b in written])
        else:  # no chunk (an empty input): the columns of the empty run
            schemas[kind] = _arrow(_tables(probe)[kind]).schema
    return SparkScreenResult(packed, schemas, id_column, probe)


def screen_spark_file(
    path: str | Path,
    out_dir: str | Path,
    *,
    master: str | None = None,
    lang: Lang = "en",
    spark: SparkSession | None = None,
    csv_max_rows: int | None = None,
    **options: Any,
) -> BatchRun:
    """Screen a Parquet pipeline file on Spark and write the usual outputs
    (``greenscreen screen --engine spark``).

    Spark writes each table's parts in input order, and they are assembled, with
    ``rejects.csv``, ``portfolio.html`` and ``run.json``, as batch mode does
    (:func:`greenscreen.batch.finish_outputs`).

    Parameters
    ----------
    path : str or pathlib.Path
        A Parquet file.
    out_dir : str or pathlib.Path
        A local path of the driver (Spark's local mode, or a cluster whose executors share
        it); written as an output set.
    master : str, optional
        The Spark master of a session started here; default spark-submit's, else local.
    lang : {"en", "zh"}
        The report's language.
    spark : pyspark.sql.SparkSession, optional
        A session to use instead of starting one.
    csv_max_rows : int, optional
        Above this many accepted projects ``results.csv`` is not written (0: never); default
        :data:`greenscreen._outputs.CSV_MAX_ROWS`.
    **options
        :func:`screen_spark`'s (``sheet``, ``encoding`` and ``sensitivities`` are ignored).

    Returns
    -------
    BatchRun
        The files written and the counts.

    Raises
    ------
    PipelineError
        The file is missing or not Parquet.
    """
    source = Path(path)
    if not source.is_file():
        raise PipelineError(f"pipeline file not found: {source}")
    if source.suffix.lower() != ".parquet":
        raise PipelineError(
            f"--engine spark reads a Parquet file, not {source.suffix or 'a file without suffix'};"
            " convert it, or screen it without --engine spark"
        )
    for key in ("sheet", "encoding", "sensitivities"):  # no sheets, encodings or tornado here
        options.pop(key, None)
    with warnings.catch_warnings():  # pyspark's notice about pandas 3, which is not used here
        warnings.filterwarnings("ignore", "PySpark does not yet fully support", FutureWarning)
        return _screen_spark_file(source, out_dir, master, lang, spark, csv_max_rows, options)


def _screen_spark_file(
    source: Path,
    out_dir: str | Path,
    master: str | None,
    lang: Lang,
    spark: SparkSession | None,
    csv_max_rows: int | None,
    options: dict[str, Any],
) -> BatchRun:
    from greenscreen._outputs import CSV_MAX_ROWS
    from greenscreen.batch import finish_outputs

    session, started = (spark, False) if spark is not None else _session(master)
    with _spark_errors(session if started else None):
        try:
            with output_set(Path(out_dir)) as staged:
                parts = staged.path / ".greenscreen-parts"
                parts.mkdir()
                try:
                    result = screen_spark(
                        session.read.parquet(source.resolve().as_uri()), **options
                    )
                    try:
                        counts = result.counts()
                        rejects = _write_parts(result, parts)
                        probe = result.probe
                        info = replace(probe.pipeline.source, name=source.name, format="parquet")
                        last = replace(probe, pipeline=replace(probe.pipeline, source=info))
                        run, record = finish_outputs(
                            source,
                            staged.path,
                            parts,
                            last,
                            rejects,
                            counts["input_rows"],
                            counts["blank_rows_ignored"],
                            1,
                            lang,
                            CSV_MAX_ROWS if csv_max_rows is None else csv_max_rows,
                        )
                    finally:
                        result.unpersist()
                finally:
                    shutil.rmtree(parts, ignore_errors=True)
                record["counts"].pop("batches", None)  # Spark's partitions are not the run's
                record["engine"] = "spark"
                staged.commit(record)
        finally:
            if started:  # a JVM that died (out of memory) cannot be stopped: that is fine
                with suppress(Exception):
                    session.stop()
    out = Path(out_dir)
    paths = {key: out / p.name for key, p in {**run.paths, "run": out / "run.json"}.items()}
    return replace(run, paths=paths, batches=1)


#: The JVM's exit status when it runs out of memory (``org.apache.spark.util.SparkExitCode.OOM``:
#: a task's ``OutOfMemoryError`` makes Spark exit the JVM; the Python side then sees only a lost
#: connection or a SparkContext shut down).
_JVM_OUT_OF_MEMORY = 52


@contextmanager
def _spark_errors(session: SparkSession | None = None) -> Iterator[None]:
    """A failure of Spark itself (a Java exception, an executor lost, the JVM gone after
    running out of memory) is one clear error, not a traceback."""
    from py4j.protocol import Py4JError, Py4JNetworkError

    try:
        yield
    except (Py4JError, ConnectionError, EOFError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        # a lost JVM shows as a broken connection or a shut-down SparkContext
        gone = isinstance(exc, (ConnectionError, EOFError, Py4JNetworkError)) or any(
            "SparkContext was shut down" in x for x in lines
        )
        status = _jvm_exit_status(session, wait=gone)
        memory = status == _JVM_OUT_OF_MEMORY or any("OutOfMemoryError" in x for x in lines)
        if memory:
            hint = (
                "Spark ran out of memory; give it more (GREENSCREEN_SPARK_MEMORY=12g in local "
                "mode, spark.driver/executor.memory on a cluster)"
            )
        elif status is not None:
            hint = f"Spark failed: its JVM exited with status {status}"
        else:
            hint = "Spark failed"
        raise GreenscreenError(
            f"{hint}: {type(exc).__name__}: {lines[0] if lines else exc}"
        ) from exc


def _jvm_exit_status(session: SparkSession | None, *, wait: bool) -> int | None:
    """The exit status of the JVM this process started (local mode, spark-submit), once it has
    exited (waited for a few seconds when the connection to it broke); None while it runs or
    when the JVM is not this process's child (a cluster's gateway, Databricks)."""
    if session is None:
        return None
    process = getattr(type(session.sparkContext)._gateway, "proc", None)
    if process is None:
        return None
    try:  # the connection breaks a moment before the process is reaped
        return process.wait(timeout=10) if wait else process.poll()
    except subprocess.TimeoutExpired:
        return None


def _session(master: str | None) -> tuple[SparkSession, bool]:
    """The active Spark session, else a new one (and whether it was started here); local
    executors run this interpreter, so this greenscreen."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("greenscreen")
    if master:
        builder = builder.master(master)
    if (master or "local").startswith("local"):  # not 200 shuffle tasks on one machine
        builder = builder.config("spark.sql.shuffle.partitions", str(os.cpu_count() or 2))
        # local mode runs every task in the driver's JVM (benchmarks/README.md, "Spark, local
        # mode": the memory of the JVM and its Python workers measured together)
        memory = os.environ.get("GREENSCREEN_SPARK_MEMORY", _LOCAL_HEAP)
        builder = builder.config("spark.driver.memory", memory)
        builder = builder.config("spark.sql.files.maxPartitionBytes", str(16 * 1024**2))
        # a batch sent to Python holds at most this many bytes: the screened payloads (MBs
        # each) are unpacked a few at a time, not a whole partition's in one Arrow batch
        builder = builder.config("spark.sql.execution.arrow.maxBytesPerBatch", _ARROW_BATCH)
        # a persisted DataFrame is built in column batches of this many rows in the heap, even
        # DISK_ONLY: at Spark's 10,000 a partition's screened payloads (~1 KB per input row,
        # ~0.9 GB for 850,000 rows) were one batch, growing by copies (2 GiB heap: out of
        # memory at 5,000,000 rows); a few payloads per batch instead
        builder = builder.config("spark.sql.inMemoryColumnarStorage.batchSize", "4")
        # Spark's log4j defaults print INFO lines and notices on stderr: warnings while the
        # session starts (none expected), errors once it is up (setLogLevel below)
        log4j = Path(__file__).with_name("spark-log4j2.properties")
        builder = builder.config(
            "spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={log4j.as_uri()}"
        )
    # Parquet timestamps as pyarrow and polars write them (Spark's default is INT96)
    builder = builder.config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    session = builder.config("spark.ui.showConsoleProgress", "false").getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session, True


def _write_parts(result: SparkScreenResult, parts: Path) -> pl.DataFrame:
    """Each table written by Spark, in input order, as ``parts/<kind>-NNNNN.parquet`` (the part
    names batch mode assembles); the rejects returned, sorted as a single read sorts them."""
    for kind in ("results", "decisions", "subsidies", "schedule"):
        folder = parts / f"spark-{kind}"
        # no sort: part k is input partition k, in order (see SparkScreenResult.table)
        result.table(kind).write.parquet(folder.as_uri())  # file:, not the cluster's FS
        for k, file in enumerate(sorted(folder.glob("part-*.parquet"))):
            file.rename(parts / f"{kind}-{k:05d}.parquet")
    folder = parts / "spark-rejects"
    result.rejects.orderBy("row", "field", "code").write.parquet(folder.as_uri())
    files = sorted(folder.glob("part-*.parquet"))
    rejects = pl.concat([pl.read_parquet(f) for f in files], how="vertical_relaxed")
    schema = _tables(result.probe)["rejects"].schema
    return rejects.select(pl.col(name).cast(dtype) for name, dtype in schema.items())


# --------------------------------------------------------------------------------------------
# Driver side: row numbers, the probe, schemas.
_CHUNK = pa.field("__gs_chunk__", pa.int64())
_SEQ = pa.field("__gs_seq__", pa.int64())


def _numbered(df: DataFrame, row_numbers: str | None) -> DataFrame:
    """``df`` with the input row number of every row in ``__gs_row__``: the offset of its
    partition (a count per partition, the only thing collected) plus its place in it."""
    F = _pyspark()  # noqa: N806
    if row_numbers is not None:
        return df.withColumn(_ROW, F.col(row_numbers).cast("long")).drop(row_numbers)
    # monotonically_increasing_id: partition id in the upper 31 bits, place in the lower 33
    with_id = df.withColumn(_ROW, F.monotonically_increasing_id())
    part = F.shiftright(F.col(_ROW), 33)
    sizes = sorted(
        (int(r["p"]), int(r["n"]))
        for r in with_id.groupBy(part.alias("p")).agg(F.count("*").alias("n")).collect()
    )
    if not sizes:
        return with_id
    starts, total = [], 0
    for p, n in sizes:
        starts += [F.lit(p), F.lit(total)]
        total += n
    place = F.col(_ROW).bitwiseAND(F.lit((1 << 33) - 1))
    return with_id.withColumn(_ROW, F.create_map(*starts)[part] + place + 1)


def _probe(df: DataFrame, job: _Job) -> ScreenResult:
    """Screen no rows of ``df``'s columns on the driver: input errors are raised here."""
    from pyspark.sql.pandas.types import to_arrow_schema

    empty = pl.from_arrow(to_arrow_schema(df.schema).empty_table())
    assert isinstance(empty, pl.DataFrame)
    return screen(
        read_pipeline(empty),
        rulebooks=job.rulebooks,
        programmes=job.programmes,
        emissions=job.emissions,
        subsidies=job.subsidies,
        appraisal=job.appraisal,
    )


def _merged(schemas: list[pa.Schema]) -> pa.Schema:
    """The columns of all chunks in one order (a column inserted after the one it follows),
    each with its type where some chunk had one (an all-null chunk's column is null)."""
    names: list[str] = []
    types: dict[str, pa.DataType] = {}
    for schema in sorted(schemas, key=len, reverse=True):
        before: str | None = None
        for f in schema:
            if f.name not in types:
                names.insert(names.index(before) + 1 if before else 0, f.name)
                types[f.name] = f.type
            elif _null_type(types[f.name]) and not _null_type(f.type):
                types[f.name] = f.type
            before = f.name
    return pa.schema([pa.field(name, types[name]) for name in names])


def _null_type(t: pa.DataType) -> bool:
    return pa.types.is_null(t) or (pa.types.is_list(t) and _null_type(t.value_type))


def _spark_schema(schema: pa.Schema) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    # a column no chunk typed (never a value anywhere) is a string column of nulls in Spark
    typed = pa.schema([f.with_type(pa.string()) if _null_type(f.type) else f for f in schema])
    return from_arrow_schema(typed, prefer_timestamp_ntz=True)


# --------------------------------------------------------------------------------------------
# Executor side: each runs in a Python worker on a partition's Arrow batches.
def _screen_partition(batches: Iterator[pa.RecordBatch], shipped: Any) -> Iterator[pa.RecordBatch]:
    """Read and screen a partition in chunks of ``chunk_rows`` rows; one packed row per
    output and chunk."""
    job: _Job = shipped.value
    emissions = _executor_emissions(job)
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        if batch.num_rows:
            pending.append(batch)
            rows += batch.num_rows
        if rows >= job.chunk_rows:
            yield from _screen_chunk(pa.Table.from_batches(pending), job, emissions)
            pending, rows = [], 0
    if pending:
        yield from _screen_chunk(pa.Table.from_batches(pending), job, emissions)


def _screen_chunk(
    table: pa.Table, job: _Job, emissions: EmissionsConfig
) -> Iterator[pa.RecordBatch]:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    rows = frame.get_column(_ROW)
    frame = frame.drop(_ROW)
    # Only the input's first row may be the template's label row: any other chunk is read
    # after a blank row (counted as blank, never a label row), then taken off the counts.
    lead = 0 if rows[0] == 1 else 1
    if lead:
        frame = pl.concat([frame.clear(1), frame])
    pipeline = read_pipeline(frame)

    def global_rows(local: pl.Series) -> pl.Series:
        return rows.gather(local - 1 - lead)

    projects = pipeline.projects.with_columns(
        global_rows(pipeline.projects["source_row"]).alias("source_row")
    )
    rejects = pipeline.rejects.with_columns(global_rows(pipeline.rejects["row"]).alias("row"))
    # every row with an id (accepted or rejected for another reason) counts for duplicates,
    # as in a single read; duplicate_id rejects are written after all partitions are seen
    ids = pl.concat(
        [
            projects.select("project_id", row=pl.col("source_row")),
            rejects.filter(pl.col("project_id").is_not_null()).select("project_id", "row"),
        ]
    ).unique(maintain_order=True)
    kept = rejects.filter(pl.col("code") != "duplicate_id")
    result = screen(
        Pipeline(projects, kept, pipeline.source, projects.height, 0, pipeline.notes),
        rulebooks=job.rulebooks,
        programmes=job.programmes,
        emissions=emissions,
        subsidies=job.subsidies,
        appraisal=job.appraisal,
    )
    tables = _tables(result)
    tables["ids"] = ids
    tables["counts"] = pl.DataFrame(
        {"n_input": [pipeline.n_input_rows - lead], "n_blank": [pipeline.n_blank - lead]},
        schema={"n_input": pl.Int64, "n_blank": pl.Int64},
    )
    chunk = int(rows[0])
    for kind, out in tables.items():
        arrow = _arrow(out)
        schema = arrow.schema.serialize().to_pybytes()
        for part, start in enumerate(range(0, max(out.height, 1), _PAYLOAD_ROWS)):
            sink = pa.BufferOutputStream()
            options = pa.ipc.IpcWriteOptions(compression="lz4")
            with pa.ipc.new_stream(sink, arrow.schema, options=options) as writer:
                writer.write_table(arrow.slice(start, _PAYLOAD_ROWS))
            yield pa.RecordBatch.from_pydict(
                {
                    "kind": [kind],
                    "chunk": [chunk],
                    "part": [part],
                    "schema": [schema],
                    "data": [sink.getvalue().to_pybytes()],
                },
                schema=_PACKED_ARROW,
            )


_PACKED_ARROW = pa.schema(
    [
        ("kind", pa.string()),
        ("chunk", pa.int64()),
        ("part", pa.int32()),
        ("schema", pa.binary()),
        ("data", pa.binary()),
    ]
)


def _tables(result: ScreenResult) -> dict[str, pl.DataFrame]:
    """The per-chunk outputs by name, as ScreenResult.write writes them."""
    subsidies = result.subsidies
    assert subsidies is not None
    return {
        "results": result.results,
        "decisions": result.decisions,
        "subsidies": subsidies.awards,
        "schedule": subsidies.schedule,
        "rejects": result.rejects,
        "ids": pl.DataFrame(schema={"project_id": pl.String, "row": pl.Int64}),
        "counts": pl.DataFrame(schema={"n_input": pl.Int64, "n_blank": pl.Int64}),
    }


def _arrow(frame: pl.DataFrame) -> pa.Table:
    """Arrow with 32-bit offsets (large and view types are not Spark 3.5's)."""
    table = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
    return table.cast(pa.schema([f.with_type(_small(f.type)) for f in table.schema]))


def _small(t: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_large_list(t) or pa.types.is_list(t) or pa.types.is_list_view(t):
        return pa.list_(_small(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_small(f.type)) for f in t])
    return t


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A chunk's table with the merged columns: those it lacks as nulls, in the merged order."""
    arrays = []
    for f in schema:
        target = pa.string() if _null_type(f.type) else f.type
        if f.name in table.column_names:
            arrays.append(table.column(f.name).cast(target))
        else:
            arrays.append(pa.nulls(table.num_rows, target))
    return pa.Table.from_arrays(
        arrays, schema=pa.schema([f.with_type(a.type) for f, a in zip(schema, arrays, strict=True)])
    )


def _unpack_batches(
    batches: Iterator[pa.RecordBatch], schema: pa.Schema, order: bool
) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        chunks, parts = (batch.column(k).to_pylist() for k in ("chunk", "part"))
        payloads = batch.column("data")  # read in place: no copy of a batch's payloads
        for chunk, part, data in zip(chunks, parts, payloads, strict=True):
            table = _conform(pa.ipc.open_stream(data.as_buffer()).read_all(), schema)
            if order:
                first = part * _PAYLOAD_ROWS
                seq = pa.array(range(first, first + table.num_rows), pa.int64())
                table = table.append_column(_CHUNK, pa.array([chunk] * table.num_rows, pa.int64()))
                table = table.append_column(_SEQ, seq)
            yield from table.to_batches(max_chunksize=65_536)


def _duplicate_rejects(
    batches: Iterator[pa.RecordBatch], column: str, schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """duplicate_id rejects of the copies in one Spark partition (every copy of an id is)."""
    seen = [batch for batch in batches if batch.num_rows]
    if not seen:
        return
    frame = pl.from_arrow(pa.Table.from_batches(seen))
    assert isinstance(frame, pl.DataFrame)
    rejects = duplicate_id_rejects(frame.select("project_id", "row"), column)
    yield from _conform(_arrow(rejects), schema).to_batches()
