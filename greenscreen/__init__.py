"""greenscreen — screen project-finance pipelines for green loans.

Public API (small and flat)::

    read_pipeline(source)  -> Pipeline (typed projects + rejects)
    screen(source)         -> ScreenResult (results + rejects; .write(out_dir))
    write_template(path)   -> the Excel input template
"""

__version__ = "0.1.0"

from greenscreen._template import write_template
from greenscreen.errors import GreenscreenError, PipelineError, RulebookError
from greenscreen.io import Pipeline, read_pipeline
from greenscreen.run import ScreenResult, screen
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
    "polars_schema",
    "read_pipeline",
    "screen",
    "write_template",
]
