"""The loan book: template v1, its validating reader, and the attribution of projects to loans.

A bank reports loans, greenscreen screens projects. A loan book (one row per loan, several loans
per project: tranches, syndication) is read with the pipeline reader's machinery
(:class:`greenscreen.io.Contract`: bilingual headers, units in headers, reject rows with reasons
and codes, ``input rows = accepted + rejected + blank``), checked against the screened pipeline
and joined to it. :func:`attribute` gives one row per loan with the bank's amounts in CNY, the
governing China catalogue and category, the CERF area, the attributed benefits and the PCAF
financed emissions; :mod:`greenscreen.report.book` aggregates it into the periodic reports.

Attribution (two rules, kept apart as the sources keep them apart):

- China green-credit statistics count a loan's benefits "按照贷款资金占项目总投资的比例" [S]
  (CBRC 2018 release, reporting_facts.md §2.1): ``attribution = bank outstanding /
  total_investment``. Whether the form means the balance or the amount drawn was not retrieved;
  greenscreen uses the period-end balance, the figure the statistics report.
- PCAF Part A §5.3 project finance [S]: ``pcaf_attribution = outstanding / (total equity +
  debt)``; equity + debt is the pipeline's ``equity_plus_debt`` column when given, else
  ``total_investment`` (the total project cost that equity and debt fund).

Both are capped per project so that the loans of one project never carry more than the
project: ``x_i / max(denominator, Σ_project x)``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from greenscreen import __version__
from greenscreen.emissions import load_factors
from greenscreen.errors import GreenscreenError, PipelineError
from greenscreen.io import (
    REJECT_SCHEMA,
    Contract,
    HeaderMatch,
    Pipeline,
    SourceInfo,
    duplicate_id_rejects,
    header_index,
    read_with,
    resolve_header_in,
)
from greenscreen.logic import typed_evidence
from greenscreen.rulebook import bundled_rulebooks
from greenscreen.schema import (
    MONEY_MAX,
    FieldSpec,
    spec_from_field,
    template_field,
)

LOAN_TEMPLATE_VERSION = "v1"

#: The 2025 catalogue governs loans approved from this date; the 2021 catalogue before it
#: (银发〔2025〕132号, effective 2025-10-01 [V], taxonomy_facts.md).
CATALOGUE_2025_FROM = dt.date(2025, 10, 1)
CATALOGUES = ("cn_gfsp_2025", "cn_gbepc_2021")

#: CERF relending terms [V] (taxonomy_facts.md §B: Xinhua; Yi Gang, Lujiazui Forum 2022).
CERF_SHARE = 0.60
CERF_RATE = 0.0175

#: Statuses of a China catalogue as green-loan statistics classes.
GREEN_CLASS = {
    "aligned": "green",
    "eligible": "green",
    "not_eligible": "not_green",
    "insufficient_data": "insufficient_data",
}


class LoanInput(BaseModel):
    """One loan: a row of loan book template v1.

    Amounts are the whole loan's, in the row's ``currency`` (full units); the bank's part is
    ``× syndicate_share``. Rates are fractions (0.035 for 3.5 %).
    """

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    loan_id: str = Field(
        min_length=1,
        description="Unique loan identifier within the book (借据号 or contract number)",
        json_schema_extra={
            "zh": "贷款编号",
            "group": "identification",
            "aliases": ["借据号", "贷款合同编号", "合同编号", "loan id", "loan number"],
        },
    )
    project_id: str = Field(
        min_length=1,
        description="The project the loan finances: a project_id of the screened pipeline",
        json_schema_extra={
            "zh": "项目编号",
            "group": "identification",
            "aliases": ["项目代码", "project id", "project code"],
        },
    )
    borrower: str | None = template_field(
        "借款人", "Borrower", group="identification", aliases=("借款主体", "客户名称", "client")
    )
    borrower_type: str | None = template_field(
        "借款人类型",
        "Borrower type for the statistics (e.g. 国有企业, 民营企业, 小微企业, 地方融资平台)",
        group="identification",
        aliases=("客户类型", "企业类型", "borrower type"),
    )
    tranche: str | None = template_field(
        "贷款分期", "Tranche or facility name", group="identification", aliases=("分段", "批次")
    )
    currency: str | None = template_field(
        "币种",
        "ISO 4217 currency of the row's amounts",
        group="finance",
        aliases=("货币", "currency code"),
        kind="code",
        default="CNY",
        pattern=r"^[A-Z]{3}$",
    )
    fx_rate_to_cny: float | None = template_field(
        "折人民币汇率",
        "CNY per unit of currency at period end (required when currency is not CNY; the "
        "statistics convert at the SAFE benchmark rate of the period's last trading day)",
        group="finance",
        aliases=("汇率", "fx rate", "fx_rate"),
        gt=0,
        le=1e6,
    )
    approval_date: dt.date | None = template_field(
        "审批日期",
        "Loan approval date: selects the governing catalogue (2025 from 2025-10-01)",
        group="dates",
        aliases=("批准日期", "approval date"),
    )
    first_drawdown_date: dt.date | None = template_field(
        "首次放款日期",
        "First drawdown (issuance) date: places the loan in a CERF disclosure period",
        group="dates",
        aliases=("放款日期", "发放日期", "first drawdown date", "drawdown date"),
    )
    maturity_date: dt.date | None = template_field(
        "到期日期", "Final maturity date", group="dates", aliases=("到期日", "maturity")
    )
    interest_rate: float | None = template_field(
        "贷款利率",
        "Annual interest rate as a fraction (0.035 = 3.5 %)",
        group="finance",
        unit="fraction",
        aliases=("利率", "执行利率", "interest rate", "rate"),
        ge=0,
        le=1,
    )
    commitment_amount: float | None = template_field(
        "合同金额",
        "Loan commitment (principal of the facility)",
        group="finance",
        unit="currency",
        aliases=("贷款金额", "授信金额", "承诺金额", "commitment", "loan amount"),
        ge=0,
        le=MONEY_MAX,
    )
    outstanding_amount: float | None = template_field(
        "期末余额",
        "Outstanding balance at period end",
        group="finance",
        unit="currency",
        aliases=("贷款余额", "余额", "outstanding", "balance"),
        ge=0,
        le=MONEY_MAX,
    )
    drawn_in_period: float | None = template_field(
        "本期发放",
        "Amount drawn (new lending) in the period",
        group="finance",
        unit="currency",
        aliases=("本期放款", "本期发放额", "drawn", "disbursed in period"),
        ge=0,
        le=MONEY_MAX,
    )
    repaid_in_period: float | None = template_field(
        "本期收回",
        "Principal repaid in the period",
        group="finance",
        unit="currency",
        aliases=("本期还款", "本期收回额", "repaid", "repaid in period"),
        ge=0,
        le=MONEY_MAX,
    )
    syndicate_share: float | None = template_field(
        "银团份额",
        "The bank's share of a syndicated loan, as a fraction (default 1: the whole loan)",
        group="finance",
        unit="fraction",
        aliases=("份额", "参贷比例", "syndicate share", "share"),
        default=1.0,
        gt=0,
        le=1,
    )
    green_label_claimed: bool | None = template_field(
        "标识绿色贷款",
        "The bank labels the loan green in its own books (yes/no); compared with the screen",
        group="finance",
        aliases=("绿色贷款标识", "是否绿色贷款", "green label", "green label claimed"),
    )
    cerf_refinanced_amount: float | None = template_field(
        "碳减排支持工具支持金额",
        "Relending received under the PBoC Carbon Emission Reduction Facility for this loan",
        group="finance",
        unit="currency",
        aliases=("碳减排再贷款金额", "cerf amount", "cerf refinanced amount"),
        ge=0,
        le=MONEY_MAX,
    )
    cerf_refinanced_date: dt.date | None = template_field(
        "碳减排支持工具支持日期",
        "Date the CERF relending was received",
        group="dates",
        aliases=("碳减排再贷款日期", "cerf date", "cerf refinanced date"),
    )


LOAN_FIELDS: dict[str, FieldSpec] = {
    name: spec_from_field(name, info) for name, info in LoanInput.model_fields.items()
}
"""Loan book template v1 fields in template order."""


@cache
def _loan_index() -> dict[str, str]:
    return header_index(LOAN_FIELDS)


def resolve_loan_header(header: str) -> HeaderMatch | None:
    """A loan-book header to its field and unit scale (:func:`greenscreen.io.resolve_header`
    for the loan book's fields).

    Parameters
    ----------
    header : str
        As written: ``期末余额(万元)``, ``outstanding_amount``.

    Returns
    -------
    HeaderMatch or None
        None for an extra column.

    Raises
    ------
    PipelineError
        A unit of the wrong kind for its field.
    """
    return resolve_header_in(header, LOAN_FIELDS, _loan_index())


def _required(matches: dict[str, HeaderMatch], raw: pl.DataFrame, name: str) -> None:
    missing = [f for f in ("loan_id", "project_id", "outstanding_amount") if f not in matches]
    if missing:
        raise PipelineError(
            f"{name}: a loan book needs the columns {', '.join(missing)} "
            f"({', '.join(LOAN_FIELDS[f].zh for f in missing)}); columns found: "
            f"{', '.join(raw.columns[:20])}"
        )


def _reject(
    frame: pl.DataFrame, field: str, column: str, value: pl.Expr, reason: pl.Expr | str, code: str
) -> pl.DataFrame:
    return frame.select(
        pl.col("_row").alias("row"),
        pl.col("_pid").alias("project_id"),
        pl.lit(field).alias("field"),
        pl.lit(column).alias("column"),
        value.cast(pl.String).alias("value"),
        (pl.lit(reason) if isinstance(reason, str) else reason).alias("reason"),
        pl.lit(code).alias("code"),
    )


def _loan_row_problems(out: pl.DataFrame, matches: dict[str, HeaderMatch]) -> pl.DataFrame:
    """Row rules: ids present, loan_id unique, outstanding ≤ commitment, an FX rate for a
    loan not in CNY. (The project's presence in the pipeline is checked by :func:`read_loans`.)"""
    header = {name: m.header for name, m in matches.items()}
    problems = []
    for name in ("loan_id", "project_id", "outstanding_amount"):
        source = pl.col(f"__text__{name}")
        problems.append(
            _reject(
                out.filter(source.is_null()),
                name,
                header.get(name, name),
                pl.lit(None, pl.String),
                f"{name} is required",
                "missing_required",
            )
        )
    ids = out.filter(pl.col("_pid").is_not_null()).select(
        pl.col("_row").alias("row"), pl.col("_pid").alias("project_id")
    )
    problems.append(duplicate_id_rejects(ids, header["loan_id"], "loan_id"))
    if "commitment_amount" in matches:
        above = out.filter(pl.col("outstanding_amount") > pl.col("commitment_amount") * 1.000001)
        problems.append(
            _reject(
                above,
                "outstanding_amount",
                header["outstanding_amount"],
                pl.col("__text__outstanding_amount"),
                pl.format(
                    "outstanding_amount {} is above commitment_amount {}",
                    pl.col("outstanding_amount"),
                    pl.col("commitment_amount"),
                ),
                "outstanding_above_commitment",
            )
        )
    foreign = out.filter(
        pl.col("currency").is_not_null()
        & (pl.col("currency") != "CNY")
        & pl.col("fx_rate_to_cny").is_null()
    )
    problems.append(
        _reject(
            foreign,
            "fx_rate_to_cny",
            header.get("fx_rate_to_cny", "fx_rate_to_cny"),
            pl.col("currency"),
            "fx_rate_to_cny is required for a loan not in CNY (reports are in CNY)",
            "missing_required",
        )
    )
    return pl.concat(problems, how="vertical")


LOANS = Contract(LOAN_FIELDS, resolve_loan_header, "loan_id", _required, _loan_row_problems)
"""Loan book template v1, read by :func:`greenscreen.io.read_with`."""


@dataclass(frozen=True)
class LoanBook:
    """A validated loan book: typed ``loans``, ``rejects`` (``loan_id`` in place of
    ``project_id``), reconciled counts: ``n_input_rows == accepted + rejected + blank``."""

    loans: pl.DataFrame
    rejects: pl.DataFrame
    source: SourceInfo
    n_input_rows: int
    n_blank: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def n_accepted(self) -> int:
        """Number of loans accepted (rows of ``loans``)."""
        return self.loans.height

    @property
    def n_rejected(self) -> int:
        """Number of input rows rejected (a row with several problems counts once)."""
        return self.rejects["row"].n_unique() if self.rejects.height else 0

    def summary(self) -> str:
        """One line for a person: loans read, accepted, rejected, blank.

        Returns
        -------
        str
        """
        text = (
            f"{self.n_input_rows} loans read from {self.source.name}: {self.n_accepted} "
            f"accepted, {self.n_rejected} rejected ({self.rejects.height} reject rows)"
        )
        return text + (f", {self.n_blank} blank rows ignored" if self.n_blank else "")


def read_loans(
    source: Any, *, project_ids: pl.Series | None = None, strict: bool = False, **options: Any
) -> LoanBook:
    """Read and validate a loan book (CSV, Excel, Parquet, JSON, DataFrame, list of dicts).

    Parameters
    ----------
    source
        What :func:`greenscreen.read_pipeline` accepts.
    project_ids
        The screened pipeline's project ids: a loan whose project is not among them is
        rejected (code ``unknown_project``).
    strict
        Raise :class:`~greenscreen.errors.PipelineError` if any row is rejected.
    **options
        ``sheet``, ``encoding``, ``separator`` as for :func:`~greenscreen.read_pipeline`.

    Returns
    -------
    LoanBook
        Typed ``loans``, the rejects (``loan_id`` in place of ``project_id``) and the counts.

    Raises
    ------
    PipelineError
        The book cannot be read, or (``strict``) rows were rejected.
    """
    book: Pipeline = read_with(LOANS, source, **options)
    loans, rejects = book.projects, book.rejects
    if project_ids is not None:
        known = pl.DataFrame({"project_id": project_ids.unique()})
        unknown = loans.join(known, on="project_id", how="anti", maintain_order="left")
        if unknown.height:
            column = next((m.header for m in book.source.columns if m.field == "project_id"), "")
            extra = unknown.select(
                pl.col("source_row").alias("row"),
                pl.col("loan_id").alias("project_id"),
                pl.lit("project_id").alias("field"),
                pl.lit(column).alias("column"),
                pl.col("project_id").alias("value"),
                pl.format(
                    "project_id '{}' is not in the screened pipeline (accepted projects)",
                    pl.col("project_id"),
                ).alias("reason"),
                pl.lit("unknown_project").alias("code"),
            )
            rejects = pl.concat([rejects, extra.cast(REJECT_SCHEMA)]).sort(
                "row", maintain_order=True
            )
            loans = loans.join(known, on="project_id", how="semi", maintain_order="left")
    rejects = rejects.rename({"project_id": "loan_id"})
    result = LoanBook(loans, rejects, book.source, book.n_input_rows, book.n_blank, book.notes)
    if strict and rejects.height:
        raise PipelineError(f"{result.summary()}; strict mode does not accept rejects", rejects)
    return result


# --------------------------------------------------------------------------------------------
# Periods
@dataclass(frozen=True)
class Period:
    """A reporting period: ``2026-Q3`` (quarter), ``2026-H1`` (half year) or ``2026`` (year)."""

    label: str
    start: dt.date
    end: dt.date

    @property
    def year_start(self) -> dt.date:
        """1 January of the period's year (the start of the year-to-date figures)."""
        return dt.date(self.end.year, 1, 1)


def parse_period(text: str) -> Period:
    """A reporting period from its label.

    Parameters
    ----------
    text : str
        ``2026-Q3`` (a quarter), ``2026-H2`` (a half year) or ``2026`` (a year); case and
        spaces do not matter.

    Returns
    -------
    Period
        Its label, first and last day: ``2026-Q3`` → 2026-07-01 … 2026-09-30.

    Raises
    ------
    GreenscreenError
        Another form.
    """
    match = re.fullmatch(r"\s*(\d{4})(?:\s*-?\s*([QqHh])([1-4]))?\s*", text)
    if not match or (match[2] and match[2].upper() == "H" and match[3] not in "12"):
        raise GreenscreenError(f"period '{text}' is not YYYY-Qn, YYYY-Hn or YYYY (e.g. 2026-Q3)")
    year = int(match[1])
    if not match[2]:
        first, months = 1, 12
    elif match[2].upper() == "Q":
        first, months = 3 * int(match[3]) - 2, 3
    else:
        first, months = 6 * int(match[3]) - 5, 6
    last = first + months - 1
    end = dt.date(year + (last == 12), last % 12 + 1, 1) - dt.timedelta(days=1)
    label = f"{year}" if not match[2] else f"{year}-{match[2].upper()}{match[3]}"
    return Period(label, dt.date(year, first, 1), end)


# --------------------------------------------------------------------------------------------
# Catalogue and CERF names
@cache
def category_names() -> pl.DataFrame:
    """Item code → name (zh, en) of the two China catalogues and the CERF areas
    (rulebook, code, name_zh, name_en), from the bundled rulebooks.

    Returns
    -------
    polars.DataFrame
    """
    rows = [
        (book.id, item.code, item.name.zh or "", item.name.en or "")
        for book in bundled_rulebooks()
        if book.id in (*CATALOGUES, "pboc_cerf")
        for item in book.items
    ]
    return pl.DataFrame(rows, schema=["rulebook", "code", "name_zh", "name_en"], orient="row")


def _level(item: pl.Expr, depth: int) -> pl.Expr:
    """Code of an item at a level: ``4.2.2`` → ``4`` (1), ``4.2`` (2)."""
    parts = item.str.split(".")
    return pl.when(parts.list.len() >= depth).then(parts.list.head(depth).list.join("."))


# --------------------------------------------------------------------------------------------
# PCAF: the project's own scope 1 + 2 emissions
_NO_COMBUSTION = [
    "solar_pv",
    "wind_onshore",
    "wind_offshore",
    "hydropower",
    "nuclear",
    "geothermal",
    "pumped_storage",
    "battery_storage",
    "grid_transmission",
    "ev_charging",
    "afforestation",
]

#: PCAF project-finance data-quality options and scores, as a public implementation cites
#: PCAF (2022) Table 10.1-3 [S] (reporting_facts.md §5); the [R] note that option 2a may score
#: 2 was not confirmed, so the [S] table is used.
PCAF_OPTIONS = {
    "1a": (1, "verified project emissions"),
    "1b": (2, "unverified project emissions reported by the project"),
    "2a": (3, "primary energy-consumption data × emission factors"),
    "2b": (3, "primary production data × emission factors"),
}


def _num(frame: pl.DataFrame, column: str) -> pl.Expr:
    """An optional extra pipeline column as a number (extras are passed through as text)."""
    if column not in frame.columns:
        return pl.lit(None, pl.Float64)
    return pl.col(column).cast(pl.String).str.replace_all(",", "").cast(pl.Float64, strict=False)


def project_emissions(results: pl.DataFrame, factors_dir: str | None = None) -> pl.DataFrame:
    """The project's own annual scope 1 + 2 emissions and the PCAF data-quality option.

    In order of quality:

    1. ``project_emissions_tco2e`` (pipeline extra column) — reported; with
       ``project_emissions_verified`` yes: option 1a (score 1), else 1b (2);
    2. ``fuel_consumed_t`` × the fuel's IPCC factor (``fuel_type``, fuels.csv) plus
       ``electricity_consumed_mwh`` × MEE+NBS national average (consumption-side, 2023) —
       option 2a (3); buildings: energy_use_kwh_m2 × floor_area_m2 as electricity, 2a (3);
    3. coal power: generation × MEE+NBS 2023 national fossil-fuel power factor [V] — 2b (3);
    4. activities that burn no fuel (PV, wind, hydro, nuclear, storage, …): scope 1 = 0 by the
       nature of the activity, 2b (3); their own electricity use is not estimated.

    Anything else (gas power, industry without fuel data) gets no figure: only a sector
    estimate (PCAF options 3a–3c, scores 4–5) is possible and greenscreen ships no sourced
    sector intensity. The basis says so.

    Parameters
    ----------
    results : polars.DataFrame
        A screen's results (with the pipeline's extra columns).
    factors_dir : str, optional
        Own factor files (:func:`greenscreen.emissions.load_factors`); default the bundled.

    Returns
    -------
    polars.DataFrame
        ``project_id``, ``project_emissions_tco2e`` [tCO2e/yr], ``pcaf_option``,
        ``pcaf_data_quality`` (1 best – 5) and ``pcaf_basis`` (how the figure was made).

    References
    ----------
    PCAF, The Global GHG Accounting and Reporting Standard Part A, 2nd ed., Table 10.1-3
    (data-quality options) [S]; MEE & NBS, 2023 national average and fossil-fuel power
    emission factors [V] (``greenscreen/data/factors/grid_factors.csv``); IPCC 2006
    Guidelines Vol. 2 default fuel factors (``fuels.csv``; secondary).
    """
    factors = load_factors(factors_dir)
    grid = factors.grid

    def _factor(series: str, vintage: int) -> float:
        row = grid.filter(
            (pl.col("series") == series)
            & (pl.col("vintage").cast(pl.Int64) == vintage)
            & (pl.col("scope") == "national")
        )
        return float(row["value_tco2_per_mwh"][0])

    average = _factor("mee_nbs_average", 2023)
    fossil = _factor("mee_nbs_fossil", 2023)
    fuels = dict(
        zip(factors.fuels["fuel"], factors.fuels["tco2_per_t"].cast(pl.Float64), strict=True)
    )
    reported = _num(results, "project_emissions_tco2e")
    # read as every yes/no evidence field is (absent or unreadable: not verified)
    verified = typed_evidence(results, "project_emissions_verified", pl.Boolean()).fill_null(False)
    fuel_ef = (
        pl.col("fuel_type")
        .cast(pl.String)
        .replace_strict(fuels, default=None, return_dtype=pl.Float64)
    )
    fuel = _num(results, "fuel_consumed_t") * fuel_ef
    electricity = _num(results, "electricity_consumed_mwh") * average
    building = (
        (pl.col("energy_use_kwh_m2").cast(pl.Float64) * pl.col("floor_area_m2").cast(pl.Float64))
        / 1000
        * average
    )
    energy = (
        pl.when(fuel.is_not_null() | electricity.is_not_null())
        .then(fuel.fill_null(0) + electricity.fill_null(0))
        .when(pl.col("activity").str.starts_with("building_"))
        .then(building)
    )
    generation = pl.coalesce(
        pl.col("annual_generation_mwh").cast(pl.Float64),
        pl.col("capacity_mw").cast(pl.Float64) * pl.col("full_load_hours").cast(pl.Float64),
    )
    coal = pl.when(pl.col("activity") == "coal_power").then(generation * fossil)
    zero = pl.when(pl.col("activity").is_in(_NO_COMBUSTION)).then(pl.lit(0.0))
    option = (
        pl.when(reported.is_not_null())
        .then(pl.when(verified).then(pl.lit("1a")).otherwise(pl.lit("1b")))
        .when(energy.is_not_null())
        .then(pl.lit("2a"))
        .when(coal.is_not_null() | zero.is_not_null())
        .then(pl.lit("2b"))
    )
    value = pl.coalesce(reported, energy, coal, zero)
    basis = (
        pl.when(reported.is_not_null())
        .then(pl.lit("reported project emissions"))
        .when(fuel.is_not_null() | electricity.is_not_null())
        .then(
            pl.lit(
                "fuel × IPCC 2006 factor (fuels.csv) + electricity × MEE+NBS 2023 national average"
            )
        )
        .when(energy.is_not_null())
        .then(
            pl.lit(
                "energy_use_kwh_m2 × floor_area_m2 as electricity × MEE+NBS 2023 national average"
            )
        )
        .when(coal.is_not_null())
        .then(pl.lit(f"generation × MEE+NBS 2023 national fossil-power factor {fossil}"))
        .when(zero.is_not_null())
        .then(pl.lit("no fuel combustion: scope 1 = 0; own electricity use not estimated"))
        .otherwise(
            pl.lit(
                "not estimated: needs fuel_consumed_t or project_emissions_tco2e; only a sector "
                "estimate (PCAF 3a–3c, score 4–5) is possible and no sourced sector factor is "
                "shipped"
            )
        )
    )
    scores = {k: v[0] for k, v in PCAF_OPTIONS.items()}
    return results.select(
        "project_id",
        value.alias("project_emissions_tco2e"),
        option.alias("pcaf_option"),
        option.replace_strict(scores, default=None, return_dtype=pl.Int8).alias(
            "pcaf_data_quality"
        ),
        basis.alias("pcaf_basis"),
    )


# --------------------------------------------------------------------------------------------
# Attribution: one row per loan
def attribute(
    loans: pl.DataFrame,
    results: pl.DataFrame,
    period: Period,
    *,
    factors_dir: str | None = None,
) -> pl.DataFrame:
    """One row per loan with everything the periodic reports aggregate.

    The bank's amounts in CNY, the governing catalogue, its category and green class, the
    CERF area and period flags, the attributions, attributed benefits and financed emissions
    (the module docstring gives the rules).

    Parameters
    ----------
    loans : polars.DataFrame
        The loan book's ``loans`` (:func:`read_loans`).
    results : polars.DataFrame
        A screen's results table (``ScreenResult.results`` or ``results.parquet``).
    period : Period
        The reporting period (period-end balances, flows in the period, CERF scopes).
    factors_dir : str, optional
        Own factor files for :func:`project_emissions`.

    Returns
    -------
    polars.DataFrame
        The columns of :data:`LOAN_COLUMNS`: amounts ``*_cny`` [CNY], ``attribution``
        and ``pcaf_attribution`` [fraction], avoided and attributed emissions [tCO2e/yr],
        standard coal [tce/yr], financed emissions [tCO2e/yr] …

    References
    ----------
    CBRC 2018 green-credit statistics (按照贷款资金占项目总投资的比例) [S]; PCAF Part A 2nd ed.
    §5.3 [S]; 银发〔2025〕132号 (2025 catalogue from 2025-10-01) [V]; CERF terms [V].
    """
    need = ["project_id", "activity", "province", "approval_date", "total_investment"]
    missing = [c for c in need if c not in results.columns]
    if missing:
        raise GreenscreenError(f"the screen results lack {', '.join(missing)}")
    rc = results.columns
    cols = [
        pl.col("project_id"),
        pl.col("activity"),
        pl.col("province"),
        pl.col("approval_date").alias("_project_approval"),
        pl.col("borrower").alias("_project_borrower")
        if "borrower" in rc
        else pl.lit(None, pl.String).alias("_project_borrower"),
        pl.col("currency").alias("_project_currency")
        if "currency" in rc
        else pl.lit("CNY").alias("_project_currency"),
        pl.col("total_investment"),
        _num(results, "equity_plus_debt").alias("_equity_debt"),
        *(
            pl.col(f"{c}__{x}") if f"{c}__{x}" in rc else pl.lit(None, pl.String).alias(f"{c}__{x}")
            for c in (*CATALOGUES, "pboc_cerf")
            for x in ("status", "item")
        ),
        *(
            pl.col(c).cast(pl.Float64) if c in rc else pl.lit(None, pl.Float64).alias(c)
            for c in ("avoided_tco2e_per_year", "standard_coal_saved_tce_per_year")
        ),
        pl.col("ef_source") if "ef_source" in rc else pl.lit(None, pl.String).alias("ef_source"),
    ]
    projects = results.select(cols).join(
        project_emissions(results, factors_dir), on="project_id", how="left"
    )
    frame = loans.join(projects, on="project_id", how="inner", maintain_order="left")
    fx = pl.when(pl.col("currency") == "CNY").then(1.0).otherwise(pl.col("fx_rate_to_cny"))
    share = pl.col("syndicate_share").fill_null(1.0)

    def bank(column: str) -> pl.Expr:
        return pl.col(column) * share * fx

    approval = pl.coalesce("approval_date", "_project_approval")
    use_2025 = approval.is_null() | (approval >= CATALOGUE_2025_FROM)
    status = (
        pl.when(use_2025)
        .then(pl.col("cn_gfsp_2025__status"))
        .otherwise(pl.col("cn_gbepc_2021__status"))
    )
    item = (
        pl.when(use_2025)
        .then(pl.col("cn_gfsp_2025__item"))
        .otherwise(pl.col("cn_gbepc_2021__item"))
    )
    # the project's investment in CNY: in its own currency, converted with the loan's rate when
    # the loan is in that currency; otherwise unknown
    invest = (
        pl.when(pl.col("_project_currency").fill_null("CNY") == "CNY")
        .then(pl.col("total_investment"))
        .when(pl.col("_project_currency") == pl.col("currency"))
        .then(pl.col("total_investment") * pl.col("fx_rate_to_cny"))
    )
    equity_debt = pl.coalesce(pl.col("_equity_debt"), pl.col("total_investment"))
    equity_debt = (
        pl.when(pl.col("_project_currency").fill_null("CNY") == "CNY")
        .then(equity_debt)
        .when(pl.col("_project_currency") == pl.col("currency"))
        .then(equity_debt * pl.col("fx_rate_to_cny"))
    )
    issued = pl.coalesce("first_drawdown_date", "approval_date")
    frame = frame.with_columns(
        bank("outstanding_amount").alias("outstanding_cny"),
        bank("commitment_amount").alias("commitment_cny"),
        bank("drawn_in_period").fill_null(0.0).alias("drawn_in_period_cny"),
        bank("repaid_in_period").fill_null(0.0).alias("repaid_in_period_cny"),
        (pl.col("cerf_refinanced_amount") * fx).alias("cerf_refinanced_cny"),
        pl.when(use_2025)
        .then(pl.lit(CATALOGUES[0]))
        .otherwise(pl.lit(CATALOGUES[1]))
        .alias("catalogue"),
        pl.when(approval.is_null())
        .then(pl.lit("no approval date: the current (2025) catalogue"))
        .otherwise(pl.format("approved {}", approval))
        .alias("catalogue_basis"),
        status.alias("catalogue_status"),
        item.alias("catalogue_item"),
        status.replace_strict(GREEN_CLASS, default="insufficient_data", return_dtype=pl.String)
        .fill_null("insufficient_data")
        .alias("green_class"),
        invest.alias("_invest_cny"),
        equity_debt.alias("_equity_debt_cny"),
        _level(pl.col("pboc_cerf__item"), 1).alias("cerf_area"),
        (pl.col("cerf_refinanced_amount").fill_null(0) > 0).alias("cerf_supported"),
        issued.alias("issue_date"),
        pl.coalesce("borrower", "_project_borrower").alias("borrower"),
    )
    green = pl.col("green_class") == "green"
    frame = frame.with_columns(
        pl.when(green).then(_level(pl.col("catalogue_item"), 1)).alias("green_category"),
        pl.when(green).then(_level(pl.col("catalogue_item"), 2)).alias("green_category_l2"),
        _capped("outstanding_cny", "_invest_cny").alias("attribution"),
        _capped("outstanding_cny", "_equity_debt_cny").alias("pcaf_attribution"),
        _capped("commitment_cny", "_invest_cny").alias("cerf_attribution"),
        pl.col("issue_date").is_between(period.start, period.end).alias("issued_in_quarter"),
        pl.col("issue_date").is_between(period.year_start, period.end).alias("issued_in_year"),
        (pl.col("issue_date") <= period.end).alias("issued_by_period_end"),
    )
    return frame.with_columns(
        (pl.col("avoided_tco2e_per_year") * pl.col("attribution")).alias(
            "avoided_tco2e_attributed"
        ),
        (pl.col("standard_coal_saved_tce_per_year") * pl.col("attribution")).alias(
            "standard_coal_tce_attributed"
        ),
        (pl.col("avoided_tco2e_per_year") * pl.col("pcaf_attribution")).alias("avoided_tco2e_pcaf"),
        (pl.col("project_emissions_tco2e") * pl.col("pcaf_attribution")).alias(
            "financed_emissions_tco2e"
        ),
        (pl.col("avoided_tco2e_per_year") * pl.col("cerf_attribution")).alias(
            "cerf_reduction_tco2e"
        ),
    ).select(LOAN_COLUMNS)


def _capped(amount: str, denominator: str) -> pl.Expr:
    """``amount / max(denominator, Σ amount over the project's loans)``: null without a positive
    denominator; the project's loans together never carry more than the whole project."""
    total = pl.col(amount).sum().over("project_id")
    base = pl.max_horizontal(pl.col(denominator), total)
    return pl.when(pl.col(denominator) > 0).then(pl.col(amount).fill_null(0.0) / base)


LOAN_COLUMNS = [
    "loan_id",
    "project_id",
    "tranche",
    "borrower",
    "borrower_type",
    "activity",
    "province",
    "currency",
    "syndicate_share",
    "interest_rate",
    "approval_date",
    "issue_date",
    "outstanding_cny",
    "commitment_cny",
    "drawn_in_period_cny",
    "repaid_in_period_cny",
    "catalogue",
    "catalogue_basis",
    "catalogue_status",
    "catalogue_item",
    "green_class",
    "green_category",
    "green_category_l2",
    "green_label_claimed",
    "attribution",
    "pcaf_attribution",
    "avoided_tco2e_per_year",
    "standard_coal_saved_tce_per_year",
    "avoided_tco2e_attributed",
    "standard_coal_tce_attributed",
    "avoided_tco2e_pcaf",
    "project_emissions_tco2e",
    "financed_emissions_tco2e",
    "pcaf_option",
    "pcaf_data_quality",
    "pcaf_basis",
    "ef_source",
    "cerf_supported",
    "cerf_area",
    "cerf_refinanced_cny",
    "cerf_attribution",
    "cerf_reduction_tco2e",
    "issued_in_quarter",
    "issued_in_year",
    "issued_by_period_end",
]


# --------------------------------------------------------------------------------------------
# Template
_EXAMPLE = [
    {
        "loan_id": "L-0001",
        "project_id": "EX-001",
        "borrower": "示例新能源有限公司",
        "borrower_type": "民营企业",
        "tranche": "A",
        "currency": "CNY",
        "approval_date": dt.date(2025, 11, 1),
        "first_drawdown_date": dt.date(2026, 1, 15),
        "maturity_date": dt.date(2041, 1, 15),
        "interest_rate": 0.031,
        "commitment_amount": 200_000_000,
        "outstanding_amount": 180_000_000,
        "drawn_in_period": 30_000_000,
        "repaid_in_period": 5_000_000,
        "syndicate_share": 0.5,
        "green_label_claimed": "是",
        "cerf_refinanced_amount": 54_000_000,
        "cerf_refinanced_date": dt.date(2026, 4, 20),
    }
]


def write_loan_template(path: str | Path) -> Path:
    """Write the Excel loan book template v1.

    Sheets ``loans`` (field names, Chinese labels with units — the reader skips that row —
    and checked empty rows), ``fields`` and ``example``; deterministic like the pipeline
    template.

    Parameters
    ----------
    path : str or pathlib.Path
        An ``.xlsx`` file.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from greenscreen._template import open_workbook, workbook_styles, write_input_sheet

    path = Path(path)
    workbook = open_workbook(
        path,
        f"greenscreen loan book template {LOAN_TEMPLATE_VERSION}",
        "Loans for periodic green-finance reporting",
    )
    styles = workbook_styles(workbook)
    specs = list(LOAN_FIELDS.values())
    write_input_sheet(workbook, specs, styles, {}, name="loans")
    fields = workbook.add_worksheet("fields")
    heads = ["field", "中文名称", "type", "unit", "required", "allowed", "description"]
    fields.write_row(0, 0, heads, styles["bold"])
    for row, spec in enumerate(specs, start=1):
        required = spec.name in ("loan_id", "project_id", "outstanding_amount")
        fields.write_row(
            row,
            0,
            [
                spec.name,
                spec.zh,
                spec.kind,
                spec.unit or "",
                "yes" if required else "",
                spec.range_text(),
                spec.description,
            ],
        )
    notes = [
        f"greenscreen loan book template {LOAN_TEMPLATE_VERSION} (greenscreen {__version__}).",
        "One row per loan; several loans may finance one project (tranches, syndication).",
        "Amounts are the whole loan's; the bank's part is amount × syndicate_share.",
        "Headers may be field names or Chinese labels; units in headers are converted "
        "(期末余额(万元)).",
    ]
    for i, note in enumerate(notes):
        fields.write(len(specs) + 2 + i, 0, note)
    fields.set_column(0, 1, 26)
    fields.set_column(6, 6, 80)
    example = workbook.add_worksheet("example")
    for col, spec in enumerate(specs):
        example.write_string(0, col, spec.name, styles[spec.group])
        example.write_string(1, col, spec.label_zh, styles["label"])
        value = _EXAMPLE[0].get(spec.name)
        if isinstance(value, dt.date):
            example.write_datetime(2, col, dt.datetime.combine(value, dt.time()), styles["date"])
        elif value is not None:
            example.write(2, col, value)
    try:
        workbook.close()
    except OSError as exc:
        raise GreenscreenError(f"cannot write {path}: {exc}") from exc
    return path
