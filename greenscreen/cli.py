"""The ``greenscreen`` command.

Verbs: ``demo``, ``screen``, ``pack``, ``explain``, ``merge`` (answers of a requests.xlsx into
the pipeline), ``template`` (the pipeline or loan book template), ``report`` (periodic reports
over a loan book), ``rulebooks`` (list; ``check`` a folder; ``build`` the China catalogues from
their sources; ``schema``), ``runs`` (the run register: ``list``, ``show``, ``diff``,
``export``) and ``rescreen``. User mistakes
(a missing file, a bad column, rejected rows in ``--strict`` mode) print a one-line message to
stderr and exit non-zero without a traceback. Exit codes: 0 success, 1 an error in the input,
the files or the output folder, 2 a usage error (an unknown option, a bad option value: click's
code), 3 an internal error (a bug: set GREENSCREEN_DEBUG=1 for the traceback), 4 rows rejected
in ``--strict`` mode, 130 interrupted (Ctrl-C or SIGTERM). The tables and summaries the verbs
print are formatted in :mod:`greenscreen._console`.

A command function's docstring is its ``--help`` text and its parameters are its click
options (each with ``help=``): they carry no numpydoc Parameters section, which would repeat
the options.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from greenscreen import __version__
from greenscreen._console import err as _err
from greenscreen._console import out as _out
from greenscreen._console import (
    print_packs,
    print_programmes,
    print_rescreened,
    print_rulebooks,
    print_run,
    print_runs,
    print_screened,
)
from greenscreen._outputs import CSV_MAX_ROWS
from greenscreen._resources import data_file
from greenscreen.errors import GreenscreenError, PipelineError

if TYPE_CHECKING:
    import polars as pl

    from greenscreen.report import PackList
    from greenscreen.run import ScreenResult

EXIT_ERROR, EXIT_USAGE, EXIT_INTERNAL, EXIT_REJECTS, EXIT_INTERRUPTED = 1, 2, 3, 4, 130


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="greenscreen")
def cli() -> None:
    """Screen project-finance pipelines for green loans."""


_workers_option = click.option(
    "--workers",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Processes writing packs (0: one per CPU when there are 200 packs or more).",
)


@cli.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("greenscreen-demo"),
    show_default=True,
    help="Directory for the outputs.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
def demo(out_dir: Path, quiet: bool) -> None:
    """Screen the bundled, illustrative sample pipeline and write every project's pack."""
    _screen(
        data_file("sample_pipeline.csv"),
        out_dir,
        strict=False,
        quiet=quiet,
        options={"sensitivities": True},
        write_options={"packs": True},
    )
    # the bundled sample loan book over the same pipeline: OUT/report/ (issue 21)
    _report(
        data_file("sample_loans.csv"),
        None,
        out_dir / "results.parquet",
        "2026-Q3",
        out_dir / "report",
        None,
        False,
        quiet,
    )


# The options that decide a run's figures, shared by every verb that screens (screen, pack,
# explain): a pack written after `screen --debt-profile sculpted` computes what the results say
# when given the same options.
_RUN_OPTIONS = [
    click.option(
        "--rulebooks",
        "rulebook_dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Your rulebook directory: replaces (same id) or extends the bundled rulebooks.",
    ),
    click.option(
        "--grid-policy",
        type=click.Choice(["combined_margin", "grid_average"]),
        default="combined_margin",
        show_default=True,
        help="Grid factor for avoided emissions: CCER/CDM combined margin, or an MEE average.",
    ),
    click.option(
        "--grid-series",
        default="mee_nbs_average:2023",
        show_default=True,
        help="SERIES:YEAR for --grid-policy grid_average (see greenscreen/data/factors).",
    ),
    click.option(
        "--debt-profile",
        type=click.Choice(["annuity", "equal_principal", "sculpted"]),
        default="annuity",
        show_default=True,
        help="Loan repayment profile for the appraisal.",
    ),
    click.option(
        "--target-dscr",
        type=float,
        default=1.30,
        show_default=True,
        help="For --debt-profile sculpted.",
    ),
    click.option(
        "--carbon-price",
        type=float,
        default=0.0,
        show_default=True,
        help="Carbon revenue price per tCO2e (e.g. 61.05, the CEA close of 2023-07-30).",
    ),
    click.option(
        "--discount-rate",
        type=float,
        help="Default discount rate where a project gives none (default 0.06).",
    ),
    click.option(
        "--funding-cost",
        type=click.FloatRange(0, 1),
        help="The bank's funding cost (fraction, e.g. 0.025) for the CERF relending benefit.",
    ),
    click.option(
        "--factors",
        "factors_dir",
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        help="Directory with your own factor files (grid_factors.csv, grid_regions.csv, …).",
    ),
    click.option("--sheet", help="Excel sheet name (default: 'pipeline', else the first sheet)."),
    click.option("--encoding", help="CSV encoding (default: UTF-8, else GBK/GB18030)."),
]


def _run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_RUN_OPTIONS):
        command = option(command)
    return command


def _screen_options(
    rulebook_dir: Path | None,
    grid_policy: str,
    grid_series: str,
    debt_profile: str,
    target_dscr: float,
    carbon_price: float,
    discount_rate: float | None,
    funding_cost: float | None,
    factors_dir: Path | None,
    sheet: str | None,
    encoding: str | None,
) -> dict[str, Any]:
    """The keyword arguments of :func:`greenscreen.screen` for the run options."""
    return {
        "sheet": sheet,
        "encoding": encoding,
        "rulebooks": rulebook_dir,
        "emissions": _emissions_config(grid_policy, grid_series, factors_dir),
        "subsidies": _subsidy_config(funding_cost),
        "appraisal": _appraisal_config(debt_profile, target_dscr, carbon_price, discount_rate),
    }


@cli.command()
@click.argument("pipeline", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for results.parquet, results.csv, rejects.csv and run.json.",
)
@click.option("--strict", is_flag=True, help="Exit with status 4 if any row is rejected.")
@click.option(
    "--sensitivities",
    is_flag=True,
    help="Also compute the tornado table (±10 % capex, tariff, generation, opex; carbon prices).",
)
@_run_options
@click.option(
    "--portfolio-max-rows",
    type=int,
    default=100_000,
    show_default=True,
    help="Write portfolio.xlsx up to this many projects (0: never).",
)
@click.option(
    "--csv-max-rows",
    type=click.IntRange(0),
    default=CSV_MAX_ROWS,
    show_default=True,
    help="Write results.csv up to this many projects (0: never); results.parquet always.",
)
@click.option(
    "--lang",
    type=click.Choice(["en", "zh"]),
    default="en",
    show_default=True,
    help="Language of portfolio.xlsx, portfolio.html and the packs.",
)
@click.option(
    "--batch-rows",
    type=click.IntRange(1),
    help="Read and screen the file in batches of this many rows (UTF-8 CSV or Parquet): "
    "memory bounded by the batch, for pipelines larger than memory.",
)
@click.option(
    "--engine",
    type=click.Choice(["polars", "spark"]),
    default="polars",
    show_default=True,
    help="spark: screen a Parquet file on Spark (pip install 'greenscreen[spark]').",
)
@click.option(
    "--master", help="Spark master for --engine spark (default: spark-submit's, else local)."
)
@_workers_option
@click.option(
    "--packs",
    is_flag=True,
    help="Also write every project's pack (xlsx and html, with sensitivities) to OUT/packs.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@click.option(
    "--register",
    "register_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Run register to record the run in (default: $GREENSCREEN_HOME/runs.duckdb, "
    "~/.greenscreen/runs.duckdb).",
)
@click.option("--no-register", is_flag=True, help="Do not record the run in the run register.")
@click.option("--analyst", help="Who ran it, for the run register (default: the OS user).")
def screen(
    pipeline: Path,
    out_dir: Path,
    strict: bool,
    sensitivities: bool,
    portfolio_max_rows: int,
    csv_max_rows: int,
    lang: str,
    batch_rows: int | None,
    engine: str,
    master: str | None,
    workers: int,
    packs: bool,
    quiet: bool,
    register_path: Path | None,
    no_register: bool,
    analyst: str | None,
    **run: Any,
) -> None:
    """Screen PIPELINE (CSV, Excel, Parquet, JSON) and write the results to --out."""
    options = _screen_options(**run)
    options["sensitivities"] = sensitivities or packs  # packs show the tornado
    rulebook_dir, funding_cost = run["rulebook_dir"], run["funding_cost"]
    sheet, encoding = run["sheet"], run["encoding"]
    if register_path is not None and no_register:
        raise click.UsageError("--register and --no-register exclude each other")
    # what the register records of the command line (configuration comes from the result)
    _REGISTRATION.update(
        enabled=not no_register,
        path=register_path,
        analyst=analyst,
        started=_utc_now(),
        options={
            "rulebooks": str(rulebook_dir.resolve()) if rulebook_dir else None,
            "funding_cost": funding_cost,
            "sensitivities": sensitivities or packs,
            "sheet": sheet,
            "encoding": encoding,
            "lang": lang,
            "portfolio_max_rows": portfolio_max_rows,
            "csv_max_rows": csv_max_rows,
            "packs": packs,
            "batch_rows": batch_rows,
        },
    )
    csv = {"csv_max_rows": csv_max_rows}
    if engine == "spark" or master:
        if packs or batch_rows is not None or engine != "spark":
            raise click.UsageError("--engine spark takes --master, not --packs or --batch-rows")
        _screen_spark(pipeline, out_dir, master, strict, quiet, options | csv, lang)
        return
    if batch_rows is not None:
        if packs:
            raise click.UsageError(
                "--packs needs the whole run in memory; write packs with greenscreen pack"
            )
        _screen_batched(pipeline, out_dir, batch_rows, strict, quiet, options | csv, lang)
        return
    write_options = {
        "portfolio_max_rows": portfolio_max_rows,
        "csv_max_rows": csv_max_rows,
        "lang": lang,
        "packs": packs,
        "workers": workers,
    }
    _screen(
        pipeline, out_dir, strict=strict, quiet=quiet, options=options, write_options=write_options
    )


@cli.command()
@click.argument("pipeline", type=click.Path(path_type=Path))
@click.option("--project", "project_ids", multiple=True, help="project_id to pack (repeatable).")
@click.option("--all", "all_projects", is_flag=True, help="Pack every accepted project.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for the packs (one file per project).",
)
@click.option(
    "--lang",
    type=click.Choice(["en", "zh"]),
    default="en",
    show_default=True,
    help="Language of the packs.",
)
@click.option(
    "--format",
    "formats",
    default="xlsx,html",
    show_default=True,
    help="Comma-separated: xlsx, html, pdf (pdf: the HTML pack printed by headless Chromium).",
)
@_run_options
@_workers_option
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
def pack(
    pipeline: Path,
    project_ids: tuple[str, ...],
    all_projects: bool,
    out_dir: Path,
    lang: str,
    formats: str,
    workers: int,
    quiet: bool,
    **run: Any,
) -> None:
    """Write appraisal packs (Excel with live formulas, HTML, PDF) for --project ID … or --all,
    with the same run options as ``screen`` (rulebooks, factors, debt profile, prices)."""
    from greenscreen.run import screen as run_screen

    if not project_ids and not all_projects:
        raise click.UsageError("give --project ID (repeatable) or --all")
    wanted = {f.strip() for f in formats.split(",") if f.strip()}
    unknown = wanted - {"xlsx", "html", "pdf"}
    if unknown:
        raise click.BadParameter(
            f"unknown format(s): {', '.join(sorted(unknown))}", param_hint="--format"
        )
    if not wanted:
        raise click.BadParameter("give at least one of xlsx, html, pdf", param_hint="--format")
    result = run_screen(pipeline, **_screen_options(**run), sensitivities=True)
    ids = None if all_projects else list(project_ids)
    paths = _write_packs(result, out_dir, ids, lang, tuple(sorted(wanted)), quiet, workers)
    if not quiet:
        print_packs(result, paths, out_dir)


@cli.command()
@click.argument("pipeline", type=click.Path(path_type=Path))
@click.argument("answers", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The merged pipeline to write (.csv or .xlsx); screen it again.",
)
@click.option("--sheet", help="Excel sheet name of PIPELINE.")
@click.option("--encoding", help="CSV encoding of PIPELINE.")
@click.option("--force", is_flag=True, help="Replace OUT if it exists (never PIPELINE itself).")
def merge(
    pipeline: Path,
    answers: Path,
    out: Path,
    sheet: str | None,
    encoding: str | None,
    force: bool,
) -> None:
    """Merge a client's filled-in requests.xlsx (ANSWERS) into PIPELINE, written to --out."""
    from greenscreen.requests import merge_file

    used, projects = merge_file(pipeline, answers, out, sheet=sheet, encoding=encoding, force=force)
    _out.print(f"{used:,} answers merged into {out} ({projects:,} rows); screen it again")


@cli.command()
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace OUT if it exists (a filled template is lost).")
@click.option(
    "--kind",
    type=click.Choice(["pipeline", "loans"]),
    default="pipeline",
    show_default=True,
    help="pipeline template v1, or loan book template v1 (for greenscreen report).",
)
def template(out: Path, force: bool, kind: str) -> None:
    """Write the Excel input template (pipeline or loan book template v1) to OUT.xlsx."""
    from greenscreen._template import write_template
    from greenscreen.loans import write_loan_template

    if os.path.lexists(out) and not force:
        raise GreenscreenError(f"{out} exists (a filled template?); give --force to replace it")
    path = write_loan_template(out) if kind == "loans" else write_template(out)
    _out.print(f"wrote the {kind} template to {path}")
    if kind == "loans":
        _out.print(f"fill the 'loans' sheet, then run: greenscreen report {path} --pipeline ...")
    else:
        _out.print(f"fill the 'pipeline' sheet, then run: greenscreen screen {path} --out DIR")


@cli.command()
@click.argument("book", type=click.Path(path_type=Path))
@click.option("--pipeline", type=click.Path(path_type=Path), help="The pipeline to screen.")
@click.option(
    "--results",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Or results.parquet of a previous `greenscreen screen --out` (not screened again).",
)
@click.option(
    "--run",
    "run_ref",
    help="A registered run whose results to report on (id, prefix, latest, latest~1).",
)
@click.option(
    "--register",
    "register_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The run register for --run (default: $GREENSCREEN_HOME/runs.duckdb).",
)
@click.option("--period", required=True, help="Reporting period: 2026-Q3, 2026-H1 or 2026.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for the report tables, report.xlsx, report.html and run.json.",
)
@click.option("--total-loans", type=float, help="The bank's total loans [CNY] for JR/T 0227.")
@click.option("--strict", is_flag=True, help="Exit with status 4 if any loan is rejected.")
@click.option("--sheet", help="Excel sheet name of BOOK.")
@click.option("--encoding", help="CSV encoding of BOOK.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
def report(
    book: Path,
    pipeline: Path | None,
    results: Path | None,
    run_ref: str | None,
    register_path: Path | None,
    period: str,
    out_dir: Path,
    total_loans: float | None,
    strict: bool,
    sheet: str | None,
    encoding: str | None,
    quiet: bool,
) -> None:
    """Periodic green-finance reports over the loan BOOK (loan book template v1)."""
    registered = None
    if run_ref is not None:  # the results of a run in the register (greenscreen runs list)
        if pipeline is not None or results is not None:
            raise click.UsageError("give one of --pipeline, --results or --run")
        from greenscreen import register

        registered = register.open(register_path).results(run_ref)
    _report(
        book,
        pipeline,
        results if registered is None else registered,
        period,
        out_dir,
        total_loans,
        strict,
        quiet,
        {"sheet": sheet, "encoding": encoding},
    )


def _report(
    book: Path,
    pipeline: Path | None,
    results: Path | pl.DataFrame | None,
    period: str,
    out_dir: Path,
    total_loans: float | None,
    strict: bool,
    quiet: bool,
    options: dict[str, Any] | None = None,
) -> None:
    from greenscreen.report.book import report_book, write_report

    if (pipeline is None) == (results is None):
        raise click.UsageError(
            "give one of --pipeline PIPELINE, --results RESULTS.parquet or --run RUN"
        )
    say = (lambda *a: None) if quiet else _out.print
    made = report_book(
        book,
        period,
        pipeline=pipeline,
        results=results,
        total_loans_cny=total_loans,
        **{k: v for k, v in (options or {}).items() if v is not None},
    )
    paths = write_report(made, out_dir)
    assert made.book is not None
    say(made.book.summary())
    say(
        f"report {made.period.label} ({made.period.start} … {made.period.end}) written to {out_dir}"
    )
    if strict and made.book.rejects.height:
        click.echo(
            f"error: {made.book.n_rejected} loans rejected (strict mode); see {paths['rejects']}",
            err=True,
        )
        sys.exit(EXIT_REJECTS)


@cli.group(invoke_without_command=True)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Your rulebook directory: replaces (same id) or extends the bundled rulebooks.",
)
@click.pass_context
def rulebooks(ctx: click.Context, directory: Path | None) -> None:
    """List the rulebooks greenscreen screens against."""
    if ctx.invoked_subcommand is not None:
        return
    from greenscreen.rulebook import load_rulebooks
    from greenscreen.subsidy import load_programmes

    print_rulebooks(load_rulebooks(directory))
    print_programmes(load_programmes(directory))


@rulebooks.command("check")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def rulebooks_check(directory: Path) -> None:
    """Validate every rulebook and programme in DIRECTORY (schema, codes, fields, conditions)."""
    from greenscreen.rulebook import load_rulebooks
    from greenscreen.subsidy import load_programmes

    books = load_rulebooks(directory, extra=False)
    programmes = load_programmes(directory, extra=False)
    if not books and not programmes:
        raise click.ClickException(
            f"no rulebook or programme files (schema_type: greenscreen.rulebook or "
            f"greenscreen.programme) in {directory}"
        )
    if books:
        print_rulebooks(books)
    if programmes:
        print_programmes(programmes)
    _out.print(f"{len(books)} rulebooks and {len(programmes)} programmes in {directory} are valid")


@rulebooks.command("build")
@click.option(
    "--sources",
    type=click.Path(file_okay=False, path_type=Path),
    help="The catalogue sources (default: taxonomies/sources of this checkout).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the generated rulebooks go (default: taxonomies/ of this checkout).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 naming the generated files that differ from what the sources "
    "build (for CI).",
)
def rulebooks_build(sources: Path | None, out_dir: Path | None, check: bool) -> None:
    """Regenerate the China catalogues (cn_gfsp_2025.yaml, cn_gbepc_2021.yaml) and the JSON
    schemas of rulebook and programme files from their sources, validated as rulebooks."""
    from greenscreen.catalogue_build import build_rulebooks

    built = build_rulebooks(sources, out_dir, check=check)
    for entry in built:
        if not entry.changed:
            state = "unchanged"
        elif check:
            state = "differs" if entry.existed else "missing"
        else:
            state = "written"
        _out.print(f"{entry.path}: {entry.summary} ({state})")
    changed = [str(entry.path) for entry in built if entry.changed]
    if check and changed:
        raise GreenscreenError(
            f"{len(changed)} generated file(s) not what `greenscreen rulebooks build` writes: "
            f"{', '.join(changed)}; run it and commit the result"
        )


@rulebooks.command("schema")
@click.option(
    "--kind",
    type=click.Choice(["rulebook", "programme"]),
    default="rulebook",
    show_default=True,
    help="rulebook files (schema_type: greenscreen.rulebook) or programme files.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the schema to this file (default: print it).",
)
def rulebooks_schema(kind: Literal["rulebook", "programme"], out: Path | None) -> None:
    """The JSON schema of rulebook (or programme) files, for editors that validate YAML as you
    type (taxonomies/rulebook.schema.json is this output)."""
    from greenscreen.rulebook import json_schema

    text = json_schema(kind)
    if out is None:
        click.echo(text, nl=False)
        return
    from greenscreen._outputs import atomic_write

    atomic_write(out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    _out.print(f"wrote the {kind} schema to {out}")


@cli.command()
@click.argument("pipeline", type=click.Path(path_type=Path))
@click.option("--project", "project_id", required=True, help="project_id to explain.")
@_run_options
@click.option(
    "--lang",
    type=click.Choice(["en", "zh"]),
    default="en",
    show_default=True,
    help="Language of rulebook and item names in the trace.",
)
def explain(pipeline: Path, project_id: str, lang: str, **run: Any) -> None:
    """Print the decision trace of one project: status, item and every criterion."""
    from greenscreen.run import explain as explain_project
    from greenscreen.run import screen as run_screen

    result = run_screen(pipeline, **_screen_options(**run))
    _out.print(explain_project(result, project_id, lang=lang), markup=False)


def _screen_batched(
    source: Path,
    out_dir: Path,
    batch_rows: int,
    strict: bool,
    quiet: bool,
    options: dict[str, Any],
    lang: str,
) -> None:
    from greenscreen.batch import screen_batched

    say = (lambda *a: None) if quiet else _out.print
    started = time.perf_counter()
    say(f"greenscreen {__version__}: screening {source} in batches of {batch_rows:,} rows")
    with Progress(
        TextColumn("rows"),
        BarColumn(),
        TextColumn("{task.fields[phase]}"),
        TimeRemainingColumn(),
        console=_err,
        disable=quiet,
        transient=True,
    ) as bar:
        task = bar.add_task("rows", total=None, phase="")

        def on_batch(done: int, total: int) -> None:
            phase = "validating" if done <= total // 2 else "screening"
            bar.update(task, completed=done, total=total, phase=phase)

        run = screen_batched(
            source,
            out_dir,
            batch_rows=batch_rows,
            lang=lang,  # type: ignore[arg-type]
            on_batch=on_batch,
            **options,
        )
    say(run.summary())
    _list_outputs(run, out_dir, say)
    if run.result is not None:
        _record_run(run.result, out_dir, source, say)
    _done(run, started, strict, say)


def _screen_spark(
    source: Path,
    out_dir: Path,
    master: str | None,
    strict: bool,
    quiet: bool,
    options: dict[str, Any],
    lang: str,
) -> None:
    """--engine spark: the Spark job writes the outputs; the counts are printed as usual."""
    from greenscreen.spark import screen_spark_file

    say = (lambda *a: None) if quiet else _out.print
    started = time.perf_counter()
    say(f"greenscreen {__version__}: screening {source} on Spark ({master or 'default master'})")
    run = screen_spark_file(source, out_dir, master=master, lang=lang, **options)  # type: ignore[arg-type]
    say(
        f"{run.n_input_rows:,} rows: {run.n_accepted:,} accepted, {run.n_rejected:,} rejected"
        + (f", {run.n_blank:,} blank rows ignored" if run.n_blank else "")
    )
    _list_outputs(run, out_dir, say)
    _done(run, started, strict, say)


def _list_outputs(run: Any, out_dir: Path, say: Callable[..., None]) -> None:
    say(f"outputs in {out_dir.resolve()}:")
    for path in run.paths.values():
        say(f"  {path}")
    if "results" in run.paths and "results_csv" not in run.paths:
        say(f"  results.csv not written: {run.n_accepted:,} projects > --csv-max-rows")


def _done(run: Any, started: float, strict: bool, say: Callable[..., None]) -> None:
    """The time taken; under --strict, rejected rows are exit 4 (batch and Spark runs)."""
    say(f"done in {time.perf_counter() - started:.2f} s")
    if strict and run.n_rejected:
        rejects = run.paths["rejects"]
        click.echo(f"error: {run.n_rejected} rows rejected (strict mode); see {rejects}", err=True)
        sys.exit(EXIT_REJECTS)


def _write_packs(
    result: ScreenResult,
    out_dir: Path,
    ids: list[str] | None,
    lang: str,
    formats: tuple[str, ...],
    quiet: bool,
    workers: int = 0,
) -> PackList:
    """write_packs with a progress bar on stderr (hidden when quiet or not a terminal)."""
    from greenscreen.report import write_packs

    total = result.results.height if ids is None else len(ids)
    workers = _pack_workers(workers, total)
    with _packs_progress(total, quiet) as advance:
        return write_packs(
            result,
            out_dir,
            ids,
            lang=lang,  # type: ignore[arg-type]
            formats=formats,
            progress=advance,
            workers=workers,
        )


def _pack_workers(workers: int, total: int) -> int:
    """0: one process per CPU when there are 200 packs or more."""
    return workers or ((os.cpu_count() or 1) if total >= 200 else 1)


@contextmanager
def _packs_progress(total: int, quiet: bool) -> Iterator[Callable[[str], None]]:
    """A progress bar of packs on stderr (hidden when quiet or not a terminal)."""
    with Progress(
        TextColumn("packs"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=_err,
        disable=quiet,
        transient=True,
    ) as bar:
        task = bar.add_task("packs", total=total)
        yield lambda _pid: bar.advance(task)


def _screen(
    source: Path,
    out_dir: Path,
    *,
    strict: bool,
    quiet: bool,
    options: dict[str, Any],
    write_options: dict[str, Any] | None = None,
) -> None:

    from greenscreen.run import screen as run_screen

    say = (lambda *a: None) if quiet else _out.print
    started = time.perf_counter()
    say(f"greenscreen {__version__}: screening {source}")
    write_options = write_options or {}
    max_rows = write_options.get("portfolio_max_rows", 100_000)
    packs = bool(write_options.get("packs"))
    stages = ["read", "rulebooks", "emissions", "subsidies", "appraisal", "write"]
    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        TextColumn("stage {task.completed:.0f}/{task.total:.0f}"),
        TimeElapsedColumn(),
        console=_err,
        disable=quiet,
        transient=True,
    ) as bar:
        task = bar.add_task("read", total=len(stages))

        def on_stage(name: str) -> None:
            bar.update(task, description=name, completed=stages.index(name))
            if name == "rulebooks":
                _freeze_long_lived()

        result = run_screen(source, on_stage=on_stage, **options)
        on_stage("write")
        write = partial(
            result.write,
            out_dir,
            portfolio=max_rows > 0,
            portfolio_max_rows=max(max_rows, 0),
            csv_max_rows=write_options.get("csv_max_rows", CSV_MAX_ROWS),
            lang=write_options.get("lang", "en"),
        )
        if not packs:
            paths = write()
    if packs:  # the packs' own progress bar (one live display at a time)
        total = result.results.height
        workers = _pack_workers(write_options.get("workers", 0), total)
        with _packs_progress(total, quiet) as advance:
            paths = write(packs=True, workers=workers, on_pack=advance)
    if not quiet:
        print_screened(
            result,
            paths,
            out_dir,
            max_rows,
            packs,
            write_options.get("csv_max_rows", CSV_MAX_ROWS),
        )
    _record_run(result, out_dir, source, say)
    say(f"done in {time.perf_counter() - started:.2f} s")
    pipeline = result.pipeline
    if strict and pipeline.rejects.height:
        click.echo(
            f"error: {pipeline.n_rejected} rows rejected (strict mode); see {paths['rejects']}",
            err=True,
        )
        sys.exit(EXIT_REJECTS)


#: set by ``screen``: whether and where to register the run (``demo`` does not register)
_REGISTRATION: dict[str, Any] = {"enabled": False}


def _utc_now() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _record_run(result: Any, out_dir: Path, source: Path, say: Callable[..., None]) -> None:
    """Record a finished run in the run register (after its outputs are in place: a run that
    failed is not registered). A register that cannot be written is an error (exit 1): the
    audit trail is the point; --no-register skips it."""
    if not _REGISTRATION.get("enabled"):
        return
    from greenscreen.register import open as open_register

    register = open_register(_REGISTRATION.get("path"))
    try:
        run_id = result.register(
            register,
            out_dir=out_dir,
            input_path=source,
            analyst=_REGISTRATION.get("analyst"),
            options=_REGISTRATION.get("options"),
            started=_REGISTRATION.get("started"),
        )
    except GreenscreenError as exc:
        raise GreenscreenError(
            f"the outputs were written to {out_dir} but the run was not registered: {exc}"
        ) from exc
    say(f"registered as run {run_id} in {register.path}")


_register_option = click.option(
    "--register",
    "register_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The run register (default: $GREENSCREEN_HOME/runs.duckdb, ~/.greenscreen/runs.duckdb).",
)


@cli.group()
def runs() -> None:
    """The run register: list, show, compare and export recorded runs.

    RUN is a run id or a unique prefix of one, latest, or latest~N (N runs before latest)."""


@runs.command("list")
@_register_option
@click.option("--input", "input_", help="Input file name (part of it) or SHA-256 prefix.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Finished on or after (UTC).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Finished on or before (UTC).")
@click.option("--analyst", help="Runs by this analyst.")
def runs_list(
    register_path: Path | None,
    input_: str | None,
    since: Any,
    until: Any,
    analyst: str | None,
) -> None:
    """List registered runs, newest first."""
    from greenscreen.register import open as open_register

    register = open_register(register_path)
    frame = register.list(
        input=input_,
        since=since.date() if since else None,
        until=until.date() if until else None,
        analyst=analyst,
    )
    print_runs(frame, register.path)


@runs.command("show")
@click.argument("run")
@_register_option
def runs_show(run: str, register_path: Path | None) -> None:
    """Show a run: who, when, input, tool version, options, counts, rules and factor files."""
    from greenscreen.register import open as open_register

    register = open_register(register_path)
    info = register.get(run).row(0, named=True)
    print_run(info, register.sources(info["run_id"]))


@runs.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for diff.parquet, diff.xlsx and diff.html.",
)
@_register_option
def runs_diff(run_a: str, run_b: str, out_dir: Path, register_path: Path | None) -> None:
    """Compare two runs: status migrations per rulebook and every changed project, with causes."""
    from greenscreen.register import open as open_register

    compared = open_register(register_path).diff(run_a, run_b)
    paths = compared.write(out_dir)
    _out.print(compared.summary(), markup=False)
    _out.print(f"wrote {', '.join(str(p) for p in paths.values())}")


@runs.command("export")
@click.argument("run")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write the run's outputs to.",
)
@_register_option
def runs_export(run: str, out_dir: Path, register_path: Path | None) -> None:
    """Write a run's outputs again from the register (packs: greenscreen pack)."""
    from greenscreen.register import open as open_register

    paths = open_register(register_path).export(run, out_dir)
    _out.print(f"wrote {len(paths)} files to {out_dir.resolve()}")


@cli.command()
@click.argument("run")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for the new run's outputs.",
)
@click.option(
    "--rulebooks",
    "rulebook_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Rulebook directory to screen with (default: the run's own, as it is now).",
)
@click.option(
    "--as-of",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Screen every project as if approved on this date (selects rule versions).",
)
@click.option(
    "--diff-out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the diff against the original run (default: OUT-diff).",
)
@_register_option
@click.option("--analyst", help="Who ran it (default: the OS user).")
def rescreen(
    run: str,
    out_dir: Path,
    rulebook_dir: Path | None,
    as_of: Any,
    diff_out: Path | None,
    register_path: Path | None,
    analyst: str | None,
) -> None:
    """Screen a registered run's input again (other rules, another date), register it and diff
    it against the original."""
    from greenscreen.register import open as open_register
    from greenscreen.register import rescreen as run_rescreen

    register = open_register(register_path)
    _, run_id, compared = run_rescreen(
        register,
        run,
        out_dir,
        rulebooks=rulebook_dir.resolve() if rulebook_dir else None,
        as_of=as_of.date() if as_of else None,
        analyst=analyst,
        diff_out=diff_out,
    )
    print_rescreened(
        out_dir, run_id, compared, diff_out or out_dir.with_name(out_dir.name + "-diff")
    )


def _emissions_config(policy: str, series: str, factors_dir: Path | None = None) -> Any:
    from greenscreen.emissions import EmissionsConfig

    name, _, year = series.partition(":")
    if not year.isdigit():
        raise click.BadParameter(
            f"expected SERIES:YEAR, got '{series}'", param_hint="--grid-series"
        )
    return EmissionsConfig(
        policy=policy,  # type: ignore[arg-type]
        average_series=name,
        average_vintage=int(year),
        factors_dir=str(factors_dir) if factors_dir else None,
    )


def _appraisal_config(
    profile: str, target_dscr: float, carbon_price: float, discount_rate: float | None
) -> Any:
    from greenscreen.appraisal import AppraisalConfig

    if target_dscr <= 0:
        raise click.BadParameter("must be positive", param_hint="--target-dscr")
    options: dict[str, Any] = {
        "debt_profile": profile,
        "target_dscr": target_dscr,
        "carbon_price": carbon_price,
    }
    if discount_rate is not None:
        options["discount_rate"] = discount_rate
    return AppraisalConfig(**options)


def _subsidy_config(funding_cost: float | None) -> Any:
    from greenscreen.subsidy import SubsidyConfig

    return SubsidyConfig(funding_cost=funding_cost)


_INTERRUPTED = threading.Event()


def _interrupt(signum: int, frame: Any) -> None:
    """Ctrl-C or SIGTERM: remember it, then interrupt as Python does. A polars query running
    at that moment reports the interrupt as ``RuntimeError: Query interrupted``; the flag
    lets that be an interruption (exit 130), not a bug."""
    _INTERRUPTED.set()
    signal.default_int_handler(signum, frame)


#: polars' allocator (jemalloc) keeps freed pages 5 s before returning them to the system
#: instead of at once: a screen of 1,000,000 projects spent 6.4-7.5 of its 34-36 CPU s in the
#: kernel faulting fresh pages in; with this 4.1-4.3 s, 1-1.5 s less wall time, peak RSS
#: 2.83 instead of 2.63 GB (benchmarks/README.md, issue 23). Set before polars is imported
#: (the commands import it); a value the user set wins; harmless where polars uses another
#: allocator.
_ALLOCATOR = ("_RJEM_MALLOC_CONF", "dirty_decay_ms:5000,muzzy_decay_ms:5000")


def main(argv: list[str] | None = None) -> None:
    """The console-script entry point: runs the command, maps errors to messages and exit codes.

    Parameters
    ----------
    argv : list of str, optional
        The arguments; default ``sys.argv[1:]``.

    Raises
    ------
    SystemExit
        Always, with the exit code: 0 success, 1 an error in the input, files or output
        folder, 2 a usage error, 3 an internal error, 4 rows rejected under ``--strict``,
        130 interrupted.
    """
    os.environ.setdefault(*_ALLOCATOR)
    if threading.current_thread() is threading.main_thread():
        # SIGTERM stops a run like Ctrl-C: its hidden output folder is removed, the previous
        # outputs stay (SIGKILL cannot be caught; the next run removes what it leaves)
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = cli.main(args=argv, prog_name="greenscreen", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        code = EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except PipelineError as exc:
        click.echo(f"error: {exc}", err=True)
        code = EXIT_REJECTS if exc.rejects is not None else EXIT_ERROR
    except GreenscreenError as exc:
        click.echo(f"error: {exc}", err=True)
        code = EXIT_ERROR
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        code = EXIT_INTERRUPTED
    except Exception as exc:  # a bug in greenscreen, not a user mistake
        if _INTERRUPTED.is_set():  # …unless a signal interrupted a library mid-call
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        if os.environ.get("GREENSCREEN_DEBUG"):
            traceback.print_exc()
        click.echo(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "this is a bug in greenscreen; rerun with GREENSCREEN_DEBUG=1 for the traceback",
            err=True,
        )
        code = EXIT_INTERNAL
    _freeze_long_lived()  # the interpreter's last collections would walk them all again
    sys.exit(code if isinstance(code, int) else 0)


def _freeze_long_lived() -> None:
    """Move every object alive now out of the garbage collector's sight (``gc.freeze``).

    Once a screen's modules, rulebooks and programmes are loaded they live until the process
    ends, yet each full collection walks them again: at 1,000,000 projects the collections
    took 0.61 s of a run and the interpreter's exit 0.5-0.9 s more; frozen when the rulebooks
    stage starts and again before exiting, 0.13 s and ~0.1 s (benchmarks/README.md, issue 23).
    Only the command line does this: a library must not change its host's collector.
    """
    gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    main()
