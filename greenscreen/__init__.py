"""greenscreen — screen project-finance pipelines for green loans.

Public API (small and flat)::

    read_pipeline(source)  -> Pipeline (typed projects + rejects)
    screen(source)         -> ScreenResult (results, decisions, rejects; .write(out_dir))
    explain(result, id)    -> one project's decision trace
    appraise(projects)     -> cash flows, DSCR, IRR, NPV, LCOE for every project
    load_rulebook(id|path) -> a validated rulebook
    write_template(path)   -> the Excel input template
    runs.open(path)        -> the run register (list, get, diff, export of recorded runs)
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from greenscreen.errors import GreenscreenError, PipelineError, RulebookError

if TYPE_CHECKING:
    from greenscreen import register as runs
    from greenscreen._template import write_template
    from greenscreen.appraisal import appraise
    from greenscreen.io import Pipeline, read_pipeline
    from greenscreen.rulebook import load_rulebook, load_rulebooks
    from greenscreen.run import ScreenResult, explain, screen
    from greenscreen.schema import FIELDS, ProjectInput, polars_schema

# The public names load their module on first use (PEP 562): `greenscreen --version` and a
# `from greenscreen.errors import …` do not pay for polars, numpy and the rulebooks.
_LAZY = {
    "write_template": "greenscreen._template",
    "appraise": "greenscreen.appraisal",
    "Pipeline": "greenscreen.io",
    "read_pipeline": "greenscreen.io",
    "load_rulebook": "greenscreen.rulebook",
    "load_rulebooks": "greenscreen.rulebook",
    "ScreenResult": "greenscreen.run",
    "explain": "greenscreen.run",
    "screen": "greenscreen.run",
    "FIELDS": "greenscreen.schema",
    "ProjectInput": "greenscreen.schema",
    "polars_schema": "greenscreen.schema",
}


def __getattr__(name: str) -> Any:
    from importlib import import_module

    if name == "runs":  # gs.runs.open(path): the run register (greenscreen.register)
        value: Any = import_module("greenscreen.register")
        globals()[name] = value
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'greenscreen' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "FIELDS",
    "GreenscreenError",
    "Pipeline",
    "PipelineError",
    "ProjectInput",
    "RulebookError",
    "ScreenResult",
    "__version__",
    "appraise",
    "explain",
    "load_rulebook",
    "load_rulebooks",
    "polars_schema",
    "read_pipeline",
    "runs",
    "screen",
    "write_template",
]
