"""Rulebook files: the bundled ones load; malformed ones fail with file, item and problem."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from greenscreen import RulebookError
from greenscreen.rulebook import bundled_rulebooks, compile_condition, load_rulebook, load_rulebooks

DATA = Path(__file__).parent / "data"

GOOD = {
    "schema_type": "greenscreen.rulebook",
    "schema_version": 1,
    "id": "bank_local",
    "version": "1",
    "kind": "taxonomy",
    "title": {"en": "A bank's own list"},
    "issuer": "Bank",
    "document": "Internal policy 7",
    "source_url": "intranet",
    "verification": "unverified",
    "items": [
        {
            "code": "A1",
            "name": {"en": "Solar"},
            "scope": {"activities": ["solar_pv"]},
            "criteria": [
                {
                    "id": "size",
                    "condition": "capacity_mw >= 1",
                    "clause": "Policy 7 §2",
                    "text": {"en": "At least 1 MW"},
                    "verification": "unverified",
                }
            ],
        }
    ],
}


def write(tmp_path: Path, data: dict, name: str = "bank_local.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_bundled_rulebooks_load() -> None:
    ids = {book.id for book in bundled_rulebooks()}
    assert {"cn_exclusions", "eu_taxonomy", "pboc_cerf", "glp_2025"} <= ids
    for book in bundled_rulebooks():
        assert book.leaf_items, book.id
        assert book.source_url and book.document


def test_a_valid_user_rulebook_loads_and_extends_the_bundled_ones(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    books = {b.id for b in load_rulebooks(tmp_path)}
    assert "bank_local" in books and "eu_taxonomy" in books
    assert [b.id for b in load_rulebooks(tmp_path, extra=False)] == ["bank_local"]


def test_a_user_rulebook_with_a_bundled_id_replaces_it(tmp_path: Path) -> None:
    write(tmp_path, {**GOOD, "id": "pboc_cerf", "version": "bank-copy"}, "cerf.yaml")
    cerf = next(b for b in load_rulebooks(tmp_path) if b.id == "pboc_cerf")
    assert cerf.version == "bank-copy"


def _broken(**changes: object) -> dict:
    data = json.loads(json.dumps(GOOD))
    item = data["items"][0]
    for key, value in changes.items():
        if key == "criterion":
            item["criteria"][0].update(value)  # type: ignore[arg-type]
        elif key == "item":
            item.update(value)  # type: ignore[arg-type]
        else:
            data[key] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            _broken(item={"colour": "green"}),
            r"file bank_local.yaml: item A1, colour: unknown field",
        ),
        (_broken(criterion={"treshold": 5}), r"item A1, criterion size, treshold: unknown field"),
        ({**GOOD, "items": GOOD["items"] * 2}, r"item A1: duplicate item code"),
        (
            _broken(criterion={"condition": "capacity_mw >"}),
            r"item A1, criterion size: condition .* not a valid SQL",
        ),
        (
            _broken(criterion={"condition": "capasity_mw > 1"}),
            r"unknown input field 'capasity_mw'; did you mean 'capacity_mw'",
        ),
        (
            _broken(criterion={"condition": "read_csv('/etc/passwd') IS NULL"}),
            r"function 'read_csv' is not allowed",
        ),
        (_broken(criterion={"condition": "capacity_mw IN (SELECT 1)"}), r"'SELECT' is not allowed"),
        (
            _broken(item={"scope": {"activities": ["solar"]}}),
            r"unknown activity 'solar'; did you mean 'solar_pv'",
        ),
        (_broken(item={"parent": "Z9"}), r"item A1: parent 'Z9' is not an item code"),
        (_broken(schema_version=2), r"schema_version 2 is not supported \(expected 1\)"),
        (
            _broken(criterion={"verification": "probably"}),
            r"criterion size, verification: Input should be",
        ),
    ],
)
def test_malformed_rulebooks_name_file_item_and_problem(
    tmp_path: Path, data: dict, message: str
) -> None:
    with pytest.raises(RulebookError, match=message):
        load_rulebook(write(tmp_path, data))


def test_not_yaml_and_wrong_schema_type(tmp_path: Path) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_text("items: [unclosed", encoding="utf-8")
    with pytest.raises(RulebookError, match="x.yaml: not valid YAML"):
        load_rulebook(bad)
    with pytest.raises(RulebookError, match="schema_type is 'nope'"):
        load_rulebook(write(tmp_path, {**GOOD, "schema_type": "nope"}))
    with pytest.raises(
        RulebookError, match="no bundled rulebook 'eu_taxonmy'.*did you mean 'eu_taxonomy'"
    ):
        load_rulebook("eu_taxonmy")


@pytest.mark.parametrize(
    "condition",
    [
        "__import__('os').system('x') = 1",
        "pg_read_file('x') = ''",
        "1 = 1; DROP TABLE t",
        "x = (SELECT 2)",
    ],
)
def test_conditions_cannot_run_code(condition: str) -> None:
    with pytest.raises(RulebookError):
        compile_condition(condition, ["x", "capacity_mw"])


def test_string_literals_may_contain_any_word() -> None:
    expr, used = compile_condition("lower(province) = 'select from (here)'", ["province"])
    assert used == ["province"]


def test_the_format_example_in_taxonomies_readme_is_valid(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[1] / "taxonomies" / "README.md").read_text(encoding="utf-8")
    example = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "bank.yaml").write_text(example, encoding="utf-8")
    book = load_rulebook(tmp_path / "bank.yaml")
    assert book.id == "bank_hydro_policy"
    assert [c.id for c in book.item("H-1").criteria] == [
        "density",
        "lifecycle",
        "eia",
        "reservoir-rows",
    ]


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_eu_items_match_the_compass_export() -> None:
    """Issue #3: every encoded EU item's Annex reference and name match the EU Taxonomy Compass
    export 1.0.4; every criterion text taken from it is verbatim (prefix, before '…')."""
    compass = json.loads((DATA / "eu_taxonomy_compass_1.0.4_mitigation.json").read_text("utf-8"))
    names = {a["reference"]: a["name"] for a in compass["activities"]}
    book = load_rulebook("eu_taxonomy")
    checked = 0
    for item in book.leaf_items:
        if item.code == "4.29":  # Complementary Delegated Act: not in Compass 1.0.4
            assert "Complementary" in item.criteria[0].clause
            continue
        assert names[item.code] == item.name.en, item.code
        sc_text = _normalise(compass["mitigation_sc"][item.code])
        for criterion in item.criteria:
            if criterion.clause.endswith("substantial contribution"):
                head = _normalise(criterion.text.en or "").removesuffix("…").strip()[:120]
                assert head and head in sc_text, (item.code, criterion.id)
                checked += 1
    assert checked >= 20


def test_dependencies_must_be_loaded_and_acyclic(tmp_path: Path) -> None:
    from greenscreen import screen

    book = {**GOOD, "id": "needs_other", "depends_on": ["missing_book"]}
    write(tmp_path, book, "needs.yaml")
    with pytest.raises(RulebookError, match="depends on rulebook 'missing_book'"):
        screen(
            [{"project_id": "A", "activity": "solar_pv"}],
            rulebooks=load_rulebooks(tmp_path, extra=False),
        )
    cond = {"condition": "other__status = 'eligible'"}
    with pytest.raises(RulebookError, match="unknown input field 'other__status'"):
        load_rulebook(write(tmp_path, _broken(criterion=cond), "nodep.yaml"))


def test_cross_references_must_exist(tmp_path: Path) -> None:
    write(tmp_path, _broken(item={"xref": [{"rulebook": "eu_taxonomy", "item": "4.99"}]}))
    with pytest.raises(RulebookError, match=r"item A1: xref to eu_taxonomy item '4.99'"):
        load_rulebooks(tmp_path)
    write(tmp_path, _broken(item={"xref": [{"rulebook": "eu_taxonomy", "item": "4.1"}]}))
    assert any(b.id == "bank_local" for b in load_rulebooks(tmp_path))


def test_counts_split_criteria_into_measured_attestation_and_crosswalk() -> None:
    from greenscreen.rulebook import bundled_rulebooks

    counts = {book.id: book.counts() for book in bundled_rulebooks()}
    # GLP: the four core components and reporting are facts the analyst confirms
    assert (counts["glp_2025"]["measured"], counts["glp_2025"]["attestation"]) == (0, 7)
    # CGT: every criterion reads the China or EU rulebook's result
    assert counts["cgt_2022"]["crosswalk"] == counts["cgt_2022"]["criteria"] == 42
    gfsp = counts["cn_gfsp_2025"]
    assert gfsp["measured"] + gfsp["attestation"] + gfsp["crosswalk"] == gfsp["criteria"]
    assert gfsp["measured"] >= 2  # star rating (6.1.1), GB 40879 grade (6.6.2)
    assert gfsp["industry_rows"] > gfsp["items"]  # items list their GB/T 4754 rows


def test_evidence_numbers_are_read_in_their_range() -> None:
    """Issue 16: every evidence number has a range (declared, or what its unit implies: a
    grade ≥ 1, a fraction 0–1, a year 1800–2100, other quantities ≥ 0); a value outside it,
    or unreadable, decides nothing: the item asks for the field again."""
    from greenscreen import screen
    from greenscreen.rulebook import FieldDecl

    grade = FieldDecl(name="gb24500_grade", type="number", description={"en": "grade"})
    share = FieldDecl(name="x", type="number", unit="fraction", description={"en": "x"})
    year = FieldDecl(name="y", type="number", unit="year", description={"en": "y"})
    capped = FieldDecl(name="z", type="number", maximum=5, description={"en": "z"})
    assert [f.bounds() for f in (grade, share, year, capped)] == [
        (1.0, None),
        (0.0, 1.0),
        (1800.0, 2100.0),
        (0.0, 5.0),
    ]
    assert (grade.range_text(), share.range_text()) == ("≥ 1", "≥ 0 and ≤ 1")
    base = {"cn_gfsp_2025_item": "1.1.1", "industry_code": "C3411", "description": "锅炉"}
    rows = [{"project_id": p, **base, "gb24500_grade": g} for p, g in (("0", 0), ("x", "abc"))]
    rows.append(
        {"project_id": "2", **base, "gb24500_grade": 2, "tsg91_efficiency_target_met": "no"}
    )
    out = {r["project_id"]: r for r in screen(rows).results.iter_rows(named=True)}
    for pid in ("0", "x"):
        assert out[pid]["cn_gfsp_2025__status"] == "insufficient_data"
        assert "gb24500_grade" in out[pid]["cn_gfsp_2025__missing"]
    assert out["2"]["cn_gfsp_2025__status"] == "not_eligible"  # grade 2 is read, and fails
    every = [f for b in bundled_rulebooks() for f in b.fields if f.type == "number"]
    assert every and all(f.bounds() != (None, None) for f in every)


def test_one_status_list() -> None:
    """STATUSES is the one ordered list of statuses; the Status type and the report colours
    follow it (issue 17 finding 7: it was a tuple here and a colour dict in the report)."""
    from typing import get_args

    from greenscreen.report.html import STATUS_COLOURS
    from greenscreen.rulebook import STATUSES, Status

    assert set(get_args(Status)) == set(STATUSES) and len(STATUSES) == len(set(STATUSES))
    assert list(STATUS_COLOURS) == list(STATUSES)
