"""One exception hierarchy for greenscreen.

Every error a user can cause derives from :class:`GreenscreenError`; the CLI prints its message
and exits non-zero without a traceback. Anything else reaching the CLI is a bug in greenscreen.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl


class GreenscreenError(Exception):
    """Base class of every error greenscreen raises on purpose.

    Its text is one line (the CLI prints it after ``error:``): a multi-line message quoted from
    a parser (YAML, CSV, Excel) is joined into one.
    """

    def __str__(self) -> str:
        return " ".join(line.strip() for line in super().__str__().splitlines() if line.strip())


class PipelineError(GreenscreenError):
    """The pipeline cannot be read, or (in strict mode) some rows were rejected.

    ``rejects`` holds the reject rows (row, project_id, field, value, reason, code) when the
    error is about rows rather than the file as a whole.
    """

    def __init__(self, message: str, rejects: pl.DataFrame | None = None) -> None:
        super().__init__(message)
        self.rejects = rejects


class RulebookError(GreenscreenError):
    """A rulebook or programme file is invalid. The message names file, item and criterion."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        item: str | None = None,
        criterion: str | None = None,
    ) -> None:
        where = ", ".join(
            f"{label} {value}"
            for label, value in (("file", file), ("item", item), ("criterion", criterion))
            if value
        )
        super().__init__(f"{where}: {message}" if where else message)
        self.file, self.item, self.criterion = file, item, criterion


class BuildError(GreenscreenError):
    """A generated rulebook cannot be built from its sources (``greenscreen rulebooks build``):
    a source table or hand-written criteria file is missing or malformed, or the result is not
    a valid rulebook. The message names the output, the sources and the problem."""


def did_you_mean(value: str, options: Iterable[str]) -> str:
    """The "did you mean" hint of an error message.

    Parameters
    ----------
    value : str
        What the user wrote.
    options : iterable of str
        The accepted values.

    Returns
    -------
    str
        ``"; did you mean 'x'?"`` for the closest option (difflib ratio ≥ 0.6), else ``""``.
    """
    close = difflib.get_close_matches(value, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
