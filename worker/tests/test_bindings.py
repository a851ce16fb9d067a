"""Engines get declared inputs: the DAG binds each step's inputs (graphs/bindings.py) and an
engine never names a step. A new pipeline, with steps in another order and an extra step, runs
the built-in engines unchanged; a missing input is an error that names the input and the step."""

from __future__ import annotations

import json
import subprocess

import cv2
import pytest
from conftest import ASTRONAUT_FACE

from likeness_worker.contracts import STEP_TASK
from likeness_worker.engines import TASK_INTERFACES, TaskContext, load_engines
from likeness_worker.engines.ports import PORTS, TASK_PORTS, MissingInput
from likeness_worker.graphs.bindings import BINDINGS, PipelineError, bind_dag, bind_inputs
from likeness_worker.storage import LocalStorage

# The table the two video pipelines and train_profile get from their DAGs (docs/foundation.md).
VIDEO_IN = {"speech": ("tts",), "timings": ("tts",)}
EXPECTED = {
    "train_profile": {
        "prepare": {},
        "train_lora": {"dataset": ("prepare",), "dataset_config": ("prepare",)},
        "train_voice": {"voice_reference": ("prepare",)},
        "evaluate": {"dataset": ("prepare",), "voice_reference": ("prepare",), "lora": ("train_lora",),
                     "voice_profile": ("train_voice",), "voice_model": ("train_voice",)},
        "publish": {"portrait": ("prepare",), "dataset": ("prepare",), "voice_reference": ("prepare",),
                    "lora": ("train_lora",), "voice_profile": ("train_voice",), "voice_model": ("train_voice",)},
    },
    "svd_wav2lip": {
        "image": {}, "tts": {},
        "motion": {"scene": ("image",), "speech": ("tts",), "timings": ("tts",)},
        "lipsync": {"video": ("motion",), **VIDEO_IN},
        "upscale": {"video": ("lipsync", "motion")},
        "mux": {"video": ("upscale", "lipsync", "motion"), **VIDEO_IN},
        "publish": {"video": ("mux", "upscale", "lipsync", "motion")},
    },
    "sadtalker": {
        "image": {}, "tts": {},
        "talking_head": {"scene": ("image",), **VIDEO_IN},
        "upscale": {"video": ("talking_head",)},
        "mux": {"video": ("upscale", "talking_head"), **VIDEO_IN},
        "publish": {"video": ("mux", "upscale", "talking_head")},
    },
}


def test_the_binding_table_of_each_pipeline():
    assert BINDINGS == EXPECTED
    for kind in TASK_INTERFACES:  # every task kind names what it takes and makes
        ports = TASK_PORTS[kind]
        assert set(ports.takes) | set(ports.outputs) <= set(PORTS), kind


def _record(step, artifacts=(), **outputs):
    return {"step": step, "engine": "x", "artifacts": list(artifacts), "outputs": outputs}


def _art(step, kind, name):
    return {"key": f"jobs/j/{step}/{name}", "kind": kind, "contentType": "application/octet-stream", "bytes": 1}


def test_the_video_so_far_is_the_latest_not_skipped():
    steps = {
        "tts": _record("tts", [_art("tts", "speech", "speech.wav"), _art("tts", "timings", "timings.json")], durationSec=2.0),
        "motion": _record("motion", [_art("motion", "video_raw", "motion.mkv")], videoKey="jobs/j/motion/motion.mkv", width=64),
        # lipsync "none": no artifact, the motion's video passed through
        "lipsync": _record("lipsync", videoKey="jobs/j/motion/motion.mkv", lipSync=False),
        "upscale": _record("upscale", videoKey="jobs/j/motion/motion.mkv", skipped=True),
    }
    mux = bind_inputs("mux", "mux", BINDINGS["svd_wav2lip"]["mux"], steps)
    assert mux["video"] == {"step": "lipsync", "key": "jobs/j/motion/motion.mkv", "ref": None,
                            "outputs": {"videoKey": "jobs/j/motion/motion.mkv", "lipSync": False}}
    assert mux["speech"]["key"] == "jobs/j/tts/speech.wav" and mux["speech"]["outputs"] == {"durationSec": 2.0}
    assert mux["speech"]["ref"]["kind"] == "speech"
    # A video that is an artifact keeps its ref (content type, meta) beside the key.
    up = bind_inputs("upscale", "upscale", {"video": ("motion",)}, steps)
    assert up["video"]["ref"]["kind"] == "video_raw" and up["video"]["outputs"]["width"] == 64


def test_a_missing_input_names_the_input_and_the_step():
    steps = {"motion": _record("motion", videoKey="jobs/j/motion/motion.mkv")}
    with pytest.raises(MissingInput) as err:  # tts did not run
        bind_inputs("mux", "mux", BINDINGS["svd_wav2lip"]["mux"], steps)
    assert "step mux (mux) has no input 'speech'" in str(err.value) and "tts did not run" in str(err.value)
    assert err.value.code == "internal" and err.value.retryable is False
    steps["tts"] = _record("tts", [_art("tts", "timings", "timings.json")], durationSec=1.0)
    with pytest.raises(MissingInput, match="no input 'speech'.*tts made none"):
        bind_inputs("mux", "mux", BINDINGS["svd_wav2lip"]["mux"], steps)
    with pytest.raises(MissingInput, match="step upscale .* no input 'video'.*lipsync did not run; motion made none"):
        bind_inputs("upscale", "upscale", BINDINGS["svd_wav2lip"]["upscale"], {"motion": _record("motion")})
    # Optional inputs may be absent: publish of a profile takes no video.
    assert "video" not in bind_inputs("publish", "publish", BINDINGS["train_profile"]["publish"], {})

    # Inside an engine: an input this pipeline does not provide, and a name the task kind lacks.
    ctx = TaskContext(job_id="j", attempt=1, step="publish", task_kind="publish", engine="builtin",
                      work_dir=None, storage=None, command={"kind": "generate_video", "payload": {}})
    with pytest.raises(MissingInput, match=r"step publish \(publish\) has no input 'video'"):
        ctx.input("video")
    with pytest.raises(ValueError, match="task kind publish declares no input 'speech'"):
        ctx.input("speech")


def test_a_dag_that_cannot_feed_a_step_is_refused_when_it_is_built():
    with pytest.raises(PipelineError, match="pipeline short: step mux \\(mux\\) needs input 'video'"):
        bind_dag({"image": (), "tts": (), "mux": ("image", "tts")}, name="short")
    with pytest.raises(PipelineError, match="step talking_head \\(talking_head\\) needs input 'speech'"):
        bind_dag({"image": (), "tts": (), "talking_head": ("image",), "mux": ("talking_head", "tts")}, name="x")
    # Two videos on parallel branches: the rule cannot pick; the table must name them.
    forked = {"image": (), "tts": (), "motion": ("image", "tts"), "talking_head": ("image", "tts"),
              "mux": ("motion", "talking_head")}
    with pytest.raises(PipelineError, match="input 'video' could come from motion or talking_head"):
        bind_dag(forked, name="forked")
    table = bind_dag(forked, name="forked", explicit={"mux": {"video": ("talking_head",)}})
    assert table["mux"]["video"] == ("talking_head",)
    with pytest.raises(PipelineError, match="bound to image, which is not a step before it that makes 'video'"):
        bind_dag(forked, name="forked", explicit={"mux": {"video": ("image",)}})
    with pytest.raises(PipelineError, match="cycle"):
        bind_dag({"a": ("b",), "b": ("a",)}, step_task={"a": "upscale", "b": "upscale"})


# A pipeline no worker has: steps in another order (upscale before the lip sync) and an extra
# step (touch_up, a second upscale). Only the DAG and the step table change.
REORDERED = {
    "image": (),
    "tts": (),
    "motion": ("image", "tts"),
    "upscale": ("motion",),
    "lipsync": ("upscale",),
    "touch_up": ("lipsync",),
    "mux": ("touch_up",),
    "publish": ("mux",),
}
ENGINES = {"image": "portrait", "tts": "espeak", "motion": "kenburns", "upscale": "lanczos", "lipsync": "none",
           "mux": "ffmpeg", "publish": "builtin"}
W, H = 192, 240


def _run_pipeline(tmp_path, dag, step_task, command, storage):
    """What the graph does, in one process: each step in order, its inputs bound by the table."""
    registry = load_engines()
    table = bind_dag(dag, name="test", step_task=step_task)
    steps: dict[str, dict] = {}
    for step in _in_order(dag):
        kind = step_task[step]
        name, cls = registry.resolve(kind, ENGINES)
        ctx = TaskContext(job_id=command["jobId"], attempt=1, step=step, task_kind=kind, engine=name,
                          work_dir=tmp_path / "work" / step, storage=storage, command=command,
                          inputs=bind_inputs(step, kind, table[step], steps))
        ctx.work_dir.mkdir(parents=True)
        out = getattr(cls(), TASK_INTERFACES[kind][1])(ctx)
        steps[step] = {"step": step, "engine": name, "artifacts": out.artifacts, "outputs": out.outputs,
                       "inputs": {k: v["step"] for k, v in ctx.inputs.items()}}
    return steps


def _in_order(dag):
    done: list[str] = []
    while len(done) < len(dag):
        done += [s for s, deps in dag.items() if s not in done and all(d in done for d in deps)]
    return done


@pytest.mark.usefixtures("tools")
def test_a_new_pipeline_runs_the_builtin_engines_unchanged(tmp_path):
    from skimage import data

    storage = LocalStorage(tmp_path / "objects")
    portrait = tmp_path / "portrait.png"
    cv2.imwrite(str(portrait), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    storage.put_file("uploads/u/p/portrait.png", portrait)
    command = {"jobId": "job", "kind": "generate_video", "payload": {
        "width": W, "height": H, "subtitles": "soft", "pipeline": "reordered",
        "profile": {"portraitKey": "uploads/u/p/portrait.png", "faceBox": ASTRONAUT_FACE},
        "script": {"narration": "Hello there."}}}

    steps = _run_pipeline(tmp_path, REORDERED, {**STEP_TASK, "touch_up": "upscale"}, command, storage)

    bound = {s: r["inputs"] for s, r in steps.items()}
    assert bound["motion"] == {"scene": "image", "speech": "tts", "timings": "tts"}
    assert steps["upscale"]["outputs"]["skipped"] is True  # the frames are already W x H
    assert bound["lipsync"] == {"video": "motion", "speech": "tts", "timings": "tts"}  # past the skipped upscale
    assert bound["touch_up"] == {"video": "lipsync"}  # the passed-through video: size unknown, probed
    assert steps["touch_up"]["outputs"]["skipped"] is True
    assert bound["mux"] == {"video": "lipsync", "speech": "tts", "timings": "tts"}
    assert bound["publish"] == {"video": "mux"}

    # The motion's lossless frames reach mux through two skips and a pass-through: mux encodes.
    assert steps["lipsync"]["outputs"]["videoKey"] == steps["motion"]["outputs"]["videoKey"]
    mux = steps["mux"]["outputs"]
    assert mux["video"].startswith("encoded"), mux["video"]
    result = steps["publish"]["outputs"]["result"]
    assert result["videoKey"] == mux["videoKey"] == "jobs/job/mux/video.mp4" and result["subtitlesKey"]
    mp4 = storage.get_file(result["videoKey"], tmp_path / "out.mp4")
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", str(mp4)],
        check=True, capture_output=True, text=True).stdout)
    kinds = {s["codec_type"]: s for s in probe["streams"]}
    assert kinds["video"]["codec_name"] == "h264" and (kinds["video"]["width"], kinds["video"]["height"]) == (W, H)
    assert kinds["audio"]["codec_name"] == "aac" and kinds["subtitle"]["codec_name"] == "mov_text"
    speech = steps["tts"]["outputs"]["durationSec"]
    assert abs(float(kinds["video"]["duration"]) - speech) <= 1 / 25 + 1e-3

