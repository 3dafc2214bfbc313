"""The README's Python example runs as written and prints what its comments say."""

import ast
import re
from pathlib import Path

import polars as pl
import pytest

from greenscreen._resources import data_file

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _python_blocks()
    assert blocks, "README has no Python example"
    monkeypatch.chdir(tmp_path)
    # The example reads the analyst's own workbook; stand in the bundled sample pipeline.
    pl.read_csv(data_file("sample_pipeline.csv"), infer_schema_length=0).write_excel(
        "loans.xlsx", worksheet="pipeline"
    )
    for block in blocks:
        namespace: dict[str, object] = {}
        exec(compile(block, "README.md", "exec"), namespace)

        # A line followed by a `# (...)` comment claims its value; check the claim.
        lines = block.splitlines()
        for expr, comment in zip(lines, lines[1:], strict=False):
            if comment.startswith("# (") and expr and not expr.startswith("#"):
                assert eval(expr, namespace) == ast.literal_eval(comment[2:]), expr
    assert (tmp_path / "out" / "run.json").exists()
