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
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

import polars as pl

from greenscreen._resources import data_file
from greenscreen.errors import GreenscreenError
from greenscreen.rulebook import generation_mwh
from greenscreen.vocabularies import grid_name

Policy = Literal["combined_margin", "grid_average"]

METHODS: dict[str, str] = {
    "grid_power": "generation [MWh/yr] × EF_grid [tCO2/MWh] (ACM0002 / TOOL07)",
    "efficiency": "electricity_saved [MWh/yr] × EF_grid + fuel_saved [t/yr] × EF_fuel [tCO2/t]",
    "buildings": "(baseline − project) [kWh/m²/yr] × floor area [m²] / 1000 × EF_grid",
    "vehicles": (
        "vehicles × km/yr × (baseline L/100km/100 × density [t/L] × EF_fuel [tCO2/t]"
        " − EV kWh/100km/100/1000 × EF_grid)"
    ),
    "methane": "CH4 captured [t/yr] × GWP100 [+ generation × EF_grid]",
    "ccus": "CO2 stored [t/yr]",
    "storage": "displaced_tco2e_per_year supplied by the user; none otherwise",
}

_METHOD_BY_ACTIVITY = {
    **dict.fromkeys(
        [
            "solar_pv",
            "wind_onshore",
            "wind_offshore",
            "hydropower",
            "geothermal",
            "nuclear",
            "biomass_power",
            "waste_to_energy",
        ],
        "grid_power",
    ),
    **dict.fromkeys(["building_new", "building_renovation", "building_acquisition"], "buildings"),
    **dict.fromkeys(["ev_passenger", "ev_bus", "ev_truck"], "vehicles"),
    **dict.fromkeys(["biogas", "landfill_gas"], "methane"),
    **dict.fromkeys(["battery_storage", "pumped_storage"], "storage"),
    "ccus": "ccus",
}
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


@dataclass(frozen=True)
class Factors:
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
    def read(name: str) -> pl.DataFrame:
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

    required = {
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
    tables = {name: read(name) for name in required}
    for name, columns in required.items():
        missing = columns - set(tables[name].columns)
        if missing:
            raise GreenscreenError(f"factor file {name}: missing columns {sorted(missing)}")
    grid = tables["grid_factors.csv"].with_columns(
        pl.col("vintage").cast(pl.Int32, strict=False),
        pl.col("value_tco2_per_mwh").cast(pl.Float64, strict=False),
    )
    bad = grid.filter(pl.col("vintage").is_null() | ~_factor_ok("value_tco2_per_mwh"))
    if bad.height:
        raise GreenscreenError(
            "grid_factors.csv: rows without a numeric vintage or a finite, non-negative value: "
            f"{bad.head(3).to_dicts()}"
        )
    raw_fuels = tables["fuels.csv"]
    fuels = raw_fuels.with_columns(
        pl.col("tco2_per_t").cast(pl.Float64, strict=False),
        pl.col("density_kg_per_l").cast(pl.Float64, strict=False),
    )
    given = pl.col("tco2_per_t").str.strip_chars().fill_null("") != ""
    bad = raw_fuels.filter(given).with_columns(pl.col("tco2_per_t").cast(pl.Float64, strict=False))
    bad = bad.filter(~_factor_ok("tco2_per_t"))
    if bad.height:
        raise GreenscreenError(
            f"fuels.csv: tco2_per_t must be a finite, non-negative number: {bad.head(3).to_dicts()}"
        )
    return Factors(grid, tables["grid_regions.csv"], fuels, tables["constants.csv"])


def _factor_ok(column: str) -> pl.Expr:
    """A factor is a finite number ≥ 0 (null, NaN, inf and negatives are errors in the file)."""
    value = pl.col(column)
    return (value.is_finite() & (value >= 0)).fill_null(False)


# --------------------------------------------------------------------------------------------
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
    frame = _with_grid_factor(inputs, factors, config)
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
        "ef_series",
        "ef_vintage",
        "ef_region",
        "ef_weights",
        "ef_w_om",
        "ef_verification",
        "ef_source",
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


def _with_grid_factor(
    projects: pl.DataFrame, factors: Factors, config: EmissionsConfig
) -> pl.DataFrame:
    """Attach the grid factor each project uses, with its provenance."""
    regions = factors.regions.select(
        pl.col("province"),
        pl.col("cdm_grid").replace("", None).alias("_cdm_grid"),
        pl.col("mee_region").replace("", None).alias("_mee_region"),
        pl.col("mee_verification").replace("", None).alias("_mee_map_verification"),
    )
    frame = projects.join(regions, on="province", how="left", maintain_order="left")
    # grid_region overrides the province's grid for whichever series is used
    override = pl.col("grid_region").str.strip_chars()
    frame = frame.with_columns(
        pl.coalesce(grid_name(override), pl.col("_cdm_grid")).alias("_cdm_grid"),
        pl.coalesce(grid_name(override), pl.col("_mee_region")).alias("_mee_region"),
        pl.col("activity").is_in(_INTERMITTENT).fill_null(False).alias("_intermittent"),
    )
    grid = factors.grid
    if config.policy == "combined_margin":
        om = grid.filter((pl.col("series") == "ccer_om") & (pl.col("vintage") == config.cm_vintage))
        bm = grid.filter((pl.col("series") == "ccer_bm") & (pl.col("vintage") == config.cm_vintage))
        if om.height == 0 or bm.height == 0:
            raise GreenscreenError(f"no CCER OM/BM factors of vintage {config.cm_vintage}")
        for table, value, verification in ((om, "_om", "_om_v"), (bm, "_bm", "_bm_v")):
            frame = frame.join(
                table.select(
                    pl.col("region").alias("_cdm_grid"),
                    pl.col("value_tco2_per_mwh").alias(value),
                    pl.col("verification").alias(verification),
                ),
                on="_cdm_grid",
                how="left",
                maintain_order="left",
            )
        published = pl.lit("ccer_combined_margin")
        region = pl.col("_cdm_grid")
        vintage = pl.lit(config.cm_vintage, pl.Int32)
        published_v = _worst(pl.col("_om_v"), pl.col("_bm_v"))
    else:
        chosen = grid.filter(
            (pl.col("series") == config.average_series)
            & (pl.col("vintage") == config.average_vintage)
        )
        if chosen.height == 0:
            raise GreenscreenError(
                f"no {config.average_series} factors of vintage {config.average_vintage}; "
                f"available: {sorted(set(zip(grid['series'], grid['vintage'], strict=True)))}"
            )
        by_region = chosen.filter(pl.col("scope") == "region").select(
            pl.col("region").alias("_mee_region"),
            pl.col("value_tco2_per_mwh").alias("_reg"),
            pl.col("verification").alias("_reg_v"),
        )
        national = chosen.filter(pl.col("scope") == "national")
        frame = frame.join(by_region, on="_mee_region", how="left", maintain_order="left")
        if config.average_scope == "province":
            by_prov = chosen.filter(pl.col("scope") == "province").select(
                pl.col("region").alias("province"),
                pl.col("value_tco2_per_mwh").alias("_prov"),
                pl.col("verification").alias("_prov_v"),
            )
            frame = frame.join(by_prov, on="province", how="left", maintain_order="left")
        else:
            frame = frame.with_columns(
                pl.lit(None, pl.Float64).alias("_prov"), pl.lit(None, pl.String).alias("_prov_v")
            )
        nat_value = national["value_tco2_per_mwh"][0] if national.height else None
        nat_v = national["verification"][0] if national.height else None
        frame = frame.with_columns(
            pl.when(pl.col("_prov").is_not_null())
            .then(pl.col("province"))
            .when(pl.col("_reg").is_not_null())
            .then(pl.col("_mee_region"))
            .when(pl.lit(nat_value).is_not_null() & (pl.col("country") == "CN"))
            .then(pl.lit("China"))
            .alias("_avg_region"),
            pl.coalesce(
                pl.col("_prov"),
                pl.col("_reg"),
                pl.when(pl.col("country") == "CN").then(pl.lit(nat_value, pl.Float64)),
            ).alias("_avg"),
            pl.coalesce(
                pl.col("_prov_v"),
                _worst(pl.col("_reg_v"), pl.col("_mee_map_verification")),
                pl.when(pl.col("country") == "CN").then(pl.lit(nat_v, pl.String)),
            ).alias("_avg_v"),
        )
        frame = frame.with_columns(
            pl.lit(None, pl.Float64).alias("_om"), pl.lit(None, pl.Float64).alias("_bm")
        )
        published = pl.lit(config.average_series)
        region = pl.col("_avg_region")
        vintage = pl.lit(config.average_vintage, pl.Int32)
        published_v = pl.col("_avg_v")

    w_om = pl.when(pl.col("_intermittent")).then(0.75).otherwise(0.5)
    weights = pl.format("OM {} / BM {}", w_om, 1 - w_om)
    override_cm = (
        pl.col("grid_ef_om_tco2_per_mwh").is_not_null()
        & pl.col("grid_ef_bm_tco2_per_mwh").is_not_null()
    )
    if config.policy == "combined_margin":
        published_value = w_om * pl.col("_om") + (1 - w_om) * pl.col("_bm")
        published_weights = weights
    else:
        published_value = pl.col("_avg")
        published_weights = pl.lit(None, pl.String)
    has_published = published_value.is_not_null()
    return frame.with_columns(
        pl.when(pl.col("grid_ef_tco2_per_mwh").is_not_null())
        .then(pl.col("grid_ef_tco2_per_mwh"))
        .when(override_cm)
        .then(
            w_om * pl.col("grid_ef_om_tco2_per_mwh")
            + (1 - w_om) * pl.col("grid_ef_bm_tco2_per_mwh")
        )
        .otherwise(published_value)
        .alias("grid_ef_tco2_per_mwh"),
        pl.when(pl.col("grid_ef_tco2_per_mwh").is_not_null())
        .then(pl.lit("project_override"))
        .when(override_cm)
        .then(pl.lit("project_override_combined_margin"))
        .when(has_published)
        .then(published)
        .alias("ef_series"),
        pl.when(pl.col("grid_ef_tco2_per_mwh").is_null() & ~override_cm & has_published)
        .then(vintage)
        .alias("ef_vintage"),
        pl.when(pl.col("grid_ef_tco2_per_mwh").is_null() & ~override_cm & has_published)
        .then(region)
        .alias("ef_region"),
        pl.when(pl.col("grid_ef_tco2_per_mwh").is_null() & override_cm)
        .then(weights)
        .when(pl.col("grid_ef_tco2_per_mwh").is_null() & has_published)
        .then(published_weights)
        .alias("ef_weights"),
        # the operating-margin weight as a number, for whatever recomputes the factor (the
        # Excel pack): null where no combined margin was formed
        pl.when(pl.col("grid_ef_tco2_per_mwh").is_null() & override_cm)
        .then(w_om)
        .when(
            pl.col("grid_ef_tco2_per_mwh").is_null()
            & has_published
            & pl.lit(config.policy == "combined_margin")
        )
        .then(w_om)
        .cast(pl.Float64)
        .alias("ef_w_om"),
        pl.when(pl.col("grid_ef_tco2_per_mwh").is_not_null() | override_cm)
        .then(pl.lit("project"))
        .when(has_published)
        .then(published_v)
        .alias("ef_verification"),
    )


def _worst(*levels: pl.Expr) -> pl.Expr:
    """The weakest verification level among those given (nulls ignored)."""
    rank = {"verified": 0, "secondary": 1, "unverified": 2}
    back = {v: k for k, v in rank.items()}
    ranked = [lvl.replace_strict(rank, default=None, return_dtype=pl.Int8) for lvl in levels]
    return pl.max_horizontal(ranked).replace_strict(back, default=None, return_dtype=pl.String)


def _with_avoided(frame: pl.DataFrame, factors: Factors, config: EmissionsConfig) -> pl.DataFrame:
    fuels = factors.fuels.select(
        pl.col("fuel").alias("_fuel"),
        pl.col("tco2_per_t").alias("_fuel_ef"),
        pl.col("density_kg_per_l").alias("_density"),
    )
    gwp, _ = factors.constant(f"gwp100_ch4_{config.gwp.lower()}")
    saved_something = (
        pl.col("electricity_saved_mwh").is_not_null() | pl.col("fuel_saved_t").is_not_null()
    )
    method = pl.col("activity").replace_strict(
        _METHOD_BY_ACTIVITY, default=None, return_dtype=pl.String
    )
    frame = frame.with_columns(
        pl.when(method.is_not_null())
        .then(method)
        .when(saved_something)
        .then(pl.lit("efficiency"))
        .alias("emissions_method"),
        pl.coalesce(
            pl.col("fuel_type").str.to_lowercase().str.replace_all(r"[\s-]+", "_"),
            pl.col("activity").replace_strict(
                _DEFAULT_VEHICLE_FUEL, default=None, return_dtype=pl.String
            ),
        ).alias("_fuel"),
    ).join(fuels, on="_fuel", how="left", maintain_order="left")
    ef = pl.col("grid_ef_tco2_per_mwh")
    generation = pl.col("generation_mwh")
    fuel_part = (
        pl.when(pl.col("fuel_saved_t").is_not_null())
        .then(pl.col("fuel_saved_t") * pl.col("_fuel_ef"))
        .otherwise(0.0)
    )
    elec_part = (
        pl.when(pl.col("electricity_saved_mwh").is_not_null())
        .then(pl.col("electricity_saved_mwh") * ef)
        .otherwise(0.0)
    )
    km = pl.col("vehicle_count") * pl.col("annual_km_per_vehicle")
    baseline_t = km * pl.col("baseline_fuel_l_per_100km") / 100 * pl.col("_density") / 1000
    ev_mwh = km * pl.col("ev_kwh_per_100km") / 100 / 1000
    gas_power = pl.when(generation.is_not_null()).then(generation * ef).otherwise(0.0)
    m = pl.col("emissions_method")
    avoided = (
        pl.when(m == "grid_power")
        .then(generation * ef)
        .when(m == "efficiency")
        .then(
            pl.when(
                saved_something
                & (pl.col("fuel_saved_t").is_null() | pl.col("_fuel_ef").is_not_null())
            ).then(elec_part + fuel_part)
        )
        .when(m == "buildings")
        .then(
            (pl.col("baseline_energy_use_kwh_m2") - pl.col("energy_use_kwh_m2"))
            * pl.col("floor_area_m2")
            / 1000
            * ef
        )
        .when(m == "vehicles")
        .then(baseline_t * pl.col("_fuel_ef") - ev_mwh * ef)
        .when(m == "methane")
        .then(pl.col("ch4_captured_t") * gwp + gas_power)
        .when(m == "ccus")
        .then(pl.col("co2_stored_t"))
        .when(m == "storage")
        .then(pl.col("displaced_tco2e_per_year"))
    )
    note = (
        pl.when(m.is_null())
        .then(pl.lit("no avoided-emissions method for this activity"))
        .when((m == "storage") & pl.col("displaced_tco2e_per_year").is_null())
        .then(
            pl.lit(
                "storage: no avoided emissions without a displacement basis"
                " (supply displaced_tco2e_per_year)"
            )
        )
        .when((m == "grid_power") & generation.is_null())
        .then(pl.lit("needs annual_generation_mwh, or capacity_mw and full_load_hours"))
        .when(
            m.is_in(["grid_power", "efficiency", "buildings", "vehicles"])
            & ef.is_null()
            & (m != "efficiency")
        )
        .then(
            pl.lit(
                "no grid factor: province outside the factor tables; supply grid_ef_tco2_per_mwh"
            )
        )
        .when((m == "efficiency") & ~saved_something)
        .then(pl.lit("needs electricity_saved_mwh or fuel_saved_t"))
        .when(
            (m == "efficiency")
            & pl.col("fuel_saved_t").is_not_null()
            & pl.col("_fuel_ef").is_null()
        )
        .then(
            pl.format(
                "unknown fuel_type '{}'; use one of fuels.csv",
                pl.col("fuel_type").fill_null("(none)"),
            )
        )
        .when(m.is_not_null() & avoided.is_null())
        .then(pl.format("missing inputs for the {} method", m))
        .when((m == "vehicles") & pl.col("fuel_type").is_null())
        .then(pl.format("baseline fuel assumed {} (no fuel_type given)", pl.col("_fuel")))
    )
    return frame.with_columns(
        avoided.alias("avoided_tco2e_per_year"),
        note.alias("emissions_note"),
        pl.when(m == "grid_power").then(generation).alias("_generation"),
        pl.when(m == "grid_power")
        .then(generation)
        .when(m == "efficiency")
        .then(pl.col("electricity_saved_mwh"))
        .alias("_electricity_displaced"),
    )


def _with_lifetime(frame: pl.DataFrame) -> pl.DataFrame:
    """Lifetime total and the pro-rated first calendar year.

    The first calendar year runs from ``cod`` to 31 December inclusive, on a 365-day basis
    (f1 = days / 365, at most 1). Output degrades by ``degradation_rate`` each year. Over
    ``operating_years`` N the calendar years carry f1, then full years 1 … N−1, then the
    remaining 1 − f1 of year N:

        lifetime = E × (f1 + Σ_{k=1}^{N−1} r^k + (1 − f1) r^N),  r = 1 − degradation

    which is E × Σ_{k=0}^{N−1} r^k when operation starts on 1 January (or cod is unknown).
    """
    cod = pl.col("cod")
    days = (pl.date(cod.dt.year(), 12, 31) - cod).dt.total_days() + 1
    f1 = pl.when(cod.is_null()).then(1.0).otherwise(pl.min_horizontal(days / 365.0, pl.lit(1.0)))
    r = 1 - pl.col("degradation_rate").fill_null(0.0)
    n = pl.col("operating_years").cast(pl.Float64)
    middle = pl.when(r == 1.0).then(n - 1).otherwise(r * (1 - r.pow(n - 1)) / (1 - r))
    factor = f1 + middle + (1 - f1) * r.pow(n)
    energy = pl.col("avoided_tco2e_per_year")
    return frame.with_columns(
        (energy * f1).alias("avoided_tco2e_first_year"),
        (energy * factor).alias("avoided_tco2e_lifetime"),
        f1.alias("first_year_fraction"),
    )


def _with_attribution_and_quality(
    frame: pl.DataFrame, factors: Factors, config: EmissionsConfig
) -> pl.DataFrame:
    supply_coal, _ = factors.constant("supply_coal_consumption")
    share = pl.min_horizontal(pl.col("loan_amount") / pl.col("total_investment"), pl.lit(1.0))
    share = pl.when(pl.col("total_investment") > 0).then(share)
    attributable = pl.col("avoided_tco2e_per_year") * pl.col("attributable_share")
    measured = (
        pl.when(pl.col("emissions_method") == "grid_power")
        .then(pl.col("annual_generation_mwh").is_not_null())
        .when(pl.col("emissions_method") == "vehicles")
        .then(pl.col("fuel_type").is_not_null())
        .otherwise(pl.lit(True))
    )
    factor_v = pl.col("ef_verification")
    uses_grid = pl.col("emissions_method").is_in(
        ["grid_power", "efficiency", "buildings", "vehicles"]
    ) & ~((pl.col("emissions_method") == "efficiency") & pl.col("electricity_saved_mwh").is_null())
    score = (
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
    basis = pl.concat_str(
        [
            pl.when(measured)
            .then(pl.lit("activity data given"))
            .otherwise(pl.lit("activity data estimated (capacity × hours or default fuel)")),
            pl.when(uses_grid).then(pl.format("grid factor {}", factor_v.fill_null("none"))),
        ],
        separator="; ",
        ignore_nulls=True,
    )
    latest = factors.grid["vintage"].cast(pl.Int64).max()
    # without an approval date, the age of a factor is judged against the newest vintage known
    approval_year = pl.coalesce(pl.col("approval_date").dt.year(), pl.lit(latest, pl.Int64))
    hours = pl.col("_generation") / pl.col("capacity_mw")
    low = pl.col("activity").replace_strict(
        {k: v[0] for k, v in config.plausible_hours.items()}, default=None, return_dtype=pl.Float64
    )
    high = pl.col("activity").replace_strict(
        {k: v[1] for k, v in config.plausible_hours.items()}, default=None, return_dtype=pl.Float64
    )
    stated = pl.col("capacity_mw") * pl.col("full_load_hours")
    # (condition, message): the messages are formatted on the flagged rows only (a tenth of
    # a pipeline at most), not on every project (measured: 2.5 of 3.3 CPU s at 1M rows)
    flags = [
        (
            (hours < low) | (hours > high),
            pl.format(
                "implausible yield: {} full-load hours (expected {}–{})", hours.round(0), low, high
            ),
        ),
        (
            pl.col("annual_generation_mwh").is_not_null()
            & stated.is_not_null()
            & ((pl.col("annual_generation_mwh") - stated).abs() > 0.1 * stated),
            pl.lit(
                "annual_generation_mwh differs from capacity × full_load_hours by more than 10 %"
            ),
        ),
        (
            uses_grid
            & pl.col("ef_vintage").is_not_null()
            & (approval_year - pl.col("ef_vintage") > config.stale_years),
            pl.format(
                "grid factor vintage {} is more than {} years before {}",
                pl.col("ef_vintage"),
                pl.lit(config.stale_years),
                approval_year,
            ),
        ),
        (
            pl.col("avoided_tco2e_per_year") < 0,
            pl.lit("negative avoided emissions: the project adds emissions"),
        ),
    ]
    frame = frame.with_columns(share.alias("attributable_share")).with_columns(
        attributable.alias("attributable_tco2e_per_year"),
        (attributable / (pl.col("loan_amount") / 1e6)).alias("tco2e_per_million_lent"),
        (pl.col("_electricity_displaced") * supply_coal * _TCE_PER_MWH_PER_GCE_KWH).alias(
            "standard_coal_saved_tce_per_year"
        ),
        score.alias("data_quality_score"),
        pl.when(score.is_not_null()).then(basis).alias("data_quality_basis"),
        _source_text().alias("ef_source"),
    )
    return frame.with_columns(_flag_lists(frame, flags).alias("emissions_flags"))


def _flag_lists(frame: pl.DataFrame, flags: list[tuple[pl.Expr, pl.Expr]]) -> pl.Series:
    """Per row, the messages whose condition holds (an empty list where none does)."""
    raised = frame.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"),
        *(cond.fill_null(False).alias(f"_f{k}") for k, (cond, _) in enumerate(flags)),
    ).filter(pl.any_horizontal(pl.exclude("_row")))
    messages = frame[raised["_row"]].select(
        pl.concat_list(
            [pl.when(raised[f"_f{k}"]).then(text) for k, (_, text) in enumerate(flags)]
        ).list.drop_nulls()
    )
    listed = raised.select("_row").with_columns(messages.to_series().alias("flags"))
    return (
        frame.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"))
        .join(listed, on="_row", how="left", maintain_order="left")
        .select(pl.col("flags").fill_null(pl.lit([], pl.List(pl.String))))
        .to_series()
    )


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
