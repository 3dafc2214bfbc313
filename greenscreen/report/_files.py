"""Output file names derived from project ids: safe on every OS, confined to the output dir."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

from greenscreen._outputs import atomic_write
from greenscreen.errors import GreenscreenError

__all__ = ["atomic_write", "confined", "safe_stem"]  # atomic_write lives in greenscreen._outputs

_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}


#: a stem ending like a hash suffix is never kept as it is: it could be another id's name
_HASH_SUFFIX = re.compile(r"_[0-9a-f]{8}$", re.IGNORECASE)
#: names a pack folder holds besides the packs (index.html, the resume manifest)
_FOLDER_NAMES = {"index"}


def safe_stem(project_id: str, max_bytes: int = 120) -> str:
    """A file-name stem for a project id: letters, digits, CJK, ``-``, ``_`` and ``.`` only.

    Anything else (path separators, ``..``, NUL, control, zero-width and bidi characters) is
    replaced and the stem is cut to ``max_bytes`` of UTF-8 (file systems allow 255 bytes).
    The id is kept as it is only when it is already such a stem in upper case (``GS-003``,
    ``光伏-01``); every other id gets ``_`` and 8 hex digits of its SHA-256. So two ids never
    share a name, also on the case-insensitive file systems of Windows and macOS (``gs-003``
    and ``GS-003``; ``GS 001`` and ``GS_001_22a85125``), and a name never changes between
    runs. Reserved Windows device names (``CON``, ``nul.txt``) and ``index`` (the packs'
    index) are changed too.

    Parameters
    ----------
    project_id : str
    max_bytes : int
        The longest stem before the hash suffix [bytes of UTF-8].

    Returns
    -------
    str
    """
    text = unicodedata.normalize("NFKC", project_id)
    # letters and digits of any script (categories L*, N*) and -_. survive; separators,
    # control, format (zero-width, bidi) and other characters become "_"
    cleaned = "".join(
        ch if ch in "-_." or unicodedata.category(ch)[0] in "LN" else "_" for ch in text
    )
    cleaned = re.sub(r"_+", "_", cleaned).strip("._ ") or "project"
    cleaned = cleaned.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")  # whole characters
    first = cleaned.upper().split(".")[0]
    if first in _RESERVED or first.lower() in _FOLDER_NAMES:
        # Windows reads NUL.txt_1234.xlsx as the device NUL: change the first part
        cleaned = f"_{cleaned}"
    if cleaned != project_id or not _upper_case(project_id) or _HASH_SUFFIX.search(cleaned):
        digest = hashlib.sha256(project_id.encode("utf-8")).hexdigest()[:8]
        cleaned = f"{cleaned}_{digest}"
    return cleaned


def _upper_case(text: str) -> bool:
    """No other text differs from this one only by case and is upper case too."""
    return text == text.upper() and text.lower().upper() == text


def confined(directory: Path, name: str) -> Path:
    """``directory / name``, refusing anything that would land outside ``directory``.

    Parameters
    ----------
    directory : pathlib.Path
    name : str
        A file name (a :func:`safe_stem` with its suffix).

    Returns
    -------
    pathlib.Path
        The resolved path, directly inside ``directory``.

    Raises
    ------
    GreenscreenError
        ``name`` resolves elsewhere (``..``, a separator, a symlink).
    """
    root = directory.resolve()
    path = (root / name).resolve()
    if path.parent != root:
        raise GreenscreenError(f"refusing to write {name!r} outside {root}")
    return path
