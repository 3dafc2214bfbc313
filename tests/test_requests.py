"""The evidence request to the borrower (issue 18 item 10): one question per project × field,
asked once however many rulebooks need it, in Chinese and English with the unit and the
clause; written as requests.xlsx, filled in as a client would, merged back and re-screened."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import polars as pl
import pytest

from greenscreen import screen
from greenscreen._resources import data_file
from greenscreen.errors import PipelineError
from greenscreen.report.html import render_html_pack
from greenscreen.requests import (
    REQUEST_COLUMNS,
    evidence_requests,
    merge_answers,
    read_answers,
    write_requests,
)
from greenscreen.rulebook import bundled_rulebooks
from greenscreen.subsidy import bundled_programmes


@pytest.fixture
def result(sample_result):  # noqa: ANN001, ANN201 - a ScreenResult
    return sample_result  # the sample screened once per session (conftest)


def test_every_evidence_field_can_be_asked_in_both_languages() -> None:
    for source in (*bundled_rulebooks(), *bundled_programmes()):
        for field in source.fields:
            assert field.description.zh and field.description.en, (source.id, field.name)


def test_a_field_is_asked_once_with_its_clauses(result) -> None:  # noqa: ANN001
    asked = evidence_requests(result, ["GS-003"])
    assert asked.columns == [*REQUEST_COLUMNS, "sources"]
    assert asked["field"].is_unique().all()
    ped = asked.filter(pl.col("field") == "eu_ped_kwh_m2").row(0, named=True)
    # needed by the EU Taxonomy and, through it, the Common Ground Taxonomy: asked once
    assert ped["sources"] == ["cgt_2022", "eu_taxonomy"]
    assert "eu_taxonomy 7.1: Annex I 7.1 1., substantial contribution" in ped["needed_by"]
    assert ped["question_zh"] == (
        "请提供：建筑能效证书（EPC）所载一次能源需求（PED；竣工或改造后） [kWh/m2/yr]"
    )
    assert ped["question_en"].startswith("Please provide: Primary energy demand (PED)")
    dnsh = asked.filter(pl.col("field") == "eu_dnsh_evidenced").row(0, named=True)
    assert dnsh["type"] == "boolean" and dnsh["question_zh"].endswith("（是/否）")
    assert set(asked["project_id"]) == {"GS-003"}
    # a project the screening could decide entirely asks nothing of the rulebooks it passed
    everything = evidence_requests(result)
    assert everything.filter(pl.col("field").str.ends_with("__status")).height == 0
    assert everything.height > asked.height


def test_the_round_trip_answers_and_rescreens(result, tmp_path: Path) -> None:  # noqa: ANN001
    """GS-003 (Chongqing office, 3-star building): the analyst sends the request, the client
    answers the EU questions, the answers go back into the pipeline and EU 7.1 is decided."""
    path = write_requests(evidence_requests(result, ["GS-003"]), tmp_path / "requests.xlsx")
    book = openpyxl.load_workbook(path)
    sheet = book["requests"]
    heads = [c.value for c in sheet[1]]
    assert heads == list(REQUEST_COLUMNS)
    answers = {
        "eu_ped_kwh_m2": "45",
        "eu_nzeb_ped_kwh_m2": "60",
        "eu_airtightness_thermal_tested": "是 yes",
        "eu_lifecycle_gwp_disclosed": "是 yes",
        "eu_dnsh_evidenced": "是 yes",
        "eu_minimum_safeguards": "否 no",
    }
    col = heads.index("answer") + 1
    for row in range(2, sheet.max_row + 1):
        field = sheet.cell(row, heads.index("field") + 1).value
        if field in answers:
            sheet.cell(row, col).value = answers[field]
    book.save(path)
    read = read_answers(path)
    assert read.height == len(answers)
    assert dict(zip(read["field"], read["answer"], strict=True))["eu_dnsh_evidenced"] == "yes"
    pipeline = pl.read_csv(data_file("sample_pipeline.csv"), infer_schema_length=0)
    merged, used = merge_answers(pipeline, read)
    assert used == len(answers) and merged.height == pipeline.height
    again = screen(merged).results.filter(pl.col("project_id") == "GS-003").row(0, named=True)
    # 45 ≤ 0.9 × 60 and the tests done: substantial contribution met; safeguards answered no
    assert again["eu_taxonomy__sc_met"] is True
    assert again["eu_taxonomy__status"] == "eligible"
    assert "eu_ped_kwh_m2" not in (again["eu_taxonomy__missing"] or [])


def test_every_yes_no_answer_has_the_drop_down_and_no_other(result, tmp_path: Path) -> None:  # noqa: ANN001
    """The 是/否 drop-down covers exactly the yes/no questions, in a few validations that each
    list many runs of rows (was one validation per cell: 150,000 at 20,000 projects)."""
    asked = evidence_requests(result)
    many = pl.concat([asked] * 40)  # 40 copies: yes/no runs well beyond one validation's 1,000
    book = openpyxl.load_workbook(write_requests(many, tmp_path / "requests.xlsx"))
    sheet = book["requests"]
    answer = REQUEST_COLUMNS.index("answer") + 1
    covered: set[int] = set()
    validations = sheet.data_validations.dataValidation
    for validation in validations:
        assert validation.type == "list" and validation.formula1 == '"是 yes,否 no"'
        for cells in validation.sqref.ranges:
            assert cells.min_col == cells.max_col == answer
            covered |= set(range(cells.min_row, cells.max_row + 1))
    expected = {i + 2 for i, kind in enumerate(many["type"]) if kind == "boolean"}
    assert covered == expected and len(expected) > 1_000
    runs = sum(1 for row in expected if row - 1 not in expected)
    assert len(validations) == -(-runs // 1_000)


def test_answers_for_unknown_projects_or_twice_are_errors(tmp_path: Path) -> None:
    pipeline = pl.DataFrame({"project_id": ["A"], "capacity_mw": ["5"]})
    stray = pl.DataFrame({"project_id": ["B"], "field": ["capacity_mw"], "answer": ["6"]})
    with pytest.raises(PipelineError, match="not in the pipeline"):
        merge_answers(pipeline, stray)
    # the pipeline's own header for a field (装机容量) is filled, no second column is added
    answer = pl.DataFrame({"project_id": ["A"], "field": ["capacity_mw"], "answer": ["6"]})
    chinese = pl.DataFrame({"project_id": ["A"], "装机容量(MW)": ["5"]})
    merged, _ = merge_answers(chinese, answer, {"capacity_mw": "装机容量(MW)"})
    assert merged.columns == ["project_id", "装机容量(MW)"] and merged.item(0, 1) == "6"
    bad = tmp_path / "r.xlsx"
    write_requests(pl.DataFrame(schema=dict.fromkeys(REQUEST_COLUMNS, pl.String)), bad)
    assert read_answers(bad).height == 0
    with pytest.raises(PipelineError, match="requests"):
        read_answers(data_file("sample_pipeline.csv"))


def test_the_pack_asks_in_questions_not_field_ids(result) -> None:  # noqa: ANN001
    html = render_html_pack(result, "GS-003", lang="zh")
    assert "需向借款人索取的资料" in html and "请确认：项目符合“无重大损害”" in html
    decisions = html.split("需向借款人索取的资料")[0]
    assert "eu_dnsh_evidenced" not in decisions and "见问题 1, 2" in decisions


def test_the_cli_round_trip_keeps_the_pipelines_own_headers(tmp_path: Path) -> None:
    """greenscreen screen writes requests.xlsx; the client's answers go back with greenscreen
    merge into a pipeline with Chinese headers, which keeps them (no second column for a
    field), and the new screening decides what the answers decide."""
    from conftest import run_cli

    from greenscreen.schema import FIELDS

    heads = [FIELDS[f].label_zh for f in ("project_id", "activity", "province", "loan_amount")]
    pipeline = tmp_path / "管道.csv"
    pipeline.write_text(
        ",".join(heads) + "\nW1,wind_onshore,内蒙古,900000000\n", encoding="utf-8-sig"
    )
    first = run_cli("screen", str(pipeline), "--out", str(tmp_path / "a"), "-q")
    assert first.returncode == 0, first.stderr
    requests = tmp_path / "a" / "requests.xlsx"
    book = openpyxl.load_workbook(requests)
    sheet = book["requests"]
    heads_ = [c.value for c in sheet[1]]
    fields = {
        sheet.cell(r, heads_.index("field") + 1).value: r for r in range(2, sheet.max_row + 1)
    }
    answer = heads_.index("answer") + 1
    for field in ("eu_dnsh_evidenced", "eu_minimum_safeguards"):
        sheet.cell(fields[field], answer).value = "是 yes"
    book.save(requests)
    merged = tmp_path / "merged.xlsx"
    done = run_cli("merge", str(pipeline), str(requests), "--out", str(merged))
    assert done.returncode == 0, done.stderr
    assert "2 answers merged" in done.stdout
    table = pl.read_excel(merged)
    assert table.columns[:4] == heads and "eu_dnsh_evidenced" in table.columns
    again = run_cli("screen", str(merged), "--out", str(tmp_path / "b"), "-q")
    assert again.returncode == 0, again.stderr
    row = pl.read_parquet(tmp_path / "b" / "results.parquet").row(0, named=True)
    assert "eu_dnsh_evidenced" not in (row["eu_taxonomy__missing"] or [])
    assert row["eu_taxonomy__status"] == "aligned"
    # the merged file is never written over the pipeline, nor over a file without --force
    again = run_cli("merge", str(pipeline), str(requests), "--out", str(merged))
    assert again.returncode == 1 and "exists" in again.stderr
