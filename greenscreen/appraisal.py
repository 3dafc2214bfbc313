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

import itertools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, NamedTuple, TypeVar

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
    r = np.asarray(rate, dtype=float).reshape(-1)
    return np.nansum(cf / _powers(1 + r, t[None, :]), axis=1)


def _powers(base: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """``base[:, None] ** exponent`` (P × T; ``exponent``: years, P × T or 1 × T), bit for
    bit, from each distinct base's powers: projects share few rates (a 50,000-project slice of
    the 1M benchmark has 1 discount rate and 351 interest rates), and a pow costs ~20-25 ns
    where looking one up costs ~3 ns. Bases are told apart by their bits (0.0 and −0.0,
    NaNs); the same pow of the same numbers gives the same result. (numpy replaces pow by
    1 / x, x × x or sqrt when one exponent serves a whole loop: a table has 2 years or more.)"""
    base = np.ascontiguousarray(base, dtype=float)
    bits, inverse = np.unique(base.view(np.int64), return_inverse=True)
    if bits.size > base.size // 4:  # few repeats: the table would cost as much as the pows
        return base[:, None] ** exponent
    values = bits.view(float)[:, None]
    if exponent.shape[0] == 1:  # the same years for every project: one row per base
        return (values**exponent)[inverse]
    low = exponent.min(initial=0)
    column = (exponent - low).astype(np.intp)
    if not np.array_equal(column, exponent - low):  # fractional years (construction 2.5)
        return base[:, None] ** exponent
    table = values ** (low + np.arange(max(column.max(initial=0) + 1, 2)))
    return table[inverse[:, None], column]


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
    rate, why = _irr(cash_flows, tol, max_iter)
    return rate, np.array(_IRR_WHY, dtype=object)[why]


#: irr's reasons, by the number _irr gives them
_IRR_WHY = ("", "no sign change", "no root found in (-99 %, 1000 %)")


def _irr(
    cash_flows: np.ndarray, tol: float = 1e-10, max_iter: int = 60
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`irr`, its reasons as numbers (``_IRR_WHY``)."""
    cf = np.atleast_2d(np.nan_to_num(np.asarray(cash_flows, dtype=float)))
    p, n = cf.shape
    # rows in order of span (_discount): each row's IRR depends on its own flows only
    span = _span(cf)
    order = np.argsort(span, kind="stable")
    cf, span = cf[order], span[order]
    t = np.arange(n)
    changes = _sign_changes(cf)
    some = np.flatnonzero(changes > 0)
    rate = _newton(cf, span, some, tol, max_iter)
    # Newton's rate is kept where the NPV there is ~0, else bisection finds it
    final = np.sum(cf[some] * _discount(1 + rate[some], span[some], n), axis=1)
    scale = np.maximum(np.abs(cf[some]).sum(axis=1), 1e-300)
    bad = some[np.abs(final) / scale > 1e-9]
    if bad.size:
        rate[bad] = _bisect(cf[bad], span[bad])
    result = np.where(changes > 0, np.where(np.abs(rate) < tol, 0.0, rate), np.nan)
    reason = np.where(changes == 0, 1, 0)
    several = np.flatnonzero(changes > 1)
    # Norström: a cumulative cash flow that changes sign once has one IRR, Newton's is it
    several = several[_sign_changes(np.cumsum(cf[several], axis=1)) != 1]
    if several.size:
        lo, hi, roots = _bracket_nearest_zero(cf[several], t)
        several, lo, hi = several[roots > 1], lo[roots > 1], hi[roots > 1]
        if several.size:
            result[several] = _bisect(cf[several], span[several], lo, hi)
    unresolved = (changes > 0) & ~np.isfinite(result)
    reason[unresolved] = 2
    in_order, reason_in_order = np.empty(p), np.empty(p, dtype=reason.dtype)
    in_order[order], reason_in_order[order] = result, reason
    return in_order, reason_in_order


def _span(cf: np.ndarray) -> np.ndarray:
    """Per row: the years up to and with the last nonzero flow (0 for none); every year past
    the 154th in a longer grid, where a factor (1 − 99 %)^−t overflows and zero × inf is NaN."""
    p, n = cf.shape
    if n > 154:
        return np.full(p, n)
    nonzero = cf != 0
    return np.where(nonzero.any(axis=1), n - np.argmax(nonzero[:, ::-1], axis=1), 0)


def _discount(growth: np.ndarray, span: np.ndarray, periods: int) -> np.ndarray:
    """Discount factors ``growth[:, None] ** -t`` (P × T) over each row's ``span`` (rows in
    ascending span), 1 after it. A factor is a pow (~25 ns, most of an IRR's cost) and after
    the span it only multiplies zero flows: on the 1M benchmark (spans 11-30 years in grids of
    30) a third of the pows are spared. Rows of one span take one call; t = 0 stays 1, the
    pow of anything to 0."""
    t = np.arange(periods)
    disc = np.ones((growth.size, periods))
    if span.size == 0:
        return disc
    bounds = [0, *(np.flatnonzero(span[1:] != span[:-1]) + 1).tolist(), span.size]
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        width = span[start]
        if width == 2:  # one exponent for the whole loop: numpy would take 1 / g, not pow
            disc[start:end, 1] = np.power(growth[start:end], np.full(end - start, -1.0))
        elif width > 2:
            np.power(growth[start:end, None], -t[1:width], out=disc[start:end, 1:width])
    return disc


def _newton(
    cf: np.ndarray, span: np.ndarray, active: np.ndarray, tol: float, max_iter: int
) -> np.ndarray:
    """Newton's method from 10 % on the rows ``active`` (the others stay at 10 %), each row
    until its step is below ``tol`` or for ``max_iter`` steps. A row is a function of its own
    cash flows only: stepping rows in any grouping gives the same rates bit for bit."""
    p, n = cf.shape
    t = np.arange(n)
    rate = np.full(p, 0.1)
    sub, sub_span = cf[active], span[active]  # the rows still moving
    for step_number in range(max_iter):
        if active.size == 0:
            break
        growth = 1 + rate[active]
        # every row starts at 10 %: one row of discount factors serves them all
        if step_number == 0:
            disc = growth[:1, None] ** -t
        else:
            disc = _discount(growth, sub_span, n)
        value = np.sum(sub * disc, axis=1)
        slope = np.sum(-t * sub * disc / growth[:, None], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(slope != 0, value / slope, 0.0)
        before = rate[active]
        after = np.clip(before - step, -0.99, 10.0)
        rate[active] = after
        # a rate that did not move (held at a bound of the clip, or a step below its last
        # bit) never moves again: the row is done. Dropping it changes no figure and spares
        # up to 60 steps (2/3 of the equity IRRs that took all 60 on the 1M benchmark)
        moving = (np.abs(step) >= tol) & (after != before)
        if not moving.all():
            active, sub, sub_span = active[moving], sub[moving], sub_span[moving]
    return rate


def _sign_changes(values: np.ndarray) -> np.ndarray:
    """Sign changes along each row, zeros skipped: year by year against the last nonzero
    sign (5× faster than filling the zeros with the sign before them, as P × T arrays)."""
    changes = np.zeros(values.shape[0], dtype=np.int64)
    last = np.zeros(values.shape[0])
    for column in values.T:
        sign = np.sign(column)
        changes += sign * last < 0
        last = np.where(sign != 0, sign, last)
    return changes


# rates at which the NPV is sampled to find every IRR: dense near zero, across (−99 %, 1000 %)
_IRR_GRID = np.unique(np.concatenate([np.linspace(-0.99, 1.0, 400), np.geomspace(1.0, 10.0, 60)]))


def _bracket_nearest_zero(cf: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per row: the grid interval holding the IRR closest to zero (lo, hi) and how many sign
    changes the NPV has over the grid. The NPV's sign at every grid rate first (rows in blocks
    of 64, so memory stays ~7 MB), then each sign change against the last nonzero sign before
    it; the nearest is the first whose midpoint is smallest in magnitude."""
    rows, grid = cf.shape[0], _IRR_GRID.size
    factors = (1 + _IRR_GRID[:, None]) ** -t  # grid × T
    sign = np.empty((rows, grid))
    for start in range(0, rows, 64):
        block = cf[start : start + 64, None, :] * factors
        sign[start : start + 64] = np.sign(np.sum(block, axis=2))
    # the last grid rate before each one where the NPV's sign was not zero (−1: none)
    last = np.where(sign != 0, np.arange(grid), -1)
    np.maximum.accumulate(last, axis=1, out=last)
    before = np.concatenate([np.full((rows, 1), -1), last[:, :-1]], axis=1)
    seen = before >= 0
    last_sign = np.where(seen, np.take_along_axis(sign, np.maximum(before, 0), axis=1), 0.0)
    last_rate = np.where(seen, _IRR_GRID[np.maximum(before, 0)], np.nan)
    crossed = (sign * last_sign) < 0
    middle = np.where(crossed, np.abs(_IRR_GRID + last_rate) / 2, np.inf)
    nearest = np.argmin(middle, axis=1)[:, None]
    changes = crossed.sum(axis=1)
    lo = np.where(changes > 0, np.take_along_axis(last_rate, nearest, axis=1)[:, 0], np.nan)
    hi = np.where(changes > 0, _IRR_GRID[nearest[:, 0]], np.nan)
    return lo, hi, changes


def _bisect(
    cf: np.ndarray, span: np.ndarray, lo: np.ndarray | None = None, hi: np.ndarray | None = None
) -> np.ndarray:
    """The IRR between ``lo`` and ``hi`` (default: the whole bracket) by bisection (rows in
    ascending ``span``, :func:`_discount`)."""
    n = cf.shape[1]
    lo = np.full(cf.shape[0], -0.99) if lo is None else lo.copy()
    hi = np.full(cf.shape[0], 10.0) if hi is None else hi.copy()
    f_lo = np.sum(cf * _discount(1 + lo, span, n), axis=1)
    f_hi = np.sum(cf * _discount(1 + hi, span, n), axis=1)
    ok = np.sign(f_lo) != np.sign(f_hi)
    active = np.flatnonzero(ok)  # the others are NaN whatever the bisection does
    for _ in range(200):
        if active.size == 0:
            break
        a, b, f_a = lo[active], hi[active], f_lo[active]
        mid = (a + b) / 2
        f_mid = np.sum(cf[active] * _discount(1 + mid, span[active], n), axis=1)
        left = np.sign(f_mid) == np.sign(f_a)
        lo[active] = np.where(left, mid, a)
        f_lo[active] = np.where(left, f_mid, f_a)
        hi[active] = np.where(left, b, mid)
        # a bracket that did not change (its midpoint is one of its ends) never changes again:
        # done after ~60 of the 200 steps, the same figure
        moved = (lo[active] != a) | (hi[active] != b) | (f_lo[active] != f_a)
        active = active[moved]
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
        Projects whose year grid is sized together: a slice's arrays are as wide as its
        longest construction + operation, and the figures depend on that width in their last
        bits (numpy sums a row in blocks of 8 years), so the default keeps every figure bit
        for bit what it has been. Slices are modelled in pieces of at most ``_PIECE``
        projects.
    workers
        Threads that model pieces side by side (default: one per CPU); numpy releases the GIL
        in its array operations.

    Returns
    -------
    Appraisal
        ``metrics`` one row per project, in input order: every figure NaN and ``irr_reason``
        naming the missing inputs for a project without total_investment, operating_years and
        tariff × generation or annual_revenue.
    """
    config = config or AppraisalConfig()
    x = _inputs(projects, config)
    # only the projects with financial inputs are modelled: the others' figures are all NaN
    rows = np.flatnonzero(_valid(x))
    schedule = _payments(subsidy_schedule)
    # project_id is the only column the model reads (the schedule's key): taking every column
    # of the modelled rows copied 1.1 GiB of the 1M benchmark's results
    ids = projects.select("project_id")

    def base(piece: _Piece) -> dict[str, Any]:
        sub = _take(x, piece.rows)
        subsidies = _subsidy_matrix(ids[piece.rows], schedule, sub, piece.periods)
        return _narrow_metrics(sub, config, subsidies, config.carbon_price)

    # a slice's projects by the width of their narrow grid, so that a piece is mostly one
    pieces = _pieces(rows, x, chunk_size, by_width=True)
    modelled = np.concatenate([rows[:0], *(piece.rows for piece in pieces)])
    metrics = _scatter(_parallel(base, pieces, workers), modelled, projects.height)
    table = pl.DataFrame()
    if sensitivities:
        table = _sensitivity_table(ids, x, config, schedule, metrics, chunk_size, workers)
    metric_frame = pl.DataFrame({"project_id": projects["project_id"], **metrics})
    return Appraisal(metric_frame, table, projects, config, subsidy_schedule)


#: Projects modelled at once: a piece's arrays are _PIECE × years floats (2.4 MB at 30 years).
#: At 1M projects the CPU time is the same for 5,000 to 50,000 (within the noise of a shared
#: machine) and the peak over the screened results +0.44 GiB at 10,000, +0.59 GiB at 50,000.
_PIECE = 10_000


class _Piece(NamedTuple):
    slice: int  # the chunk_size slice the rows belong to
    rows: np.ndarray  # the projects' row numbers
    periods: int  # the slice's year grid: its longest construction + operation [years]


def _pieces(rows: np.ndarray, x: _Arrays, chunk_size: int, *, by_width: bool) -> list[_Piece]:
    """``rows`` by slices of ``chunk_size`` (each with its year grid), each slice in pieces of
    at most ``_PIECE`` projects: in order, or ``by_width`` of their narrow grids (without
    subsidies, :func:`_widths`) so that a piece's projects mostly share one."""
    pieces = []
    for number, start in enumerate(range(0, rows.size, chunk_size)):
        part = rows[start : start + chunk_size]
        sub = _take(x, part)
        periods = max(_periods(sub), 1)
        if by_width:
            part = part[np.argsort(_widths(sub, periods), kind="stable")]
        pieces += [
            _Piece(number, part[i : i + _PIECE], periods) for i in range(0, part.size, _PIECE)
        ]
    return pieces


def _widths(x: _Arrays, periods: int, subsidies: np.ndarray | None = None) -> np.ndarray:
    """Per project: the narrowest year grid on which its model gives the figures, bit for bit,
    that the slice's grid of ``periods`` years gives. Every line is zero after the project's
    last year (of construction, operation or a subsidy payment), and numpy sums a row of 8 to
    128 years in 8 interleaved partial sums (pairwise summation) and its remainder: zeros
    change no sum as long as the years up to the last fall in the same partial sums. So the
    grid is the years rounded up to a multiple of 8 (at least 8) where that is below the last
    multiple of 8 in ``periods``, else ``periods``. One long-lived project no longer widens
    every array of its slice (the 1M benchmark: 23.4 years on average instead of 30)."""
    if not 8 <= periods <= 128:  # fewer: summed one by one; more: split in halves
        return np.full(x.capex.size, periods)
    years = np.ceil(np.maximum(x.construction, x.construction + np.nan_to_num(x.life)))
    if subsidies is not None and subsidies.size:
        paid = subsidies != 0
        last_paid = np.where(paid.any(axis=1), periods - np.argmax(paid[:, ::-1], axis=1), 0)
        years = np.maximum(years, last_paid)
    width = np.maximum(np.ceil(np.minimum(years, periods) / 8) * 8, 8).astype(np.int64)
    return np.where(width <= periods - periods % 8, width, periods)


def _narrow_metrics(
    x: _Arrays,
    config: AppraisalConfig,
    subsidies: np.ndarray,
    carbon_price: float,
    *,
    full: bool = True,
) -> dict[str, Any]:
    """:func:`_model`'s metrics of projects of one slice (its year grid: ``subsidies``'
    width), each project modelled on its narrow grid (:func:`_widths`), in order."""
    widths = _widths(x, subsidies.shape[1], subsidies)
    groups = [(width, np.flatnonzero(widths == width)) for width in np.unique(widths)]
    parts = [
        _model(_take(x, rows), config, subsidies[rows, :width], carbon_price, full=full)["metrics"]
        for width, rows in groups
    ]
    if len(parts) == 1:
        return parts[0]
    order = np.argsort(np.concatenate([rows for _, rows in groups]))  # back to the rows' order
    merged: dict[str, Any] = {}
    for name, first in parts[0].items():
        values = [part[name] for part in parts]
        joined = pl.concat(values) if isinstance(first, pl.Series) else np.concatenate(values)
        merged[name] = joined[order]
    return merged


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


def _scatter(parts: list[dict[str, Any]], rows: np.ndarray, height: int) -> dict[str, Any]:
    """The modelled rows' metrics put back among all projects (NaN and the reason elsewhere)."""
    metrics: dict[str, Any] = {}
    for name in _METRICS:
        values = [part[name] for part in parts]
        if name == "irr_reason":  # a String column
            reason = pl.repeat(_INVALID, height, dtype=pl.String, eager=True)
            if parts:
                reason = reason.scatter(rows, pl.concat(values))
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
    ids: pl.DataFrame,
    x: _Arrays,
    config: AppraisalConfig,
    schedule: pl.DataFrame | None,
    metrics: dict[str, np.ndarray],
    chunk_size: int,
    workers: int | None,
) -> pl.DataFrame:
    """The tornado table: each project varied on the drivers its inputs have — tariff and
    generation when revenue is tariff × generation, revenue when it is given as annual
    revenue, opex when there is one — and priced at each carbon scenario. Rows by slice, then
    by run (``ids``: the projects' project_id)."""
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

    def varied(piece: _Piece) -> list[pl.DataFrame]:
        rows = piece.rows
        sub = _take(x, rows)
        chunk = ids[rows]
        subsidies = _subsidy_matrix(chunk, schedule, sub, piece.periods)
        frames = []
        for driver, direction, change, factor, price in runs:
            scaled = sub if driver.startswith("carbon_price:") else _scaled(sub, driver, factor)
            out = _narrow_metrics(scaled, config, subsidies, price, full=False)
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
        return frames

    pieces = _pieces(np.arange(ids.height), x, chunk_size, by_width=False)
    if not pieces:
        return pl.DataFrame()
    done = _parallel(varied, pieces, workers)
    ordered = []  # slice after slice, each run by run (a slice's pieces are consecutive)
    for number in range(pieces[-1].slice + 1):
        mine = [frames for piece, frames in zip(pieces, done, strict=True) if piece.slice == number]
        ordered += [frames[run] for run in range(len(runs)) for frames in mine]
    return pl.concat(ordered, how="vertical")


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
    projects: pl.DataFrame, schedule: pl.DataFrame | None, x: _Arrays, periods: int | None = None
) -> np.ndarray:
    """Subsidy payments as a P × T matrix on the model's year index (T: ``periods``, default
    the projects' longest construction + operation)."""
    periods = _periods(x) if periods is None else periods
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


class _Timeline(NamedTuple):
    """The year grid of P projects × T years; t = 0 is the first construction year."""

    t: np.ndarray  # 1 × T: year index t
    c: np.ndarray  # P × 1: construction years C (≥ 1)
    n: np.ndarray  # P × 1: operating years N (0 where missing)
    building: np.ndarray  # P × T: t < C
    operating: np.ndarray  # P × T: C ≤ t < C + N
    k: np.ndarray  # P × T: operating year t − C (0 outside operation)


def _timeline(x: _Arrays, periods: int) -> _Timeline:
    """Lines ``year``, ``building``, ``operating`` and ``op_year`` [year index, flags]."""
    t = np.arange(periods)[None, :]
    c = x.construction[:, None]
    n = np.nan_to_num(x.life)[:, None]
    operating = (t >= c) & (t < c + n)
    return _Timeline(t, c, n, t < c, operating, np.where(operating, t - c, 0))


class _Construction(NamedTuple):
    capex: np.ndarray  # P × T: capex drawn [currency]
    share: np.ndarray  # P: debt share of capex [fraction]
    idc: np.ndarray  # P: interest during construction, capitalised [currency]
    total_cost: np.ndarray  # P: capex + IDC [currency]
    balance: np.ndarray  # P: debt balance at COD [currency]
    idc_year: np.ndarray | None  # P × T, with detail: IDC per year [currency]
    balance_year: np.ndarray | None  # P × T, with detail: balance at each year end [currency]


def _construction(x: _Arrays, tl: _Timeline, *, detail: bool) -> _Construction:
    """Lines ``capex``, ``draw``, ``idc`` and ``con_balance`` [currency]: capex drawn evenly
    over the C construction years, debt drawn pro rata (loan / capex, at most 1), interest
    during construction (IDC) capitalised into the debt. The per-year IDC and balance are
    kept only with ``detail`` (the pack's cached values)."""
    p, periods = x.capex.size, tl.k.shape[1]
    capex_draw = np.where(tl.building, np.nan_to_num(x.capex)[:, None] / tl.c, 0.0)
    share = np.where(
        x.capex > 0, np.minimum(np.nan_to_num(x.loan) / np.where(x.capex > 0, x.capex, 1), 1.0), 0.0
    )
    rate = np.nan_to_num(x.rate)
    balance = np.zeros(p)
    idc = np.zeros(p)
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
    return _Construction(capex_draw, share, idc, total_cost, balance, idc_year, balance_year)


class _Revenue(NamedTuple):
    generation: np.ndarray  # P × T [MWh]
    energy_revenue: np.ndarray  # P × T, 0 outside operation [currency]
    carbon_revenue: np.ndarray  # P × T, 0 outside operation [currency]
    subsidies: np.ndarray  # P × T [currency]
    revenue: np.ndarray  # P × T [currency]


def _revenue(x: _Arrays, tl: _Timeline, subsidies: np.ndarray, carbon_price: float) -> _Revenue:
    """Lines ``generation`` [MWh/year], ``energy_revenue`` (generation × tariff, else the
    annual revenue), ``carbon_revenue`` (attributable tCO2e degraded like generation × carbon
    price [currency/tCO2e]), ``subsidies`` (the schedule's payments, construction years too)
    and ``revenue``, their sum [currency/year]."""
    degraded = _powers(1 - x.degradation, tl.k)
    generation = np.where(tl.operating, x.generation[:, None] * degraded, 0.0)
    by_tariff = ~np.isnan(x.generation) & ~np.isnan(x.tariff)
    energy = np.where(
        by_tariff[:, None],
        generation * np.nan_to_num(x.tariff)[:, None],
        np.nan_to_num(x.revenue)[:, None],
    )
    energy = np.where(tl.operating, energy, 0.0)
    carbon = np.where(tl.operating, x.carbon_t[:, None] * degraded * carbon_price, 0.0)
    revenue = np.where(tl.operating, energy + carbon, 0.0) + subsidies
    return _Revenue(generation, energy, carbon, subsidies, revenue)


def _opex(x: _Arrays, tl: _Timeline) -> np.ndarray:
    """Line ``opex`` [currency/year]: the annual opex escalated at ``opex_escalation`` a year
    of operation."""
    return np.where(tl.operating, x.opex[:, None] * _powers(1 + x.escalation, tl.k), 0.0)


class _Earnings(NamedTuple):
    ebitda: np.ndarray  # P × T [currency]
    depreciation: np.ndarray  # P × T [currency]
    ebit: np.ndarray  # P × T [currency]
    tax: np.ndarray  # P × T [currency]
    cfads: np.ndarray  # P × T [currency]


def _earnings(
    x: _Arrays, tl: _Timeline, revenue: np.ndarray, opex: np.ndarray, total_cost: np.ndarray
) -> _Earnings:
    """Lines ``ebitda`` (revenue − opex), ``depreciation`` (capex + IDC straight over the N
    operating years), ``ebit``, ``tax`` (on positive EBIT at the tax rate) and ``cfads``
    (EBITDA − tax in operation) [currency/year]."""
    ebitda = revenue - opex
    life = np.where(tl.n > 0, tl.n, np.nan)
    depreciation = np.where(tl.operating, total_cost[:, None] / life, 0.0)
    ebit = ebitda - depreciation
    tax = np.maximum(ebit, 0.0) * x.tax[:, None] * tl.operating
    cfads = np.where(tl.operating, ebitda - tax, 0.0)
    return _Earnings(ebitda, depreciation, ebit, tax, cfads)


class _Sizing(NamedTuple):
    in_loan: np.ndarray  # P × T: loan years (operating, k < tenor)
    amortising: np.ndarray  # P × T: loan years after the grace years
    sculpt_target: np.ndarray  # P × T: CFADS / target DSCR in amortising years [currency]
    sized: np.ndarray  # P: debt before the cap [currency]
    debt: np.ndarray  # P: debt at COD, at most capex + IDC [currency]
    capped: np.ndarray  # P: whether the cap applied
    scale: np.ndarray  # P: debt / sized where capped, else 1 [ratio]
    n_amort: np.ndarray  # P: amortising years [years]
    annuity: np.ndarray  # P: the annuity payment [currency/year]


def _debt_sizing(
    x: _Arrays,
    config: AppraisalConfig,
    cfads: np.ndarray,
    balance_at_cod: np.ndarray,
    total_cost: np.ndarray,
    tl: _Timeline,
) -> _Sizing:
    """Lines ``in_loan``, ``amortising``, ``sculpt_target`` and the debt at COD: the
    construction balance, or (``sculpted``) the PV at the loan rate of CFADS / target DSCR,
    capped at capex + IDC [currency]; with the annuity and the sculpting scale of the cap."""
    rate = np.nan_to_num(x.rate)
    grace = np.minimum(x.grace, x.tenor)[:, None]
    in_loan = tl.operating & (tl.k < x.tenor[:, None])
    amortising = in_loan & (tl.k >= grace)
    service_target = np.where(amortising, np.maximum(cfads, 0.0) / config.target_dscr, 0.0)
    if config.debt_profile == "sculpted":
        sized = np.sum(service_target / _powers(1 + rate, tl.k + 1), axis=1)
    else:
        sized = balance_at_cod
    capped = sized > total_cost + 1e-6
    debt = np.minimum(sized, total_cost)
    n_amort = np.maximum(x.tenor - np.minimum(x.grace, x.tenor), 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        annuity = np.where(
            rate > 0,
            debt * rate / (1 - (1 + rate) ** -n_amort),
            debt / np.where(n_amort > 0, n_amort, 1),
        )
    annuity = np.where(n_amort > 0, annuity, 0.0)
    scale = np.where(capped & (sized > 0), debt / np.where(sized > 0, sized, 1), 1.0)
    return _Sizing(
        in_loan, amortising, service_target, sized, debt, capped, scale, n_amort, annuity
    )


class _Debt(NamedTuple):
    size: _Sizing
    opening: np.ndarray | None  # P × T, with detail: balance at the start of each year
    interest: np.ndarray  # P × T [currency]
    principal: np.ndarray  # P × T [currency]
    service: np.ndarray  # P × T: interest + principal [currency]

    @property
    def debt(self) -> np.ndarray:
        return self.size.debt

    @property
    def capped(self) -> np.ndarray:
        return self.size.capped


def _debt(
    x: _Arrays,
    config: AppraisalConfig,
    cfads: np.ndarray,
    balance_at_cod: np.ndarray,
    total_cost: np.ndarray,
    tl: _Timeline,
    *,
    detail: bool = False,
) -> _Debt:
    """Lines ``opening`` (kept only with ``detail``), ``interest``, ``principal`` and
    ``debt_service`` [currency/year] of the debt sized by :func:`_debt_sizing`, repaid by
    ``config.debt_profile`` (``closing`` is opening − principal): after the grace years an
    annuity, equal principal, or the sculpting target × scale; the last instalment clears
    the loan."""
    size = _debt_sizing(x, config, cfads, balance_at_cod, total_cost, tl)
    rate = np.nan_to_num(x.rate)
    p, periods = cfads.shape
    service = np.zeros((p, periods))
    interest = np.zeros((p, periods))
    principal = np.zeros((p, periods))
    outstanding = size.debt.copy()
    opening = np.zeros((p, periods)) if detail else None
    # a balance within float noise of zero is repaid: the last instalment must not "clear"
    # 4e-11 and show a DSCR of -7e14 in a year of negative CFADS (hypothesis found it)
    noise = 1e-9 * np.maximum(size.debt, 1.0)
    for year in range(periods):  # the year axis (≤ ~100), vectorised over all projects
        outstanding = np.where(np.abs(outstanding) <= noise, 0.0, outstanding)
        if opening is not None:  # the balance is the debt from COD on, nothing before
            opening[:, year] = np.where(year >= tl.c[:, 0], outstanding, 0.0)
        due = interest_due = outstanding * rate
        active = size.in_loan[:, year]
        repay = _repayment(config.debt_profile, size, year, outstanding, interest_due)
        last = active & (tl.k[:, year] == x.tenor - 1)
        repay = np.where(last, outstanding, repay)  # the last instalment clears the loan
        interest[:, year] = np.where(active, due, 0.0)
        principal[:, year] = np.where(active, repay, 0.0)
        service[:, year] = interest[:, year] + principal[:, year]
        outstanding = outstanding - principal[:, year]
    return _Debt(size, opening, interest, principal, service)


def _repayment(
    profile: DebtProfile,
    size: _Sizing,
    year: int,
    outstanding: np.ndarray,
    interest_due: np.ndarray,
) -> np.ndarray:
    """Principal due in ``year`` by the debt profile [currency] (before the last instalment
    clears the loan): the annuity less interest, equal principal, or the sculpting target ×
    scale less interest; in the grace years nothing (sculpted: interest only)."""
    amortising = size.amortising[:, year]
    if profile == "sculpted":
        pay = np.where(amortising, size.sculpt_target[:, year] * size.scale, interest_due)
        return np.clip(pay - interest_due, 0.0, outstanding)
    if profile == "equal_principal":
        return np.where(
            amortising,
            np.minimum(size.debt / np.where(size.n_amort > 0, size.n_amort, 1), outstanding),
            0.0,
        )
    return np.where(amortising, np.clip(size.annuity - interest_due, 0.0, outstanding), 0.0)


class _Cover(NamedTuple):
    dscr: np.ndarray  # P × T, NaN without debt service [ratio]
    min_dscr: np.ndarray  # P [ratio]
    avg_dscr: np.ndarray  # P [ratio]
    llcr: np.ndarray  # P [ratio]


def _cover(x: _Arrays, tl: _Timeline, cfads: np.ndarray, debt: _Debt) -> _Cover:
    """Line ``dscr`` (CFADS / debt service, NaN in a year without service) and the cover
    ratios ``min_dscr``, ``avg_dscr`` and ``llcr`` (PV at the loan rate of CFADS over the
    loan life / debt at COD) [ratio]."""
    service = debt.service
    dscr = np.where(service > 0, cfads / np.where(service > 0, service, 1), np.nan)
    has_service = ~np.isnan(dscr)
    count = has_service.sum(axis=1)
    min_dscr = np.where(count > 0, np.min(np.where(has_service, dscr, np.inf), axis=1), np.nan)
    avg_dscr = np.where(
        count > 0, np.where(has_service, dscr, 0.0).sum(axis=1) / np.maximum(count, 1), np.nan
    )
    rate = np.nan_to_num(x.rate)
    loan_years = tl.operating & (tl.k < x.tenor[:, None])
    pv_cfads = np.sum(np.where(loan_years, cfads / _powers(1 + rate, tl.k + 1), 0.0), axis=1)
    llcr = np.where(debt.debt > 0, pv_cfads / np.where(debt.debt > 0, debt.debt, 1), np.nan)
    return _Cover(dscr, min_dscr, avg_dscr, llcr)


class _CashFlows(NamedTuple):
    project_cf_pre: np.ndarray  # P × T [currency]
    project_cf: np.ndarray  # P × T [currency]
    shield: np.ndarray  # P × T [currency]
    equity_cf: np.ndarray  # P × T [currency]


def _cash_flows(
    x: _Arrays, tl: _Timeline, build: _Construction, earnings: _Earnings, debt: _Debt
) -> _CashFlows:
    """Lines ``project_cf_pre`` (−capex + EBITDA), ``project_cf`` (less tax), ``shield`` (the
    interest tax shield, on positive EBIT) and ``equity_cf`` (−equity draws, CFADS − debt
    service + shield in operation) [currency/year]. EBITDA outside operation is only subsidy
    paid during construction: it counts too."""
    project_pre = -build.capex + earnings.ebitda
    project_post = project_pre - earnings.tax
    shield = (
        np.minimum(debt.interest, np.maximum(earnings.ebit, 0.0)) * x.tax[:, None] * tl.operating
    )
    equity_draw = build.capex * (1 - build.share[:, None])
    equity_cf = -equity_draw + np.where(
        tl.operating, earnings.cfads - debt.service + shield, earnings.ebitda
    )
    return _CashFlows(project_pre, project_post, shield, equity_cf)


class _Lines(NamedTuple):
    """The model's blocks of lines, in the order they are computed (and the pack lays out)."""

    timeline: _Timeline
    construction: _Construction
    revenue: _Revenue
    opex: np.ndarray  # P × T [currency]
    earnings: _Earnings
    debt: _Debt
    cover: _Cover
    cash_flows: _CashFlows


def _lines(
    x: _Arrays,
    config: AppraisalConfig,
    subsidies: np.ndarray,
    carbon_price: float,
    periods: int,
    *,
    detail: bool,
) -> _Lines:
    """Every line of the model over ``periods`` years, block by block (``subsidies``: the
    P × T payments [currency])."""
    tl = _timeline(x, periods)
    build = _construction(x, tl, detail=detail)
    revenue = _revenue(x, tl, subsidies, carbon_price)
    opex = _opex(x, tl)
    earnings = _earnings(x, tl, revenue.revenue, opex, build.total_cost)
    debt = _debt(x, config, earnings.cfads, build.balance, build.total_cost, tl, detail=detail)
    cover = _cover(x, tl, earnings.cfads, debt)
    flows = _cash_flows(x, tl, build, earnings, debt)
    return _Lines(tl, build, revenue, opex, earnings, debt, cover, flows)


def _model(
    x: _Arrays,
    config: AppraisalConfig,
    subsidies: np.ndarray,
    carbon_price: float,
    *,
    full: bool = True,
    detail: bool = False,
) -> dict:
    """The cash-flow model (:func:`_lines`) and its metrics (:func:`_metrics`). ``full=False``
    (sensitivity runs) computes NPV, post-tax project IRR and DSCRs only; ``detail=True`` adds
    every working line of the Excel pack's CashFlow sheet (``detail``, per year, and
    ``sizing``, per project) for its cached values (:func:`_workings`)."""
    periods = max(subsidies.shape[1], _periods(x), 1)
    m = _lines(x, config, subsidies[:, :periods], carbon_price, periods, detail=detail)
    value = npv(x.discount, m.cash_flows.project_cf)
    if not full:
        post = _irr(m.cash_flows.project_cf)[0]
        return {"metrics": {"npv": value, "project_irr": post, "min_dscr": m.cover.min_dscr}}
    disc = _powers(1 + x.discount, -m.timeline.t)
    valid = _valid(x)
    cash = {
        "revenue": m.revenue.revenue,
        "opex": m.opex,
        "ebitda": m.earnings.ebitda,
        "tax": m.earnings.tax,
        "cfads": m.earnings.cfads,
        "debt_service": m.debt.service,
        "interest": m.debt.interest,
        "principal": m.debt.principal,
        "dscr": m.cover.dscr,
        "capex": m.construction.capex,
        "project_cf": m.cash_flows.project_cf,
        "equity_cf": m.cash_flows.equity_cf,
        "generation_mwh": m.revenue.generation,
        "subsidies": m.revenue.subsidies,
    }
    out = {
        "metrics": _metrics(x, m, valid, disc, value),
        "cash": cash,
        "operating": m.timeline.operating,
        "building": m.timeline.building,
        "valid": valid,
    }
    if detail:
        out["detail"], out["sizing"] = _workings(x, m, disc)
    return out


def _metrics(
    x: _Arrays,
    m: _Lines,
    valid: np.ndarray,
    disc: np.ndarray,
    value: np.ndarray,
) -> dict[str, Any]:
    """The metrics, NaN (and the reason) where a project cannot be valued: debt and IDC
    [currency], cover ratios [ratio], IRRs [fraction], NPV (``value``) [currency], payback
    [years], LCOE and break-even tariff [currency/MWh]; ``disc``: the discount factors (line
    ``discount``)."""
    build, revenue, flows = m.construction, m.revenue, m.cash_flows
    irr_pre, why_pre = _irr(flows.project_cf_pre)
    irr_post, why_post = _irr_unless_same(flows.project_cf, flows.project_cf_pre, irr_pre, why_pre)
    # without debt the equity's flows are the project's
    irr_equity, why_equity = _irr_unless_same(flows.equity_cf, flows.project_cf, irr_post, why_post)
    pv_energy = np.sum(revenue.generation * disc, axis=1)
    pv_cost = np.sum((build.capex + m.opex) * disc, axis=1)
    lcoe = np.where(pv_energy > 0, pv_cost / np.where(pv_energy > 0, pv_energy, 1), np.nan)
    breakeven = _breakeven(
        x,
        revenue.generation,
        m.opex,
        build.capex,
        m.earnings.depreciation,
        m.timeline.operating,
        disc,
        revenue.subsidies + revenue.carbon_revenue,
    )
    payback = _payback(flows.project_cf)

    def masked(values: np.ndarray) -> np.ndarray:
        return np.where(valid, values, np.nan)

    return {
        "debt_amount": masked(m.debt.debt),
        "debt_capped": np.where(valid, m.debt.capped, False),
        "idc": masked(build.idc),
        "min_dscr": masked(m.cover.min_dscr),
        "avg_dscr": masked(m.cover.avg_dscr),
        "llcr": masked(m.cover.llcr),
        "project_irr_pretax": masked(irr_pre),
        "project_irr": masked(irr_post),
        "equity_irr": masked(irr_equity),
        "irr_reason": _join_reasons(valid, why_pre, why_post, why_equity),
        "npv": masked(value),
        "payback_years": masked(payback),
        "lcoe": masked(lcoe),
        "breakeven_tariff": masked(breakeven),
    }


def _irr_unless_same(
    cash_flows: np.ndarray, known_flows: np.ndarray, known: np.ndarray, known_reason: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_irr` of ``cash_flows``, taken from ``known`` (the IRR and reason of
    ``known_flows``) on the rows whose flows are the same bit for bit: an IRR depends on its
    row only. A project that never pays tax has the same flows before and after tax: a third
    of the 1M benchmark's, with nearly all its slowest IRRs (around −90 %)."""
    differs = np.any(_bits(cash_flows) != _bits(known_flows), axis=1)
    rate, reason = known.copy(), known_reason.copy()
    if differs.any():
        rate[differs], reason[differs] = _irr(cash_flows[differs])
    return rate, reason


def _bits(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=float).view(np.int64)


def _workings(
    x: _Arrays, m: _Lines, disc: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The pack's CashFlow lines that are not in the model's ``cash`` table (per year) and the
    debt sizing (per project), from a model run with ``detail``."""
    tl, build, size = m.timeline, m.construction, m.debt.size
    if build.idc_year is None or build.balance_year is None or m.debt.opening is None:
        raise ValueError("the workings need the model run with detail=True")
    p, periods = tl.k.shape
    # after the longest construction the balance stays where it ended
    construction_end = np.arange(periods)[None, :] >= np.max(x.construction)
    per_year = {
        "year": np.broadcast_to(tl.t, (p, periods)).astype(float),
        "building": tl.building.astype(float),
        "operating": tl.operating.astype(float),
        "op_year": tl.k.astype(float),
        "draw": build.capex * build.share[:, None],
        "idc": build.idc_year,
        "con_balance": np.where(construction_end, build.balance[:, None], build.balance_year),
        "energy_revenue": m.revenue.energy_revenue,
        "carbon_revenue": m.revenue.carbon_revenue,
        "depreciation": m.earnings.depreciation,
        "ebit": m.earnings.ebit,
        "project_cf_pre": m.cash_flows.project_cf_pre,
        "shield": m.cash_flows.shield,
        "discount": disc,
        "in_loan": size.in_loan.astype(float),
        "amortising": size.amortising.astype(float),
        "sculpt_target": size.sculpt_target,
        "opening": m.debt.opening,
        "closing": m.debt.opening - m.debt.principal,
    }
    sizing = {
        "debt_share": build.share,
        "amort_years": size.n_amort.astype(float),
        "debt": size.debt,
        "sized": size.sized,
        "capped": size.capped.astype(float),
        "scale": size.scale,
        "annuity": size.annuity,
    }
    return per_year, sizing


def _join_reasons(valid: np.ndarray, *reasons: np.ndarray) -> pl.Series:
    """``irr_reason``: each IRR's reason (:func:`_irr`'s numbers) after its label, "; "
    between them, or why a project cannot be valued. Each combination's text is written once
    and looked up (joining text row by row cost ~0.2 s a 100,000 projects)."""
    code = np.zeros(valid.size, dtype=np.int64)
    for why in reasons:
        code = code * len(_IRR_WHY) + why
    return _REASON_TEXTS.gather(np.where(valid, code, len(_REASON_TEXTS) - 1))


_IRR_LABELS = ("pre-tax project IRR", "project IRR", "equity IRR")
#: irr_reason by _join_reasons' number: the reasons of the three IRRs, then the invalid one
_REASON_TEXTS = pl.Series(
    "irr_reason",
    [
        "; ".join(
            f"{label}: {_IRR_WHY[why]}" for label, why in zip(_IRR_LABELS, whys, strict=True) if why
        )
        for whys in itertools.product(range(len(_IRR_WHY)), repeat=3)
    ]
    + [_INVALID],
    dtype=pl.String,
)


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
    # the lines of the rows still moving, taken again only when some stop (mostly all rows
    # stop together, after ~3 steps)
    gen, op, opx, dep, cap, oth, dis = generation, operating, opex, depreciation, capex, other, disc
    rate = x.tax[:, None]
    for _ in range(50):
        if active.size == 0:
            break
        revenue = gen * tariff[active, None] + oth
        ebitda = np.where(op, revenue - opx, 0.0)
        ebit = ebitda - dep
        taxed = (ebit > 0) & op
        value = np.sum((-cap + ebitda - np.where(taxed, ebit * rate, 0.0)) * dis, axis=1)
        slope = np.sum(gen * np.where(taxed, 1 - rate, 1.0) * dis, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(slope > 0, value / slope, 0.0)
        tariff[active] = tariff[active] - step
        moving = np.abs(step) > 1e-9 * np.maximum(np.abs(tariff[active]), 1.0)
        if not moving.all():
            active = active[moving]
            gen, op, opx, dep, cap = gen[moving], op[moving], opx[moving], dep[moving], cap[moving]
            oth, dis, rate = oth[moving], dis[moving], rate[moving]
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
