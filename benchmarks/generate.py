"""Write a seeded synthetic pipeline (realistic mix of activities, provinces, sizes, missing
fields and ~1 % bad cells) for the benchmarks.

.venv/bin/python benchmarks/generate.py --rows 1000000 --out p1m.csv   # or .parquet
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_read import synthetic  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="a .csv or .parquet path")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    frame = synthetic(args.rows, seed=args.seed)
    if args.out.suffix == ".parquet":
        frame.write_parquet(args.out)
    else:
        frame.write_csv(args.out)
    print(f"wrote {args.rows:,} rows to {args.out}")


if __name__ == "__main__":
    main()
