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

from greenscreen import register as runs  # gs.runs.open(path): the run register
from greenscreen._template import write_template
from greenscreen.appraisal import appraise
from greenscreen.errors import GreenscreenError, PipelineError, RulebookError
from greenscreen.io import Pipeline, read_pipeline
from greenscreen.rulebook import load_rulebook, load_rulebooks
from greenscreen.run import ScreenResult, explain, screen
from greenscreen.schema import FIELDS, ProjectInput, polars_schema

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
