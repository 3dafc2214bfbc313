"""The run register (issue 20): what registering adds to `greenscreen screen`, and the time and
memory of `greenscreen runs diff` between two registered runs.

.venv/bin/python benchmarks/bench_register.py --rows 200000

Runs the real command on a seeded synthetic pipeline: `screen --no-register`, then `screen`
into a fresh register (the same work plus the registration), alternately, and reports both
wall times; then a second pipeline with 1 % of the rows edited is screened and registered and
`runs diff latest~1 latest --out DIR` is timed in a child process (peak RSS from GNU time).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
from bench_read import synthetic  # noqa: E402


def _timed(*args: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of one greenscreen command in a child process (RSS
    from GNU time, this child alone; NaN without it)."""
    time_cmd = ["/usr/bin/time", "-f", "%M"] if Path("/usr/bin/time").is_file() else []
    start = time.perf_counter()
    done = subprocess.run(
        [*time_cmd, sys.executable, "-m", "greenscreen", *args],
        check=False,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"greenscreen {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    return wall, int(last) / 1024**2 if time_cmd and last.isdigit() else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        pipeline = base / "pipeline.csv"
        frame = synthetic(args.rows)
        frame.write_csv(pipeline)
        register = base / "runs.duckdb"
        plain, registered = [], []
        for i in range(args.repeat):
            out = str(base / f"o{i}")
            plain.append(_timed("screen", str(pipeline), "--out", out, "-q", "--no-register")[0])
            reg = ["--register", str(register)]
            registered.append(_timed("screen", str(pipeline), "--out", out, "-q", *reg)[0])
        p, r = statistics.median(plain), statistics.median(registered)
        print(
            f"screen rows={args.rows:,}: --no-register median {p:.1f}s "
            f"({', '.join(f'{x:.1f}' for x in plain)}), registered median {r:.1f}s "
            f"({', '.join(f'{x:.1f}' for x in registered)}): {(r - p) / p:+.1%}"
        )
        edited = frame.with_columns(
            pl.when(pl.int_range(pl.len()) % 100 == 0)
            .then(pl.concat_str(pl.lit("1"), pl.col("capacity_mw")))  # text: "12.5" → "112.5"
            .otherwise(pl.col("capacity_mw"))
            .alias("capacity_mw")
        )
        second = base / "pipeline_v2.csv"
        edited.write_csv(second)
        out = str(base / "o_v2")
        _timed("screen", str(second), "--out", out, "-q", "--register", str(register))
        wall, peak = _timed(
            "runs", "diff", "latest~1", "latest", "--out", str(base / "d"), "--register",
            str(register),
        )  # fmt: skip
        changes = pl.read_parquet(base / "d" / "diff.parquet").height
        size = register.stat().st_size / 1024**2
        print(
            f"runs diff rows={args.rows:,}: {wall:.1f}s, {changes:,} changed projects, "
            f"peak RSS {peak:.2f} GiB; register {size:.0f} MiB for {args.repeat + 1} runs"
        )


if __name__ == "__main__":
    main()
