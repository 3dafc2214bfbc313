"""Bank-ready appraisal packs: Excel workbooks with live formulas and self-contained HTML."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from greenscreen.errors import GreenscreenError, did_you_mean
from greenscreen.report._files import atomic_write, confined, safe_stem
from greenscreen.report.excel import write_excel_pack
from greenscreen.report.html import write_html_pack, write_portfolio_html
from greenscreen.report.labels import Lang

__all__ = ["write_excel_pack", "write_html_pack", "write_packs", "write_portfolio_html"]


def write_packs(
    result: Any,
    out_dir: str | Path,
    project_ids: list[str] | None = None,
    *,
    lang: Lang = "en",
    formats: tuple[str, ...] = ("xlsx", "html"),
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write one pack per project (all accepted projects when ``project_ids`` is None);
    ``progress(project_id)`` is called after each project.

    File names come from :func:`~greenscreen.report._files.safe_stem` and cannot leave
    ``out_dir``.
    """
    unknown = set(formats) - {"xlsx", "html"}
    if unknown or not formats:
        raise GreenscreenError(f"pack formats are xlsx and html, not {sorted(unknown)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    known = result.results["project_id"].to_list()
    ids = known if project_ids is None else project_ids
    known_set = set(known)
    for pid in ids:
        if pid not in known_set:
            rejected = result.rejects.filter(pl.col("project_id") == pid)
            if rejected.height:
                raise GreenscreenError(
                    f"project {pid} was rejected: {'; '.join(rejected['reason'])}"
                )
            raise GreenscreenError(f"no project '{pid}' in the pipeline" + did_you_mean(pid, known))
    written = []
    for pid in ids:
        stem = safe_stem(pid)
        for fmt in formats:
            path = confined(out, f"{stem}.{fmt}")
            writer = write_excel_pack if fmt == "xlsx" else write_html_pack
            atomic_write(path, lambda tmp: writer(result, pid, tmp, lang=lang))  # noqa: B023
            written.append(path)
        if progress is not None:
            progress(pid)
    if "html" in formats and len(ids) > 1:  # an index linking the packs
        index = confined(out, "index.html")
        atomic_write(index, lambda tmp: write_portfolio_html(result, tmp, lang=lang))
        written.append(index)
    return written
