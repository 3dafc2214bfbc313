"""What the ``greenscreen`` command prints: its two consoles and the tables and summaries of
its verbs (rich). The commands in :mod:`greenscreen.cli` parse options, call the library and
hand the result to a ``print_…`` function here; messages only (exit codes stay in ``cli``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rich.console import Console
from rich.table import Column, Table

if TYPE_CHECKING:
    import polars as pl

    from greenscreen.report import PackList
    from greenscreen.run import ScreenResult

# not a terminal (a pipe, a CI log): wide enough that tables keep their columns
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False)


# -- screen, demo, pack -------------------------------------------------------------------------
def print_screened(
    result: ScreenResult,
    paths: Mapping[str, Any],
    out_dir: Path,
    max_rows: int,
    packs: bool,
    csv_max_rows: int,
) -> None:
    """A finished screening: the counts, rejected rows, statuses, emissions, subsidies and
    appraisal, then the outputs written."""
    pipeline = result.pipeline
    out.print(pipeline.summary())
    for note in pipeline.notes:
        out.print(f"  note: {note}")
    if pipeline.n_accepted == 0:
        out.print("[yellow]no project was accepted[/yellow]")
    if pipeline.rejects.height:
        print_rejects(pipeline.rejects)
    if result.rulebooks:
        _statuses(result)
    _emissions(result)
    _subsidies(result)
    _appraisal(result)
    say = out.print
    say(f"outputs in {out_dir.resolve()}:")
    if "results_csv" in paths:
        csv = "; also results.csv"
    else:
        csv = f"; results.csv not written: above --csv-max-rows {csv_max_rows:,}"
    say(f"  {paths['results']}  ({result.results.height} projects{csv})")
    import polars as pl

    # counted in the written file: the table was streamed there, never held in memory
    decided = pl.scan_parquet(paths["decisions"]).select(pl.len()).collect().item()
    say(f"  {paths['decisions']}  ({decided} criterion decisions)")
    if "subsidies" in paths:
        say(f"  {paths['subsidies']}  (programme × award; payments in subsidy_schedule.parquet)")
    say(f"  {paths['rejects']}  ({result.rejects.height} reject rows)")
    if "portfolio" in paths:
        say(f"  {paths['portfolio']}  (batch workbook: results table, summary, charts)")
    elif max_rows <= 0:
        say("  portfolio.xlsx not written (--portfolio-max-rows 0)")
    else:
        say(f"  portfolio.xlsx not written: {result.results.height:,} projects > the row limit")
    if packs:
        say(f"  {paths['portfolio_html']}  (report, linking the packs)")
        say(f"  {out_dir / 'packs'}/  ({result.results.height:,} appraisal packs, .xlsx and .html)")
    else:
        say(f"  {paths['portfolio_html']}  (report; for its pack links: --packs)")
    say(f"  {paths['run']}  (input hash, column mapping, counts)")


def _statuses(result: ScreenResult) -> None:
    """Counts of each status per rulebook."""
    from greenscreen.rulebook import STATUSES

    table = Table("rulebook", *STATUSES, title="screening")
    for book in result.rulebooks:
        counts = dict(result.results[f"{book.id}__status"].value_counts().iter_rows())
        table.add_row(book.id, *(str(counts.get(s, 0)) for s in STATUSES))
    out.print(table)


def _emissions(result: ScreenResult) -> None:
    frame = result.results
    total = frame["avoided_tco2e_per_year"].sum()
    attributable = frame["attributable_tco2e_per_year"].sum()
    estimated = frame["avoided_tco2e_per_year"].is_not_null().sum()
    flagged = frame.filter(frame["emissions_flags"].list.len() > 0).height
    policy = result.emissions_config.policy
    out.print(
        f"avoided emissions ({policy}): {total:,.0f} tCO2e/yr for {estimated} projects, "
        f"{attributable:,.0f} attributable to the loans; {flagged} projects flagged"
    )


def _subsidies(result: ScreenResult) -> None:
    frame = result.results
    if "subsidy_total" not in frame.columns:
        return
    awarded = frame.filter(frame["subsidy_total"] > 0).height
    refinanceable = frame["relending_refinanceable"].sum()
    out.print(
        f"subsidies: {frame['subsidy_total'].sum():,.0f} committed "
        f"(up to {frame['subsidy_total_max'].sum():,.0f}) for {awarded} projects; "
        f"CERF refinanceable {refinanceable:,.0f}"
    )


def _appraisal(result: ScreenResult) -> None:
    frame = result.results
    if "npv" not in frame.columns:
        return
    appraised = frame.filter(frame["npv"].is_not_nan()).height
    weak = frame.filter(frame["min_dscr"] < 1.0).height
    capped = frame.filter(frame["debt_capped"]).height
    out.print(
        f"appraisal: {appraised} projects appraised; {weak} with a minimum DSCR below 1.0; "
        f"{capped} with debt capped at cost"
    )


def print_rejects(rejects: Any, limit: int = 20, *, to_file: bool = True) -> None:
    table = Table("row", "project_id", "field", "value", "reason", title="rejected rows")
    for rec in rejects.head(limit).iter_rows(named=True):
        table.add_row(
            str(rec["row"]),
            rec["project_id"] or "",
            rec["field"],
            (rec["value"] or "")[:40],
            rec["reason"],
        )
    out.print(table)
    if rejects.height > limit:
        where = " in rejects.csv" if to_file else ""
        out.print(f"… and {rejects.height - limit} more{where}")


def print_packs(result: ScreenResult, paths: PackList, out_dir: Path) -> None:
    """The packs written (the first 20), the rejected rows that have none, those skipped."""
    if result.rejects.height:  # rows that were not read have no pack: say which
        out.print(f"{result.pipeline.summary()}; rejected rows have no pack (fix them and rerun):")
        print_rejects(result.rejects, limit=10, to_file=False)
    for path in paths[:20]:
        out.print(f"wrote {path}")
    if len(paths) > 20:
        out.print(f"… and {len(paths) - 20:,} more files in {out_dir.resolve()}")
    if paths.skipped:
        out.print(f"{paths.skipped:,} projects' packs were already up to date (not rewritten)")


# -- rulebooks ----------------------------------------------------------------------------------
def print_rulebooks(books: list[Any]) -> None:
    """One line per rulebook. For the two China catalogues, their conditions by kind
    (taxonomies/sources/*_condition_kinds.csv: measured / standard reference / qualitative)
    and how many measured conditions a measured criterion encodes (``catalogue_check``)."""
    from greenscreen.catalogue_check import condition_summary

    rows = []
    for book in books:
        counts = book.counts()
        kinds = condition_summary(book)
        conditions = ["", ""]
        if kinds is not None:
            by_kind = (kinds.counts[k] for k in ("measured", "standard_reference", "qualitative"))
            conditions = [
                "/".join(map(str, by_kind)),
                f"{len(kinds.encoded)}/{kinds.measured} {kinds.encoded_share:.0%}",
            ]
        rows.append(
            [
                book.id,
                book.version,
                str(book.effective or ""),
                book.kind,
                str(counts["items"]),
                str(counts["industry_rows"]),
                str(counts["criteria"]),
                str(counts["measured"]),
                str(counts["attestation"]),
                str(counts["crosswalk"]),
                f"{counts['verified_share']:.0%}/{counts['criteria_verified_share']:.0%}",
                *conditions,
                book.title.get("en"),
            ]
        )

    def fixed(n: int, header: str, justify: Literal["left", "right"] = "right") -> Column:
        """A column never cut or wrapped: as wide as its widest value or header line."""
        width = max([len(r[n]) for r in rows] + [len(line) for line in header.split("\n")])
        return Column(header, justify=justify, no_wrap=True, min_width=width)

    table = Table(
        fixed(0, "id", "left"),
        Column("version", no_wrap=True, max_width=12),
        fixed(2, "effective", "left"),
        fixed(3, "kind", "left"),
        fixed(4, "items"),
        fixed(5, "GB/T\nrows"),
        fixed(6, "crit."),
        fixed(7, "meas."),
        fixed(8, "att."),
        fixed(9, "xw."),
        fixed(10, "verified\nitem/crit"),
        fixed(11, "conditions\nmeas/std/qual"),
        fixed(12, "meas.\nencoded"),
        Column("title", ratio=1, min_width=12),
        caption="criteria: meas. read data, att. an attestation, xw. another rulebook. "
        "conditions: the catalogue's rows (cn_gbepc_2021: 2019 items) stating a level or number "
        "/ naming a standard / neither; encoded: measured conditions a measured criterion checks",
    )
    for row in rows:
        table.add_row(*row)
    out.print(table)


def print_programmes(programmes: list[Any]) -> None:
    table = Table("programme", "version", "kind", "awards", "verification", "title")
    for p in programmes:
        table.add_row(
            p.id, p.version, p.kind, str(len(p.awards)), p.verification, p.title.get("en")
        )
    out.print(table)


# -- the run register ---------------------------------------------------------------------------
def print_runs(frame: pl.DataFrame, register_path: Path) -> None:
    """Registered runs, one line each."""
    table = Table("run", "finished (UTC)", "analyst", "host", "version", "input", "sha256")
    for name in ("projects", "rejected", "rescreen of"):
        table.add_column(name, justify="left" if name == "rescreen of" else "right")
    for rec in frame.iter_rows(named=True):
        table.add_row(
            rec["run_id"],
            str(rec["finished_utc"]),
            rec["analyst"],
            rec["host"],
            rec["version"],
            rec["input_name"],
            (rec["input_sha256"] or "")[:12],
            f"{rec['projects'] or 0:,}",
            f"{rec['rejected'] or 0:,}",
            rec["parent_run"] or "",
        )
    out.print(table)
    out.print(f"{frame.height} runs in {register_path}")


def print_run(info: dict[str, Any], sources: pl.DataFrame) -> None:
    """One registered run: who, when, input, version, counts, options, rules and factors."""
    for key in ("run_id", "started_utc", "finished_utc", "analyst", "host", "version"):
        out.print(f"{key:>14}: {info[key]}")
    out.print(f"{'input':>14}: {info['input_name']} ({info['input_path'] or 'no path'})")
    stored = "stored in the register" if info["input_stored"] else "referenced by path"
    out.print(f"{'input sha256':>14}: {info['input_sha256']} ({stored})")
    out.print(f"{'outputs':>14}: {info['out_dir'] or '-'}")
    if info["parent_run"]:
        out.print(f"{'rescreen of':>14}: {info['parent_run']}")
    counts = json.loads(info["counts"] or "{}")
    out.print(f"{'counts':>14}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    out.print(f"{'decisions':>14}: {info['decisions'] or 0:,}")
    options = json.loads(info["options"] or "{}")
    table = Table("option", "value", title="options")
    for key, value in options.items():
        table.add_row(key, json.dumps(value, ensure_ascii=False))
    out.print(table)
    table = Table("kind", "id", "version", "file", "sha256", title="rules and factors")
    for rec in sources.iter_rows(named=True):
        table.add_row(rec["kind"], rec["id"], rec["version"], rec["file"], rec["sha256"])
    out.print(table)


def print_rescreened(out_dir: Path, run_id: str, compared: Any, diff_dir: Path) -> None:
    out.print(f"outputs in {out_dir.resolve()}; registered as run {run_id}")
    out.print(compared.summary(), markup=False)
    out.print(f"diff in {diff_dir.resolve()}")
