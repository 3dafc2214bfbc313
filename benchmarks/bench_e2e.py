"""End to end: `greenscreen screen` on a synthetic pipeline against the bare polars floor,
with a profile of where the time goes.

.venv/bin/python benchmarks/bench_e2e.py --rows 1000000 --repeat 3            # Parquet input
.venv/bin/python benchmarks/bench_e2e.py --rows 1000000 --repeat 3 --format csv
.venv/bin/python benchmarks/bench_e2e.py --rows 1000000 --repeat 1 --with-finance

Three measurements on the same seeded file (``bench_read.synthetic``: 35 activities, 34
provinces, ~1 % bad cells):

1. the real command, ``python -m greenscreen screen FILE --out DIR -q --no-register`` (read,
   validate, 7 rulebooks, emissions, programmes, appraisal, every default output), ``--repeat``
   times: median wall time and the peak RSS of the child processes;
2. the **polars floor** (issue 23's definition): read the same file, cast the numeric columns,
   compute 40 column expressions (arithmetic and conditions), write Parquet — what any polars
   job over this file costs on this machine at this moment, timed beside the command;
3. a **stage profile** in a fresh process through the Python API: ``screen(on_stage=…)`` for
   read, rulebooks, emissions, programmes, appraisal, then every output file written by
   ``ScreenResult.write`` timed one by one (wall and CPU seconds).

``--with-finance`` adds a tariff, opex and loan terms to every row so that every project is
valued by the appraisal (the synthetic pipeline has none: without them the appraisal only
names the missing inputs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
from bench_read import synthetic  # noqa: E402

NUMERIC = ["capacity_mw", "full_load_hours", "total_investment", "loan_amount", "interest_rate"]
STAGES = ("read", "rulebooks", "emissions", "subsidies", "appraisal")


def _pipeline(rows: int, fmt: str, finance: bool, folder: Path) -> Path:
    frame = synthetic(rows)
    if finance:  # as text, like the rest of the synthetic file
        frame = frame.with_columns(
            (pl.int_range(pl.len()) % 200 + 250).cast(pl.String).alias("tariff_per_mwh"),
            (pl.col("total_investment").cast(pl.Float64, strict=False) * 0.02)
            .cast(pl.String)
            .alias("annual_opex"),
            pl.lit("15").alias("loan_tenor_years"),
        )
    path = folder / f"pipeline.{fmt}"
    frame.write_parquet(path) if fmt == "parquet" else frame.write_csv(path)
    return path


def _cli(pipeline: Path, out: Path, *extra: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "greenscreen", "screen", str(pipeline), "--out", str(out), "-q"]
        + ["--no-register", *extra],
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"greenscreen failed with exit code {done.returncode}")
    return time.perf_counter() - start


def _floor(pipeline: Path, out: Path, expressions: int = 40) -> float:
    """Read, cast, `expressions` columns of arithmetic and conditions, write Parquet."""
    start = time.perf_counter()
    if pipeline.suffix == ".parquet":
        frame = pl.read_parquet(pipeline)
    else:
        frame = pl.read_csv(pipeline, infer_schema=False)
    frame = frame.with_columns(pl.col(NUMERIC).cast(pl.Float64, strict=False))
    exprs = []
    for i in range(expressions):
        a, b = NUMERIC[i % len(NUMERIC)], NUMERIC[(i + 1) % len(NUMERIC)]
        if i % 3 == 0:
            exprs.append((pl.col(a) * (i + 1) / pl.col(b)).alias(f"x{i}"))
        elif i % 3 == 1:
            exprs.append(
                pl.when(pl.col(a) > i).then(pl.lit("pass")).otherwise(pl.lit("fail")).alias(f"x{i}")
            )
        else:
            exprs.append((pl.col(a).fill_null(0) + pl.col(b).fill_null(0)).alias(f"x{i}"))
    frame.with_columns(exprs).write_parquet(out / "floor.parquet", statistics=False)
    return time.perf_counter() - start


def _profile(pipeline: Path, out: Path) -> None:
    """In this process: every stage and every output file, as JSON lines on stdout."""
    import greenscreen.report as report
    import greenscreen.run as run

    def timed(writer_module: object) -> None:
        original = writer_module.atomic_write  # type: ignore[attr-defined]

        def atomic_write(path: Path, write: object) -> None:
            wall, cpu = time.perf_counter(), time.process_time()
            original(path, write)
            _emit(f"write {path.name}", wall, cpu)

        writer_module.atomic_write = atomic_write  # type: ignore[attr-defined]

    timed(run)
    timed(report)
    last: list = []

    def on_stage(name: str) -> None:
        if last:
            _emit(*last)
        last[:] = [name, time.perf_counter(), time.process_time()]

    result = run.screen(pipeline, on_stage=on_stage)
    _emit(*last)
    wall, cpu = time.perf_counter(), time.process_time()
    result.write(out)
    _emit("write (all)", wall, cpu)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(json.dumps({"stage": "peak RSS GiB", "wall": peak, "cpu": None}), flush=True)


def _emit(stage: str, wall: float, cpu: float) -> None:
    print(
        json.dumps(
            {
                "stage": stage,
                "wall": time.perf_counter() - wall,
                "cpu": time.process_time() - cpu,
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    parser.add_argument("--with-finance", action="store_true")
    parser.add_argument("--batch-rows", type=int, help="also time --batch-rows N")
    parser.add_argument("--profile", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.profile:
        _profile(*args.profile)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pipeline = _pipeline(args.rows, args.format, args.with_finance, folder)
        runs, floors = [], []
        for i in range(args.repeat):  # alternated, so both see the same machine
            # each measurement starts with the page cache written back: the previous run's
            # ~130 MB of outputs are otherwise flushed during the next one (on this VM's disk
            # 1-2 s of it; any run's own writes are flushed after it ends, not timed)
            os.sync()
            runs.append(_cli(pipeline, folder / f"out{i}"))
            os.sync()
            floors.append(_floor(pipeline, folder))
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
        run, floor = statistics.median(runs), statistics.median(floors)
        print(
            f"greenscreen screen rows={args.rows:,} ({args.format}"
            f"{', with finance' if args.with_finance else ''}): median {run:.1f} s "
            f"(runs {', '.join(f'{r:.1f}' for r in runs)}), peak RSS {peak:.2f} GiB"
        )
        print(
            f"polars floor (read, 40 expressions, write Parquet): median {floor:.2f} s "
            f"(runs {', '.join(f'{r:.2f}' for r in floors)}); greenscreen / floor = "
            f"{run / floor:.1f}x"
        )
        print(f"written: {', '.join(sorted(p.name for p in (folder / 'out0').iterdir()))}")
        if args.batch_rows:
            batched = [
                _cli(pipeline, folder / f"b{i}", "--batch-rows", str(args.batch_rows))
                for i in range(args.repeat)
            ]
            print(f"--batch-rows {args.batch_rows:,}: median {statistics.median(batched):.1f} s")
        profile = subprocess.run(
            [sys.executable, __file__, "--profile", str(pipeline), str(folder / "profile")],
            check=True,
            capture_output=True,
            text=True,
        )
        print(f"{'stage profile (one run, Python API)':38s} {'wall s':>8s} {'CPU s':>8s}")
        for line in profile.stdout.splitlines():
            row = json.loads(line)
            cpu = "" if row["cpu"] is None else f"{row['cpu']:8.2f}"
            print(f"  {row['stage']:36s} {row['wall']:8.2f} {cpu}")


if __name__ == "__main__":
    main()
