"""Project financial appraisal, vectorised across projects: arrays of projects × years.

Timeline (year index t, cash flows at the end of each year; t = 0 is "today"):

- construction years t = 0 … C−1 (C = max(construction_years, 1)): capex drawn evenly, debt
  drawn pro rata with capex (loan_amount / total_investment), interest during construction
  capitalised into the debt;
- operating years t = C … C+N−1 (N = operating_years), operating year k = t − C.

Operating year k:
    generation_k = G (1 − d)^k;  revenue_k = generation_k × tariff  (else annual_revenue)
                   + subsidy payments (subsidy engine schedule) + carbon revenue
                   (attributable avoided tCO2e × (1 − d)^k × carbon price)
    opex_k = opex (1 + e)^k;  EBITDA = revenue − opex
    depreciation = (capex + IDC) / N  (straight line);  EBIT = EBITDA − depreciation
    tax_k = max(EBIT, 0) × tax_rate   (on EBIT: the interest shield goes to equity, so CFADS
                                       does not depend on the debt and sculpting is exact)
    CFADS_k = EBITDA − tax_k

Debt (interest rate r, tenor L operating years, grace g interest-only years):
``annuity`` (constant payment after grace), ``equal_principal``, or ``sculpted`` (debt
service = CFADS / target DSCR, debt = PV of that service at r). Debt never exceeds the total
cost (capex + IDC): a larger sizing is capped and flagged (``debt_capped``).

Metrics: DSCR per year (CFADS / debt service), ``min_dscr``, ``avg_dscr``, ``llcr`` (PV of
CFADS over the remaining loan life at r / debt at COD), ``project_irr_pretax`` (−capex,
EBITDA), ``project_irr`` (post-tax), ``equity_irr`` (−equity draws, CFADS − debt service +
interest tax shield), ``npv`` of the post-tax project cash flows at ``discount_rate``,
``payback_years``, ``lcoe`` (PV of capex + opex / PV of generation) and ``breakeven_tariff``
(post-tax NPV = 0).

Conventions: NPV treats the first cash flow (t = 0) as today, undiscounted — the
numpy-financial convention (``npf.npv``). Excel's NPV() discounts the first value by one period;
:func:`excel_npv` reproduces it where an Excel-style figure is shown. An IRR is NaN with a
reason (``irr_reason``) when the cash flows never change sign or no root is found.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, TypeVar

import numpy as np
import polars as pl

DebtProfile = Literal["annuity", "equal_principal", "sculpted"]
_CHUNK = 50_000  # projects per slice: bounds the projects × years arrays to ~0.5 GiB

#: China national ETS (CEA) close, 2023-07-30: 61.05 yuan/t (seed 002; seed_facts.md).
ETS_CLOSE_2023_07_30 = 61.05


@dataclass(frozen=True)
class AppraisalConfig:
    """Defaults used where a project does not give its own value; all recorded in run.json.

    ``tax_rate`` 25 % is China's standard corporate income tax rate. ``discount_rate``,
    ``interest_rate`` and ``target_dscr`` have no regulatory source: they are the bank's
    assumptions and are reported as such.
    """

    tax_rate: float = 0.25
    discount_rate: float = 0.06
    interest_rate: float | None = None
    debt_profile: DebtProfile = "annuity"
    target_dscr: float = 1.30
    carbon_price: float = 0.0
    sensitivity: float = 0.10
    carbon_scenarios: dict[str, float] = field(
        default_factory=lambda: {"none": 0.0, "cea_2023_07_30": ETS_CLOSE_2023_07_30}
    )


@dataclass
class _Arrays:
    """Inputs as float arrays of length P (NaN where missing)."""

    capex: np.ndarray
    loan: np.ndarray
    rate: np.ndarray
    tenor: np.ndarray
    grace: np.ndarray
    construction: np.ndarray
    life: np.ndarray
    generation: np.ndarray
    tariff: np.ndarray
    revenue: np.ndarray
    opex: np.ndarray
    escalation: np.ndarray
    degradation: np.ndarray
    tax: np.ndarray
    discount: np.ndarray
    carbon_t: np.ndarray


def _col(frame: pl.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(frame.height, np.nan)
    return frame[name].cast(pl.Float64).fill_null(np.nan).to_numpy().astype(float)


def _inputs(frame: pl.DataFrame, config: AppraisalConfig) -> _Arrays:
    if "generation_mwh" in frame.columns:  # the screened results: derived by the engine
        generation = _col(frame, "generation_mwh")
    else:
        generation = _col(frame, "annual_generation_mwh")
        estimated = _col(frame, "capacity_mw") * _col(frame, "full_load_hours")
        generation = np.where(np.isnan(generation), estimated, generation)

    def default(values: np.ndarray, fallback: float) -> np.ndarray:
        return np.where(np.isnan(values), fallback, values)

    rate = _col(frame, "interest_rate")
    if config.interest_rate is not None:
        rate = default(rate, config.interest_rate)
    life = _col(frame, "operating_years")
    return _Arrays(
        capex=_col(frame, "total_investment"),
        loan=default(_col(frame, "loan_amount"), 0.0),
        rate=rate,
        tenor=np.minimum(default(_col(frame, "loan_tenor_years"), 0.0), default(life, 0.0)),
        grace=default(_col(frame, "grace_period_years"), 0.0),
        construction=np.maximum(default(_col(frame, "construction_years"), 1.0), 1.0),
        life=life,
        generation=generation,
        tariff=_col(frame, "tariff_per_mwh"),
        revenue=_col(frame, "annual_revenue"),
        opex=default(_col(frame, "annual_opex"), 0.0),
        escalation=default(_col(frame, "opex_escalation"), 0.0),
        degradation=default(_col(frame, "degradation_rate"), 0.0),
        tax=default(_col(frame, "tax_rate"), config.tax_rate),
        discount=default(_col(frame, "discount_rate"), config.discount_rate),
        carbon_t=default(_col(frame, "attributable_tco2e_per_year"), 0.0),
    )


# --------------------------------------------------------------------------------------------
def npv(rate: np.ndarray | float, cash_flows: np.ndarray) -> np.ndarray:
    """Net present value of each row of cash flows, vectorised.

    NPV = Σ_t CF_t / (1 + r)^t, t = 0 … T−1: the first value is today's, undiscounted (the
    numpy-financial convention, ``numpy_financial.npv``; Excel's NPV() differs, see
    :func:`excel_npv`). NaN cash flows count as 0.

    Parameters
    ----------
    rate : float or numpy.ndarray
        Discount rate per period [fraction, 0.06 = 6 %]: a scalar or one per row (length P).
    cash_flows : numpy.ndarray
        P × T cash flows [currency], one row per project, one column per year.

    Returns
    -------
    numpy.ndarray
        Length P [currency].

    References
    ----------
    numpy-financial, ``npv``: https://numpy.org/numpy-financial/latest/npv.html
    """
    cf = np.atleast_2d(np.asarray(cash_flows, dtype=float))
    t = np.arange(cf.shape[1])
    r = np.asarray(rate, dtype=float).reshape(-1, 1)
    return np.nansum(cf / (1 + r) ** t, axis=1)


def excel_npv(rate: float, values: np.ndarray) -> float:
    """Excel's ``NPV(rate, values)``: every value discounted, the first by one period.

    NPV = Σ_{i=1}^{n} v_i / (1 + r)^i — what a spreadsheet shows for ``=NPV(r, range)``, so
    a figure recomputed in Excel matches (:func:`npv` keeps the first value undiscounted).

    Parameters
    ----------
    rate : float
        Discount rate per period [fraction].
    values : numpy.ndarray
        Cash flows [currency], the first one period from now.

    Returns
    -------
    float
        [currency]

    References
    ----------
    Microsoft, NPV function: https://support.microsoft.com/office/npv-function-8672cb67-2576-4d07-b67b-ac28acf2a568
    """
    values = np.asarray(values, dtype=float)
    return float(np.sum(values / (1 + rate) ** np.arange(1, values.size + 1)))


def irr(
    cash_flows: np.ndarray, tol: float = 1e-10, max_iter: int = 60
) -> tuple[np.ndarray, np.ndarray]:
    """IRR of each row (P × T), vectorised, with a reason where it is undefined.

    Newton's method from 10 % on every row at once, then bisection on the rows where Newton
    fails (IRR bracketed in (−99 %, 1000 %)). A value and a reason never come together: rows
    whose cash flows never change sign have no IRR (NaN, ``no sign change``). Cash flows that
    change sign several times can have several IRRs; then the one closest to zero is returned,
    numpy-financial's documented default (``numpy_financial.irr``, ``selection_logic``), found
    by sampling the NPV over a grid of rates across the bracket and bisecting the sign change
    nearest zero. A rate within the tolerance of zero is 0.

    Parameters
    ----------
    cash_flows : numpy.ndarray
        P × T cash flows [currency], t = 0 first (NaN counts as 0).
    tol : float
        Newton stops when a row's step is below this [fraction of a rate].
    max_iter : int
        Newton steps at most, before bisection takes the rows still unsettled.

    Returns
    -------
    irr : numpy.ndarray
        Length P [fraction per period]; NaN where undefined.
    reason : numpy.ndarray
        Length P: "" where an IRR is given, else ``no sign change`` or ``no root found in
        (-99 %, 1000 %)``.

    References
    ----------
    numpy-financial, ``irr`` (selection of the root closest to zero):
    https://numpy.org/numpy-financial/latest/irr.html; Norström, C. J. (1972), "A sufficient
    condition for a unique nonnegative internal rate of return", Journal of Financial and
    Quantitative Analysis 7(3), 1835–1839 (one sign change of the cumulative cash flow).
    """
    cf = np.atleast_2d(np.nan_to_num(np.asarray(cash_flows, dtype=float)))
    p, n = cf.shape
    t = np.arange(n)
    changes = _sign_changes(cf)
    rate = np.full(p, 0.1)
    active = np.flatnonzero(changes > 0)
    for _ in range(max_iter):  # Newton on the rows still moving: most settle in a few steps
        if active.size == 0:
            break
        sub = cf[active]
        growth = 1 + rate[active, None]
        disc = growth**-t
        value = np.sum(sub * disc, axis=1)
        slope = np.sum(-t * sub * disc / growth, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(slope != 0, value / slope, 0.0)
        rate[active] = np.clip(rate[active] - step, -0.99, 10.0)
        active = active[np.abs(step) >= tol]
    final = np.sum(cf * (1 + rate[:, None]) ** -t, axis=1)
    scale = np.maximum(np.abs(cf).sum(axis=1), 1e-300)
    bad = (np.abs(final) / scale > 1e-9) & (changes > 0)
    if bad.any():
        rate[bad] = _bisect(cf[bad], t)
    result = np.where(changes > 0, np.where(np.abs(rate) < tol, 0.0, rate), np.nan)
    reason = np.full(p, "", dtype=object)
    reason[changes == 0] = "no sign change"
    several = np.flatnonzero(changes > 1)
    # Norström: a cumulative cash flow that changes sign once has one IRR, Newton's is it
    several = several[_sign_changes(np.cumsum(cf[several], axis=1)) != 1]
    if several.size:
        lo, hi, roots = _bracket_nearest_zero(cf[several], t)
        several, lo, hi = several[roots > 1], lo[roots > 1], hi[roots > 1]
        if several.size:
            result[several] = _bisect(cf[several], t, lo, hi)
    unresolved = (changes > 0) & ~np.isfinite(result)
    reason[unresolved] = "no root found in (-99 %, 1000 %)"
    return result, reason


def _sign_changes(values: np.ndarray) -> np.ndarray:
    """Sign changes along each row, zeros skipped."""
    signs = np.sign(values)
    n = values.shape[1]
    idx = np.where(signs != 0, np.arange(n), 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    filled = np.take_along_axis(signs, idx, axis=1)
    return np.sum((filled[:, 1:] * filled[:, :-1]) < 0, axis=1)


# rates at which the NPV is sampled to find every IRR: dense near zero, across (−99 %, 1000 %)
_IRR_GRID = np.unique(np.concatenate([np.linspace(-0.99, 1.0, 400), np.geomspace(1.0, 10.0, 60)]))


def _bracket_nearest_zero(cf: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per row: the grid interval holding the IRR closest to zero (lo, hi) and how many sign
    changes the NPV has over the grid. One rate at a time, so memory stays P × T."""
    rows = cf.shape[0]
    last_sign, last_rate = np.zeros(rows), np.full(rows, np.nan)
    lo, hi = np.full(rows, np.nan), np.full(rows, np.nan)
    changes = np.zeros(rows, dtype=int)
    for rate in _IRR_GRID:
        sign = np.sign(np.sum(cf * (1 + rate) ** -t, axis=1))
        crossed = (sign * last_sign) < 0
        changes += crossed
        nearer = crossed & ~(np.abs(hi + lo) / 2 <= np.abs(rate + last_rate) / 2)
        lo, hi = np.where(nearer, last_rate, lo), np.where(nearer, rate, hi)
        last_rate = np.where(sign != 0, rate, last_rate)
        last_sign = np.where(sign != 0, sign, last_sign)
    return lo, hi, changes


def _bisect(
    cf: np.ndarray, t: np.ndarray, lo: np.ndarray | None = None, hi: np.ndarray | None = None
) -> np.ndarray:
    """The IRR between ``lo`` and ``hi`` (default: the whole bracket) by bisection."""
    lo = np.full(cf.shape[0], -0.99) if lo is None else lo.copy()
    hi = np.full(cf.shape[0], 10.0) if hi is None else hi.copy()
    f_lo = np.sum(cf * (1 + lo[:, None]) ** -t, axis=1)
    f_hi = np.sum(cf * (1 + hi[:, None]) ** -t, axis=1)
    ok = np.sign(f_lo) != np.sign(f_hi)
    for _ in range(200):
        mid = (lo + hi) / 2
        f_mid = np.sum(cf * (1 + mid[:, None]) ** -t, axis=1)
        left = np.sign(f_mid) == np.sign(f_lo)
        lo = np.where(left, mid, lo)
        f_lo = np.where(left, f_mid, f_lo)
        hi = np.where(left, hi, mid)
    return np.where(ok, (lo + hi) / 2, np.nan)


# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Appraisal:
    """``metrics``: one row per project; ``cash_flows``: one row per project × year
    (construction and operation), built on first access; ``sensitivities``: the tornado
    table, one row per project × driver × direction."""

    metrics: pl.DataFrame
    sensitivities: pl.DataFrame
    _projects: pl.DataFrame
    _config: AppraisalConfig
    _schedule: pl.DataFrame | None

    @cached_property
    def cash_flows(self) -> pl.DataFrame:
        return self.cash_flows_for(None)

    def subset(self, project_ids: pl.Series) -> Appraisal:
        """The appraisal of some projects only (for their packs).

        Parameters
        ----------
        project_ids : polars.Series
            An imploded String series (one list value) of the project ids to keep.

        Returns
        -------
        Appraisal
            Metrics, sensitivities, inputs and schedule of those projects.
        """

        def only(frame: pl.DataFrame | None) -> pl.DataFrame | None:
            if frame is None or "project_id" not in frame.columns:
                return frame
            return frame.filter(pl.col("project_id").is_in(project_ids))

        return Appraisal(
            self.metrics.filter(pl.col("project_id").is_in(project_ids)),
            self.sensitivities.filter(pl.col("project_id").is_in(project_ids))
            if "project_id" in self.sensitivities.columns
            else self.sensitivities,
            self._projects.filter(pl.col("project_id").is_in(project_ids)),
            self._config,
            only(self._schedule),
        )

    def workings(self, project_id: str) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """Every line of one project's model, as the Excel pack lays it out.

        The pack writes them as its formulas' cached values, so a viewer that does not
        recalculate shows the engine's figures.

        Parameters
        ----------
        project_id : str
            A project of this appraisal.

        Returns
        -------
        per_year : dict of str to numpy.ndarray
            Every CashFlow line by name, one value per year from t = 0 (construction years
            first) [currency, MWh or flags].
        sizing : dict of str to float
            The debt sizing: debt, size before the cap, scale, annuity, share of capex.
            Both empty for an unknown project.
        """
        chunk = self._projects.filter(pl.col("project_id") == project_id).head(1)
        if chunk.height == 0:
            return {}, {}
        x = _inputs(chunk, self._config)
        base = _model(
            x,
            self._config,
            _subsidy_matrix(chunk, self._schedule, x),
            self._config.carbon_price,
            detail=True,
        )
        per_year = {name: values[0] for name, values in {**base["cash"], **base["detail"]}.items()}
        per_year["dscr"] = base["cash"]["dscr"][0]
        sizing = {name: float(values[0]) for name, values in base["sizing"].items()}
        return per_year, sizing

    def cash_flows_for(self, project_ids: list[str] | None) -> pl.DataFrame:
        """The annual model of some projects, recomputed from the inputs so a batch never
        holds projects × years arrays in memory.

        Parameters
        ----------
        project_ids : list of str or None
            The projects (None: all).

        Returns
        -------
        polars.DataFrame
            One row per valued project × construction or operating year: revenue, opex,
            EBITDA, tax, CFADS, debt service, interest, principal, DSCR, capex, project and
            equity cash flows [currency], generation [MWh] and subsidies.
        """
        frame = self._projects
        if project_ids is not None:
            frame = frame.filter(pl.col("project_id").is_in(project_ids))
        parts = []
        for start in range(0, frame.height, _CHUNK):
            chunk = frame.slice(start, _CHUNK)
            x = _inputs(chunk, self._config)
            base = _model(
                x,
                self._config,
                _subsidy_matrix(chunk, self._schedule, x),
                self._config.carbon_price,
            )
            parts.append(_cash_flow_table(chunk["project_id"], base))
        return pl.concat(parts) if parts else pl.DataFrame()


def appraise(
    projects: pl.DataFrame,
    config: AppraisalConfig | None = None,
    subsidy_schedule: pl.DataFrame | None = None,
    *,
    sensitivities: bool = True,
    chunk_size: int = _CHUNK,
    workers: int | None = None,
) -> Appraisal:
    """Appraise every project at once (in slices of ``chunk_size`` projects).

    Parameters
    ----------
    projects
        Projects with template v1 finance columns; ``attributable_tco2e_per_year`` (from the
        emissions step) enables carbon revenue.
    config
        Defaults and run choices (:class:`AppraisalConfig`).
    subsidy_schedule
        Payments from :func:`greenscreen.subsidy.evaluate_programmes` (project_id, year_index,
        start, amount); added to revenue in the operating (start = cod) or construction
        (start = approval_date) years.
    sensitivities
        Also run the tornado table (±``config.sensitivity`` on each driver a project has, and
        ``config.carbon_scenarios``): eleven more model runs.
    chunk_size
        Projects per slice: the model's arrays are slice × years floats (~0.3 GiB at 50,000).
    workers
        Threads that model slices side by side (default: one per CPU, at most 2 slices in
        memory per thread); numpy releases the GIL in its array operations.

    Returns
    -------
    Appraisal
        ``metrics`` one row per project, in input order: every figure NaN and ``irr_reason``
        naming the missing inputs for a project without total_investment, operating_years and
        tariff × generation or annual_revenue.
    """
    config = config or AppraisalConfig()
    x = _inputs(projects, config)
    valid = _valid(x)
    # only the projects with financial inputs are modelled: the others' figures are all NaN
    rows = np.flatnonzero(valid)
    schedule = _payments(subsidy_schedule)
    modelled = projects[rows] if rows.size < projects.height else projects
    slices = [
        (start, modelled.slice(start, chunk_size)) for start in range(0, rows.size, chunk_size)
    ]

    def base(part: tuple[int, pl.DataFrame]) -> dict[str, np.ndarray]:
        start, chunk = part
        sub = _take(x, rows[start : start + chunk.height])
        return _model(sub, config, _subsidy_matrix(chunk, schedule, sub), config.carbon_price)[
            "metrics"
        ]

    metrics = _scatter(_parallel(base, slices, workers), rows, projects.height)
    table = pl.DataFrame()
    if sensitivities:
        table = _sensitivity_table(projects, x, config, schedule, metrics, chunk_size, workers)
    metric_frame = pl.DataFrame({"project_id": projects["project_id"], **metrics})
    return Appraisal(metric_frame, table, projects, config, subsidy_schedule)


_INVALID = "needs total_investment, operating_years and tariff × generation or annual_revenue"


def _valid(x: _Arrays) -> np.ndarray:
    """Projects the model can value: capex, a life and revenue (tariff × generation or an
    annual revenue)."""
    by_tariff = ~np.isnan(x.generation) & ~np.isnan(x.tariff)
    return ~np.isnan(x.capex) & (np.nan_to_num(x.life) > 0) & (by_tariff | ~np.isnan(x.revenue))


def _take(x: _Arrays, rows: np.ndarray) -> _Arrays:
    return _Arrays(**{name: values[rows] for name, values in x.__dict__.items()})


_Part = TypeVar("_Part")
_Out = TypeVar("_Out")


def _parallel(
    work: Callable[[_Part], _Out], parts: Sequence[_Part], workers: int | None
) -> list[_Out]:
    """``work`` on every part, in order, on up to ``workers`` threads (default one per CPU)."""
    threads = min(workers or os.cpu_count() or 1, len(parts))
    if threads <= 1:
        return [work(part) for part in parts]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(work, parts))


def _scatter(parts: list[dict[str, np.ndarray]], rows: np.ndarray, height: int) -> dict[str, Any]:
    """The modelled rows' metrics put back among all projects (NaN and the reason elsewhere)."""
    metrics: dict[str, Any] = {}
    for name in _METRICS:
        values = [part[name] for part in parts]
        if name == "irr_reason":  # a String column, not a numpy array of fixed-width text
            reason = pl.repeat(_INVALID, height, dtype=pl.String, eager=True)
            if parts:
                reason = reason.scatter(rows, pl.Series(np.concatenate(values), dtype=pl.String))
            metrics[name] = reason.alias(name)
            continue
        column = np.zeros(height, dtype=bool) if name == "debt_capped" else np.full(height, np.nan)
        if parts:
            column[rows] = np.concatenate(values)
        metrics[name] = column
    return metrics


_METRICS = (
    "debt_amount",
    "debt_capped",
    "idc",
    "min_dscr",
    "avg_dscr",
    "llcr",
    "project_irr_pretax",
    "project_irr",
    "equity_irr",
    "irr_reason",
    "npv",
    "payback_years",
    "lcoe",
    "breakeven_tariff",
)


def _sensitivity_table(
    projects: pl.DataFrame,
    x: _Arrays,
    config: AppraisalConfig,
    schedule: pl.DataFrame | None,
    metrics: dict[str, np.ndarray],
    chunk_size: int,
    workers: int | None,
) -> pl.DataFrame:
    """The tornado table: each project varied on the drivers its inputs have — tariff and
    generation when revenue is tariff × generation, revenue when it is given as annual
    revenue, opex when there is one — and priced at each carbon scenario."""
    by_tariff = ~np.isnan(x.generation) & ~np.isnan(x.tariff)
    applies = {
        "capex": np.ones(x.capex.size, dtype=bool),
        "tariff": by_tariff,
        "generation": by_tariff,
        "revenue": ~by_tariff & ~np.isnan(x.revenue),
        "opex": np.nan_to_num(x.opex) != 0,
    }
    runs = [
        (driver, direction, factor - 1, factor, config.carbon_price)
        for driver in applies
        for direction, factor in (("low", 1 - config.sensitivity), ("high", 1 + config.sensitivity))
    ] + [
        (f"carbon_price:{name}", str(price), price, 1.0, price)
        for name, price in config.carbon_scenarios.items()
    ]

    def varied(part: tuple[int, pl.DataFrame]) -> pl.DataFrame:
        start, chunk = part
        rows = np.arange(start, start + chunk.height)
        sub = _take(x, rows)
        subsidies = _subsidy_matrix(chunk, schedule, sub)
        frames = []
        for driver, direction, change, factor, price in runs:
            scaled = sub if driver.startswith("carbon_price:") else _scaled(sub, driver, factor)
            out = _model(scaled, config, subsidies, price, full=False)["metrics"]
            keep = applies.get(driver, applies["capex"])[rows]
            frames.append(
                pl.DataFrame(
                    {
                        "project_id": chunk["project_id"],
                        "driver": driver,
                        "direction": direction,
                        "change": change,
                        "npv": out["npv"],
                        "project_irr": out["project_irr"],
                        "min_dscr": out["min_dscr"],
                        "npv_delta": out["npv"] - metrics["npv"][rows],
                    }
                ).filter(pl.Series(keep))
            )
        return pl.concat(frames, how="vertical")

    parts = [
        (start, projects.slice(start, chunk_size))
        for start in range(0, projects.height, chunk_size)
    ]
    return pl.concat(_parallel(varied, parts, workers), how="vertical") if parts else pl.DataFrame()


def _payments(schedule: pl.DataFrame | None) -> pl.DataFrame | None:
    """The schedule's dated payments (not the ``up_to`` ceilings), filtered once per run."""
    if schedule is None or schedule.height == 0:
        return None
    return schedule.filter(~pl.col("up_to"))


def _scaled(x: _Arrays, driver: str, factor: float) -> _Arrays:
    values = dict(x.__dict__)
    if driver == "capex":
        values["capex"] = x.capex * factor
        values["loan"] = x.loan * factor
    elif driver == "tariff":
        values["tariff"] = x.tariff * factor
    elif driver == "generation":
        values["generation"] = x.generation * factor
    elif driver == "revenue":
        values["revenue"] = x.revenue * factor
    elif driver == "opex":
        values["opex"] = x.opex * factor
    return _Arrays(**values)


def _subsidy_matrix(
    projects: pl.DataFrame, schedule: pl.DataFrame | None, x: _Arrays
) -> np.ndarray:
    """Subsidy payments as a P × T matrix on the model's year index."""
    periods = _periods(x)
    matrix = np.zeros((projects.height, periods))
    if schedule is None or schedule.height == 0:
        return matrix
    ids = projects.select("project_id", pl.int_range(pl.len(), dtype=pl.Int64).alias("_i"))
    rows = schedule.filter(~pl.col("up_to")).join(
        ids, on="project_id", how="inner", maintain_order="left"
    )
    pid = rows["_i"].to_numpy()
    keep = np.ones(pid.size, dtype=bool)
    offset = np.where(rows["start"].to_numpy() == "cod", x.construction[np.maximum(pid, 0)], 0)
    col = (rows["year_index"].to_numpy() + offset).astype(int)
    keep &= col < periods
    np.add.at(matrix, (pid[keep], col[keep]), rows["amount"].to_numpy()[keep])
    return matrix


def _periods(x: _Arrays) -> int:
    total = x.construction + np.nan_to_num(x.life)
    return int(np.nanmax(total)) if total.size else 1


def _model(
    x: _Arrays,
    config: AppraisalConfig,
    subsidies: np.ndarray,
    carbon_price: float,
    *,
    full: bool = True,
    detail: bool = False,
) -> dict:
    """The cash-flow model. ``full=False`` (sensitivity runs) computes NPV, post-tax project
    IRR and DSCRs only; ``detail=True`` adds every working line of the Excel pack's CashFlow
    sheet (``detail``, per year, and ``sizing``, per project) for its cached values."""
    p = x.capex.size
    periods = max(subsidies.shape[1], _periods(x), 1)
    t = np.arange(periods)[None, :]
    c = x.construction[:, None]
    n = np.nan_to_num(x.life)[:, None]
    building = t < c
    operating = (t >= c) & (t < c + n)
    k = np.where(operating, t - c, 0)

    # construction: capex evenly over C years; debt drawn pro rata; IDC capitalised
    capex_draw = np.where(building, np.nan_to_num(x.capex)[:, None] / c, 0.0)
    share = np.where(
        x.capex > 0, np.minimum(np.nan_to_num(x.loan) / np.where(x.capex > 0, x.capex, 1), 1.0), 0.0
    )
    rate = np.nan_to_num(x.rate)
    balance = np.zeros(p)
    idc = np.zeros(p)
    # per-year IDC and balance, for the pack's cached values only
    idc_year = np.zeros((p, periods)) if detail else None
    balance_year = np.zeros((p, periods)) if detail else None
    for year in range(int(np.max(x.construction)) if p else 0):  # ≤ 20 construction years
        interest = balance * rate
        drawing = year < x.construction
        idc += np.where(drawing, interest, 0.0)
        balance = np.where(drawing, balance + interest + capex_draw[:, year] * share, balance)
        if idc_year is not None and balance_year is not None:
            idc_year[:, year] = np.where(drawing, interest, 0.0)
            balance_year[:, year] = balance
    total_cost = np.nan_to_num(x.capex) + idc

    generation = np.where(operating, x.generation[:, None] * (1 - x.degradation[:, None]) ** k, 0.0)
    by_tariff = ~np.isnan(x.generation) & ~np.isnan(x.tariff)
    energy_revenue = np.where(
        by_tariff[:, None],
        generation * np.nan_to_num(x.tariff)[:, None],
        np.nan_to_num(x.revenue)[:, None],
    )
    carbon = x.carbon_t[:, None] * (1 - x.degradation[:, None]) ** k * carbon_price
    revenue = np.where(operating, energy_revenue + carbon, 0.0) + subsidies[:, :periods]
    opex = np.where(operating, x.opex[:, None] * (1 + x.escalation[:, None]) ** k, 0.0)
    ebitda = revenue - opex
    life = np.where(n > 0, n, np.nan)
    depreciation = np.where(operating, total_cost[:, None] / life, 0.0)
    ebit = ebitda - depreciation
    tax = np.maximum(ebit, 0.0) * x.tax[:, None] * operating
    cfads = np.where(operating, ebitda - tax, 0.0)

    debt, service, interest, principal, capped, sizing = _debt(
        x, config, cfads, balance, total_cost, c, operating, k, detail=detail
    )

    dscr = np.where(service > 0, cfads / np.where(service > 0, service, 1), np.nan)
    has_service = ~np.isnan(dscr)
    count = has_service.sum(axis=1)
    min_dscr = np.where(count > 0, np.min(np.where(has_service, dscr, np.inf), axis=1), np.nan)
    avg_dscr = np.where(
        count > 0, np.where(has_service, dscr, 0.0).sum(axis=1) / np.maximum(count, 1), np.nan
    )
    tenor = x.tenor[:, None]
    loan_years = operating & (k < tenor)
    pv_cfads = np.sum(np.where(loan_years, cfads / (1 + rate[:, None]) ** (k + 1), 0.0), axis=1)
    llcr = np.where(debt > 0, pv_cfads / np.where(debt > 0, debt, 1), np.nan)

    # EBITDA outside operation is only subsidy paid during construction: it counts too
    project_pre = -capex_draw + ebitda
    project_post = project_pre - tax
    shield = np.minimum(interest, np.maximum(ebit, 0.0)) * x.tax[:, None] * operating
    equity_draw = capex_draw * (1 - share[:, None])
    equity_cf = -equity_draw + np.where(operating, cfads - service + shield, ebitda)

    valid = _valid(x)
    irr_post, why_post = irr(project_post)
    value = npv(x.discount, project_post)
    if not full:
        return {"metrics": {"npv": value, "project_irr": irr_post, "min_dscr": min_dscr}}
    irr_pre, why_pre = irr(project_pre)
    irr_equity, why_equity = irr(equity_cf)
    disc = (1 + x.discount[:, None]) ** -t
    pv_energy = np.sum(generation * disc, axis=1)
    pv_cost = np.sum((capex_draw + opex) * disc, axis=1)
    lcoe = np.where(pv_energy > 0, pv_cost / np.where(pv_energy > 0, pv_energy, 1), np.nan)
    breakeven = _breakeven(
        x,
        generation,
        opex,
        capex_draw,
        depreciation,
        operating,
        disc,
        subsidies[:, :periods] + np.where(operating, carbon, 0.0),
    )
    payback = _payback(project_post)

    def masked(values: np.ndarray) -> np.ndarray:
        return np.where(valid, values, np.nan)

    reason = np.where(
        valid,
        "",
        _INVALID,
    )
    metrics = {
        "debt_amount": masked(debt),
        "debt_capped": np.where(valid, capped, False),
        "idc": masked(idc),
        "min_dscr": masked(min_dscr),
        "avg_dscr": masked(avg_dscr),
        "llcr": masked(llcr),
        "project_irr_pretax": masked(irr_pre),
        "project_irr": masked(irr_post),
        "equity_irr": masked(irr_equity),
        # astype(str): with no projects np.where gives float64, which becomes an Object column
        "irr_reason": np.where(valid, _join_reasons(why_pre, why_post, why_equity), reason).astype(
            str
        ),
        "npv": masked(value),
        "payback_years": masked(payback),
        "lcoe": masked(lcoe),
        "breakeven_tariff": masked(breakeven),
    }
    cash = {
        "revenue": revenue,
        "opex": opex,
        "ebitda": ebitda,
        "tax": tax,
        "cfads": cfads,
        "debt_service": service,
        "interest": interest,
        "principal": principal,
        "dscr": dscr,
        "capex": capex_draw,
        "project_cf": project_post,
        "equity_cf": equity_cf,
        "generation_mwh": generation,
        "subsidies": subsidies[:, :periods],
    }
    out = {
        "metrics": metrics,
        "cash": cash,
        "operating": operating,
        "building": building,
        "valid": valid,
    }
    if detail and idc_year is not None and balance_year is not None:
        construction_end = np.arange(periods)[None, :] >= np.max(x.construction)
        out["detail"] = {
            "year": np.broadcast_to(t, (p, periods)).astype(float),
            "building": building.astype(float),
            "operating": operating.astype(float),
            "op_year": k.astype(float),
            "draw": capex_draw * share[:, None],
            "idc": idc_year,
            # after the longest construction the balance stays where it ended
            "con_balance": np.where(construction_end, balance[:, None], balance_year),
            "energy_revenue": np.where(operating, energy_revenue, 0.0),
            "carbon_revenue": np.where(operating, carbon, 0.0),
            "depreciation": depreciation,
            "ebit": ebit,
            "project_cf_pre": project_pre,
            "shield": shield,
            "discount": disc,
            **sizing["per_year"],
        }
        out["sizing"] = {
            "debt_share": share,
            "amort_years": np.maximum(x.tenor - np.minimum(x.grace, x.tenor), 0).astype(float),
            **sizing["per_project"],
        }
    return out


def _join_reasons(*reasons: np.ndarray) -> np.ndarray:
    labels = ("pre-tax project IRR", "project IRR", "equity IRR")
    out = np.full(reasons[0].shape, "", dtype=object)
    for label, why in zip(labels, reasons, strict=True):
        has = why != ""
        out = np.where(
            has, np.where(out == "", "", out + "; ") + label + ": " + why.astype(str), out
        )
    return out


def _debt(
    x: _Arrays,
    config: AppraisalConfig,
    cfads: np.ndarray,
    balance_at_cod: np.ndarray,
    total_cost: np.ndarray,
    c: np.ndarray,
    operating: np.ndarray,
    k: np.ndarray,
    *,
    detail: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
    """Debt at COD, debt service, interest and principal per year, whether capped, and (with
    ``detail``) the sizing workings: per-year loan flags, sculpting target, opening and
    closing balances, per-project size before the cap, scale and annuity."""
    rate = np.nan_to_num(x.rate)
    tenor = x.tenor[:, None]
    grace = np.minimum(x.grace, x.tenor)[:, None]
    in_loan = operating & (k < tenor)
    amortising = in_loan & (k >= grace)
    service_target = np.where(amortising, np.maximum(cfads, 0.0) / config.target_dscr, 0.0)
    if config.debt_profile == "sculpted":
        pv = np.sum(service_target / (1 + rate[:, None]) ** (k + 1), axis=1)
        sized = pv
    else:
        sized = balance_at_cod
    capped = sized > total_cost + 1e-6
    debt = np.minimum(sized, total_cost)
    p, periods = cfads.shape
    service = np.zeros((p, periods))
    interest = np.zeros((p, periods))
    principal = np.zeros((p, periods))
    outstanding = debt.copy()
    n_amort = np.maximum(x.tenor - np.minimum(x.grace, x.tenor), 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        annuity = np.where(
            rate > 0,
            debt * rate / (1 - (1 + rate) ** -n_amort),
            debt / np.where(n_amort > 0, n_amort, 1),
        )
    annuity = np.where(n_amort > 0, annuity, 0.0)
    scale = np.where(capped & (sized > 0), debt / np.where(sized > 0, sized, 1), 1.0)
    opening = np.zeros((p, periods)) if detail else None
    # a balance within float noise of zero is repaid: the last instalment must not "clear"
    # 4e-11 and show a DSCR of -7e14 in a year of negative CFADS (hypothesis found it)
    noise = 1e-9 * np.maximum(debt, 1.0)
    for year in range(periods):  # the year axis (≤ ~100), vectorised over all projects
        outstanding = np.where(np.abs(outstanding) <= noise, 0.0, outstanding)
        if opening is not None:  # the balance is the debt from COD on, nothing before
            opening[:, year] = np.where(year >= c[:, 0], outstanding, 0.0)
        due = interest_due = outstanding * rate
        active = in_loan[:, year]
        if config.debt_profile == "sculpted":
            pay = np.where(amortising[:, year], service_target[:, year] * scale, interest_due)
            repay = np.clip(pay - interest_due, 0.0, outstanding)
        elif config.debt_profile == "equal_principal":
            repay = np.where(
                amortising[:, year],
                np.minimum(debt / np.where(n_amort > 0, n_amort, 1), outstanding),
                0.0,
            )
        else:
            repay = np.where(
                amortising[:, year], np.clip(annuity - interest_due, 0.0, outstanding), 0.0
            )
        last = active & (k[:, year] == tenor[:, 0] - 1)
        repay = np.where(last, outstanding, repay)  # the last instalment clears the loan
        interest[:, year] = np.where(active, due, 0.0)
        principal[:, year] = np.where(active, repay, 0.0)
        service[:, year] = interest[:, year] + principal[:, year]
        outstanding = outstanding - principal[:, year]
    sizing: dict = {}
    if opening is not None:
        sizing = {
            "per_year": {
                "in_loan": in_loan.astype(float),
                "amortising": amortising.astype(float),
                "sculpt_target": service_target,
                "opening": opening,
                "closing": opening - principal,
            },
            "per_project": {
                "debt": debt,
                "sized": sized,
                "capped": capped.astype(float),
                "scale": scale,
                "annuity": annuity,
            },
        }
    return debt, service, interest, principal, capped, sizing


def _breakeven(
    x: _Arrays,
    generation: np.ndarray,
    opex: np.ndarray,
    capex: np.ndarray,
    depreciation: np.ndarray,
    operating: np.ndarray,
    disc: np.ndarray,
    other: np.ndarray,
) -> np.ndarray:
    """Tariff [currency/MWh] at which the post-tax project NPV is zero (vectorised bisection)."""
    has_energy = np.sum(generation, axis=1) > 0
    # NPV is piecewise linear and increasing in the tariff (the tax floor makes the kinks), so
    # Newton from zero lands on the root in a few steps, one linear piece at a time. Each row
    # stops when its own step is below tolerance: its result never depends on the other rows
    # of the slice (slice size and threads do not change a figure).
    tariff = np.zeros(x.capex.size)
    active = np.arange(x.capex.size)
    for _ in range(50):
        if active.size == 0:
            break
        gen, rate, disc_a, op = (
            generation[active],
            x.tax[active, None],
            disc[active],
            operating[active],
        )
        revenue = gen * tariff[active, None] + other[active]
        ebitda = np.where(op, revenue - opex[active], 0.0)
        taxed = (ebitda - depreciation[active] > 0) & op
        value = np.sum(
            (-capex[active] + ebitda - np.where(taxed, (ebitda - depreciation[active]) * rate, 0.0))
            * disc_a,
            axis=1,
        )
        slope = np.sum(gen * np.where(taxed, 1 - rate, 1.0) * disc_a, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(slope > 0, value / slope, 0.0)
        tariff[active] = tariff[active] - step
        active = active[np.abs(step) > 1e-9 * np.maximum(np.abs(tariff[active]), 1.0)]
    return np.where(has_energy, tariff, np.nan)


def _payback(cash_flows: np.ndarray) -> np.ndarray:
    """Years until the cumulative cash flow turns non-negative (interpolated within the year)."""
    cumulative = np.cumsum(cash_flows, axis=1)
    reached = cumulative >= 0
    ever = reached.any(axis=1) & (cumulative[:, 0] < 0)
    first = np.argmax(reached, axis=1)
    rows = np.arange(cash_flows.shape[0])
    before = cumulative[rows, np.maximum(first - 1, 0)]
    flow = cash_flows[rows, first]
    fraction = np.where(flow > 0, -before / np.where(flow > 0, flow, 1), 0.0)
    return np.where(ever & (first > 0), first - 1 + fraction, np.nan)


def _cash_flow_table(project_ids: pl.Series, base: dict) -> pl.DataFrame:
    cash = base["cash"]
    p, periods = cash["cfads"].shape
    keep = (base["building"] | base["operating"]) & base["valid"][:, None]
    ids = np.repeat(project_ids.to_numpy(), periods).reshape(p, periods)
    year = np.tile(np.arange(periods), (p, 1))
    phase = np.where(base["building"], "construction", "operation")
    data = {"project_id": ids[keep], "year": year[keep], "phase": phase[keep]}
    data.update({name: values[keep] for name, values in cash.items()})
    return pl.DataFrame(data)
