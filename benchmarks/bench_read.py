"""Time read_pipeline on a synthetic pipeline (CSV and Parquet).

    .venv/bin/python benchmarks/bench_read.py --rows 1000000 --repeat 3

Writes the synthetic files to a temporary directory; prints the median wall time per format and
the peak resident memory of this process.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from greenscreen import read_pipeline
from greenscreen.vocabularies import activity_ids, provinces


def synthetic(rows: int, seed: int = 7) -> pl.DataFrame:
    """A seeded mix of activities, provinces, sizes, missing values and ~1 % bad cells."""
    rng = np.random.default_rng(seed)
    acts = np.array(activity_ids())
    provs = np.array(provinces()["name_zh"].to_list())
    capacity = rng.lognormal(3.5, 1.2, rows).round(2).astype(str)
    capacity[rng.random(rows) < 0.2] = ""  # missing
    capacity[rng.random(rows) < 0.005] = "n/a"  # bad
    loan = (rng.lognormal(18, 1.0, rows)).round(0).astype(str)
    loan[rng.random(rows) < 0.005] = "-1"
    days = rng.integers(0, 3650, rows)
    dates = (np.datetime64("2016-01-01") + days).astype(str)
    return pl.DataFrame(
        {
            "project_id": [f"P{i:08d}" for i in range(rows)],
            "activity": acts[rng.integers(0, len(acts), rows)],
            "province": provs[rng.integers(0, len(provs), rows)],
            "capacity_mw": capacity,
            "full_load_hours": rng.uniform(800, 4500, rows).round(0).astype(str),
            "total_investment": (rng.lognormal(19, 1.0, rows)).round(0).astype(str),
            "loan_amount": loan,
            "interest_rate": rng.uniform(0.025, 0.06, rows).round(4).astype(str),
            "approval_date": dates,
            "operating_years": rng.integers(10, 30, rows).astype(str),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    frame = synthetic(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        files = {"csv": Path(tmp) / "p.csv", "parquet": Path(tmp) / "p.parquet"}
        frame.write_csv(files["csv"])
        frame.write_parquet(files["parquet"])
        for fmt, path in files.items():
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                pipeline = read_pipeline(path)
                times.append(time.perf_counter() - start)
            print(
                f"{fmt:8s} rows={args.rows:>9,d} median={statistics.median(times):6.2f}s "
                f"min={min(times):6.2f}s accepted={pipeline.n_accepted:,} "
                f"rejected={pipeline.n_rejected:,}"
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"peak RSS {peak:.2f} GiB")


if __name__ == "__main__":
    main()
