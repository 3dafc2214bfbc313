"""Issue 19: output sets and careless use.

One output folder holds one run: its files appear together (a hidden sibling folder is
swapped in), two runs cannot write into one folder at once, an interrupted or killed run
leaves the previous set, nothing of an earlier run is left beside a new run.json, and pack
names never collide. The cases are listed in ``tests/data/adversarial/README.md``.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import GOOD_ROWS, HEADER, run_cli, write_csv
from hypothesis import given, settings
from hypothesis import strategies as st

from greenscreen import GreenscreenError, screen
from greenscreen._outputs import atomic_write, output_set
from greenscreen._resources import data_file
from greenscreen.batch import screen_batched
from greenscreen.report import write_packs
from greenscreen.report._files import safe_stem

ROWS: list[tuple[str, ...]] = list(GOOD_ROWS)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones too) and its bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def siblings(out: Path) -> list[str]:
    """Hidden folders of greenscreen runs next to ``out``."""
    return sorted(p.name for p in out.parent.iterdir() if ".greenscreen-" in p.name)


def assert_one_run(out: Path) -> None:
    """Every entry of the folder is one run.json lists, and every listed entry is there."""
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    present = {p.name + ("/" if p.is_dir() else "") for p in out.iterdir()}
    assert present == set(record["outputs"])
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


@pytest.fixture(scope="module")
def results() -> tuple[Any, Any]:
    """Two different runs: all ten good rows, and the first four."""
    frame = pl.DataFrame([dict(zip(HEADER, row, strict=True)) for row in GOOD_ROWS])
    return screen(frame, sensitivities=True), screen(frame.head(4))


# --------------------------------------------------------------------------------------------
# 16: two runs into one folder
def test_a_second_run_into_a_folder_in_use_stops_with_a_clear_error(
    results: tuple[Any, Any], tmp_path: Path
) -> None:
    """Was: two runs into one --out interleaved (results of one, run.json of the other)."""
    first, _ = results
    out = tmp_path / "out"
    first.write(out)
    before = tree(out)
    path = write_csv(tmp_path / "p.csv", HEADER, ROWS[:2], "utf-8")
    with output_set(out):  # another run holding the folder
        done = run_cli("screen", str(path), "--out", str(out), "-q")
    assert done.returncode == 1, done.stderr
    assert f"is in use by another greenscreen run (pid {os.getpid()})" in done.stderr
    assert "Traceback" not in done.stderr
    assert tree(out) == before and siblings(out) == []
    with output_set(out), pytest.raises(GreenscreenError, match="in use"):
        first.write(out)  # the Python API too
    assert tree(out) == before


# --------------------------------------------------------------------------------------------
# 17: interrupted writes
def test_an_interrupted_write_leaves_the_previous_set(
    results: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: Ctrl-C while writing portfolio.xlsx left new results beside old decisions and
    run.json."""
    first, second = results
    out = tmp_path / "out"
    first.write(out)
    before = tree(out)

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("greenscreen.report.write_portfolio", interrupted)
    with pytest.raises(KeyboardInterrupt):
        second.write(out)
    assert tree(out) == before
    assert siblings(out) == []
    # a first run interrupted leaves no folder at all
    with pytest.raises(KeyboardInterrupt):
        second.write(tmp_path / "new")
    assert not (tmp_path / "new").exists() and siblings(out) == []


def test_a_second_interrupt_does_not_skip_the_clean_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: a second KeyboardInterrupt inside atomic_write's clean-up left the temporary."""
    unlink = pathlib.Path.unlink
    calls = []

    def impatient(self: Path, missing_ok: bool = False) -> None:
        calls.append(self)
        if len(calls) == 1:
            raise KeyboardInterrupt  # Ctrl-C pressed again during the clean-up
        unlink(self, missing_ok=missing_ok)

    def write(path: str) -> None:
        Path(path).write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setattr(pathlib.Path, "unlink", impatient)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "a.csv", write)
    assert list(tmp_path.iterdir()) == [] and len(calls) == 2


def test_a_failed_commit_leaves_the_previous_set(
    results: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = results
    out = tmp_path / "out"
    first.write(out)
    before = tree(out)

    def refused(*args: Any) -> None:
        raise OSError(16, "Device or resource busy")

    monkeypatch.setattr("greenscreen._outputs._exchange", refused)
    with pytest.raises(GreenscreenError, match="cannot replace the outputs"):
        second.write(out)
    assert tree(out) == before and siblings(out) == []


def test_what_a_killed_run_left_is_removed_by_the_next_run(
    results: tuple[Any, Any], tmp_path: Path
) -> None:
    """SIGKILL runs no clean-up: the killed run's hidden folder stays until the next run."""
    first, second = results
    out = tmp_path / "out"
    first.write(out)
    before = tree(out)
    left = tmp_path / ".out.greenscreen-new-99999"  # a killed run's half-written set
    left.mkdir()
    (left / "results.parquet").write_bytes(b"half")
    assert tree(out) == before  # the killed run never touched the folder
    second.write(out)
    assert siblings(out) == [] and not left.exists()
    assert_one_run(out)


# --------------------------------------------------------------------------------------------
# 18: nothing stale
def test_a_rerun_leaves_nothing_of_the_previous_run(tmp_path: Path) -> None:
    """Was: a rerun without --sensitivities, above --portfolio-max-rows or without --packs
    left sensitivities.parquet, portfolio.xlsx and the packs portfolio.html links to."""
    path = write_csv(tmp_path / "p.csv", HEADER, ROWS[:3], "utf-8")
    out = tmp_path / "out"
    full = run_cli("screen", str(path), "--out", str(out), "--packs", "-q")
    assert full.returncode == 0, full.stderr
    assert {"sensitivities.parquet", "portfolio.xlsx", "packs"} <= {p.name for p in out.iterdir()}
    assert_one_run(out)
    (out / "notes.txt").write_text("the analyst's notes", encoding="utf-8")
    lean = ("--portfolio-max-rows", "2", "-q")
    done = run_cli("screen", str(path), "--out", str(out), *lean)
    assert done.returncode == 0, done.stderr
    names = {p.name for p in out.iterdir()}
    assert not {"sensitivities.parquet", "portfolio.xlsx", "packs"} & names
    assert (out / "notes.txt").read_text(encoding="utf-8") == "the analyst's notes"  # kept
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert "notes.txt" not in record["outputs"]
    assert names - {"notes.txt"} == {n.rstrip("/") for n in record["outputs"]}
    assert siblings(out) == []


def test_packs_of_the_previous_set_are_reused_not_rewritten(
    results: tuple[Any, Any], tmp_path: Path
) -> None:
    first, _ = results
    out = tmp_path / "out"
    first.write(out, packs=True)
    stamps = {p.name: p.stat().st_ino for p in (out / "packs").glob("*.xlsx")}
    assert len(stamps) == first.results.height
    first.write(out, packs=True)
    assert {p.name: p.stat().st_ino for p in (out / "packs").glob("*.xlsx")} == stamps
    assert_one_run(out)


def test_a_folder_that_is_not_an_output_folder_is_not_taken_over(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", HEADER, ROWS[:2], "utf-8")
    done = run_cli("screen", str(path), "--out", str(tmp_path), "-q")  # holds p.csv
    assert done.returncode == 1
    assert "holds files greenscreen did not write (p.csv)" in done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["p.csv"]
    work = tmp_path / "work"
    work.mkdir()
    here = run_cli("screen", str(path), "--out", ".", "-q", cwd=work)
    assert here.returncode == 1 and "not the current folder" in here.stderr
    assert list(work.iterdir()) == []


# --------------------------------------------------------------------------------------------
# Careless --out values
def test_out_paths_that_cannot_be_output_folders(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", HEADER, ROWS[:2], "utf-8")
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "loop")
    done = run_cli("screen", str(path), "--out", str(loop / "out"), "-q")
    assert done.returncode == 1 and "cannot use" in done.stderr, done.stderr
    a_file = run_cli("screen", str(path), "--out", str(path), "-q")
    assert a_file.returncode == 2 and "is a file" in a_file.stderr  # click's usage error
    with pytest.raises(GreenscreenError, match="is a file"):
        screen_batched(path, path)
    assert "Traceback" not in done.stderr + a_file.stderr


def test_a_read_only_output_folder_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", HEADER, ROWS[:2], "utf-8")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    if os.access(locked, os.W_OK):
        pytest.skip("running as root: permissions are not enforced")
    done = run_cli("screen", str(path), "--out", str(locked), "-q")
    assert done.returncode == 1 and "read-only" in done.stderr, done.stderr
    assert list(locked.iterdir()) == [] and "Traceback" not in done.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE as a stand-in for a full disk")
def test_a_full_disk_is_a_clear_error_and_keeps_the_previous_set(
    results: tuple[Any, Any], tmp_path: Path
) -> None:
    """Was: exit 3, "ComputeError: parquet: ... Invalid thrift: transport error"."""
    import resource

    def small_files() -> None:  # files over 20 kB fail with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    first, _ = results
    out = tmp_path / "out"
    first.write(out)
    before = tree(out)
    sample = str(data_file("sample_pipeline.csv"))
    for extra in ([], ["--batch-rows", "10"]):
        done = subprocess.run(
            [sys.executable, "-m", "greenscreen", "screen", sample, "--out", str(out), *extra],
            preexec_fn=small_files,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 1, done.stderr
        assert "cannot write" in done.stderr and "File too large" in done.stderr
        assert tree(out) == before and siblings(out) == []
    packs = subprocess.run(
        [
            sys.executable,
            "-m",
            "greenscreen",
            "pack",
            sample,
            "--all",
            "--out",
            str(tmp_path / "p"),
        ],
        preexec_fn=small_files,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert packs.returncode == 1 and "cannot write" in packs.stderr, packs.stderr
    assert not [p for p in (tmp_path / "p").iterdir() if ".tmp" in p.name]


def test_an_output_folder_behind_a_symlink_stays_a_symlink(
    results: tuple[Any, Any], tmp_path: Path
) -> None:
    first, second = results
    real = tmp_path / "disk" / "out"
    link = tmp_path / "out"
    real.mkdir(parents=True)
    link.symlink_to(real)
    first.write(link)
    second.write(link)
    assert link.is_symlink() and (real / "run.json").is_file()
    assert pl.read_parquet(link / "results.parquet").height == second.results.height


# --------------------------------------------------------------------------------------------
# 8: the batch parts folder
@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_a_planted_parts_entry_is_never_followed(tmp_path: Path, kind: str) -> None:
    """Was: .greenscreen-parts as a file or a symlink in --out made --batch-rows fail with an
    internal error (and rmtree was pointed at it)."""
    path = write_csv(tmp_path / "p.csv", HEADER, ROWS, "utf-8")
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (outside / "keep.txt").write_text("not greenscreen's", encoding="utf-8")
    parts = out / ".greenscreen-parts"
    if kind == "file":
        parts.write_text("x", encoding="utf-8")
    else:
        parts.symlink_to(outside, target_is_directory=True)
    done = run_cli("screen", str(path), "--out", str(out), "--batch-rows", "3", "-q")
    assert done.returncode == 0, done.stderr
    assert not os.path.lexists(parts)
    assert [p.name for p in outside.iterdir()] == ["keep.txt"]
    assert pl.read_parquet(out / "results.parquet").height == len(GOOD_ROWS)
    assert_one_run(out)


# --------------------------------------------------------------------------------------------
# 19: pack names
def test_pack_names_never_collide(tmp_path: Path) -> None:
    """Was: 'GS 001' and 'GS_001_22a85125' both became GS_001_22a85125.*, ids differing by
    case collided on Windows and macOS, and 78 Chinese characters failed (> 255 bytes)."""
    long_id = "光伏" * 60  # 360 bytes of UTF-8
    ids = ["GS 001", "GS_001_22a85125", "ab-1", "AB-1", "Ab-1", "INDEX", long_id, long_id + "x"]
    result = screen([{"project_id": pid, "activity": "solar_pv"} for pid in ids])
    written = write_packs(result, tmp_path / "packs", None, formats=("html",))
    names = [p.name for p in written]
    assert len({n.casefold() for n in names}) == len(names) == len(ids) + 1  # and index.html
    assert all(len(n.encode("utf-8")) <= 150 for n in names)
    assert safe_stem("GS-003") == "GS-003"  # upper-case ids keep their name
    assert [safe_stem(pid) for pid in ids] == [p.stem for p in written[:-1]]  # stable
    index = (tmp_path / "packs" / "index.html").read_text(encoding="utf-8")
    for pid in ids:  # index.html links every project to its own pack
        html = (tmp_path / "packs" / f"{safe_stem(pid)}.html").read_text(encoding="utf-8")
        assert f"{safe_stem(pid)}.html" in index and pid in html


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=120), min_size=1, max_size=4, unique=True))
def test_distinct_ids_get_distinct_case_insensitive_names(base: list[str]) -> None:
    # with the ids most likely to collide: case variants and other ids' names
    variants = [v for b in base for v in (b, b.upper(), b.lower(), b.swapcase(), safe_stem(b))]
    ids = list(dict.fromkeys(variants))
    stems = [safe_stem(pid) for pid in ids]
    folded = {unicodedata.normalize("NFD", s).casefold() for s in stems}
    assert len(folded) == len(ids)
    assert all(len(s.encode("utf-8")) <= 130 for s in stems)
    assert stems == [safe_stem(pid) for pid in ids]


# --------------------------------------------------------------------------------------------
# 20: the template and exit codes
def test_template_refuses_to_overwrite_a_filled_workbook(tmp_path: Path) -> None:
    target = tmp_path / "filled.xlsx"
    target.write_bytes(b"the analyst's filled pipeline")
    done = run_cli("template", str(target))
    assert done.returncode == 1 and "--force" in done.stderr and "Traceback" not in done.stderr
    assert target.read_bytes() == b"the analyst's filled pipeline"
    forced = run_cli("template", str(target), "--force")
    assert forced.returncode == 0 and target.stat().st_size > 10_000


def test_strict_rejects_and_usage_errors_have_their_own_exit_codes(tmp_path: Path) -> None:
    rows: list[tuple[str, ...]] = [*ROWS[:2], ("P11", "solar", "Henan", "1", "1", "2025-01-01")]
    path = write_csv(tmp_path / "p.csv", HEADER, rows, "utf-8")
    strict = run_cli("screen", str(path), "--out", str(tmp_path / "o"), "--strict", "-q")
    assert strict.returncode == 4 and "1 rows rejected (strict mode)" in strict.stderr
    usage = run_cli("screen", str(path), "--out", str(tmp_path / "o"), "--lang", "fr")
    assert usage.returncode == 2 and "Invalid value for '--lang'" in usage.stderr


# --------------------------------------------------------------------------------------------
# Randomised: runs killed at any point
def _differ(current: dict[str, bytes], references: dict[str, dict[str, bytes]]) -> dict[str, Any]:
    """What a folder lacks, has extra and has different from each reference set."""
    return {
        name: (
            sorted(set(ref) - set(current)),
            sorted(set(current) - set(ref)),
            sorted(f for f in set(ref) & set(current) if ref[f] != current[f]),
        )
        for name, ref in references.items()
    }


@pytest.mark.slow
def test_runs_killed_at_random_points_leave_a_complete_set(tmp_path: Path) -> None:
    """Runs of two pipelines into one folder, interrupted (SIGINT, SIGTERM) or killed
    (SIGKILL) after a random delay, often while writing: the folder always holds one complete
    set — byte for byte what an uninterrupted run of one of the pipelines writes. SIGINT and
    SIGTERM leave no temporary folder; SIGKILL leaves a hidden one, removed by the next run."""
    rows = pl.read_csv(data_file("sample_pipeline.csv"), infer_schema_length=0)
    sources = {"a": tmp_path / "a.csv", "b": tmp_path / "b.csv"}
    rows.write_csv(sources["a"])
    rows.head(6).write_csv(sources["b"])
    extra = {"a": ["--sensitivities"], "b": ["--packs"]}

    def args(name: str, out: Path) -> list[str]:
        return ["screen", str(sources[name]), "--out", str(out), "-q", *extra[name]]

    def command(name: str, out: Path) -> list[str]:  # a process, to be signalled
        return [sys.executable, "-m", "greenscreen", *args(name, out)]

    # the uninterrupted runs need no process of their own
    references = {}
    for name in sources:
        done = run_cli(*args(name, tmp_path / f"ref-{name}"))
        assert done.returncode == 0, done.stderr
        references[name] = tree(tmp_path / f"ref-{name}")
    out = tmp_path / "work" / "out"
    out.parent.mkdir()
    assert run_cli(*args("a", out)).returncode == 0

    rng = random.Random(19)
    killed: set[str] = set()
    started = time.monotonic()
    kinds = [signal.SIGINT, signal.SIGKILL, signal.SIGTERM] * 3
    for k, signum in enumerate(kinds):
        if time.monotonic() - started > 30:
            break
        name = rng.choice(["a", "b"])
        process = subprocess.Popen(command(name, out), stderr=subprocess.PIPE, text=True)
        if k % 2:  # wait for the write to begin, then a little more
            deadline = time.monotonic() + 30
            while f".out.greenscreen-new-{process.pid}" not in siblings(out):
                if process.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            time.sleep(rng.uniform(0, 0.8))
        else:
            time.sleep(rng.uniform(0.5, 6))
        if process.poll() is None:
            process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode != 3 and "internal error" not in stderr, stderr
        current = tree(out)
        assert current in (references["a"], references["b"]), (signum, _differ(current, references))
        assert_one_run(out)
        if signum == signal.SIGKILL:
            killed.add(str(process.pid))
        # only killed runs leave a hidden folder (until a later run gets to writing)
        assert {s.rsplit("-", 1)[-1] for s in siblings(out)} <= killed, siblings(out)
    assert run_cli(*args("b", out)).returncode == 0
    assert tree(out) == references["b"] and siblings(out) == []


def test_results_csv_is_written_up_to_its_row_limit(tmp_path: Path, good_csv: Path) -> None:
    """Issue 23: results.csv (1.3 GB for a million projects, more than any spreadsheet opens)
    is written up to --csv-max-rows projects, 100,000 by default; results.parquet always holds
    every project, and run.json lists what was written. In memory, in batches and from the
    command line alike."""
    result = screen(good_csv)
    n = result.results.height
    result.write(tmp_path / "at", csv_max_rows=n)
    assert pl.read_csv(tmp_path / "at" / "results.csv").height == n
    result.write(tmp_path / "above", csv_max_rows=n - 1)
    assert not (tmp_path / "above" / "results.csv").exists()
    assert pl.read_parquet(tmp_path / "above" / "results.parquet").height == n
    assert_one_run(tmp_path / "above")
    for limit, written in ((n - 1, False), (n, True)):
        out = tmp_path / f"batched{limit}"
        screen_batched(good_csv, out, batch_rows=3, csv_max_rows=limit)
        assert (out / "results.csv").exists() is written
        assert_one_run(out)
    done = run_cli("screen", str(good_csv), "--out", str(tmp_path / "cli"), "--csv-max-rows", "0")
    assert done.returncode == 0, done.stderr
    assert "results.csv not written: above --csv-max-rows 0" in done.stdout
    assert not (tmp_path / "cli" / "results.csv").exists()
    default = run_cli("screen", str(good_csv), "--out", str(tmp_path / "default"))
    assert "; also results.csv" in default.stdout
    assert pl.read_csv(tmp_path / "default" / "results.csv").height == n


def test_parquet_data_files_keep_every_value_in_row_groups_of_fixed_size(tmp_path: Path) -> None:
    """write_parquet re-gathers list columns per row group (a speed fix, issue 23): the file
    must read back exactly, nulls and empty lists included, in row groups of ROW_GROUP_ROWS."""
    import pyarrow.parquet as pq

    from greenscreen._outputs import ROW_GROUP_ROWS, write_parquet

    rows = 2 * ROW_GROUP_ROWS + 7
    lists = [["province"], [], None, ["capex", "tariff_per_mwh", "长文本字段名称超过十二个字节"]]
    frame = pl.DataFrame(
        {
            "project_id": [f"P{i}" for i in range(rows)],
            "missing": [lists[i % 4] for i in range(rows)],
            "value": [None if i % 5 == 0 else i / 3 for i in range(rows)],
        }
    ).with_columns(pl.col("missing").alias("again"))
    write_parquet(frame, tmp_path / "t.parquet")
    back = pl.read_parquet(tmp_path / "t.parquet")
    assert back.equals(frame)
    assert back.schema == frame.schema
    meta = pq.ParquetFile(tmp_path / "t.parquet").metadata
    sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    assert sizes == [ROW_GROUP_ROWS, ROW_GROUP_ROWS, 7]
