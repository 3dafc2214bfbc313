"""Time the avoided-emissions estimate on a synthetic pipeline.

.venv/bin/python benchmarks/bench_emissions.py --rows 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_read import synthetic  # noqa: E402

from greenscreen import read_pipeline  # noqa: E402
from greenscreen.emissions import EmissionsConfig, estimate  # noqa: E402
from greenscreen.engine import infer_activity  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    projects = infer_activity(read_pipeline(synthetic(args.rows)).projects)
    for policy in ("combined_margin", "grid_average"):
        config = EmissionsConfig(policy=policy)  # type: ignore[arg-type]
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = estimate(projects, config)
            times.append(time.perf_counter() - start)
        estimated = result["avoided_tco2e_per_year"].is_not_null().sum()
        print(
            f"{policy:16s} rows={result.height:,} estimated={estimated:,} "
            f"median={statistics.median(times):.2f}s min={min(times):.2f}s"
        )


if __name__ == "__main__":
    main()
