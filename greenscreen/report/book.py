"""Periodic green-finance reports over a loan book: tables, report.xlsx, report.html, Parquet.

:func:`build_report` turns the per-loan table of :func:`greenscreen.loans.attribute` into five
report tables (all vectorised group-bys; no per-loan Python):

``green_loan_statistics``
    balances, loans, projects, new lending and repayments in the period by green class
    (green / not_green / insufficient_data under the governing China catalogue), by the
    catalogue's level-1 and level-2 categories, by province and by borrower type (green loans);
``cerf_disclosure``
    the quarterly 碳减排贷款信息披露表 by carbon-reduction area for the quarter, the year to date
    and since first support, plus the refinanceable amount (60 %) and the relending cost (1.75 %);
``benefits``
    attributed avoided tCO2e and standard coal by catalogue category, beside the projects' own;
``pcaf``
    financed emissions by activity with the outstanding-weighted data-quality score, avoided
    emissions in their own column;
``disclosure_jrt0227``
    the investment-and-financing environmental-impact indicators of a JR/T 0227-2021 report.

:func:`write_report` writes them (and ``loans.parquet``) as one output set; every total in
``report.xlsx`` is a live formula written with its computed value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import xlsxwriter
from xlsxwriter.utility import xl_rowcol_to_cell

from greenscreen import __version__
from greenscreen._outputs import atomic_write, output_set
from greenscreen.errors import GreenscreenError
from greenscreen.loans import (
    CERF_RATE,
    CERF_SHARE,
    LOAN_TEMPLATE_VERSION,
    LoanBook,
    Period,
    attribute,
    category_names,
    parse_period,
    read_loans,
)

TEN_THOUSAND = 1e4  # 万元

#: Figures of the reports: key -> (definition, source). Shown in report.xlsx ("notes"),
#: report.html and the README.
DEFINITIONS: dict[str, tuple[str, str]] = {
    "balance": (
        "Σ outstanding_amount × syndicate_share × FX at period end [CNY]",
        "CBRC green-credit statistics report 信贷余额 [S]; FX at the period-end rate [S]",
    ),
    "new_lending": ("Σ drawn_in_period × syndicate_share × FX [CNY]", "greenscreen definition"),
    "green_class": (
        "the governing China catalogue's status: aligned/eligible = green, not_eligible = not "
        "green, insufficient_data; 2025 catalogue for loans approved from 2025-10-01, 2021 "
        "catalogue before (loan approval_date, else the project's)",
        "银发〔2025〕132号, effective 2025-10-01 [V]",
    ),
    "cerf_amount": (
        "CERF-supported loans (cerf_refinanced_amount > 0) issued (first drawdown, else "
        "approval) in the quarter / year to date / by period end: Σ commitment × share [万元]",
        "bank quarterly 碳减排贷款信息披露 template [S] (reporting_facts.md §1.2)",
    ),
    "cerf_rate": (
        "Σ(rate × amount) / Σ amount over the same loans [%]",
        "加权平均利率, amount-weighted [S/R]",
    ),
    "cerf_reduction": (
        "Σ project avoided tCO2e/yr × commitment / total investment (capped per project) "
        "[tCO2e/yr]; the PBoC's own per-loan rule was NOT FOUND: this apportionment is "
        "greenscreen's, inferred from CDB's published figures [R, unverified]",
        "reporting_facts.md §1.1",
    ),
    "cerf_refinanceable": ("60 % of the loan amount [万元]", "CERF terms [V] (Xinhua)"),
    "cerf_cost": ("1.75 % × refinanceable amount, per year [万元]", "CERF terms [V] (Xinhua)"),
    "attribution": (
        "bank outstanding / total project investment, capped so a project's loans sum to ≤ 1",
        "按照贷款资金占项目总投资的比例 (CBRC 2018 release) [S]; balance vs drawn not retrieved",
    ),
    "avoided": (
        "project avoided tCO2e/yr (greenscreen.emissions, factor in ef_source) × attribution",
        "emissions engine; CBRC benefit indicators 减排二氧化碳当量 [S]",
    ),
    "standard_coal": (
        "project standard coal saved [tce/yr] (displaced MWh × 305.5 gce/kWh, 2020 [V]) × "
        "attribution",
        "NDRC supply coal rate 2020 [V]; CBRC indicator 节约标准煤 [S]",
    ),
    "pollutants": (
        "SO2, NOx, particulates and water saved are NOT reported: the per-kWh factors are [R] "
        "or not found",
        "reporting_facts.md §3",
    ),
    "pcaf_attribution": (
        "bank outstanding / (total equity + debt): the pipeline's equity_plus_debt, else "
        "total_investment; capped per project",
        "PCAF Part A 2nd ed. §5.3 [S]",
    ),
    "financed": (
        "pcaf_attribution × the project's own scope 1+2 tCO2e/yr (greenscreen.loans."
        "project_emissions); avoided emissions reported separately, never netted",
        "PCAF Part A [S]",
    ),
    "pcaf_score": (
        "1 verified project emissions, 2 unverified, 3 energy or production data × factors; "
        "portfolio score = outstanding-weighted average",
        "PCAF Table 10.1-3 as cited by a public implementation [S]",
    ),
    "green_share": (
        "green-loan balance / total loans (the book's balance unless --total-loans is given)",
        "JR/T 0227-2021 §投融资活动的环境影响 (indicators in practice [S]; clause NOT FOUND)",
    ),
}


@dataclass(frozen=True)
class BookReport:
    """The report tables of one loan book for one period."""

    period: Period
    loans: pl.DataFrame
    statistics: pl.DataFrame
    cerf: pl.DataFrame
    benefits: pl.DataFrame
    pcaf: pl.DataFrame
    jrt0227: pl.DataFrame
    book: LoanBook | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def build_report(
    loans: pl.DataFrame,
    period: Period,
    *,
    total_loans_cny: float | None = None,
    book: LoanBook | None = None,
) -> BookReport:
    """The five report tables of a loan book for a period.

    Parameters
    ----------
    loans : polars.DataFrame
        The per-loan table of :func:`greenscreen.loans.attribute`.
    period : Period
        The reporting period.
    total_loans_cny : float, optional
        The bank's total loans for the JR/T 0227 share [CNY]; default the book's balance.
    book : LoanBook, optional
        The loan book as read (its source and rejects go into run.json and loan_rejects.csv).

    Returns
    -------
    BookReport
        :func:`statistics`, :func:`cerf_disclosure`, :func:`benefits`, :func:`pcaf` and
        :func:`jrt0227` of ``loans``.
    """
    return BookReport(
        period,
        loans,
        statistics(loans),
        cerf_disclosure(loans),
        benefits(loans),
        pcaf(loans),
        jrt0227(loans, total_loans_cny),
        book,
    )


_FLOWS = [
    pl.len().cast(pl.Int64).alias("loans"),
    pl.col("project_id").n_unique().cast(pl.Int64).alias("projects"),
    pl.col("outstanding_cny").sum().alias("balance_cny"),
    pl.col("drawn_in_period_cny").sum().alias("new_lending_cny"),
    pl.col("repaid_in_period_cny").sum().alias("repaid_cny"),
]


def statistics(loans: pl.DataFrame) -> pl.DataFrame:
    """Green-loan statistics: one block of rows per breakdown.

    Parameters
    ----------
    loans : polars.DataFrame
        The per-loan table of :func:`greenscreen.loans.attribute`.

    Returns
    -------
    polars.DataFrame
        ``breakdown`` (green class; the catalogue's level-1 and level-2 categories, province
        and borrower type of green loans), ``catalogue``, ``key``, then ``loans``,
        ``projects``, ``balance_cny`` [CNY], ``new_lending_cny`` [CNY] and ``repaid_cny``
        [CNY] in the period (:data:`DEFINITIONS` ``balance``, ``new_lending``).

    References
    ----------
    CBRC green-credit statistics report (信贷余额) [S]; 银发〔2025〕132号 for the green class
    [V].
    """
    names = category_names().rename({"rulebook": "catalogue", "code": "key"})
    green = loans.filter(pl.col("green_class") == "green")
    blocks = [
        loans.group_by("green_class")
        .agg(_FLOWS)
        .rename({"green_class": "key"})
        .with_columns(
            pl.lit("green_class").alias("breakdown"), pl.lit(None, pl.String).alias("catalogue")
        ),
    ]
    for breakdown, column in (
        ("category_l1", "green_category"),
        ("category_l2", "green_category_l2"),
    ):
        blocks.append(
            green.group_by("catalogue", column)
            .agg(_FLOWS)
            .rename({column: "key"})
            .with_columns(pl.lit(breakdown).alias("breakdown"))
        )
    for breakdown in ("province", "borrower_type"):
        blocks.append(
            green.group_by(pl.col(breakdown).fill_null("(not given)").alias("key"))
            .agg(_FLOWS)
            .with_columns(
                pl.lit(breakdown).alias("breakdown"), pl.lit(None, pl.String).alias("catalogue")
            )
        )
    order = ["breakdown", "catalogue", "key"]
    table = pl.concat([b.select(*order, *[e.meta.output_name() for e in _FLOWS]) for b in blocks])
    table = table.join(names, on=["catalogue", "key"], how="left")
    rank = {
        b: i
        for i, b in enumerate(
            ["green_class", "category_l1", "category_l2", "province", "borrower_type"]
        )
    }
    return table.sort(
        pl.col("breakdown").replace_strict(rank, return_dtype=pl.Int8),
        "catalogue",
        "key",
        nulls_last=True,
    ).select(
        *order,
        "name_zh",
        "name_en",
        "loans",
        "projects",
        "balance_cny",
        "new_lending_cny",
        "repaid_cny",
    )


CERF_SCOPES = {
    "quarter": ("issued_in_quarter", "本季度"),
    "year_to_date": ("issued_in_year", "本年度累计"),
    "since_first_support": ("issued_by_period_end", "获得碳减排支持工具支持以来累计"),
}


def cerf_disclosure(loans: pl.DataFrame) -> pl.DataFrame:
    """The quarterly 碳减排贷款信息披露表: one row per carbon-reduction area × period scope.

    Parameters
    ----------
    loans : polars.DataFrame
        The per-loan table of :func:`greenscreen.loans.attribute`.

    Returns
    -------
    polars.DataFrame
        Per CERF area (and ``unmapped``) and scope (``quarter``, ``year_to_date``,
        ``since_first_support``): projects, ``loan_amount_10k_cny`` [万元],
        ``weighted_avg_rate_pct`` [%], ``annual_reduction_tco2e`` [tCO2e/yr],
        ``cerf_received_10k_cny``, ``refinanceable_10k_cny`` (:data:`~greenscreen.loans.
        CERF_SHARE` of the amount) and ``relending_cost_10k_cny`` (at
        :data:`~greenscreen.loans.CERF_RATE` a year) [万元].

    References
    ----------
    Bank quarterly 碳减排贷款信息披露 template [S]; CERF terms (60 %, 1.75 %) [V] (Xinhua;
    taxonomy_facts.md §B). The per-loan reduction apportionment is greenscreen's
    (:data:`DEFINITIONS` ``cerf_reduction``) [R, unverified].
    """
    supported = loans.filter(pl.col("cerf_supported")).with_columns(
        pl.col("cerf_area").fill_null("unmapped")
    )
    areas = (
        category_names()
        .filter((pl.col("rulebook") == "pboc_cerf") & ~pl.col("code").str.contains(r"\."))
        .select(pl.col("code").alias("cerf_area"), "name_zh", "name_en")
    )
    areas = pl.concat(
        [
            areas,
            pl.DataFrame(
                {
                    "cerf_area": ["unmapped"],
                    "name_zh": ["未映射"],
                    "name_en": ["not a CERF area in the screen"],
                }
            ),
        ]
    )
    amount = pl.col("commitment_cny")
    rows = []
    for scope, (flag, label) in CERF_SCOPES.items():
        part = (
            supported.filter(pl.col(flag))
            .group_by("cerf_area")
            .agg(
                pl.col("project_id").n_unique().cast(pl.Int64).alias("projects"),
                (amount.sum() / TEN_THOUSAND).alias("loan_amount_10k_cny"),
                ((pl.col("interest_rate") * amount).sum() / TEN_THOUSAND).alias("_rate_x_amount"),
                (amount.filter(pl.col("interest_rate").is_not_null()).sum() / TEN_THOUSAND).alias(
                    "_rated"
                ),
                pl.col("cerf_reduction_tco2e").sum().alias("annual_reduction_tco2e"),
                (pl.col("cerf_refinanced_cny").sum() / TEN_THOUSAND).alias("cerf_received_10k_cny"),
            )
        )
        rows.append(
            areas.join(part, on="cerf_area", how="left").with_columns(
                pl.lit(scope).alias("scope"), pl.lit(label).alias("scope_zh")
            )
        )
    table = pl.concat(rows).with_columns(
        pl.col("projects").fill_null(0),
        *(
            pl.col(c).fill_null(0.0)
            for c in (
                "loan_amount_10k_cny",
                "_rate_x_amount",
                "_rated",
                "annual_reduction_tco2e",
                "cerf_received_10k_cny",
            )
        ),
    )
    # the unmapped row only when a supported loan has no CERF area
    table = table.filter((pl.col("cerf_area") != "unmapped") | (pl.col("loan_amount_10k_cny") > 0))
    return table.with_columns(
        pl.when(pl.col("_rated") > 0)
        .then(pl.col("_rate_x_amount") / pl.col("_rated") * 100)
        .alias("weighted_avg_rate_pct"),
        (pl.col("loan_amount_10k_cny") * CERF_SHARE).alias("refinanceable_10k_cny"),
        (pl.col("loan_amount_10k_cny") * CERF_SHARE * CERF_RATE).alias("relending_cost_10k_cny"),
    ).select(
        "scope",
        "scope_zh",
        "cerf_area",
        "name_zh",
        "name_en",
        "projects",
        "loan_amount_10k_cny",
        "weighted_avg_rate_pct",
        "annual_reduction_tco2e",
        "refinanceable_10k_cny",
        "relending_cost_10k_cny",
        "cerf_received_10k_cny",
        pl.col("_rated").alias("rated_amount_10k_cny"),
    )


def benefits(loans: pl.DataFrame) -> pl.DataFrame:
    """Attributed environmental benefits by catalogue, green class and level-1 category.

    Each project's own figures are beside them, each project counted once.

    Parameters
    ----------
    loans : polars.DataFrame
        The per-loan table of :func:`greenscreen.loans.attribute`.

    Returns
    -------
    polars.DataFrame
        ``avoided_tco2e_attributed`` [tCO2e/yr] and ``standard_coal_tce_attributed``
        [tce/yr] (project figure × the bank's attribution), the projects' own
        ``project_avoided_tco2e`` and ``project_standard_coal_tce``, loans, projects,
        ``balance_cny`` [CNY] and loans without an attribution.

    References
    ----------
    CBRC benefit indicators 减排二氧化碳当量, 节约标准煤 [S]; attribution by the loan's share of
    total investment (CBRC 2018) [S]; 305.5 gce/kWh (NDRC, 2020) [V].
    """
    keys = ["catalogue", "green_class", "green_category"]
    projects = (
        loans.unique(["project_id", *keys], maintain_order=True)
        .group_by(keys)
        .agg(
            pl.col("avoided_tco2e_per_year").sum().alias("project_avoided_tco2e"),
            pl.col("standard_coal_saved_tce_per_year").sum().alias("project_standard_coal_tce"),
        )
    )
    names = category_names().rename({"rulebook": "catalogue", "code": "green_category"})
    return (
        loans.group_by(keys)
        .agg(
            pl.len().cast(pl.Int64).alias("loans"),
            pl.col("project_id").n_unique().cast(pl.Int64).alias("projects"),
            pl.col("outstanding_cny").sum().alias("balance_cny"),
            pl.col("avoided_tco2e_attributed").sum().alias("avoided_tco2e_attributed"),
            pl.col("standard_coal_tce_attributed").sum().alias("standard_coal_tce_attributed"),
            pl.col("attribution").is_null().sum().cast(pl.Int64).alias("loans_without_attribution"),
        )
        .join(projects, on=keys, how="left", nulls_equal=True)
        .join(names, on=["catalogue", "green_category"], how="left")
        .sort(keys, nulls_last=True)
        .select(
            *keys,
            "name_zh",
            "name_en",
            "loans",
            "projects",
            "balance_cny",
            "avoided_tco2e_attributed",
            "standard_coal_tce_attributed",
            "project_avoided_tco2e",
            "project_standard_coal_tce",
            "loans_without_attribution",
        )
    )


def pcaf(loans: pl.DataFrame) -> pl.DataFrame:
    """PCAF project-finance financed emissions by activity; avoided emissions separately.

    Parameters
    ----------
    loans : polars.DataFrame
        The per-loan table of :func:`greenscreen.loans.attribute`.

    Returns
    -------
    polars.DataFrame
        Per activity: loans, ``outstanding_cny`` [CNY], ``financed_emissions_tco2e``
        [tCO2e/yr], the outstanding with and without an estimate [CNY], the
        outstanding-weighted data-quality score (1 best – 5) and
        ``avoided_tco2e_reported_separately`` [tCO2e/yr], never netted.

    References
    ----------
    PCAF, The Global GHG Accounting and Reporting Standard Part A, 2nd ed., §5.3 (project
    finance) and Table 10.1-3 (data quality) [S].
    """
    scored = pl.col("pcaf_data_quality").is_not_null() & pl.col("pcaf_attribution").is_not_null()
    return (
        loans.group_by(pl.col("activity").fill_null("(unknown)"))
        .agg(
            pl.len().cast(pl.Int64).alias("loans"),
            pl.col("outstanding_cny").sum().alias("outstanding_cny"),
            pl.when(scored.any())
            .then(pl.col("financed_emissions_tco2e").sum())
            .alias("financed_emissions_tco2e"),
            pl.col("outstanding_cny").filter(scored).sum().alias("outstanding_scored_cny"),
            (pl.col("outstanding_cny") * pl.col("pcaf_data_quality"))
            .filter(scored)
            .sum()
            .alias("_score_x_outstanding"),
            pl.col("outstanding_cny").filter(~scored).sum().alias("outstanding_not_estimated_cny"),
            pl.col("avoided_tco2e_pcaf").sum().alias("avoided_tco2e_reported_separately"),
            pl.col("pcaf_basis").first().alias("basis"),
        )
        .with_columns(
            pl.when(pl.col("outstanding_scored_cny") > 0)
            .then(pl.col("_score_x_outstanding") / pl.col("outstanding_scored_cny"))
            .alias("weighted_data_quality")
        )
        .drop("_score_x_outstanding")
        .sort("activity")
    )


def jrt0227(loans: pl.DataFrame, total_loans_cny: float | None = None) -> pl.DataFrame:
    """The investment-and-financing environmental-impact indicators of a JR/T 0227-2021 report.

    Parameters
    ----------
    loans : polars.DataFrame
        The per-loan table of :func:`greenscreen.loans.attribute`.
    total_loans_cny : float, optional
        The bank's total loans [CNY]; default the book's balance.

    Returns
    -------
    polars.DataFrame
        One row per indicator: ``indicator``, ``name_zh``, ``name_en``, ``value``, ``unit``
        (万元, %, tCO2e/yr, tce/yr) and ``definition``.

    References
    ----------
    JR/T 0227-2021 金融机构环境信息披露指南, 投融资活动的环境影响 (indicators as used in
    practice [S]; clause not found).
    """
    green = pl.col("green_class") == "green"
    sums = loans.select(
        pl.col("outstanding_cny").sum().alias("book"),
        pl.col("outstanding_cny").filter(green).sum().alias("green"),
        pl.col("drawn_in_period_cny").filter(green).sum().alias("green_new"),
        pl.col("avoided_tco2e_attributed").filter(green).sum().alias("avoided"),
        pl.col("standard_coal_tce_attributed").filter(green).sum().alias("coal"),
        pl.col("financed_emissions_tco2e").sum().alias("financed"),
    ).row(0, named=True)
    total = total_loans_cny if total_loans_cny is not None else sums["book"]
    rows = [
        (
            "total_loans",
            "各项贷款余额",
            "Total loans",
            total / TEN_THOUSAND,
            "万元",
            "--total-loans" if total_loans_cny is not None else "loan book balance",
        ),
        (
            "green_loan_balance",
            "绿色贷款余额",
            "Green-loan balance",
            sums["green"] / TEN_THOUSAND,
            "万元",
            DEFINITIONS["balance"][0],
        ),
        (
            "green_loan_share",
            "绿色贷款余额占比",
            "Green-loan share of total loans",
            (sums["green"] / total * 100) if total else None,
            "%",
            DEFINITIONS["green_share"][0],
        ),
        (
            "green_new_lending",
            "本期绿色贷款发放额",
            "Green lending in the period",
            sums["green_new"] / TEN_THOUSAND,
            "万元",
            DEFINITIONS["new_lending"][0],
        ),
        (
            "avoided_tco2e",
            "减排二氧化碳当量",
            "Avoided CO2e (green loans, attributed)",
            sums["avoided"],
            "tCO2e/yr",
            DEFINITIONS["avoided"][0],
        ),
        (
            "standard_coal_tce",
            "节约标准煤",
            "Standard coal saved (green loans, attributed)",
            sums["coal"],
            "tce/yr",
            DEFINITIONS["standard_coal"][0],
        ),
        (
            "financed_emissions",
            "投融资碳排放（PCAF）",
            "Financed emissions (all loans, PCAF)",
            sums["financed"],
            "tCO2e/yr",
            DEFINITIONS["financed"][0],
        ),
    ]
    return pl.DataFrame(
        rows,
        schema=["indicator", "name_zh", "name_en", "value", "unit", "definition"],
        orient="row",
    )


def report_book(
    loans: Any,
    period: str | Period,
    *,
    pipeline: Any = None,
    results: pl.DataFrame | str | Path | None = None,
    total_loans_cny: float | None = None,
    **read_options: Any,
) -> BookReport:
    """Read a loan book, screen its pipeline (or take a previous screen's ``results``) and
    build the reports.

    Parameters
    ----------
    loans
        The loan book: a path, DataFrame or list of dicts (:func:`greenscreen.loans.read_loans`).
    period
        ``2026-Q3`` (or a :class:`~greenscreen.loans.Period`).
    pipeline
        The pipeline to screen (what :func:`greenscreen.screen` accepts), or
    results
        a screen's results table or ``results.parquet`` (from ``greenscreen screen --out``).
    total_loans_cny
        The bank's total loans for the JR/T 0227 share [CNY]; default the book's balance.
    **read_options
        ``sheet``, ``encoding``, ``separator``, ``strict`` for
        :func:`~greenscreen.loans.read_loans`.

    Returns
    -------
    BookReport

    Raises
    ------
    GreenscreenError
        Neither ``pipeline`` nor ``results`` was given.
    PipelineError
        The loan book cannot be read.
    """
    from greenscreen.run import screen

    when = period if isinstance(period, Period) else parse_period(period)
    if results is None:
        if pipeline is None:
            raise GreenscreenError("a report needs the pipeline or a previous screen's results")
        results = screen(pipeline).results
    elif not isinstance(results, pl.DataFrame):
        results = pl.read_parquet(results)
    book = read_loans(loans, project_ids=results["project_id"], **read_options)
    per_loan = attribute(book.loans, results, when)
    return build_report(per_loan, when, total_loans_cny=total_loans_cny, book=book)


# --------------------------------------------------------------------------------------------
# Writers
REPORT_FILES = {
    "loans": "loans.parquet",
    "statistics": "green_loan_statistics.parquet",
    "cerf": "cerf_disclosure.parquet",
    "benefits": "benefits.parquet",
    "pcaf": "pcaf.parquet",
    "jrt0227": "disclosure_jrt0227.parquet",
}


def write_report(report: BookReport, out_dir: str | Path) -> dict[str, Path]:
    """Write a report's files as one output set (:mod:`greenscreen._outputs`).

    ``loans.parquet``, the five report tables (:data:`REPORT_FILES`), ``report.xlsx``,
    ``report.html``, ``loan_rejects.csv`` (when the book was read) and ``run.json``.

    Parameters
    ----------
    report : BookReport
    out_dir : str or pathlib.Path
        The output folder.

    Returns
    -------
    dict of str to pathlib.Path
        The files by key (those of :data:`REPORT_FILES`, ``xlsx``, ``html``, ``rejects``,
        ``run``).
    """
    out = Path(out_dir)
    with output_set(out) as staged:
        paths: dict[str, Path] = {}
        for key, name in REPORT_FILES.items():
            frame: pl.DataFrame = getattr(report, key)
            atomic_write(staged.path / name, _parquet_writer(frame))
            paths[key] = out / name
        atomic_write(staged.path / "report.xlsx", lambda p: write_report_xlsx(report, p))
        atomic_write(staged.path / "report.html", lambda p: write_report_html(report, p))
        paths["xlsx"], paths["html"] = out / "report.xlsx", out / "report.html"
        if report.book is not None:
            rejects = report.book.rejects
            atomic_write(
                staged.path / "loan_rejects.csv", lambda p: rejects.write_csv(p, include_bom=True)
            )
            paths["rejects"] = out / "loan_rejects.csv"
        staged.commit(_record(report))
    paths["run"] = out / "run.json"
    return paths


def _parquet_writer(frame: pl.DataFrame) -> Callable[[str], object]:
    return lambda path: frame.write_parquet(path, statistics=False)


def _record(report: BookReport) -> dict[str, Any]:
    book = report.book
    counts = {"loans_reported": report.loans.height}
    source: dict[str, Any] = {}
    if book is not None:
        counts |= {
            "input_rows": book.n_input_rows,
            "accepted": book.n_accepted,
            "rejected": book.n_rejected,
            "reject_rows": book.rejects.height,
            "blank_rows_ignored": book.n_blank,
        }
        source = {
            "name": book.source.name,
            "format": book.source.format,
            "sha256": book.source.sha256,
            "columns": {m.header: m.field for m in book.source.columns},
        }
    return {
        "tool": "greenscreen",
        "version": __version__,
        "command": "report",
        "loan_template": LOAN_TEMPLATE_VERSION,
        "period": {
            "label": report.period.label,
            "start": str(report.period.start),
            "end": str(report.period.end),
        },
        "loan_book": source,
        "counts": counts,
        "cerf_terms": {"refinanceable_share": CERF_SHARE, "relending_rate": CERF_RATE},
        **report.meta,
    }


# Excel -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Col:
    key: str
    head: str
    fmt: str = "text"  # text | int | money | num | pct
    total: str | None = None  # "sum", or "wavg:<value col>:<weight col>"


def _formats(book: Any) -> dict[str, Any]:
    return {
        "title": book.add_format({"bold": True, "font_size": 13}),
        "head": book.add_format(
            {
                "bold": True,
                "bg_color": "#1F4E79",
                "font_color": "#FFFFFF",
                "text_wrap": True,
                "border": 1,
            }
        ),
        "text": book.add_format({"num_format": "@"}),
        "int": book.add_format({"num_format": "#,##0"}),
        "money": book.add_format({"num_format": "#,##0.00"}),
        "num": book.add_format({"num_format": "#,##0.00"}),
        "pct": book.add_format({"num_format": "0.00"}),
        "total": book.add_format({"bold": True, "top": 1, "num_format": "#,##0.00"}),
        "note": book.add_format({"italic": True, "font_color": "#595959"}),
    }


def _block(
    sheet: Any,
    fmts: dict[str, Any],
    row: int,
    title: str,
    frame: pl.DataFrame,
    cols: Sequence[_Col],
) -> int:
    """A titled table with a live total row; returns the next free row."""
    sheet.write_string(row, 0, title, fmts["title"])
    row += 1
    for c, col in enumerate(cols):
        sheet.write_string(row, c, col.head, fmts["head"])
    first = row + 1
    for r, values in enumerate(frame.select([c.key for c in cols]).iter_rows(), start=first):
        for c, (col, value) in enumerate(zip(cols, values, strict=True)):
            if value is None or (isinstance(value, float) and value != value):
                sheet.write_blank(r, c, None)
            elif col.fmt == "text":
                sheet.write_string(r, c, str(value), fmts["text"])  # never a formula
            else:
                sheet.write_number(r, c, value, fmts[col.fmt])
    last = first + frame.height - 1
    total_row = last + 1
    sheet.write_string(total_row, 0, "合计 Total", fmts["total"])
    position = {col.key: c for c, col in enumerate(cols)}
    for c, col in enumerate(cols):
        if not col.total:
            continue
        if frame.height == 0:
            sheet.write_formula(total_row, c, "=0", fmts["total"], 0)
            continue
        span = f"{xl_rowcol_to_cell(first, c)}:{xl_rowcol_to_cell(last, c)}"
        if col.total == "sum":
            value = float(frame[col.key].fill_null(0).sum())
            sheet.write_formula(total_row, c, f"=SUM({span})", fmts["total"], value)
        else:  # weighted average: wavg:<weight column>
            weight = col.total.split(":")[1]
            w = position[weight]
            wspan = f"{xl_rowcol_to_cell(first, w)}:{xl_rowcol_to_cell(last, w)}"
            values = frame.select(
                (pl.col(col.key).fill_null(0) * pl.col(weight).fill_null(0)).sum(),
                pl.col(weight).fill_null(0).sum(),
            ).row(0)
            cached = values[0] / values[1] if values[1] else 0.0
            sheet.write_formula(
                total_row,
                c,
                f"=IF(SUM({wspan})=0,0,SUMPRODUCT({span},{wspan})/SUM({wspan}))",
                fmts["total"],
                cached,
            )
    return total_row + 2


def write_report_xlsx(report: BookReport, path: str | Path) -> None:
    """``report.xlsx``: one sheet per report, each table with live totals.

    Totals are formulas written with their computed values, so a reader without
    recalculation shows the same figures; a ``notes`` sheet gives every figure's definition
    and source (:data:`DEFINITIONS`).

    Parameters
    ----------
    report : BookReport
    path : str or pathlib.Path
    """
    book = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False})
    book.set_properties(
        {
            "title": f"greenscreen report {report.period.label}",
            "author": "greenscreen",
            "comments": f"greenscreen {__version__}",
            "created": dt.datetime(2025, 1, 1),
        }
    )
    fmts = _formats(book)
    flows = [
        _Col("loans", "贷款笔数 loans", "int", "sum"),
        _Col("balance_cny", "余额 balance [CNY]", "money", "sum"),
        _Col("new_lending_cny", "本期发放 new lending [CNY]", "money", "sum"),
        _Col("repaid_cny", "本期收回 repaid [CNY]", "money", "sum"),
        _Col("projects", "项目数 projects", "int"),
    ]
    sheet = book.add_worksheet("statistics")
    sheet.set_column(0, 2, 22)
    sheet.set_column(3, 8, 18)
    row = 0
    stats = report.statistics
    titles = {
        "green_class": "按绿色属性 By green class",
        "category_l1": "按目录一级分类 By catalogue level 1 (green loans)",
        "category_l2": "按目录二级分类 By catalogue level 2 (green loans)",
        "province": "按省份 By province (green loans)",
        "borrower_type": "按借款人类型 By borrower type (green loans)",
    }
    for key, title in titles.items():
        part = stats.filter(pl.col("breakdown") == key)
        cols = [
            _Col("key", "代码 key"),
            _Col("catalogue", "目录 catalogue"),
            _Col("name_zh", "名称"),
        ]
        row = _block(sheet, fmts, row, title, part, cols + flows)
    sheet = book.add_worksheet("cerf")
    sheet.set_column(0, 12, 16)
    row = 0
    for scope, (_, label) in CERF_SCOPES.items():
        part = report.cerf.filter(pl.col("scope") == scope)
        row = _block(
            sheet,
            fmts,
            row,
            f"{label} ({scope})",
            part,
            [
                _Col("cerf_area", "碳减排领域 area"),
                _Col("name_zh", "名称"),
                _Col("projects", "支持的项目数量（个）", "int", "sum"),
                _Col("loan_amount_10k_cny", "贷款金额（万元）", "money", "sum"),
                _Col(
                    "weighted_avg_rate_pct", "加权平均利率（%）", "pct", "wavg:rated_amount_10k_cny"
                ),
                _Col("annual_reduction_tco2e", "带动的年度碳减排量（tCO2e）", "num", "sum"),
                _Col("refinanceable_10k_cny", "可申请再贷款 60%（万元）", "money", "sum"),
                _Col("relending_cost_10k_cny", "再贷款成本 1.75%/年（万元）", "money", "sum"),
                _Col("cerf_received_10k_cny", "已获支持金额（万元）", "money", "sum"),
                _Col("rated_amount_10k_cny", "有利率的金额（万元）", "money", "sum"),
            ],
        )
    sheet.write_string(row, 0, DEFINITIONS["cerf_reduction"][0], fmts["note"])
    sheet = book.add_worksheet("benefits")
    sheet.set_column(0, 12, 18)
    _block(
        sheet,
        fmts,
        0,
        "环境效益 Environmental benefits (attributed)",
        report.benefits,
        [
            _Col("catalogue", "目录"),
            _Col("green_class", "绿色属性"),
            _Col("green_category", "一级"),
            _Col("name_zh", "名称"),
            _Col("loans", "贷款笔数", "int", "sum"),
            _Col("balance_cny", "余额 [CNY]", "money", "sum"),
            _Col("avoided_tco2e_attributed", "减排 CO2e 归属 [t/yr]", "num", "sum"),
            _Col("standard_coal_tce_attributed", "节约标准煤 归属 [tce/yr]", "num", "sum"),
            _Col("project_avoided_tco2e", "项目减排 CO2e [t/yr]", "num", "sum"),
            _Col("project_standard_coal_tce", "项目节约标准煤 [tce/yr]", "num", "sum"),
        ],
    )
    sheet = book.add_worksheet("pcaf")
    sheet.set_column(0, 8, 20)
    _block(
        sheet,
        fmts,
        0,
        "PCAF financed emissions (project finance)",
        report.pcaf,
        [
            _Col("activity", "activity"),
            _Col("loans", "loans", "int", "sum"),
            _Col("outstanding_cny", "outstanding [CNY]", "money", "sum"),
            _Col("financed_emissions_tco2e", "financed emissions [tCO2e/yr]", "num", "sum"),
            _Col(
                "weighted_data_quality",
                "data quality (weighted)",
                "num",
                "wavg:outstanding_scored_cny",
            ),
            _Col("outstanding_scored_cny", "outstanding scored [CNY]", "money", "sum"),
            _Col(
                "outstanding_not_estimated_cny", "outstanding not estimated [CNY]", "money", "sum"
            ),
            _Col("avoided_tco2e_reported_separately", "avoided [tCO2e/yr], separate", "num", "sum"),
        ],
    )
    sheet = book.add_worksheet("jrt0227")
    sheet.set_column(0, 2, 30)
    sheet.set_column(3, 3, 20)
    sheet.write_string(0, 0, "JR/T 0227-2021 投融资活动的环境影响", fmts["title"])
    for c, head in enumerate(["indicator", "指标", "indicator (en)", "value", "unit"]):
        sheet.write_string(1, c, head, fmts["head"])
    where: dict[str, int] = {}
    for r, item in enumerate(report.jrt0227.iter_rows(named=True), start=2):
        where[item["indicator"]] = r
        for c, key in enumerate(["indicator", "name_zh", "name_en"]):
            sheet.write_string(r, c, item[key], fmts["text"])
        sheet.write_string(r, 4, item["unit"], fmts["text"])
        if item["indicator"] == "green_loan_share":
            total, green = (
                xl_rowcol_to_cell(where[k], 3) for k in ("total_loans", "green_loan_balance")
            )
            sheet.write_formula(
                r, 3, f"=IF({total}=0,0,{green}/{total}*100)", fmts["pct"], item["value"] or 0
            )
        elif item["value"] is not None:
            sheet.write_number(r, 3, item["value"], fmts["num"])
    sheet = book.add_worksheet("notes")
    sheet.set_column(0, 0, 20)
    sheet.set_column(1, 2, 90)
    sheet.write_row(0, 0, ["figure", "definition", "source"], fmts["head"])
    for r, (key, (text, source)) in enumerate(DEFINITIONS.items(), start=1):
        sheet.write_string(r, 0, key)
        sheet.write_string(r, 1, text)
        sheet.write_string(r, 2, source)
    book.close()


# HTML ------------------------------------------------------------------------------------------
def write_report_html(report: BookReport, path: str | Path) -> None:
    """``report.html``: one section per report (jinja2, autoescaped; no scripts, nothing
    fetched).

    Parameters
    ----------
    report : BookReport
    path : str or pathlib.Path
    """
    from greenscreen.report.html import template_environment

    def table(frame: pl.DataFrame, columns: Sequence[str]) -> dict[str, Any]:
        rows = [[_fmt(v) for v in r] for r in frame.select(columns).iter_rows()]
        return {"columns": list(columns), "rows": rows}

    stats = report.statistics
    sections = [
        (
            "Green-loan statistics 绿色贷款统计",
            "statistics",
            [
                (
                    b,
                    table(
                        stats.filter(pl.col("breakdown") == b),
                        [
                            "catalogue",
                            "key",
                            "name_zh",
                            "loans",
                            "projects",
                            "balance_cny",
                            "new_lending_cny",
                            "repaid_cny",
                        ],
                    ),
                )
                for b in ("green_class", "category_l1", "category_l2", "province", "borrower_type")
            ],
        ),
        (
            "CERF disclosure 碳减排贷款信息披露表",
            "cerf",
            [
                (
                    s,
                    table(
                        report.cerf.filter(pl.col("scope") == s),
                        [
                            "cerf_area",
                            "name_zh",
                            "projects",
                            "loan_amount_10k_cny",
                            "weighted_avg_rate_pct",
                            "annual_reduction_tco2e",
                            "refinanceable_10k_cny",
                            "relending_cost_10k_cny",
                        ],
                    ),
                )
                for s in CERF_SCOPES
            ],
        ),
        (
            "Environmental benefits 环境效益",
            "benefits",
            [
                (
                    "",
                    table(
                        report.benefits,
                        [
                            "catalogue",
                            "green_class",
                            "green_category",
                            "name_zh",
                            "loans",
                            "balance_cny",
                            "avoided_tco2e_attributed",
                            "standard_coal_tce_attributed",
                            "project_avoided_tco2e",
                        ],
                    ),
                )
            ],
        ),
        (
            "PCAF financed emissions",
            "pcaf",
            [
                (
                    "",
                    table(
                        report.pcaf,
                        [
                            "activity",
                            "loans",
                            "outstanding_cny",
                            "financed_emissions_tco2e",
                            "weighted_data_quality",
                            "outstanding_not_estimated_cny",
                            "avoided_tco2e_reported_separately",
                        ],
                    ),
                )
            ],
        ),
        (
            "JR/T 0227-2021 environmental impact 投融资活动的环境影响",
            "jrt0227",
            [("", table(report.jrt0227, ["indicator", "name_zh", "value", "unit"]))],
        ),
    ]
    text = (
        template_environment()
        .get_template("report.html.j2")
        .render(
            period=report.period.label,
            version=__version__,
            sections=sections,
            definitions=[(k, *v) for k, v in DEFINITIONS.items()],
            loans=report.loans.height,
        )
    )
    Path(path).write_text(text, encoding="utf-8")


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
