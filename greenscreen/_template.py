"""The Excel input template (pipeline template v1), written with xlsxwriter.

Sheets: ``pipeline`` (row 1 field names, row 2 Chinese labels with units — the reader skips it —
then empty rows with dropdowns and number checks), ``fields`` (what every column means),
``evidence`` (the evidence fields the bundled rulebooks and programmes define, grouped by
rulebook, with the items whose criteria read them: extra columns an analyst may add),
``example`` (filled rows to copy from) and ``lists`` (the dropdown values).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.utility import xl_col_to_name

from greenscreen import __version__
from greenscreen.errors import GreenscreenError
from greenscreen.schema import FIELDS, TEMPLATE_VERSION, FieldSpec
from greenscreen.vocabularies import POWERTRAINS, TEMPLATE_CURRENCIES, activities, provinces

_ROWS = 5000  # rows that carry dropdowns and checks
_GROUP_COLOURS = {
    "identification": "#1F4E79",
    "location": "#2E75B6",
    "dates": "#2E75B6",
    "power": "#548235",
    "storage": "#548235",
    "buildings": "#7F6000",
    "thresholds": "#833C0B",
    "emissions": "#375623",
    "finance": "#3A3838",
}
_EXAMPLES: list[dict[str, Any]] = [
    {
        "project_id": "EX-001",
        "project_name": "示例光伏电站 Example PV plant",
        "borrower": "示例新能源有限公司",
        "description": "地面光伏电站 / ground-mounted solar PV",
        "activity": "solar_pv",
        "industry_code": "D4416",
        "country": "CN",
        "province": "青海",
        "approval_date": dt.date(2025, 11, 1),
        "cod": dt.date(2026, 12, 31),
        "capacity_mw": 100,
        "full_load_hours": 1500,
        "currency": "CNY",
        "total_investment": 350_000_000,
        "loan_amount": 250_000_000,
        "loan_tenor_years": 15,
        "interest_rate": 0.035,
        "grace_period_years": 1,
        "tariff_per_mwh": 227.7,
        "annual_opex": 5_000_000,
        "degradation_rate": 0.005,
        "construction_years": 1,
        "operating_years": 25,
        "tax_rate": 0.25,
        "discount_rate": 0.06,
    },
    {
        "project_id": "EX-002",
        "project_name": "示例绿色建筑 Example green building",
        "description": "二星级绿色建筑 / 2-star green building",
        "activity": "building_new",
        "province": "重庆",
        "floor_area_m2": 50_000,
        "green_building_star": 2,
        "total_investment": 400_000_000,
        "loan_amount": 240_000_000,
    },
]


def write_template(path: str | Path) -> Path:
    """Write the Excel input template for pipeline template v1.

    The file is deterministic: the same greenscreen version writes the same bytes.

    Parameters
    ----------
    path : str or pathlib.Path
        An ``.xlsx`` file; its folder is created.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    GreenscreenError
        Another suffix, or a path that cannot be written.
    """
    path = Path(path)
    workbook = open_workbook(
        path,
        f"greenscreen pipeline template {TEMPLATE_VERSION}",
        "Candidate projects for green-loan screening",
    )
    specs = list(FIELDS.values())
    styles = workbook_styles(workbook)
    lists = _list_columns()
    ranges = {
        name: f"=lists!${xl_col_to_name(2 * i)}$2:${xl_col_to_name(2 * i)}${len(values) + 1}"
        for i, (name, values, _) in enumerate(lists)
    }
    write_input_sheet(workbook, specs, styles, ranges)
    _write_fields(workbook, specs, styles)
    _write_evidence(workbook, styles)
    _write_examples(workbook, specs, styles)
    _write_lists(workbook, styles, lists)
    try:
        workbook.close()
    except OSError as exc:
        raise GreenscreenError(f"cannot write {path}: {exc}") from exc
    return path


def workbook_styles(workbook: Any) -> dict[str, Any]:
    """The cell formats of a template workbook.

    Parameters
    ----------
    workbook : xlsxwriter.Workbook
        The workbook the formats belong to.

    Returns
    -------
    dict of str to xlsxwriter.format.Format
        One header format per field group (its colour), and ``label``, ``bold``, ``wrap``,
        ``date`` and ``text``.
    """
    header = {"bold": True, "font_color": "#FFFFFF", "border": 1, "text_wrap": True}
    styles = {
        group: workbook.add_format({**header, "bg_color": colour})
        for group, colour in _GROUP_COLOURS.items()
    }
    styles["label"] = workbook.add_format(
        {"italic": True, "font_color": "#595959", "bg_color": "#F2F2F2", "border": 1}
    )
    styles["bold"] = workbook.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1})
    styles["wrap"] = workbook.add_format({"text_wrap": True, "valign": "top"})
    styles["date"] = workbook.add_format({"num_format": "yyyy-mm-dd"})
    styles["text"] = workbook.add_format({"num_format": "@"})
    return styles


_ListColumn = tuple[str, list[str], list[str]]


def _list_columns() -> list[_ListColumn]:
    """Dropdown values per field, with a note column (Chinese or English name)."""
    table = activities()
    return [
        ("activity", table["id"].to_list(), table["name_zh"].to_list()),
        ("province", provinces()["name_zh"].to_list(), provinces()["name_en"].to_list()),
        ("currency", list(TEMPLATE_CURRENCIES), [""] * len(TEMPLATE_CURRENCIES)),
        ("powertrain", list(POWERTRAINS), list(POWERTRAINS.values())),
    ]


def _write_lists(workbook: Any, styles: dict[str, Any], lists: list[_ListColumn]) -> None:
    sheet = workbook.add_worksheet("lists")
    for i, (name, values, notes) in enumerate(lists):
        col = 2 * i
        sheet.write(0, col, name, styles["bold"])
        sheet.write(0, col + 1, "说明 / note", styles["bold"])
        sheet.write_column(1, col, values)
        sheet.write_column(1, col + 1, notes)
        sheet.set_column(col, col + 1, 22)


def write_input_sheet(
    workbook: Any,
    specs: list[FieldSpec],
    styles: dict[str, Any],
    lists: dict[str, str],
    name: str = "pipeline",
) -> None:
    """The input sheet: field names, Chinese labels with units, then empty checked rows.

    Parameters
    ----------
    workbook : xlsxwriter.Workbook
        The template being written.
    specs : list of FieldSpec
        The columns, in order.
    styles : dict
        :func:`workbook_styles` of ``workbook``.
    lists : dict of str to str
        Field name → the sheet range of its dropdown values (``=lists!$A$2:$A$40``).
    name : str
        The sheet's name (``pipeline``; the loan book's is ``loans``).
    """
    sheet = workbook.add_worksheet(name)
    sheet.freeze_panes(2, 1)
    last = _ROWS + 1
    for col, spec in enumerate(specs):
        sheet.write_string(0, col, spec.name, styles[spec.group])
        sheet.write_string(1, col, spec.label_zh, styles["label"])
        sheet.write_comment(0, col, _note(spec), {"x_scale": 2.2, "y_scale": 1.6})
        width = max(len(spec.name), 2 * len(spec.label_zh)) + 2
        fmt = styles["date"] if spec.kind == "date" else None
        if spec.kind in ("text", "code", "enum"):
            fmt = styles["text"]  # ids like 0012 stay text
        sheet.set_column(col, col, min(width, 40), fmt)
        validation = _validation(spec, lists)
        if validation:
            sheet.data_validation(2, col, last, col, validation)
    sheet.set_row(0, 30)


def _note(spec: FieldSpec) -> str:
    lines = [f"{spec.name} — {spec.zh}", spec.description]
    if spec.unit:
        lines.append(f"unit / 单位: {spec.unit}")
    if spec.range_text():
        lines.append(f"allowed / 取值: {spec.range_text()}")
    if spec.required:
        lines.append("required / 必填")
    return "\n".join(lines)


def _validation(spec: FieldSpec, lists: dict[str, str]) -> dict[str, Any] | None:
    if spec.name in lists:
        return {
            "validate": "list",
            "source": lists[spec.name],
            "error_type": "warning",
            "error_message": f"Choose a value from the list (sheet 'lists') for {spec.name}.",
        }
    if spec.kind in ("float", "int"):
        low = spec.ge if spec.ge is not None else spec.gt
        if low is None and spec.le is None:
            return None
        rule: dict[str, Any] = {"validate": "decimal" if spec.kind == "float" else "integer"}
        if low is not None and spec.le is not None:
            rule.update(criteria="between", minimum=low, maximum=spec.le)
        elif low is not None:
            rule.update(criteria=">=", value=low)
        else:
            rule.update(criteria="<=", value=spec.le)
        rule.update(
            error_type="stop",
            error_title=spec.name,
            error_message=f"{spec.name} must be {spec.range_text()} ({spec.unit or ''})"[:255],
        )
        return rule
    if spec.kind == "date":
        return {
            "validate": "date",
            "criteria": "between",
            "minimum": dt.date(1900, 1, 1),
            "maximum": dt.date(2100, 12, 31),
            "error_type": "stop",
            "error_message": "Enter a date (yyyy-mm-dd).",
        }
    return None


def _write_fields(workbook: Any, specs: list[FieldSpec], styles: dict[str, Any]) -> None:
    sheet = workbook.add_worksheet("fields")
    heads = ["field", "中文名称", "group", "type", "unit", "required", "allowed", "description"]
    sheet.write_row(0, 0, heads, styles["bold"])
    for row, spec in enumerate(specs, start=1):
        sheet.write_row(
            row,
            0,
            [
                spec.name,
                spec.zh,
                spec.group,
                spec.kind,
                spec.unit or "",
                "yes" if spec.required else "",
                spec.range_text(),
                spec.description,
            ],
        )
    extra = len(specs) + 2
    notes = [
        f"greenscreen pipeline template {TEMPLATE_VERSION} (greenscreen {__version__}).",
        "Only project_id and one of activity / description are required.",
        "Headers may be the field names or the Chinese labels (装机容量(MW)); a unit in a "
        "header is converted (装机容量(kW), 总投资(万元)).",
        "Rates are fractions (0.045) or percentages with a % sign (4.5%).",
        "Extra columns are kept and passed through to the results.",
        "Sheet 'example' shows filled rows: copy them into 'pipeline' as a start.",
    ]
    for i, note in enumerate(notes):
        sheet.write(extra + i, 0, note)
    sheet.set_column(0, 0, 28)
    sheet.set_column(1, 1, 22)
    sheet.set_column(2, 6, 12)
    sheet.set_column(7, 7, 80)
    sheet.freeze_panes(1, 1)
    sheet.autofilter(0, 0, len(specs), len(heads) - 1)


def open_workbook(path: Path, title: str, subject: str) -> Any:
    """A template workbook at ``path`` with fixed properties, so that the same greenscreen
    version writes the same bytes (the pipeline and the loan book templates).

    Parameters
    ----------
    path : pathlib.Path
        Where to write it: an ``.xlsx`` file; its folder is created.
    title, subject : str
        The workbook's document properties.

    Returns
    -------
    xlsxwriter.Workbook
        Open; the caller adds sheets and closes it.

    Raises
    ------
    GreenscreenError
        Another suffix, or a path that cannot be written.
    """
    if path.suffix.lower() != ".xlsx":
        raise GreenscreenError(f"the template is an .xlsx workbook; got '{path.name}'")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        workbook = xlsxwriter.Workbook(str(path))
    except OSError as exc:
        raise GreenscreenError(f"cannot write {path}: {exc}") from exc
    workbook.set_properties(
        {
            "title": title,
            "subject": subject,
            "author": "greenscreen",
            "comments": f"greenscreen {__version__}",
            "created": dt.datetime(2025, 1, 1),  # fixed: byte-identical output
        }
    )
    return workbook


def _write_evidence(workbook: Any, styles: dict[str, Any]) -> None:
    """One row per evidence field of every bundled rulebook and programme, grouped by rulebook:
    what to collect beyond the template columns (add them as columns of 'pipeline')."""
    from greenscreen.rulebook import bundled_rulebooks
    from greenscreen.subsidy import load_programmes

    sheet = workbook.add_worksheet("evidence")
    heads = [
        "rulebook / programme",
        "field",
        "type",
        "unit",
        "range",
        "中文说明",
        "description",
        "read by",
    ]
    sheet.write_row(0, 0, heads, styles["bold"])
    row = 1
    sources: list[tuple[str, Any, dict[str, list[str]]]] = []
    for book in bundled_rulebooks():
        readers: dict[str, list[str]] = {}
        for item in book.leaf_items:
            for criterion in item.criteria:
                for field in book.fields:
                    if _reads(criterion.condition, field.name) and item.code not in readers.get(
                        field.name, []
                    ):
                        readers.setdefault(field.name, []).append(item.code)
        sources.append((book.id, book.fields, readers))
    for programme in load_programmes():
        readers = {}
        for award in programme.awards:
            for criterion in award.criteria:
                for field in programme.fields:
                    if _reads(criterion.condition, field.name):
                        readers.setdefault(field.name, []).append(award.code)
        sources.append((programme.id, programme.fields, readers))
    for source, fields, readers in sources:
        for field in fields:
            items = readers.get(field.name, [])
            shown = ", ".join(items[:12]) + (f" … (+{len(items) - 12})" if len(items) > 12 else "")
            sheet.write_row(
                row,
                0,
                [
                    source,
                    field.name,
                    field.type,
                    field.unit or "",
                    field.range_text(),
                    field.description.zh or "",
                    field.description.en or "",
                    shown,
                ],
                styles["wrap"],
            )
            row += 1
    sheet.set_column(0, 0, 22)
    sheet.set_column(1, 1, 34)
    sheet.set_column(2, 4, 10)
    sheet.set_column(5, 6, 60)
    sheet.set_column(7, 7, 30)
    sheet.freeze_panes(1, 2)
    sheet.autofilter(0, 0, max(row - 1, 1), len(heads) - 1)


def _reads(condition: str, field: str) -> bool:
    return re.search(rf"\b{re.escape(field)}\b", condition) is not None


def _write_examples(workbook: Any, specs: list[FieldSpec], styles: dict[str, Any]) -> None:
    """Same layout as ``pipeline`` so the examples also screen as they are (--sheet example)."""
    sheet = workbook.add_worksheet("example")
    sheet.freeze_panes(2, 1)
    for col, spec in enumerate(specs):
        sheet.write_string(0, col, spec.name, styles[spec.group])
        sheet.write_string(1, col, spec.label_zh, styles["label"])
        for i, example in enumerate(_EXAMPLES):
            value = example.get(spec.name)
            if isinstance(value, dt.date):
                sheet.write_datetime(2 + i, col, value, styles["date"])
            elif value is not None:
                sheet.write(2 + i, col, value)
        sheet.set_column(col, col, 16)
