"""The orchestrator: read a pipeline, run every screening step, write the outputs.

Steps run in order over the whole table at once (pvlib's ModelChain is the model). Each later
capability (rulebooks, emissions, subsidies, appraisal) adds its columns to ``results`` here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from greenscreen import __version__
from greenscreen._outputs import (
    CSV_MAX_ROWS,
    DATA_FILES,
    OUTPUT_FILES,
    PORTFOLIO_MAX_ROWS,
    atomic_write,
    csv_compatible,
    output_set,
    sink_parquet,
    write_parquet,
    writes_csv,
)
from greenscreen.appraisal import Appraisal, AppraisalConfig, appraise
from greenscreen.emissions import EmissionsConfig, estimate
from greenscreen.engine import (
    CONFLICT_FLAG,
    DECISION_SCHEMA,
    decisions_file,
    decisions_frame,
    evaluate,
    prepare,
)
from greenscreen.errors import GreenscreenError, did_you_mean
from greenscreen.io import Pipeline, read_pipeline
from greenscreen.rulebook import Rulebook, bundled_rulebooks, load_rulebooks
from greenscreen.schema import TEMPLATE_VERSION
from greenscreen.subsidy import (
    Programme,
    Subsidies,
    SubsidyConfig,
    bundled_programmes,
    evaluate_programmes,
    load_programmes,
)

if TYPE_CHECKING:
    from greenscreen.report.labels import Lang


@dataclass(frozen=True)
class ScreenResult:
    """Everything one screening run produced.

    ``results`` has one row per accepted project (the DESIGN.md output contract: later steps
    add their columns); ``rejects`` one row per problem found in the input.
    """

    results: pl.DataFrame
    pipeline: Pipeline
    decisions_lazy: pl.LazyFrame = field(
        default_factory=lambda: decisions_file(DECISION_SCHEMA.to_frame(), ())
    )
    rulebooks: tuple[Rulebook, ...] = ()
    emissions_config: EmissionsConfig = field(default_factory=EmissionsConfig)
    subsidies: Subsidies | None = None
    programmes: tuple[Programme, ...] = ()
    appraisal: Appraisal | None = None
    appraisal_config: AppraisalConfig = field(default_factory=AppraisalConfig)

    @cached_property
    def decisions(self) -> pl.DataFrame:
        """One row per project × rulebook × criterion (see engine.DECISION_SCHEMA)."""
        return decisions_frame(self.decisions_lazy)

    @property
    def rejects(self) -> pl.DataFrame:
        """The pipeline's rejects: one row per problem found in the input."""
        return self.pipeline.rejects

    def metadata(
        self, *, sha256: str | None = None, counts: Mapping[str, int] | None = None
    ) -> dict[str, Any]:
        """The run record written to ``run.json``.

        Deterministic (no wall-clock time), so the same inputs give byte-identical outputs.

        Parameters
        ----------
        sha256 : str, optional
            The input file's SHA-256, when the pipeline was not read from the file whole (a
            batched or Spark run reads it in parts); default: the pipeline's.
        counts : mapping of str to int, optional
            The run's counts, when they are not this pipeline's (a batched run counts the
            whole file and its batches); default: ``input_rows``, ``accepted``, ``rejected``,
            ``reject_rows`` and ``blank_rows_ignored`` of the pipeline.

        Returns
        -------
        dict
            ``tool``, ``version``, ``input_template``, ``input`` (source, column mapping,
            ``notes``: encoding, dropped columns and unit conversions), ``rulebooks``,
            ``programmes``, ``emissions``, ``appraisal`` and ``counts``; the output set adds
            ``outputs``.
        """
        source = self.pipeline.source
        return {
            "tool": "greenscreen",
            "version": __version__,
            "input_template": TEMPLATE_VERSION,
            "input": {
                "name": source.name,
                "format": source.format,
                "sha256": sha256 if sha256 is not None else source.sha256,
                "encoding": source.encoding,
                "sheet": source.sheet,
                "label_row_skipped": source.label_row_skipped,
                "columns": {m.header: m.field for m in source.columns},
                "notes": list(self.pipeline.notes),
                "extra_columns": list(source.extra_columns),
            },
            "rulebooks": [
                {
                    "id": book.id,
                    "version": book.version,
                    "effective": str(book.effective) if book.effective else None,
                    "verification": book.verification,
                    "file": Path(book.path).name if book.path else None,
                }
                for book in self.rulebooks
            ],
            "programmes": [
                {"id": p.id, "version": p.version, "kind": p.kind, "verification": p.verification}
                for p in self.programmes
            ],
            "emissions": {
                key: value
                for key, value in asdict(self.emissions_config).items()
                if key != "plausible_hours"
            },
            "appraisal": {key: value for key, value in asdict(self.appraisal_config).items()},
            "counts": dict(counts)
            if counts is not None
            else {
                "input_rows": self.pipeline.n_input_rows,
                "accepted": self.pipeline.n_accepted,
                "rejected": self.pipeline.n_rejected,
                "reject_rows": self.rejects.height,
                "blank_rows_ignored": self.pipeline.n_blank,
            },
        }

    def write(
        self,
        out_dir: str | Path,
        *,
        portfolio: bool = True,
        portfolio_max_rows: int = PORTFOLIO_MAX_ROWS,
        csv_max_rows: int = CSV_MAX_ROWS,
        lang: Lang = "en",
        packs: bool = False,
        workers: int = 1,
        on_pack: Callable[[str], None] | None = None,
        reports: bool = True,
    ) -> dict[str, Path]:
        """Write the run's output set: data files, reports and ``run.json``.

        The whole set is written into a hidden folder next to ``out_dir`` and swapped in
        (:mod:`greenscreen._outputs`): the folder always holds one complete run, whose
        ``run.json`` lists the outputs, and an interrupted run leaves the previous set. Files
        the user put in the folder are kept. CSVs carry a UTF-8 BOM so Excel shows Chinese text.

        Parameters
        ----------
        out_dir : str or pathlib.Path
            The output folder.
        portfolio : bool
            Write ``portfolio.xlsx`` (the batch workbook).
        portfolio_max_rows : int
            Above this many projects ``portfolio.xlsx`` and ``requests.xlsx`` are not written:
            Excel is the wrong tool there, and the Parquet results hold everything.
        csv_max_rows : int
            Above this many projects ``results.csv`` is not written (0: never); default
            :data:`greenscreen._outputs.CSV_MAX_ROWS`.
        lang : {"en", "zh"}
            The reports' language.
        packs : bool
            Also write every project's pack to ``packs/``; packs of the previous set that are up
            to date are reused.
        workers : int
            Processes writing the packs.
        on_pack : callable, optional
            Called with each project id after its pack.
        reports : bool
            False writes the data files and ``run.json`` only.

        Returns
        -------
        dict of str to pathlib.Path
            The outputs written, by key (:data:`greenscreen._outputs.OUTPUT_FILES`).
        """
        out = Path(out_dir)
        with output_set(out) as staged:
            alongside = None
            if reports:  # the human reports are the report layer's: imported only here
                from greenscreen.report import write_run_reports

                alongside = partial(
                    write_run_reports,
                    self,
                    staged.path,
                    portfolio=portfolio,
                    portfolio_max_rows=portfolio_max_rows,
                    lang=lang,
                    packs=packs,
                    workers=workers,
                    on_pack=on_pack,
                    reuse=staged.final / "packs",
                )
            paths = self.write_data(staged.path, csv_max_rows=csv_max_rows, alongside=alongside)
            staged.commit(self.metadata())
        paths["run"] = staged.path / "run.json"
        return {key: out / path.name for key, path in paths.items()}

    def write_data(
        self,
        out: Path,
        *,
        csv_max_rows: int = CSV_MAX_ROWS,
        alongside: Callable[[], dict[str, Path]] | None = None,
    ) -> dict[str, Path]:
        """Write the data files into a folder.

        Results (Parquet, and CSV up to ``csv_max_rows`` projects), decisions, rejects, and
        when there are any, subsidies, the payment schedule and sensitivities
        (:data:`greenscreen._outputs.DATA_FILES`). The human reports are written by
        :func:`greenscreen.report.write_run_reports`, ``run.json`` by the output set (last).

        Parameters
        ----------
        out : pathlib.Path
            The folder (an output set's staging folder).
        csv_max_rows : int
            Above this many projects ``results.csv`` is not written (0: never).
        alongside : callable, optional
            More writing (the reports) to do while ``decisions.parquet`` is written; returns
            the paths it wrote, added to the result.

        Returns
        -------
        dict of str to pathlib.Path
            The files written, by key.
        """
        paths = {key: out / OUTPUT_FILES[key].name for key in DATA_FILES}
        # decisions.parquet (14 M rows at 1M projects, streamed) is written on a thread of its
        # own while everything else is written here: its sink is the longest write and leaves
        # part of a core idle (benchmarks/README.md, issue 23)
        with ThreadPoolExecutor(max_workers=1) as pool:
            decisions = pool.submit(atomic_write, paths["decisions"], self._write_decisions)
            atomic_write(paths["results"], partial(write_parquet, self.results))
            if writes_csv(self.results.height, csv_max_rows):
                atomic_write(
                    paths["results_csv"],
                    lambda p: csv_compatible(self.results).write_csv(p, include_bom=True),
                )
            else:
                del paths["results_csv"]
            atomic_write(paths["rejects"], lambda p: self.rejects.write_csv(p, include_bom=True))
            if self.subsidies is not None:
                awards = self.subsidies.awards
                schedule = self.subsidies.schedule
                atomic_write(paths["subsidies"], partial(write_parquet, awards))
                atomic_write(paths["schedule"], partial(write_parquet, schedule))
            else:
                del paths["subsidies"], paths["schedule"]
            if self.appraisal is not None and self.appraisal.sensitivities.height:
                table = self.appraisal.sensitivities
                atomic_write(paths["sensitivities"], partial(write_parquet, table))
            else:
                del paths["sensitivities"]
            if alongside is not None:
                paths |= alongside()
            decisions.result()
        return paths

    def register(self, register: Any = None, **details: Any) -> str:
        """Record this run in the run register and return its run id.

        The register lives in its own module: screening needs no database.

        Parameters
        ----------
        register : Register, str or pathlib.Path, optional
            A :class:`greenscreen.register.Register` or its path; default
            ``$GREENSCREEN_HOME/runs.duckdb``.
        **details
            As :func:`greenscreen.register.register_run`: ``out_dir``, ``input_path``,
            ``analyst``, ``options``.

        Returns
        -------
        str
            The run id.
        """
        from greenscreen.register import register_run

        return register_run(self, register, **details)

    def subset(self, project_ids: Sequence[str]) -> ScreenResult:
        """The same run restricted to some projects.

        What their packs need, small enough to hand to another process. Run-level records
        (rejects, counts, versions) are kept.

        Parameters
        ----------
        project_ids : sequence of str

        Returns
        -------
        ScreenResult
        """
        keep = pl.Series("project_id", list(project_ids), dtype=pl.String).implode()

        def only(frame: pl.DataFrame) -> pl.DataFrame:
            return frame.filter(pl.col("project_id").is_in(keep))

        decisions = self.decisions if "decisions" in self.__dict__ else self.decisions_lazy
        subsidies = self.subsidies and Subsidies(
            only(self.subsidies.awards),
            only(self.subsidies.schedule),
            only(self.subsidies.per_project),
        )
        return replace(
            self,
            results=only(self.results),
            pipeline=replace(self.pipeline, projects=only(self.pipeline.projects)),
            decisions_lazy=decisions_file(
                decisions.lazy().filter(pl.col("project_id").is_in(keep)), self.rulebooks
            )
            .collect()
            .lazy(),
            subsidies=subsidies,
            appraisal=self.appraisal and self.appraisal.subset(keep),
        )

    def _write_decisions(self, path: str) -> None:
        # streamed: the long table never sits in memory whole
        decisions = self.decisions if "decisions" in self.__dict__ else self.decisions_lazy
        sink_parquet(decisions_file(decisions, self.rulebooks), path)


def screen(
    source: Any,
    *,
    rulebooks: Sequence[Rulebook] | str | Path | None = None,
    emissions: EmissionsConfig | None = None,
    subsidies: SubsidyConfig | None = None,
    appraisal: AppraisalConfig | None = None,
    sensitivities: bool = False,
    programmes: Sequence[Programme] | None = None,
    on_stage: Callable[[str], object] | None = None,
    **read_options: Any,
) -> ScreenResult:
    """Screen a pipeline: read it and run every step over the whole table.

    Steps, in order: read and validate (unless ``source`` is a :class:`Pipeline`), evaluate
    every rulebook (:func:`greenscreen.engine.evaluate`), estimate avoided emissions
    (:func:`greenscreen.emissions.estimate`), evaluate the subsidy and relending programmes
    (:func:`greenscreen.subsidy.evaluate_programmes`), appraise the projects
    (:func:`greenscreen.appraisal.appraise`). Each step adds its columns to ``results``.

    Parameters
    ----------
    source : Pipeline, str, pathlib.Path, DataFrame or list of dict
        A :class:`~greenscreen.io.Pipeline` already read, or anything
        :func:`~greenscreen.io.read_pipeline` accepts.
    rulebooks : sequence of Rulebook, str or pathlib.Path, optional
        Loaded rulebooks, or a directory whose rulebooks and programmes replace (same id) or
        extend the bundled ones. Default: the bundled rulebooks and programmes.
    emissions : EmissionsConfig, optional
        Avoided-emissions choices (grid policy, series, GWP); default
        :class:`~greenscreen.emissions.EmissionsConfig`.
    subsidies : SubsidyConfig, optional
        Programme choices (the bank's funding cost for relending benefit); default
        :class:`~greenscreen.subsidy.SubsidyConfig`.
    appraisal : AppraisalConfig, optional
        Financial defaults and choices (tax, discount rate, debt profile, carbon price);
        default :class:`~greenscreen.appraisal.AppraisalConfig`.
    sensitivities : bool
        Also compute the tornado table (±10 % capex, tariff, generation, opex; carbon
        prices): eleven more model runs, so off by default for batches.
    programmes : sequence of Programme, optional
        Loaded subsidy programmes, replacing those found with ``rulebooks`` (Spark executors
        get the driver's loaded objects and read no files). Programmes that depend on a
        rulebook not screened are left out.
    on_stage : callable, optional
        Called with the name of each stage as it starts (``read``, ``rulebooks``,
        ``emissions``, ``subsidies``, ``appraisal``): for progress displays.
    **read_options
        Passed to :func:`~greenscreen.io.read_pipeline` (``sheet``, ``encoding``, ``strict``…).

    Returns
    -------
    ScreenResult
        ``results`` (one row per accepted project: the input columns, then per rulebook
        status, item, missing fields and flags, the emissions, subsidy and appraisal
        columns), the decisions, rejects, subsidies, appraisal and the configuration used.

    Raises
    ------
    PipelineError
        The input cannot be read (or, ``strict``, has rejected rows).
    RulebookError
        A rulebook or programme in ``rulebooks`` is invalid.
    """
    stage = on_stage or (lambda name: None)
    stage("read")
    pipeline = source if isinstance(source, Pipeline) else read_pipeline(source, **read_options)
    books, found = resolve_rulebooks(rulebooks)
    if programmes is not None:
        found = tuple(programmes)
    screened = {book.id for book in books}
    found = tuple(p for p in found if set(p.depends_on) <= screened)
    stage("rulebooks")
    prepared = prepare(pipeline.projects, books)
    config = emissions or EmissionsConfig()
    # the emissions read the inputs, the inferred activity and the generation only: estimated
    # on a thread of their own while the rules are evaluated, which leave most of a core idle
    # (at 1M projects 0.7-0.9 s less; benchmarks/README.md, issue 23)
    inputs = pipeline.projects.with_columns(prepared.select("activity", "generation_mwh"))
    with ThreadPoolExecutor(max_workers=1) as pool:
        estimating = pool.submit(estimate, inputs, config)
        screening = evaluate(prepared, books, prepared=True)
        stage("emissions")
        avoided = estimating.result()
    # activity may have been inferred from the description: the engine's column replaces it
    added = [c for c in screening.per_project.columns if c not in ("project_id", "activity")]
    results = pipeline.projects.with_columns(screening.per_project.select("activity", *added))
    results = results.with_columns(avoided.drop("project_id"))
    stage("subsidies")
    awarded = evaluate_programmes(results, found, subsidies or SubsidyConfig())
    results = results.with_columns(awarded.per_project.drop("project_id"))
    stage("appraisal")
    finance_config = appraisal or AppraisalConfig()
    finance = appraise(results, finance_config, awarded.schedule, sensitivities=sensitivities)
    results = results.with_columns(finance.metrics.drop("project_id"))
    return ScreenResult(
        results,
        pipeline,
        screening.decisions_lazy,
        books,
        config,
        awarded,
        found,
        finance,
        finance_config,
    )


def resolve_rulebooks(
    rulebooks: Sequence[Rulebook] | str | Path | None,
) -> tuple[tuple[Rulebook, ...], tuple[Programme, ...]]:
    """The rulebooks and programmes :func:`screen` uses for its ``rulebooks`` argument.

    Parameters
    ----------
    rulebooks : sequence of Rulebook, str or pathlib.Path, optional
        Loaded rulebooks (with the bundled programmes), a directory (loaded and checked
        here, with its programmes), or None for the bundled ones.

    Returns
    -------
    rulebooks : tuple of Rulebook
    programmes : tuple of Programme

    Raises
    ------
    RulebookError
        An invalid file in the directory.
    """
    if rulebooks is None:
        return bundled_rulebooks(), bundled_programmes()
    if isinstance(rulebooks, str | Path):
        return tuple(load_rulebooks(rulebooks)), tuple(load_programmes(rulebooks))
    return tuple(rulebooks), bundled_programmes()


def explain(result: ScreenResult, project_id: str, *, lang: str = "en") -> str:
    """A readable decision trace of one project.

    Per rulebook the status, the item, whether the rulebook governs the loan, the fields to
    ask for, the flags, and every criterion with value, threshold and clause.

    Parameters
    ----------
    result : ScreenResult
    project_id : str
    lang : {"en", "zh"}
        The language of rulebook and item names.

    Returns
    -------
    str

    Raises
    ------
    GreenscreenError
        The project was rejected (with the reasons) or is not in the pipeline.
    """
    row = result.results.filter(pl.col("project_id") == project_id)
    if row.height == 0:
        rejected = result.rejects.filter(pl.col("project_id") == project_id)
        if rejected.height:
            reasons = "; ".join(rejected["reason"].to_list())
            raise GreenscreenError(f"project {project_id} was rejected: {reasons}")
        raise GreenscreenError(
            f"no project '{project_id}' in the pipeline"
            + did_you_mean(project_id, result.results["project_id"].to_list())
        )
    project = row.row(0, named=True)
    lines = [
        f"{project_id}  {project.get('project_name') or ''}".rstrip(),
        f"  activity: {project['activity']} ({project.get('activity_source') or 'none'})"
        f"   province: {project.get('province') or '-'}"
        f"   approval date: {project.get('approval_date') or 'not given (current rules applied)'}",
    ]
    if project.get("activity") is None:
        near = project.get("activity_candidates") or []
        lines.append(
            "  activity not given and not inferred from the description"
            + (f"; nearest: {', '.join(near)} (give one as activity)" if near else "")
        )
    decisions = result.decisions.filter(pl.col("project_id") == project_id)
    for book in result.rulebooks:
        status = project[f"{book.id}__status"]
        code = project[f"{book.id}__item"]
        governs = (
            "governs this loan" if project[f"{book.id}__applies"] else "not in force for this loan"
        )
        lines.append("")
        lines.append(f"{book.id} ({book.title.get(lang)}; {book.version}) — {governs}")
        name = book.item(code).name.get(lang) if code else ""
        lines.append(f"  status: {status}" + (f"   item {code} {name}" if code else ""))
        if f"{book.id}__sc_met" in project and code:
            sc = {True: "met", False: "not met", None: "undecided"}[project[f"{book.id}__sc_met"]]
            lines.append(
                f"  substantial contribution: {sc} (aligned also needs DNSH and minimum safeguards)"
            )
        missing = project.get(f"{book.id}__missing")
        if missing:
            lines.append(f"  ask the client for: {', '.join(missing)}")
        flags = project.get(f"{book.id}__flags")
        if flags:
            lines.append(f"  flags: {', '.join(flags)}")
        if CONFLICT_FLAG in (flags or []):
            lines.append(
                f"  industry_code {project.get('industry_code')} is not a GB/T row of the items"
                f" its activity {project.get('activity')} matches: check either"
            )
        rows = decisions.filter(pl.col("rulebook") == book.id).sort(
            "selected", descending=True, maintain_order=True
        )
        for rec in rows.iter_rows(named=True):
            mark = "*" if rec["selected"] else " "
            gate = "" if rec["gate"] else " (reported, not gating)"
            lines.append(
                f"  {mark} [{rec['result']:7s}] {rec['item'] or '-'} {rec['criterion']}: "
                f"{rec['value'] or ''} vs {rec['threshold']}{gate}"
            )
            lines.append(f"      clause: {rec['clause']} ({rec['verification']})")
    return "\n".join(lines)
