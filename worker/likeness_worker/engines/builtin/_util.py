"""Small helpers shared by the built-in engines."""

from __future__ import annotations

import inspect
from typing import Any, Callable

from ..base import TaskContext


def call(fn: Callable[..., Any], *args: Any, **optional: Any) -> Any:
    """Call ``fn`` with the optional keyword arguments it accepts (cancelled=, progress=, ...).

    The media functions grow optional hooks over time; passing only what a function declares
    keeps engines working against every version of the agreed signatures.
    """
    params = inspect.signature(fn).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in optional.items() if accepts_any or k in params}
    return fn(*args, **kwargs)


def progress_hook(ctx: TaskContext, label: str) -> Callable[..., None]:
    """A progress callback for media functions: accepts (fraction) or (done, total)."""

    def hook(*args: Any, **_kw: Any) -> None:
        if len(args) >= 2 and isinstance(args[1], (int, float)) and args[1] > 1:
            done, total = args[0], args[1]
            ctx.progress(float(done) / float(total), f"{label} {int(done)} of {int(total)}")
        elif args:
            ctx.progress(float(args[0]), label)

    return hook


def ext_of(name: str, default: str = "bin") -> str:
    tail = name.rsplit(".", 1)[-1].lower() if "." in name else default
    return "".join(c for c in tail if c.isalnum())[:8] or default
