"""The portfolio workbook of a batch run: results table, summary with live formulas, charts,
rejects and sources.

The results sheet is an Excel table (filters, frozen header, conditional formatting by status)
written by polars' ``DataFrame.write_excel`` into greenscreen's own xlsxwriter workbook.
xlsxwriter cannot write tables in ``constant_memory`` mode, so the workbook is built in memory:
about 1.1 GiB and 25 s for 100,000 projects (benchmarks/README.md). Above ``max_rows`` the
portfolio is not written (the Parquet results hold any size).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import xlsxwriter
from xlsxwriter.utility import xl_col_to_name

from greenscreen import __version__
from greenscreen._outputs import PORTFOLIO_MAX_ROWS
from greenscreen.report.labels import Lang, t
from greenscreen.rulebook import STATUSES

if TYPE_CHECKING:
    from greenscreen.run import ScreenResult

MAX_ROWS = PORTFOLIO_MAX_ROWS
_FILLS = {
    "aligned": "#C6EFCE",
    "eligible": "#C6EFCE",
    "insufficient_data": "#FFEB9C",
    "excluded": "#F8CBAD",
    "not_excluded": "#DCEDC8",
    "not_eligible": "#E7E6E6",
}
#: the workbook's fill for each status (:data:`greenscreen.rulebook.STATUSES`, in its order)
_STATUS_COLOURS = {status: _FILLS[status] for status in STATUSES}
#: the legacy and the current China catalogue: the migration a bank explains after 2025-10-01
CROSSWALK = ("cn_gbepc_2021", "cn_gfsp_2025")
_TOTALLED = ("loan_amount", "avoided_tco2e_per_year")


def _stable_sum(column: str) -> pl.Expr:
    """A sum the same in every run, to 1e-6: each value in millionths as an integer, added
    exactly (Int128), so the order a parallel group-by adds in cannot change the last digits.

    A float sum did (1926507891.155328 / …329 / …330 with 1, 2 or 3 threads on the same
    100,000 results; rounding the float total to 1e-6 does not help above ~1e9), so a
    workbook written twice could differ."""
    return (_millionths(column).sum().cast(pl.Float64) / 1e6).alias(column)


def _millionths(column: str) -> pl.Expr:
    """A column in millionths as an integer (Int128), for :func:`_stable_sum`."""
    return (pl.col(column).fill_nan(None) * 1e6).round().cast(pl.Int128, strict=False)


def status_totals(results: pl.LazyFrame, rulebooks: list[str]) -> pl.DataFrame:
    """Projects, loan amount and avoided emissions per rulebook × status.

    The figures green-loan statistics report; one aggregation over the results however
    large.

    Parameters
    ----------
    results : polars.LazyFrame
        The results (a scan of ``results.parquet`` will do).
    rulebooks : list of str
        Rulebook ids; those without a status column are skipped.

    Returns
    -------
    polars.DataFrame
        ``rulebook``, ``status``, ``projects``, ``loan_amount`` [currency] and
        ``avoided_tco2e_per_year`` [tCO2e/yr] (sums rounded to 1e-6, the same in every run).
    """
    present = set(results.collect_schema().names())
    books = [b for b in rulebooks if f"{b}__status" in present]
    if not books:
        return pl.DataFrame(
            schema={"rulebook": pl.String, "status": pl.String, "projects": pl.UInt32}
            | dict.fromkeys(_TOTALLED, pl.Float64)
        )
    totalled = [c for c in _TOTALLED if c in present]
    # one group-by over every rulebook's status together (the combinations are few), each
    # rulebook's totals then added up from its groups: the same integers, so the same sums;
    # measured at 1M projects and 7 rulebooks, 0.36 → 0.17 CPU s (one group-by each: 0.36)
    combinations = results.group_by(*dict.fromkeys(f"{b}__status" for b in books)).agg(
        pl.len().alias("projects"), *(_millionths(c).sum().alias(c) for c in totalled)
    )
    sums = [(pl.col(c).sum().cast(pl.Float64) / 1e6).alias(c) for c in totalled]
    return (
        pl.concat(
            [
                combinations.group_by(pl.col(f"{b}__status").alias("status"))
                .agg(pl.col("projects").sum().cast(pl.UInt32), *sums)
                .with_columns(pl.lit(b).alias("rulebook"))
                for b in books
            ],
            how="diagonal_relaxed",
        )
        .select("rulebook", "status", "projects", *totalled)
        .collect()
    )


def crosswalk(results: pl.LazyFrame) -> pl.DataFrame | None:
    """Projects and loan amount by legacy (2021) × current (2025) China catalogue status.

    Parameters
    ----------
    results : polars.LazyFrame

    Returns
    -------
    polars.DataFrame or None
        ``legacy``, ``current``, ``projects``, ``loan_amount`` [currency]; None when either
        catalogue was not screened.

    References
    ----------
    银发〔2025〕132号: the 2025 catalogue governs loans approved from 2025-10-01 [V].
    """
    legacy, current = (f"{b}__status" for b in CROSSWALK)
    present = set(results.collect_schema().names())
    if legacy not in present or current not in present:
        return None
    loans = [_stable_sum("loan_amount")] if ("loan_amount" in present) else []
    return (
        results.group_by(pl.col(legacy).alias("legacy"), pl.col(current).alias("current"))
        .agg(pl.len().alias("projects"), *loans)
        .sort("legacy", "current", nulls_last=True)
        .collect()
    )


_FRONT = [
    "project_id",
    "project_name",
    "borrower",
    "activity",
    "activity_source",
    "province",
    "approval_date",
    "capacity_mw",
    "total_investment",
    "loan_amount",
    "currency",
]
_BACK = [
    "avoided_tco2e_per_year",
    "attributable_tco2e_per_year",
    "ef_verification",
    "data_quality_score",
    "emissions_flags",
    "subsidy_total",
    "subsidy_total_max",
    "subsidy_potential",
    "relending_refinanceable",
    "npv",
    "project_irr",
    "irr_reason",
    "equity_irr",
    "min_dscr",
    "lcoe",
    "debt_capped",
]


def portfolio_columns(result: ScreenResult) -> list[str]:
    """The columns of the workbook's results sheet, in order.

    Parameters
    ----------
    result : ScreenResult

    Returns
    -------
    list of str
        Identification and size, per rulebook status and item (and GHG mark, SC result),
        then emissions, subsidies and credit metrics: those the results have.
    """
    columns = list(_FRONT)
    for book in result.rulebooks:
        columns += [f"{book.id}__status", f"{book.id}__item"]
        for extra in ("ghg_mark", "sc_met"):
            if f"{book.id}__{extra}" in result.results.columns:
                columns.append(f"{book.id}__{extra}")
    columns += _BACK
    return [c for c in columns if c in result.results.columns]


def write_portfolio(
    result: ScreenResult, path: str | Path, *, lang: Lang = "en", max_rows: int = MAX_ROWS
) -> Path | None:
    """Write ``portfolio.xlsx``, the batch workbook.

    An Excel table of the results with status colours, a summary of live COUNTIF/SUM
    formulas (written with their values), charts, the status and crosswalk tables, the
    rejects and the run's sources (versions and configuration).

    Parameters
    ----------
    result : ScreenResult
    path : str or pathlib.Path
    lang : {"en", "zh"}
    max_rows : int
        Above this many projects nothing is written.

    Returns
    -------
    pathlib.Path or None
        ``path``, or None when nothing was written.
    """
    results = result.results
    if results.height > max_rows:
        return None
    path = Path(path)
    columns = portfolio_columns(result)
    table = results.select(columns).with_columns(
        # lists and NaN do not belong in a spreadsheet cell: join lists, blank NaN
        [pl.col(c).list.join("; ") for c in columns if isinstance(results.schema[c], pl.List)]
        + [
            pl.col(c).fill_nan(None)
            for c in columns
            if results.schema[c] in (pl.Float64, pl.Float32)
        ]
    )
    book = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False})
    book.set_properties(
        {
            "title": "greenscreen portfolio",
            "author": "greenscreen",
            "created": dt.datetime(2025, 1, 1),
        }
    )
    summary = book.add_worksheet(t("sheet_summary", lang))
    name = "Results" if lang == "en" else "结果"
    status_columns = [c for c in columns if c.endswith("__status")]
    conditional: dict[str, Any] = {
        c: [
            {
                "type": "cell",
                "criteria": "==",
                "value": f'"{status}"',
                "format": {"bg_color": colour},
            }
            for status, colour in _STATUS_COLOURS.items()
        ]
        for c in status_columns
    }
    table.write_excel(
        workbook=book,
        worksheet=name,
        table_style="Table Style Light 9",
        table_name="results",
        freeze_panes=(1, 1),
        conditional_formats=conditional,  # type: ignore[arg-type]  # polars' Mapping key union
        float_precision=4,
        column_widths=_pixel_widths(table, decimals=4),  # type: ignore[arg-type]
        autofit=False,
    )
    _summary(book, summary, result, table, name, lang)
    _rejects(book, result, lang)
    _sources(book, result, lang)
    book.close()
    return path


def _pixel_widths(table: pl.DataFrame, *, decimals: int, most: int = 60) -> dict[str, int]:
    """Column widths in pixels (what polars' ``column_widths`` takes) fitting the header and
    the widest value as written: text by its characters (a CJK character counts two), numbers
    with thousands separators and ``decimals`` places; at most ``most`` characters."""
    chars: dict[str, int] = {}
    for name, dtype in table.schema.items():
        column = table.get_column(name)
        if dtype.is_numeric():
            top = column.abs().max() if column.null_count() < column.len() else 0
            digits = len(f"{int(float(top or 0)):,}") + 1  # type: ignore[arg-type]  # sign
            content = digits + (decimals + 1 if dtype.is_float() else 0)
        elif dtype == pl.Boolean:
            content = 5
        else:
            text = column.cast(pl.String)
            # UTF-8: 1 byte per ASCII character, 3 per CJK character drawn twice as wide
            wide = (text.str.len_chars() + (text.str.len_bytes() - text.str.len_chars()) // 2).max()
            content = int(wide or 0)  # type: ignore[arg-type]
        chars[name] = min(max(content, len(name)) + 2, most)
    return {name: 7 * width + 5 for name, width in chars.items()}  # Calibri 11: ~7 px a digit


def _summary(
    book: Any, sheet: Any, result: ScreenResult, table: pl.DataFrame, results_sheet: str, lang: Lang
) -> None:
    bold = book.add_format({"bold": True})
    head = book.add_format({"bold": True, "bg_color": "#1F4E79", "font_color": "#FFFFFF"})
    money = book.add_format({"num_format": "#,##0" if lang == "en" else '0\\.0,"万"'})
    number = book.add_format({"num_format": "#,##0"})
    sheet.set_column(0, 0, 46)
    sheet.set_column(1, 8, 16)
    sheet.set_paper(9)
    sheet.set_landscape()
    sheet.fit_to_pages(1, 0)
    sheet.write_string(
        0,
        0,
        f"greenscreen portfolio — {result.pipeline.source.name}",
        book.add_format({"bold": True, "font_size": 14}),
    )
    last = table.height + 1  # data rows 2 … last on the results sheet

    def column(name: str) -> str:
        letter = xl_col_to_name(table.columns.index(name))
        return f"'{results_sheet}'!${letter}$2:${letter}${max(last, 2)}"

    row = 2
    totals = [  # (label, column summed, format); "Projects" counts rows
        ("Projects", "project_id", number),
        ("Loan amount", "loan_amount", money),
        (t("avoided_year", lang) + " [tCO2e/yr]", "avoided_tco2e_per_year", number),
        (t("attributable", lang) + " [tCO2e/yr]", "attributable_tco2e_per_year", number),
        (t("subsidy_total", lang), "subsidy_total", money),
        (t("subsidy_potential", lang), "subsidy_potential", money),
        ("CERF refinanceable", "relending_refinanceable", money),
    ]
    # every formula carries its value (polars computes it) as the cached result: a viewer that
    # does not recalculate on load shows the totals, not zeros
    for label, name, fmt in totals:
        if name not in table.columns:
            continue
        value: float
        if name == "project_id":
            formula, value = f"=COUNTA({column(name)})", table.height
        else:
            formula = f"=SUM({column(name)})"
            value = float(table.select(_stable_sum(name)).item() or 0)
        sheet.write_string(row, 0, label, bold)
        sheet.write_formula(row, 1, formula if table.height else "=0", fmt, value or 0)
        row += 1
    # rulebook × status counts, as live COUNTIF formulas
    row += 1
    statuses = list(STATUSES)
    sheet.write_row(row, 0, [t("rulebook", lang), *statuses], head)
    first_count_row = row + 1
    books = [b for b in result.rulebooks if f"{b.id}__status" in table.columns]
    for book_ in books:
        row += 1
        sheet.write_string(row, 0, book_.id)
        counts = dict(table[f"{book_.id}__status"].value_counts().iter_rows())
        for j, status in enumerate(statuses, start=1):
            sheet.write_formula(
                row,
                j,
                f'=COUNTIF({column(f"{book_.id}__status")},"{status}")',
                number,
                counts.get(status, 0),
            )
    if books:
        chart = book.add_chart({"type": "bar", "subtype": "stacked"})
        for j, status in enumerate(statuses, start=1):
            chart.add_series(
                {
                    "name": status,
                    "categories": [sheet.name, first_count_row, 0, row, 0],
                    "values": [sheet.name, first_count_row, j, row, j],
                    "fill": {"color": _STATUS_COLOURS[status]},
                    "border": {"color": "#7F7F7F"},
                }
            )
        chart.set_title({"name": t("decisions", lang)})
        chart.set_size({"width": 640, "height": 320})
        sheet.insert_chart(2, 9, chart)
    row = _status_tables(book, sheet, result, table, column, row + 2, lang)
    # by activity and by province: live COUNTIF / SUMIF over the results table
    for key, title in (("activity", t("activity", lang)), ("province", t("province", lang))):
        if key not in table.columns:
            continue
        groups = (
            table.filter(pl.col(key).is_not_null())
            .group_by(key)
            .agg(
                pl.len().alias("projects"),
                _stable_sum("loan_amount"),
                _stable_sum("avoided_tco2e_per_year"),
            )
            .sort(key)
        )
        row += 2
        sheet.write_row(row, 0, [title, "projects", "loan amount", "avoided tCO2e/yr"], head)
        start = row + 1
        for value, projects, loans, avoided in groups.iter_rows():
            row += 1
            sheet.write_string(row, 0, str(value))
            cell = f"$A{row + 1}"
            sheet.write_formula(row, 1, f"=COUNTIF({column(key)},{cell})", number, projects)
            sheet.write_formula(
                row, 2, f"=SUMIF({column(key)},{cell},{column('loan_amount')})", money, loans
            )
            sheet.write_formula(
                row,
                3,
                f"=SUMIF({column(key)},{cell},{column('avoided_tco2e_per_year')})",
                number,
                avoided,
            )
        if key == "activity" and groups.height:
            chart = book.add_chart({"type": "column"})
            chart.add_series(
                {
                    "name": "avoided tCO2e/yr",
                    "categories": [sheet.name, start, 0, row, 0],
                    "values": [sheet.name, start, 3, row, 3],
                }
            )
            chart.set_title({"name": t("chart_emissions", lang)})
            chart.set_legend({"none": True})
            chart.set_size({"width": 640, "height": 320})
            sheet.insert_chart(20, 9, chart)


def _status_tables(
    book: Any,
    sheet: Any,
    result: ScreenResult,
    table: pl.DataFrame,
    column: Any,
    row: int,
    lang: Lang,
) -> int:
    """Loan amount, projects and avoided tCO2e by rulebook × status, and the legacy × current
    China catalogue crosswalk: live COUNTIFS / SUMIFS with polars' figures cached. Returns the
    last row written."""
    head = book.add_format({"bold": True, "bg_color": "#1F4E79", "font_color": "#FFFFFF"})
    money = book.add_format({"num_format": "#,##0" if lang == "en" else '0\\.0,"万"'})
    number = book.add_format({"num_format": "#,##0"})
    totals = status_totals(table.lazy(), [b.id for b in result.rulebooks])
    currency = _currency(table)
    sheet.write_row(
        row,
        0,
        [
            t("rulebook", lang),
            t("status", lang),
            t("n_projects", lang),
            f"{t('loan_total', lang)} [{currency}]",
            t("avoided_year", lang) + " [tCO2e/yr]",
        ],
        head,
    )
    for rec in totals.sort("rulebook", "status").iter_rows(named=True):
        row += 1
        status_col = column(f"{rec['rulebook']}__status")
        sheet.write_string(row, 0, rec["rulebook"])
        sheet.write_string(row, 1, rec["status"] or "")
        sheet.write_formula(
            row, 2, f'=COUNTIFS({status_col},"{rec["status"]}")', number, rec["projects"]
        )
        for j, name, fmt in ((3, "loan_amount", money), (4, "avoided_tco2e_per_year", number)):
            if name in rec:
                sheet.write_formula(
                    row,
                    j,
                    f'=SUMIFS({column(name)},{status_col},"{rec["status"]}")',
                    fmt,
                    rec[name] or 0,
                )
    cross = crosswalk(table.lazy())
    if cross is None:
        return row
    row += 2
    sheet.write_string(row, 0, t("crosswalk", lang), book.add_format({"bold": True}))
    row += 1
    sheet.write_row(
        row,
        0,
        [
            CROSSWALK[0],
            CROSSWALK[1],
            t("n_projects", lang),
            f"{t('loan_total', lang)} [{currency}]",
        ],
        head,
    )
    legacy, current = (column(f"{b}__status") for b in CROSSWALK)
    for rec in cross.iter_rows(named=True):
        row += 1
        sheet.write_string(row, 0, rec["legacy"] or "")
        sheet.write_string(row, 1, rec["current"] or "")
        where = f'{legacy},"{rec["legacy"]}",{current},"{rec["current"]}"'
        sheet.write_formula(row, 2, f"=COUNTIFS({where})", number, rec["projects"])
        if "loan_amount" in rec:
            sheet.write_formula(
                row, 3, f"=SUMIFS({column('loan_amount')},{where})", money, rec["loan_amount"] or 0
            )
    return row


def _currency(table: pl.DataFrame) -> str:
    """The currency of the amounts: the one the projects give, or CNY; "mixed" if several."""
    if "currency" not in table.columns:
        return "CNY"
    codes = table.get_column("currency").fill_null("CNY").unique().to_list()
    return codes[0] if len(codes) == 1 else "mixed"


def _rejects(book: Any, result: ScreenResult, lang: Lang) -> None:
    rejects = result.rejects
    sheet_name = "Rejects" if lang == "en" else "拒收记录"
    if rejects.height == 0:
        sheet = book.add_worksheet(sheet_name)
        sheet.write_string(0, 0, "no rows were rejected")
        return
    rejects.write_excel(
        workbook=book,
        worksheet=sheet_name,
        table_style="Table Style Light 15",
        freeze_panes=(1, 0),
        autofit=False,
        column_widths=_pixel_widths(rejects, decimals=0),  # type: ignore[arg-type]
    )


def _sources(book: Any, result: ScreenResult, lang: Lang) -> None:
    sheet = book.add_worksheet(t("sheet_sources", lang))
    meta = result.metadata()
    sheet.set_column(0, 0, 28)
    sheet.set_column(1, 1, 100)
    rows = [
        ("tool", f"greenscreen {__version__}"),
        ("input", f"{meta['input']['name']} ({meta['input']['format']})"),
        ("input sha256", str(meta["input"]["sha256"])),
        ("counts", ", ".join(f"{k} {v}" for k, v in meta["counts"].items())),
    ]
    rows += [
        ("rulebook", f"{b['id']} {b['version']} ({b['verification']})") for b in meta["rulebooks"]
    ]
    rows += [
        ("programme", f"{p['id']} {p['version']} ({p['verification']})") for p in meta["programmes"]
    ]
    rows += [("emissions", ", ".join(f"{k}={v}" for k, v in meta["emissions"].items()))]
    for i, (label, value) in enumerate(rows):
        sheet.write_string(i, 0, label)
        sheet.write_string(i, 1, str(value))
