"""Batched screening gives the same outputs as one read, with memory bounded by the batch."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import polars as pl
import pytest
from conftest import run_cli

from greenscreen import screen
from greenscreen._resources import data_file
from greenscreen.batch import screen_batched
from greenscreen.errors import PipelineError


@pytest.fixture(scope="module")
def pipeline_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample pipeline plus a bad value, a blank row and an id repeated across batches."""
    rows = pl.read_csv(data_file("sample_pipeline.csv"), infer_schema_length=0)
    bad = rows.slice(5, 1).with_columns(project_id=pl.lit("GS-X"), capacity_mw=pl.lit("n/a"))
    blank = pl.DataFrame(
        {c: [None] for c in rows.columns}, schema=dict.fromkeys(rows.columns, pl.String)
    )
    path = tmp_path_factory.mktemp("batch") / "pipeline.csv"
    pl.concat([rows, bad, blank, rows.head(1)]).write_csv(path)
    return path


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


def _assert_same(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert a.schema == b.schema
    a, b = _sorted(a), _sorted(b)
    for column in a.columns:
        if a.schema[column] == pl.Float64:  # summation order differs with the batch shape
            assert ((a[column] - b[column]).abs() <= 1e-9 * (1 + a[column].abs())).all(), column
            assert a[column].is_null().equals(b[column].is_null()), column
        else:
            assert a[column].equals(b[column]), column


def test_batches_give_the_outputs_of_one_read(pipeline_csv: Path, tmp_path: Path) -> None:
    whole = screen(pipeline_csv)
    whole.write(tmp_path / "one", portfolio=False)
    run = screen_batched(pipeline_csv, tmp_path / "batch", batch_rows=7)

    assert run.batches == 6
    assert (run.n_input_rows, run.n_accepted, run.n_rejected, run.n_blank) == (41, 37, 3, 1)
    for name in ("results", "decisions", "subsidies", "subsidy_schedule"):
        _assert_same(
            pl.read_parquet(tmp_path / "one" / f"{name}.parquet"),
            pl.read_parquet(tmp_path / "batch" / f"{name}.parquet"),
        )
    one = pl.read_csv(tmp_path / "one" / "rejects.csv")
    batched = pl.read_csv(tmp_path / "batch" / "rejects.csv")
    assert one.equals(batched)
    # the id repeated in the first and the last batch rejects both copies, file row numbers
    duplicate = batched.filter(pl.col("code") == "duplicate_id")
    assert duplicate["row"].to_list() == [2, 42]
    assert (
        duplicate["reason"][0]
        == "duplicate project_id: appears in rows 2, 42; all copies are rejected"
    )

    meta_one = json.loads((tmp_path / "one" / "run.json").read_text(encoding="utf-8"))
    meta_batch = json.loads((tmp_path / "batch" / "run.json").read_text(encoding="utf-8"))
    assert meta_batch["input"]["sha256"] == meta_one["input"]["sha256"]
    assert meta_batch["counts"] == {**meta_one["counts"], "batches": 6}
    assert not (tmp_path / "batch" / ".greenscreen-parts").exists()
    report = (tmp_path / "batch" / "portfolio.html").read_text(encoding="utf-8")
    assert "GS-003" in report


def test_parquet_batches(pipeline_csv: Path, tmp_path: Path) -> None:
    path = tmp_path / "pipeline.parquet"
    pl.read_csv(pipeline_csv, infer_schema=False).write_parquet(path)
    run = screen_batched(path, tmp_path / "out", batch_rows=10)
    assert (run.n_accepted, run.n_rejected) == (37, 3)
    rows = pl.read_csv(tmp_path / "out" / "rejects.csv")["row"].to_list()
    assert rows == [1, 39, 41]  # Parquet has no header row: data row 1 is row 1


def test_batch_mode_refuses_what_it_cannot_stream(tmp_path: Path) -> None:
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("项目编号,活动类型\nA,solar_pv\n".encode("gbk"))
    with pytest.raises(PipelineError, match="not UTF-8"):
        screen_batched(gbk, tmp_path / "o", batch_rows=10)
    workbook = tmp_path / "pipeline.xlsx"
    pl.DataFrame({"project_id": ["A"], "activity": ["solar_pv"]}).write_excel(workbook)
    with pytest.raises(PipelineError, match="CSV or Parquet"):
        screen_batched(workbook, tmp_path / "o")


def test_cli_batch_rows(pipeline_csv: Path, tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("screen", str(pipeline_csv), *args)

    done = run("--out", str(tmp_path / "o"), "--batch-rows", "10")
    assert done.returncode == 0, done.stderr
    assert "41 rows read in 5 batches: 37 accepted, 3 rejected, 1 blank rows ignored" in done.stdout
    assert pl.read_parquet(tmp_path / "o" / "results.parquet").height == 37
    strict = run("--out", str(tmp_path / "s"), "--batch-rows", "10", "--strict", "-q")
    assert strict.returncode == 4 and "3 rows rejected (strict mode)" in strict.stderr
    both = run("--out", str(tmp_path / "p"), "--batch-rows", "10", "--packs")
    assert both.returncode == 2 and "--packs needs the whole run" in both.stderr
    assert "Traceback" not in done.stderr + strict.stderr + both.stderr


def test_a_file_broken_part_way_is_a_clear_error(tmp_path: Path) -> None:
    lines = ["project_id,activity,capacity_mw"] + [f"P{i},solar_pv,{i}" for i in range(3000)]
    lines[2500] = "P2499x,solar_pv,1,extra"  # a stray separator deep in the file
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(PipelineError, match="cannot read ragged.csv in batches after row"):
        screen_batched(ragged, tmp_path / "o", batch_rows=1000)
    body = "\n".join(
        ["project_id,activity,capacity_mw"] + [f"P{i},solar_pv,1" for i in range(20000)]
    )
    mixed = tmp_path / "mixed.csv"  # UTF-8 for the first 64 KiB, then a GBK line
    mixed.write_bytes(body.encode() + "\nP-x,光伏,1\n".encode("gbk"))
    with pytest.raises(PipelineError, match="invalid utf-8.*without --batch-rows"):
        screen_batched(mixed, tmp_path / "o2", batch_rows=1000)
    assert not (tmp_path / "o" / ".greenscreen-parts").exists()
    assert not (tmp_path / "o" / "results.parquet").exists()


def test_a_file_within_one_batch_is_screened_in_memory(tmp_path: Path) -> None:
    header_only = tmp_path / "header_only.csv"
    header_only.write_text("project_id,activity\n", encoding="utf-8")
    run = screen_batched(header_only, tmp_path / "o", batch_rows=10)
    assert (run.n_input_rows, run.n_accepted, run.batches) == (0, 0, 1)
    assert pl.read_parquet(tmp_path / "o" / "results.parquet").height == 0
    assert (tmp_path / "o" / "run.json").is_file()
