"""End to end: `greenscreen screen` on a synthetic pipeline, median of several runs, peak
memory, against the bare polars floor (read the same file, compute as many column
expressions as screening adds, write the same results files).

.venv/bin/python benchmarks/bench_e2e.py --rows 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
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


def _cli(pipeline: Path, out: Path, *extra: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "greenscreen", "screen", str(pipeline), "--out", str(out), "-q"]
        + list(extra),
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"greenscreen failed with exit code {done.returncode}")
    return time.perf_counter() - start


def _floor(pipeline: Path, out: Path, expressions: int) -> float:
    """Read as text, cast, compute `expressions` columns of arithmetic and conditions, write
    Parquet and CSV: what any polars job over this file costs."""
    start = time.perf_counter()
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
    frame = frame.with_columns(exprs)
    frame.write_parquet(out / "results.parquet", statistics=False)
    frame.write_csv(out / "results.csv", include_bom=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-rows", type=int, help="also time --batch-rows N")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = Path(tmp) / "pipeline.csv"
        synthetic(args.rows).write_csv(pipeline)
        runs = [_cli(pipeline, Path(tmp) / f"out{i}") for i in range(args.repeat)]
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
        results = pl.read_parquet_schema(Path(tmp) / "out0" / "results.parquet")
        added = len(results) - len(pl.read_csv(pipeline, n_rows=1).columns)
        print(
            f"greenscreen screen rows={args.rows:,} median {statistics.median(runs):.1f}s "
            f"(runs {', '.join(f'{r:.1f}' for r in runs)}) peak RSS {peak:.2f} GiB"
        )
        floors = []
        for i in range(args.repeat):
            out = Path(tmp) / f"floor{i}"
            out.mkdir()
            floors.append(_floor(pipeline, out, added))
        floor = statistics.median(floors)
        print(
            f"polars floor ({added} expressions, same read and result files) median "
            f"{floor:.1f}s; greenscreen / floor = {statistics.median(runs) / floor:.1f}x"
        )
        if args.batch_rows:
            batched = [
                _cli(pipeline, Path(tmp) / f"b{i}", "--batch-rows", str(args.batch_rows))
                for i in range(args.repeat)
            ]
            print(f"--batch-rows {args.batch_rows:,}: median {statistics.median(batched):.1f}s")


if __name__ == "__main__":
    main()
