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
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import xlsxwriter
from xlsxwriter.utility import xl_col_to_name, xl_rowcol_to_cell

from greenscreen import __version__
from greenscreen.report.labels import Lang, status_text, t
from greenscreen.report.view import currency_label, project_view

if TYPE_CHECKING:
    from greenscreen.run import ScreenResult

_FIXED_TIME = dt.datetime(2025, 1, 1)  # document properties: byte-identical output
_FIRST_YEAR_COL = 3  # column D holds year t = 0 on the CashFlow sheet
_NA = "n/a"  # what a metric formula yields where the engine has no figure
# CashFlow lines whose engine array has another name
_ENGINE_LINE = {"generation": "generation_mwh"}
_PROFILES = {"annuity": 1, "equal_principal": 2, "sculpted": 3}


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
        self.names: dict[str, str] = {}
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
    def name(self, key: str, sheet: str, row: int, col: int) -> str:
        """Define a workbook name for a cell and remember it."""
        ref = f"='{sheet}'!{xl_rowcol_to_cell(row, col, row_abs=True, col_abs=True)}"
        self.book.define_name(key, ref)
        self.names[key] = ref
        return key

    @staticmethod
    def number(value: Any, default: float = 0.0) -> float:
        if value is None:
            return default
        try:
            number = float(value)
        except (TypeError, ValueError):
            return default
        return default if math.isnan(number) or math.isinf(number) else number

    def text(self, sheet: Any, row: int, col: int, value: Any, fmt: Any = None) -> None:
        """Pipeline text is always a string cell (never a formula, link or number)."""
        sheet.write_string(row, col, "" if value is None else str(value), fmt)

    # -- sheets ----------------------------------------------------------------------------
    def build(self) -> None:
        names = {
            k: t(f"sheet_{k}", self.lang)
            for k in (
                "summary",
                "inputs",
                "cashflow",
                "emissions",
                "taxonomy",
                "subsidies",
                "requests",
                "sources",
            )
        }
        self.sheet_names = names
        summary = self.book.add_worksheet(names["summary"])
        inputs = self.book.add_worksheet(names["inputs"])
        cashflow = self.book.add_worksheet(names["cashflow"])
        emissions = self.book.add_worksheet(names["emissions"])
        taxonomy = self.book.add_worksheet(names["taxonomy"])
        subsidies = self.book.add_worksheet(names["subsidies"])
        requests = self.book.add_worksheet(names["requests"])
        sources = self.book.add_worksheet(names["sources"])
        self._inputs(inputs)
        self._emissions(emissions)
        self._subsidies(subsidies)
        self._cashflow(cashflow)
        self._taxonomy(taxonomy)
        self._requests(requests)
        self._sources(sources)
        self._summary(summary)

    def _inputs(self, sheet: Any) -> None:
        r, lang = self.row, self.lang
        cfg = self.config
        sheet.set_column(0, 0, 44)
        sheet.set_column(1, 1, 18)
        sheet.set_column(2, 3, 16)
        sheet.set_column(4, 4, 60)
        heads = [
            t("metric", lang),
            t("value", lang),
            t("unit", lang),
            t("verification", lang),
            t("source", lang),
        ]
        sheet.write_row(0, 0, heads, self.f["h"])
        generation = r.get("annual_generation_mwh")
        if (
            generation is None
            and r.get("capacity_mw") is not None
            and r.get("full_load_hours") is not None
        ):
            generation = r["capacity_mw"] * r["full_load_hours"]
        use_tariff = int(generation is not None and r.get("tariff_per_mwh") is not None)
        life = self.number(r.get("operating_years"))
        entries = [
            (
                "in_capex",
                "Total investment (capex)",
                r.get("total_investment"),
                self.currency,
                "input",
            ),
            ("in_loan", "Loan amount", r.get("loan_amount"), self.currency, "input"),
            (
                "in_rate",
                "Interest rate",
                r.get("interest_rate") if r.get("interest_rate") is not None else cfg.interest_rate,
                "fraction",
                "input",
            ),
            (
                "in_tenor",
                "Loan tenor (years, ≤ life)",
                min(self.number(r.get("loan_tenor_years")), life),
                "years",
                "input",
            ),
            ("in_grace", "Grace period (years)", r.get("grace_period_years"), "years", "input"),
            (
                "in_construction",
                "Construction years (≥ 1)",
                max(self.number(r.get("construction_years"), 1.0), 1.0),
                "years",
                "input",
            ),
            ("in_life", "Operating years", r.get("operating_years"), "years", "input"),
            (
                "in_generation",
                "Annual generation (year 1)",
                generation,
                "MWh/yr",
                "input / capacity × hours",
            ),
            ("in_tariff", "Tariff", r.get("tariff_per_mwh"), f"{self.currency}/MWh", "input"),
            (
                "in_use_tariff",
                "Revenue = generation × tariff (1) or annual revenue (0)",
                use_tariff,
                "1/0",
                "derived",
            ),
            (
                "in_revenue",
                "Annual revenue (when no tariff × generation)",
                r.get("annual_revenue"),
                f"{self.currency}/yr",
                "input",
            ),
            (
                "in_opex",
                "Opex (first operating year)",
                r.get("annual_opex"),
                f"{self.currency}/yr",
                "input",
            ),
            ("in_escalation", "Opex escalation", r.get("opex_escalation"), "fraction/yr", "input"),
            ("in_degradation", "Degradation", r.get("degradation_rate"), "fraction/yr", "input"),
            (
                "in_tax",
                "Income tax rate",
                r.get("tax_rate") if r.get("tax_rate") is not None else cfg.tax_rate,
                "fraction",
                "input / default 25 % (China CIT)",
            ),
            (
                "in_discount",
                "Discount rate",
                r.get("discount_rate") if r.get("discount_rate") is not None else cfg.discount_rate,
                "fraction",
                "input / bank assumption",
            ),
            (
                "in_profile",
                "Debt profile: 1 annuity, 2 equal principal, 3 sculpted",
                _PROFILES[cfg.debt_profile],
                "1/2/3",
                "run setting",
            ),
            (
                "in_target_dscr",
                "Target DSCR (sculpted)",
                cfg.target_dscr,
                "×",
                "run setting (bank assumption)",
            ),
            (
                "in_carbon_price",
                "Carbon price",
                cfg.carbon_price,
                f"{self.currency}/tCO2e",
                "run setting; CEA close 2023-07-30: 61.05 (seed 002)",
            ),
        ]
        self.input_rows: dict[str, int] = {}
        for i, (key, label, value, unit, source) in enumerate(entries, start=1):
            self.text(sheet, i, 0, label, self.f["label"])
            sheet.write_number(i, 1, self.number(value), self.f["input"])
            self.text(sheet, i, 2, unit)
            self.text(sheet, i, 3, "input" if value is not None else "missing → 0")
            self.text(sheet, i, 4, source, self.f["text"])
            self.name(key, self.sheet_names["inputs"], i, 1)
            self.input_rows[key] = i
        row = len(entries) + 1
        # derived inputs, as formulas
        _, sizing = self.workings
        derived = [
            (
                "in_debt_share",
                "Debt share of capex",
                "=IF(in_capex>0,MIN(in_loan/in_capex,1),0)",
                "fraction",
                sizing.get("debt_share"),
            ),
            (
                "in_amort_years",
                "Amortising years",
                "=MAX(in_tenor-MIN(in_grace,in_tenor),0)",
                "years",
                sizing.get("amort_years"),
            ),
        ]
        for key, label, formula, unit, value in derived:
            self.text(sheet, row, 0, label, self.f["label"])
            self._formula(sheet, row, 1, formula, self.f["num"], value)
            self.text(sheet, row, 2, unit)
            self.text(sheet, row, 3, "formula")
            self.name(key, self.sheet_names["inputs"], row, 1)
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
        self.em_rows: dict[str, int] = {}
        for i, (key, label, value, source) in enumerate(rows, start=1):
            self.text(sheet, i, 0, label, self.f["label"])
            if isinstance(value, (int, float)) and value is not None:
                sheet.write_number(i, 1, float(value), self.f["input"])
                self.name(key, self.sheet_names["emissions"], i, 1)
            else:
                self.text(sheet, i, 1, "" if value is None else value, self.f["input_text"])
            self.text(sheet, i, 2, source, self.f["text"])
            self.em_rows[key] = i
        row = len(rows) + 1
        if r.get("grid_ef_tco2_per_mwh") is None:
            self.book.define_name("em_ef", "=0")
        avoided = self.number(r.get("avoided_tco2e_per_year"))
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
        self.name("em_avoided", self.sheet_names["emissions"], row, 1)
        row += 1
        cod = r.get("cod")
        f1 = self.number(r.get("first_year_fraction"), 1.0)  # the engine's, not recomputed
        self.text(sheet, row, 0, t("f1", lang), self.f["label"])
        sheet.write_number(row, 1, f1, self.f["ratio"])
        self.text(sheet, row, 2, f"cod = {cod}")
        self.name("em_f1", self.sheet_names["emissions"], row, 1)
        row += 1
        lifetime = (
            "=IF(in_life>0,em_avoided*(em_f1+IF(in_degradation=0,in_life-1,"
            "(1-in_degradation)*(1-(1-in_degradation)^(in_life-1))/in_degradation)"
            "+(1-em_f1)*(1-in_degradation)^in_life),0)"
        )
        self.text(sheet, row, 0, t("avoided_life", lang) + " [tCO2e]", self.f["label"])
        self._formula(
            sheet, row, 1, lifetime, self.f["num"], self.number(r.get("avoided_tco2e_lifetime"))
        )
        self.text(sheet, row, 2, "E·(f1 + Σₖ₌₁ᴺ⁻¹ rᵏ + (1 − f1)·rᴺ), r = 1 − degradation")
        self.name("em_lifetime", self.sheet_names["emissions"], row, 1)
        row += 1
        self.text(sheet, row, 0, t("share", lang), self.f["label"])
        self._formula(
            sheet, row, 1, "=in_debt_share", self.f["pct"], self.number(r.get("attributable_share"))
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
            self.number(r.get("attributable_tco2e_per_year")),
        )
        self.name("em_attributable", self.sheet_names["emissions"], row, 1)
        row += 1
        flags = self.view["emissions"]["flags"]
        self.text(sheet, row, 0, t("flags", lang), self.f["label"])
        self.text(sheet, row, 1, "; ".join(flags) if flags else "—", self.f["text"])

    def _subsidies(self, sheet: Any) -> None:
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
        self.subsidy_rows: list[tuple[int, pl.DataFrame]] = []
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
            sheet.write_number(i, 3, self.number(rec["base"]), self.f["input"])
            sheet.write_number(i, 4, self.number(rec["rate"]), self.f["input"])
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
                    amount = self.number(rec["final_amount"])
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
            self.number(self.row.get("subsidy_total")),
        )
        self.name("sub_total", self.sheet_names["subsidies"], total_row, 7)
        self.sub_pay = (1, max(awards.height, 1), pay_col0)

    def _periods(self) -> int:
        return int(self._construction() + self.number(self.row.get("operating_years")))

    def _construction(self) -> int:
        return int(max(self.number(self.row.get("construction_years"), 1.0), 1.0))

    def _cashflow(self, sheet: Any) -> None:
        lang, periods = self.lang, max(self._periods(), 1)
        sheet.set_column(0, 0, 34)
        sheet.set_column(1, 2, 14)
        sheet.set_column(_FIRST_YEAR_COL, _FIRST_YEAR_COL + periods, 13)
        sheet.write_string(0, 0, f"{self.pid}", self.f["title"])
        per_year, sizing = self.workings
        keys = [
            "year",
            "building",
            "operating",
            "op_year",
            "capex",
            "draw",
            "idc",
            "con_balance",
            "generation",
            "energy_revenue",
            "carbon_revenue",
            "subsidies",
            "revenue",
            "opex",
            "ebitda",
            "depreciation",
            "ebit",
            "tax",
            "cfads",
            "in_loan",
            "amortising",
            "sculpt_target",
            "opening",
            "interest",
            "principal",
            "debt_service",
            "closing",
            "dscr",
            "project_cf_pre",
            "project_cf",
            "shield",
            "equity_cf",
            "discount",
        ]
        row_of = {key: 2 + i for i, key in enumerate(keys)}
        self.cf_rows = row_of
        last_col = _FIRST_YEAR_COL + periods - 1
        sheet_name = self.sheet_names["cashflow"]

        def rng(key: str) -> str:
            r = row_of[key]
            return f"${xl_col_to_name(_FIRST_YEAR_COL)}${r + 1}:${xl_col_to_name(last_col)}${r + 1}"

        def cell(key: str, col: int) -> str:
            return f"{xl_col_to_name(col)}{row_of[key] + 1}"

        pay_first, pay_last, pay_col0 = self.sub_pay
        subs = self.sheet_names["subsidies"]
        for key, r in row_of.items():
            self.text(sheet, r, 0, t(key, lang), self.f["label"])
        # totals column header
        sheet.write_string(1, 0, t("year", lang), self.f["h"])
        for i in range(periods):
            col = _FIRST_YEAR_COL + i
            c = lambda key, col=col: cell(key, col)  # noqa: E731
            p = lambda key, col=col: cell(key, col - 1)  # noqa: E731
            first = i == 0
            formulas = {
                "year": f"={i}",
                "building": f"=IF({c('year')}<in_construction,1,0)",
                "operating": (
                    f"=IF(AND({c('year')}>=in_construction,{c('year')}<in_construction+in_life),1,0)"
                ),
                "op_year": f"=IF({c('operating')}=1,{c('year')}-in_construction,0)",
                "capex": f"={c('building')}*in_capex/in_construction",
                "draw": f"={c('capex')}*in_debt_share",
                "idc": ("=0" if first else f"=IF({c('building')}=1,{p('con_balance')}*in_rate,0)"),
                "con_balance": (
                    f"={c('draw')}"
                    if first
                    else f"=IF({c('building')}=1,"
                    f"{p('con_balance')}+{c('idc')}+{c('draw')},{p('con_balance')})"
                ),
                "generation": (
                    f"={c('operating')}*in_generation*(1-in_degradation)^{c('op_year')}"
                ),
                "energy_revenue": (
                    f"=IF(in_use_tariff=1,{c('generation')}*in_tariff,{c('operating')}*in_revenue)"
                ),
                "carbon_revenue": (
                    f"={c('operating')}*em_attributable*(1-in_degradation)^{c('op_year')}*in_carbon_price"
                ),
                "subsidies": (
                    f"=SUM('{subs}'!{xl_col_to_name(pay_col0 + i)}{pay_first + 1}"
                    f":{xl_col_to_name(pay_col0 + i)}{pay_last + 1})"
                ),
                "revenue": (
                    f"={c('operating')}*({c('energy_revenue')}+{c('carbon_revenue')})+{c('subsidies')}"
                ),
                "opex": (f"={c('operating')}*in_opex*(1+in_escalation)^{c('op_year')}"),
                "ebitda": f"={c('revenue')}-{c('opex')}",
                "depreciation": (
                    f"=IF(in_life>0,{c('operating')}*(in_capex+SUM({rng('idc')}))/in_life,0)"
                ),
                "ebit": f"={c('ebitda')}-{c('depreciation')}",
                "tax": f"=MAX({c('ebit')},0)*in_tax*{c('operating')}",
                "cfads": f"={c('operating')}*({c('ebitda')}-{c('tax')})",
                "in_loan": f"=IF(AND({c('operating')}=1,{c('op_year')}<in_tenor),1,0)",
                "amortising": (
                    f"=IF(AND({c('in_loan')}=1,{c('op_year')}>=MIN(in_grace,in_tenor)),1,0)"
                ),
                "sculpt_target": f"={c('amortising')}*MAX({c('cfads')},0)/in_target_dscr",
                "opening": (
                    f"=IF({c('operating')}*({c('op_year')}=0)=1,cf_debt,"
                    f"{'0' if first else p('closing')})"
                ),
                "interest": f"={c('in_loan')}*{c('opening')}*in_rate",
                "principal": (
                    f"=IF({c('in_loan')}=1,IF({c('op_year')}=in_tenor-1,{c('opening')},"
                    f"CHOOSE(in_profile,"
                    f"{c('amortising')}*MIN(MAX(cf_annuity-{c('interest')},0),{c('opening')}),"
                    f"{c('amortising')}*MIN(cf_debt/MAX(in_amort_years,1),{c('opening')}),"
                    f"MIN(MAX(IF({c('amortising')}=1,{c('sculpt_target')}*cf_scale,{c('interest')})-{c('interest')},0),{c('opening')}))),0)"
                ),
                "debt_service": f"={c('interest')}+{c('principal')}",
                "closing": f"={c('opening')}-{c('principal')}",
                "dscr": f'=IF({c("debt_service")}>0,{c("cfads")}/{c("debt_service")},"")',
                "project_cf_pre": f"=-{c('capex')}+{c('ebitda')}",
                "project_cf": f"={c('project_cf_pre')}-{c('tax')}",
                "shield": (f"=MIN({c('interest')},MAX({c('ebit')},0))*in_tax*{c('operating')}"),
                "equity_cf": (
                    f"=-{c('capex')}*(1-in_debt_share)+IF({c('operating')}=1,{c('cfads')}-{c('debt_service')}+{c('shield')},{c('ebitda')})"
                ),
                "discount": f"=(1+in_discount)^-{c('year')}",
            }
            for key, formula in formulas.items():
                fmt = (
                    self.f["ratio"]
                    if key in ("dscr", "discount")
                    else self.f["int"]
                    if key in ("year", "building", "operating", "op_year", "in_loan", "amortising")
                    else self.f["money"]
                )
                values = per_year.get(_ENGINE_LINE.get(key, key))
                value = values[i] if values is not None and i < len(values) else None
                # no DSCR without debt service: the formula's "" (blank), not 0
                self._formula(sheet, row_of[key], col, formula, fmt, value, missing="")
        # debt sizing and metrics (column B), named for the formulas above
        m = self.row
        base = len(row_of) + 4
        self.text(sheet, base - 1, 0, t("key_metrics", lang), self.f["h"])
        con_end = f"INDEX({rng('con_balance')},in_construction)"
        pv_target = f"SUMPRODUCT({rng('sculpt_target')},1/(1+in_rate)^({rng('op_year')}+1))"
        total_cost = f"(in_capex+SUM({rng('idc')}))"
        metric_rows = [
            (
                "cf_sized",
                "Debt sized (before cap)",
                f"=IF(in_profile=3,{pv_target},{con_end})",
                "money",
                sizing.get("sized"),
            ),
            (
                "cf_debt",
                t("debt", lang),
                f"=MIN(cf_sized,{total_cost})",
                "money",
                sizing.get("debt"),
            ),
            (
                "cf_capped",
                "Debt capped at cost (1/0)",
                f"=IF(cf_sized>{total_cost}+0.000001,1,0)",
                "int",
                sizing.get("capped"),
            ),
            (
                "cf_scale",
                "Sculpting scale",
                "=IF(AND(cf_capped=1,cf_sized>0),cf_debt/cf_sized,1)",
                "ratio",
                sizing.get("scale"),
            ),
            (
                "cf_annuity",
                "Annuity payment",
                "=IF(in_amort_years>0,IF(in_rate>0,cf_debt*in_rate/(1-(1+in_rate)^-in_amort_years),cf_debt/in_amort_years),0)",
                "money",
                sizing.get("annuity"),
            ),
            (
                "cf_npv",
                t("npv", lang),
                f"=SUMPRODUCT({rng('project_cf')},{rng('discount')})",
                "money",
                m.get("npv"),
            ),
            (
                "cf_irr",
                t("project_irr", lang),
                self._irr(rng("project_cf"), m.get("project_irr")),
                "pct",
                m.get("project_irr"),
            ),
            (
                "cf_irr_pre",
                t("project_irr_pretax", lang),
                self._irr(rng("project_cf_pre"), m.get("project_irr_pretax")),
                "pct",
                m.get("project_irr_pretax"),
            ),
            (
                "cf_equity_irr",
                t("equity_irr", lang),
                self._irr(rng("equity_cf"), m.get("equity_irr")),
                "pct",
                m.get("equity_irr"),
            ),
            (
                "cf_min_dscr",
                t("min_dscr", lang),
                f'=IF(COUNT({rng("dscr")})>0,MIN({rng("dscr")}),"n/a")',
                "ratio",
                m.get("min_dscr"),
            ),
            (
                "cf_avg_dscr",
                t("avg_dscr", lang),
                f'=IF(COUNT({rng("dscr")})>0,AVERAGE({rng("dscr")}),"n/a")',
                "ratio",
                m.get("avg_dscr"),
            ),
            (
                "cf_llcr",
                t("llcr", lang),
                f'=IF(cf_debt>0,SUMPRODUCT({rng("cfads")},{rng("in_loan")},1/(1+in_rate)^({rng("op_year")}+1))/cf_debt,"n/a")',
                "ratio",
                m.get("llcr"),
            ),
            (
                "cf_lcoe",
                t("lcoe", lang),
                f'=IF(SUMPRODUCT({rng("generation")},{rng("discount")})>0,SUMPRODUCT({rng("capex")}+{rng("opex")},{rng("discount")})/SUMPRODUCT({rng("generation")},{rng("discount")}),"n/a")',
                "num",
                m.get("lcoe"),
            ),
        ]
        self.metric_names = {}
        for i, (key, label, formula, kind, value) in enumerate(metric_rows):
            row = base + i
            self.text(sheet, row, 0, label, self.f["label"])
            self._formula(sheet, row, 1, formula, self.f[kind], value, missing=_NA)
            self.name(key, sheet_name, row, 1)
            self.metric_names[key] = label
        row = base + len(metric_rows)
        for label_key, column in (("breakeven", "breakeven_tariff"), ("payback", "payback_years")):
            self.text(sheet, row, 0, t(label_key, lang), self.f["label"])
            sheet.write_number(row, 1, self.number(m.get(column), 0.0), self.f["num"])
            row += 1
        sheet.freeze_panes(2, _FIRST_YEAR_COL)
        self.cf_last_col = last_col

    def _irr(self, cells: str, engine_value: Any) -> str:
        """IRR() seeded with the engine's IRR as the guess: spreadsheet IRR iterates from
        10 % and can fail on negative returns, the engine's value keeps it converging."""
        guess = self.number(engine_value, 0.1)
        return f'=IFERROR(IRR({cells},{guess!r}),"n/a")'

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
        number = self.number(value, math.nan)
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

    def _summary(self, sheet: Any) -> None:
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
        self.summary_rows: dict[str, int] = {}
        for label, formula, kind, value in metrics:
            row += 1
            self.text(sheet, row, 0, label, self.f["label"])
            number = self.number(value, float("nan"))
            if formula.startswith("=em_") and r.get("avoided_tco2e_per_year") is None:
                self.text(sheet, row, 1, "n/a")
                self.text(sheet, row, 4, self.view["emissions"]["note"])
            elif not formula:  # a figure of the results with no workings in this pack
                sheet.write_number(row, 1, self.number(value), self.f[kind])
                continue
            else:
                self._formula(sheet, row, 1, formula, self.f[kind], number, missing=_NA)
            self.summary_rows[formula[1:]] = row
        self._charts(sheet, row + 2)

    def _charts(self, sheet: Any, row: int) -> None:
        cf_sheet = self.sheet_names["cashflow"]
        first, last = _FIRST_YEAR_COL, self.cf_last_col
        if last < first:
            return

        def ref(key: str) -> list[Any]:
            r = self.cf_rows[key]
            return [cf_sheet, r, first, r, last]

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
        cashflow = self.sheet_names["cashflow"]
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
