"""Time the report outputs: portfolio.xlsx, portfolio.html and per-project packs (xlsx, html).

.venv/bin/python benchmarks/bench_excel.py --rows 100000 --packs 50
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_read import synthetic  # noqa: E402

from greenscreen import screen  # noqa: E402
from greenscreen.report import write_packs, write_portfolio_html  # noqa: E402
from greenscreen.report.portfolio import write_portfolio  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--packs", type=int, default=50)
    args = parser.parse_args()
    result = screen(synthetic(args.rows))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = write_portfolio(result, Path(tmp) / "portfolio.xlsx", max_rows=args.rows)
        elapsed = time.perf_counter() - start
        size = path.stat().st_size / 1024**2 if path else 0.0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        print(
            f"portfolio rows={result.results.height:,} {elapsed:.1f}s size={size:.1f} MiB "
            f"peak RSS {peak:.2f} GiB (before writing {before:.2f} GiB)"
        )
        start = time.perf_counter()
        html = write_portfolio_html(result, Path(tmp) / "portfolio.html")
        elapsed = time.perf_counter() - start
        print(f"portfolio.html {elapsed:.2f}s size={html.stat().st_size / 1024**2:.1f} MiB")
        ids = result.results["project_id"].head(args.packs).to_list()
        for fmt in ("xlsx", "html"):
            start = time.perf_counter()
            write_packs(result, Path(tmp) / fmt, ids, formats=(fmt,))
            elapsed = time.perf_counter() - start
            per_pack = elapsed / max(len(ids), 1) * 1000
            print(f"{fmt} packs n={len(ids)} {elapsed:.1f}s = {per_pack:.0f} ms per pack")


if __name__ == "__main__":
    main()
