"""Excel appraisal pack: one workbook per project, every figure a live formula.

The cash-flow model of :mod:`greenscreen.appraisal` and the avoided-emissions and subsidy
arithmetic are written as formulas that reference named input cells (``in_capex``,
``in_tariff`` …), so an analyst can change an assumption in Excel, WPS or LibreOffice and see
every figure update. The engine's values are stored as the formulas' cached results (shown by
viewers that do not recalculate); a test recalculates the workbook in LibreOffice and checks
the formulas reproduce the engine to 1e-6.

Text from the pipeline is always written with ``write_string``: a name such as
``=HYPERLINK(...)`` stays text, never a formula or a link.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import polars as pl
import xlsxwriter
from xlsxwriter.utility import xl_col_to_name, xl_rowcol_to_cell

from greenscreen import __version__
from greenscreen.report.labels import LABELS, Lang, status_text, t
from greenscreen.report.view import currency_label, project_view

if TYPE_CHECKING:
    from greenscreen.appraisal import AppraisalConfig
    from greenscreen.run import ScreenResult

_FIXED_TIME = dt.datetime(2025, 1, 1)  # document properties: byte-identical output
_FIRST_YEAR_COL = 3  # column D holds year t = 0 on the CashFlow sheet
_NA = "n/a"  # what a metric formula yields where the engine has no figure
_PROFILES = {"annuity": 1, "equal_principal": 2, "sculpted": 3}
# the sheets in tab order (labels.t("sheet_<key>") is the sheet's name)
_SHEETS = (
    "summary",
    "inputs",
    "cashflow",
    "emissions",
    "taxonomy",
    "subsidies",
    "requests",
    "sources",
)


# -- the model, as tables -----------------------------------------------------------------------
class _Input(NamedTuple):
    """A named input cell of the Inputs sheet: the project's ``column`` of the results, else
    the run's ``setting`` (an ``AppraisalConfig`` field), else (neither given) derived by
    :func:`_derived_inputs`. ``{currency}`` in the unit is the project's currency."""

    key: str
    label: str
    unit: str
    source: str = "input"
    column: str | None = None
    setting: str | None = None


#: The model's inputs, as ``appraisal._inputs`` reads them.
_INPUTS = (
    _Input("in_capex", "Total investment (capex)", "{currency}", column="total_investment"),
    _Input("in_loan", "Loan amount", "{currency}", column="loan_amount"),
    _Input("in_rate", "Interest rate", "fraction", column="interest_rate", setting="interest_rate"),
    _Input("in_tenor", "Loan tenor (years, ≤ life)", "years"),
    _Input("in_grace", "Grace period (years)", "years", column="grace_period_years"),
    _Input("in_construction", "Construction years (≥ 1)", "years"),
    _Input("in_life", "Operating years", "years", column="operating_years"),
    _Input("in_generation", "Annual generation (year 1)", "MWh/yr", "input / capacity × hours"),
    _Input("in_tariff", "Tariff", "{currency}/MWh", column="tariff_per_mwh"),
    _Input(
        "in_use_tariff", "Revenue = generation × tariff (1) or annual revenue (0)", "1/0", "derived"
    ),
    _Input(
        "in_revenue",
        "Annual revenue (when no tariff × generation)",
        "{currency}/yr",
        column="annual_revenue",
    ),
    _Input("in_opex", "Opex (first operating year)", "{currency}/yr", column="annual_opex"),
    _Input("in_escalation", "Opex escalation", "fraction/yr", column="opex_escalation"),
    _Input("in_degradation", "Degradation", "fraction/yr", column="degradation_rate"),
    _Input(
        "in_tax",
        "Income tax rate",
        "fraction",
        "input / default 25 % (China CIT)",
        column="tax_rate",
        setting="tax_rate",
    ),
    _Input(
        "in_discount",
        "Discount rate",
        "fraction",
        "input / bank assumption",
        column="discount_rate",
        setting="discount_rate",
    ),
    _Input(
        "in_profile",
        "Debt profile: 1 annuity, 2 equal principal, 3 sculpted",
        "1/2/3",
        "run setting",
    ),
    _Input(
        "in_target_dscr",
        "Target DSCR (sculpted)",
        "×",
        "run setting (bank assumption)",
        setting="target_dscr",
    ),
    _Input(
        "in_carbon_price",
        "Carbon price",
        "{currency}/tCO2e",
        "run setting; CEA close 2023-07-30: 61.05 (seed 002)",
        setting="carbon_price",
    ),
)


def _derived_inputs(row: Mapping[str, Any], config: AppraisalConfig) -> dict[str, Any]:
    """The inputs that are neither a column nor a setting (as ``appraisal._inputs``: the
    tenor at most the life, at least one construction year, generation from capacity ×
    hours when not given: the results' ``generation_mwh``)."""
    generation = row.get("generation_mwh")
    capacity, hours = row.get("capacity_mw"), row.get("full_load_hours")
    if "generation_mwh" not in row:  # results of a run registered before the column existed
        generation = row.get("annual_generation_mwh")
        if generation is None and capacity is not None and hours is not None:
            generation = capacity * hours
    return {
        "in_tenor": min(_number(row.get("loan_tenor_years")), _number(row.get("operating_years"))),
        "in_construction": max(_number(row.get("construction_years"), 1.0), 1.0),
        "in_generation": generation,
        "in_use_tariff": int(generation is not None and row.get("tariff_per_mwh") is not None),
        "in_profile": _PROFILES[config.debt_profile],
    }


class _Figure(NamedTuple):
    """A named formula in column B: ``label`` (a key of ``labels.LABELS``, else the text
    itself), ``formula`` (a template, see :class:`_Line`: ``{all.key}`` is a CashFlow line
    across the years, ``{guess}`` the engine's figure or 0.1), ``engine`` (the engine's name
    of the figure: its cached value) and the number format."""

    key: str
    label: str
    formula: str
    engine: str
    fmt: str = "money"
    unit: str = ""


#: Inputs the model derives (``appraisal._construction``: ``share``, ``_debt_sizing``:
#: ``n_amort``); cached values from ``Appraisal.workings`` (sizing).
_DERIVED = (
    _Figure(
        "in_debt_share",
        "Debt share of capex",
        "=IF(in_capex>0,MIN(in_loan/in_capex,1),0)",
        "debt_share",
        "num",
        "fraction",
    ),
    _Figure(
        "in_amort_years",
        "Amortising years",
        "=MAX(in_tenor-MIN(in_grace,in_tenor),0)",
        "amort_years",
        "num",
        "years",
    ),
)


class _Line(NamedTuple):
    """A line of the CashFlow sheet: one row (labelled ``labels.t(key)``), one formula per year.

    ``formula`` is a template: ``{key}`` is this year's cell of another line, ``{prev.key}``
    last year's, ``{all.key}`` the line across every year, ``{t}`` the year index (0: the
    first construction year), ``{payments}`` the year's column of the Subsidies sheet's
    payments; ``in_…``, ``em_…`` and ``cf_…`` are named cells (Inputs, Emissions, the figures
    below the lines). ``first`` replaces it in year 0 where it refers to last year.
    ``engine``: the line in ``Appraisal.workings`` (the cached values) if not ``key``.
    """

    key: str
    formula: str
    fmt: str = "money"
    first: str | None = None
    engine: str | None = None


#: The cash-flow model, line by line in the order of ``appraisal._model``'s blocks (``_lines``),
#: each comment naming the function that computes the lines below it.
_LINES = (
    # timeline (_timeline): t < C building, C ≤ t < C + N operating, k the operating year
    _Line("year", "={t}", "int"),
    _Line("building", "=IF({year}<in_construction,1,0)", "int"),
    _Line(
        "operating", "=IF(AND({year}>=in_construction,{year}<in_construction+in_life),1,0)", "int"
    ),
    _Line("op_year", "=IF({operating}=1,{year}-in_construction,0)", "int"),
    # construction (_construction): capex evenly over C years; debt drawn pro rata; IDC
    # capitalised
    _Line("capex", "={building}*in_capex/in_construction"),
    _Line("draw", "={capex}*in_debt_share"),
    _Line("idc", "=IF({building}=1,{prev.con_balance}*in_rate,0)", first="=0"),
    _Line(
        "con_balance",
        "=IF({building}=1,{prev.con_balance}+{idc}+{draw},{prev.con_balance})",
        first="={draw}",
    ),
    # operation: revenue (_revenue), opex (_opex), EBITDA to CFADS (_earnings)
    _Line(
        "generation",
        "={operating}*in_generation*(1-in_degradation)^{op_year}",
        engine="generation_mwh",
    ),
    _Line("energy_revenue", "=IF(in_use_tariff=1,{generation}*in_tariff,{operating}*in_revenue)"),
    _Line(
        "carbon_revenue",
        "={operating}*em_attributable*(1-in_degradation)^{op_year}*in_carbon_price",
    ),
    _Line("subsidies", "=SUM({payments})"),
    _Line("revenue", "={operating}*({energy_revenue}+{carbon_revenue})+{subsidies}"),
    _Line("opex", "={operating}*in_opex*(1+in_escalation)^{op_year}"),
    _Line("ebitda", "={revenue}-{opex}"),
    _Line("depreciation", "=IF(in_life>0,{operating}*(in_capex+SUM({all.idc}))/in_life,0)"),
    _Line("ebit", "={ebitda}-{depreciation}"),
    _Line("tax", "=MAX({ebit},0)*in_tax*{operating}"),
    _Line("cfads", "={operating}*({ebitda}-{tax})"),
    # debt: loan years, amortising years, the sculpting target (_debt_sizing), the balance
    # and the debt service (_debt)
    _Line("in_loan", "=IF(AND({operating}=1,{op_year}<in_tenor),1,0)", "int"),
    _Line("amortising", "=IF(AND({in_loan}=1,{op_year}>=MIN(in_grace,in_tenor)),1,0)", "int"),
    _Line("sculpt_target", "={amortising}*MAX({cfads},0)/in_target_dscr"),
    _Line(
        "opening",
        "=IF({operating}*({op_year}=0)=1,cf_debt,{prev.closing})",
        first="=IF({operating}*({op_year}=0)=1,cf_debt,0)",
    ),
    _Line("interest", "={in_loan}*{opening}*in_rate"),
    # the last instalment clears the loan; else by profile (_repayment): annuity, equal
    # principal, sculpted
    _Line(
        "principal",
        "=IF({in_loan}=1,IF({op_year}=in_tenor-1,{opening},CHOOSE(in_profile,"
        "{amortising}*MIN(MAX(cf_annuity-{interest},0),{opening}),"
        "{amortising}*MIN(cf_debt/MAX(in_amort_years,1),{opening}),"
        "MIN(MAX(IF({amortising}=1,{sculpt_target}*cf_scale,{interest})-{interest},0),"
        "{opening}))),0)",
    ),
    _Line("debt_service", "={interest}+{principal}"),
    _Line("closing", "={opening}-{principal}"),
    # cover (_cover): no DSCR without debt service: the formula's "" (blank), not 0
    _Line("dscr", '=IF({debt_service}>0,{cfads}/{debt_service},"")', "ratio"),
    # cash flows (_cash_flows): EBITDA outside operation is only subsidy paid during
    # construction
    _Line("project_cf_pre", "=-{capex}+{ebitda}"),
    _Line("project_cf", "={project_cf_pre}-{tax}"),
    _Line("shield", "=MIN({interest},MAX({ebit},0))*in_tax*{operating}"),
    _Line(
        "equity_cf",
        "=-{capex}*(1-in_debt_share)+IF({operating}=1,{cfads}-{debt_service}+{shield},{ebitda})",
    ),
    # valuation (_model, for _metrics): the discount factors at the discount rate
    _Line("discount", "=(1+in_discount)^-{year}", "ratio"),
)

#: The debt sizing (``_debt_sizing``), named for the lines above; cached values from
#: ``Appraisal.workings`` (sizing).
_SIZING = (
    _Figure(
        "cf_sized",
        "Debt sized (before cap)",
        "=IF(in_profile=3,SUMPRODUCT({all.sculpt_target},1/(1+in_rate)^({all.op_year}+1)),"
        "INDEX({all.con_balance},in_construction))",
        "sized",
    ),
    _Figure("cf_debt", "debt", "=MIN(cf_sized,(in_capex+SUM({all.idc})))", "debt"),
    _Figure(
        "cf_capped",
        "Debt capped at cost (1/0)",
        "=IF(cf_sized>(in_capex+SUM({all.idc}))+0.000001,1,0)",
        "capped",
        "int",
    ),
    _Figure(
        "cf_scale",
        "Sculpting scale",
        "=IF(AND(cf_capped=1,cf_sized>0),cf_debt/cf_sized,1)",
        "scale",
        "ratio",
    ),
    _Figure(
        "cf_annuity",
        "Annuity payment",
        "=IF(in_amort_years>0,IF(in_rate>0,"
        "cf_debt*in_rate/(1-(1+in_rate)^-in_amort_years),cf_debt/in_amort_years),0)",
        "annuity",
    ),
)

#: The metrics (``appraisal._metrics``); cached values from the results row. IRR() is
#: seeded with the engine's IRR as the guess: spreadsheet IRR iterates from 10 % and can fail
#: on negative returns, the engine's value keeps it converging.
_METRICS = (
    _Figure("cf_npv", "npv", "=SUMPRODUCT({all.project_cf},{all.discount})", "npv"),
    _Figure(
        "cf_irr",
        "project_irr",
        '=IFERROR(IRR({all.project_cf},{guess}),"n/a")',
        "project_irr",
        "pct",
    ),
    _Figure(
        "cf_irr_pre",
        "project_irr_pretax",
        '=IFERROR(IRR({all.project_cf_pre},{guess}),"n/a")',
        "project_irr_pretax",
        "pct",
    ),
    _Figure(
        "cf_equity_irr",
        "equity_irr",
        '=IFERROR(IRR({all.equity_cf},{guess}),"n/a")',
        "equity_irr",
        "pct",
    ),
    _Figure(
        "cf_min_dscr",
        "min_dscr",
        '=IF(COUNT({all.dscr})>0,MIN({all.dscr}),"n/a")',
        "min_dscr",
        "ratio",
    ),
    _Figure(
        "cf_avg_dscr",
        "avg_dscr",
        '=IF(COUNT({all.dscr})>0,AVERAGE({all.dscr}),"n/a")',
        "avg_dscr",
        "ratio",
    ),
    _Figure(
        "cf_llcr",
        "llcr",
        "=IF(cf_debt>0,SUMPRODUCT({all.cfads},{all.in_loan},1/(1+in_rate)^({all.op_year}+1))"
        '/cf_debt,"n/a")',
        "llcr",
        "ratio",
    ),
    _Figure(
        "cf_lcoe",
        "lcoe",
        "=IF(SUMPRODUCT({all.generation},{all.discount})>0,"
        "SUMPRODUCT({all.capex}+{all.opex},{all.discount})"
        '/SUMPRODUCT({all.generation},{all.discount}),"n/a")',
        "lcoe",
        "num",
    ),
)

#: Figures of the engine with no formula in the pack (label key, results column).
_ENGINE_ONLY = (("breakeven", "breakeven_tariff"), ("payback", "payback_years"))


def _number(value: Any, default: float = 0.0) -> float:
    """A finite float, ``default`` for None, NaN, infinity or anything not a number."""
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return default if math.isnan(number) or math.isinf(number) else number


def _label(text: str, lang: Lang) -> str:
    """A key of ``labels.LABELS`` in ``lang``; any other text as it is."""
    return t(text, lang) if text in LABELS else text


# -- where things are: what one sheet builder hands to the next ----------------------------
@dataclass(frozen=True)
class _Payments:
    """The Subsidies sheet's payments: a row per award, a column per year from ``first_col``."""

    sheet: str
    first_row: int
    last_row: int
    first_col: int

    def year(self, i: int) -> str:
        col = xl_col_to_name(self.first_col + i)
        return f"'{self.sheet}'!{col}{self.first_row + 1}:{col}{self.last_row + 1}"


@dataclass(frozen=True)
class _Grid:
    """The CashFlow sheet's lines: the row of each line key, years from ``_FIRST_YEAR_COL``
    to ``last_col``."""

    sheet: str
    rows: Mapping[str, int]
    last_col: int

    def cell(self, key: str, col: int) -> str:
        if col < _FIRST_YEAR_COL:
            raise ValueError(f"{key} before year 0: give the line a first-year formula")
        return f"{xl_col_to_name(col)}{self.rows[key] + 1}"

    def span(self, key: str) -> str:
        """The line across every year (absolute)."""
        row = self.rows[key] + 1
        first, last = xl_col_to_name(_FIRST_YEAR_COL), xl_col_to_name(self.last_col)
        return f"${first}${row}:${last}${row}"

    def series(self, key: str) -> list[Any]:
        """The line across every year, as a chart's range."""
        return [self.sheet, self.rows[key], _FIRST_YEAR_COL, self.rows[key], self.last_col]

    def formula(self, template: str, col: int, **fields: Any) -> str:
        """A template (see :class:`_Line`) written in column ``col``."""
        return template.format_map(_Fields(self, col, fields))


class _Cells:
    """``{prev.key}`` / ``{all.key}`` in a template: a line key resolved to a reference."""

    def __init__(self, resolve: Callable[[str], str]) -> None:
        self._resolve = resolve

    def __getattr__(self, key: str) -> str:
        return self._resolve(key)


class _Fields(dict[str, Any]):
    """The fields of a template in one column: ``{key}`` (this column's cell of a line),
    ``prev``, ``all`` and the extra fields given."""

    def __init__(self, grid: _Grid, col: int, extra: dict[str, Any]) -> None:
        super().__init__(extra)
        self["prev"] = _Cells(lambda key: grid.cell(key, col - 1))
        self["all"] = _Cells(grid.span)
        self._grid, self._col = grid, col

    def __missing__(self, key: str) -> str:
        return self._grid.cell(key, self._col)


class _Pack:
    """Writes one project's workbook."""

    def __init__(
        self,
        result: ScreenResult,
        project_id: str,
        path: Path,
        lang: Lang,
        cached_values: bool = True,
    ) -> None:
        self.result = result
        self.cached_values = cached_values
        self.pid = project_id
        self.lang = lang
        rows = result.results.filter(pl.col("project_id") == project_id)
        self.row = rows.row(0, named=True)
        self.config = result.appraisal_config
        self.book = xlsxwriter.Workbook(
            str(path), {"strings_to_formulas": False, "strings_to_urls": False}
        )
        self.book.set_properties(
            {
                "title": f"{t('title', 'en')}: {project_id}",
                "author": "greenscreen",
                "comments": f"greenscreen {__version__}",
                "created": _FIXED_TIME,
            }
        )
        self.f = self._formats()
        self.titles = {key: t(f"sheet_{key}", lang) for key in _SHEETS}
        self.view = project_view(result, project_id, lang)
        self.currency = currency_label(self.row, lang)

    # -- formats ---------------------------------------------------------------------------
    def _formats(self) -> dict[str, Any]:
        book = self.book
        # Chinese banks read money in 万: a literal "." (backslash-escaped) and a scaling
        # comma show 20,000,000 as 2000.0万 in Excel, WPS and LibreOffice alike
        money = '0\\.0,"万"' if self.lang == "zh" else "#,##0"
        return {
            "title": book.add_format({"bold": True, "font_size": 14}),
            "h": book.add_format(
                {"bold": True, "bg_color": "#1F4E79", "font_color": "#FFFFFF", "border": 1}
            ),
            "label": book.add_format({"bold": True}),
            "input": book.add_format(
                {"bg_color": "#FFF2CC", "border": 1, "num_format": "#,##0.######"}
            ),
            "input_text": book.add_format({"bg_color": "#FFF2CC", "border": 1}),
            "money": book.add_format({"num_format": money}),
            "num": book.add_format({"num_format": "#,##0.00"}),
            "int": book.add_format({"num_format": "0"}),
            "pct": book.add_format({"num_format": "0.00%"}),
            "ratio": book.add_format({"num_format": "0.000"}),
            "text": book.add_format({"text_wrap": True, "valign": "top"}),
            "bold_money": book.add_format({"bold": True, "num_format": money}),
        }

    # -- helpers ---------------------------------------------------------------------------
    def name(self, key: str, sheet: Any, row: int, col: int) -> None:
        """Define a workbook name for a cell of ``sheet``."""
        ref = f"='{sheet.name}'!{xl_rowcol_to_cell(row, col, row_abs=True, col_abs=True)}"
        self.book.define_name(key, ref)

    def text(self, sheet: Any, row: int, col: int, value: Any, fmt: Any = None) -> None:
        """Pipeline text is always a string cell (never a formula, link or number)."""
        sheet.write_string(row, col, "" if value is None else str(value), fmt)

    # -- sheets ----------------------------------------------------------------------------
    def build(self) -> None:
        """Add the sheets (tab order) and write them; a sheet's formulas refer to the named
        cells of Inputs and Emissions, and each builder returns what a later one needs."""
        sheets = {key: self.book.add_worksheet(title) for key, title in self.titles.items()}
        self._inputs(sheets["inputs"])
        self._emissions(sheets["emissions"])
        payments = self._subsidies(sheets["subsidies"])
        grid = self._cashflow(sheets["cashflow"], payments)
        self._taxonomy(sheets["taxonomy"])
        self._requests(sheets["requests"])
        self._sources(sheets["sources"])
        self._summary(sheets["summary"], grid)

    def _inputs(self, sheet: Any) -> None:
        """The named input cells (:data:`_INPUTS`), then the derived ones (:data:`_DERIVED`)."""
        sheet.set_column(0, 0, 44)
        sheet.set_column(1, 1, 18)
        sheet.set_column(2, 3, 16)
        sheet.set_column(4, 4, 60)
        heads = ("metric", "value", "unit", "verification", "source")
        sheet.write_row(0, 0, [t(head, self.lang) for head in heads], self.f["h"])
        derived = _derived_inputs(self.row, self.config)
        row = 1
        for spec in _INPUTS:
            value = self.row.get(spec.column) if spec.column else derived.get(spec.key)
            if value is None and spec.setting:
                value = getattr(self.config, spec.setting)
            self.text(sheet, row, 0, spec.label, self.f["label"])
            sheet.write_number(row, 1, _number(value), self.f["input"])
            self.text(sheet, row, 2, spec.unit.format(currency=self.currency))
            self.text(sheet, row, 3, "input" if value is not None else "missing → 0")
            self.text(sheet, row, 4, spec.source, self.f["text"])
            self.name(spec.key, sheet, row, 1)
            row += 1
        _, sizing = self.workings
        for figure in _DERIVED:
            self.text(sheet, row, 0, figure.label, self.f["label"])
            self._formula(
                sheet, row, 1, figure.formula, self.f[figure.fmt], sizing.get(figure.engine)
            )
            self.text(sheet, row, 2, figure.unit)
            self.text(sheet, row, 3, "formula")
            self.name(figure.key, sheet, row, 1)
            row += 1
        sheet.freeze_panes(1, 1)

    def _emissions(self, sheet: Any) -> None:
        r, lang = self.row, self.lang
        sheet.set_column(0, 0, 46)
        sheet.set_column(1, 1, 18)
        sheet.set_column(2, 2, 70)
        sheet.write_row(0, 0, [t("metric", lang), t("value", lang), t("source", lang)], self.f["h"])
        method = r.get("emissions_method")
        w_om = r.get("ef_w_om")  # the engine's weight (null: no combined margin was formed)
        rows: list[tuple[str, str, Any, str]] = [
            (
                "em_method",
                t("method", lang),
                self.view["emissions"]["method"] or "—",
                self.view["emissions"]["note"],
            ),
            (
                "em_ef",
                t("ef", lang),
                r.get("grid_ef_tco2_per_mwh"),
                self.view["emissions"]["ef_source"],
            ),
            (
                "em_series",
                "Series / vintage / region",
                f"{r.get('ef_series')} / {r.get('ef_vintage')} / {r.get('ef_region')}",
                self.view["emissions"]["ef_verification"],
            ),
            (
                "em_w_om",
                t("w_om", lang),
                w_om,
                "TOOL07: 0.75 wind/solar, 0.5 other (first crediting period)",
            ),
        ]
        for i, (key, label, value, source) in enumerate(rows, start=1):
            self.text(sheet, i, 0, label, self.f["label"])
            if isinstance(value, (int, float)) and value is not None:
                sheet.write_number(i, 1, float(value), self.f["input"])
                self.name(key, sheet, i, 1)
            else:
                self.text(sheet, i, 1, "" if value is None else value, self.f["input_text"])
            self.text(sheet, i, 2, source, self.f["text"])
        row = len(rows) + 1
        if r.get("grid_ef_tco2_per_mwh") is None:
            self.book.define_name("em_ef", "=0")
        avoided = _number(r.get("avoided_tco2e_per_year"))
        base_formula = {
            "grid_power": "=in_generation*em_ef",
        }.get(method or "")
        self.text(sheet, row, 0, t("avoided_year", lang) + " [tCO2e/yr]", self.f["label"])
        if base_formula and r.get("avoided_tco2e_per_year") is not None:
            self._formula(sheet, row, 1, base_formula, self.f["num"], avoided)
            self.text(sheet, row, 2, "= generation × grid factor (ACM0002 / TOOL07)")
        else:
            sheet.write_number(row, 1, avoided, self.f["num"])
            self.text(
                sheet,
                row,
                2,
                f"computed by greenscreen ({method or 'no method'}); method notes: README",
            )
        self.name("em_avoided", sheet, row, 1)
        row += 1
        cod = r.get("cod")
        f1 = _number(r.get("first_year_fraction"), 1.0)  # the engine's, not recomputed
        self.text(sheet, row, 0, t("f1", lang), self.f["label"])
        sheet.write_number(row, 1, f1, self.f["ratio"])
        self.text(sheet, row, 2, f"cod = {cod}")
        self.name("em_f1", sheet, row, 1)
        row += 1
        lifetime = (
            "=IF(in_life>0,em_avoided*(em_f1+IF(in_degradation=0,in_life-1,"
            "(1-in_degradation)*(1-(1-in_degradation)^(in_life-1))/in_degradation)"
            "+(1-em_f1)*(1-in_degradation)^in_life),0)"
        )
        self.text(sheet, row, 0, t("avoided_life", lang) + " [tCO2e]", self.f["label"])
        self._formula(
            sheet, row, 1, lifetime, self.f["num"], _number(r.get("avoided_tco2e_lifetime"))
        )
        self.text(sheet, row, 2, "E·(f1 + Σₖ₌₁ᴺ⁻¹ rᵏ + (1 − f1)·rᴺ), r = 1 − degradation")
        self.name("em_lifetime", sheet, row, 1)
        row += 1
        self.text(sheet, row, 0, t("share", lang), self.f["label"])
        self._formula(
            sheet, row, 1, "=in_debt_share", self.f["pct"], _number(r.get("attributable_share"))
        )
        self.text(sheet, row, 2, "PCAF project finance: loan / total investment, at most 1")
        row += 1
        self.text(sheet, row, 0, t("attributable", lang) + " [tCO2e/yr]", self.f["label"])
        self._formula(
            sheet,
            row,
            1,
            "=em_avoided*in_debt_share",
            self.f["num"],
            _number(r.get("attributable_tco2e_per_year")),
        )
        self.name("em_attributable", sheet, row, 1)
        row += 1
        flags = self.view["emissions"]["flags"]
        self.text(sheet, row, 0, t("flags", lang), self.f["label"])
        self.text(sheet, row, 1, "; ".join(flags) if flags else "—", self.f["text"])

    def _subsidies(self, sheet: Any) -> _Payments:
        """The awards, their amounts as formulas and the committed payments by year (for the
        CashFlow sheet's subsidies line)."""
        lang = self.lang
        awards = (
            self.result.subsidies.awards.filter(pl.col("project_id") == self.pid)
            if self.result.subsidies
            else pl.DataFrame()
        )
        schedule = (
            self.result.subsidies.schedule.filter(pl.col("project_id") == self.pid)
            if self.result.subsidies
            else pl.DataFrame()
        )
        heads = [
            t("programme", lang),
            t("award", lang),
            t("status", lang),
            t("base", lang),
            t("rate", lang),
            t("cap", lang),
            t("gross", lang),
            t("final", lang),
            t("reasons", lang),
            t("clause", lang),
        ]
        sheet.write_row(0, 0, heads, self.f["h"])
        sheet.set_column(0, 1, 22)
        sheet.set_column(2, 7, 14)
        sheet.set_column(8, 9, 50)
        committed: list[str] = []
        periods = self._periods()
        pay_col0 = 11
        sheet.write_string(0, pay_col0 - 1, t("payments", lang), self.f["h"])
        for t_index in range(periods):
            sheet.write_number(0, pay_col0 + t_index, t_index, self.f["h"])
        for i, rec in enumerate(awards.iter_rows(named=True) if awards.height else [], start=1):
            self.text(sheet, i, 0, rec["programme"])
            self.text(sheet, i, 1, rec["award"])
            self.text(sheet, i, 2, status_text(rec["status"], lang))
            sheet.write_number(i, 3, _number(rec["base"]), self.f["input"])
            sheet.write_number(i, 4, _number(rec["rate"]), self.f["input"])
            cap = rec["cap"]
            capped = not (cap is None or (isinstance(cap, float) and math.isnan(cap)))
            if capped:
                sheet.write_number(i, 5, float(cap), self.f["input"])
            gross = f"=D{i + 1}*E{i + 1}"
            self._formula(sheet, i, 6, gross, self.f["money"], rec["gross_amount"])
            # the gross calculation stays visible; the final amount is the award's only when
            # eligible, nothing when not, and undecided (blank) while evidence is missing
            if rec["status"] == "eligible":
                final = f"=MIN(G{i + 1},F{i + 1})" if capped else f"=G{i + 1}"
                self._formula(sheet, i, 7, final, self.f["money"], rec["final_amount"])
            elif rec["status"] == "not_eligible":
                sheet.write_number(i, 7, 0.0, self.f["money"])
            self.text(sheet, i, 8, rec["reasons"], self.f["text"])
            self.text(sheet, i, 9, rec["clause"], self.f["text"])
            paid = schedule.filter(
                (pl.col("programme") == rec["programme"]) & (pl.col("award") == rec["award"])
            )
            if (
                rec["status"] == "eligible"
                and rec["programme_kind"] == "subsidy"
                and not rec["up_to"]
            ):
                committed.append(f"H{i + 1}")
                for pay in paid.iter_rows(named=True):
                    offset = pay["year_index"] + (
                        self._construction() if pay["start"] == "cod" else 0
                    )
                    amount = _number(rec["final_amount"])
                    share = pay["amount"] / amount if amount else 0.0
                    if offset < periods:
                        col = pay_col0 + offset
                        self._formula(
                            sheet, i, col, f"=H{i + 1}*{share!r}", self.f["money"], pay["amount"]
                        )
        total_row = max(awards.height, 0) + 2
        self.text(sheet, total_row, 6, t("subsidy_total", lang), self.f["label"])
        formula = "=" + "+".join(committed) if committed else "=0"
        self._formula(
            sheet,
            total_row,
            7,
            formula,
            self.f["bold_money"],
            _number(self.row.get("subsidy_total")),
        )
        self.name("sub_total", sheet, total_row, 7)
        return _Payments(sheet.name, 1, max(awards.height, 1), pay_col0)

    def _periods(self) -> int:
        return int(self._construction() + _number(self.row.get("operating_years")))

    def _construction(self) -> int:
        return int(max(_number(self.row.get("construction_years"), 1.0), 1.0))

    def _cashflow(self, sheet: Any, payments: _Payments) -> _Grid:
        """The model's lines (:data:`_LINES`) across the years, then the debt sizing and the
        metrics (:data:`_SIZING`, :data:`_METRICS`) in column B, named for the formulas."""
        lang, periods = self.lang, max(self._periods(), 1)
        sheet.set_column(0, 0, 34)
        sheet.set_column(1, 2, 14)
        sheet.set_column(_FIRST_YEAR_COL, _FIRST_YEAR_COL + periods, 13)
        sheet.write_string(0, 0, f"{self.pid}", self.f["title"])
        rows = {line.key: 2 + i for i, line in enumerate(_LINES)}
        grid = _Grid(sheet.name, rows, _FIRST_YEAR_COL + periods - 1)
        for line in _LINES:
            self.text(sheet, rows[line.key], 0, t(line.key, lang), self.f["label"])
        sheet.write_string(1, 0, t("year", lang), self.f["h"])
        per_year, sizing = self.workings
        for i in range(periods):
            col, fields = _FIRST_YEAR_COL + i, {"t": i, "payments": payments.year(i)}
            for line in _LINES:
                formula = grid.formula(
                    line.first if i == 0 and line.first else line.formula, col, **fields
                )
                values = per_year.get(line.engine or line.key)
                value = values[i] if values is not None and i < len(values) else None
                self._formula(
                    sheet, rows[line.key], col, formula, self.f[line.fmt], value, missing=""
                )
        row = len(_LINES) + 3
        self.text(sheet, row, 0, t("key_metrics", lang), self.f["h"])
        figures = [(f, sizing.get(f.engine)) for f in _SIZING]
        figures += [(f, self.row.get(f.engine)) for f in _METRICS]
        for figure, value in figures:
            row += 1
            formula = grid.formula(figure.formula, 1, guess=repr(_number(value, 0.1)))
            self.text(sheet, row, 0, _label(figure.label, lang), self.f["label"])
            self._formula(sheet, row, 1, formula, self.f[figure.fmt], value, missing=_NA)
            self.name(figure.key, sheet, row, 1)
        for label, column in _ENGINE_ONLY:
            row += 1
            self.text(sheet, row, 0, t(label, lang), self.f["label"])
            sheet.write_number(row, 1, _number(self.row.get(column)), self.f["num"])
        sheet.freeze_panes(2, _FIRST_YEAR_COL)
        return grid

    @cached_property
    def workings(self) -> tuple[dict[str, Any], dict[str, float]]:
        """The engine's model of this project, line by line (the formulas' cached values)."""
        if self.result.appraisal is None:
            return {}, {}
        return self.result.appraisal.workings(self.pid)

    def _formula(
        self,
        sheet: Any,
        row: int,
        col: int,
        formula: str,
        fmt: Any,
        value: Any,
        missing: str | None = None,
    ) -> None:
        """A live formula with the engine's figure as its cached result, so a viewer that does
        not recalculate on load (LibreOffice by default, Excel's protected view, previews,
        ``soffice --convert-to pdf``) shows the engine's number. ``missing`` is the text the
        formula yields where the engine has no figure ("n/a", or "" for a blank)."""
        number = _number(value, math.nan)
        if not self.cached_values:
            sheet.write_formula(row, col, formula, fmt)
        elif not math.isnan(number):
            sheet.write_formula(row, col, formula, fmt, number)
        elif missing is not None:
            sheet.write_formula(row, col, formula, fmt, missing)
        else:
            sheet.write_formula(row, col, formula, fmt)

    def _taxonomy(self, sheet: Any) -> None:
        lang = self.lang
        heads = [
            t("rulebook", lang),
            t("item", lang),
            t("criterion", lang),
            t("result", lang),
            t("value_seen", lang),
            t("threshold", lang),
            t("clause", lang),
            t("verification", lang),
        ]
        sheet.write_row(0, 0, heads, self.f["h"])
        widths = [16, 12, 24, 10, 36, 44, 50, 12]
        for i, w in enumerate(widths):
            sheet.set_column(i, i, w)
        decisions = self.result.decisions.filter(pl.col("project_id") == self.pid).sort(
            "rulebook", "selected", descending=[False, True], maintain_order=True
        )
        row = 1
        for rec in decisions.iter_rows(named=True):
            for col, key in enumerate(
                (
                    "rulebook",
                    "item",
                    "criterion",
                    "result",
                    "value",
                    "threshold",
                    "clause",
                    "verification",
                )
            ):
                self.text(sheet, row, col, rec[key], self.f["text"])
            row += 1
        row += 1
        self.text(sheet, row, 0, t("missing", lang), self.f["h"])
        for book in self.result.rulebooks:
            missing = self.row.get(f"{book.id}__missing")
            if missing:
                row += 1
                self.text(sheet, row, 0, book.id)
                self.text(sheet, row, 1, ", ".join(missing), self.f["text"])
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, max(decisions.height, 1), len(heads) - 1)

    def _requests(self, sheet: Any) -> None:
        """The evidence to request from the borrower (the rows of requests.xlsx for this
        project, with the field id the answer fills)."""
        lang = self.lang
        heads = ["#", t("question", lang), t("needed_by", lang), "field"]
        sheet.write_row(0, 0, heads, self.f["h"])
        sheet.set_column(0, 0, 5)
        sheet.set_column(1, 1, 70)
        sheet.set_column(2, 2, 60)
        sheet.set_column(3, 3, 30)
        for i, rec in enumerate(self.view["requests"], start=1):
            sheet.write_number(i, 0, i)
            self.text(sheet, i, 1, rec["question"], self.f["text"])
            self.text(sheet, i, 2, rec["needed_by"], self.f["text"])
            self.text(sheet, i, 3, rec["field"])
        if not self.view["requests"]:
            self.text(sheet, 1, 1, t("nothing_to_request", lang))
        sheet.freeze_panes(1, 0)

    def _sources(self, sheet: Any) -> None:
        sheet.set_column(0, 0, 28)
        sheet.set_column(1, 1, 90)
        sheet.write_row(0, 0, [t("metric", self.lang), t("value", self.lang)], self.f["h"])
        for i, (label, value) in enumerate(self.view["sources"], start=1):
            self.text(sheet, i, 0, label, self.f["label"])
            self.text(sheet, i, 1, value, self.f["text"])

    def _summary(self, sheet: Any, grid: _Grid) -> None:
        r, lang = self.row, self.lang
        sheet.set_column(0, 0, 42)
        sheet.set_column(1, 1, 26)
        sheet.set_column(2, 3, 12)
        sheet.set_column(4, 4, 34)
        sheet.set_column(5, 5, 70)
        sheet.write_string(0, 0, t("title", lang), self.f["title"])
        for i, (label, value) in enumerate(self.view["facts"][:4], start=2):
            self.text(sheet, i, 0, label, self.f["label"])
            self.text(sheet, i, 1, value)
        row = 7
        heads = [t("rulebook", lang), t("status", lang), t("item", lang), t("applies", lang)]
        sheet.write_row(row, 0, heads + [t("missing", lang), t("source", lang)], self.f["h"])
        for decision in self.view["decisions"]:
            row += 1
            self.text(sheet, row, 0, decision["id"])
            status = decision["status_text"]
            if decision["sc_text"]:  # EU: the substantial-contribution result beside it
                status = f"{status} ({decision['sc_text']})"
            self.text(sheet, row, 1, status)
            self.text(sheet, row, 2, decision["item"])
            self.text(sheet, row, 3, t("yes" if decision["applies"] else "no", lang))
            self.text(sheet, row, 4, "; ".join(decision["missing_labels"]))
            self.text(sheet, row, 5, f"{decision['title']} ({decision['version']})")
        row += 2
        sheet.write_row(row, 0, [t("metric", lang), t("value", lang)], self.f["h"])
        metrics = [
            (
                t("avoided_year", lang) + " [tCO2e/yr]",
                "=em_avoided",
                "num",
                r.get("avoided_tco2e_per_year"),
            ),
            (
                t("avoided_life", lang) + " [tCO2e]",
                "=em_lifetime",
                "num",
                r.get("avoided_tco2e_lifetime"),
            ),
            (
                t("attributable", lang) + " [tCO2e/yr]",
                "=em_attributable",
                "num",
                r.get("attributable_tco2e_per_year"),
            ),
            (t("subsidy_total", lang), "=sub_total", "money", r.get("subsidy_total")),
            (t("subsidy_potential", lang), "", "money", r.get("subsidy_potential")),
            (t("npv", lang), "=cf_npv", "money", r.get("npv")),
            (t("project_irr", lang), "=cf_irr", "pct", r.get("project_irr")),
            (t("equity_irr", lang), "=cf_equity_irr", "pct", r.get("equity_irr")),
            (t("min_dscr", lang), "=cf_min_dscr", "ratio", r.get("min_dscr")),
            (t("llcr", lang), "=cf_llcr", "ratio", r.get("llcr")),
            (t("lcoe", lang), "=cf_lcoe", "num", r.get("lcoe")),
        ]
        for label, formula, kind, value in metrics:
            row += 1
            self.text(sheet, row, 0, label, self.f["label"])
            number = _number(value, float("nan"))
            if formula.startswith("=em_") and r.get("avoided_tco2e_per_year") is None:
                self.text(sheet, row, 1, "n/a")
                self.text(sheet, row, 4, self.view["emissions"]["note"])
            elif not formula:  # a figure of the results with no workings in this pack
                sheet.write_number(row, 1, _number(value), self.f[kind])
            else:
                self._formula(sheet, row, 1, formula, self.f[kind], number, missing=_NA)
        self._charts(sheet, row + 2, grid)

    def _charts(self, sheet: Any, row: int, grid: _Grid) -> None:
        """The cash flows and the DSCR by year, from the CashFlow sheet's lines."""
        if grid.last_col < _FIRST_YEAR_COL:
            return
        ref = grid.series
        categories = ref("year")
        chart = self.book.add_chart({"type": "column"})
        for key in ("project_cf", "cfads", "debt_service"):
            chart.add_series(
                {"name": t(key, self.lang), "categories": categories, "values": ref(key)}
            )
        chart.set_title({"name": t("chart_cashflow", self.lang)})
        chart.set_x_axis({"label_position": "low", "name": t("year", self.lang)})
        chart.set_y_axis({"num_format": self.f["money"].num_format})
        chart.set_legend({"position": "bottom"})
        chart.set_size({"width": 720, "height": 320})
        sheet.insert_chart(row, 0, chart)
        dscr = self.book.add_chart({"type": "line"})
        dscr.add_series(
            {"name": t("dscr", self.lang), "categories": categories, "values": ref("dscr")}
        )
        dscr.set_title({"name": t("chart_dscr", self.lang)})
        dscr.set_x_axis({"label_position": "low", "name": t("year", self.lang)})
        dscr.set_y_axis({"num_format": "0.00"})
        dscr.set_legend({"none": True})
        dscr.set_size({"width": 520, "height": 320})
        sheet.insert_chart(row, 4, dscr)

    def close(self) -> None:
        cashflow = self.titles["cashflow"]
        for sheet in self.book.worksheets():  # A4 landscape, labelled footer
            sheet.set_paper(9)
            sheet.set_landscape()
            if sheet.name == cashflow:
                # the years run across as many pages as they need, one page tall, with the
                # row labels and the year header repeated on each
                sheet.fit_to_pages(0, 1)
                sheet.repeat_columns(0, _FIRST_YEAR_COL - 1)
                sheet.repeat_rows(0, 1)
            else:
                sheet.fit_to_pages(1, 0)
            sheet.set_footer(f"&L{self.pid} · greenscreen {__version__}&R&P / &N")
        self.book.close()


def write_excel_pack(
    result: ScreenResult,
    project_id: str,
    path: str | Path,
    *,
    lang: Lang = "en",
    cached_values: bool = True,
) -> Path:
    """Write the appraisal workbook of one screened project.

    Parameters
    ----------
    result
        A :class:`greenscreen.run.ScreenResult` that contains the project.
    project_id
        The project to write.
    path
        Output ``.xlsx`` path.
    lang
        ``en`` or ``zh`` (Chinese labels; money shown in 万 on the cash-flow sheet).
    cached_values
        Store the engine's values as the formulas' cached results (default). Tests turn it
        off to prove the formulas alone reproduce the engine.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    pack = _Pack(result, project_id, path, lang, cached_values)
    pack.build()
    pack.close()
    return path
