"""Closed vocabularies and how an input spelling is matched against them.

One place for what a cell or a header may say and what it means:

- :func:`label_key` normalises a header or label for matching (NFKC, lower case, one space)
  and :func:`label_expr` does the same to a polars column;
- activities (``data/activities.csv``) and provinces (``data/provinces.csv``, GB/T 2260) with
  every accepted spelling, and the prefecture- and county-level places below them
  (``data/cities.csv``, NBS 2023 统计用区划代码);
- the closed vocabularies of other enum fields (:data:`VOCABULARIES`: powertrain);
- yes/no (:data:`BOOLEANS`), country and currency synonyms, regional grid names.

The readers (:mod:`greenscreen.io`), the input contract (:mod:`greenscreen.schema`), the
template, the rules engine and the emissions step all use these; none keeps its own copy.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import polars as pl

from greenscreen._resources import data_file


# --------------------------------------------------------------------------------------------
# Label normalisation
def label_key(text: str) -> str:
    """Normalise a header or label for matching.

    Parameters
    ----------
    text : str
        A header, label or cell as written (``装机容量（ＭＷ）``, ``Solar  PV``).

    Returns
    -------
    str
        NFKC-normalised (full-width → ASCII, ``²`` → ``2``, ``㎡`` → ``m2``), runs of white
        space as one space, stripped, lower case: ``装机容量(mw)``, ``solar pv``.

    See Also
    --------
    label_expr : the same over a polars column.
    """
    text = unicodedata.normalize("NFKC", text).replace("²", "2").replace("㎡", "m2")
    return re.sub(r"\s+", " ", text).strip().lower()


def label_expr(text: pl.Expr) -> pl.Expr:
    """:func:`label_key` over a column: every cell normalised in one vectorised expression.

    Parameters
    ----------
    text : polars.Expr
        A text column.

    Returns
    -------
    polars.Expr
        The column NFKC-normalised, white space collapsed to one space, stripped, lower case
        (``²`` and ``㎡`` are covered by NFKC itself); nulls stay null.
    """
    return (
        text.str.normalize("NFKC").str.replace_all(r"\s+", " ").str.strip_chars().str.to_lowercase()
    )


# --------------------------------------------------------------------------------------------
# Activities
@cache
def activities() -> pl.DataFrame:
    """The activity vocabulary (``greenscreen/data/activities.csv``).

    Returns
    -------
    polars.DataFrame
        One row per activity, all text: ``id``, ``family``, ``name_en``, ``name_zh`` and
        ``keywords`` (``;``-separated, what the engine infers an activity from).
    """
    return pl.read_csv(data_file("activities.csv"), infer_schema=False)


def activity_ids() -> list[str]:
    """The activity ids (``solar_pv``, ``wind_onshore`` …) in vocabulary order.

    Returns
    -------
    list of str
    """
    return activities()["id"].to_list()


@cache
def activity_lookup() -> dict[str, str]:
    """Every accepted spelling of an activity, as :func:`label_key` gives it, to its id.

    Returns
    -------
    dict of str to str
        The id, the English and the Chinese name of each activity (``solar_pv``,
        ``solar photovoltaic power``, ``太阳能光伏发电`` → ``solar_pv``).
    """
    table = activities()
    lookup: dict[str, str] = {}
    for column in ("name_en", "name_zh", "id"):
        lookup.update({label_key(v): i for v, i in zip(table[column], table["id"], strict=True)})
    return lookup


# --------------------------------------------------------------------------------------------
# Provinces and the places below them
@cache
def provinces() -> pl.DataFrame:
    """China's provincial-level divisions (``greenscreen/data/provinces.csv``).

    Returns
    -------
    polars.DataFrame
        ``code`` (GB/T 2260, six digits), ``name_en``, ``name_zh``, ``short_zh`` and
        ``aliases`` (``;``-separated), all text.

    References
    ----------
    GB/T 2260-2007 中华人民共和国行政区划代码 (codes of the administrative divisions).
    """
    return pl.read_csv(data_file("provinces.csv"), infer_schema=False)


@cache
def province_lookup() -> dict[str, tuple[str, str]]:
    """Every accepted spelling of a province, as :func:`label_key` gives it.

    Returns
    -------
    dict of str to (str, str)
        The code, its first two digits, the English, Chinese and short Chinese name and the
        aliases of each province → (``name_en``, ``code``): ``广东`` → (``Guangdong``,
        ``440000``).
    """
    lookup: dict[str, tuple[str, str]] = {}
    for row in provinces().iter_rows(named=True):
        target = (row["name_en"], row["code"])
        names = [row["code"], row["code"][:2], row["name_en"], row["name_zh"], row["short_zh"]]
        names += (row["aliases"] or "").split(";")
        lookup.update({label_key(n): target for n in names if n})
    return lookup


@cache
def cities() -> pl.DataFrame:
    """Prefecture- and county-level names with their province (``greenscreen/data/cities.csv``).

    Returns
    -------
    polars.DataFrame
        ``name`` (as a person writes it: 宝鸡), ``level`` (prefecture or county),
        ``province_code``, ``official_name`` (宝鸡市) and ``ambiguous`` (non-empty where the
        name is found in several provinces), all text.

    References
    ----------
    National Bureau of Statistics, 2023年统计用区划代码和城乡划分代码; built by
    ``taxonomies/sources/build_cities.py``.
    """
    return pl.read_csv(data_file("cities.csv"), infer_schema=False)


@cache
def city_lookup() -> tuple[dict[str, tuple[str, str]], dict[str, list[str]]]:
    """Names of places below the province, as :func:`label_key` gives them.

    Returns
    -------
    found : dict of str to (str, str)
        An unambiguous name → (province code, official name): ``宝鸡`` → (``610000``,
        ``宝鸡市``).
    ambiguous : dict of str to list of str
        A name found in several provinces → the codes of those provinces.
    """
    found: dict[str, tuple[str, str]] = {}
    ambiguous: dict[str, list[str]] = {}
    for row in cities().iter_rows(named=True):
        key = label_key(row["name"])
        if row["ambiguous"]:
            ambiguous.setdefault(key, []).append(row["province_code"])
        else:
            found.setdefault(key, (row["province_code"], row["official_name"]))
    return found, ambiguous


# --------------------------------------------------------------------------------------------
# Other enum fields
#: Vehicle powertrains: canonical value → the description the template's dropdown shows.
POWERTRAINS: dict[str, str] = {
    "bev": "纯电动 battery electric",
    "fcev": "燃料电池 fuel cell",
    "phev": "插电式混合动力 plug-in hybrid",
    "hev": "混合动力 hybrid",
    "ice": "燃油 combustion engine",
}

#: Closed vocabularies of enum fields other than activity and province: accepted spelling
#: (normalised like a header, :func:`label_key`) → canonical value. A value outside one is a
#: reject.
VOCABULARIES: dict[str, dict[str, str]] = {
    "powertrain": {
        **{v: v for v in POWERTRAINS},
        "纯电动": "bev",
        "纯电动汽车": "bev",
        "电动": "bev",
        "battery electric": "bev",
        "electric": "bev",
        "ev": "bev",
        "燃料电池": "fcev",
        "燃料电池汽车": "fcev",
        "氢燃料电池": "fcev",
        "fuel cell": "fcev",
        "插电式混合动力": "phev",
        "插电混动": "phev",
        "插电式混合动力汽车": "phev",
        "plug-in hybrid": "phev",
        "混合动力": "hev",
        "油电混合": "hev",
        "非插电式混合动力": "hev",
        "hybrid": "hev",
        "燃油": "ice",
        "传统燃油": "ice",
        "燃油车": "ice",
        "内燃机": "ice",
        "diesel": "ice",
        "petrol": "ice",
        "gasoline": "ice",
        "combustion": "ice",
    },
}

#: Yes/no as a cell may say it (normalised like a header, :func:`label_key`): template
#: boolean columns, rulebook and programme evidence fields (``type: boolean``) and the loan
#: book's flags all read it. A value outside it is not a yes or a no: a reject in a template
#: column, unknown (null) in an evidence column.
BOOLEANS: dict[str, bool] = {
    **dict.fromkeys(("true", "yes", "y", "1", "1.0", "是", "有", "√", "✓", "t"), True),
    **dict.fromkeys(("false", "no", "n", "0", "0.0", "否", "无", "×", "✗", "f"), False),
}

#: Names analysts type for China in the ``country`` column (upper-cased first) → ISO 3166-1.
COUNTRY_SYNONYMS = {"中国": "CN", "CHINA": "CN", "PRC": "CN", "CHN": "CN", "中华人民共和国": "CN"}
#: Names typed for a currency in the ``currency`` column (upper-cased first) → ISO 4217.
CURRENCY_SYNONYMS = {"人民币": "CNY", "RMB": "CNY", "元": "CNY", "美元": "USD", "欧元": "EUR"}
#: Currencies the template's ``currency`` dropdown offers (any ISO 4217 code is accepted).
TEMPLATE_CURRENCIES = ("CNY", "USD", "EUR", "HKD", "JPY", "GBP", "SGD")


# --------------------------------------------------------------------------------------------
# Regional grids
#: China's regional power grids, Chinese name → the region name of the grid-factor tables
#: (``greenscreen/data/factors/grid_factors.csv`` and ``grid_regions.csv``: the CCER/CDM
#: regional grids and the MEE regions).
GRID_NAMES = {
    "华北": "North",
    "东北": "Northeast",
    "华东": "East",
    "华中": "Central",
    "西北": "Northwest",
    "南方": "South",
    "西南": "Southwest",
}


def grid_name(text: pl.Expr) -> pl.Expr:
    """A ``grid_region`` input, English or Chinese, to the region name of the factor tables.

    Parameters
    ----------
    text : polars.Expr
        The column as written, with or without 电网/区域/grid/region (``华东电网``,
        ``East China grid`` is not matched, ``east grid`` is).

    Returns
    -------
    polars.Expr
        One of the :data:`GRID_NAMES` values (``East``), or null when the text names none.
    """
    base = text.str.replace_all(r"(?i)(电网|区域|grid|region)", "").str.strip_chars()
    title = base.str.to_titlecase()
    return pl.coalesce(
        base.replace_strict(GRID_NAMES, default=None),
        pl.when(title.is_in(list(GRID_NAMES.values()))).then(title),
    )
