"""Bank-ready appraisal packs: Excel workbooks with live formulas and self-contained HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from greenscreen.errors import GreenscreenError, did_you_mean
from greenscreen.report._files import confined, safe_stem
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
    formats: tuple[str, ...] = ("xlsx",),
) -> list[Path]:
    """Write one pack per project (all accepted projects when ``project_ids`` is None).

    File names come from :func:`~greenscreen.report._files.safe_stem` and cannot leave
    ``out_dir``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    known = result.results["project_id"].to_list()
    ids = known if project_ids is None else project_ids
    for pid in ids:
        if pid not in set(known):
            rejected = result.rejects.filter(pl.col("project_id") == pid)
            if rejected.height:
                raise GreenscreenError(
                    f"project {pid} was rejected: {'; '.join(rejected['reason'])}"
                )
            raise GreenscreenError(f"no project '{pid}' in the pipeline" + did_you_mean(pid, known))
    written = []
    for pid in ids:
        stem = safe_stem(pid)
        if "xlsx" in formats:
            written.append(write_excel_pack(result, pid, confined(out, f"{stem}.xlsx"), lang=lang))
        if "html" in formats:
            written.append(write_html_pack(result, pid, confined(out, f"{stem}.html"), lang=lang))
    if "html" in formats and len(ids) > 1:  # an index linking the packs
        written.append(write_portfolio_html(result, confined(out, "index.html"), lang=lang))
    return written
