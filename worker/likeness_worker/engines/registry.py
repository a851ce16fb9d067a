"""THE registry: (task kind, engine name) -> engine class, plus the default engine per kind.

A command may override engines per task kind (its ``engines`` field); an unknown name fails the
step with bad_input naming it. At start-up main() refuses (``missing_defaults``) to run a worker
that lacks a default engine for a task kind it may be asked to run.
"""

from __future__ import annotations

import importlib
from typing import Callable, TypeVar

from .base import TASK_INTERFACES, Engine

E = TypeVar("E", bound=type[Engine])


class UnknownEngine(LookupError):
    pass


class EngineRegistry:
    def __init__(self) -> None:
        self._engines: dict[tuple[str, str], type[Engine]] = {}
        self._defaults: dict[str, str] = {}

    def register(self, task_kind: str, name: str, cls: type[Engine], *, default: bool = False) -> None:
        if task_kind not in TASK_INTERFACES:
            raise ValueError(f"unknown task kind {task_kind!r}")
        protocol, verb = TASK_INTERFACES[task_kind]
        if not callable(getattr(cls, verb, None)):
            raise TypeError(f"engine {name!r} for {task_kind} lacks the {verb}() verb of {protocol.__name__}")
        self._engines[(task_kind, name)] = cls
        if default:
            self._defaults[task_kind] = name

    def engine(self, task_kind: str, name: str, *, default: bool = False) -> Callable[[E], E]:
        """Class decorator: ``@REGISTRY.engine("tts", "espeak", default=True)``."""

        def deco(cls: E) -> E:
            cls.task_kind = task_kind
            cls.name = name
            self.register(task_kind, name, cls, default=default)
            return cls

        return deco

    def resolve(self, task_kind: str, overrides: dict[str, str] | None = None) -> tuple[str, type[Engine]]:
        name = (overrides or {}).get(task_kind) or self._defaults.get(task_kind)
        if name is None:
            raise UnknownEngine(f"no default engine for task kind {task_kind!r}")
        cls = self._engines.get((task_kind, name))
        if cls is None:
            known = ", ".join(self.names(task_kind))
            raise UnknownEngine(f"unknown engine {name!r} for task kind {task_kind!r} (known: {known})")
        return name, cls

    def names(self, task_kind: str) -> list[str]:
        return sorted(n for k, n in self._engines if k == task_kind)

    def defaults(self, task_kinds: tuple[str, ...]) -> list[type[Engine]]:
        return [self._engines[(k, self._defaults[k])] for k in task_kinds if k in self._defaults]

    def missing_defaults(self, task_kinds: tuple[str, ...]) -> list[str]:
        return [k for k in task_kinds if k not in self._defaults]


REGISTRY = EngineRegistry()


def load_engines(plugins: tuple[str, ...] = ()) -> EngineRegistry:
    """Import the built-in engines and any plugin modules (each registers itself on import)."""
    importlib.import_module("likeness_worker.engines.builtin")
    for module in plugins:
        importlib.import_module(module)
    return REGISTRY
