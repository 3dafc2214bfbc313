"""Avoided emissions per project: per year, over the life, attributable to the loan.

Every factor comes from a data file with its series, vintage, region and verification status
(``greenscreen/data/factors/``), and every result records which one was used (``ef_source``).
China publishes several grid factors that are different things; they are kept apart as
*series* and never mixed:

- ``ccer_om`` / ``ccer_bm``: CCER/CDM regional baseline operating and build margins (TOOL07),
  six CDM grids, 2019 edition;
- ``mee_nbs_average`` (and the ``excl_market_nonfossil`` and ``fossil`` calibres): MEE+NBS
  electricity CO2 factors, national, seven regions and provinces, 2021–2023;
- ``ets_grid_average``: the national grid average of the ETS reporting notices (2022).

Methods (vectorised over all projects; formulas in :data:`METHODS`):

``grid_power`` (ACM0002 / TOOL07)
    avoided = net generation × EF_grid; generation = annual_generation_mwh, else
    capacity_mw × full_load_hours. With the combined-margin policy EF = wOM·OM + wBM·BM,
    wOM/wBM = 0.75/0.25 for wind and solar, 0.5/0.5 for other technologies (first crediting
    period).
``efficiency``
    electricity_saved_mwh × EF_grid + fuel_saved_t × EF_fuel.
``buildings``
    (baseline_energy_use_kwh_m2 − energy_use_kwh_m2) × floor_area_m2 / 1000 × EF_grid
    (energy use taken as electricity).
``vehicles``
    vehicle_count × annual_km × (baseline L/100km / 100 × density × EF_fuel − EV kWh/100km /
    100 / 1000 × EF_grid). Negative on a coal-heavy grid with an efficient baseline: reported
    as negative, never clamped.
``methane`` (biogas, landfill gas)
    ch4_captured_t × GWP100(CH4) [+ generation × EF_grid when the gas is used for power].
``ccus``
    co2_stored_t.
``storage``
    no avoided emissions unless the user supplies ``displaced_tco2e_per_year``.

The method registry: each method is one small function (``_grid_power``, ``_efficiency``, …)
returning an ``_Avoided``, polars expressions over all projects at once (the avoided tCO2e/yr,
the notes explaining a missing value, whether the grid factor enters, the electricity
displaced). ``_REGISTRY`` maps each method name to its function, its formula (shown in
reports: :data:`METHODS`) and the activities that use it; an activity without a method of its
own that reports savings uses ``efficiency``. ``_with_avoided`` evaluates every entry and keeps,
on each project, the expressions of its ``emissions_method``. Adding a method is one function
and one registry entry.

The estimate runs in steps over the whole frame: the method and fuel each project's activity
and fuel type decide (``_with_method_and_fuel``), the grid factor and its provenance
(``_with_grid_factor``: the project's own factor, else its own OM/BM, else the policy's
published factor), the avoided emissions (``_with_avoided``), the lifetime and first year
(``_with_lifetime``), then attribution, data quality and flags
(``_with_attribution_and_quality``). What depends only on a few texts (activity, province,
fuel type, verification level) is worked out once per distinct value, or combination of
values, and gathered back to the projects by an integer code; texts that depend on a
project's own numbers are formatted on the projects that need them only.

Default grid policy: ``combined_margin`` — the CCER/CDM practice for project-level avoided
emissions (the margin a new plant displaces), used by most Chinese green-loan and green-bond
impact reports. Its 2019 build margins are unverified in greenscreen's sources, so results
under it carry ``ef_verification = unverified``; the ``grid_average`` policy (MEE+NBS, verified
values) is the conservative alternative.

References
----------
UNFCCC CDM methodology ACM0002 and TOOL07 ("Tool to calculate the emission factor for an
electricity system"); IPCC 2006 Guidelines Vol. 2; PCAF Global GHG Accounting and Reporting
Standard (project finance: attribution = outstanding amount / total project cost).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import polars as pl

from greenscreen._resources import data_file
from greenscreen.errors import GreenscreenError
from greenscreen.rulebook import generation_mwh
from greenscreen.vocabularies import grid_name

if TYPE_CHECKING:  # polars' when/then chain types, for annotations only
    from polars.expr.whenthen import ChainedThen, Then

Policy = Literal["combined_margin", "grid_average"]

_INTERMITTENT = ["solar_pv", "wind_onshore", "wind_offshore"]
_DEFAULT_VEHICLE_FUEL = {"ev_truck": "diesel", "ev_bus": "diesel", "ev_passenger": "gasoline"}
_TCE_PER_MWH_PER_GCE_KWH = 1e-3  # gce/kWh × 1000 kWh/MWh / 1e6 g/t

#: greenscreen's plausibility bounds on full-load hours [h/yr] per technology (not regulatory
#: figures: wide sanity ranges; PV reference points ~1,000 h Henan rooftops, ~1,700 h upper end,
#: seeds 000 and 001).
PLAUSIBLE_HOURS: dict[str, tuple[float, float]] = {
    "solar_pv": (600, 2_200),
    "wind_onshore": (1_200, 4_500),
    "wind_offshore": (1_800, 5_000),
    "hydropower": (1_500, 7_000),
    "nuclear": (5_000, 8_784),
    "biomass_power": (3_000, 8_000),
    "geothermal": (4_000, 8_784),
    "waste_to_energy": (4_000, 8_500),
}


@dataclass(frozen=True)
class EmissionsConfig:
    """Choices of one run, recorded in run.json.

    Attributes
    ----------
    policy
        ``combined_margin`` (CCER/TOOL07 OM/BM by CDM grid) or ``grid_average`` (an MEE series).
    average_series, average_vintage
        Series and year for ``grid_average``, e.g. ``mee_nbs_average`` 2023.
    average_scope
        ``region`` (seven MEE regions) or ``province`` (provincial value where published,
        else the region).
    gwp
        ``AR6`` (CH4 27.9) or ``AR5`` (CH4 28).
    stale_years
        Flag factors whose vintage is more than this many years before the approval year.
    factors_dir
        A directory with your own ``grid_factors.csv``, ``grid_regions.csv``, ``fuels.csv``
        or ``constants.csv`` (same columns), replacing the bundled ones file by file.
    """

    policy: Policy = "combined_margin"
    average_series: str = "mee_nbs_average"
    average_vintage: int = 2023
    average_scope: Literal["region", "province"] = "region"
    cm_vintage: int = 2019
    gwp: Literal["AR5", "AR6"] = "AR6"
    stale_years: int = 5
    factors_dir: str | None = None
    plausible_hours: dict[str, tuple[float, float]] = field(
        default_factory=lambda: dict(PLAUSIBLE_HOURS)
    )


# --- factor tables: loading and validation ----------------------------------------------------
@dataclass(frozen=True)
class Factors:
    """The four factor tables of a run, as :func:`load_factors` returns them."""

    grid: pl.DataFrame
    regions: pl.DataFrame
    fuels: pl.DataFrame
    constants: pl.DataFrame

    def constant(self, name: str) -> tuple[float, str]:
        """A named constant of constants.csv and its verification level (GWP100 of CH4,
        supply coal consumption [gce/kWh], …); a GreenscreenError when it is missing."""
        row = self.constants.filter(pl.col("name") == name)
        if row.height != 1:
            raise GreenscreenError(f"constant '{name}' is missing from constants.csv")
        return float(row["value"][0]), str(row["verification"][0])


FACTOR_FILES = ("grid_factors.csv", "grid_regions.csv", "fuels.csv", "constants.csv")

#: the columns each factor file must have (a user's replacement file included)
_FACTOR_COLUMNS: dict[str, set[str]] = {
    "grid_factors.csv": {
        "series",
        "vintage",
        "scope",
        "region",
        "value_tco2_per_mwh",
        "verification",
        "source",
    },
    "grid_regions.csv": {"province", "cdm_grid", "mee_region", "mee_verification"},
    "fuels.csv": {"fuel", "tco2_per_t", "density_kg_per_l", "verification", "source"},
    "constants.csv": {"name", "value", "unit", "verification", "source"},
}


def load_factors(factors_dir: str | Path | None = None) -> Factors:
    """The factor tables: bundled, with any file in ``factors_dir`` replacing its namesake.

    Parameters
    ----------
    factors_dir : str or pathlib.Path, optional
        A folder of replacement tables (any of :data:`FACTOR_FILES`, same columns).

    Returns
    -------
    Factors
        ``grid`` (grid emission factors [tCO2/MWh] by series, vintage, region, each with its
        source and verification), ``regions`` (province → CDM grid and MEE region),
        ``fuels`` (fuel emission factors [tCO2/t], densities [kg/L]) and ``constants``.

    Raises
    ------
    GreenscreenError
        The folder is missing or a table is malformed.
    """
    if not factors_dir:
        return _load_factors(None, ())
    folder = Path(factors_dir)
    if not folder.is_dir():
        raise GreenscreenError(f"factor directory not found: {folder}")
    # cached per directory and file versions, so an edited file is read again
    stamps = tuple(
        (name, path.stat().st_mtime_ns, path.stat().st_size)
        for name in FACTOR_FILES
        if (path := folder / name).is_file()
    )
    return _load_factors(str(folder), stamps)


@cache
def _load_factors(factors_dir: str | None, _stamps: tuple[tuple[str, int, int], ...]) -> Factors:
    """Read, check and type the four tables (cached per folder and file versions)."""
    tables = {name: _read_factor_file(factors_dir, name) for name in _FACTOR_COLUMNS}
    for name, columns in _FACTOR_COLUMNS.items():
        missing = columns - set(tables[name].columns)
        if missing:
            raise GreenscreenError(f"factor file {name}: missing columns {sorted(missing)}")
    return Factors(
        grid=_grid_table(tables["grid_factors.csv"]),
        regions=tables["grid_regions.csv"],
        fuels=_fuel_table(tables["fuels.csv"]),
        constants=tables["constants.csv"],
    )


def _read_factor_file(factors_dir: str | None, name: str) -> pl.DataFrame:
    """One factor file, every column as text: the copy in ``factors_dir`` if there is one,
    else the bundled file. Lines starting with ``#`` (sources, caveats) are skipped."""
    path = Path(factors_dir) / name if factors_dir else None
    if path is None or not path.is_file():
        path = data_file(f"factors/{name}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except UnicodeDecodeError as exc:
        raise GreenscreenError(f"factor file {path} is not UTF-8 text: {exc}") from exc
    text = "".join(line for line in lines if not line.startswith("#"))
    try:
        return pl.read_csv(io.StringIO(text), infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        raise GreenscreenError(f"cannot read factor file {path}: {exc}") from exc


def _grid_table(raw: pl.DataFrame) -> pl.DataFrame:
    """grid_factors.csv with ``vintage`` [year] as Int32 and ``value_tco2_per_mwh`` as Float64.

    Every row needs both: the vintage decides which factor a run uses and whether it is stale.
    """
    grid = raw.with_columns(
        pl.col("vintage").cast(pl.Int32, strict=False),
        pl.col("value_tco2_per_mwh").cast(pl.Float64, strict=False),
    )
    bad = grid.filter(pl.col("vintage").is_null() | ~_factor_ok("value_tco2_per_mwh"))
    if bad.height:
        raise GreenscreenError(
            "grid_factors.csv: rows without a numeric vintage or a finite, non-negative value: "
            f"{bad.head(3).to_dicts()}"
        )
    return grid


def _fuel_table(raw: pl.DataFrame) -> pl.DataFrame:
    """fuels.csv with ``tco2_per_t`` and ``density_kg_per_l`` as Float64.

    A blank ``tco2_per_t`` is allowed (the fuel is then unknown to the methods); a given one
    must be a finite number ≥ 0.
    """
    fuels = raw.with_columns(
        pl.col("tco2_per_t").cast(pl.Float64, strict=False),
        pl.col("density_kg_per_l").cast(pl.Float64, strict=False),
    )
    given = pl.col("tco2_per_t").str.strip_chars().fill_null("") != ""
    bad = raw.filter(given).with_columns(pl.col("tco2_per_t").cast(pl.Float64, strict=False))
    bad = bad.filter(~_factor_ok("tco2_per_t"))
    if bad.height:
        raise GreenscreenError(
            f"fuels.csv: tco2_per_t must be a finite, non-negative number: {bad.head(3).to_dicts()}"
        )
    return fuels


def _factor_ok(column: str) -> pl.Expr:
    """A factor is a finite number ≥ 0 (null, NaN, inf and negatives are errors in the file)."""
    value = pl.col(column)
    return (value.is_finite() & (value >= 0)).fill_null(False)


# --- the estimate -----------------------------------------------------------------------------
def estimate(projects: pl.DataFrame, config: EmissionsConfig | None = None) -> pl.DataFrame:
    """Avoided emissions for every project.

    Parameters
    ----------
    projects
        Accepted projects (template v1 columns) with the screening's ``activity``.
    config
        Run choices (grid policy, series, GWP, …); default :class:`EmissionsConfig`.

    Returns
    -------
    polars.DataFrame
        One row per project, in input order: ``emissions_method``,
        ``avoided_tco2e_per_year`` [tCO2e/yr], ``avoided_tco2e_first_year`` (pro-rated from
        ``cod``), ``avoided_tco2e_lifetime`` [tCO2e], ``grid_ef_tco2_per_mwh``, ``ef_series``,
        ``ef_vintage``, ``ef_region``, ``ef_weights``, ``ef_verification``, ``ef_source``,
        ``attributable_share``, ``attributable_tco2e_per_year``, ``tco2e_per_million_lent``,
        ``standard_coal_saved_tce_per_year``, ``data_quality_score`` (1 best … 5),
        ``data_quality_basis``, ``emissions_flags`` and ``emissions_note``.
    """
    config = config or EmissionsConfig()
    factors = load_factors(config.factors_dir)
    # only the inputs the methods read: the joins below copy every column they are given,
    # and the screened results carry a hundred more (measured at 1M rows: 6.2 → 3 CPU s)
    inputs = projects.select(pl.col(_INPUTS), generation_mwh(projects.columns))
    frame = _with_method_and_fuel(inputs, factors.fuels, config)
    frame = _with_grid_factor(frame, factors, config)
    frame = _with_avoided(frame, factors, config)
    frame = _with_lifetime(frame)
    frame = _with_attribution_and_quality(frame, factors, config)
    return frame.select(
        "project_id",
        "emissions_method",
        "avoided_tco2e_per_year",
        "avoided_tco2e_first_year",
        "avoided_tco2e_lifetime",
        "first_year_fraction",
        "grid_ef_tco2_per_mwh",
        *_EF_COLUMNS[1:],  # the factor's provenance
        "attributable_share",
        "attributable_tco2e_per_year",
        "tco2e_per_million_lent",
        "standard_coal_saved_tce_per_year",
        "data_quality_score",
        "data_quality_basis",
        "emissions_flags",
        "emissions_note",
    )


#: the project columns the estimate reads (template v1 names)
_INPUTS = (
    "project_id",
    "activity",
    "country",
    "province",
    "grid_region",
    "grid_ef_tco2_per_mwh",
    "grid_ef_om_tco2_per_mwh",
    "grid_ef_bm_tco2_per_mwh",
    "capacity_mw",
    "full_load_hours",
    "annual_generation_mwh",
    "electricity_saved_mwh",
    "fuel_saved_t",
    "fuel_type",
    "vehicle_count",
    "annual_km_per_vehicle",
    "baseline_fuel_l_per_100km",
    "ev_kwh_per_100km",
    "baseline_energy_use_kwh_m2",
    "energy_use_kwh_m2",
    "floor_area_m2",
    "ch4_captured_t",
    "co2_stored_t",
    "displaced_tco2e_per_year",
    "cod",
    "approval_date",
    "operating_years",
    "degradation_rate",
    "loan_amount",
    "total_investment",
)


def _encoded(column: pl.Series, values: pl.Series | None = None) -> tuple[pl.Series, pl.Series]:
    """A text column of few distinct values (activity, province, fuel type…) as codes.

    Returns the code of each row (UInt32) and the values it indexes, null last: what depends
    on the values is worked out once per value on that small series and gathered back by code,
    instead of looking the text up on every row for each derived column (a hash of every row
    each time, ~45 ms at 1M rows). ``values``, when given, are the only ones that matter: any
    other is coded as null (which saves finding the column's distinct values, ~20 ms at 1M).
    """
    if values is None:
        values = column.drop_nulls().unique().sort()
    codes = column.cast(pl.Enum(values), strict=False).to_physical()
    return codes.cast(pl.UInt32).fill_null(len(values)), values.extend_constant(None, 1)


def _with_method_and_fuel(
    frame: pl.DataFrame, fuels: pl.DataFrame, config: EmissionsConfig
) -> pl.DataFrame:
    """What each project's activity and fuel decide.

    ``emissions_method`` (the activity's registry method, else the fallback where savings are
    reported) and its index in the registry, ``_method``; ``_intermittent`` (the TOOL07
    weights), the plausible full-load hours ``_low`` and ``_high`` (with ``_expected``, their
    text); the fuel ``_fuel``: ``fuel_type`` normalised (``Natural Gas`` → ``natural_gas``),
    else a vehicle activity's default baseline fuel, with its factor ``_fuel_ef`` [tCO2/t] and
    density ``_density`` [kg/L] from fuels.csv.

    All of it depends on the activity and the fuel type only: it is worked out once per
    distinct activity and per (fuel type, activity) pair, and gathered back by code (measured
    at 1M projects: 0.27–0.45 → 0.16–0.22 CPU s; five lookups by text, a regex on every fuel
    type and a join on the fuel before).
    """
    hours = config.plausible_hours
    # the activities these columns depend on: any other gives what a null activity gives
    known = {*_METHOD_INDEX_BY_ACTIVITY, *_DEFAULT_VEHICLE_FUEL, *_INTERMITTENT, *hours}
    activity, activities = _encoded(frame["activity"], pl.Series(sorted(known), dtype=pl.String))
    fuel_type, fuel_types = _encoded(frame["fuel_type"])
    by_activity = activities.to_frame("activity").select(
        pl.col("activity")
        .replace_strict(_METHOD_INDEX_BY_ACTIVITY, default=None, return_dtype=pl.UInt8)
        .alias("_activity_method"),
        pl.col("activity").is_in(_INTERMITTENT).fill_null(False).alias("_intermittent"),
        *(
            pl.col("activity")
            .replace_strict(
                {k: v[end] for k, v in hours.items()}, default=None, return_dtype=pl.Float64
            )
            .alias(name)
            for end, name in ((0, "_low"), (1, "_high"))
        ),
    )
    by_activity = by_activity.with_columns(pl.format("{}–{}", "_low", "_high").alias("_expected"))
    # every (fuel type, activity) pair, at code fuel_type × len(activities) + activity
    pair = pl.int_range(len(fuel_types) * len(activities), dtype=pl.UInt32)
    if fuels["fuel"].is_duplicated().any():
        raise GreenscreenError("fuels.csv lists a fuel twice")
    table = fuels.select(
        pl.col("fuel").alias("_fuel"),
        pl.col("tco2_per_t").alias("_fuel_ef"),
        pl.col("density_kg_per_l").alias("_density"),
    )
    by_pair = (
        pl.select(
            pl.lit(fuel_types).gather(pair // len(activities)).alias("fuel_type"),
            pl.lit(activities).gather(pair % len(activities)).alias("activity"),
        )
        .select(
            pl.coalesce(
                pl.col("fuel_type").str.to_lowercase().str.replace_all(r"[\s-]+", "_"),
                pl.col("activity").replace_strict(
                    _DEFAULT_VEHICLE_FUEL, default=None, return_dtype=pl.String
                ),
            ).alias("_fuel")
        )
        .join(table, on="_fuel", how="left", maintain_order="left")
    )
    pairs = fuel_type * len(activities) + activity
    frame = frame.with_columns(
        *(by_activity[name].gather(activity) for name in by_activity.columns),
        *(by_pair[name].gather(pairs) for name in by_pair.columns),
    )
    method = pl.col("_activity_method")
    fallback = pl.lit(_METHOD_INDEX[_FALLBACK_METHOD], pl.UInt8)
    frame = frame.with_columns(
        pl.when(method.is_not_null())
        .then(method)
        .when(_saved_something())
        .then(fallback)
        .alias("_method")
    )
    return frame.with_columns(
        pl.lit(pl.Series(list(_REGISTRY), dtype=pl.String))
        .gather("_method")
        .alias("emissions_method")
    )


def _saved_something() -> pl.Expr:
    """Whether the project reports electricity or fuel saved."""
    return pl.col("electricity_saved_mwh").is_not_null() | pl.col("fuel_saved_t").is_not_null()


# --- grid-factor selection --------------------------------------------------------------------
@dataclass(frozen=True)
class _Published:
    """The published factor a grid policy offers each project, as expressions over the frame.

    ``value`` [tCO2/MWh] is null where the tables hold nothing for the project; ``weights``
    (text) and ``w_om`` are null for a grid average, which has no OM/BM split.
    """

    value: pl.Expr
    series: pl.Expr
    region: pl.Expr
    vintage: pl.Expr
    verification: pl.Expr
    weights: pl.Expr
    w_om: pl.Expr


#: the provenance columns (``ef_source`` included) of :func:`_grid_factor_columns`
_EF_COLUMNS = (
    "grid_factor",
    "ef_series",
    "ef_vintage",
    "ef_region",
    "ef_weights",
    "ef_w_om",
    "ef_verification",
    "ef_source",
)

#: which factor a project uses (``_choice``), in order of precedence: its own factor, its own
#: OM and BM combined, the policy's published factor
_OWN, _OWN_MARGINS, _PUBLISHED = 0, 1, 2


def _with_grid_factor(
    frame: pl.DataFrame, factors: Factors, config: EmissionsConfig
) -> pl.DataFrame:
    """Attach the grid factor each project uses, with its provenance (the ``ef_*`` columns and
    ``ef_source``, and ``_ev``: ``ef_verification`` as an Enum, for the data-quality basis).

    Besides the project's own figures, the factor and its texts depend on its province,
    ``grid_region``, whether its output is intermittent (the OM weight), whether it is in China
    (the national fallback) and which factor it uses (``_choice``). These are coded into one
    integer per project; the factor and all its texts are worked out once per distinct code (a
    few thousand at most) and gathered back by it, and only a project's own factor (and its
    text) is computed per project. Measured at 1M projects: 1.6 → 0.4 CPU s with texts worked
    out per key instead of per project; then 0.27–0.80 → 0.17–0.29 CPU s with an integer key
    (the unique and the join on four texts row-encoded every project twice) and the choice in
    the key (choosing the texts per project cost 0.17 s).
    """
    own = pl.col("grid_ef_tco2_per_mwh")
    own_om, own_bm = pl.col("grid_ef_om_tco2_per_mwh"), pl.col("grid_ef_bm_tco2_per_mwh")
    # the provinces of the factor tables: any other finds nothing there, as a null one
    known = {*factors.regions["province"].drop_nulls(), *factors.grid["region"].drop_nulls()}
    province, provinces = _encoded(frame["province"], pl.Series(sorted(known), dtype=pl.String))
    region, regions = _encoded(frame["grid_region"])
    # key = (province × len(regions) + region) × 12 + intermittent × 6 + in China × 3 + choice
    size = 12 * len(provinces) * len(regions)
    dtype = pl.UInt32 if size < 2**32 else pl.UInt64
    key = frame.select(
        (pl.lit(province).cast(dtype) * len(regions) + pl.lit(region).cast(dtype)) * 12
        + pl.col("_intermittent").cast(dtype) * 6
        + (pl.col("country") == "CN").fill_null(False).cast(dtype) * 3
        + pl.when(own.is_not_null())
        .then(pl.lit(_OWN, dtype))
        .when(own_om.is_not_null() & own_bm.is_not_null())
        .then(pl.lit(_OWN_MARGINS, dtype))
        .otherwise(pl.lit(_PUBLISHED, dtype))
    ).to_series()
    code = pl.col("_grid_key")
    keys = key.unique().sort()
    table = keys.to_frame("_grid_key").select(
        code,
        pl.lit(provinces).gather(code // (12 * len(regions))).alias("province"),
        pl.lit(regions).gather(code // 12 % len(regions)).alias("grid_region"),
        _om_weight(code // 6 % 2 == 1).alias("_w_om"),
        (code // 3 % 2 == 1).alias("_in_china"),
        (code % 3).alias("_choice"),
    )
    table = _with_grid_regions(table, factors.regions)
    if config.policy == "combined_margin":
        table, published = _with_combined_margin(table, factors.grid, config.cm_vintage)
    else:
        table, published = _with_grid_average(table, factors.grid, config)
    table = table.with_columns(_grid_factor_columns(published)).with_columns(
        _source_text().alias("ef_source")
    )
    levels = table["ef_verification"].drop_nulls().unique().sort()
    table = table.select(
        "_w_om",
        pl.col("grid_ef_tco2_per_mwh").alias("_published_factor"),
        *_EF_COLUMNS[1:],
        pl.col("ef_verification").cast(pl.Enum(levels)).alias("_ev"),
    )
    if table.height != len(keys):
        raise GreenscreenError(
            "grid_regions.csv or grid_factors.csv lists a province or a region twice"
        )
    # each project's row of the table, by its key: a lookup and a gather per column (a join
    # on the key cost twice as much)
    row = key.replace_strict(keys, pl.int_range(len(keys), dtype=pl.UInt32, eager=True))
    frame = frame.with_columns(table[name].gather(row) for name in table.columns)
    # the one text that differs per project, its own factor (null in the table), formatted on
    # those projects only (on every row: 0.07 CPU s at 1M projects, a tenth with a factor)
    rows = frame["grid_ef_tco2_per_mwh"].is_not_null().arg_true()
    own_source = frame.select(pl.format("project override {} tCO2/MWh", own.gather(rows).round(4)))
    return frame.with_columns(
        pl.when(own.is_not_null())
        .then(own)
        .when(own_om.is_not_null() & own_bm.is_not_null())
        .then(_combined_margin(pl.col("_w_om"), own_om, own_bm))
        .otherwise(pl.col("_published_factor"))
        .alias("grid_ef_tco2_per_mwh"),
        frame["ef_source"].scatter(rows, own_source.to_series()),
    )


def _with_grid_regions(frame: pl.DataFrame, regions: pl.DataFrame) -> pl.DataFrame:
    """Each row's CDM grid and MEE region, by its ``province`` and ``grid_region``.

    The grids come from the province (grid_regions.csv), unless the project names its grid in
    ``grid_region``: the project's own statement beats a province-wide mapping, for whichever
    series is used.
    """
    table = regions.select(
        pl.col("province"),
        pl.col("cdm_grid").replace("", None).alias("_cdm_grid"),
        pl.col("mee_region").replace("", None).alias("_mee_region"),
        pl.col("mee_verification").replace("", None).alias("_mee_map_verification"),
    )
    frame = frame.join(table, on="province", how="left", maintain_order="left")
    override = grid_name(pl.col("grid_region").str.strip_chars())
    return frame.with_columns(
        pl.coalesce(override, pl.col("_cdm_grid")).alias("_cdm_grid"),
        pl.coalesce(override, pl.col("_mee_region")).alias("_mee_region"),
    )


def _om_weight(intermittent: pl.Expr) -> pl.Expr:
    """TOOL07's operating-margin weight wOM (wBM = 1 − wOM), first crediting period.

    0.75 for wind and solar (``intermittent``: :data:`_INTERMITTENT`), whose non-dispatchable
    output displaces mostly running plants; 0.5 for every other technology.
    """
    return pl.when(intermittent).then(0.75).otherwise(0.5)


def _combined_margin(w_om: pl.Expr, om: pl.Expr, bm: pl.Expr) -> pl.Expr:
    """EF = wOM·OM + (1 − wOM)·BM [tCO2/MWh] (TOOL07)."""
    return w_om * om + (1 - w_om) * bm


def _weights_text(w_om: pl.Expr) -> pl.Expr:
    """The weights as reported in ``ef_weights``: ``OM 0.75 / BM 0.25``."""
    return pl.format("OM {} / BM {}", w_om, 1 - w_om)


def _join_factor(frame: pl.DataFrame, rows: pl.DataFrame, key: str, name: str) -> pl.DataFrame:
    """Join factor rows on their ``region`` (matched to the frame's ``key``): the value
    [tCO2/MWh] as ``name`` and its verification as ``name_v``."""
    table = rows.select(
        pl.col("region").alias(key),
        pl.col("value_tco2_per_mwh").alias(name),
        pl.col("verification").alias(f"{name}_v"),
    )
    return frame.join(table, on=key, how="left", maintain_order="left")


def _with_combined_margin(
    frame: pl.DataFrame, grid: pl.DataFrame, vintage: int
) -> tuple[pl.DataFrame, _Published]:
    """The combined-margin policy: the CCER OM and BM of the project's CDM grid, weighted.

    The margin a new plant displaces is what CCER/CDM use for project-level avoided emissions.
    The result is only as verified as the weaker of OM and BM.
    """
    om, bm = (
        grid.filter((pl.col("series") == series) & (pl.col("vintage") == vintage))
        for series in ("ccer_om", "ccer_bm")
    )
    if om.height == 0 or bm.height == 0:
        raise GreenscreenError(f"no CCER OM/BM factors of vintage {vintage}")
    frame = _join_factor(frame, om, "_cdm_grid", "_om")
    frame = _join_factor(frame, bm, "_cdm_grid", "_bm")
    w_om = pl.col("_w_om")
    return frame, _Published(
        value=_combined_margin(w_om, pl.col("_om"), pl.col("_bm")),
        series=pl.lit("ccer_combined_margin"),
        region=pl.col("_cdm_grid"),
        vintage=pl.lit(vintage, pl.Int32),
        verification=_worst(pl.col("_om_v"), pl.col("_bm_v")),
        weights=_weights_text(w_om),
        w_om=w_om,
    )


def _with_grid_average(
    frame: pl.DataFrame, grid: pl.DataFrame, config: EmissionsConfig
) -> tuple[pl.DataFrame, _Published]:
    """The grid-average policy: the most local value the chosen series publishes.

    An average of the grid rather than the margin a project displaces; the MEE+NBS values
    are verified in greenscreen's sources. Province values are used with
    ``average_scope='province'`` only.
    """
    chosen = _average_rows(grid, config)
    frame = _join_factor(frame, chosen.filter(pl.col("scope") == "region"), "_mee_region", "_reg")
    if config.average_scope == "province":
        by_province = chosen.filter(pl.col("scope") == "province")
        frame = _join_factor(frame, by_province, "province", "_prov")
    else:
        frame = frame.with_columns(
            pl.lit(None, pl.Float64).alias("_prov"), pl.lit(None, pl.String).alias("_prov_v")
        )
    frame = frame.with_columns(
        *_most_local_average(chosen.filter(pl.col("scope") == "national")),
        # no margins under this policy (ef_source reads them for the combined margin)
        pl.lit(None, pl.Float64).alias("_om"),
        pl.lit(None, pl.Float64).alias("_bm"),
    )
    return frame, _Published(
        value=pl.col("_avg"),
        series=pl.lit(config.average_series),
        region=pl.col("_avg_region"),
        vintage=pl.lit(config.average_vintage, pl.Int32),
        verification=pl.col("_avg_v"),
        weights=pl.lit(None, pl.String),
        w_om=pl.lit(None, pl.Float64),
    )


def _average_rows(grid: pl.DataFrame, config: EmissionsConfig) -> pl.DataFrame:
    """The rows (all scopes) of the configured average series and vintage; an error naming
    the series and vintages the tables hold when there are none."""
    chosen = grid.filter(
        (pl.col("series") == config.average_series) & (pl.col("vintage") == config.average_vintage)
    )
    if chosen.height == 0:
        raise GreenscreenError(
            f"no {config.average_series} factors of vintage {config.average_vintage}; "
            f"available: {sorted(set(zip(grid['series'], grid['vintage'], strict=True)))}"
        )
    return chosen


def _most_local_average(national: pl.DataFrame) -> list[pl.Expr]:
    """``_avg`` [tCO2/MWh], ``_avg_region`` and ``_avg_v``: the province value, else the MEE
    region's, else the national value (projects in China only).

    A regional value is no better verified than the province-to-region mapping it rests on.
    """
    nat_value = national["value_tco2_per_mwh"][0] if national.height else None
    nat_v = national["verification"][0] if national.height else None
    in_china = pl.col("_in_china")
    return [
        pl.when(pl.col("_prov").is_not_null())
        .then(pl.col("province"))
        .when(pl.col("_reg").is_not_null())
        .then(pl.col("_mee_region"))
        .when(pl.lit(nat_value).is_not_null() & in_china)
        .then(pl.lit("China"))
        .alias("_avg_region"),
        pl.coalesce(
            pl.col("_prov"),
            pl.col("_reg"),
            pl.when(in_china).then(pl.lit(nat_value, pl.Float64)),
        ).alias("_avg"),
        pl.coalesce(
            pl.col("_prov_v"),
            _worst(pl.col("_reg_v"), pl.col("_mee_map_verification")),
            pl.when(in_china).then(pl.lit(nat_v, pl.String)),
        ).alias("_avg_v"),
    ]


def _grid_factor_columns(published: _Published) -> list[pl.Expr]:
    """The published factor and the provenance of the factor a row uses, by its ``_choice``.

    The project's own factor (``grid_ef_tco2_per_mwh``), else its own OM and BM combined with
    the TOOL07 weights, else the policy's published factor: a figure stated for the project
    beats a table value. Vintage and region describe a published factor only. The factor
    itself (``grid_ef_tco2_per_mwh``) is the published one, null where the row uses its own
    figures: those are combined per project.
    """
    choice = pl.col("_choice")
    own, own_margins = choice == _OWN, choice == _OWN_MARGINS
    has_published = published.value.is_not_null()
    uses_published = (choice == _PUBLISHED) & has_published
    w_om = pl.col("_w_om")
    return [
        pl.when(choice == _PUBLISHED).then(published.value).alias("grid_ef_tco2_per_mwh"),
        pl.when(own)
        .then(pl.lit("project_override"))
        .when(own_margins)
        .then(pl.lit("project_override_combined_margin"))
        .when(has_published)
        .then(published.series)
        .alias("ef_series"),
        pl.when(uses_published).then(published.vintage).alias("ef_vintage"),
        pl.when(uses_published).then(published.region).alias("ef_region"),
        pl.when(own_margins)
        .then(_weights_text(w_om))
        .when(uses_published)
        .then(published.weights)
        .alias("ef_weights"),
        # the operating-margin weight as a number, for whatever recomputes the factor (the
        # Excel pack): null where no combined margin was formed
        pl.when(own_margins)
        .then(w_om)
        .when(uses_published)
        .then(published.w_om)
        .cast(pl.Float64)
        .alias("ef_w_om"),
        pl.when(own | own_margins)
        .then(pl.lit("project"))
        .when(has_published)
        .then(published.verification)
        .alias("ef_verification"),
    ]


def _worst(*levels: pl.Expr) -> pl.Expr:
    """The weakest verification level among those given (nulls ignored)."""
    rank = {"verified": 0, "secondary": 1, "unverified": 2}
    back = {v: k for k, v in rank.items()}
    ranked = [lvl.replace_strict(rank, default=None, return_dtype=pl.Int8) for lvl in levels]
    return pl.max_horizontal(ranked).replace_strict(back, default=None, return_dtype=pl.String)


def _source_text() -> pl.Expr:
    """A human-readable provenance string for the factor used."""
    series = pl.col("ef_series")
    return (
        pl.when(series == "project_override")
        .then(pl.format("project override {} tCO2/MWh", pl.col("grid_ef_tco2_per_mwh").round(4)))
        .when(series == "project_override_combined_margin")
        .then(pl.format("project OM/BM override, combined margin ({})", pl.col("ef_weights")))
        .when(series == "ccer_combined_margin")
        .then(
            pl.format(
                "CCER/CDM {} combined margin, {} grid, {} ({}; OM {} / BM {})",
                pl.col("ef_vintage"),
                pl.col("ef_region"),
                pl.col("ef_weights"),
                pl.col("ef_verification"),
                pl.col("_om"),
                pl.col("_bm"),
            )
        )
        .when(series.is_not_null())
        .then(
            pl.format(
                "{} {}, {} ({})",
                series,
                pl.col("ef_vintage"),
                pl.col("ef_region"),
                pl.col("ef_verification"),
            )
        )
    )


# --- avoided emissions: one function per method, collected in _REGISTRY -----------------------
#: (condition, note): a note for the projects of a method where the condition holds
_Note = tuple[pl.Expr, pl.Expr | str]

_NO_GRID_FACTOR = "no grid factor: province outside the factor tables; supply grid_ef_tco2_per_mwh"


@dataclass(frozen=True)
class _Avoided:
    """What a method computes, as expressions over all projects (``_with_avoided`` keeps them
    on the projects of that method only).

    Attributes
    ----------
    tco2e
        Avoided emissions [tCO2e/yr]; null where the inputs do not give a value.
    problems
        Notes explaining a null value, checked in order before the generic "missing inputs".
    remarks
        Notes on a value computed under an assumption, checked after it. A note given as an
        expression is formatted on its own projects only: it must be row-wise.
    uses_grid
        Whether the grid factor enters the value (data quality, stale-factor flag).
    measured
        Whether the activity data was given rather than estimated (data quality).
    generation_mwh
        The project's own generation [MWh/yr], for the full-load-hours plausibility check.
    displaced_mwh
        Grid electricity displaced [MWh/yr], for the standard coal saved.
    """

    tco2e: pl.Expr
    problems: tuple[_Note, ...] = ()
    remarks: tuple[_Note, ...] = ()
    uses_grid: pl.Expr | bool = False
    measured: pl.Expr | bool = True
    generation_mwh: pl.Expr | None = None
    displaced_mwh: pl.Expr | None = None


@dataclass(frozen=True)
class _Constants:
    """What the methods read besides the projects' columns."""

    gwp_ch4: float  # GWP100 of CH4 under the run's ``gwp`` [tCO2e/t CH4]


def _grid_power(_: _Constants) -> _Avoided:
    """ACM0002: net generation [MWh/yr] × EF_grid [tCO2/MWh].

    Generation is ``annual_generation_mwh``, else capacity × full-load hours (then counted as
    estimated activity data).
    """
    generation = pl.col("generation_mwh")
    ef = pl.col("grid_ef_tco2_per_mwh")
    return _Avoided(
        tco2e=generation * ef,
        problems=(
            (
                generation.is_null(),
                "needs annual_generation_mwh, or capacity_mw and full_load_hours",
            ),
            (ef.is_null(), _NO_GRID_FACTOR),
        ),
        uses_grid=True,
        measured=pl.col("annual_generation_mwh").is_not_null(),
        generation_mwh=generation,
        displaced_mwh=generation,
    )


def _efficiency(_: _Constants) -> _Avoided:
    """Energy saved: electricity [MWh/yr] × EF_grid + fuel [t/yr] × EF_fuel [tCO2/t].

    A part not reported counts 0; a fuel missing from fuels.csv leaves the value null rather
    than counting it 0. A missing grid factor is reported as missing inputs (fuel savings alone
    need none).
    """
    electricity = pl.col("electricity_saved_mwh")
    fuel = pl.col("fuel_saved_t")
    fuel_ef = pl.col("_fuel_ef")
    saved = _saved_something()
    electricity_part = (
        pl.when(electricity.is_not_null())
        .then(electricity * pl.col("grid_ef_tco2_per_mwh"))
        .otherwise(0.0)
    )
    fuel_part = pl.when(fuel.is_not_null()).then(fuel * fuel_ef).otherwise(0.0)
    unknown_fuel = pl.format(
        "unknown fuel_type '{}'; use one of fuels.csv", pl.col("fuel_type").fill_null("(none)")
    )
    return _Avoided(
        tco2e=pl.when(saved & (fuel.is_null() | fuel_ef.is_not_null())).then(
            electricity_part + fuel_part
        ),
        problems=(
            (~saved, "needs electricity_saved_mwh or fuel_saved_t"),
            (fuel.is_not_null() & fuel_ef.is_null(), unknown_fuel),
        ),
        uses_grid=electricity.is_not_null(),
        displaced_mwh=electricity,
    )


def _buildings(_: _Constants) -> _Avoided:
    """Energy use below the baseline, taken as grid electricity:
    (baseline − project) [kWh/m²/yr] × floor area [m²] / 1000 × EF_grid."""
    ef = pl.col("grid_ef_tco2_per_mwh")
    saved_kwh_m2 = pl.col("baseline_energy_use_kwh_m2") - pl.col("energy_use_kwh_m2")
    return _Avoided(
        tco2e=saved_kwh_m2 * pl.col("floor_area_m2") / 1000 * ef,
        problems=((ef.is_null(), _NO_GRID_FACTOR),),
        uses_grid=True,
    )


def _vehicles(_: _Constants) -> _Avoided:
    """Electric vehicles replacing combustion ones: fleet km × (baseline fuel [t] × EF_fuel −
    EV electricity [MWh] × EF_grid).

    Negative on a coal-heavy grid with an efficient baseline: reported, never clamped. Without
    ``fuel_type`` the baseline fuel is the activity's default (diesel for buses and trucks,
    gasoline for cars), noted and counted as estimated activity data.
    """
    ef = pl.col("grid_ef_tco2_per_mwh")
    km = pl.col("vehicle_count") * pl.col("annual_km_per_vehicle")
    baseline_t = km * pl.col("baseline_fuel_l_per_100km") / 100 * pl.col("_density") / 1000
    ev_mwh = km * pl.col("ev_kwh_per_100km") / 100 / 1000
    assumed = pl.format("baseline fuel assumed {} (no fuel_type given)", pl.col("_fuel"))
    return _Avoided(
        tco2e=baseline_t * pl.col("_fuel_ef") - ev_mwh * ef,
        problems=((ef.is_null(), _NO_GRID_FACTOR),),
        remarks=((pl.col("fuel_type").is_null(), assumed),),
        uses_grid=True,
        measured=pl.col("fuel_type").is_not_null(),
    )


def _methane(constants: _Constants) -> _Avoided:
    """Methane captured instead of released: CH4 [t/yr] × GWP100, plus generation × EF_grid
    where a generation is given (the gas used for power)."""
    generation = pl.col("generation_mwh")
    power = (
        pl.when(generation.is_not_null())
        .then(generation * pl.col("grid_ef_tco2_per_mwh"))
        .otherwise(0.0)
    )
    return _Avoided(tco2e=pl.col("ch4_captured_t") * constants.gwp_ch4 + power)


def _ccus(_: _Constants) -> _Avoided:
    """CO2 stored [t/yr], as reported."""
    return _Avoided(tco2e=pl.col("co2_stored_t"))


def _storage(_: _Constants) -> _Avoided:
    """Storage shifts electricity rather than making it: what it avoids depends on what it
    displaces, so only a user-supplied ``displaced_tco2e_per_year`` counts."""
    displaced = pl.col("displaced_tco2e_per_year")
    return _Avoided(
        tco2e=displaced,
        problems=(
            (
                displaced.is_null(),
                "storage: no avoided emissions without a displacement basis"
                " (supply displaced_tco2e_per_year)",
            ),
        ),
    )


@dataclass(frozen=True)
class _Method:
    """A registry entry: the formula shown in reports, the activities using the method (by
    default) and the function computing it."""

    formula: str
    activities: tuple[str, ...]
    compute: Callable[[_Constants], _Avoided]


_REGISTRY: dict[str, _Method] = {
    "grid_power": _Method(
        "generation [MWh/yr] × EF_grid [tCO2/MWh] (ACM0002 / TOOL07)",
        (
            "solar_pv",
            "wind_onshore",
            "wind_offshore",
            "hydropower",
            "geothermal",
            "nuclear",
            "biomass_power",
            "waste_to_energy",
        ),
        _grid_power,
    ),
    "efficiency": _Method(
        "electricity_saved [MWh/yr] × EF_grid + fuel_saved [t/yr] × EF_fuel [tCO2/t]",
        (),  # the fallback: any activity without a method of its own that reports savings
        _efficiency,
    ),
    "buildings": _Method(
        "(baseline − project) [kWh/m²/yr] × floor area [m²] / 1000 × EF_grid",
        ("building_new", "building_renovation", "building_acquisition"),
        _buildings,
    ),
    "vehicles": _Method(
        "vehicles × km/yr × (baseline L/100km/100 × density [t/L] × EF_fuel [tCO2/t]"
        " − EV kWh/100km/100/1000 × EF_grid)",
        ("ev_passenger", "ev_bus", "ev_truck"),
        _vehicles,
    ),
    "methane": _Method(
        "CH4 captured [t/yr] × GWP100 [+ generation × EF_grid]",
        ("biogas", "landfill_gas"),
        _methane,
    ),
    "ccus": _Method("CO2 stored [t/yr]", ("ccus",), _ccus),
    "storage": _Method(
        "displaced_tco2e_per_year supplied by the user; none otherwise",
        ("battery_storage", "pumped_storage"),
        _storage,
    ),
}
_FALLBACK_METHOD = "efficiency"

#: the formula of each avoided-emissions method, by method name (from the registry)
METHODS: dict[str, str] = {name: method.formula for name, method in _REGISTRY.items()}

#: the index of each method in the registry (``_method``), and the method of each activity
_METHOD_INDEX = {name: index for index, name in enumerate(_REGISTRY)}
_METHOD_INDEX_BY_ACTIVITY = {
    activity: _METHOD_INDEX[name]
    for name, method in _REGISTRY.items()
    for activity in method.activities
}


def _with_avoided(frame: pl.DataFrame, factors: Factors, config: EmissionsConfig) -> pl.DataFrame:
    """``avoided_tco2e_per_year`` [tCO2e/yr] and ``emissions_note`` by the registry's methods,
    with what the later steps need (``_generation``, ``_electricity_displaced`` [MWh/yr],
    ``_uses_grid``, ``_measured``).

    The values come first: the notes read them (as a column, not a second evaluation of every
    method: eager polars does not share common subexpressions)."""
    gwp, _ = factors.constant(f"gwp100_ch4_{config.gwp.lower()}")
    results = {name: method.compute(_Constants(gwp)) for name, method in _REGISTRY.items()}
    frame = frame.with_columns(
        _by_method({name: r.tco2e for name, r in results.items()}).alias("avoided_tco2e_per_year"),
        _by_method({name: r.generation_mwh for name, r in results.items()}).alias("_generation"),
        _by_method({name: r.displaced_mwh for name, r in results.items()}).alias(
            "_electricity_displaced"
        ),
        _by_method({n: r.uses_grid for n, r in results.items()}, False).alias("_uses_grid"),
        _by_method({n: r.measured for n, r in results.items()}, True).alias("_measured"),
    )
    return frame.with_columns(_note(frame, results).alias("emissions_note"))


def _by_method(values: dict[str, pl.Expr | bool | None], otherwise: bool | None = None) -> pl.Expr:
    """Per project, the value its ``emissions_method`` gives; ``otherwise`` (null by default)
    for the other projects and for methods giving None or the ``otherwise`` value itself.

    The method is matched by its index (``_method``): an integer comparison, not a text one."""
    method = pl.col("_method")
    chain: Then | ChainedThen | None = None
    for name, value in values.items():
        if value is None or (isinstance(value, bool) and value == otherwise):
            continue
        is_method = method == _METHOD_INDEX[name]
        chain = (
            pl.when(is_method).then(value) if chain is None else chain.when(is_method).then(value)
        )
    if chain is None:
        return pl.lit(otherwise)
    return chain if otherwise is None else chain.otherwise(otherwise)


def _note(frame: pl.DataFrame, results: dict[str, _Avoided]) -> pl.Series:
    """Why a project has no avoided emissions, or what its value assumes: no method for the
    activity; else the method's own problems, in order; else missing inputs; else its
    remarks."""
    method, avoided = pl.col("_method"), pl.col("avoided_tco2e_per_year")
    notes: list[_Note] = [(method.is_null(), "no avoided-emissions method for this activity")]
    for name, result in results.items():
        notes += [((method == _METHOD_INDEX[name]) & c, text) for c, text in result.problems]
    notes += [
        (
            (method == _METHOD_INDEX[name]) & avoided.is_null(),
            f"missing inputs for the {name} method",
        )
        for name in results
    ]
    for name, result in results.items():
        notes += [((method == _METHOD_INDEX[name]) & c, text) for c, text in result.remarks]
    return _first_text(frame, notes)


def _first_text(frame: pl.DataFrame, cases: list[_Note]) -> pl.Series:
    """Per row, the text of the first case whose condition holds (null where none does).

    The conditions are cheap per row; the texts are few. Which case holds is found per row as
    a number; a plain text is then gathered by that number, and a text formatted from the
    row's values is formatted on the rows of its case only, so it must be row-wise, as the
    flags' messages are (measured at 1M projects: every text built on every row, chained, was
    0.35 of 1.9 CPU s).
    """
    chain: Then | ChainedThen | None = None
    for k, (condition, _) in enumerate(cases):
        number = pl.lit(k, pl.UInt32)
        chain = (
            pl.when(condition).then(number) if chain is None else chain.when(condition).then(number)
        )
    assert chain is not None  # there is always the first case
    case = frame.select(chain.alias("_case")).to_series()
    plain = pl.Series([t if isinstance(t, str) else None for _, t in cases], dtype=pl.String)
    texts = plain.gather(case)
    formatted = {k: t for k, (_, t) in enumerate(cases) if isinstance(t, pl.Expr)}
    if formatted:
        rows = case.is_in(list(formatted)).arg_true()
        read = sorted({name for text in formatted.values() for name in text.meta.root_names()})
        on_rows = frame.select(read).with_columns(case).select(pl.all().gather(rows))
        chain = None
        for k, text in formatted.items():
            is_case = pl.col("_case") == k
            chain = pl.when(is_case).then(text) if chain is None else chain.when(is_case).then(text)
        assert chain is not None
        texts = texts.scatter(rows, on_rows.select(chain).to_series())
    return texts


def _with_lifetime(frame: pl.DataFrame) -> pl.DataFrame:
    """Lifetime total and the pro-rated first calendar year.

    The first calendar year runs from ``cod`` to 31 December inclusive, on a 365-day basis
    (f1 = days / 365, at most 1). Output degrades by ``degradation_rate`` each year. Over
    ``operating_years`` N the calendar years carry f1, then full years 1 … N−1, then the
    remaining 1 − f1 of year N:

        lifetime = E × (f1 + Σ_{k=1}^{N−1} r^k + (1 − f1) r^N),  r = 1 − degradation

    which is E × Σ_{k=0}^{N−1} r^k when operation starts on 1 January (or cod is unknown).
    f1 and r are columns first: read four and three times, they would be computed as often.
    """
    cod = pl.col("cod")
    # days from cod to 31 December inclusive, by the day of the year (building the date of
    # 31 December on every row cost four times as much)
    days = 366 + cod.dt.is_leap_year().cast(pl.Int32) - cod.dt.ordinal_day()
    frame = frame.with_columns(
        pl.when(cod.is_null())
        .then(1.0)
        .otherwise(pl.min_horizontal(days / 365.0, pl.lit(1.0)))
        .alias("first_year_fraction"),
        (1 - pl.col("degradation_rate").fill_null(0.0)).alias("_r"),
    )
    f1, r = pl.col("first_year_fraction"), pl.col("_r")
    n = pl.col("operating_years").cast(pl.Float64)
    middle = pl.when(r == 1.0).then(n - 1).otherwise(r * (1 - r.pow(n - 1)) / (1 - r))
    factor = f1 + middle + (1 - f1) * r.pow(n)
    energy = pl.col("avoided_tco2e_per_year")
    return frame.with_columns(
        (energy * f1).alias("avoided_tco2e_first_year"),
        (energy * factor).alias("avoided_tco2e_lifetime"),
    )


# --- attribution, data quality and flags ------------------------------------------------------
def _with_attribution_and_quality(
    frame: pl.DataFrame, factors: Factors, config: EmissionsConfig
) -> pl.DataFrame:
    """The loan's share of the avoided emissions (PCAF), standard coal saved, the data-quality
    score and basis, and ``emissions_flags``."""
    supply_coal, _ = factors.constant("supply_coal_consumption")
    # in steps: a column read by a later expression is computed once, not at each reading
    frame = frame.with_columns(
        _attributable_share().alias("attributable_share"),
        _quality_score().alias("data_quality_score"),
        (pl.col("_electricity_displaced") * supply_coal * _TCE_PER_MWH_PER_GCE_KWH).alias(
            "standard_coal_saved_tce_per_year"
        ),
    )
    frame = frame.with_columns(
        (pl.col("avoided_tco2e_per_year") * pl.col("attributable_share")).alias(
            "attributable_tco2e_per_year"
        ),
        _quality_basis(frame).alias("data_quality_basis"),
    )
    frame = frame.with_columns(
        (pl.col("attributable_tco2e_per_year") / (pl.col("loan_amount") / 1e6)).alias(
            "tco2e_per_million_lent"
        )
    )
    flags = [*_yield_flags(), _stale_factor_flag(factors, config), _negative_flag()]
    return frame.with_columns(_flag_lists(frame, flags).alias("emissions_flags"))


def _attributable_share() -> pl.Expr:
    """PCAF project finance: loan amount / total project cost, at most 1; null without a
    positive total cost."""
    share = pl.min_horizontal(pl.col("loan_amount") / pl.col("total_investment"), pl.lit(1.0))
    return pl.when(pl.col("total_investment") > 0).then(share)


def _quality_score() -> pl.Expr:
    """Data quality, 1 best … 5: activity data given and a project grid factor 1; given and
    a verified factor (or none needed) 2; given otherwise 3; estimated activity data with a
    verified or project factor (or none needed) 4, else 5. Null where there is no value."""
    uses_grid, measured = pl.col("_uses_grid"), pl.col("_measured")
    factor_v = pl.col("ef_verification")
    return (
        pl.when(pl.col("avoided_tco2e_per_year").is_null())
        .then(None)
        .when(uses_grid & (factor_v == "project") & measured)
        .then(1)
        .when((~uses_grid | (factor_v == "verified")) & measured)
        .then(2)
        .when(measured)
        .then(3)
        .when((factor_v == "verified") | (factor_v == "project") | ~uses_grid)
        .then(4)
        .otherwise(5)
        .cast(pl.Int8)
    )


def _quality_basis(frame: pl.DataFrame) -> pl.Series:
    """The reasons behind the score (null where there is none): activity data given or
    estimated; the grid factor's verification where one is used.

    A few texts: one per combination of the two flags and the verification level (``_ev``),
    built once and gathered per project by the combination's number (measured at 1M
    projects: 0.14–0.16 → 0.02–0.04 CPU s, building the text on every row).
    """
    levels = frame.schema["_ev"].categories  # type: ignore[attr-defined]
    levels = levels.extend_constant(None, 1)  # null: no verification
    combination = pl.int_range(4 * len(levels), dtype=pl.UInt32)
    texts = pl.select(
        (combination % 2 == 1).alias("_measured"),
        (combination // 2 % 2 == 1).alias("_uses_grid"),
        pl.lit(levels).gather(combination // 4).alias("ef_verification"),
    ).select(_basis_text())
    # when() takes a null flag as false: so does fill_null(False)
    number = (
        pl.col("_ev").to_physical().cast(pl.UInt32).fill_null(len(levels) - 1) * 4
        + pl.col("_uses_grid").fill_null(False).cast(pl.UInt32) * 2
        + pl.col("_measured").fill_null(False).cast(pl.UInt32)
    )
    return texts.to_series().gather(
        frame.select(pl.when(pl.col("data_quality_score").is_not_null()).then(number)).to_series()
    )


def _basis_text() -> pl.Expr:
    """The basis text of :func:`_quality_basis`, from ``_measured``, ``_uses_grid`` and
    ``ef_verification``."""
    return pl.concat_str(
        [
            pl.when(pl.col("_measured"))
            .then(pl.lit("activity data given"))
            .otherwise(pl.lit("activity data estimated (capacity × hours or default fuel)")),
            pl.when(pl.col("_uses_grid")).then(
                pl.format("grid factor {}", pl.col("ef_verification").fill_null("none"))
            ),
        ],
        separator="; ",
        ignore_nulls=True,
    )


def _yield_flags() -> list[tuple[pl.Expr, pl.Expr]]:
    """Full-load hours outside the technology's plausible range (``_low``–``_high``, by
    activity), and a stated generation more than 10 % off capacity × full-load hours: both
    point to an entry or unit error in the generation the value rests on."""
    hours = pl.col("_generation") / pl.col("capacity_mw")
    stated = pl.col("capacity_mw") * pl.col("full_load_hours")
    generation = pl.col("annual_generation_mwh")
    return [
        (
            (hours < pl.col("_low")) | (hours > pl.col("_high")),
            pl.format(
                "implausible yield: {} full-load hours (expected {})",
                hours.round(0),
                pl.col("_expected"),
            ),
        ),
        (
            generation.is_not_null()
            & stated.is_not_null()
            & ((generation - stated).abs() > 0.1 * stated),
            pl.lit(
                "annual_generation_mwh differs from capacity × full_load_hours by more than 10 %"
            ),
        ),
    ]


def _stale_factor_flag(factors: Factors, config: EmissionsConfig) -> tuple[pl.Expr, pl.Expr]:
    """A grid factor more than ``stale_years`` older than the approval: the grid it describes
    has changed since. Without an approval date, age is judged against the newest vintage in
    the tables."""
    latest = factors.grid["vintage"].cast(pl.Int64).max()
    approval_year = pl.coalesce(pl.col("approval_date").dt.year(), pl.lit(latest, pl.Int64))
    return (
        pl.col("_uses_grid")
        & pl.col("ef_vintage").is_not_null()
        & (approval_year - pl.col("ef_vintage") > config.stale_years),
        pl.format(
            "grid factor vintage {} is more than {} years before {}",
            pl.col("ef_vintage"),
            pl.lit(config.stale_years),
            approval_year,
        ),
    )


def _negative_flag() -> tuple[pl.Expr, pl.Expr]:
    """A negative value (an EV fleet on a coal-heavy grid): reported, never clamped."""
    return (
        pl.col("avoided_tco2e_per_year") < 0,
        pl.lit("negative avoided emissions: the project adds emissions"),
    )


def _flag_lists(frame: pl.DataFrame, flags: list[tuple[pl.Expr, pl.Expr]]) -> pl.Series:
    """Per row, the messages whose condition holds (an empty list where none does).

    The messages are formatted on the flagged rows only (a tenth of a pipeline at most), not
    on every project (measured: 2.5 of 3.3 CPU s at 1M rows), and only the columns they read
    are carried to those rows. Each row's messages are joined into one text (once) and split,
    which polars does 4x faster than ``concat_list`` + ``list.drop_nulls`` (0.28 → 0.07 CPU s
    on 127,000 flagged rows of 1M): the messages are greenscreen's own sentences and numbers,
    so the separator (the ASCII unit separator) never occurs in them. The column is then one
    gather from those lists and an empty one (a join back on the row number and fill_null
    took 0.06–0.09 CPU s at 1M, the gather 0.01–0.02).
    """
    read = sorted({name for _, text in flags for name in text.meta.root_names()})
    raised = frame.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"),
        *(cond.fill_null(False).alias(f"_f{k}") for k, (cond, _) in enumerate(flags)),
        *read,
    ).filter(pl.any_horizontal(f"_f{k}" for k in range(len(flags))))
    joined = raised.select(
        pl.concat_str(
            [pl.when(pl.col(f"_f{k}")).then(text) for k, (_, text) in enumerate(flags)],
            separator=_SEPARATOR,
            ignore_nulls=True,
        ).alias("flags")
    )
    # no message is empty: "" is a row whose messages were all null (none, as drop_nulls had it)
    listed = joined.select(
        pl.when(pl.col("flags") != "")
        .then(pl.col("flags").str.split(_SEPARATOR))
        .otherwise(pl.lit([], pl.List(pl.String)))
    ).to_series()
    none = pl.Series("flags", [[]], dtype=pl.List(pl.String))
    position = pl.repeat(len(listed), frame.height, dtype=pl.UInt32, eager=True)
    position.scatter(raised["_row"], pl.int_range(len(listed), dtype=pl.UInt32, eager=True))
    return pl.concat([listed, none], rechunk=True).gather(position)


_SEPARATOR = "\x1f"  # between the messages of a row in _flag_lists: in none of them
