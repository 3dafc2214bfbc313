"""greenscreen — screen project-finance pipelines for green loans."""

__version__ = "0.1.0"
