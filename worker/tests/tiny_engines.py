"""TEST-ONLY engine plugin (WORKER_ENGINE_PLUGINS=tiny_engines): an engine named ``tiny`` for
every task kind, writing a small real file per declared output in milliseconds.

Like a real engine it reads its declared inputs by name (``ctx.input``), never by step, and makes
every output its task kind declares (engines/ports.py), so the DAG can bind the next step's
inputs. Its outputs say which inputs it got (name -> key) and on which queue it ran.

The runtime tests (kill, retry, cancel) exercise the bridge, the DAG and the actors with these so
they stay fast; the full-job tests use the built-in engines and real media.
"""

from __future__ import annotations

from likeness_worker.engines import TASK_INTERFACES, Engine, EngineRegistry, StepOutput, TaskContext, engine
from likeness_worker.engines.ports import PORTS, TASK_PORTS


def _run(self: Engine, ctx: TaskContext) -> StepOutput:
    ports = TASK_PORTS[ctx.task_kind]
    took = {name: ctx.input(name).key for name in ports.takes if ctx.has_input(name)}
    from dramatiq.middleware import CurrentMessage

    message = CurrentMessage.get_current_message()
    artifacts: list[dict] = []
    outputs: dict = {"inputs": took, "queue": message.queue_name if message else None}
    for name in ports.outputs:
        port = PORTS[name]
        if name == "result" or name in getattr(self, "withhold", ()):
            continue
        path = ctx.path(f"out/{name}.txt")
        path.write_text(f"{name}: {ctx.step} of {ctx.job_id} from {sorted(took.values())}\n")
        ref = ctx.upload(f"{name}.txt", path, port.artifact or "note", "text/plain")
        artifacts.append(ref)
        if port.field:
            outputs[port.field] = ref["key"]
    if ctx.task_kind == "publish":
        outputs["result"] = {**getattr(self, "result", _valid_result)(ctx), "tiny": True, "inputs": sorted(took)}
    return StepOutput(artifacts, outputs)


def _valid_result(ctx: TaskContext) -> dict:
    """The fields the job kind's result schema requires (job_finished.result is checked)."""
    key = ctx.key("result.txt")
    if ctx.command["kind"] == "train_profile":
        return {"portraitKey": key, "faceBox": {"x": 0, "y": 0, "w": 1, "h": 1}, "datasetKey": key,
                "voiceReferenceKey": key, "voiceProfileKey": key, "acceptedImages": 1, "rejectedImages": []}
    return {"videoKey": key, "durationSec": 1.0, "width": 128, "height": 128, "fps": 25}


ENGINES: list[type[Engine]] = [
    engine(kind, "tiny")(type(f"Tiny_{kind}", (Engine,), {verb: _run})) for kind, (_proto, verb) in TASK_INTERFACES.items()
]
# A "GPU" engine: its steps must land on the gpu0 queue.
ENGINES.append(engine("upscale", "tiny_gpu")(type("TinyGpuUpscale", (Engine,), {"upscale": _run, "device": "gpu"})))
# A tts that breaks its contract: it makes timings but no speech, which the next step needs.
ENGINES.append(engine("tts", "tiny_mute")(type("TinyMuteTts", (Engine,), {"synthesize": _run, "withhold": ("speech",)})))
# A publish that breaks its contract: its result lacks the video (job_finished must not carry it).
ENGINES.append(
    engine("publish", "tiny_bad_result")(
        type("TinyBadResult", (Engine,), {"publish": _run, "result": lambda self, ctx: {"durationSec": 1.0}})
    )
)


def register(registry: EngineRegistry) -> None:
    """The plugin's entry point (WORKER_ENGINE_PLUGINS=tiny_engines)."""
    registry.add(*ENGINES)


TINY = {kind: "tiny" for kind in TASK_INTERFACES}
