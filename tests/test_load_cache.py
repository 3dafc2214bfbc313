"""The load cache of checked rulebook and programme files (``greenscreen._cache``): a hit gives
equal objects, anything changed is a miss, a damaged, foreign or unwritable cache is no cache,
and a bad file is refused with the same message whatever the cache holds."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from greenscreen import RulebookError, _cache
from greenscreen import rulebook as rulebook_module
from greenscreen.rulebook import compile_condition, input_fields, load_rulebook, load_rulebooks
from greenscreen.subsidy import load_programme, load_programmes

TAXONOMIES = Path(__file__).parents[1] / "taxonomies"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder of this test's own."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("GREENSCREEN_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the files parsed as YAML (a cache hit parses nothing)."""
    seen: list[str] = []
    parse = rulebook_module._yaml_document

    def counted(data: bytes, file: str) -> Any:
        seen.append(file)
        return parse(data, file)

    monkeypatch.setattr(rulebook_module, "_yaml_document", counted)
    yield seen


def _fields_set(model: BaseModel) -> list[set[str]]:
    """The fields set of a model and of every model in it, in order (pickling keeps them)."""
    out = [set(model.model_fields_set)]
    for value in model.__dict__.values():
        values = value.values() if isinstance(value, dict) else value
        for part in values if isinstance(values, list | tuple) else [value]:
            if isinstance(part, BaseModel):
                out += _fields_set(part)
    return out


def test_a_hit_gives_equal_rulebooks_and_programmes_without_parsing(
    cache: Path, parses: list[str]
) -> None:
    books, programmes = load_rulebooks(), load_programmes()
    assert len(parses) == len(books) + len(programmes)
    assert len(list(cache.glob("*.pickle"))) == len(parses)
    parses.clear()
    again, programmes_again = load_rulebooks(), load_programmes()
    assert parses == []
    assert again == books and programmes_again == programmes
    assert all(a is not b for a, b in zip(again, books, strict=True))
    for new, old in zip([*again, *programmes_again], [*books, *programmes], strict=True):
        assert new.model_dump() == old.model_dump()
        assert _fields_set(new) == _fields_set(old)


def test_a_hit_compiles_conditions_as_a_parse_does(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_rulebook(TAXONOMIES / "eu_taxonomy.yaml")
    book = load_rulebook(TAXONOMIES / "eu_taxonomy.yaml")  # a hit: its conditions are learnt
    fields = input_fields(book)
    parse = rulebook_module._parse.__wrapped__  # without the in-process cache
    conditions = [c.condition for item in book.leaf_items for c in item.criteria]
    learnt = [parse(condition) for condition in conditions]
    compile_condition(conditions[0], fields)
    monkeypatch.setattr(_cache, "known_sql", {})  # forgotten: sqlglot parses them again
    for condition, known in zip(conditions, learnt, strict=True):
        fresh = parse(condition)
        assert not isinstance(fresh, str) and not isinstance(known, str)
        assert known[0].meta.serialize() == fresh[0].meta.serialize()
        assert known[1:] == fresh[1:]
        assert (condition, *_inputs(condition, fields)) in _cache.known_types


def _inputs(condition: str, fields: dict[str, Any]) -> tuple[Any, str]:
    """The key compile_condition checks types under: (input kinds, "boolean")."""
    _, used = compile_condition(condition, fields)
    return tuple((name, rulebook_module._kind_of(fields[name])) for name in used), "boolean"


def _copy(name: str, folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    return Path(shutil.copy(TAXONOMIES / name, folder / name))


def test_changed_bytes_are_a_miss_and_replace_the_entry(
    cache: Path, parses: list[str], tmp_path: Path
) -> None:
    path = _copy("glp_2025.yaml", tmp_path / "mine")
    first = load_rulebook(path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(f'version: "{first.version}"', "version: changed"), "utf-8")
    changed = load_rulebook(path)
    assert changed.version == "changed" and parses == ["glp_2025.yaml"] * 2
    assert len(list(cache.glob("*.pickle"))) == 1  # one entry per file
    assert load_rulebook(path) == changed and len(parses) == 2


def test_changed_code_is_a_miss(
    cache: Path, parses: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    load_programme(TAXONOMIES / "prog_lingang_storage.yaml")
    monkeypatch.setattr(_cache, "_code_digest", lambda: b"another greenscreen")
    load_programme(TAXONOMIES / "prog_lingang_storage.yaml")
    assert parses == ["prog_lingang_storage.yaml"] * 2


@pytest.mark.parametrize(
    "damage",
    [
        lambda blob: blob[: len(blob) // 2],  # truncated
        lambda blob: blob[:-1] + bytes([blob[-1] ^ 1]),  # a flipped bit
        lambda blob: b"",
        lambda blob: b"not a cache file",
    ],
)
def test_a_damaged_entry_is_parsed_again_and_rewritten(
    cache: Path, parses: list[str], damage: Any
) -> None:
    book = load_rulebook("cn_exclusions")
    (entry,) = cache.glob("*.pickle")
    entry.write_bytes(damage(entry.read_bytes()))
    assert load_rulebook("cn_exclusions") == book
    assert load_rulebook("cn_exclusions") == book
    assert len(parses) == 2  # the damaged entry was replaced by a good one


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_an_entry_others_could_write_is_not_read(cache: Path, parses: list[str]) -> None:
    book = load_rulebook("glp_2025")
    (entry,) = cache.glob("*.pickle")
    entry.chmod(0o666)  # unpickling runs code: only the user's own, private files are read
    assert load_rulebook("glp_2025") == book
    assert len(parses) == 2


def test_an_unwritable_or_disabled_cache_is_no_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parses: list[str]
) -> None:
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder", encoding="utf-8")
    for setting in (str(blocker / "cache"), str(blocker), "off", "OFF"):
        monkeypatch.setenv("GREENSCREEN_CACHE_DIR", setting)
        parses.clear()
        assert load_rulebook("glp_2025") == load_rulebook("glp_2025")
        assert len(parses) == 2
    assert blocker.read_text(encoding="utf-8") == "not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a file"]


def test_the_default_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GREENSCREEN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _cache.cache_dir() == tmp_path / "greenscreen"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _cache.cache_dir() == tmp_path / "home" / ".cache" / "greenscreen"


def test_a_bad_file_is_refused_alike_and_never_stored(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy("glp_2025.yaml", tmp_path / "mine")
    good = path.read_text(encoding="utf-8")
    load_rulebook(path)  # the good version is cached
    (entry,) = cache.glob("*.pickle")
    cached = entry.read_bytes()
    for bad in (
        good.replace("verification: verified", "verification: checked", 1),
        good + "\nid: twice\n",
        good.replace("items:", "items: 3\nlater:", 1),
    ):
        path.write_text(bad, encoding="utf-8")
        with pytest.raises(RulebookError) as with_cache:
            load_rulebook(path)
        monkeypatch.setenv("GREENSCREEN_CACHE_DIR", "off")
        with pytest.raises(RulebookError) as without:
            load_rulebook(path)
        monkeypatch.setenv("GREENSCREEN_CACHE_DIR", str(cache))
        assert str(with_cache.value) == str(without.value)
        assert entry.read_bytes() == cached  # the good version's entry, untouched
