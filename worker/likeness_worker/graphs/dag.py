"""The task DAG of each workflow: step -> the steps it waits for (docs/foundation.md,
"Step order on the worker"). ``script`` runs in the api, so it is not here.

Each step's declared inputs are bound to the steps before it by graphs/bindings.py, derived from
these edges: a new step or pipeline is added here (and to the contracts' step tables), and the
engines run unchanged."""

from __future__ import annotations

DAGS: dict[str, dict[str, tuple[str, ...]]] = {
    "train_profile": {
        "prepare": (),
        "train_lora": ("prepare",),
        "train_voice": ("prepare",),
        "evaluate": ("train_lora", "train_voice"),
        "publish": ("evaluate",),
    },
    # motion needs the speech duration, so on the CPU it follows tts as well as image.
    "svd_wav2lip": {
        "image": (),
        "tts": (),
        "motion": ("image", "tts"),
        "lipsync": ("motion",),
        "upscale": ("lipsync",),
        "mux": ("upscale",),
        "publish": ("mux",),
    },
    "sadtalker": {
        "image": (),
        "tts": (),
        "talking_head": ("image", "tts"),
        "upscale": ("talking_head",),
        "mux": ("upscale",),
        "publish": ("mux",),
    },
}


def dag_name(command: dict) -> str:
    return "train_profile" if command["kind"] == "train_profile" else command["payload"]["pipeline"]
