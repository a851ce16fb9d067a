"""Engines: one interface per task kind, one registry, built-in CPU engines by default."""

from .base import TASK_INTERFACES, Engine, StepOutput, TaskContext, engine
from .registry import EngineRegistry, PluginError, UnknownEngine, load_engines

__all__ = [
    "TASK_INTERFACES",
    "Engine",
    "EngineRegistry",
    "PluginError",
    "StepOutput",
    "TaskContext",
    "UnknownEngine",
    "engine",
    "load_engines",
]
