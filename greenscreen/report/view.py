"""The view model of one project's appraisal pack, shared by the Excel and HTML writers so
their figures cannot drift apart."""

from __future__ import annotations

import math
import re
from functools import cache
from typing import TYPE_CHECKING, Any

import polars as pl

from greenscreen import __version__, vocabularies
from greenscreen.emissions import METHODS
from greenscreen.report.labels import (
    METHOD_ZH,
    VERIFICATION_ZH,
    Lang,
    localise,
    sc_text,
    status_text,
    t,
)
from greenscreen.requests import evidence_requests, field_texts

if TYPE_CHECKING:
    from greenscreen.run import ScreenResult

#: (key, results column, unit, kind) of the key metrics, in display order
METRICS: list[tuple[str, str, str, str]] = [
    ("avoided_year", "avoided_tco2e_per_year", "tCO2e/yr", "num"),
    ("avoided_life", "avoided_tco2e_lifetime", "tCO2e", "num"),
    ("attributable", "attributable_tco2e_per_year", "tCO2e/yr", "num"),
    ("subsidy_total", "subsidy_total", "currency", "money"),
    ("subsidy_potential", "subsidy_potential", "currency", "money"),
    ("npv", "npv", "currency", "money"),
    ("project_irr", "project_irr", "", "pct"),
    ("equity_irr", "equity_irr", "", "pct"),
    ("min_dscr", "min_dscr", "×", "ratio"),
    ("llcr", "llcr", "×", "ratio"),
    ("lcoe", "lcoe", "currency/MWh", "num"),
]


def currency_label(row: dict[str, Any], lang: Lang) -> str:
    """The project's currency as a reader writes it.

    Parameters
    ----------
    row : dict
        A results row.
    lang : {"en", "zh"}

    Returns
    -------
    str
        元 in Chinese for CNY (the default), else the ISO 4217 code.
    """
    code = row.get("currency") or "CNY"
    return "元" if lang == "zh" and code == "CNY" else code


def _assumption(key: str, value: Any, currency: str, lang: Lang) -> str:
    """A run option as a reader understands it: a percentage, a price with its unit."""
    if value is None:
        return t("project_own", lang)
    if key in ("tax_rate", "discount_rate", "interest_rate", "sensitivity"):
        return f"{value:.2%}" if key != "sensitivity" else f"±{value:.0%}"
    if key == "carbon_price":
        return f"{value:,.2f} {currency}/tCO2e"
    if key == "debt_profile":
        return t(str(value), lang)
    return f"{value}"


def verification_text(value: str | None, lang: Lang) -> str:
    """A verification level (``verified``, ``secondary``, ``unverified``) in ``lang``.

    Parameters
    ----------
    value : str or None
    lang : {"en", "zh"}

    Returns
    -------
    str
        ``—`` for none.
    """
    return (VERIFICATION_ZH.get(value, value) if lang == "zh" else value) if value else "—"


def _quote(books: dict[str, Any], rulebook: str, item: str | None, criterion: str) -> str | None:
    """The Chinese text a criterion quotes from its source, when it has one."""
    book = books.get(rulebook)
    if book is None or not item:
        return None
    try:
        found = next(c for c in book.item(item).criteria if c.id == criterion)
    except (KeyError, StopIteration):
        return None
    return found.text.zh if found.text is not None else None


_VALUE = re.compile(r"^([a-z][a-z0-9_]*)=(.*)$", re.S)


def _values_text(values: str | None, texts: dict[str, Any], lang: Lang) -> str:
    """``field=value; …`` as a reader reads it: the field's label, "missing" in words."""
    if not values:
        return ""
    parts = []
    for part in values.split("; "):
        match = _VALUE.match(part)
        if match is None or match[1] not in texts:
            parts.append(part)
            continue
        text = texts[match[1]]
        value = t("unknown", lang) if match[2] == "(missing)" else match[2]
        parts.append(f"{text.zh if lang == 'zh' else text.en} = {value}")
    return "; ".join(parts)


def clean(value: Any) -> Any:
    """A value fit to show: None for NaN and ±inf.

    Parameters
    ----------
    value : object

    Returns
    -------
    object
        ``value``, or None for a non-finite float.
    """
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def _activity_text(row: dict[str, Any], lang: Lang) -> str:
    """``solar_pv — 太阳能光伏发电 (inferred)``: the id, its name, and where it came from."""
    activity = row.get("activity")
    if not activity:
        return "—"
    names = vocabularies.activities().filter(pl.col("id") == activity)
    name = names[f"name_{lang}"][0] if names.height else ""
    source = row.get("activity_source")
    origin = f" ({t('activity_' + source, lang)})" if source in ("input", "inferred") else ""
    return f"{activity} — {name}{origin}" if name else f"{activity}{origin}"


@cache
def _province_zh() -> dict[str, str]:
    return dict(vocabularies.provinces().select("name_en", "name_zh").iter_rows())


def province_text(province: str | None, lang: Lang) -> str:
    """A province as stored (English) or, in Chinese packs, its Chinese name.

    Parameters
    ----------
    province : str or None
        The ``province`` column (English name).
    lang : {"en", "zh"}

    Returns
    -------
    str
        ``—`` for none.
    """
    if not province:
        return "—"
    return _province_zh().get(province, province) if lang == "zh" else province


def _tone(criterion: dict[str, Any], kind: str | None, lang: Lang) -> tuple[str, str]:
    """Colour class and text of a criterion result. In an exclusion list a criterion that
    holds is the bad news (the exclusion applies) and a project no item reaches is fine."""
    result = criterion["result"]
    if kind != "exclusion" or result == "unknown":
        return result, t(result, lang)
    if criterion["criterion"] == "scope":
        return "good", t("no_item_applies", lang)
    return ("bad" if result == "pass" else "good"), t(result, lang)


def project_view(result: ScreenResult, project_id: str, lang: Lang) -> dict[str, Any]:
    """Everything a pack shows for one project, with labels in ``lang``.

    The view model every pack format renders (Excel, HTML, PDF): facts, decisions per
    rulebook with their criteria, metrics, emissions, subsidies, cash flows, sensitivities,
    the evidence request and sources.

    Parameters
    ----------
    result : ScreenResult
    project_id : str
        An accepted project.
    lang : {"en", "zh"}

    Returns
    -------
    dict
    """
    row = result.results.filter(pl.col("project_id") == project_id).row(0, named=True)
    decisions: list[dict[str, Any]] = []
    for book in result.rulebooks:
        code = row.get(f"{book.id}__item")
        decisions.append(
            {
                "id": book.id,
                "title": book.title.get(lang),
                "version": book.version,
                "status": row.get(f"{book.id}__status"),
                "status_text": status_text(row.get(f"{book.id}__status"), lang),
                "item": code or "",
                "item_name": book.item(code).name.get(lang) if code else "",
                "applies": bool(row.get(f"{book.id}__applies")),
                "missing": row.get(f"{book.id}__missing") or [],
                "flags": row.get(f"{book.id}__flags") or [],
                "ghg_mark": row.get(f"{book.id}__ghg_mark"),
                "kind": book.kind,
                # EU-style books: the substantial-contribution result beside the status
                "sc_text": (
                    sc_text(row.get(f"{book.id}__sc_met"), lang)
                    if f"{book.id}__sc_met" in row and code
                    else ""
                ),
            }
        )
    kinds = {book.id: book.kind for book in result.rulebooks}
    criteria = (
        result.decisions.filter(pl.col("project_id") == project_id)
        .sort("rulebook", "selected", descending=[False, True], maintain_order=True)
        .to_dicts()
    )
    # labels for the fields this pack names (not every field of every rulebook)
    asked = {field for book in result.rulebooks for field in row.get(f"{book.id}__missing") or []}
    asked |= {
        part.split("=", 1)[0]
        for c in criteria
        for part in (c["value"] or "").split("; ")
        if "=" in part
    }
    if result.subsidies is not None:
        for missing in result.subsidies.awards.filter(pl.col("project_id") == project_id)[
            "missing"
        ].to_list():
            asked |= set(missing or [])
    texts = field_texts(result.rulebooks, getattr(result, "programmes", ()), asked)
    books = {book.id: book for book in result.rulebooks}
    for c in criteria:
        c["tone"], c["result_text"] = _tone(c, kinds.get(c["rulebook"]), lang)
        # in Chinese the condition is the catalogue's own words where the rulebook quotes them
        if lang == "zh":
            c["threshold"] = (
                _quote(books, c["rulebook"], c["item"], c["criterion"]) or c["threshold"]
            )
        c["verification"] = verification_text(c["verification"], lang)
        c["value"] = _values_text(c["value"], texts, lang)
    currency = currency_label(row, lang)
    metrics = [
        {
            "key": key,
            "label": t(key, lang),
            "value": clean(row.get(column)),
            "unit": unit.replace("currency", currency),
            "kind": kind,
        }
        for key, column, unit, kind in METRICS
    ]
    method = row.get("emissions_method")
    emissions = {
        "method": (METHOD_ZH.get(method, method) if lang == "zh" else METHODS.get(method, method))
        if method
        else None,
        "note": localise(row.get("emissions_note"), lang),
        "ef": clean(row.get("grid_ef_tco2_per_mwh")),
        "ef_source": localise(row.get("ef_source"), lang),
        "ef_verification": verification_text(row.get("ef_verification"), lang),
        "share": clean(row.get("attributable_share")),
        "per_million": clean(row.get("tco2e_per_million_lent")),
        "coal": clean(row.get("standard_coal_saved_tce_per_year")),
        "quality": row.get("data_quality_score"),
        "quality_basis": localise(row.get("data_quality_basis"), lang),
        "flags": [localise(flag, lang) for flag in row.get("emissions_flags") or []],
    }
    awards, schedule = [], []
    if result.subsidies is not None:
        awards = result.subsidies.awards.filter(pl.col("project_id") == project_id).to_dicts()
        schedule = result.subsidies.schedule.filter(pl.col("project_id") == project_id).to_dicts()
    cash_flows: list[dict[str, Any]] = []
    sensitivities: list[dict[str, Any]] = []
    if result.appraisal is not None:
        cash_flows = result.appraisal.cash_flows_for([project_id]).to_dicts()
        if result.appraisal.sensitivities.height:
            sensitivities = result.appraisal.sensitivities.filter(
                pl.col("project_id") == project_id
            ).to_dicts()

    def label(field: str) -> str:
        text = texts.get(field)
        return (text.zh if lang == "zh" else text.en) if text else field

    requests = [
        {
            "question": rec["question_zh" if lang == "zh" else "question_en"],
            "needed_by": rec["needed_by"],
            "field": rec["field"],
            "sources": rec["sources"],
        }
        for rec in evidence_requests(result, [project_id]).iter_rows(named=True)
    ]
    for decision in decisions:  # what it lacks, as the numbers of the request's questions
        decision["missing_labels"] = [label(str(f)) for f in decision["missing"] or []]
        decision["asks"] = [
            i for i, rec in enumerate(requests, start=1) if decision["id"] in rec["sources"]
        ]
    for award in awards:
        award["missing_labels"] = [label(f) for f in award.get("missing") or []]
    meta = result.metadata()
    sources = [
        (t("tool", lang), f"greenscreen {__version__}"),
        (t("input_file", lang), f"{meta['input']['name']} ({meta['input']['format']})"),
        (t("input_hash", lang), str(meta["input"]["sha256"])),
        *[
            (
                t("rulebooks", lang),
                f"{b['id']} {b['version']} ({verification_text(b['verification'], lang)})",
            )
            for b in meta["rulebooks"]
        ],
        *[
            (
                t("programmes", lang),
                f"{p['id']} {p['version']} ({t(p['kind'], lang)}, "
                f"{verification_text(p['verification'], lang)})",
            )
            for p in meta["programmes"]
        ],
        (t("factors", lang), localise(row.get("ef_source"), lang) or "—"),
        *[
            (t("assumptions", lang), f"{t(k, lang)}: {_assumption(k, v, currency, lang)}")
            for k, v in meta["appraisal"].items()
            if k != "carbon_scenarios"
        ],
    ]
    return {
        "lang": lang,
        "project_id": project_id,
        "row": row,
        "facts": [
            (t("project", lang), f"{project_id}  {row.get('project_name') or ''}".strip()),
            (t("borrower", lang), row.get("borrower") or ""),
            (t("activity", lang), _activity_text(row, lang)),
            (t("province", lang), province_text(row.get("province"), lang)),
            (t("approval_date", lang), str(row.get("approval_date") or "—")),
            (t("cod", lang), str(row.get("cod") or "—")),
        ],
        "description": row.get("description") or "",
        "decisions": decisions,
        "criteria": criteria,
        "metrics": metrics,
        "irr_reason": localise(row.get("irr_reason"), lang),
        "emissions": emissions,
        "awards": awards,
        "schedule": schedule,
        "cash_flows": cash_flows,
        "sensitivities": sensitivities,
        "sources": sources,
        "requests": requests,
    }
