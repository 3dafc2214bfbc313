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
    """The bundled ``taxonomies`` or ``templates`` directory.

    Parameters
    ----------
    name : {"taxonomies", "templates"}

    Returns
    -------
    pathlib.Path
        ``greenscreen/_bundled/<name>`` in an installed wheel, else ``<name>`` beside the
        package (a checkout or an editable install).

    Raises
    ------
    GreenscreenError
        Neither exists (a broken installation).
    """
    for candidate in (_PACKAGE / "_bundled" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise GreenscreenError(
        f"greenscreen's bundled '{name}' directory is missing; reinstall the package"
    )


def data_file(name: str) -> Path:
    """A reference file shipped inside the package.

    Parameters
    ----------
    name : str
        Its path under ``greenscreen/data/`` (``activities.csv``, ``factors/fuels.csv``).

    Returns
    -------
    pathlib.Path
        The path; whether the file exists is not checked.
    """
    return _PACKAGE / "data" / name
