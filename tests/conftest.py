"""Shared fixtures: small pipelines written in the formats analysts send."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

GOOD_ROWS = [
    # project_id, activity, province, capacity_mw, loan_amount, approval_date
    ("P01", "solar_pv", "陕西", "50", "105000000", "2023-09-15"),
    ("P02", "wind_onshore", "内蒙古", "200", "900000000", "2025-11-01"),
    ("P03", "hydropower", "Yunnan", "120", "800000000", "2025-10-28"),
    ("P04", "battery_storage", "上海市", "10", "25000000", "2025-10-20"),
    ("P05", "building_new", "500000", "", "380000000", "2025-12-10"),  # GB/T 2260 code
    ("P06", "ev_truck", "Hebei", "", "66000000", "2025-11-05"),
    ("P07", "coal_power", "山东省", "1320", "3700000000", "2025-11-15"),
    ("P08", "data_centre", "Guizhou", "40", "1500000000", "2025-12-01"),
    ("P09", "nuclear", "福建", "1200", "14000000000", "2025-11-30"),
    ("P10", "biogas", "河南", "2", "28000000", "2025-11-03"),
]


@pytest.fixture(autouse=True)
def _greenscreen_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Every test (and every CLI subprocess, which inherits the environment) registers its runs
    in a register of its own, never in the real ~/.greenscreen."""
    home = tmp_path_factory.mktemp("greenscreen-home")
    monkeypatch.setenv("GREENSCREEN_HOME", str(home))
    return home


HEADER = ("project_id", "activity", "province", "capacity_mw", "loan_amount", "approval_date")


def write_csv(path: Path, header: tuple[str, ...], rows: list[tuple[str, ...]], enc: str) -> Path:
    lines = [",".join(header)] + [",".join(row) for row in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode(enc))
    return path


@pytest.fixture
def good_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "good.csv", HEADER, GOOD_ROWS, "utf-8")


@pytest.fixture
def good_frame() -> pl.DataFrame:
    return pl.DataFrame([dict(zip(HEADER, row, strict=True)) for row in GOOD_ROWS])


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m greenscreen ARGS`` as a user runs it: exit code, stdout, stderr."""
    return subprocess.run(
        [sys.executable, "-m", "greenscreen", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )
