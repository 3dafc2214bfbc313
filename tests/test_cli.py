"""The greenscreen command: verbs, outputs, exit codes, messages without tracebacks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from conftest import GOOD_ROWS, HEADER, run_cli, write_csv

from greenscreen import __version__


def test_version() -> None:
    done = run_cli("--version")
    assert done.returncode == 0
    assert __version__ in done.stdout


def test_the_command_starts_without_the_data_stack() -> None:
    """Issue 17: `greenscreen --version` (and every verb's --help) must not pay for importing
    polars, numpy or the report layer; a module-level import of them slipped in once (through
    _outputs) and took start-up from 0.4 s to 0.9 s."""
    probe = (
        "import sys, greenscreen.cli; "
        "print(sorted(m for m in ('polars', 'numpy', 'xlsxwriter', 'greenscreen.report') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``greenscreen demo --out DIR`` (the sample's outputs, 38 packs, the loan report) run once
    for the tests that read its output: (the run, DIR's parent)."""
    tmp_path = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as env:  # as the autouse fixture does for each test
        env.setenv("GREENSCREEN_HOME", str(tmp_path_factory.mktemp("greenscreen-home")))
        return run_cli("demo", "--out", str(tmp_path / "demo")), tmp_path


def test_demo_writes_the_output_contract(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, tmp_path = demo
    assert done.returncode == 0, done.stderr
    assert "38 accepted, 0 rejected" in done.stdout
    assert str((tmp_path / "demo").resolve()) in done.stdout
    results = pl.read_parquet(tmp_path / "demo" / "results.parquet")
    assert results.height == 38
    assert {"project_id", "activity"} <= set(results.columns)
    assert pl.read_csv(tmp_path / "demo" / "results.csv").height == 38
    run_record = json.loads((tmp_path / "demo" / "run.json").read_text(encoding="utf-8"))
    assert run_record["counts"] == {
        "input_rows": 38,
        "accepted": 38,
        "rejected": 0,
        "reject_rows": 0,
        "blank_rows_ignored": 0,
    }
    assert len(run_record["input"]["sha256"]) == 64
    # every pack link in the portfolio report resolves to a written pack
    report = (tmp_path / "demo" / "portfolio.html").read_text(encoding="utf-8")
    links = re.findall(r'href="(packs/[^"]+)"', report)
    assert len(links) == 38
    assert all((tmp_path / "demo" / link).is_file() for link in links)
    assert len(list((tmp_path / "demo" / "packs").glob("*.xlsx"))) == 38


def test_screen_lang_and_portfolio_row_limit_are_applied(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", HEADER, GOOD_ROWS, "utf-8")
    out = tmp_path / "o"
    done = run_cli(
        "screen", str(path), "--out", str(out), "--lang", "zh", "--portfolio-max-rows", "0"
    )
    assert done.returncode == 0, done.stderr
    assert not (out / "portfolio.xlsx").exists()
    assert "<title>绿色贷款项目筛查汇总" in (out / "portfolio.html").read_text(encoding="utf-8")
    assert not (out / "packs").exists()


def test_screen_with_rejects_exits_zero_and_prints_counts(tmp_path: Path) -> None:
    rows = [*GOOD_ROWS, ("P11", "solar", "Henan", "1", "1", "2025-01-01")]
    path = write_csv(tmp_path / "p.csv", HEADER, rows, "utf-8")
    done = run_cli("screen", str(path), "--out", str(tmp_path / "o"))
    assert done.returncode == 0, done.stderr
    assert "11 rows read from p.csv: 10 accepted, 1 rejected" in done.stdout
    rejects = pl.read_csv(tmp_path / "o" / "rejects.csv")
    assert rejects.columns[:6] == ["row", "project_id", "field", "column", "value", "reason"]
    assert (
        rejects.row(0, named=True)["reason"] == "unknown activity 'solar'; did you mean 'solar_pv'?"
    )

    strict = run_cli("screen", str(path), "--out", str(tmp_path / "o2"), "--strict", "--quiet")
    assert strict.returncode == 4
    assert strict.stdout == ""
    assert "1 rows rejected (strict mode)" in strict.stderr


def test_outputs_are_byte_identical_across_runs(
    demo: tuple[subprocess.CompletedProcess[str], Path], tmp_path: Path
) -> None:
    """A second demo (quiet) writes the first one's files byte for byte."""
    first, first_dir = demo
    assert first.returncode == 0, first.stderr
    assert run_cli("demo", "-q", "--out", str(tmp_path / "b")).returncode == 0
    files = ("results.parquet", "results.csv", "rejects.csv", "run.json", "portfolio.xlsx")
    files += ("decisions.parquet", "subsidies.parquet", "subsidy_schedule.parquet")
    files += ("portfolio.html", "packs/GS-003.html", "packs/GS-003.xlsx", "packs/index.html")
    for file in files:
        assert (first_dir / "demo" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), (
            file
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("screen", "missing.csv", "--out", "o"), "pipeline file not found"),
        (("screen", "empty.csv", "--out", "o"), "empty.csv is empty"),
        (("screen", "noid.csv", "--out", "o"), "no project_id column"),
        (("template", "t.txt"), "the template is an .xlsx workbook"),
        (("screen",), "Missing argument"),
        (("frobnicate",), "No such command"),
    ],
)
def test_user_errors_are_one_line_messages(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "noid.csv").write_text("name,activity\nx,solar_pv\n")
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode in (1, 2)
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_template_command(tmp_path: Path) -> None:
    done = run_cli("template", str(tmp_path / "t.xlsx"))
    assert done.returncode == 0
    assert (tmp_path / "t.xlsx").stat().st_size > 10_000


def test_rulebooks_command_lists_the_bundled_rulebooks() -> None:
    done = run_cli("rulebooks")
    assert done.returncode == 0
    for rulebook in ("cn_exclusions", "eu_taxonomy", "glp_2025", "pboc_cerf"):
        assert rulebook in done.stdout


def test_output_files_follow_the_umask(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "greenscreen", "demo", "-q", "--out", str(tmp_path / "d")],
        preexec_fn=lambda: os.umask(0o022),
        timeout=120,
    )
    assert done.returncode == 0
    files = [p for p in (tmp_path / "d").rglob("*") if p.is_file()]
    assert len(files) > 35  # the outputs and the packs
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o644, path.name


def test_pack_takes_the_same_run_options_as_screen(tmp_path: Path) -> None:
    """Issue 17 finding 5: a pack written with `--debt-profile sculpted --carbon-price 61.05`
    shows the figures `screen` computed with them (before, pack had no such options and
    silently used the defaults)."""
    import openpyxl
    import polars as pl

    from greenscreen._resources import data_file

    sample = str(data_file("sample_pipeline.csv"))
    options = ("--debt-profile", "sculpted", "--carbon-price", "61.05")
    done = run_cli("screen", sample, "--out", str(tmp_path / "o"), "-q", "--no-register", *options)
    assert done.returncode == 0, done.stderr
    done = run_cli("pack", sample, "--project", "GS-004", "--out", str(tmp_path / "p"), *options)
    assert done.returncode == 0, done.stderr
    row = pl.read_parquet(tmp_path / "o" / "results.parquet").filter(
        pl.col("project_id") == "GS-004"
    )
    book = openpyxl.load_workbook(tmp_path / "p" / "GS-004.xlsx", data_only=True)
    sheet, ref = next(iter(book.defined_names["cf_min_dscr"].destinations))
    assert book[sheet][ref.replace("$", "")].value == pytest.approx(row["min_dscr"][0], rel=1e-9)
    sheet, ref = next(iter(book.defined_names["cf_npv"].destinations))
    assert book[sheet][ref.replace("$", "")].value == pytest.approx(row["npv"][0], rel=1e-9)


def test_main_tunes_polars_allocator_unless_the_user_did(monkeypatch) -> None:
    # issue 23: jemalloc keeps freed pages 5 s (a 1M-project screen spent ~7 CPU s in page
    # faults); a value the user exported is left as it is
    import signal

    from greenscreen import cli as cli_module

    handler = signal.getsignal(signal.SIGTERM)  # main() installs its own: put it back after
    monkeypatch.setattr(signal, "signal", lambda *a: handler)
    monkeypatch.delenv("_RJEM_MALLOC_CONF", raising=False)
    with pytest.raises(SystemExit):
        cli_module.main(["--version"])
    assert os.environ["_RJEM_MALLOC_CONF"] == "dirty_decay_ms:5000,muzzy_decay_ms:5000"
    monkeypatch.setenv("_RJEM_MALLOC_CONF", "background_thread:true")
    with pytest.raises(SystemExit):
        cli_module.main(["--version"])
    assert os.environ["_RJEM_MALLOC_CONF"] == "background_thread:true"
