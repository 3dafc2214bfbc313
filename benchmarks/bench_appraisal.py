"""Time the financial appraisal: 100,000 projects × 25 operating years by default.

.venv/bin/python benchmarks/bench_appraisal.py --rows 100000 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import polars as pl

from greenscreen.appraisal import AppraisalConfig, appraise


def synthetic(rows: int, seed: int = 11) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    capacity = rng.uniform(10, 500, rows)
    capex = capacity * rng.uniform(3.5e6, 6e6, rows)
    return pl.DataFrame(
        {
            "project_id": [f"A{i:07d}" for i in range(rows)],
            "capacity_mw": capacity,
            "full_load_hours": rng.uniform(1000, 3500, rows),
            "tariff_per_mwh": rng.uniform(250, 450, rows),
            "total_investment": capex,
            "loan_amount": capex * rng.uniform(0.5, 0.8, rows),
            "interest_rate": rng.uniform(0.03, 0.05, rows),
            "loan_tenor_years": rng.integers(10, 20, rows),
            "grace_period_years": rng.integers(0, 3, rows),
            "annual_opex": capex * 0.02,
            "opex_escalation": np.full(rows, 0.02),
            "degradation_rate": np.full(rows, 0.005),
            "construction_years": rng.integers(1, 3, rows),
            "operating_years": np.full(rows, 25),
            "tax_rate": np.full(rows, 0.25),
            "discount_rate": np.full(rows, 0.06),
            "attributable_tco2e_per_year": capacity * 2000.0,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--profile", default="annuity", choices=["annuity", "equal_principal", "sculpted"]
    )
    args = parser.parse_args()
    frame = synthetic(args.rows)
    config = AppraisalConfig(debt_profile=args.profile)
    for sens in (False, True):
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = appraise(frame, config, sensitivities=sens)
            times.append(time.perf_counter() - start)
        valid = result.metrics["project_irr"].is_not_nan().sum()
        label = "with sensitivities (11 runs)" if sens else "base case"
        print(
            f"{label:28s} rows={args.rows:,} profile={args.profile} "
            f"median={statistics.median(times):.2f}s min={min(times):.2f}s irr_defined={valid:,}"
        )


if __name__ == "__main__":
    main()
