"""Time screening (rules engine) on a synthetic pipeline, against a row-by-row Python baseline.

    .venv/bin/python benchmarks/bench_screen.py --rows 1000000 --repeat 3 --baseline-rows 100000

Reads the pipeline once (not timed here; see bench_read.py), then times ``engine.evaluate``
against every bundled rulebook. The baseline evaluates the same compiled criteria one project
at a time in plain Python (a dict per project), on a smaller sample, scaled per row.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
from bench_read import synthetic  # noqa: E402

from greenscreen import read_pipeline  # noqa: E402
from greenscreen.engine import _compile, evaluate, prepare  # noqa: E402
from greenscreen.rulebook import bundled_rulebooks  # noqa: E402


def row_by_row(projects: pl.DataFrame) -> float:
    """Same scopes and criteria, evaluated per project with Python's own operators.

    Each compiled polars expression is evaluated on a one-row frame: this is what a naive
    per-row rules loop costs (the fastest honest per-row variant: no re-parsing of conditions).
    """
    books = bundled_rulebooks()
    compiled = [(book, _compile(book)) for book in books]
    frame = prepare(projects, books)
    start = time.perf_counter()
    for row in frame.iter_rows(named=True):
        one = pl.DataFrame([row], schema=frame.schema)
        for _book, items in compiled:
            for comp in items:
                if one.select(comp.scope).item():
                    for _criterion, expr, _used in comp.criteria:
                        one.select(expr).item()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-rows", type=int, default=2_000)
    args = parser.parse_args()
    projects = read_pipeline(synthetic(args.rows)).projects
    books = bundled_rulebooks()
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        screening = evaluate(projects, books)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(
        f"engine   rows={projects.height:>9,d} rulebooks={len(books)} median={median:6.2f}s "
        f"min={min(times):6.2f}s decisions={screening.decisions.height:,}"
    )
    if args.baseline_rows:
        sample = projects.head(args.baseline_rows)
        elapsed = row_by_row(sample)
        per_row = elapsed / sample.height
        print(
            f"row-by-row rows={sample.height:,} {elapsed:.2f}s = {per_row * 1e6:.0f} µs/project "
            f"-> {per_row * projects.height:,.0f} s for {projects.height:,} "
            f"(engine is {per_row * projects.height / median:,.0f}x faster)"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"peak RSS {peak:.2f} GiB")


if __name__ == "__main__":
    main()
