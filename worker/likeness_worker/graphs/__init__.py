"""The job DAGs (LangGraph, Postgres-checkpointed)."""

from .build import JobGraphs
from .dag import DAGS

__all__ = ["DAGS", "JobGraphs"]
