"""`greenscreen report` at scale: a seeded loan book over a screened synthetic pipeline.

.venv/bin/python benchmarks/bench_report.py --projects 500000 --loans 1000000

The synthetic pipeline of bench_read.py is screened once (timed separately: it is the
`--pipeline` path's extra cost; the `--results` path reads a previous screen). Then a loan book
of 1-3 loans per project (tranches, 20 % syndicated, 10 % CERF-refinanced, 2021/2025 approval
dates) is written as Parquet and the report is built and written: read and validate the book,
attribute, the five report tables, loans.parquet, report.xlsx and report.html. Peak RSS is the
process maximum (screening included).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
from bench_read import synthetic  # noqa: E402

from greenscreen import screen  # noqa: E402
from greenscreen.report.book import report_book, write_report  # noqa: E402


def loan_book(project_ids: pl.Series, n: int, seed: int = 11) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    projects = project_ids.to_numpy()
    owner = np.concatenate([np.arange(len(projects)), rng.integers(0, len(projects), n)])[:n]
    commitment = np.round(rng.lognormal(17.5, 1.2, n), -3)
    approval = np.datetime64("2023-01-01") + rng.integers(0, 1300, n).astype("timedelta64[D]")
    cerf = rng.random(n) < 0.1
    return pl.DataFrame(
        {
            "loan_id": [f"L{i:07d}" for i in range(n)],
            "project_id": projects[owner],
            "tranche": rng.choice(["A", "B", "C"], n),
            "borrower_type": rng.choice(["国有企业", "民营企业", "小微企业"], n),
            "approval_date": approval,
            "first_drawdown_date": approval + np.timedelta64(30, "D"),
            "interest_rate": np.round(rng.uniform(0.025, 0.045, n), 4),
            "commitment_amount": commitment,
            "outstanding_amount": np.round(commitment * rng.uniform(0.3, 1.0, n), -3),
            "drawn_in_period": np.round(commitment * rng.uniform(0, 0.1, n), -3),
            "repaid_in_period": np.round(commitment * rng.uniform(0, 0.05, n), -3),
            "syndicate_share": np.where(rng.random(n) < 0.2, 0.4, 1.0),
            "cerf_refinanced_amount": np.where(cerf, np.round(commitment * 0.6, -3), np.nan),
        }
    ).with_columns(pl.col("cerf_refinanced_amount").fill_nan(None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--projects", type=int, default=500_000)
    parser.add_argument("--loans", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pipeline = synthetic(args.projects, seed=7)
        start = time.perf_counter()
        results = screen(pipeline).results
        screened = time.perf_counter() - start
        results.write_parquet(folder / "results.parquet")
        ids = results["project_id"]
        book = loan_book(ids, args.loans)
        book.write_parquet(folder / "loans.parquet")
        del pipeline, results
        start = time.perf_counter()
        report = report_book(
            folder / "loans.parquet", "2026-Q3", results=folder / "results.parquet"
        )
        built = time.perf_counter() - start
        write_report(report, folder / "out")
        total = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        assert report.book is not None
        print(
            f"projects screened {ids.len():,} in {screened:.1f} s; loans {args.loans:,} "
            f"({report.book.n_accepted:,} accepted, {report.book.n_rejected:,} rejected): "
            f"report built {built:.1f} s, written {total:.1f} s in all; peak RSS {peak:.2f} GiB"
        )


if __name__ == "__main__":
    main()
