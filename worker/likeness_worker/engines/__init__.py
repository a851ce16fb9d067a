"""Engines: one interface per task kind, one registry, built-in CPU engines by default."""

from .base import TASK_INTERFACES, Engine, StepOutput, TaskContext
from .registry import REGISTRY, EngineRegistry, UnknownEngine, load_engines

__all__ = ["Engine", "EngineRegistry", "REGISTRY", "StepOutput", "TASK_INTERFACES", "TaskContext", "UnknownEngine", "load_engines"]
