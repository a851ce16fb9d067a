"""The bridge between the api's job streams and the worker's DAGs."""

from .consumer import Bridge
from .jobs import JobRunner

__all__ = ["Bridge", "JobRunner"]
