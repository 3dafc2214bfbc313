"""`greenscreen rulebooks build` and `rulebooks schema` (issue 17, finding 9): the generated China
catalogues and the JSON schemas are what the sources and the models give, byte for byte; an
edited source changes the output; a broken one is a one-line error and writes nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import run_cli

from greenscreen import catalogue_build
from greenscreen.errors import BuildError
from greenscreen.rulebook import Rulebook, json_schema, load_rulebook
from greenscreen.subsidy import Programme, load_programme

TAXONOMIES = Path(__file__).resolve().parents[1] / "taxonomies"
SOURCES = TAXONOMIES / "sources"
GENERATED = ("cn_gfsp_2025.yaml", "cn_gbepc_2021.yaml", "rulebook.schema.json")
GENERATED += ("programme.schema.json",)


def _sources(tmp_path: Path) -> Path:
    """A copy of taxonomies/sources a compliance officer edits."""
    return Path(shutil.copytree(SOURCES, tmp_path / "src", ignore=shutil.ignore_patterns("*.py")))


def _generated(tmp_path: Path) -> Path:
    """A copy of the committed generated files (compared by --check, rewritten by build)."""
    out = tmp_path / "committed"
    out.mkdir()
    for name in GENERATED:
        shutil.copy2(TAXONOMIES / name, out / name)
    return out


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_build_check_reports_no_difference_on_the_repository() -> None:
    done = run_cli("rulebooks", "build", "--check")
    assert done.returncode == 0, done.stderr
    for name in GENERATED:
        assert f"{TAXONOMIES / name}: " in done.stdout
    assert done.stdout.count("(unchanged)") == len(GENERATED), done.stdout
    assert "271 items, 1036 GB/T rows" in done.stdout
    assert "212 items, 200 verified against the 2019 text" in done.stdout


def test_editing_a_source_row_changes_the_output(tmp_path: Path) -> None:
    """A compliance edit: the English name of 4.2.4 in the item table. Only cn_gfsp_2025.yaml
    changes, there; --check names it and writes nothing; build writes it; --check passes."""
    src, committed = _sources(tmp_path), _generated(tmp_path)
    _edit(
        src / "cn_gfsp_2025_items.csv",
        "4.2.4,大型水力发电设施建设和运营,Large hydropower facilities construction and operation,4,"
        "能源绿色低碳转型,4.2,清洁能源设施建设和运营,1,",
        "4.2.4,大型水力发电设施建设和运营,Large hydropower bases,4,"
        "能源绿色低碳转型,4.2,清洁能源设施建设和运营,1,",
    )
    # the item's name is read from its first row; the second row keeps the old one
    before = {name: (committed / name).read_bytes() for name in GENERATED}

    check = run_cli("rulebooks", "build", "--check", "--sources", str(src), "--out", str(committed))
    assert check.returncode == 1
    assert check.stderr.count("\n") == 1 and check.stderr.startswith("error: 1 generated file")
    assert str(committed / "cn_gfsp_2025.yaml") in check.stderr
    assert "cn_gbepc_2021.yaml" not in check.stderr
    assert f"{committed / 'cn_gfsp_2025.yaml'}: 271 items, 1036 GB/T rows (differs)" in check.stdout
    assert {name: (committed / name).read_bytes() for name in GENERATED} == before  # untouched

    built = run_cli("rulebooks", "build", "--sources", str(src), "--out", str(committed))
    assert built.returncode == 0, built.stderr
    assert f"{committed / 'cn_gfsp_2025.yaml'}: 271 items, 1036 GB/T rows (written)" in built.stdout
    assert built.stdout.count("(unchanged)") == 3
    new = (committed / "cn_gfsp_2025.yaml").read_text(encoding="utf-8").splitlines()
    old = before["cn_gfsp_2025.yaml"].decode("utf-8").splitlines()
    changed = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
    name = "Large hydropower facilities construction and operation"
    assert changed and all(a.replace(name, "Large hydropower bases") == b for a, b in changed)
    assert load_rulebook(committed / "cn_gfsp_2025.yaml").item("4.2.4").name.en == (
        "Large hydropower bases"
    )
    again = run_cli("rulebooks", "build", "--check", "--sources", str(src), "--out", str(committed))
    assert again.returncode == 0, again.stderr


def test_a_new_output_folder_gets_every_generated_file(tmp_path: Path) -> None:
    out = tmp_path / "new" / "rulebooks"
    built = catalogue_build.build_rulebooks(SOURCES, out)
    assert [entry.path.name for entry in built] == list(GENERATED)
    assert all(entry.changed and not entry.existed for entry in built)
    for name in GENERATED:
        assert (out / name).read_bytes() == (TAXONOMIES / name).read_bytes(), name
    assert not any(entry.changed for entry in catalogue_build.build_rulebooks(SOURCES, out))


def test_a_broken_source_is_a_one_line_error_and_writes_nothing(tmp_path: Path) -> None:
    src, committed = _sources(tmp_path), _generated(tmp_path)
    before = {name: (committed / name).read_bytes() for name in GENERATED}
    items = src / "cn_gfsp_2025_items.csv"
    header = items.read_text(encoding="utf-8").splitlines()[0]
    _edit(items, header, header.replace(",name_en,", ",name_english,"))
    done = run_cli("rulebooks", "build", "--sources", str(src), "--out", str(committed))
    assert done.returncode == 1
    assert done.stderr == (
        f"error: cn_gfsp_2025.yaml from {src}: KeyError: missing column or key 'name_en'\n"
    )
    assert {name: (committed / name).read_bytes() for name in GENERATED} == before

    # a hand-written criterion the loader refuses: named by file, item and criterion
    src = _sources(tmp_path / "again")
    _edit(
        src / "cn_gfsp_2025_criteria.yaml",
        "condition: cn_waste_heat_standards_met = TRUE\n",
        "condition: cn_waste_heat_standards_met = TRUE AND read_csv('x') IS NULL\n",
    )
    done = run_cli("rulebooks", "build", "--sources", str(src), "--out", str(committed))
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"error: the rulebook built from {src} is not valid: ")
    assert "file cn_gfsp_2025.yaml, item 1.3.4, criterion" in done.stderr
    assert "function 'read_csv' is not allowed" in done.stderr
    assert {name: (committed / name).read_bytes() for name in GENERATED} == before

    # a remark requirement naming a row its item lacks: the generator's own check
    src = _sources(tmp_path / "third")
    with (src / "cn_gfsp_2025_remark_requirements.csv").open("a", encoding="utf-8") as handle:
        handle.write("4.2.4,9999,requirement,「x」\n")
    with pytest.raises(BuildError, match=r"cn_gfsp_2025\.yaml from .*: cn_gfsp_2025_remark_requi"):
        catalogue_build.build_rulebooks(src, committed)


def test_without_sources_or_in_an_installed_package_the_error_says_what_to_give(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(BuildError, match="catalogue sources not found: .*give --sources DIR"):
        catalogue_build.build_rulebooks(tmp_path / "nowhere", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BuildError, match="lacks the catalogue sources cn_gfsp_2025_items.csv"):
        catalogue_build.build_rulebooks(tmp_path / "empty", tmp_path)
    # an installed wheel: the bundled folder is never rewritten, and a wheel without the
    # sources asks for them
    package = tmp_path / "site-packages" / "greenscreen"
    bundled = package / "_bundled" / "taxonomies"
    bundled.mkdir(parents=True)
    monkeypatch.setattr(catalogue_build, "_PACKAGE", package)
    monkeypatch.setattr(catalogue_build, "bundled_dir", lambda name: bundled)
    with pytest.raises(BuildError, match="installed greenscreen .* give --out DIR"):
        catalogue_build.build_rulebooks()
    with pytest.raises(BuildError, match="catalogue sources not found: .*sources"):
        catalogue_build.build_rulebooks(check=True)
    with pytest.raises(BuildError, match="catalogue sources not found"):
        catalogue_build.build_rulebooks(out=tmp_path / "mine")


def test_the_scripts_run_the_same_code(tmp_path: Path) -> None:
    """python taxonomies/sources/build_cn_*_rulebook.py OUT still writes the same bytes (the
    generator tests in test_catalogue_check.py run them); a source error is its message."""
    src = Path(shutil.copytree(SOURCES, tmp_path / "src"))
    _edit(src / "cn_gfsp_2025_activity_map.csv", "hydropower,4.2.4,", "hydropower,4.2.99,")
    done = subprocess.run(
        [sys.executable, str(src / "build_cn_gfsp_2025_rulebook.py"), str(tmp_path / "x.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "not items of the catalogue: ['4.2.99']" in done.stderr
    assert not (tmp_path / "x.yaml").exists()


# ---- the JSON schemas ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["rulebook", "programme"])
def test_the_published_schema_is_the_models(kind: str) -> None:
    published = (TAXONOMIES / f"{kind}.schema.json").read_text(encoding="utf-8")
    assert published == json_schema(kind)  # `greenscreen rulebooks build` rewrites it
    model = Rulebook if kind == "rulebook" else Programme
    schema = json.loads(published)
    assert schema == model.model_json_schema()
    assert schema["additionalProperties"] is False  # a misspelt key is flagged as typed
    assert "path" not in schema["properties"]  # set by the loader, never by the file
    assert {"schema_type", "id", "source_url"} <= set(schema["required"])


def test_rulebooks_schema_prints_or_writes_it(tmp_path: Path) -> None:
    done = run_cli("rulebooks", "schema")
    assert done.returncode == 0, done.stderr
    assert done.stdout == json_schema("rulebook")
    out = tmp_path / "my_rulebooks" / "programme.schema.json"
    out.parent.mkdir()
    done = run_cli("rulebooks", "schema", "--kind", "programme", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8") == json_schema("programme")


HINT = "# yaml-language-server: $schema={}.schema.json\n"


def test_hand_edited_files_name_their_schema_and_load_the_same_without_it(tmp_path: Path) -> None:
    """The editor hint is a comment on the first line of every hand-edited rulebook and
    programme (not of the generated catalogues); without it the file loads the same."""
    hinted = 0
    for path in sorted(TAXONOMIES.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        kind = yaml.safe_load(text)["schema_type"].removeprefix("greenscreen.")
        generated = text.startswith("# GENERATED by ")
        assert text.startswith(HINT.format(kind)) != generated, path.name
        if generated:
            continue
        plain = tmp_path / path.name
        plain.write_text(text.removeprefix(HINT.format(kind)), encoding="utf-8")
        load = load_programme if kind == "programme" else load_rulebook
        assert load(path).model_dump(exclude={"path"}) == load(plain).model_dump(exclude={"path"})
        hinted += 1
    assert hinted == 8  # 5 rulebooks, 3 programmes
