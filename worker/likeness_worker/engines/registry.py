"""THE registry: (task kind, engine name) -> engine class, plus the default engine per kind.

Registration is explicit: ``load_engines`` adds the built-in classes (``builtin.ENGINES``), the
ComfyUI ones (``comfyui.ENGINES``) and the GPU tools' (``gpu.ENGINES``; these two selectable, never
a default), then calls ``register(registry)``
of each plugin module named in WORKER_ENGINE_PLUGINS. Importing an engine module registers
nothing, so engines never import the registry.

A command may override engines per task kind (its ``engines`` field); an unknown name fails the
step with bad_input naming it. At start-up main() refuses (``missing_defaults``) to run a worker
that lacks a default engine for a task kind it may be asked to run.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from pydantic import BaseModel

from ..config import ConfigError, load_group
from .base import TASK_INTERFACES, Engine
from .builtin import ENGINES as BUILTIN_ENGINES
from .comfyui import ENGINES as COMFYUI_ENGINES
from .gpu import ENGINES as GPU_ENGINES


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

    def add(self, *classes: type[Engine]) -> None:
        """Registers engine classes named by ``@engine(task_kind, name, default=...)``."""
        for cls in classes:
            self.register(cls.task_kind, cls.name, cls, default=cls.is_default)

    def resolve(self, task_kind: str, overrides: dict[str, str] | None = None) -> tuple[str, type[Engine]]:
        name = (overrides or {}).get(task_kind) or self._defaults.get(task_kind)
        if name is None:
            raise UnknownEngine(f"no default engine for task kind {task_kind!r}")
        cls = self._engines.get((task_kind, name))
        if cls is None:
            known = ", ".join(self.names(task_kind))
            raise UnknownEngine(f"unknown engine {name!r} for task kind {task_kind!r} (known: {known})")
        return name, cls

    def entries(self, task_kinds: tuple[str, ...]) -> list[tuple[str, str, type[Engine], bool]]:
        """(task kind, name, class, is the default) of every engine of these task kinds, sorted."""
        return [
            (k, n, cls, self._defaults.get(k) == n)
            for (k, n), cls in sorted(self._engines.items())
            if k in task_kinds
        ]

    def names(self, task_kind: str) -> list[str]:
        return sorted(n for k, n in self._engines if k == task_kind)

    def defaults(self, task_kinds: tuple[str, ...]) -> list[type[Engine]]:
        return [self._engines[(k, self._defaults[k])] for k in task_kinds if k in self._defaults]

    def missing_defaults(self, task_kinds: tuple[str, ...]) -> list[str]:
        return [k for k in task_kinds if k not in self._defaults]

    def settings_groups(self) -> list[type[BaseModel]]:
        """The settings groups of the registered engines, each once (validated at start-up)."""
        groups: dict[type[BaseModel], None] = {}
        for cls in self._engines.values():
            if cls.settings_group is not None:
                groups[cls.settings_group] = None
        return list(groups)

    def check_settings(self, env: Mapping[str, str] | None = None) -> None:
        """Parse every engine's settings group; ConfigError naming each bad variable."""
        problems = []
        for group in self.settings_groups():
            try:
                load_group(group, env)
            except ConfigError as exc:
                problems.append(str(exc).removeprefix("invalid worker configuration: "))
        if problems:
            raise ConfigError("invalid worker configuration: " + "; ".join(problems))


class PluginError(ImportError):
    pass


def load_engines(plugins: tuple[str, ...] = ()) -> EngineRegistry:
    """A registry of the built-in, ComfyUI and GPU-tool engines, then each plugin's (its ``register(registry)``)."""
    registry = EngineRegistry()
    registry.add(*BUILTIN_ENGINES, *COMFYUI_ENGINES, *GPU_ENGINES)
    for name in plugins:
        module = importlib.import_module(name)
        register = getattr(module, "register", None)
        if not callable(register):
            raise PluginError(f"engine plugin {name} has no register(registry) function")
        register(registry)
    return registry
