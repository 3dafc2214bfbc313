"""Output file names derived from project ids: safe on every OS, confined to the output dir."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable
from pathlib import Path

from greenscreen.errors import GreenscreenError

_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}


def safe_stem(project_id: str, max_length: int = 80) -> str:
    """A file-name stem for a project id: letters, digits, CJK, ``-``, ``_`` and ``.`` only.

    Anything else (path separators, ``..``, NUL, control, zero-width and bidi characters) is
    replaced; reserved Windows names and changed ids get a short hash of the original id, so two
    ids never map to the same name.
    """
    text = unicodedata.normalize("NFKC", project_id)
    # letters and digits of any script (categories L*, N*) and -_. survive; separators,
    # control, format (zero-width, bidi) and other characters become "_"
    cleaned = "".join(
        ch if ch in "-_." or unicodedata.category(ch)[0] in "LN" else "_" for ch in text
    )
    cleaned = re.sub(r"_+", "_", cleaned).strip("._ ") or "project"
    cleaned = cleaned[:max_length]
    reserved = cleaned.upper().split(".")[0] in _RESERVED
    if reserved:  # Windows reads NUL.txt_1234.xlsx as the device NUL: change the first part
        cleaned = f"_{cleaned}"
    if cleaned != project_id:
        digest = hashlib.sha256(project_id.encode("utf-8")).hexdigest()[:8]
        cleaned = f"{cleaned}_{digest}"
    return cleaned


def confined(directory: Path, name: str) -> Path:
    """``directory / name``, refusing anything that would land outside ``directory``."""
    root = directory.resolve()
    path = (root / name).resolve()
    if path.parent != root:
        raise GreenscreenError(f"refusing to write {name!r} outside {root}")
    return path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """``write(tmp)`` into a hidden temporary file next to ``path``, then rename it into place:
    an interrupted run never leaves a half-written output."""
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
    )
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
