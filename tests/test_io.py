"""read_pipeline: formats, encodings, header aliases, parsing and rejects."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter
from conftest import GOOD_ROWS, HEADER, write_csv
from polars.testing import assert_frame_equal

from greenscreen import FIELDS, PipelineError, polars_schema, read_pipeline


def test_good_rows_are_all_accepted_and_typed(good_csv: Path) -> None:
    pipeline = read_pipeline(good_csv)
    assert pipeline.n_accepted == 10
    assert pipeline.rejects.height == 0
    projects = pipeline.projects
    for name, dtype in polars_schema().items():
        assert projects.schema[name] == dtype, name
    first = projects.row(0, named=True)
    assert first["capacity_mw"] == 50.0
    assert first["approval_date"] == dt.date(2023, 9, 15)
    assert first["country"] == "CN" and first["currency"] == "CNY"  # template defaults
    assert first["source_row"] == 2  # header is row 1
    # provinces normalised from zh, en and GB/T 2260 code, with the code added
    by_id = {r["project_id"]: r for r in projects.iter_rows(named=True)}
    assert (by_id["P01"]["province"], by_id["P01"]["province_code"]) == ("Shaanxi", "610000")
    assert by_id["P02"]["province"] == "Inner Mongolia"
    assert (by_id["P05"]["province"], by_id["P05"]["province_code"]) == ("Chongqing", "500000")


def test_acceptance_ten_good_five_bad(tmp_path: Path) -> None:
    """Issue #2, acceptance 3: each bad row is named with row, field, value and reason.

    The five bad rows: a duplicate of P03's id, text in capacity_mw, a negative loan_amount,
    the unknown activity 'solar' and the date 2023-02-30. Both copies of the duplicated id are
    rejected, so 15 input rows give 9 accepted and 6 rejected rows (one reject row each).
    """
    bad = [
        ("P03", "solar_pv", "Henan", "10", "5000000", "2025-01-01"),
        ("P11", "wind_onshore", "Gansu", "abc", "5000000", "2025-01-01"),
        ("P12", "hydropower", "Sichuan", "10", "-5", "2025-01-01"),
        ("P13", "solar", "Henan", "10", "5000000", "2025-01-01"),
        ("P14", "solar_pv", "Henan", "10", "5000000", "2023-02-30"),
    ]
    path = write_csv(tmp_path / "mixed.csv", HEADER, GOOD_ROWS + bad, "utf-8")
    pipeline = read_pipeline(path)
    assert pipeline.n_input_rows == 15
    assert pipeline.n_accepted == 9
    assert pipeline.n_rejected == 6
    assert pipeline.n_input_rows == pipeline.n_accepted + pipeline.n_rejected + pipeline.n_blank
    rejects = {
        (r["row"], r["field"]): (r["value"], r["reason"], r["code"])
        for r in pipeline.rejects.iter_rows(named=True)
    }
    assert set(rejects) == {
        (4, "project_id"),  # the original P03 (row 4) ...
        (12, "project_id"),  # ... and its duplicate
        (13, "capacity_mw"),
        (14, "loan_amount"),
        (15, "activity"),
        (16, "approval_date"),
    }
    assert rejects[(4, "project_id")][2] == "duplicate_id"
    assert "rows 4, 12" in rejects[(12, "project_id")][1]
    assert rejects[(13, "capacity_mw")][:2] == ("abc", "capacity_mw must be a number in MW")
    assert rejects[(14, "loan_amount")][0] == "-5"
    assert rejects[(14, "loan_amount")][2] == "out_of_range"
    assert rejects[(15, "activity")][1] == "unknown activity 'solar'; did you mean 'solar_pv'?"
    assert rejects[(16, "approval_date")][:1] == ("2023-02-30",)
    assert "valid calendar date" in rejects[(16, "approval_date")][1]
    assert "P03" not in pipeline.projects["project_id"].to_list()
    assert "6 rejected" in pipeline.summary()


def test_gbk_csv_with_chinese_headers_reads_like_utf8_english(tmp_path: Path) -> None:
    """Issue #2, acceptance 4: a Chinese Excel export (GBK, Chinese headers)."""
    english = write_csv(tmp_path / "en.csv", HEADER, GOOD_ROWS, "utf-8")
    chinese_header = tuple(FIELDS[name].label_zh for name in HEADER)
    assert chinese_header[0] == "项目编号" and chinese_header[3] == "装机容量(MW)"
    chinese = write_csv(tmp_path / "zh.csv", chinese_header, GOOD_ROWS, "gbk")
    with pytest.raises(UnicodeDecodeError):
        chinese.read_bytes().decode("utf-8")  # really not UTF-8
    a, b = read_pipeline(english), read_pipeline(chinese)
    assert b.source.encoding == "gb18030"
    assert_frame_equal(a.projects, b.projects)
    assert b.rejects.height == 0


def test_utf8_bom_and_full_width_headers(tmp_path: Path) -> None:
    header = ("项目编号", "活动类型", "装机容量（MW）")
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeff".encode() + "\n".join([",".join(header), "A,solar_pv,5"]).encode())
    projects = read_pipeline(path).projects
    assert projects["project_id"].to_list() == ["A"]
    assert projects["capacity_mw"].to_list() == [5.0]


def test_units_in_headers_are_converted(tmp_path: Path) -> None:
    header = ("项目编号", "活动类型", "装机容量(kW)", "总投资(万元)", "电价(元/kWh)", "利率(%)")
    path = write_csv(
        tmp_path / "u.csv", header, [("A", "solar_pv", "5000", "1500", "0.38", "4.5")], "utf-8"
    )
    pipeline = read_pipeline(path)
    row = pipeline.projects.row(0, named=True)
    assert row["capacity_mw"] == pytest.approx(5.0)
    assert row["total_investment"] == pytest.approx(15_000_000)
    assert row["tariff_per_mwh"] == pytest.approx(380)
    assert row["interest_rate"] == pytest.approx(0.045)
    assert len(pipeline.notes) == 4


def test_unit_of_the_wrong_kind_is_an_error(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "u.csv",
        ("project_id", "activity", "装机容量(MWh)"),
        [("A", "solar_pv", "5")],
        "utf-8",
    )
    with pytest.raises(PipelineError, match="capacity_mw is measured in MW"):
        read_pipeline(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,234,567.5", 1_234_567.5),
        ("  42 ", 42.0),
        ("1.5万", 15_000.0),
        ("2亿", 200_000_000.0),
        ("1e3", 1000.0),
    ],
)
def test_number_spellings(text: str, expected: float) -> None:
    frame = pl.DataFrame(
        {"project_id": ["A"], "activity": ["solar_pv"], "total_investment": [text]}
    )
    assert read_pipeline(frame).projects["total_investment"][0] == pytest.approx(expected)


@pytest.mark.parametrize("text", ["1,5", "12abc", "--3", "1.2.3"])
def test_ambiguous_numbers_are_rejected_not_guessed(text: str) -> None:
    frame = pl.DataFrame(
        {"project_id": ["A"], "activity": ["solar_pv"], "total_investment": [text]}
    )
    pipeline = read_pipeline(frame)
    assert pipeline.n_accepted == 0
    assert pipeline.rejects["code"].to_list() == ["invalid_number"]


def test_percent_only_for_rates() -> None:
    frame = pl.DataFrame(
        {"project_id": ["A", "B"], "activity": ["solar_pv"] * 2, "interest_rate": ["4.2%", "0.042"]}
    )
    assert read_pipeline(frame).projects["interest_rate"].to_list() == pytest.approx([0.042] * 2)
    frame = pl.DataFrame({"project_id": ["A"], "activity": ["solar_pv"], "capacity_mw": ["5%"]})
    assert read_pipeline(frame).rejects["code"].to_list() == ["invalid_number"]


def test_rate_given_in_percent_without_sign_is_rejected() -> None:
    frame = pl.DataFrame({"project_id": ["A"], "activity": ["solar_pv"], "interest_rate": ["4.5"]})
    rejects = read_pipeline(frame).rejects
    assert rejects["code"].to_list() == ["out_of_range"]
    assert "≤ 1" in rejects["reason"][0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01", dt.date(2024, 3, 1)),
        ("2024/3/1", dt.date(2024, 3, 1)),
        ("2024年3月1日", dt.date(2024, 3, 1)),
        ("2024-03-01 00:00:00", dt.date(2024, 3, 1)),
        ("45352", dt.date(2024, 3, 1)),  # Excel serial of 2024-03-01 (1900 date system)
    ],
)
def test_date_spellings(text: str, expected: dt.date) -> None:
    frame = pl.DataFrame({"project_id": ["A"], "activity": ["solar_pv"], "cod": [text]})
    assert read_pipeline(frame).projects["cod"][0] == expected


def test_whole_numbers_and_ranges() -> None:
    frame = pl.DataFrame(
        {
            "project_id": ["A", "B", "C", "D"],
            "activity": ["building_new"] * 4,
            "green_building_star": ["2", "2.0", "2.5", "4"],
        }
    )
    pipeline = read_pipeline(frame)
    assert pipeline.projects["green_building_star"].to_list() == [2, 2]
    assert dict(zip(pipeline.rejects["project_id"], pipeline.rejects["code"], strict=True)) == {
        "C": "not_whole_number",
        "D": "out_of_range",
    }


def test_infinite_and_nan_are_rejected() -> None:
    frame = pl.DataFrame(
        {
            "project_id": ["A", "B"],
            "activity": ["solar_pv"] * 2,
            "capacity_mw": [float("inf"), float("nan")],
        }
    )
    codes = read_pipeline(frame).rejects.sort("project_id")["code"].to_list()
    assert codes == ["not_finite", "invalid_number"]


def test_codes_are_normalised_and_checked() -> None:
    frame = pl.DataFrame(
        {
            "project_id": ["A", "B", "C"],
            "activity": ["solar_pv"] * 3,
            "country": ["中国", "de", "Germany"],
            "currency": ["人民币", "eur", "EUR"],
            "industry_code": ["d4416", "4415", "X99999"],
        }
    )
    pipeline = read_pipeline(frame)
    assert pipeline.projects["country"].to_list() == ["CN", "DE"]
    assert pipeline.projects["currency"].to_list() == ["CNY", "EUR"]
    assert pipeline.projects["industry_code"].to_list() == ["D4416", "4415"]
    assert sorted(pipeline.rejects["field"].to_list()) == ["country", "industry_code"]


def test_province_is_only_checked_for_china() -> None:
    frame = pl.DataFrame(
        {
            "project_id": ["A", "B"],
            "activity": ["wind_onshore"] * 2,
            "country": ["DE", "CN"],
            "province": ["Bavaria", "Bavaria"],
        }
    )
    pipeline = read_pipeline(frame)
    assert pipeline.projects["province"].to_list() == ["Bavaria"]
    assert pipeline.rejects["code"].to_list() == ["unknown_province"]


def test_activity_accepts_names_and_description_only_rows() -> None:
    frame = pl.DataFrame(
        {
            "project_id": ["A", "B", "C", "D"],
            "activity": ["太阳能光伏发电", " Solar_PV ", None, None],
            "description": [None, None, "屋顶分布式光伏", None],
        }
    )
    pipeline = read_pipeline(frame)
    assert pipeline.projects["activity"].to_list() == ["solar_pv", "solar_pv", None]
    assert pipeline.rejects.select("project_id", "code").rows() == [("D", "missing_required")]


def test_missing_and_blank_ids() -> None:
    frame = pl.DataFrame({"project_id": ["A", " ", None], "activity": ["solar_pv"] * 3})
    pipeline = read_pipeline(frame)
    assert pipeline.n_accepted == 1
    assert pipeline.rejects["code"].to_list() == ["missing_required", "missing_required"]


def test_blank_rows_are_counted_not_rejected(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text("project_id,activity\nA,solar_pv\n,\nB,wind_onshore\n", encoding="utf-8")
    pipeline = read_pipeline(path)
    assert (pipeline.n_input_rows, pipeline.n_accepted, pipeline.n_blank) == (3, 2, 1)
    assert pipeline.projects["source_row"].to_list() == [2, 4]
    assert "1 blank rows ignored" in pipeline.summary()


def test_extra_columns_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(
        "project_id,activity,客户经理,internal score\nA,solar_pv,张三,7\n", encoding="utf-8"
    )
    pipeline = read_pipeline(path)
    assert pipeline.projects.columns[-2:] == ["客户经理", "internal score"]
    assert pipeline.projects.row(0, named=True)["客户经理"] == "张三"
    assert pipeline.source.extra_columns == ("客户经理", "internal score")


def test_semicolon_separated_csv(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text("project_id;activity;capacity_mw\nA;solar_pv;1.5\n", encoding="utf-8")
    assert read_pipeline(path).projects["capacity_mw"].to_list() == [1.5]


def test_excel_any_sheet_name_and_typed_cells(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    book = xlsxwriter.Workbook(path)
    book.add_worksheet("说明").write(0, 0, "notes for the reader")
    sheet = book.add_worksheet("项目清单")
    sheet.write_row(0, 0, ["项目编号", "活动类型", "装机容量(MW)", "投产日期", "贷款金额"])
    sheet.write_row(1, 0, ["A", "solar_pv", 50, None, 1e8])
    sheet.write_datetime(
        1, 3, dt.datetime(2026, 6, 30), book.add_format({"num_format": "yyyy-mm-dd"})
    )
    sheet.write_row(2, 0, ["B", "wind_onshore", "n/a", None, 5])
    book.close()
    pipeline = read_pipeline(path)
    assert pipeline.source.sheet == "项目清单"
    row = pipeline.projects.row(0, named=True)
    assert (row["capacity_mw"], row["cod"], row["loan_amount"]) == (50.0, dt.date(2026, 6, 30), 1e8)
    assert pipeline.rejects.select("row", "field", "value").rows() == [(3, "capacity_mw", "n/a")]
    with pytest.raises(PipelineError, match="no sheet '项目单'.*did you mean '项目清单'"):
        read_pipeline(path, sheet="项目单")


def test_parquet_jsonl_json_records_and_pandas(tmp_path: Path, good_frame: pl.DataFrame) -> None:
    reference = read_pipeline(good_frame).projects
    good_frame.write_parquet(tmp_path / "p.parquet")
    good_frame.write_ndjson(tmp_path / "p.jsonl")
    (tmp_path / "p.json").write_text(json.dumps(good_frame.to_dicts(), ensure_ascii=False))
    sources: list[object] = [
        tmp_path / "p.parquet",
        tmp_path / "p.jsonl",
        tmp_path / "p.json",
        good_frame.to_dicts(),
        good_frame.to_pandas(),
        good_frame.lazy(),
    ]
    for source in sources:
        assert_frame_equal(read_pipeline(source).projects, reference)


def test_typed_parquet_columns_are_checked(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "project_id": ["A", "B"],
            "activity": ["solar_pv"] * 2,
            "capacity_mw": [50.0, -1.0],
            "cod": [dt.date(2026, 1, 1), dt.date(2026, 1, 2)],
        }
    )
    frame.write_parquet(tmp_path / "t.parquet")
    pipeline = read_pipeline(tmp_path / "t.parquet")
    assert pipeline.projects["cod"].to_list() == [dt.date(2026, 1, 1)]
    assert pipeline.rejects.select("row", "field", "code").rows() == [
        (2, "capacity_mw", "out_of_range")
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"activity\nsolar_pv\n", "no project_id column"),
        (b"project_id,capacity_mw\nA,1\n", "needs an activity"),
        (
            b"project_id,\xe9\xa1\xb9\xe7\x9b\xae\xe7\xbc\x96\xe5\x8f\xb7,activity\nA,B,solar_pv\n",
            "both map to field project_id",
        ),
        (b"\xff\xfe\x00\x00garbage\x81", "cannot decode"),
    ],
)
def test_file_level_errors_are_clear(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(PipelineError, match=message):
        read_pipeline(path)


def test_unsupported_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="not found"):
        read_pipeline(tmp_path / "nope.csv")
    (tmp_path / "x.docx").write_bytes(b"PK")
    with pytest.raises(PipelineError, match="unsupported pipeline file type"):
        read_pipeline(tmp_path / "x.docx")
    (tmp_path / "broken.xlsx").write_bytes(b"not a zip at all")
    with pytest.raises(PipelineError, match="cannot open broken.xlsx"):
        read_pipeline(tmp_path / "broken.xlsx")
    with pytest.raises(PipelineError, match="cannot read a pipeline from int"):
        read_pipeline(42)


def test_strict_mode_raises_with_rejects() -> None:
    frame = pl.DataFrame({"project_id": ["A", "A"], "activity": ["solar_pv"] * 2})
    with pytest.raises(PipelineError) as info:
        read_pipeline(frame, strict=True)
    assert info.value.rejects is not None and info.value.rejects.height == 2


def test_long_bad_values_are_clipped_in_rejects() -> None:
    frame = pl.DataFrame({"project_id": ["A"], "activity": ["x" * 5000]})
    value = read_pipeline(frame).rejects["value"][0]
    assert len(value) == 201 and value.endswith("…")


# ---- issue 18: input friction (items 12–14) ---------------------------------------------------
def test_a_label_row_is_found_whatever_extra_columns_carry(tmp_path: Path) -> None:
    """Item 12: the template's Chinese label row over an extra column of the analyst's own
    (备注 under my_note) is still the label row, not data."""
    path = tmp_path / "labels.csv"
    path.write_text(
        "project_id,activity,capacity_mw,my_note\n"
        "项目编号,活动类型,装机容量(MW),备注\n"
        "A,solar_pv,5,x\nB,solar_pv,6,y\n",
        encoding="utf-8",
    )
    pipeline = read_pipeline(path)
    assert (pipeline.n_accepted, pipeline.rejects.height) == (2, 0)
    assert pipeline.projects["capacity_mw"].to_list() == [5.0, 6.0]


def test_reasons_speak_the_unit_of_the_column(tmp_path: Path) -> None:
    """Item 13: 约五万千瓦 under 装机容量(kW) is told about kW, 450 under 贷款利率(%) about
    percent."""
    path = tmp_path / "units.csv"
    path.write_text(
        "项目编号,活动类型,装机容量(kW),贷款利率(%)\nA,solar_pv,约五万千瓦,4.5\nB,solar_pv,5000,450\n",
        encoding="utf-8",
    )
    rejects = {
        r["project_id"]: r["reason"] for r in read_pipeline(path).rejects.iter_rows(named=True)
    }
    assert rejects["A"] == "capacity_mw (column '装机容量(kW)') must be a number in kW"
    assert rejects["B"] == "interest_rate (column '贷款利率(%)') must be ≥ 0 and ≤ 100 %"


def test_a_city_or_county_gives_its_province(tmp_path: Path) -> None:
    """Item 14: prefecture-level cities and unambiguous counties (NBS 2023 统计用区划代码,
    greenscreen/data/cities.csv) map to their province and are kept as ``city``; a name in
    several provinces (朝阳: Beijing's and Changchun's 朝阳区, Liaoning's 朝阳市) is a reject
    that says so."""
    path = tmp_path / "places.csv"
    path.write_text(
        "project_id,activity,province\n"
        "A,solar_pv,宝鸡\nB,solar_pv,朝阳\nC,solar_pv,浦东新区\nD,solar_pv,陕西\nE,solar_pv,Xanadu\n",
        encoding="utf-8",
    )
    pipeline = read_pipeline(path)
    got = {r["project_id"]: r for r in pipeline.projects.iter_rows(named=True)}
    assert (got["A"]["province"], got["A"]["province_code"], got["A"]["city"]) == (
        "Shaanxi",
        "610000",
        "宝鸡市",
    )
    assert (got["C"]["province"], got["C"]["city"]) == ("Shanghai", "浦东新区")
    assert (got["D"]["province"], got["D"]["city"]) == ("Shaanxi", None)
    reasons = {r["project_id"]: r["reason"] for r in pipeline.rejects.iter_rows(named=True)}
    assert (
        reasons["B"]
        == "'朝阳' is a place in several provinces (北京市、吉林省、辽宁省); write the province"
    )
    assert reasons["E"].startswith("unknown Chinese province or city 'Xanadu'")


def test_a_finite_float_cast_is_a_plain_number() -> None:
    """The fast parse of a number cell (``_validate._fast``) is polars' cast alone: this holds
    only if every text the cast reads as a finite number matches ``_NUMBER``, the full parse's
    test (polars' parser reads that grammar plus inf/nan/infinity). Every code point in and
    around a number, and every short string of the characters that matter."""
    from itertools import product

    from greenscreen.io._validate import _NUMBER

    points = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    texts = [t.format(c) for t in ("{}1", "1{}5") for c in points]
    alphabet = "019.eE+-_ ,xinfaINd\u00a0\t\uff11"
    texts += ["".join(p) for n in range(1, 5) for p in product(alphabet, repeat=n)]
    texts += ["1e400", "-1e400", "1e-400", "1.e5", ".5", "5.", "+5", "-0", " 1", "1 ", "١٢"]
    cast = pl.DataFrame({"text": texts}).with_columns(
        value=pl.col("text").cast(pl.Float64, strict=False),
        plain=pl.col("text").str.contains(_NUMBER),
    )
    assert cast.filter(pl.col("value").is_finite() & ~pl.col("plain")).height == 0
    assert cast.filter(pl.col("value").is_finite()).height > 500  # the test reads numbers
