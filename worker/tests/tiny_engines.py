"""TEST-ONLY engine plugin (WORKER_ENGINE_PLUGINS=tiny_engines): an engine named ``tiny`` for
every task kind, writing a small real file per step in milliseconds.

The runtime tests (kill, retry, cancel) exercise the bridge, the DAG and the actors with these so
they stay fast; the full-job tests use the built-in engines and real media.
"""

from __future__ import annotations

from likeness_worker.engines import REGISTRY, TASK_INTERFACES, Engine, StepOutput, TaskContext


def _run(self: Engine, ctx: TaskContext) -> StepOutput:
    seen = sorted(ctx.upstream)
    path = ctx.path(f"out/{ctx.step}.txt")
    path.write_text(f"{ctx.step} of {ctx.job_id} after {','.join(seen)}\n")
    ref = ctx.upload(f"{ctx.step}.txt", path, "note", "text/plain")
    from dramatiq.middleware import CurrentMessage

    message = CurrentMessage.get_current_message()
    outputs = {"upstream": seen, "queue": message.queue_name if message else None}
    if ctx.task_kind == "publish":
        outputs["result"] = {"tiny": True, "steps": seen}
    return StepOutput([ref], outputs)


for kind, (_proto, verb) in TASK_INTERFACES.items():
    cls = type(f"Tiny_{kind}", (Engine,), {verb: _run})
    REGISTRY.engine(kind, "tiny")(cls)

# A "GPU" engine: its steps must land on the gpu0 queue.
REGISTRY.engine("upscale", "tiny_gpu")(type("TinyGpuUpscale", (Engine,), {"upscale": _run, "device": "gpu"}))

TINY = {kind: "tiny" for kind in TASK_INTERFACES}
