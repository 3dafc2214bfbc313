"""What the rulebook generators beside this file share: the whitespace-free comparison with an
official text, the generic attestation criterion with its evidence field, and one YAML layout
(block style, long lines kept, keys in insertion order) so regenerating gives the same bytes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml


def squash(text: str) -> str:
    """All whitespace removed: how texts are compared with the official text."""
    return re.sub(r"\s+", "", text)


def attestation(
    field: str,
    *,
    clause: str,
    threshold: str,
    text: dict[str, str],
    verification: str,
    description: dict[str, str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The criterion "the analyst confirms ``field``" and the boolean field it reads."""
    criterion = {
        "id": "conditions",
        "condition": f"{field} = TRUE",
        "clause": clause,
        "threshold": threshold,
        "text": text,
        "verification": verification,
    }
    return criterion, {"name": field, "type": "boolean", "description": description}


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    str, lambda dumper, data: dumper.represent_scalar("tag:yaml.org,2002:str", data)
)


def write(target: Path, book: dict[str, Any], head: str) -> None:
    """Write ``book`` under the comment lines ``head``."""
    body = yaml.dump(book, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)
    target.write_text(head + body, encoding="utf-8")
