"""Locate the data directories that ship with greenscreen.

``taxonomies/`` and ``templates/`` live at the top of the repository so compliance staff can edit
them without touching code. The wheel carries them as ``greenscreen/_bundled/<name>`` (see the
``force-include`` table in pyproject.toml); a source checkout or an editable install finds them
beside the package instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from greenscreen.errors import GreenscreenError

_PACKAGE = Path(__file__).resolve().parent

BundledDir = Literal["taxonomies", "templates"]


def bundled_dir(name: BundledDir) -> Path:
    """Directory of the bundled ``taxonomies`` or ``templates`` (installed wheel first)."""
    for candidate in (_PACKAGE / "_bundled" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise GreenscreenError(
        f"greenscreen's bundled '{name}' directory is missing; reinstall the package"
    )


def data_file(name: str) -> Path:
    """Path of a reference file shipped inside the package (``greenscreen/data/``)."""
    return _PACKAGE / "data" / name
