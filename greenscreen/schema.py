"""The pipeline input contract, *template v1*.

One pydantic model, :class:`ProjectInput`, is the single source of truth: field names, types,
units, descriptions, bilingual labels and value constraints. Everything else is derived from it:

- :data:`FIELDS` — a flat :class:`FieldSpec` per column (what the readers and writers use);
- :func:`polars_schema` — the typed polars schema of an accepted pipeline;
- :func:`resolve_header` — maps a spreadsheet header in English or Chinese, with or without a
  unit, to a field and a unit scale factor (``总投资(万元)`` → ``total_investment`` × 10 000).
  It is the reader's header stage, public in :mod:`greenscreen.io` (with :class:`HeaderMatch`,
  :func:`header_index` and :func:`resolve_header_in`; the units table is
  :mod:`greenscreen._units`).

Column names are snake_case with the unit in the name. Only ``project_id`` and one of
``activity``/``description`` are required; every other field is optional and used when present.
Unknown extra columns are kept and passed through.
"""

from __future__ import annotations

import datetime as dt
import types
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types as at
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from greenscreen.errors import did_you_mean
from greenscreen.vocabularies import activity_ids, activity_lookup, label_key

TEMPLATE_VERSION = "v1"

Kind = Literal["text", "code", "enum", "float", "int", "date", "bool"]


def template_field(
    zh: str,
    description: str,
    *,
    group: str,
    unit: str | None = None,
    aliases: tuple[str, ...] = (),
    kind: Kind | None = None,
    default: Any = None,
    **constraints: Any,
) -> Any:
    """A template field: description, Chinese label, unit, header aliases, value constraints.

    Used for every field of :class:`ProjectInput` and of the loan book's ``LoanInput``.

    Parameters
    ----------
    zh : str
        The Chinese label (``装机容量``); the template writes it with the unit.
    description : str
        What the field holds, in English.
    group : str
        The template's column group (``power``, ``finance`` …): header colour, field order.
    unit : str, optional
        The canonical unit (``MW``, ``currency``, ``fraction``); a header in another unit of
        the same dimension is converted (:func:`resolve_header`).
    aliases : tuple of str
        Other header spellings accepted for the field.
    kind : {"text", "code", "enum", "float", "int", "date", "bool"}, optional
        How the reader parses it, when the annotation does not say (codes, enums).
    default : object, optional
        The value of a blank cell (``CN`` for country).
    **constraints
        pydantic's value constraints (``ge``, ``gt``, ``le``, ``pattern``): the reader's
        range checks and the template's number checks.

    Returns
    -------
    pydantic.fields.FieldInfo
        The field, with the template metadata in ``json_schema_extra``.
    """
    extra: dict[str, Any] = {"zh": zh, "group": group, "aliases": list(aliases)}
    if unit:
        extra["unit"] = unit
    if kind:
        extra["kind"] = kind
    return Field(default=default, description=description, json_schema_extra=extra, **constraints)


# Upper bounds of the numeric fields. Each is far above any real project (the largest power
# station is 22.5 GW; China's whole grid generates ~9,400 TWh a year) and low enough that no
# product the engine forms (generation × factor × 100 years, money × 100 years) overflows: an
# absurd magnitude (1e306 MW, a typo'd exponent) is a reject row, never an infinite result.
# Money allows 1e15 currency units (about USD 60 bn in IDR or VND, the largest-unit currencies).
MONEY_MAX = 1e15


# --------------------------------------------------------------------------------------------
class ProjectInput(BaseModel):
    """One candidate project: a row of pipeline template v1.

    Units are in the field names and in each field's metadata. Rates are fractions
    (0.045 for 4.5 %); money is in the row's ``currency`` (default CNY, full units, not 万元).
    """

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    # identification -------------------------------------------------------------------------
    project_id: str = Field(
        min_length=1,
        description="Unique project identifier within the pipeline",
        json_schema_extra={
            "zh": "项目编号",
            "group": "identification",
            "aliases": ["项目代码", "项目id", "project id", "project code", "id"],
            "kind": "code",
        },
    )
    project_name: str | None = template_field(
        "项目名称", "Project name (zh or en)", group="identification", aliases=("name", "名称")
    )
    borrower: str | None = template_field(
        "借款人", "Borrower", group="identification", aliases=("借款主体", "客户名称", "client")
    )
    description: str | None = template_field(
        "项目描述",
        "Free-text description; used to infer the activity when `activity` is blank",
        group="identification",
        aliases=("项目简介", "建设内容", "项目概况"),
    )
    activity: str | None = template_field(
        "活动类型",
        "greenscreen activity id (see `greenscreen template`, sheet lists), e.g. solar_pv",
        group="identification",
        aliases=("项目类型", "activity type", "activity id", "activity_id"),
        kind="enum",
    )
    industry_code: str | None = template_field(
        "国民经济行业代码",
        "GB/T 4754-2017 industry code, e.g. D4416 or 4416 (keys the 2025 China catalogue)",
        group="identification",
        aliases=("行业代码", "gb/t 4754", "gbt4754", "industry code"),
        kind="code",
        pattern=r"^[A-T]?\d{2,4}$",
    )
    nace_code: str | None = template_field(
        "NACE代码",
        "NACE Rev.2 code, e.g. D35.11 (EU Taxonomy)",
        group="identification",
        aliases=("nace", "nace rev.2", "nace code"),
        kind="code",
        pattern=r"^[A-U]?\d{2}(\.\d{1,2}){0,2}$",
    )
    country: str | None = template_field(
        "国家",
        "ISO 3166-1 alpha-2 country code",
        group="location",
        aliases=("国别", "country code"),
        kind="code",
        default="CN",
        pattern=r"^[A-Z]{2}$",
    )
    province: str | None = template_field(
        "省份",
        "Chinese province-level division: name in zh or en, or GB/T 2260 code",
        group="location",
        aliases=("省", "所在省份", "省级行政区", "province/region"),
        kind="enum",
    )
    grid_region: str | None = template_field(
        "电网区域",
        "Override of the grid region the province maps to",
        group="location",
        aliases=("区域电网", "所属电网", "grid"),
    )
    approval_date: dt.date | None = template_field(
        "贷款审批日期",
        "Loan approval date (selects rulebook versions)",
        group="dates",
        aliases=("审批日期", "授信审批日期", "approval date"),
    )
    cod: dt.date | None = template_field(
        "投产日期",
        "Commercial operation date",
        group="dates",
        aliases=("投运日期", "商业运行日期", "commercial operation date", "cod date"),
    )

    # power ----------------------------------------------------------------------------------
    capacity_mw: float | None = template_field(
        "装机容量",
        "Installed capacity",
        group="power",
        unit="MW",
        aliases=("装机规模", "capacity", "installed capacity"),
        ge=0,
        le=1e6,
    )
    annual_generation_mwh: float | None = template_field(
        "年发电量",
        "Annual net electricity generation delivered to the grid (上网电量 preferred)",
        group="power",
        unit="MWh",
        aliases=("年上网电量", "年均发电量", "annual generation", "generation"),
        ge=0,
        le=1e10,
    )
    full_load_hours: float | None = template_field(
        "年利用小时数",
        "Equivalent full-load hours per year (generation = capacity × hours when not given)",
        group="power",
        unit="h/yr",
        aliases=("等效利用小时数", "满发小时数", "full load hours", "flh"),
        ge=0,
        le=8784,
    )

    # storage --------------------------------------------------------------------------------
    storage_energy_mwh: float | None = template_field(
        "储能容量",
        "Installed energy capacity of storage",
        group="storage",
        unit="MWh",
        aliases=("储能规模", "storage capacity", "storage energy"),
        ge=0,
        le=1e7,
    )
    storage_power_mw: float | None = template_field(
        "储能功率",
        "Rated power of storage (duration = energy / power)",
        group="storage",
        unit="MW",
        aliases=("储能额定功率", "storage power"),
        ge=0,
        le=1e6,
    )
    cycles_per_year: float | None = template_field(
        "年循环次数",
        "Full charge/discharge cycles per year",
        group="storage",
        unit="cycles/yr",
        aliases=("年充放电次数", "cycles"),
        ge=0,
        le=1e4,
    )

    # buildings ------------------------------------------------------------------------------
    floor_area_m2: float | None = template_field(
        "建筑面积",
        "Gross floor area",
        group="buildings",
        unit="m2",
        aliases=("总建筑面积", "floor area", "gfa"),
        ge=0,
        le=1e8,
    )
    green_building_star: int | None = template_field(
        "绿色建筑星级",
        "Star rating under GB/T 50378 (0 = basic level or unrated, 1–3 stars)",
        group="buildings",
        unit="stars",
        aliases=("绿建星级", "green building star", "green building rating"),
        ge=0,
        le=3,
    )
    green_building_award: int | None = template_field(
        "全国绿色建筑创新奖",
        "National Green Building Innovation Award prize (1 = first, 2 = second, 3 = third)",
        group="buildings",
        unit="prize",
        aliases=("绿色建筑创新奖", "绿建创新奖等级", "green building award"),
        ge=1,
        le=3,
    )
    energy_use_kwh_m2: float | None = template_field(
        "单位面积能耗",
        "Operational energy use per m² of floor area",
        group="buildings",
        unit="kWh/m2/yr",
        aliases=("建筑能耗强度", "energy use intensity", "eui"),
        ge=0,
        le=1e5,
    )
    baseline_energy_use_kwh_m2: float | None = template_field(
        "基准单位面积能耗",
        "Baseline (reference building) energy use per m²",
        group="buildings",
        unit="kWh/m2/yr",
        aliases=("基准能耗强度", "baseline eui"),
        ge=0,
        le=1e5,
    )
    epc_class: str | None = template_field(
        "能效证书等级",
        "Energy Performance Certificate class (EU), e.g. A",
        group="buildings",
        aliases=("epc", "epc rating"),
        kind="code",
        pattern=r"^[A-G]\+{0,4}$",
    )

    # thresholds used by taxonomies ----------------------------------------------------------
    lifecycle_gco2e_per_kwh: float | None = template_field(
        "全生命周期排放强度",
        "Life-cycle GHG emissions per kWh generated",
        group="thresholds",
        unit="gCO2e/kWh",
        aliases=("生命周期排放", "life-cycle emissions", "lifecycle emissions"),
        ge=0,
        le=1e5,
    )
    power_density_w_m2: float | None = template_field(
        "功率密度",
        "Power density of a hydropower reservoir (capacity / reservoir surface)",
        group="thresholds",
        unit="W/m2",
        aliases=("power density",),
        ge=0,
        le=1e6,
    )
    powertrain: str | None = template_field(
        "动力类型",
        "Vehicle powertrain: bev (battery electric), fcev (fuel cell), phev (plug-in hybrid), "
        "hev (hybrid), ice (combustion engine); Chinese names accepted",
        group="thresholds",
        aliases=("动力系统", "驱动类型", "能源类型", "vehicle powertrain", "drivetrain"),
        kind="enum",
    )
    tailpipe_gco2_per_km: float | None = template_field(
        "尾气排放",
        "Direct (tailpipe) CO2 emissions per km",
        group="thresholds",
        unit="gCO2/km",
        aliases=("tailpipe emissions", "tailpipe co2"),
        ge=0,
        le=1e5,
    )
    hydrogen_tco2e_per_th2: float | None = template_field(
        "制氢碳排放强度",
        "Life-cycle GHG emissions per tonne of hydrogen",
        group="thresholds",
        unit="tCO2e/tH2",
        aliases=("hydrogen emissions intensity",),
        ge=0,
        le=1e4,
    )
    pue: float | None = template_field(
        "电能利用效率",
        "Power usage effectiveness of a data centre (≥ 1)",
        group="thresholds",
        unit="MWh/MWh",
        aliases=("pue值", "power usage effectiveness"),
        ge=1,
        le=100,
    )

    # emission-method inputs -----------------------------------------------------------------
    electricity_saved_mwh: float | None = template_field(
        "年节电量",
        "Electricity saved per year",
        group="emissions",
        unit="MWh",
        aliases=("节电量", "electricity saved"),
        ge=0,
        le=1e10,
    )
    fuel_saved_t: float | None = template_field(
        "年节约燃料量",
        "Fuel saved per year",
        group="emissions",
        unit="t/yr",
        aliases=("节约燃料量", "fuel saved"),
        ge=0,
        le=1e10,
    )
    fuel_type: str | None = template_field(
        "燃料类型",
        "Fuel saved or displaced, e.g. coal, natural_gas, diesel",
        group="emissions",
        aliases=("燃料种类", "fuel"),
    )
    vehicle_count: int | None = template_field(
        "车辆数",
        "Number of vehicles financed",
        group="emissions",
        unit="count",
        aliases=("车辆数量", "vehicles", "fleet size"),
        ge=0,
        le=10_000_000,
    )
    annual_km_per_vehicle: float | None = template_field(
        "单车年行驶里程",
        "Distance driven per vehicle per year",
        group="emissions",
        unit="km/yr",
        aliases=("年行驶里程", "annual km", "annual mileage"),
        ge=0,
        le=1e6,
    )
    baseline_fuel_l_per_100km: float | None = template_field(
        "基准车百公里油耗",
        "Fuel use of the displaced conventional vehicle",
        group="emissions",
        unit="L/100km",
        aliases=("百公里油耗", "baseline fuel consumption"),
        ge=0,
        le=1e4,
    )
    ev_kwh_per_100km: float | None = template_field(
        "百公里电耗",
        "Electricity use of the electric vehicle",
        group="emissions",
        unit="kWh/100km",
        aliases=("ev consumption", "electricity consumption"),
        ge=0,
        le=1e4,
    )
    ch4_captured_t: float | None = template_field(
        "年甲烷回收量",
        "Methane captured and destroyed or used per year",
        group="emissions",
        unit="t/yr",
        aliases=("甲烷回收量", "ch4 captured", "methane captured"),
        ge=0,
        le=1e9,
    )
    co2_stored_t: float | None = template_field(
        "年二氧化碳封存量",
        "CO2 captured and permanently stored (or utilised) per year (CCUS)",
        group="emissions",
        unit="t/yr",
        aliases=("二氧化碳封存量", "co2 stored", "co2 captured"),
        ge=0,
        le=1e10,
    )
    displaced_tco2e_per_year: float | None = template_field(
        "年替代减排量",
        "User-supplied avoided emissions per year with its basis (e.g. storage displacing peakers)",
        group="emissions",
        unit="tCO2e/yr",
        aliases=("displaced emissions", "avoided emissions basis"),
        ge=0,
        le=1e10,
    )
    grid_ef_tco2_per_mwh: float | None = template_field(
        "电网排放因子",
        "Project-specific grid emission factor override (e.g. from a PDD)",
        group="emissions",
        unit="tCO2/MWh",
        aliases=("grid emission factor", "grid ef"),
        ge=0,
        le=10,
    )
    grid_ef_om_tco2_per_mwh: float | None = template_field(
        "电量边际排放因子",
        "Operating-margin grid factor override (OM)",
        group="emissions",
        unit="tCO2/MWh",
        aliases=("om", "operating margin", "ef_om"),
        ge=0,
        le=10,
    )
    grid_ef_bm_tco2_per_mwh: float | None = template_field(
        "容量边际排放因子",
        "Build-margin grid factor override (BM)",
        group="emissions",
        unit="tCO2/MWh",
        aliases=("bm", "build margin", "ef_bm"),
        ge=0,
        le=10,
    )

    # finance --------------------------------------------------------------------------------
    currency: str | None = template_field(
        "币种",
        "ISO 4217 currency of all money fields in the row",
        group="finance",
        aliases=("货币", "currency code"),
        kind="code",
        default="CNY",
        pattern=r"^[A-Z]{3}$",
    )
    total_investment: float | None = template_field(
        "总投资",
        "Total project investment (capex)",
        group="finance",
        unit="currency",
        aliases=("项目总投资", "总投资额", "capex", "total capex"),
        ge=0,
        le=MONEY_MAX,
    )
    loan_amount: float | None = template_field(
        "贷款金额",
        "Loan principal",
        group="finance",
        unit="currency",
        aliases=("贷款额", "授信金额", "loan", "loan principal"),
        ge=0,
        le=MONEY_MAX,
    )
    loan_tenor_years: int | None = template_field(
        "贷款期限",
        "Loan tenor",
        group="finance",
        unit="years",
        aliases=("贷款年限", "tenor", "loan tenor"),
        ge=0,
        le=100,
    )
    interest_rate: float | None = template_field(
        "贷款利率",
        "Annual loan interest rate as a fraction (0.045 = 4.5 %)",
        group="finance",
        unit="fraction",
        aliases=("利率", "interest rate"),
        ge=0,
        le=1,
    )
    grace_period_years: int | None = template_field(
        "宽限期",
        "Years of interest-only grace before principal repayment",
        group="finance",
        unit="years",
        aliases=("grace period",),
        ge=0,
        le=100,
    )
    tariff_per_mwh: float | None = template_field(
        "上网电价",
        "Electricity tariff received",
        group="finance",
        unit="currency/MWh",
        aliases=("电价", "tariff", "ppa price"),
        ge=0,
        le=1e9,
    )
    annual_revenue: float | None = template_field(
        "年营业收入",
        "Annual revenue (used when generation × tariff does not apply)",
        group="finance",
        unit="currency",
        aliases=("年收入", "年产值", "annual revenue", "revenue"),
        ge=0,
        le=MONEY_MAX,
    )
    annual_opex: float | None = template_field(
        "年运营成本",
        "Annual operating expenditure in the first operating year",
        group="finance",
        unit="currency",
        aliases=("年运维成本", "运营成本", "opex", "annual opex"),
        ge=0,
        le=MONEY_MAX,
    )
    opex_escalation: float | None = template_field(
        "运营成本年增长率",
        "Annual opex escalation as a fraction",
        group="finance",
        unit="fraction",
        aliases=("opex escalation",),
        ge=-1,
        le=1,
    )
    degradation_rate: float | None = template_field(
        "年衰减率",
        "Annual output degradation as a fraction",
        group="finance",
        unit="fraction",
        aliases=("衰减率", "degradation"),
        ge=0,
        le=1,
    )
    construction_years: int | None = template_field(
        "建设期",
        "Construction period",
        group="finance",
        unit="years",
        aliases=("建设年限", "construction period"),
        ge=0,
        le=20,
    )
    operating_years: int | None = template_field(
        "运营期",
        "Operating life",
        group="finance",
        unit="years",
        aliases=("运营年限", "经营期", "operating life", "economic life"),
        ge=1,
        le=100,
    )
    tax_rate: float | None = template_field(
        "所得税率",
        "Corporate income tax rate as a fraction",
        group="finance",
        unit="fraction",
        aliases=("企业所得税率", "tax rate"),
        ge=0,
        le=1,
    )
    discount_rate: float | None = template_field(
        "折现率",
        "Discount rate for NPV as a fraction",
        group="finance",
        unit="fraction",
        aliases=("贴现率", "discount rate", "wacc"),
        gt=-1,
        le=1,
    )

    @field_validator("activity")
    @classmethod
    def _known_activity(cls, value: str | None) -> str | None:
        if value is None:
            return None
        key = label_key(value)
        lookup = activity_lookup()
        if key not in lookup:
            raise ValueError(f"unknown activity '{value}'{did_you_mean(value, activity_ids())}")
        return lookup[key]


# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FieldSpec:
    """Everything the readers and writers need to know about one template column."""

    name: str
    kind: Kind
    dtype: pl.DataType
    description: str
    zh: str
    group: str
    unit: str | None = None
    aliases: tuple[str, ...] = ()
    required: bool = False
    default: Any = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    pattern: str | None = None

    @property
    def label_zh(self) -> str:
        """Chinese header with its unit, as written in the template: ``装机容量(MW)``."""
        unit = _ZH_UNIT.get(self.unit or "", self.unit)
        return f"{self.zh}({unit})" if unit and unit not in {"stars", "prize"} else self.zh

    def range_text(self, scale: float = 1.0) -> str:
        """The field's bounds as text, for messages and the template's notes.

        Parameters
        ----------
        scale : float
            The factor from a column's unit to the field's canonical unit (``kW`` → ``MW``:
            0.001), so that the bounds are shown in the unit the column is written in.

        Returns
        -------
        str
            ``≥ 0 and ≤ 1,000,000``; empty when the field has no bounds.
        """
        parts = []
        if self.ge is not None:
            parts.append(f"≥ {_bound_text(self.ge / scale)}")
        if self.gt is not None:
            parts.append(f"> {_bound_text(self.gt / scale)}")
        if self.le is not None:
            parts.append(f"≤ {_bound_text(self.le / scale)}")
        return " and ".join(parts)


def _bound_text(value: float) -> str:
    """1e6 as 1,000,000 (an analyst reads it); fractions as they are."""
    return f"{value:,.0f}" if value.is_integer() and abs(value) >= 1000 else f"{value:g}"


# Chinese rendering of units in template headers (the English unit is already in the field name)
_ZH_UNIT = {
    "currency": "元",
    "currency/MWh": "元/MWh",
    "years": "年",
    "fraction": "小数",
    "m2": "平方米",
}

_KIND_DTYPES: dict[str, pl.DataType] = {
    "text": pl.String(),
    "code": pl.String(),
    "enum": pl.String(),
    "float": pl.Float64(),
    "int": pl.Int64(),
    "date": pl.Date(),
    "bool": pl.Boolean(),
}
_PY_KINDS: dict[type, Kind] = {
    str: "text",
    float: "float",
    int: "int",
    dt.date: "date",
    bool: "bool",
}


def spec_from_field(name: str, info: Any) -> FieldSpec:
    """The :class:`FieldSpec` of a model field made with :func:`template_field`.

    Parameters
    ----------
    name : str
        The field's name.
    info : pydantic.fields.FieldInfo
        The model's field (``ProjectInput.model_fields[name]``).

    Returns
    -------
    FieldSpec
        Its kind and polars type, labels, unit, aliases, default and bounds.
    """
    annotation = info.annotation
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    extra = info.json_schema_extra or {}
    kind: Kind = extra.get("kind") or _PY_KINDS[annotation]
    bounds: dict[str, Any] = {}
    for meta in info.metadata:
        if isinstance(meta, at.Ge):
            bounds["ge"] = float(meta.ge)  # type: ignore[arg-type]
        elif isinstance(meta, at.Gt):
            bounds["gt"] = float(meta.gt)  # type: ignore[arg-type]
        elif isinstance(meta, at.Le):
            bounds["le"] = float(meta.le)  # type: ignore[arg-type]
        elif hasattr(meta, "pattern") and meta.pattern:
            bounds["pattern"] = meta.pattern
    return FieldSpec(
        name=name,
        kind=kind,
        dtype=_KIND_DTYPES[kind],
        description=info.description or "",
        zh=extra["zh"],
        group=extra["group"],
        unit=extra.get("unit"),
        aliases=tuple(extra.get("aliases", ())),
        required=info.is_required(),
        default=info.default if not info.is_required() else None,
        **bounds,
    )


FIELDS: dict[str, FieldSpec] = {
    name: spec_from_field(name, info) for name, info in ProjectInput.model_fields.items()
}
"""Template v1 fields in template order."""

GROUPS: tuple[str, ...] = tuple(dict.fromkeys(spec.group for spec in FIELDS.values()))

#: Columns greenscreen adds to every accepted project.
DERIVED_COLUMNS: dict[str, pl.DataType] = {
    "source_row": pl.Int64(),
    "province_code": pl.String(),
    # the prefecture or county named in the province column (宝鸡 → 宝鸡市, in Shaanxi)
    "city": pl.String(),
}


def polars_schema() -> pl.Schema:
    """Schema of the typed projects table returned by :func:`greenscreen.read_pipeline`.

    Template fields in template order, then the derived columns; extra input columns follow
    in the actual table.

    Returns
    -------
    polars.Schema
    """
    return pl.Schema(
        [(spec.name, spec.dtype) for spec in FIELDS.values()] + list(DERIVED_COLUMNS.items())
    )
