"""Template v1: the pydantic model, the derived polars schema and header resolution agree."""

from __future__ import annotations

import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from greenscreen import FIELDS, PipelineError, ProjectInput, polars_schema, read_pipeline
from greenscreen.io import resolve_header
from greenscreen.vocabularies import label_expr, label_key


def test_fields_are_derived_from_the_model() -> None:
    assert list(FIELDS) == list(ProjectInput.model_fields)
    spec = FIELDS["capacity_mw"]
    assert (spec.unit, spec.ge, spec.dtype, spec.zh) == ("MW", 0.0, pl.Float64(), "装机容量")
    assert FIELDS["project_id"].required
    assert FIELDS["interest_rate"].le == 1.0
    assert all(spec.description for spec in FIELDS.values())
    schema = polars_schema()
    assert schema["approval_date"] == pl.Date and schema["vehicle_count"] == pl.Int64
    assert list(schema)[-3:] == ["source_row", "province_code", "city"]


def test_every_field_documents_its_unit_in_its_name() -> None:
    for name, spec in FIELDS.items():
        if spec.unit in {"MW", "MWh", "m2"}:
            assert name.endswith(("_mw", "_mwh", "_m2")), name


@pytest.mark.parametrize(
    ("header", "field", "scale"),
    [
        ("capacity_mw", "capacity_mw", 1.0),
        ("项目编号", "project_id", 1.0),
        ("装机容量(MW)", "capacity_mw", 1.0),
        ("装机容量（MW）", "capacity_mw", 1.0),  # full-width parentheses
        ("装机容量 (万千瓦)", "capacity_mw", 10.0),
        ("Installed capacity [kW]", "capacity_mw", 0.001),
        ("年发电量(万kWh)", "annual_generation_mwh", 10.0),
        ("年上网电量/亿千瓦时", "annual_generation_mwh", 1e5),
        ("建筑面积(㎡)", "floor_area_m2", 1.0),
        ("Total investment (万元)", "total_investment", 1e4),
        ("贷款金额(亿元)", "loan_amount", 1e8),
        ("上网电价(元/千瓦时)", "tariff_per_mwh", 1e3),
        ("折现率(%)", "discount_rate", 0.01),
        ("Loan Amount", "loan_amount", 1.0),
    ],
)
def test_header_aliases(header: str, field: str, scale: float) -> None:
    match = resolve_header(header)
    assert match is not None
    assert (match.field, match.scale) == (field, pytest.approx(scale))


@pytest.mark.parametrize("header", ["客户经理", "remarks", "备注(内部)", "score (0-10)"])
def test_unknown_headers_are_extra_columns(header: str) -> None:
    assert resolve_header(header) is None


@pytest.mark.parametrize("header", ["装机容量(MWh)", "总投资(kW)", "装机容量(furlongs)"])
def test_wrong_or_unknown_units_are_errors(header: str) -> None:
    with pytest.raises(PipelineError, match=header.replace("(", r"\(").replace(")", r"\)")):
        resolve_header(header)


def test_pydantic_model_validates_single_projects() -> None:
    project = ProjectInput(project_id="A", activity="Solar_PV", capacity_mw=5)
    assert project.activity == "solar_pv" and project.country == "CN"
    with pytest.raises(ValidationError, match="did you mean 'solar_pv'"):
        ProjectInput(project_id="A", activity="solar")
    with pytest.raises(ValidationError):
        ProjectInput(project_id="A", activity="solar_pv", capacity_mw=-1)


_NUMERIC = [name for name, spec in FIELDS.items() if spec.kind in ("float", "int")]


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(_NUMERIC),
    value=st.one_of(
        st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
        st.integers(min_value=-10, max_value=10_000),
    ),
)
def test_reader_and_model_agree_on_every_numeric_value(field: str, value: float) -> None:
    """The vectorised reader accepts exactly the values the pydantic contract accepts."""
    frame = pl.DataFrame({"project_id": ["A"], "activity": ["solar_pv"], field: [repr(value)]})
    pipeline = read_pipeline(frame)
    try:
        ProjectInput(project_id="A", activity="solar_pv", **{field: value})
        model_ok = True
    except ValidationError:
        model_ok = False
    if FIELDS[field].kind == "int" and not float(value).is_integer():
        model_ok = False  # pydantic rejects 2.5 for int too; the reader says not_whole_number
    assert pipeline.n_accepted == int(model_ok), (field, value, pipeline.rejects.to_dicts())
    if model_ok:
        got = pipeline.projects[field][0]
        assert math.isclose(got, float(value), rel_tol=1e-12, abs_tol=1e-12)


@pytest.mark.parametrize(
    "text",
    [
        "  Solar  PV ",
        "装机容量（ＭＷ）",
        "面积(m²)",
        "面积(㎡)",
        "A\u00a0B",
        "Ｓｏｌａｒ\tpv",
        "\u3000光伏\u3000",
        "",
    ],
)
def test_label_expr_is_label_key_over_a_column(text: str) -> None:
    """The reader's vectorised normalisation and the header matcher's agree (one rule)."""
    column = pl.Series("v", [text]).to_frame()
    assert column.select(label_expr(pl.col("v"))).item() == label_key(text)
