"""Financial appraisal: published finance examples, hand-computed cases, properties.

Published references:
- numpy-financial documentation, ``irr`` and ``npv`` examples
  (https://numpy.org/numpy-financial/latest/irr.html, .../npv.html);
- Microsoft Excel documentation, IRR function example (−70,000; 12,000; 15,000; 18,000;
  21,000; 26,000) and NPV function examples 1 and 2
  (https://support.microsoft.com/office/irr-function and .../npv-function).
Excel shows these rounded (IRR to 0.1 %, NPV to the cent): tolerances match.
"""

from __future__ import annotations

import numpy as np
import numpy_financial as npf
import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from greenscreen.appraisal import AppraisalConfig, appraise, excel_npv, irr, npv


# --- published examples ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flows", "expected", "tol"),
    [
        ([-100, 39, 59, 55, 20], 0.28095, 5e-6),  # numpy-financial irr docs
        ([-100, 0, 0, 74], -0.0955, 5e-5),
        ([-100, 100, 0, -7], -0.0833, 5e-5),
        ([-100, 100, 0, 7], 0.06206, 5e-6),
        ([-5, 10.5, 1, -8, 1], 0.0886, 5e-5),
        ([-70000, 12000, 15000, 18000, 21000], -0.021, 5e-4),  # Excel IRR docs: -2.1 %
        ([-70000, 12000, 15000, 18000, 21000, 26000], 0.087, 5e-4),  # 8.7 %
        ([-70000, 12000, 15000], -0.444, 5e-4),  # -44.4 % (Excel needs a guess)
    ],
)
def test_irr_published_examples(flows: list[float], expected: float, tol: float) -> None:
    value, reason = irr(np.array([flows], dtype=float))
    assert value[0] == pytest.approx(expected, abs=tol)
    assert value[0] == pytest.approx(npf.irr(flows), abs=1e-9)
    assert reason[0] == ""  # each has one IRR in (-99 %, 1000 %), also [-5, 10.5, 1, -8, 1]


def test_an_irr_and_its_reason_never_come_together() -> None:
    """Issue 18 item 2: a value, or no value and the reason. -100, 230, -132 has two IRRs,
    10 % and 20 % (-132x² + 230x - 100 = 0 for x = 1/(1+r): x = 10/11 and 5/6): the one closest
    to zero is returned, as numpy-financial's default selection does, whatever Newton's start;
    flows with a zero IRR give 0, not floating-point noise."""
    value, reason = irr(np.array([[-100.0, 230.0, -132.0]]))
    assert value[0] == pytest.approx(0.10, abs=1e-9) and reason[0] == ""
    assert value[0] == pytest.approx(npf.irr([-100.0, 230.0, -132.0]), abs=1e-9)
    # two roots nearer 20 % than 10 %: -100, 250, -156 has 20 % and 30 %; 20 % is returned
    value, reason = irr(np.array([[-100.0, 250.0, -156.0]]))
    assert value[0] == pytest.approx(0.20, abs=1e-9) and reason[0] == ""
    value, reason = irr(np.array([[-100.0, 50.0, 50.0, 0.0]]))
    assert value[0] == 0.0 and not np.signbit(value[0]) and reason[0] == ""


def test_irr_is_explicit_when_undefined() -> None:
    value, reason = irr(np.array([[100.0, 50.0, 20.0], [0.0, 0.0, 0.0], [-100.0, -5.0, -1.0]]))
    assert np.isnan(value).all()
    assert list(reason) == ["no sign change"] * 3


def test_npv_conventions() -> None:
    # numpy-financial docs: npf.npv(0.281, [-100, 39, 59, 55, 20]) = -0.0084785916...
    assert npv(0.281, np.array([[-100, 39, 59, 55, 20]]))[0] == pytest.approx(-0.00847859, abs=1e-8)
    # Excel NPV example 1: 10 %, -10,000; 3,000; 4,200; 6,800 → 1,188.44 (first value discounted)
    assert excel_npv(0.10, np.array([-10000, 3000, 4200, 6800])) == pytest.approx(
        1188.44, abs=0.005
    )
    # Excel NPV example 2: rate 8 %, returns 8,000…14,500 plus the -40,000 cost today → 1,922.06;
    # with a -9,000 loss in year 6 → -3,749.47
    returns = np.array([8000, 9200, 10000, 12000, 14500])
    assert excel_npv(0.08, returns) - 40000 == pytest.approx(1922.06, abs=0.005)
    assert excel_npv(0.08, np.append(returns, -9000)) - 40000 == pytest.approx(-3749.47, abs=0.005)


# --- hand-computed model cases --------------------------------------------------------------
def project(**values: object) -> pl.DataFrame:
    base: dict[str, object] = {
        "project_id": "P",
        "total_investment": 1000.0,
        "loan_amount": 0.0,
        "interest_rate": 0.0,
        "loan_tenor_years": 0,
        "construction_years": 1,
        "operating_years": 2,
        "annual_generation_mwh": 10.0,
        "tariff_per_mwh": 60.0,
        "annual_opex": 0.0,
        "tax_rate": 0.0,
        "discount_rate": 0.10,
    }
    base.update(values)
    return pl.DataFrame([base])


def test_unlevered_case_by_hand() -> None:
    """Capex 1,000 at t=0; revenue 600 in t=1, 2. No tax, no debt.
    Cash flows (-1000, 600, 600): NPV(10 %) = -1000 + 600/1.1 + 600/1.21 = 41.3223;
    IRR solves 600/(1+r) + 600/(1+r)^2 = 1000 → r = 13.066 %;
    LCOE = 1000 / (10/1.1 + 10/1.21) = 57.619 per MWh; breakeven tariff = LCOE (no tax)."""
    out = appraise(project(), sensitivities=False).metrics.row(0, named=True)
    assert out["npv"] == pytest.approx(-1000 + 600 / 1.1 + 600 / 1.21, rel=1e-12)
    assert out["project_irr"] == pytest.approx(npf.irr([-1000, 600, 600]), rel=1e-10)
    lcoe = 1000 / (10 / 1.1 + 10 / 1.21)
    assert out["lcoe"] == pytest.approx(lcoe, rel=1e-12)
    assert out["breakeven_tariff"] == pytest.approx(lcoe, rel=1e-9)
    assert out["payback_years"] == pytest.approx(1 + 400 / 600)


def test_annuity_dscr_and_llcr_by_hand() -> None:
    """Loan 600 at 10 % over 2 years, no grace, one construction year with interest capitalised
    from the next year (none here: drawn at the end of year 0). Annuity = 600·0.1/(1−1.1⁻²)
    = 345.714; CFADS = 600 (no tax, no opex). DSCR = 600/345.714 = 1.7355 both years;
    LLCR = (600/1.1 + 600/1.21) / 600 = 1.7355."""
    out = appraise(
        project(loan_amount=600.0, interest_rate=0.10, loan_tenor_years=2), sensitivities=False
    )
    metrics = out.metrics.row(0, named=True)
    annuity = 600 * 0.1 / (1 - 1.1**-2)
    assert metrics["debt_amount"] == pytest.approx(600)
    assert metrics["min_dscr"] == pytest.approx(600 / annuity, rel=1e-12)
    assert metrics["avg_dscr"] == pytest.approx(600 / annuity, rel=1e-12)
    assert metrics["llcr"] == pytest.approx((600 / 1.1 + 600 / 1.21) / 600, rel=1e-12)
    flows = out.cash_flows.filter(pl.col("phase") == "operation")
    assert flows["debt_service"].to_list() == pytest.approx([annuity, annuity])
    assert flows["principal"].sum() == pytest.approx(600)


def test_equal_principal_grace_and_idc_by_hand() -> None:
    """Capex 1,000 over 2 construction years (500 a year), 60 % debt → draws 300, 300.
    IDC at 10 %: year 1 interest on 300 = 30, capitalised → debt at COD = 630.
    Grace 1 year (interest only 63), then 630 repaid in 2 equal instalments of 315."""
    frame = project(
        construction_years=2,
        operating_years=4,
        loan_amount=600.0,
        interest_rate=0.10,
        loan_tenor_years=3,
        grace_period_years=1,
    )
    out = appraise(frame, AppraisalConfig(debt_profile="equal_principal"), sensitivities=False)
    metrics = out.metrics.row(0, named=True)
    assert (metrics["idc"], metrics["debt_amount"]) == (pytest.approx(30), pytest.approx(630))
    ops = out.cash_flows.filter(pl.col("phase") == "operation")
    assert ops["interest"].to_list()[:3] == pytest.approx([63.0, 63.0, 31.5])
    assert ops["principal"].to_list()[:3] == pytest.approx([0.0, 315.0, 315.0])


def test_sculpting_hits_the_target_dscr_by_hand() -> None:
    """Sculpted at 1.25×: debt service = CFADS/1.25 = 480 a year for 2 years at 10 %;
    debt = 480/1.1 + 480/1.21 = 833.06 (≤ cost 1,000: not capped); DSCR = 1.25 both years."""
    out = appraise(
        project(loan_amount=0.0, interest_rate=0.10, loan_tenor_years=2),
        AppraisalConfig(debt_profile="sculpted", target_dscr=1.25),
        sensitivities=False,
    )
    metrics = out.metrics.row(0, named=True)
    assert metrics["debt_amount"] == pytest.approx(480 / 1.1 + 480 / 1.21, rel=1e-12)
    assert metrics["debt_capped"] is False
    dscr = out.cash_flows.filter(pl.col("phase") == "operation")["dscr"].to_list()
    assert dscr == pytest.approx([1.25, 1.25], rel=1e-12)


def test_debt_sizing_above_cost_is_capped_and_flagged() -> None:
    """Issue #6, acceptance 3: a DSCR-based sizing above the total cost is capped at the cost.
    CFADS 6,000 a year against a cost of 1,000: the sculpted PV would be ≈ 8,330."""
    out = appraise(
        project(tariff_per_mwh=600.0, interest_rate=0.10, loan_tenor_years=2),
        AppraisalConfig(debt_profile="sculpted", target_dscr=1.25),
        sensitivities=False,
    ).metrics.row(0, named=True)
    assert out["debt_capped"] is True
    assert out["debt_amount"] == pytest.approx(1000)
    loan_too_big = appraise(
        project(loan_amount=5000.0, loan_tenor_years=2, interest_rate=0.05), sensitivities=False
    )
    row = loan_too_big.metrics.row(0, named=True)
    assert row["debt_amount"] == pytest.approx(1000)  # drawn pro rata, at most 100 % of cost


def test_tax_depreciation_and_opex_escalation_by_hand() -> None:
    """Tax 25 % on EBIT: revenue 600, opex 100 then 110 (10 % escalation), depreciation 500.
    EBIT 0 then -10 → no tax; with opex 0: EBIT 100 → tax 25 each year."""
    ops = appraise(
        project(annual_opex=100.0, opex_escalation=0.10, tax_rate=0.25), sensitivities=False
    ).cash_flows
    ops = ops.filter(pl.col("phase") == "operation")
    assert ops["opex"].to_list() == pytest.approx([100.0, 110.0])
    assert ops["tax"].to_list() == pytest.approx([0.0, 0.0])
    taxed = appraise(project(tax_rate=0.25), sensitivities=False).cash_flows.filter(
        pl.col("phase") == "operation"
    )
    assert taxed["tax"].to_list() == pytest.approx([25.0, 25.0])


def test_missing_finance_inputs_give_nan_with_a_reason() -> None:
    out = appraise(project(total_investment=None), sensitivities=False).metrics.row(0, named=True)
    assert np.isnan(out["npv"]) and np.isnan(out["project_irr"])
    assert "needs total_investment" in out["irr_reason"]


def test_sensitivities_and_carbon_scenarios() -> None:
    frame = project(tax_rate=0.25, attributable_tco2e_per_year=5.0, annual_opex=10.0)
    result = appraise(frame, AppraisalConfig())
    table = result.sensitivities
    assert set(table["driver"]) >= {
        "capex",
        "tariff",
        "generation",
        "opex",
        "carbon_price:cea_2023_07_30",
    }
    tariff = table.filter(pl.col("driver") == "tariff").sort("change")
    assert tariff["npv"][0] < result.metrics["npv"][0] < tariff["npv"][1]
    carbon = table.filter(pl.col("driver") == "carbon_price:cea_2023_07_30").row(0, named=True)
    # 5 t × 61.05 yuan/t more revenue each operating year, taxed at 25 %
    extra = 5 * 61.05 * 0.75 * (1 / 1.1 + 1 / 1.21)
    assert carbon["npv_delta"] == pytest.approx(extra, rel=1e-9)


def test_sensitivity_drivers_follow_the_project_inputs() -> None:
    """Issue 18 item 4: a building earning an annual revenue has no tariff or generation to
    vary; it is varied on its revenue. A power project is varied on tariff and generation."""
    power = project(annual_opex=50.0)
    building = project(
        project_id="B", annual_generation_mwh=None, tariff_per_mwh=None, annual_revenue=600.0
    )
    table = appraise(pl.concat([power, building], how="diagonal_relaxed")).sensitivities
    drivers = {
        pid: set(table.filter(pl.col("project_id") == pid)["driver"])
        for pid in table["project_id"].unique()
    }
    plain = {d for d in drivers["B"] if not d.startswith("carbon_price")}
    assert plain == {"capex", "revenue"}  # and no opex: it has none
    assert {"capex", "tariff", "generation", "opex"} <= drivers["P"]
    assert "revenue" not in drivers["P"]
    revenue = table.filter((pl.col("project_id") == "B") & (pl.col("driver") == "revenue"))
    assert (revenue["npv_delta"].sort() != 0).all()


# --- properties -----------------------------------------------------------------------------
flows = st.lists(st.floats(min_value=1, max_value=1e6), min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(cost=st.floats(min_value=10, max_value=1e7), inflows=flows)
def test_npv_at_the_irr_is_zero(cost: float, inflows: list[float]) -> None:
    cf = np.array([[-cost, *inflows]])
    rate, _ = irr(cf)
    if np.isfinite(rate[0]) and rate[0] > -0.99:
        assert abs(npv(rate[0], cf)[0]) <= 1e-6 * (cost + sum(inflows))


@settings(max_examples=100, deadline=None)
@example(  # the sculpted balance left 4e-11 before a year of negative CFADS: DSCR -7e14
    tariff=50.0,
    generation=169887.0,
    capex=345992454.0,
    opex_share=0.024030074736378276,
    life=6,
    tenor=6,
    rate=0.0,
    target=1.5,
)
@given(
    tariff=st.floats(min_value=50, max_value=1000),
    generation=st.floats(min_value=100, max_value=1e6),
    capex=st.floats(min_value=1e4, max_value=1e9),
    opex_share=st.floats(min_value=0, max_value=0.05),
    life=st.integers(min_value=2, max_value=40),
    tenor=st.integers(min_value=1, max_value=20),
    rate=st.floats(min_value=0.0, max_value=0.12),
    target=st.floats(min_value=1.05, max_value=2.0),
)
def test_sculpted_debt_hits_the_target_every_year(
    tariff: float,
    generation: float,
    capex: float,
    opex_share: float,
    life: int,
    tenor: int,
    rate: float,
    target: float,
) -> None:
    frame = project(
        tariff_per_mwh=tariff,
        annual_generation_mwh=generation,
        total_investment=capex,
        annual_opex=capex * opex_share,
        operating_years=life,
        loan_tenor_years=min(tenor, life),
        interest_rate=rate,
        tax_rate=0.25,
        degradation_rate=0.005,
    )
    result = appraise(
        frame, AppraisalConfig(debt_profile="sculpted", target_dscr=target), sensitivities=False
    )
    metrics = result.metrics.row(0, named=True)
    dscr = result.cash_flows.filter(pl.col("debt_service") > 0)["dscr"].to_numpy()
    if metrics["debt_capped"]:
        assert (dscr >= target - 1e-9).all()
    elif dscr.size:
        np.testing.assert_allclose(dscr, target, rtol=1e-9)


@settings(max_examples=100, deadline=None)
@given(
    tariff=st.floats(min_value=50, max_value=1000),
    capex=st.floats(min_value=1e4, max_value=1e8),
    tax=st.floats(min_value=0, max_value=0.4),
)
def test_doubling_the_tariff_never_lowers_the_irr(tariff: float, capex: float, tax: float) -> None:
    frames = pl.concat(
        [
            project(
                tariff_per_mwh=t,
                total_investment=capex,
                tax_rate=tax,
                annual_generation_mwh=1000.0,
                operating_years=20,
            )
            for t in (tariff, 2 * tariff)
        ]
    )
    frames = frames.with_columns(pl.Series("project_id", ["a", "b"]))
    irrs = appraise(frames, sensitivities=False).metrics["project_irr"].to_numpy()
    if np.isfinite(irrs).all():
        assert irrs[1] >= irrs[0] - 1e-12


def test_subsidies_paid_during_construction_count() -> None:
    """A grant of 100 paid in construction year 0 (start = approval_date) adds 100 at t = 0."""
    schedule = pl.DataFrame(
        {
            "project_id": ["P"],
            "year_index": [0],
            "start": ["approval_date"],
            "amount": [100.0],
            "up_to": [False],
        }
    )
    plain = appraise(project(), sensitivities=False).metrics.row(0, named=True)
    granted = appraise(project(), subsidy_schedule=schedule, sensitivities=False).metrics.row(
        0, named=True
    )
    assert granted["npv"] - plain["npv"] == pytest.approx(100.0)


def test_a_figure_does_not_depend_on_its_slice_or_thread() -> None:
    """Issue 23: only projects with financial inputs are modelled, in slices on several
    threads. Every project's figures are the same whether it is appraised alone, among
    projects without inputs, in slices of 2 on 3 threads or in one slice on one thread."""
    rows = [
        {"project_id": f"P{i}", "tariff_per_mwh": 40.0 + 7 * i, "loan_amount": 300.0 + 10 * i}
        for i in range(9)
    ]
    frames = [project(**row) for row in rows]
    frames[2] = project(project_id="P2", total_investment=None)  # cannot be valued
    frames[5] = project(project_id="P5", tariff_per_mwh=None)
    book = pl.concat(
        [f.with_columns(pl.col("loan_tenor_years").cast(pl.Int64) + 1) for f in frames],
        how="diagonal_relaxed",
    )
    book = book.with_columns(pl.lit(0.05).alias("interest_rate"))
    whole = appraise(book, sensitivities=False, chunk_size=100, workers=1).metrics
    sliced = appraise(book, sensitivities=False, chunk_size=2, workers=3).metrics
    assert whole.equals(sliced)
    for i in (0, 4, 8):  # alone, the same figures bit for bit
        alone = appraise(book.slice(i, 1), sensitivities=False).metrics
        assert alone.equals(whole.slice(i, 1))
    unvalued = whole.filter(pl.col("project_id").is_in(["P2", "P5"]))
    assert unvalued["npv"].is_nan().all() and not unvalued["debt_capped"].any()
    assert unvalued["irr_reason"].str.starts_with("needs total_investment").all()
    assert whole.filter(~pl.col("project_id").is_in(["P2", "P5"]))["npv"].is_not_nan().all()


def _random_book(rows: int, seed: int) -> pl.DataFrame:
    """Projects of 1 to 60 years (a few of 100), some without debt, tax or revenue."""
    rng = np.random.default_rng(seed)
    capex = rng.uniform(1e6, 1e9, rows)

    def pick(*values: float) -> np.ndarray:
        return rng.choice(np.array(values), rows)

    return pl.DataFrame(
        {
            "project_id": [f"R{i}" for i in range(rows)],
            "total_investment": capex,
            "loan_amount": capex * pick(0.0, 0.3, 0.7, 1.2),
            "interest_rate": pick(0.0, 0.035, 0.045, 0.08),
            "loan_tenor_years": pick(0, 1, 5, 15, 30),
            "grace_period_years": pick(0, 1, 3),
            "construction_years": pick(1, 2, 3, 5, 2.5),
            "operating_years": np.where(rng.random(rows) < 0.02, 100.0, pick(1, 2, 7, 10, 25, 60)),
            "annual_generation_mwh": rng.uniform(1e3, 5e5, rows),
            "tariff_per_mwh": np.where(rng.random(rows) < 0.2, np.nan, rng.uniform(0, 900, rows)),
            "annual_revenue": rng.uniform(0, 3e8, rows),
            "annual_opex": capex * pick(0.0, 0.01, 0.05, 0.5),
            "opex_escalation": pick(0.0, 0.02, -0.05),
            "degradation_rate": pick(0.0, 0.005, 0.3),
            "tax_rate": pick(0.0, 0.25, 0.9),
            "discount_rate": pick(0.0, 0.06, -0.02),
            "attributable_tco2e_per_year": rng.uniform(0, 1e5, rows),
        }
    )


@pytest.mark.parametrize("profile", ["annuity", "equal_principal", "sculpted"])
def test_narrow_year_grids_give_the_slice_grids_figures_bit_for_bit(profile: str) -> None:
    """Issue 23 (appraisal at 1M projects): a project is modelled on a grid of its own years
    (construction, operation, subsidy payments) rounded up to a multiple of 8, not on its
    slice's longest: numpy sums a row in 8 interleaved partial sums, and zeros after the last
    year fall in the same ones. Every figure is the wide grid's, bit for bit."""
    from greenscreen.appraisal import _inputs, _model, _narrow_metrics, _periods

    book = _random_book(300, seed=23)
    config = AppraisalConfig(debt_profile=profile, carbon_price=30.0)
    x = _inputs(book, config)
    periods = _periods(x)
    rng = np.random.default_rng(5)
    subsidies = np.where(rng.random((book.height, periods)) < 0.01, rng.uniform(-1e6, 5e7), 0.0)
    wide = _model(x, config, subsidies, config.carbon_price)["metrics"]
    narrow = _narrow_metrics(x, config, subsidies, config.carbon_price)
    assert periods > 100 and wide.keys() == narrow.keys()
    for name, values in wide.items():
        if isinstance(values, pl.Series):
            assert values.equals(narrow[name]), name
        else:
            assert np.array_equal(values.view(np.uint8), narrow[name].view(np.uint8)), name


def _irr_plain(cf: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """irr() as it was before issue 23 (full-width pows on every row), for comparison."""
    cf = np.nan_to_num(cf)
    t = np.arange(cf.shape[1])
    changes = np.array([np.sum(np.diff(np.sign(row[row != 0])) != 0) for row in cf])
    rate = np.full(cf.shape[0], 0.1)
    active = np.flatnonzero(changes > 0)
    for _ in range(60):
        if active.size == 0:
            break
        sub, growth = cf[active], 1 + rate[active, None]
        disc = growth**-t
        value, slope = np.sum(sub * disc, axis=1), np.sum(-t * sub * disc / growth, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(slope != 0, value / slope, 0.0)
        rate[active] = np.clip(rate[active] - step, -0.99, 10.0)
        active = active[np.abs(step) >= tol]
    final = np.sum(cf * (1 + rate[:, None]) ** -t, axis=1)
    bad = (np.abs(final) / np.maximum(np.abs(cf).sum(axis=1), 1e-300) > 1e-9) & (changes > 0)
    lo, hi = np.full(bad.sum(), -0.99), np.full(bad.sum(), 10.0)
    f_lo = np.sum(cf[bad] * (1 + lo[:, None]) ** -t, axis=1)
    ok = np.sign(f_lo) != np.sign(np.sum(cf[bad] * (1 + hi[:, None]) ** -t, axis=1))
    for _ in range(200):
        mid = (lo + hi) / 2
        f_mid = np.sum(cf[bad] * (1 + mid[:, None]) ** -t, axis=1)
        left = np.sign(f_mid) == np.sign(f_lo)
        lo, f_lo, hi = np.where(left, mid, lo), np.where(left, f_mid, f_lo), np.where(left, hi, mid)
    rate[bad] = np.where(ok, (lo + hi) / 2, np.nan)
    return np.where(changes > 0, np.where(np.abs(rate) < tol, 0.0, rate), np.nan)


@pytest.mark.parametrize("years", [2, 3, 9, 30, 61])
def test_irr_is_the_plain_algorithms_bit_for_bit(years: int) -> None:
    """Issue 23: the IRR takes its pows up to each row's last nonzero flow, drops rows whose
    Newton rate or bisection bracket stopped moving and orders rows by length: the same
    figures, bit for bit, as Newton then bisection on every row over the whole grid (rows
    whose flows change sign once, where no search for the root nearest zero takes over)."""
    rng = np.random.default_rng(years)
    rows = 2000
    life = rng.integers(1, years + 1, rows)
    capex = rng.uniform(1, 1e9, rows)
    scale = capex * rng.choice([0.001, 0.01, 0.05, 0.1, 0.3, 2.0], rows)
    cf = np.where(np.arange(years) < life[:, None], scale[:, None], 0.0)
    cf *= rng.uniform(0.5, 1.5, cf.shape)
    cf[:, 0] = -capex
    cf[rng.random(cf.shape) < 0.05] = 0.0
    ours = irr(cf)[0]
    plain = _irr_plain(cf)
    assert np.array_equal(np.isnan(ours), np.isnan(plain))
    assert np.array_equal(
        ours[~np.isnan(ours)].view(np.int64), plain[~np.isnan(plain)].view(np.int64)
    )
