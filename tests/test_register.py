"""The run register (issue 20): runs recorded in DuckDB, compared with causes, exported,
re-screened; safe under concurrency, interruption and schema versions."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import polars as pl
import pytest
from conftest import run_cli

import greenscreen as gs
from greenscreen import register as reg_module
from greenscreen._resources import bundled_dir, data_file
from greenscreen.errors import GreenscreenError

HEADER = (
    "project_id,activity,province,capacity_mw,power_density_w_m2,hydro_run_of_river,"
    "lifecycle_gco2e_per_kwh,eu_dnsh_evidenced,eu_minimum_safeguards,loan_amount,approval_date"
)
ROWS = [
    "H1,hydropower,Yunnan,120,4,false,150,true,true,800000000,2025-11-01",
    "S1,solar_pv,陕西,50,,,,,,105000000,2025-11-15",
    "W1,wind_onshore,内蒙古,200,,,,,,900000000,2025-11-01",
]


def _pipeline(path: Path, rows: list[str] = ROWS) -> Path:
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def _run(source: Path, out: Path, register: Path, **options: object) -> str:
    """Screen, write and register as the CLI does (tables read back from the written files)."""
    result = gs.screen(source, **options)  # type: ignore[arg-type]
    result.write(out)
    return result.register(register, out_dir=out, input_path=source)


def _causes(changes: pl.DataFrame, project: str) -> list[str]:
    return changes.filter(pl.col("project_id") == project)["causes"].to_list()[0]


def test_identical_runs_give_an_empty_diff_and_export_equals_the_outputs(tmp_path: Path) -> None:
    source = _pipeline(tmp_path / "p.csv")
    register = tmp_path / "runs.duckdb"
    first = _run(source, tmp_path / "o1", register)
    second = _run(source, tmp_path / "o2", register)
    runs = gs.runs.open(register)
    listed = runs.list()
    assert listed["run_id"].to_list() == [second, first] or set(listed["run_id"]) == {first, second}
    compared = runs.diff(first, second)
    assert compared.changes.height == 0
    assert compared.causes.height == 0
    assert compared.matrix.filter(pl.col("status_a") != pl.col("status_b")).height == 0
    # the rulebook version is on every decision row
    decisions = runs.decisions(first)
    assert decisions["rulebook_version"].null_count() == 0
    # the register rewrites the outputs byte for byte
    runs.export(first, tmp_path / "exported")
    original = sorted(p.name for p in (tmp_path / "o1").iterdir())
    assert sorted(p.name for p in (tmp_path / "exported").iterdir()) == original
    for name in original:
        assert (tmp_path / "exported" / name).read_bytes() == (
            tmp_path / "o1" / name
        ).read_bytes(), name
    # and the outputs do not depend on who ran them or when: the second run's are the same
    for name in original:
        assert (tmp_path / "o2" / name).read_bytes() == (tmp_path / "o1" / name).read_bytes()


def test_a_changed_input_row_is_the_cause(tmp_path: Path) -> None:
    register = tmp_path / "runs.duckdb"
    first = _run(_pipeline(tmp_path / "a.csv"), tmp_path / "o1", register)
    # H1's power density corrected from 4 to 6 W/m², its capacity too; S1's name (an input
    # that changes no decision) too: S1 is not a change
    rows = [ROWS[0].replace(",120,4,", ",130,6,"), ROWS[1].replace("S1,", "S1,"), ROWS[2]]
    second = _run(_pipeline(tmp_path / "b.csv", rows), tmp_path / "o2", register)
    changes = gs.runs.open(register).diff(first, second).changes
    assert changes["project_id"].to_list() == ["H1"]
    assert _causes(changes, "H1") == ["input row changed: capacity_mw, power_density_w_m2"]
    assert "eu_taxonomy__status" in changes["outputs_changed"].to_list()[0]
    assert "eu_taxonomy__status: eligible → aligned" in changes["details"].to_list()[0]


def test_a_changed_rulebook_threshold_is_the_cause(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    text = (bundled_dir("taxonomies") / "eu_taxonomy.yaml").read_text(encoding="utf-8")
    assert text.count("condition: power_density_w_m2 > 5") == 1
    (rules / "eu_taxonomy.yaml").write_text(
        text.replace("condition: power_density_w_m2 > 5", "condition: power_density_w_m2 > 3"),
        encoding="utf-8",
    )
    source = _pipeline(tmp_path / "p.csv")
    register = tmp_path / "runs.duckdb"
    first = _run(source, tmp_path / "o1", register)
    second = _run(source, tmp_path / "o2", register, rulebooks=rules)
    compared = gs.runs.open(register).diff(first, second)
    assert compared.changes["project_id"].to_list() == ["H1"]  # 4 W/m²: now above 3
    (cause,) = _causes(compared.changes, "H1")
    assert cause.startswith("rulebook eu_taxonomy changed, same version")
    assert "eu_taxonomy__status" in compared.changes["outputs_changed"].to_list()[0]
    moved = compared.matrix.filter(
        (pl.col("rulebook") == "eu_taxonomy") & (pl.col("status_a") != pl.col("status_b"))
    )
    assert moved.select("status_a", "status_b", "projects").rows() == [("eligible", "aligned", 1)]
    assert moved["loan_amount"].to_list() == [800_000_000]


def test_a_changed_option_is_the_cause_via_the_cli(tmp_path: Path) -> None:
    source = shutil.copy(data_file("sample_pipeline.csv"), tmp_path / "p.csv")  # with finance
    register = tmp_path / "runs.duckdb"
    for out, extra in (("o1", []), ("o2", ["--carbon-price", "61.05"])):
        done = run_cli("screen", str(source), "--out", str(tmp_path / out), "-q", *extra)
        assert done.returncode == 0, done.stderr
    # the default register is $GREENSCREEN_HOME/runs.duckdb (the conftest's, never ~)
    default = Path(os.environ["GREENSCREEN_HOME"]) / "runs.duckdb"
    assert default.is_file() and not register.exists()
    compared = gs.runs.open(default).diff("latest~1", "latest")
    assert compared.changes.height > 0
    for causes in compared.changes["causes"].to_list():
        assert causes == ["option appraisal.carbon_price: 0.0 → 61.05"]
    done = run_cli("runs", "diff", "latest~1", "latest", "--out", str(tmp_path / "d"))
    assert done.returncode == 0, done.stderr
    assert "option appraisal.carbon_price: 0.0 → 61.05" in done.stdout
    assert {p.name for p in (tmp_path / "d").iterdir()} >= {
        "diff.parquet",
        "diff.xlsx",
        "diff.html",
    }
    assert pl.read_parquet(tmp_path / "d" / "diff.parquet").height == compared.changes.height


def test_cli_list_show_export_no_register_and_analyst(tmp_path: Path) -> None:
    source = _pipeline(tmp_path / "p.csv")
    register = tmp_path / "r" / "runs.duckdb"
    out = tmp_path / "o1"
    args = ["screen", str(source), "--out", str(out)]
    assert run_cli(*args, "--register", str(register), "--analyst", "alice", "-q").returncode == 0
    assert run_cli(*args, "--no-register", "-q").returncode == 0
    assert not (Path(os.environ["GREENSCREEN_HOME"]) / "runs.duckdb").exists()
    listed = gs.runs.open(register).list()
    assert listed.height == 1 and listed["analyst"].to_list() == ["alice"]
    run_id = listed["run_id"][0]
    done = run_cli("runs", "list", "--register", str(register), "--analyst", "alice")
    assert done.returncode == 0 and run_id in done.stdout
    done = run_cli("runs", "list", "--register", str(register), "--input", "nothing-like-it")
    assert run_id not in done.stdout
    done = run_cli("runs", "show", run_id[:17], "--register", str(register))
    assert done.returncode == 0, done.stderr
    assert "eu_taxonomy" in done.stdout and "grid_factors" in done.stdout
    done = run_cli(
        "runs", "export", "latest", "--out", str(tmp_path / "e"), "--register", str(register)
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "e" / "results.parquet").read_bytes() == (
        out / "results.parquet"
    ).read_bytes()
    done = run_cli("runs", "show", "nope", "--register", str(register))
    assert done.returncode == 1 and "no run 'nope'" in done.stderr


def test_rescreen_as_of_registers_and_diffs_against_the_original(tmp_path: Path) -> None:
    source = _pipeline(tmp_path / "p.csv")
    register = tmp_path / "runs.duckdb"
    original = _run(source, tmp_path / "o1", register)
    source.unlink()  # the register holds the input: rescreen needs no file
    done = run_cli(
        "rescreen",
        original[:20],
        "--as-of",
        "2025-01-15",
        "--out",
        str(tmp_path / "o2"),
        "--register",
        str(register),
    )
    assert done.returncode == 0, done.stderr
    runs = gs.runs.open(register)
    latest = runs.get("latest").row(0, named=True)
    assert latest["parent_run"] == original
    changes = pl.read_parquet(tmp_path / "o2-diff" / "diff.parquet")
    # approved before 2025-10-01: the 2021 catalogue governs, not the 2025 one
    assert changes.height == 3
    assert changes["details"].to_list()[0] == [
        "cn_gbepc_2021__applies: false → true",
        "cn_gfsp_2025__applies: true → false",
    ]
    assert all(c == ["option as_of: None → 2025-01-15"] for c in changes["causes"].to_list())


def test_rescreen_refuses_a_changed_input_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reg_module, "STORE_INPUT_MAX", 0)  # referenced by path + hash only
    source = _pipeline(tmp_path / "p.csv")
    register = gs.runs.open(tmp_path / "runs.duckdb")
    original = _run(source, tmp_path / "o1", register.path)
    assert register.get(original)["input_stored"].to_list() == [False]
    _pipeline(source, ROWS[:2])
    with pytest.raises(GreenscreenError, match="has changed since run"):
        reg_module.rescreen(register, original, tmp_path / "o2")


def test_concurrent_registration_both_succeed(tmp_path: Path) -> None:
    source = _pipeline(tmp_path / "p.csv")
    register = tmp_path / "runs.duckdb"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "greenscreen", "screen", str(source), "--out"]
            + [str(tmp_path / f"o{i}"), "-q", "--register", str(register)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    runs = gs.runs.open(register)
    listed = runs.list()
    assert listed.height == 2
    assert runs.diff(listed["run_id"][0], listed["run_id"][1]).changes.height == 0


def test_a_killed_registration_leaves_no_half_run(tmp_path: Path) -> None:
    source = _pipeline(tmp_path / "p.csv")
    register = tmp_path / "runs.duckdb"
    _run(source, tmp_path / "o1", register)  # one complete run before
    script = textwrap.dedent(
        f"""
        import os, signal
        import greenscreen as gs
        from greenscreen import register
        register._before_commit = lambda: os.kill(os.getpid(), signal.SIGKILL)
        result = gs.screen({str(source)!r})
        result.register({str(register)!r}, input_path={str(source)!r})
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert done.returncode == -9
    runs = gs.runs.open(register)
    assert runs.list().height == 1
    with duckdb.connect(str(register), read_only=True) as con:
        sources = con.execute("SELECT count(DISTINCT run_id) FROM run_sources").fetchall()
        files = con.execute("SELECT count(DISTINCT run_id) FROM run_tables").fetchall()
    assert sources == files == [(1,)]
    _run(source, tmp_path / "o2", register)  # the register takes new runs, and drops the
    assert runs.list().height == 2  # killed one's table folder
    assert {p.name for p in runs.tables_dir.iterdir()} == set(runs.list()["run_id"])


def _register_with_version(path: Path, version: int) -> None:
    gs.runs.open(path).list()  # nothing yet
    runs = gs.runs.open(path)
    with runs._connect(write=True) as con:
        assert con is not None
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(version)])


def test_an_older_or_newer_register_is_migrated_or_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    newer = tmp_path / "newer.duckdb"
    _register_with_version(newer, reg_module.SCHEMA_VERSION + 1)
    with pytest.raises(GreenscreenError, match="written by a newer greenscreen"):
        gs.runs.open(newer).list()
    older = tmp_path / "older.duckdb"
    _register_with_version(older, 0)
    with pytest.raises(GreenscreenError, match="cannot migrate"):
        gs.runs.open(older).list()
    foreign = tmp_path / "foreign.duckdb"
    with duckdb.connect(str(foreign)) as con:
        con.execute("CREATE TABLE t (x INT)")
    with pytest.raises(GreenscreenError, match="not a greenscreen run register"):
        gs.runs.open(foreign).list()
    # a register of schema 1 opened by a greenscreen whose schema is 2: migrated in place
    current = tmp_path / "v1.duckdb"
    source = _pipeline(tmp_path / "p.csv")
    _run(source, tmp_path / "o1", current)
    monkeypatch.setattr(reg_module, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(
        reg_module, "_MIGRATIONS", {1: ["ALTER TABLE runs ADD COLUMN ticket VARCHAR"]}
    )
    runs = gs.runs.open(current)
    assert runs.list().height == 1
    assert "ticket" in runs.get("latest").columns
    with duckdb.connect(str(current), read_only=True) as con:
        version = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    assert version == [("2",)]


def test_batch_mode_registers(tmp_path: Path) -> None:
    source = _pipeline(tmp_path / "p.csv")
    register = tmp_path / "runs.duckdb"
    args = ["screen", str(source), "--out", str(tmp_path / "o"), "--register", str(register)]
    done = run_cli(*args, "--batch-rows", "2", "-q")
    assert done.returncode == 0, done.stderr
    runs = gs.runs.open(register)
    assert runs.results("latest").height == 3
    assert (
        runs.decisions("latest").height
        == pl.read_parquet(tmp_path / "o" / "decisions.parquet").height
    )
    assert runs.get("latest")["projects"].to_list() == [3]


def test_latest_and_prefix_resolution(tmp_path: Path) -> None:
    runs = gs.runs.open(tmp_path / "none.duckdb")
    assert runs.list().height == 0
    with pytest.raises(GreenscreenError, match="no runs registered"):
        runs.resolve("latest")
    source = _pipeline(tmp_path / "p.csv")
    first = gs.screen(source).register(runs, started=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert runs.resolve("latest") == first
    assert runs.resolve(first[:18]) == first
    with pytest.raises(GreenscreenError, match="latest~1"):
        runs.resolve("latest~1")
    shutil.rmtree(tmp_path / "nothing", ignore_errors=True)
