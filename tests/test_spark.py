"""greenscreen.spark: the same screen on Spark (local mode, several partitions) as in one process.

The input is the bundled sample pipeline (38 projects) with hostile rows spread over the file:
a project_id repeated in another partition, a repeat that is also rejected for a bad number, a
missing id, an unknown activity and a blank row. Spark and ``gs.screen`` screen the same Parquet
file; every table must match (columns, types, values; floats to 1e-9 relative).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner
from polars.testing import assert_frame_equal

import greenscreen as gs
from greenscreen._resources import data_file

pytest.importorskip("pyspark", reason="pyspark is not installed: pip install 'greenscreen[spark]'")

from pyspark.sql import SparkSession  # noqa: E402

from greenscreen.cli import cli  # noqa: E402
from greenscreen.spark import SparkScreenResult, screen_spark  # noqa: E402

pytestmark = [
    pytest.mark.slow,  # starts a JVM and Spark jobs
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]


@pytest.fixture(scope="module")
def spark() -> SparkSession:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors import this greenscreen
    session = (
        SparkSession.builder.master("local[2]")
        .appName("greenscreen-tests")
        .config("spark.driver.memory", "1g")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "3")
        # small splits: the test file is read as several partitions
        .config("spark.sql.files.maxPartitionBytes", "20000")
        .config("spark.sql.files.openCostInBytes", "0")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sample = pl.read_csv(data_file("sample_pipeline.csv"), infer_schema=False)
    columns = {c: pl.String for c in sample.columns}

    def rows(*records: dict[str, str | None]) -> pl.DataFrame:
        return pl.DataFrame(list(records), schema=columns, strict=False)

    hostile = [
        rows({"project_id": "GS-003", "activity": "solar_pv", "capacity_mw": "10"}),
        rows({"project_id": "DUP-X", "activity": "wind_onshore", "capacity_mw": "abc"}),
        rows({}),  # blank: counted, not rejected
        rows({"project_id": None, "activity": "solar_pv"}),
        rows({"project_id": "BAD-ACT", "activity": "perpetual_motion"}),
        rows({"project_id": "DUP-X", "activity": "wind_onshore", "capacity_mw": "50"}),
    ]
    frame = pl.concat(
        [sample[:20], hostile[0], hostile[1], sample[20:30], hostile[2], hostile[3]]
        + [sample[30:], hostile[4], hostile[5]]
    )
    path = tmp_path_factory.mktemp("spark") / "pipeline.parquet"
    frame.write_parquet(path, row_group_size=6)  # row groups: Spark splits the file
    return path


@pytest.fixture(scope="module")
def screened(spark: SparkSession, pipeline: Path) -> SparkScreenResult:
    df = spark.read.parquet(str(pipeline))
    assert df.rdd.getNumPartitions() >= 3
    result = screen_spark(df, chunk_rows=7)  # several chunks per partition too
    yield result
    result.unpersist()


@pytest.fixture(scope="module")
def local(pipeline: Path) -> gs.ScreenResult:
    """The same file screened in one process (gs.screen), the reference for Spark's tables."""
    return gs.screen(pipeline)


def _polars(frame: object) -> pl.DataFrame:
    out = pl.from_arrow(frame.toArrow())  # type: ignore[attr-defined]
    assert isinstance(out, pl.DataFrame)
    return out


def _same(spark_frame: object, local: pl.DataFrame, key: list[str]) -> None:
    got = _polars(spark_frame)
    assert got.columns == local.columns
    assert_frame_equal(got.sort(key), local.sort(key), rel_tol=1e-9, abs_tol=0.0)


def test_spark_screen_equals_single_process(
    screened: SparkScreenResult, local: gs.ScreenResult
) -> None:
    assert local.results.height == 37 and local.rejects.height > 5
    _same(screened.results, local.results, ["source_row"])
    decision_key = ["project_id", "rulebook", "item", "criterion", "selected"]
    _same(screened.decisions, local.decisions, decision_key)
    assert local.subsidies is not None
    awards = local.subsidies.awards
    assert "_start_year" not in awards.columns  # a helper column of the schedule, not output
    _same(screened.subsidies, awards, ["project_id", "programme", "award"])
    _same(screened.schedule, local.subsidies.schedule, ["project_id", "programme", "award", "year"])
    _same(screened.rejects, local.rejects, ["row", "field", "code"])
    pipe = local.pipeline
    assert screened.counts() == {
        "input_rows": pipe.n_input_rows,
        "accepted": pipe.n_accepted,
        "rejected": pipe.n_rejected,
        "reject_rows": pipe.rejects.height,
        "blank_rows_ignored": pipe.n_blank,
    }


def test_duplicates_across_partitions_reject_every_copy(screened: SparkScreenResult) -> None:
    rejects = _polars(screened.rejects).filter(pl.col("code") == "duplicate_id").sort("row")
    # GS-003 is row 3 and row 21 (another partition); DUP-X rows 22 and 44, one of them also
    # an invalid number. Row numbers are those of the file (Parquet: first row is row 1).
    assert rejects.select("row", "project_id").rows() == [
        (3, "GS-003"),
        (21, "GS-003"),
        (22, "DUP-X"),
        (44, "DUP-X"),
    ]
    reason = "duplicate project_id: appears in rows 3, 21; all copies are rejected"
    assert rejects["reason"][0] == reason
    results = _polars(screened.results)
    assert not results.filter(pl.col("project_id").is_in(["GS-003", "DUP-X"])).height
    assert results["project_id"].is_unique().all()


def test_rulebook_error_is_raised_on_the_driver(
    spark: SparkSession, pipeline: Path, tmp_path: Path
) -> None:
    (tmp_path / "bank.yaml").write_text(
        "schema_type: greenscreen.rulebook\nschema_version: 1\nid: bank\nitems: [unclosed",
        encoding="utf-8",
    )
    df = spark.read.parquet(str(pipeline))
    tracker = spark.sparkContext.statusTracker()
    spark.sparkContext.setJobGroup("greenscreen-bad-rulebook", "no job may run")
    try:
        with pytest.raises(gs.RulebookError, match="bank.yaml"):
            screen_spark(df, rulebooks=tmp_path)
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
    assert tracker.getJobIdsForGroup("greenscreen-bad-rulebook") == []


def test_cli_engine_spark_writes_the_usual_outputs(
    spark: SparkSession, pipeline: Path, local: gs.ScreenResult, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ["screen", str(pipeline), "--engine", "spark", "--master", "local[2]", "--out", str(out)]
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0, done.output
    assert "44 rows: 37 accepted, 6 rejected, 1 blank rows ignored" in done.output
    ref = tmp_path / "ref"
    local.write(ref)
    # the files of a batched single process: results in input order, rejects as sorted
    assert_frame_equal(
        pl.read_parquet(out / "results.parquet"), local.results, rel_tol=1e-9, abs_tol=0.0
    )
    assert (out / "rejects.csv").read_bytes() == (ref / "rejects.csv").read_bytes()
    for name in ("decisions.parquet", "subsidies.parquet", "subsidy_schedule.parquet"):
        assert pl.read_parquet(out / name).height == pl.read_parquet(ref / name).height, name
        assert pl.read_parquet_schema(out / name) == pl.read_parquet_schema(ref / name), name
    assert (out / "portfolio.html").is_file() and (out / "results.csv").is_file()
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["engine"] == "spark"
    assert run["counts"] == json.loads((ref / "run.json").read_text(encoding="utf-8"))["counts"]
    assert set(run["outputs"]) >= {"results.parquet", "decisions.parquet", "rejects.csv"}
    assert spark.sparkContext._jsc is not None  # the CLI left the session it found running


def test_a_cli_spark_run_leaves_stderr_clean(pipeline: Path, tmp_path: Path) -> None:
    """A session greenscreen starts logs errors only and is stopped after its cached data is
    removed: no INFO/WARN lines and no RejectedExecutionException traces at the end (measured
    on every CLI run before). The JVM's one-line notice about its incubator module remains."""
    env = {k: v for k, v in os.environ.items() if k != "PYSPARK_SUBMIT_ARGS"}
    out = tmp_path / "out"
    args = ["screen", str(pipeline), "--engine", "spark", "--master", "local[2]", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "greenscreen", *args, "-q", "--no-register"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    noise = [
        line
        for line in done.stderr.splitlines()
        if line.strip() and not line.startswith("WARNING: Using incubator modules")
    ]
    assert noise == [], done.stderr
    assert (out / "results.parquet").is_file()


def test_a_failure_of_spark_itself_is_one_clear_error() -> None:
    """Measured at 1M rows with Spark's 1 GiB default heap: java.lang.OutOfMemoryError, then the
    JVM gone (ConnectionRefusedError) and an internal error (exit 3). Now one message with the
    remedy; other Spark failures say so too."""
    pytest.importorskip("py4j")
    from py4j.protocol import Py4JError

    from greenscreen.errors import GreenscreenError
    from greenscreen.spark import _spark_errors

    with pytest.raises(GreenscreenError, match="Spark ran out of memory.*GREENSCREEN_SPARK_MEMORY"):
        with _spark_errors():
            raise Py4JError("An error occurred\njava.lang.OutOfMemoryError: Java heap space")
    with pytest.raises(GreenscreenError, match="Spark failed: ConnectionRefusedError"):
        with _spark_errors():
            raise ConnectionRefusedError(111, "Connection refused")


def test_a_jvm_that_exited_out_of_memory_is_named_as_such() -> None:
    """Measured at 5M rows with a 2 GiB heap: the task's OutOfMemoryError made Spark exit the
    JVM (``SparkExitCode.OOM``, 52) and Python saw only the SparkContext shut down, reported as
    "Spark failed". The JVM's exit status now names the cause; another status is given as is."""
    pytest.importorskip("py4j")
    from types import SimpleNamespace

    from py4j.protocol import Py4JError

    from greenscreen.errors import GreenscreenError
    from greenscreen.spark import _spark_errors

    def session_whose_jvm_exits(status: int) -> Any:
        jvm = subprocess.Popen([sys.executable, "-c", f"raise SystemExit({status})"])
        context = type("Context", (), {"_gateway": SimpleNamespace(proc=jvm)})()
        return SimpleNamespace(sparkContext=context)

    lost = "Job 3 cancelled because SparkContext was shut down"
    with pytest.raises(GreenscreenError, match="Spark ran out of memory.*SparkContext was shut"):
        with _spark_errors(session_whose_jvm_exits(52)):
            raise Py4JError(lost)
    with pytest.raises(GreenscreenError, match="Spark failed: its JVM exited with status 1: Conn"):
        with _spark_errors(session_whose_jvm_exits(1)):
            raise ConnectionRefusedError(111, "Connection refused")
