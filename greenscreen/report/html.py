"""Self-contained HTML appraisal packs and the portfolio report.

jinja2 templates from ``templates/`` (autoescape on: pipeline text is always escaped), inline
CSS with an A4 print stylesheet, charts as inline SVG from pygal. Nothing is fetched when the
page is viewed: no scripts, fonts, images or styles from anywhere.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import polars as pl
import pygal
from markupsafe import Markup, escape
from pygal.style import Style

from greenscreen import __version__
from greenscreen._resources import bundled_dir
from greenscreen.errors import GreenscreenError
from greenscreen.report._files import safe_stem
from greenscreen.report.labels import LABELS, Lang, sc_text, short_status, status_text, t
from greenscreen.report.portfolio import CROSSWALK, crosswalk, status_totals
from greenscreen.report.view import project_view, province_text
from greenscreen.rulebook import STATUSES

if TYPE_CHECKING:
    from greenscreen.run import ScreenResult

_STYLE_OPTIONS: dict[str, Any] = {
    "background": "white",
    "plot_background": "white",
    "foreground": "#333333",
    "foreground_strong": "#1F4E79",
    "foreground_subtle": "#999999",
    "font_family": "'Noto Sans CJK SC', 'Microsoft YaHei', 'PingFang SC', sans-serif",
}
_STYLE = Style(colors=("#1F4E79", "#70AD47", "#C55A11", "#7F7F7F", "#FFC000"), **_STYLE_OPTIONS)
_BADGE_COLOURS = {
    "aligned": "#2E7D32",
    "eligible": "#8BC34A",
    "insufficient_data": "#F2C94C",
    "excluded": "#D9534F",
    "not_excluded": "#A5D6A7",
    "not_eligible": "#BDBDBD",
}
#: the colour of each status (:data:`greenscreen.rulebook.STATUSES`, in its order) in the
#: HTML reports' badges and charts; a status without a colour fails here, at import
STATUS_COLOURS = {status: _BADGE_COLOURS[status] for status in STATUSES}
_STATUS_STYLE = Style(colors=tuple(STATUS_COLOURS.values()), **_STYLE_OPTIONS)


@cache
def template_environment() -> jinja2.Environment:
    """The jinja2 environment of the HTML outputs (packs, portfolio, periodic reports).

    Returns
    -------
    jinja2.Environment
        Templates from ``templates/``, autoescaped, undefined names an error, with the
        ``number``, ``percent`` and ``money`` filters.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(bundled_dir("templates"))),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(number=_number, percent=_percent, money=_money)
    return env


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value)))


def _number(value: Any, digits: int = 0) -> str:
    return "—" if _missing(value) else f"{value:,.{digits}f}"


def _percent(value: Any) -> str:
    return "—" if _missing(value) else f"{value * 100:.2f} %"


def _money(value: Any, lang: str = "en") -> str:
    if _missing(value):
        return "—"
    return f"{value / 1e4:,.1f} 万" if lang == "zh" else f"{value:,.0f}"


def _short_money(value: Any, lang: str) -> str:
    """Axis labels: 万/亿 in Chinese, M/bn in English."""
    if _missing(value):
        return ""
    if lang == "zh":
        return f"{value / 1e8:,.1f}亿" if abs(value) >= 1e8 else f"{value / 1e4:,.0f}万"
    return f"{value / 1e9:,.1f}bn" if abs(value) >= 1e9 else f"{value / 1e6:,.1f}M"


def _svg(chart: Any, key: str) -> str:
    """pygal's SVG made deterministic and script-free: a fixed id instead of a random uuid,
    no generation-date comment, no inline script (the charts are static)."""
    svg = chart.render(is_unicode=True)
    svg = re.sub(
        r"chart-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", f"chart-{key}", svg
    )
    svg = re.sub(r"<!--Generated with pygal.*?-->", "", svg)
    return re.sub(r"<script.*?</script>", "", svg, flags=re.S)


def _base(kind: Any, title: str, **options: Any) -> Any:
    settings: dict[str, Any] = {
        "js": [],
        "style": _STYLE,
        "disable_xml_declaration": True,
        "width": 760,
        "height": 320,
        "title": title,
        "legend_at_bottom": True,
        "print_values": False,
        "truncate_legend": -1,
    }
    settings.update(options)
    return kind(**settings)


def _label(key: str, lang: Lang) -> str:
    """A label for a template key or a data value (driver, phase); unknown values show as is."""
    return t(key, lang) if key in LABELS else key


def _language(lang: Lang) -> dict[str, Any]:
    """What every template gets for its language: the label and status functions."""
    return {
        "lang": lang,
        "t": lambda key: _label(key, lang),
        "status_text": lambda s: status_text(s, lang),
        "short_status": lambda s: short_status(s, lang),
        "version": __version__,
    }


def _charts(view: dict[str, Any], lang: Lang) -> dict[str, str]:
    charts: dict[str, str] = {}
    flows = view["cash_flows"]
    if flows:
        years = [str(r["year"]) for r in flows]
        bar = _base(
            pygal.Bar,
            t("chart_cashflow", lang),
            x_labels_major_every=5,
            show_minor_x_labels=False,
            value_formatter=lambda v: _short_money(v, lang),
        )
        bar.x_labels = years
        for key in ("project_cf", "cfads", "debt_service"):
            bar.add(t(key, lang), [None if _missing(r[key]) else r[key] for r in flows])
        charts["cashflow"] = _svg(bar, "cashflow")
        dscr = [None if _missing(r["dscr"]) else r["dscr"] for r in flows]
        if any(v is not None for v in dscr):
            line = _base(
                pygal.Line,
                t("chart_dscr", lang),
                show_legend=False,
                x_labels_major_every=5,
                show_minor_x_labels=False,
            )
            line.x_labels = years
            line.add(t("dscr", lang), dscr)
            charts["dscr"] = _svg(line, "dscr")
    tornado = [s for s in view["sensitivities"] if not s["driver"].startswith("carbon_price")]
    # no NPV without the financial inputs: NaN deltas everywhere, and pygal cannot scale NaN
    if any(not _missing(s["npv_delta"]) for s in tornado):
        chart = _base(
            pygal.HorizontalBar,
            t("npv_sensitivity", lang),
            formatter=lambda v: _short_money(v, lang),
            value_formatter=lambda v: _short_money(v, lang),
        )
        drivers = sorted({s["driver"] for s in tornado})
        chart.x_labels = [_label(d, lang) for d in drivers]
        for direction in ("low", "high"):
            rows = [s for s in tornado if s["direction"] == direction]
            values = {
                s["driver"]: None if _missing(s["npv_delta"]) else s["npv_delta"] for s in rows
            }
            chart.add(f"{rows[0]['change'] * 100:+.0f} %", [values.get(d) for d in drivers])
        charts["tornado"] = _svg(chart, "tornado")
    return charts


def render_html_pack(result: ScreenResult, project_id: str, *, lang: Lang = "en") -> str:
    """The HTML of one project's pack: a complete, self-contained, printable document.

    Parameters
    ----------
    result : ScreenResult
    project_id : str
        An accepted project.
    lang : {"en", "zh"}

    Returns
    -------
    str
    """
    view = project_view(result, project_id, lang)
    template = template_environment().get_template("pack.html.j2")
    return template.render(
        v=view,
        charts=_charts(view, lang),
        **_language(lang),
    )


def write_html_pack(
    result: ScreenResult, project_id: str, path: str | Path, *, lang: Lang = "en"
) -> Path:
    """Write one project's self-contained, printable HTML pack.

    Parameters
    ----------
    result : ScreenResult
    project_id : str
        An accepted project.
    path : str or pathlib.Path
    lang : {"en", "zh"}

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.write_text(render_html_pack(result, project_id, lang=lang), encoding="utf-8")
    return path


_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def write_pdf_pack(
    result: ScreenResult, project_id: str, path: str | Path, *, lang: Lang = "en"
) -> Path:
    """Print one project's HTML pack to PDF with headless Chromium.

    The same A4 print stylesheet a reader gets from the browser's print dialog, fonts
    embedded. Chromium is the renderer because the packs are laid out for it (no second
    layout engine to keep in step).

    Parameters
    ----------
    result : ScreenResult
    project_id : str
        An accepted project.
    path : str or pathlib.Path
    lang : {"en", "zh"}

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    GreenscreenError
        No Chromium or Chrome on PATH, or it failed or took longer than 120 s.
    """
    path = Path(path)
    browser = next((found for name in _BROWSERS if (found := shutil.which(name))), None)
    if browser is None:
        raise GreenscreenError(
            "--format pdf needs Chromium or Chrome on PATH (apt-get install chromium): none found"
        )
    with tempfile.TemporaryDirectory(prefix="greenscreen-pdf-") as scratch:
        page = Path(scratch) / "pack.html"
        page.write_text(render_html_pack(result, project_id, lang=lang), encoding="utf-8")
        target = Path(scratch) / "pack.pdf"
        try:
            done = subprocess.run(
                [
                    browser,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    f"--user-data-dir={Path(scratch) / 'profile'}",
                    "--no-pdf-header-footer",
                    f"--print-to-pdf={target}",
                    page.as_uri(),
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
        except subprocess.TimeoutExpired as exc:
            raise GreenscreenError(f"{browser} did not print {project_id} within 120 s") from exc
        if not target.is_file() or target.stat().st_size == 0:
            detail = (done.stderr or "").strip().splitlines()[-1:] or ["no output"]
            raise GreenscreenError(f"{browser} could not print {project_id}: {detail[0]}")
        shutil.copyfile(target, path)
    return path


TABLE_ROWS = 5_000
REJECT_ROWS = 1_000  # reject rows listed in portfolio.html (all are in rejects.csv)


def _currency_of(lazy: pl.LazyFrame, present: set[str]) -> str:
    if "currency" not in present:
        return "CNY"
    codes = lazy.select(pl.col("currency").fill_null("CNY").unique()).collect().to_series()
    return codes[0] if codes.len() == 1 else "mixed"


_TOTALS = (
    "loan_amount",
    "avoided_tco2e_per_year",
    "attributable_tco2e_per_year",
    "subsidy_total",
    "subsidy_potential",
)


#: the project table's text columns, in its order, and its figures (with the IRR's reason)
_IDENTITY = ("project_id", "project_name", "activity", "province")
_FIGURES = ("avoided_tco2e_per_year", "npv", "project_irr", "irr_reason", "min_dscr")
_CELL_CLASS = {"project_name": ' class="name"', "province": ' class="province"'}
_BOOK_FIELDS = ("status", "sc_met", "item")  # each rulebook's ``{id}__{field}`` in the table


def _once_each(values: list[Any], html: Callable[[Any], str]) -> list[str]:
    """``html`` of each value, computed once per distinct value (statuses, activities and
    provinces repeat)."""
    done = {value: html(value) for value in set(values)}
    return [done[value] for value in values]


def _text(value: Any) -> str:
    """A cell's text as the template's ``{{ cell if cell is not none else '' }}`` gives it."""
    return "" if value is None else str(escape(value))


def _project_rows(
    frame: pl.DataFrame,
    columns: list[str],
    books: list[str],
    lang: Lang,
    link: Callable[[str], str] | None,
) -> list[Markup]:
    """The project table's rows (``<tr>…</tr>``), escaped as jinja's autoescape would.

    Built here, column by column, rather than cell by cell in the template: jinja's
    expressions and filters for 5,000 rows of ~20 cells cost ~1.3 CPU s at 1M projects.
    """
    n = frame.height

    def values(column: str) -> list[Any]:
        return frame.get_column(column).to_list() if column in frame.columns else [None] * n

    parts: list[list[str]] = []
    for column in columns:
        if column == "project_id" and link is not None:
            text = [f'<a href="{escape(link(pid))}">{escape(pid)}</a>' for pid in values(column)]
        elif column == "province":
            text = _once_each(values(column), lambda v: _text(province_text(v, lang)))
        elif column == "activity":
            text = _once_each(values(column), _text)
        else:
            text = [_text(v) for v in values(column)]
        cls = _CELL_CLASS.get(column, "")
        parts.append([f"          <td{cls}>{cell}</td>\n" for cell in text])
    # formatted numbers hold digits, separators, "—", " %", " 万": nothing to escape
    titles = _once_each(values("irr_reason"), lambda r: f' title="{escape(r)}"' if r else "")
    parts.append(
        [
            f'        <td class="num">{_number(avoided)}</td>'
            f'<td class="num">{_money(npv, lang)}</td>'
            f'<td class="num"{title}>{_percent(irr)}</td>'
            f'<td class="num">{_number(dscr, 2)}</td>\n'
            for avoided, npv, irr, title, dscr in zip(
                values("avoided_tco2e_per_year"),
                values("npv"),
                values("project_irr"),
                titles,
                values("min_dscr"),
                strict=True,
            )
        ]
    )

    def badge(key: tuple[str | None, bool | None, bool]) -> str:
        status, sc_met, shown = key
        sc = f'<br><span class="muted">{escape(sc_text(sc_met, lang))}</span>' if shown else ""
        return (
            f'<td><span class="badge {escape(status)}">'
            f"{escape(short_status(status, lang))}</span>{sc}</td>"
        )

    for book in books:
        # the substantial-contribution result shows only where an item covers the project
        has_sc = f"{book}__sc_met" in frame.columns
        keys = [
            (status, sc_met, has_sc and bool(item))
            for status, sc_met, item in zip(
                *(values(f"{book}__{field}") for field in _BOOK_FIELDS), strict=True
            )
        ]
        parts.append(_once_each(keys, badge))
    return [Markup(f"      <tr>\n{''.join(row)}      </tr>\n") for row in zip(*parts, strict=True)]


def render_portfolio(
    result: ScreenResult,
    *,
    lang: Lang = "en",
    pack_suffix: str | None = ".html",
    link_prefix: str = "",
    results: pl.LazyFrame | None = None,
) -> str:
    """The portfolio report's HTML.

    Tiles, status breakdowns and a static table of projects linking to their packs
    (``{link_prefix}{safe id}{pack_suffix}``). The table lists at most
    :data:`TABLE_ROWS` projects (the Parquet results and portfolio.xlsx hold them all), the
    rejects at most :data:`REJECT_ROWS` (``rejects.csv`` holds them all).

    Parameters
    ----------
    result : ScreenResult
    lang : {"en", "zh"}
    pack_suffix : str or None
        The suffix of the packs the table links to (``.html``); None for no links.
    link_prefix : str
        Prepended to the pack names (``packs/``).
    results : polars.LazyFrame, optional
        The results, default ``result.results``; may be a scan of a results file larger than
        memory: counts and totals are aggregated lazily.

    Returns
    -------
    str
    """
    lazy = result.results.lazy() if results is None else results
    present = set(lazy.collect_schema().names())
    books = [b.id for b in result.rulebooks]
    # only the table's columns of the first rows, not all ~145 of the results
    of_books = [f"{b}__{field}" for b in books for field in _BOOK_FIELDS]
    table = [c for c in (*_IDENTITY, *_FIGURES, *of_books) if c in present]
    frame = lazy.head(TABLE_ROWS).select(table).collect()
    height = lazy.select(pl.len()).collect().item()
    # the projects per rulebook and status are status_totals' (one group-by per rulebook, not
    # two): rulebooks without a status column have none
    by_status = status_totals(lazy, books).sort("rulebook", "status")
    counts: list[dict[str, Any]] = [
        {
            "id": book.id,
            "title": book.title.get(lang),
            "counts": {
                rec["status"]: rec["projects"]
                for rec in by_status.iter_rows(named=True)
                if rec["rulebook"] == book.id
            },
        }
        for book in result.rulebooks
    ]
    statuses = list(STATUSES)
    chart = _base(pygal.StackedBar, t("decisions", lang), height=360, style=_STATUS_STYLE)
    chart.x_labels = [c["id"] for c in counts]
    for status in statuses:
        chart.add(status_text(status, lang), [c["counts"].get(status, 0) for c in counts])

    sums = [pl.col(c).fill_nan(None).sum() for c in _TOTALS if c in present]
    totals = lazy.select(sums).collect().row(0, named=True) if sums else {}

    def total(column: str) -> float:
        return float(totals.get(column) or 0.0)

    tiles = [
        (t("n_projects", lang), f"{height:,}"),
        (t("n_rejected", lang), f"{result.pipeline.n_rejected:,}"),
        (t("loan_total", lang), _money(total("loan_amount"), lang)),
        (t("avoided_year", lang), _number(total("avoided_tco2e_per_year"))),
        (t("attributable", lang), _number(total("attributable_tco2e_per_year"))),
        (t("subsidy_total", lang), _money(total("subsidy_total"), lang)),
        (t("subsidy_potential", lang), _money(total("subsidy_potential"), lang)),
    ]
    columns = [c for c in _IDENTITY if c in present]
    link = (lambda pid: f"{link_prefix}{safe_stem(pid)}{pack_suffix}") if pack_suffix else None
    rows = _project_rows(frame, columns, books, lang, link)
    rejects = result.rejects.head(REJECT_ROWS)
    template = template_environment().get_template("portfolio.html.j2")
    return template.render(
        source=result.pipeline.source.name,
        tiles=tiles,
        counts=counts,
        statuses=statuses,
        chart=_svg(chart, "portfolio"),
        columns=columns,
        rulebooks=books,
        rows=rows,
        truncated=max(height - TABLE_ROWS, 0),
        currency=_currency_of(lazy, present),
        by_status=by_status.to_dicts(),
        crosswalk=(cross.to_dicts() if (cross := crosswalk(lazy)) is not None else None),
        crosswalk_books=CROSSWALK,
        rejects=rejects.to_dicts(),
        rejects_more=max(result.rejects.height - REJECT_ROWS, 0),
        **_language(lang),
    )


def write_portfolio_html(
    result: ScreenResult,
    path: str | Path,
    *,
    lang: Lang = "en",
    pack_suffix: str | None = ".html",
    link_prefix: str = "",
    results: pl.LazyFrame | None = None,
) -> Path:
    """Write the portfolio report (``portfolio.html``, :func:`render_portfolio`).

    Parameters
    ----------
    result : ScreenResult
    path : str or pathlib.Path
    lang : {"en", "zh"}
    pack_suffix : str or None
        The suffix of the packs the table links to (``.html``); None for no links.
    link_prefix : str
        Prepended to the pack names (``packs/``).
    results : polars.LazyFrame, optional
        The results, default ``result.results``; may be a scan of a results file larger than
        memory: counts and totals are aggregated lazily.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    html = render_portfolio(
        result, lang=lang, pack_suffix=pack_suffix, link_prefix=link_prefix, results=results
    )
    path.write_text(html, encoding="utf-8")
    return path
