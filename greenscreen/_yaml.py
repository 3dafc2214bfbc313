"""Reading a rulebook or programme file's YAML safely (see
:func:`greenscreen.rulebook.read_yaml`).

A module of its own so that PyYAML is imported only when a file is parsed: on a load cache miss
(``greenscreen._cache``). Importing yaml took 0.05-0.1 s of every command's start; a screen of
the bundled rulebooks with a warm cache never needs it.
"""

from __future__ import annotations

from typing import Any

import yaml

from greenscreen.errors import RulebookError
from greenscreen.rulebook import MAX_YAML_DEPTH, MAX_YAML_VALUES


class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """yaml.safe_load's loader; libyaml's when installed (10 times faster on the shipped files)."""


def _located(construct: Any) -> Any:
    """A scalar constructor whose error says where: YAML reads 9999-99-99 as a date."""

    def run(loader: Any, node: yaml.ScalarNode) -> Any:
        try:
            return construct(loader, node)
        except (ValueError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value[:80]!r} is not a valid value ({exc})", node.start_mark
            ) from exc

    return run


for _tag in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
    Loader.add_constructor(_tag, _located(Loader.yaml_constructors[_tag]))


def document(data: bytes, file: str) -> Any:
    """A file's bytes as YAML, checked as :func:`greenscreen.rulebook.read_yaml` says."""
    try:
        text = data.decode("utf-8")
        check_events(text, file)
        return yaml.load(text, Loader=Loader)  # a SafeLoader: safe constructors only
    except (yaml.YAMLError, ValueError, OverflowError, RecursionError) as exc:
        # ValueError: bad UTF-8, or a date such as 2024-13-45 that YAML reads as a timestamp
        raise RulebookError(f"not valid YAML: {exc}", file=file) from exc


class _Open:
    """A mapping or list being read: where its values start, its anchor, a mapping's keys."""

    __slots__ = ("anchor", "key_next", "keys", "start")

    def __init__(self, start: int, anchor: str | None, keys: set[str] | None) -> None:
        self.start, self.anchor, self.keys, self.key_next = start, anchor, keys, True


def check_events(text: str, file: str) -> None:
    """Walk the YAML events (nothing is built) and refuse a document with more than
    MAX_YAML_VALUES values once aliases are expanded (``*a`` counts the values of ``&a``),
    nested deeper than MAX_YAML_DEPTH, or with a key twice in one mapping (YAML would keep the
    last one silently)."""
    sizes: dict[str, int] = {}  # anchor: values under it
    stack: list[_Open] = []
    values = 0
    for event in yaml.parse(text, Loader=Loader):
        if isinstance(event, yaml.CollectionEndEvent):
            done = stack.pop()
            if done.anchor is not None:
                sizes[done.anchor] = values - done.start
            continue
        if not isinstance(event, yaml.NodeEvent):
            continue
        line = event.start_mark.line + 1 if event.start_mark else "?"
        parent = stack[-1] if stack else None
        if parent is not None and parent.keys is not None:  # keys and values alternate
            if parent.key_next and isinstance(event, yaml.ScalarEvent):
                if event.value in parent.keys:
                    raise RulebookError(
                        f"duplicate key '{event.value[:80]}' (line {line})",
                        file=file,
                    )
                parent.keys.add(event.value)
            parent.key_next = not parent.key_next
        start = values
        values += sizes.get(event.anchor or "", 1) if isinstance(event, yaml.AliasEvent) else 1
        if values > MAX_YAML_VALUES:
            raise RulebookError(
                f"more than {MAX_YAML_VALUES:,} YAML values (aliases expanded); "
                "a rulebook this large is refused",
                file=file,
            )
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_YAML_DEPTH:
                raise RulebookError(
                    f"nested deeper than {MAX_YAML_DEPTH} levels (line {line})", file=file
                )
            keys: set[str] | None = set() if isinstance(event, yaml.MappingStartEvent) else None
            stack.append(_Open(start, event.anchor, keys))
        elif isinstance(event, yaml.ScalarEvent) and event.anchor is not None:
            sizes[event.anchor] = 1
