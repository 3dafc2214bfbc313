"""Writing many packs: processes, identical output, resuming an interrupted or repeated run."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from greenscreen import screen
from greenscreen._resources import data_file
from greenscreen.report import MANIFEST, write_packs

IDS = ["GS-001", "GS-003", "GS-004", "GS-009", "GS-010"]


@pytest.fixture
def sample(sample_result_sensitivities):  # type: ignore[no-untyped-def]
    return sample_result_sensitivities  # screened once per session (conftest)


def _contents(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.name != MANIFEST}


@pytest.mark.slow
def test_parallel_packs_equal_serial_packs(sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    serial = write_packs(sample, tmp_path / "serial", IDS)
    parallel = write_packs(sample, tmp_path / "parallel", IDS, workers=2, chunk_size=2)
    assert [p.name for p in serial] == [p.name for p in parallel]
    assert len(serial) == 2 * len(IDS) + 1  # xlsx and html per project, and index.html
    assert _contents(tmp_path / "serial") == _contents(tmp_path / "parallel")


def test_a_repeated_run_skips_packs_that_are_up_to_date(sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "packs"
    first = write_packs(sample, out, IDS)
    assert first.skipped == 0
    stamps = {p: p.stat().st_mtime_ns for p in first if p.name != "index.html"}

    again = write_packs(sample, out, IDS)
    assert again.skipped == len(IDS)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing rewritten

    # a deleted pack is written again; the others stay
    (out / "GS-004.html").unlink()
    third = write_packs(sample, out, IDS)
    assert third.skipped == len(IDS) - 1 and (out / "GS-004.html").is_file()

    # one project's input changes: only its pack is rewritten
    rows = pl.read_csv(data_file("sample_pipeline.csv"), infer_schema_length=0)
    rows = rows.with_columns(
        pl.when(pl.col("project_id") == "GS-009")
        .then(pl.lit("1.0"))
        .otherwise(pl.col("capacity_mw"))
        .alias("capacity_mw")
    )
    changed = screen(rows, sensitivities=True)
    fourth = write_packs(changed, out, IDS)
    assert fourth.skipped == 0  # the input file's hash is part of the run: all rewritten
    same_input = write_packs(changed, out, IDS)
    assert same_input.skipped == len(IDS)

    # another language is another pack
    assert write_packs(changed, out, IDS, lang="zh").skipped == 0


def test_a_corrupt_manifest_means_write_everything(sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "packs"
    write_packs(sample, out, IDS[:2])
    (out / MANIFEST).write_text("{not json", encoding="utf-8")
    assert write_packs(sample, out, IDS[:2]).skipped == 0


def test_duplicate_ids_are_packed_once(sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    written = write_packs(sample, tmp_path, ["GS-001", "GS-001"], formats=("html",))
    assert [p.name for p in written] == ["GS-001.html"]
