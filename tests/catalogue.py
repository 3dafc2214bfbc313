"""Helpers shared by the golden tests of the 2025 catalogue (cn_gfsp_2025): an item of the bundled
rulebook, and projects screened and keyed by id."""

from __future__ import annotations

from functools import cache
from typing import Any

from greenscreen import screen
from greenscreen.rulebook import Criterion, Item, bundled_rulebooks

R = "cn_gfsp_2025__"


@cache
def item(code: str) -> Item:
    book = next(b for b in bundled_rulebooks() if b.id == "cn_gfsp_2025")
    return next(i for i in book.leaf_items if i.code == code)


def criterion(code: str, cid: str) -> Criterion:
    return next(c for c in item(code).criteria if c.id == cid)


def results(*projects: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Screen the projects and key their results by project id."""
    rows = [{"description": "项目", **p} for p in projects]
    frame = screen(rows).results
    return {r["project_id"]: r for r in frame.iter_rows(named=True)}


def outcome(row: dict[str, Any]) -> tuple[str, list[str] | None]:
    """cn_gfsp_2025 status and the fields it asks for."""
    return row[R + "status"], row[R + "missing"]
