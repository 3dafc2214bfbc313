"""The units a template header may carry, and the dimension of each field's canonical unit.

Takes nothing; gives two tables that the header stage (:mod:`greenscreen.io._headers`) reads
to turn ``装机容量(kW)`` into ``capacity_mw`` × 0.001:

- :data:`UNITS`: a unit token as written in a header (NFKC-normalised, lower case) → its
  dimension(s) and the factor to that dimension's canonical unit (``kw`` → power, 0.001);
- :data:`CANONICAL_DIMENSION`: a field's canonical unit (the ``unit`` of
  :func:`greenscreen.schema.template_field`) → its dimension (``MW`` → power).

A header whose unit has the wrong dimension for its field is an error, never a silent guess.
"""

from __future__ import annotations

# Units that may appear in a header, e.g. "装机容量(kW)" or "Total investment (万元)".
# token (NFKC-normalised, lower case) -> {dimension: factor to the field's canonical unit}.
# A header whose unit has the wrong dimension for its field is an error, never a silent guess.
UNITS: dict[str, dict[str, float]] = {}


def _units(dimension: str, factor: float, *tokens: str) -> None:
    for token in tokens:
        UNITS.setdefault(token, {})[dimension] = factor


_units("power", 1.0, "mw", "兆瓦", "mwp", "mwac", "mwdc")
_units("power", 1e-3, "kw", "千瓦", "kwp")
_units("power", 1e3, "gw", "吉瓦", "百万千瓦")
_units("power", 10.0, "万kw", "万千瓦")
_units("energy", 1.0, "mwh", "兆瓦时")
_units("energy", 1e-3, "kwh", "千瓦时", "度")
_units("energy", 1e3, "gwh", "吉瓦时", "百万千瓦时")
_units("energy", 10.0, "万kwh", "万千瓦时", "万度")
_units("energy", 1e5, "亿kwh", "亿千瓦时", "亿度")
_units("money", 1.0, "元", "yuan", "cny", "rmb", "currency")
_units("money", 1e3, "千元", "thousand")
_units("money", 1e4, "万元", "万")
_units("money", 1e6, "百万元", "million", "mn", "m")
_units("money", 1e8, "亿元", "亿")
_units("price_energy", 1.0, "元/mwh", "yuan/mwh", "cny/mwh", "/mwh", "per mwh")
_units(
    "price_energy", 1e3, "元/kwh", "yuan/kwh", "cny/kwh", "/kwh", "per kwh", "元/千瓦时", "元/度"
)
_units("area", 1.0, "m2", "平方米", "sqm", "sq m")
_units("area", 1e4, "万m2", "万平方米")
_units("hours", 1.0, "h", "hours", "小时", "hour", "h/a", "h/yr", "小时/年")
_units("years", 1.0, "年", "years", "year", "yr", "yrs")
_units("ratio", 1.0, "fraction", "ratio", "小数")
_units("ratio", 0.01, "%", "percent", "百分比")
_units("mass", 1.0, "t", "吨", "tonnes", "tons", "t/a", "t/yr", "吨/年")
_units("mass", 1e4, "万吨", "万t")
_units("ef", 1.0, "tco2/mwh", "tco2e/mwh", "kgco2/kwh", "kgco2e/kwh", "tco2/mwh(kgco2/kwh)")
_units("ef", 1e-3, "gco2/kwh", "gco2e/kwh")
_units("intensity_kwh_m2", 1.0, "kwh/m2", "kwh/m2a", "kwh/m2·a", "kwh/(m2·a)", "kwh/m2/yr")
_units("intensity_g_kwh", 1.0, "gco2e/kwh", "gco2/kwh")
_units("power_density", 1.0, "w/m2")
_units("g_per_km", 1.0, "gco2/km", "g/km")
_units("t_per_t", 1.0, "tco2e/th2", "tco2e/t", "tco2/th2", "kgco2e/kgh2")
_units("length", 1.0, "km", "公里", "千米")
_units("l_per_100km", 1.0, "l/100km", "升/百公里")
_units("kwh_per_100km", 1.0, "kwh/100km", "千瓦时/百公里", "度/百公里")
_units("count", 1.0, "次", "次/年", "cycles", "cycles/yr", "辆", "vehicles", "个")
_units("dimensionless", 1.0, "-", "无量纲")

# canonical unit of a field -> dimension (the unit written in the field's metadata)
CANONICAL_DIMENSION: dict[str, str] = {
    "MW": "power",
    "MWh": "energy",
    "currency": "money",
    "currency/MWh": "price_energy",
    "m2": "area",
    "h/yr": "hours",
    "years": "years",
    "fraction": "ratio",
    "t/yr": "mass",
    "tCO2/MWh": "ef",
    "kWh/m2/yr": "intensity_kwh_m2",
    "gCO2e/kWh": "intensity_g_kwh",
    "W/m2": "power_density",
    "gCO2/km": "g_per_km",
    "tCO2e/tH2": "t_per_t",
    "km/yr": "length",
    "L/100km": "l_per_100km",
    "kWh/100km": "kwh_per_100km",
    "cycles/yr": "count",
    "count": "count",
    "tCO2e/yr": "mass",
    "stars": "dimensionless",
    "prize": "dimensionless",
    "MWh/MWh": "dimensionless",
}
