"""The built-in generate_video engines on their own (no Redis, no worker): a TaskContext on a
local storage folder, real media in and out."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import ASTRONAUT_FACE, read_frames

from likeness_worker.contracts import STEP_TASK
from likeness_worker.engines import TaskContext, load_engines
from likeness_worker.graphs.bindings import BINDINGS, bind_inputs
from likeness_worker.media.faces import detect_faces
from likeness_worker.media.video import ken_burns
from likeness_worker.storage import LocalStorage

pytestmark = pytest.mark.usefixtures("tools")

W, H = 512, 640


def _context(tmp_path, storage, step, task_kind, engine, steps, pipeline="svd_wav2lip"):
    """A step's context, its inputs bound from ``steps`` (records by step) as the DAG binds them."""
    command = {
        "kind": "generate_video",
        "payload": {
            "width": W,
            "height": H,
            "profile": {"portraitKey": "uploads/u/p/portrait.png", "faceBox": ASTRONAUT_FACE},
        },
    }
    return TaskContext(
        job_id="job", attempt=1, step=step, task_kind=task_kind, engine=engine,
        work_dir=tmp_path / "work" / step, storage=storage, command=command,
        inputs=bind_inputs(step, STEP_TASK[step], BINDINGS[pipeline][step], steps),
    )


def _face_centres(mp4):
    """Centre and width of the detected face in the first and the last frame."""
    frames = read_frames(mp4)
    out = []
    for f in (frames[0], frames[-1]):
        face = detect_faces(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))[0]
        out.append((np.array([face.x + face.w / 2, face.y + face.h / 2]), face.w))
    return out


@pytest.mark.parametrize("step, kind", [("motion", "motion"), ("talking_head", "talking_head")])
def test_kenburns_zoom_stays_on_the_face(tmp_path, step, kind):
    from skimage import data

    registry = load_engines()
    storage = LocalStorage(tmp_path / "objects")
    portrait = tmp_path / "portrait.png"
    cv2.imwrite(str(portrait), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    storage.put_file("uploads/u/p/portrait.png", portrait)

    image = registry.resolve("image")[1]().render(_context(tmp_path, storage, "image", "image", "portrait", {}))
    assert image.outputs["faceBox"]["h"] > 0
    upstream = {
        "image": {"artifacts": image.artifacts, "outputs": image.outputs},
        # Nothing reads the speech or its timings here (kenburns, no burned subtitles): refs only.
        "tts": {"artifacts": [{"key": "jobs/job/tts/speech.wav", "kind": "speech"},
                              {"key": "jobs/job/tts/timings.json", "kind": "timings"}],
                "outputs": {"durationSec": 2.0}},
    }
    pipeline = "svd_wav2lip" if step == "motion" else "sadtalker"
    ctx = _context(tmp_path, storage, step, kind, "kenburns", upstream, pipeline)
    out = registry.resolve(kind, {kind: "kenburns"})[1]().animate(ctx)
    video = storage.get_file(out.outputs["videoKey"], tmp_path / ("engine" + out.outputs["videoKey"][-4:]))
    (c0, w0), (c1, w1) = _face_centres(video)

    # The same scene with the zoom headed for the frame centre (ken_burns without a focus).
    scene = storage.get_file(image.artifacts[0]["key"], tmp_path / "scene.png")
    ken_burns(scene, tmp_path / "centre.mp4", 2.0, W, H)
    (b0, _), (b1, _) = _face_centres(tmp_path / "centre.mp4")

    drift, drift_before = float(np.linalg.norm(c1 - c0)), float(np.linalg.norm(b1 - b0))
    # Measured by the detector (a pixel or two of noise): ~11 px before, ~2-3 px now.
    assert drift_before > 8, drift_before
    assert drift < 0.01 * W and drift < drift_before / 2.5, (drift, drift_before)
    assert 1.04 < w1 / w0 < 1.12  # and it is still a visible zoom in
    box = image.outputs["faceBox"]
    assert np.linalg.norm(c0 - (box["x"] + box["w"] / 2, box["y"] + box["h"] / 2)) < 0.03 * W  # the known box
