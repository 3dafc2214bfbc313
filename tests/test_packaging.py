"""The wheel carries taxonomies/ and templates/ and finds them once installed."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (path,) = out.glob("greenscreen-*.whl")
    return path


@pytest.mark.slow
def test_wheel_contains_the_data_directories(wheel: Path) -> None:
    """Issue #2, acceptance 5."""
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in (
        "greenscreen/_bundled/taxonomies/README.md",
        "greenscreen/_bundled/templates/README.md",
        "greenscreen/data/sample_pipeline.csv",
        "greenscreen/data/activities.csv",
        "greenscreen/data/provinces.csv",
    ):
        assert name in names, name
    tracked = subprocess.run(
        ["git", "ls-files", "taxonomies", "templates"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    for path in tracked:  # every tracked data file ships, when git is available
        assert f"greenscreen/_bundled/{path}" in names, path


@pytest.mark.slow
def test_installed_wheel_finds_its_data_and_runs_the_demo(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = (
        "import greenscreen, greenscreen._resources as r;"
        "print(greenscreen.__file__);print(r.bundled_dir('taxonomies'));print(r.bundled_dir('templates'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    module, taxonomies, templates = done.stdout.split()
    for path in (module, taxonomies, templates):
        assert path.startswith(str(site)), path
    demo = subprocess.run(
        [sys.executable, "-m", "greenscreen", "demo", "-q", "--out", "out"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert demo.returncode == 0, demo.stderr
    assert (tmp_path / "out" / "results.parquet").is_file()


def test_the_run_layer_does_not_import_the_report_layer() -> None:
    """Issue 17 finding 1: screening and its data files need no report module; the report
    layer reads a ScreenResult. And `import greenscreen` alone loads neither (lazy names)."""
    import subprocess
    import sys

    code = (
        "import sys, greenscreen\n"
        "assert 'greenscreen.run' not in sys.modules and 'polars' not in sys.modules\n"
        "import greenscreen.run\n"
        "leaked = [m for m in sys.modules if m.startswith('greenscreen.report')]\n"
        "assert not leaked, leaked\n"
        "assert greenscreen.screen is greenscreen.run.screen\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
