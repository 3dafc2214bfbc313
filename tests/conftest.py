"""Shared fixtures: small pipelines written in the formats analysts send."""

from __future__ import annotations

import contextlib
import gc
import signal
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click
import polars as pl
import pytest
from click.testing import CliRunner

if TYPE_CHECKING:
    from greenscreen.run import ScreenResult

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


@pytest.fixture(scope="session", autouse=True)
def _load_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The rulebook load cache of the whole session (and its CLI subprocesses) in a folder of
    its own, never the user's ~/.cache: shared by every test, which is safe (an entry is keyed
    by the file's bytes and greenscreen's code) and keeps the suite from parsing the bundled
    rulebooks in every subprocess. Session-scoped, so module-scoped fixtures use it too."""
    folder = tmp_path_factory.mktemp("greenscreen-cache")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GREENSCREEN_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(autouse=True)
def _greenscreen_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Every test (its run_cli calls, and any CLI subprocess, which inherits the environment)
    registers its runs in a register of its own, never in the real ~/.greenscreen."""
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


#: warnings a fresh interpreter does not print (Python's default filters): in a subprocess the
#: others would have reached stderr, so run_cli puts them there too
_HIDDEN_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def _runner() -> CliRunner:
    """A CliRunner keeping stderr apart from stdout (click >= 8.2 always does)."""
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click 8.1
    except TypeError:
        return CliRunner()


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``greenscreen ARGS`` run in this process by click's CliRunner: exit code, stdout, stderr,
    as ``python -m greenscreen ARGS`` gives them (``greenscreen.cli.main``, the console entry
    point, maps errors to messages and exit codes). Saves starting an interpreter and importing
    polars and the rest per call. Tests of process-level behaviour (signals, umask, resource
    limits, concurrent processes, the installed wheel) start a process themselves.

    An exception that escapes ``main`` is raised here (a subprocess would have printed a
    traceback); warnings a fresh interpreter prints are appended to stderr."""
    from greenscreen import cli as cli_module

    # main() exits through sys.exit; CliRunner turns that into the exit code
    entry = click.Command("greenscreen", callback=lambda: cli_module.main(list(args)))
    # state a new process starts without: which run `screen` registers, the signal handlers
    # main() installs (restored for pytest afterwards)
    cli_module._REGISTRATION.clear()
    cli_module._REGISTRATION["enabled"] = False
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with (
            contextlib.chdir(cwd or Path.cwd()),
            warnings.catch_warnings(record=True) as caught,
        ):
            result = _runner().invoke(entry, [], catch_exceptions=False)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        gc.unfreeze()  # main() freezes what is alive for a process about to end; this one goes on
    stderr = result.stderr
    for w in caught:
        if issubclass(w.category, _HIDDEN_WARNINGS):  # to pytest's summary, as before
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        else:
            stderr += warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line)
    return subprocess.CompletedProcess(
        ["greenscreen", *args], result.exit_code, result.stdout, stderr
    )


@pytest.fixture(scope="session")
def sample_result() -> ScreenResult:
    """The bundled sample pipeline screened with the default options, once per session. Tests
    only read it: a ScreenResult is a frozen dataclass and its polars frames are immutable."""
    from greenscreen import screen
    from greenscreen._resources import data_file

    return screen(data_file("sample_pipeline.csv"))


@pytest.fixture(scope="session")
def sample_result_sensitivities() -> ScreenResult:
    """The sample pipeline screened with the tornado table (what packs show), once per session."""
    from greenscreen import screen
    from greenscreen._resources import data_file

    return screen(data_file("sample_pipeline.csv"), sensitivities=True)
