"""The sadtalker talking_head engine against a stand-in SadTalker checkout (tests/fakes/SadTalker:
SadTalker's inference.py command line and run, its checkpoint layout, bars, output naming and
failures; real frames and a real MP4, no model). The engine runs through a TaskContext on a local
storage folder, as the runtime would run it; the checkout is copied per test, so that its
gfpgan/weights, checkpoints and ffmpeg's temporary files stay in the test's folder. The run and
its failures are tested both ways: inference.py in the resident host (sadtalker_host.py, the
default) and as a script once per step (SADTALKER_RESIDENT=false); the host's own tests are at
the end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf
from conftest import TESTS_DIR
from fakes.face_media import processes_mentioning

from likeness_worker.engines import TaskContext
from likeness_worker.engines.gpu.face_tools import Bars
from likeness_worker.engines.gpu.sadtalker import SadTalkerTalkingHead
from likeness_worker.engines.gpu.tooling import parse_tqdm
from likeness_worker.errors import StepFailure
from likeness_worker.storage import LocalStorage

FAKE = TESTS_DIR / "fakes" / "SadTalker"
W, H = 192, 160  # the scene: already at the output size
SECONDS, RATE = 2.0, 22050
LOUD = 0.24  # the speech alternates quiet and loud every LOUD seconds
SCENE_KEY = "jobs/job/image/scene.png"
SPEECH_KEY = "jobs/job/tts/speech.wav"
WEIGHTS = ("checkpoints/SadTalker_V0.0.2_256.safetensors", "checkpoints/mapping_00109-model.pth.tar",
           "checkpoints/mapping_00229-model.pth.tar", "gfpgan/weights/alignment_WFLW_4HG.pth",
           "gfpgan/weights/detection_Resnet50_Final.pth")
ENHANCER_WEIGHTS = ("gfpgan/weights/GFPGANv1.4.pth", "gfpgan/weights/parsing_parsenet.pth")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tools):
    for name in list(os.environ):
        if name.startswith(("SADTALKER_", "FAKE_SADTALKER_")):
            monkeypatch.delenv(name)
    SadTalkerTalkingHead.release()
    yield
    SadTalkerTalkingHead.release()  # no host outlives its test (its checkout is the test's)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> tuple[Path, Path]:
    """The scene (skimage's astronaut at the output size) and a speech of alternating loudness."""
    from skimage import data

    folder = tmp_path_factory.mktemp("media")
    scene = folder / "scene.png"
    cv2.imwrite(str(scene), cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (W, H)))
    t = np.arange(int(SECONDS * RATE)) / RATE
    level = np.where((t // LOUD) % 2 == 1, 0.8, 0.05)
    speech = folder / "speech.wav"
    sf.write(speech, (level * np.sin(2 * np.pi * 220 * t)).astype(np.float32), RATE, subtype="PCM_16")
    return scene, speech


@pytest.fixture
def checkout(tmp_path, monkeypatch) -> Path:
    """A copy of the stand-in checkout with the weight files SadTalker's download script puts there."""
    root = tmp_path / "SadTalker"
    shutil.copytree(FAKE, root, ignore=shutil.ignore_patterns("__pycache__"))
    for rel in WEIGHTS:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"weights")
    monkeypatch.setenv("SADTALKER_DIR", str(root))
    monkeypatch.setenv("SADTALKER_PYTHON", sys.executable)
    monkeypatch.setenv("FAKE_SADTALKER_PIDFILE", str(tmp_path / "sadtalker.pid"))
    monkeypatch.setenv("FAKE_SADTALKER_ARGV", str(tmp_path / "sadtalker.argv.json"))
    monkeypatch.setenv("SADTALKER_RESIDENT", "false")  # inference.py a process a step: ``either``, ``resident``
    monkeypatch.setenv("FAKE_SADTALKER_STEP_S", "0")  # the renderer's steps: no time of their own
    return root


@pytest.fixture(params=["resident", "per-step"])
def either(request, checkout, monkeypatch) -> str:
    """Both ways: the resident host, and inference.py as a script once per step."""
    monkeypatch.setenv("SADTALKER_RESIDENT", "true" if request.param == "resident" else "false")
    monkeypatch.setenv("FAKE_SADTALKER_CALLS", str(checkout.parent / "calls.txt"))
    return request.param


@pytest.fixture
def resident(checkout, monkeypatch) -> Path:
    """The checkout run by the resident host; FAKE_SADTALKER_CALLS: the fake's builds and extractions."""
    monkeypatch.setenv("SADTALKER_RESIDENT", "true")
    monkeypatch.setenv("FAKE_SADTALKER_CALLS", str(checkout.parent / "calls.txt"))
    return checkout


class Recorder:
    def __init__(self, cancel_on: str | None = None) -> None:
        self.progress: list[tuple[float, str | None]] = []
        self.cancel = threading.Event()
        self.cancel_on = cancel_on

    def __call__(self, fraction: float, message: str | None = None) -> None:
        self.progress.append((fraction, message))
        if self.cancel_on and message and self.cancel_on in message:
            self.cancel.set()


def _context(tmp_path: Path, rec: Recorder, media: tuple[Path, Path]) -> TaskContext:
    storage = LocalStorage(tmp_path / "objects")
    scene, speech = media
    storage.put_file(SCENE_KEY, scene, "image/png")
    storage.put_file(SPEECH_KEY, speech, "audio/wav")
    inputs = {
        "scene": {"step": "image", "key": SCENE_KEY, "ref": None, "outputs": {"faceBox": None}},
        "speech": {"step": "tts", "key": SPEECH_KEY, "ref": None, "outputs": {"durationSec": SECONDS}},
        "timings": {"step": "tts", "key": "jobs/job/tts/timings.json", "ref": None, "outputs": {}},
    }
    command = {"kind": "generate_video", "payload": {"width": W, "height": H, "subtitles": "burned"}}
    return TaskContext(job_id="job", attempt=1, step="talking_head", task_kind="talking_head", engine="sadtalker",
                       work_dir=tmp_path / "work", storage=storage, command=command, inputs=inputs,
                       _progress=rec, _cancelled=rec.cancel.is_set)


def _fails(tmp_path: Path, media, rec: Recorder | None = None) -> StepFailure:
    with pytest.raises(StepFailure) as info:
        SadTalkerTalkingHead().animate(_context(tmp_path, rec or Recorder(), media))
    return info.value


def _ffprobe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json",
                          str(path)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def _animate(tmp_path: Path, media, rec: Recorder | None = None):
    return SadTalkerTalkingHead().animate(_context(tmp_path, rec or Recorder(), media))


def _calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls.txt"
    return path.read_text().splitlines() if path.exists() else []


BUILDS = ["build CropAndExtract", "build Audio2Coeff", "build AnimateFromCoeff"]
EXTRACT = "generate face.png full 256 True"  # CropAndExtract.generate(face.png, …, 'full', True, 256)


def _host_pid() -> int:
    resident = SadTalkerTalkingHead.resident
    assert resident is not None and resident.host is not None
    return resident.host.proc.pid


def _host_gone(pid: int, timeout: float = 5.0) -> bool:
    """The process has ended (a zombie not yet reaped counts as ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.02)
    return False


def _gone(pid_file: Path) -> bool:
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# --- a run ---------------------------------------------------------------------------------------


def test_the_scene_speaks_at_its_own_size_for_as_long_as_the_speech(tmp_path, checkout, either, media):
    rec = Recorder()
    out = SadTalkerTalkingHead().animate(_context(tmp_path, rec, media))

    # SadTalker was run in its checkout with the defaults: the face pasted back on the whole scene.
    assert _calls(tmp_path) == [*BUILDS, EXTRACT]
    if either == "per-step":
        ran = json.loads((tmp_path / "sadtalker.argv.json").read_text())
        assert Path(ran["cwd"]) == checkout.resolve() and ran["argv"][0] == "inference.py"
        args = ran["argv"][1:]
        assert args[args.index("--preprocess") + 1] == "full" and "--still" in args and "--enhancer" not in args
        assert args[args.index("--size") + 1] == "256" and args[args.index("--batch_size") + 1] == "2"
        assert Path(args[args.index("--checkpoint_dir") + 1]) == checkout.resolve() / "checkpoints"
    else:  # the same main(args), in a host that built the models for these settings before it said ready
        assert rec.progress[0][1] == "SadTalker: starting its resident host"
        cmd = SadTalkerTalkingHead.resident.host.cmd  # type: ignore[union-attr]
        assert cmd[cmd.index("--checkpoint_dir") + 1] == str(checkout.resolve() / "checkpoints")
        assert cmd[-4:] == ["--size", "256", "--preprocess", "full"]

    [ref] = out.artifacts
    assert ref["kind"] == "video" and ref["key"] == "jobs/job/talking_head/talking_head.mp4"
    assert out.outputs["videoKey"] == ref["key"] and "note" not in out.outputs
    assert out.outputs["encode"] == "sadtalker output (re-encoded by mux)"  # not "final H.264": mux encodes
    assert out.outputs["subtitlesBurned"] is False and out.outputs["lipSync"] is True

    video = LocalStorage(tmp_path / "objects").get_file(ref["key"], tmp_path / "talking_head.mp4")
    probe = _ffprobe(video)
    v = next(s for s in probe["streams"] if s["codec_type"] == "video")
    a = next(s for s in probe["streams"] if s["codec_type"] == "audio")
    assert (v["width"], v["height"]) == (W, H)  # --preprocess full: the source image's size
    assert v["codec_name"] == "mpeg4" and v["avg_frame_rate"] == "25/1"  # OpenCV's MP4V writer, 25 fps
    assert int(v["nb_read_frames"]) == int(SECONDS * 25) == out.outputs["frames"]
    assert float(probe["format"]["duration"]) == pytest.approx(SECONDS, abs=0.05)
    assert a["codec_name"] == "aac"
    assert (out.outputs["width"], out.outputs["height"]) == (W, H)
    assert out.outputs["durationSec"] == pytest.approx(SECONDS, abs=0.05)

    # The mouth moves with the speech: the frames change where the face is, as loud as the audio is.
    cap = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame.astype(np.float32))
    change = [float(np.abs(f - frames[0])[H // 2:H * 3 // 4, W // 3:W * 2 // 3].mean()) for f in frames]
    loud = [((i / 25) // LOUD) % 2 == 1 for i in range(len(frames))]
    assert np.corrcoef(change, loud)[0, 1] > 0.8

    # Progress: every bar of the run, in order, never backwards.
    fractions = [f for f, _ in rec.progress]
    assert fractions == sorted(fractions) and all(0.0 <= f <= 1.0 for f in fractions) and fractions[-1] >= 0.95
    seen = [m.split(": ")[1].rsplit(" ", 1)[0] for _, m in rec.progress if m and m.count(" ") and "/" in m]
    order = ["landmark Det", "3DMM Extraction In Video", "mel", "audio2exp", "Face Renderer", "seamlessClone"]
    assert [b for b in dict.fromkeys(seen) if b in order] == order
    assert any(m == "SadTalker: Face Renderer 25/25" for _, m in rec.progress)  # 50 frames, 2 a batch

    # What it left: its stamped MP4 only (the run folder removed, no temporary file in the checkout).
    [left] = (tmp_path / "work" / "sadtalker" / "results").iterdir()
    assert left.suffix == ".mp4" and len(left.stem) == len("2024_01_31_12.00.00")
    assert not list(checkout.glob("*.mp4"))


def test_with_the_enhancer_the_frames_are_twice_the_scene(tmp_path, checkout, media, monkeypatch):
    for rel in ENHANCER_WEIGHTS:
        (checkout / rel).write_bytes(b"weights")
    monkeypatch.setenv("SADTALKER_ENHANCER", "gfpgan")
    rec = Recorder()
    out = SadTalkerTalkingHead().animate(_context(tmp_path, rec, media))
    args = json.loads((tmp_path / "sadtalker.argv.json").read_text())["argv"]
    assert args[args.index("--enhancer") + 1] == "gfpgan"
    assert (out.outputs["width"], out.outputs["height"]) == (2 * W, 2 * H)  # GFPGANer's upscale=2
    assert "upscale step" in out.outputs["note"]
    assert any(m and m.startswith("SadTalker: Face Enhancer") for _, m in rec.progress)


def test_the_stand_in_keeps_sadtalkers_layout_and_command_line(tmp_path, checkout, media):
    """The fake itself: SadTalker's argparse (an unknown flag or choice exits 2) and its files."""
    scene, speech = media
    bogus = subprocess.run([sys.executable, "inference.py", "--no_such_flag"], cwd=checkout,
                           capture_output=True, text=True)
    assert bogus.returncode == 2 and "unrecognized arguments: --no_such_flag" in bogus.stderr
    choice = subprocess.run([sys.executable, "inference.py", "--preprocess", "square"], cwd=checkout,
                            capture_output=True, text=True)
    assert choice.returncode == 2 and "invalid choice: 'square'" in choice.stderr

    for rel in ENHANCER_WEIGHTS:
        (checkout / rel).write_bytes(b"weights")
    results = tmp_path / "results"
    run = subprocess.run([sys.executable, "inference.py", "--driven_audio", str(speech), "--source_image", str(scene),
                          "--result_dir", str(results), "--preprocess", "full", "--still", "--enhancer", "gfpgan",
                          "--verbose"], cwd=checkout, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    [stamped] = results.glob("*.mp4")
    folder = results / stamped.stem
    assert sorted(p.name for p in folder.glob("*.mp4")) == [
        "scene##speech.mp4", "scene##speech_full.mp4"]  # _enhanced.mp4 was moved to <stamp>.mp4
    assert (folder / "scene##speech.mat").is_file() and (folder / "first_frame_dir" / "scene.png").is_file()
    assert f"The generated video is named: {stamped}" in run.stdout
    assert f"{folder}/scene##speech_enhanced.mp4" in run.stdout
    for bar in ("landmark Det:: 100%|", "mel:: 100%|", "Face Renderer:: 100%|", "seamlessClone:: 100%|",
                "Face Enhancer:: 100%|"):
        assert bar in run.stderr


# --- cancel and time limit --------------------------------------------------------------------------


def test_a_cancel_kills_sadtalker(tmp_path, checkout, media, monkeypatch):
    monkeypatch.setenv("FAKE_SADTALKER_FAIL", "hang")  # stuck in the Face Renderer
    monkeypatch.setenv("SADTALKER_TIMEOUT_S", "20")  # if the cancel were missed, not forever
    rec = Recorder(cancel_on="audio2exp")
    failure = _fails(tmp_path, media, rec)
    assert failure.code == "cancelled" and "sadtalker" in failure.message
    assert _gone(tmp_path / "sadtalker.pid")


def test_past_its_time_limit_sadtalker_is_killed(tmp_path, checkout, media, monkeypatch):
    monkeypatch.setenv("FAKE_SADTALKER_FAIL", "hang")
    monkeypatch.setenv("SADTALKER_TIMEOUT_S", "2")
    failure = _fails(tmp_path, media)
    assert failure.code == "timeout" and failure.retryable
    assert "SADTALKER_TIMEOUT_S (2 s)" in failure.message
    assert _gone(tmp_path / "sadtalker.pid")


def test_face_detection_waiting_for_memory_until_the_time_limit_is_out_of_memory(tmp_path, checkout, either, media,
                                                                                monkeypatch):
    monkeypatch.setenv("FAKE_SADTALKER_FAIL", "oomwait")
    monkeypatch.setenv("SADTALKER_TIMEOUT_S", "2.5")
    failure = _fails(tmp_path, media)
    assert failure.code == "out_of_memory" and failure.retryable
    assert "Warning: out of memory, sleep for 1s" in failure.message and "SADTALKER_TIMEOUT_S" in failure.message
    if either == "per-step":
        assert _gone(tmp_path / "sadtalker.pid")
    assert processes_mentioning(str(tmp_path)) == []  # the host too


# --- failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "code", "retryable", "says"), [
    ("noface", "bad_input", False, "found no face in the scene"),
    ("edge", "bad_input", False, "too near the scene's edge"),
    ("oom", "out_of_memory", True, "CUDA out of memory"),
    ("weights", "engine_unavailable", False, "mapping_00109-model.pth.tar"),
    ("download", "engine_unavailable", False, "alignment_WFLW_4HG.pth (SadTalker tried to download"),
    ("crash", "engine_failed", True, "an illegal memory access was encountered"),
])
def test_each_failure_of_sadtalker_ends_the_step_as_it_should(tmp_path, checkout, either, media, monkeypatch,
                                                              mode, code, retryable, says):
    monkeypatch.setenv("FAKE_SADTALKER_FAIL", mode)
    failure = _fails(tmp_path, media)
    assert (failure.code, failure.retryable) == (code, retryable)
    assert says in failure.message and "sadtalker" in failure.message
    if mode == "oom":
        assert "SADTALKER_BATCH_SIZE below 2" in failure.message
    if mode == "weights":
        assert "weights missing" in failure.message


def test_a_missing_weight_file_is_refused_before_sadtalker_runs(tmp_path, checkout, media, monkeypatch):
    assert SadTalkerTalkingHead.problem() is None
    monkeypatch.setenv("SADTALKER_SIZE", "512")  # its checkpoint is not there
    problem = SadTalkerTalkingHead.problem()
    assert problem is not None and "SadTalker_V0.0.2_512.safetensors" in problem
    failure = _fails(tmp_path, media)
    assert failure.code == "engine_unavailable" and not failure.retryable
    assert "SadTalker_V0.0.2_512.safetensors" in failure.message
    assert not (tmp_path / "sadtalker.pid").exists()  # never started

    monkeypatch.setenv("SADTALKER_SIZE", "256")
    monkeypatch.setenv("SADTALKER_ENHANCER", "RestoreFormer")
    problem = SadTalkerTalkingHead.problem()
    assert problem is not None and "RestoreFormer.pth" in problem and "parsing_parsenet.pth" in problem


def test_unconfigured_or_misconfigured_it_says_what_to_set(tmp_path, media, monkeypatch):
    assert SadTalkerTalkingHead.problem() == "SADTALKER_DIR is not set (the SadTalker checkout)"
    failure = _fails(tmp_path, media)
    assert failure.code == "engine_unavailable" and not failure.retryable and "SADTALKER_DIR" in failure.message

    monkeypatch.setenv("SADTALKER_DIR", str(tmp_path))
    problem = SadTalkerTalkingHead.problem()
    assert problem is not None and "inference.py is not in SADTALKER_DIR" in problem

    monkeypatch.setenv("SADTALKER_PREPROCESS", "square")
    problem = SadTalkerTalkingHead.problem()
    assert problem is not None and "SADTALKER_PREPROCESS" in problem
    failure = _fails(tmp_path, media)
    assert failure.code == "bad_input" and "SADTALKER_PREPROCESS" in failure.message


def test_progress_follows_the_bars_it_knows_and_never_goes_back():
    seen: list[tuple[float, str]] = []
    bars = Bars((("mel", 1), ("Face Renderer", 3)), by_name=True)
    for line in ("mel::   0%|          | 0/50 [00:00<?, ?it/s]",
                 "mel:: 100%|██████████| 50/50 [00:00<00:00, 33705.40it/s]",
                 "100%|██████████| 185M/185M [00:02<00:00, 80.0MB/s]",  # a download's bar: not a stage
                 "Face Renderer::  40%|████      | 10/25 [00:00<00:00, 92.10it/s]",
                 "mel:: 100%|██████████| 50/50 [00:00<00:00, 33705.40it/s]",  # again (a redraw): not back
                 "Face Renderer:: 100%|██████████| 25/25 [00:00<00:00, 92.58it/s]"):
        bar = parse_tqdm(line)
        moved = bars.update(bar) if bar is not None else None
        if moved is not None:
            seen.append(moved)
    assert [round(f, 3) for f, _ in seen] == [0.25, 0.55, 1.0]
    assert seen[-1][1] == "Face Renderer"


# --- the resident host ------------------------------------------------------------------------------


def _scene(tmp_path: Path, media, name: str, image: np.ndarray) -> tuple[Path, Path]:
    path = tmp_path / name
    cv2.imwrite(str(path), image)
    return path, media[1]


def _frames(path: Path) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame.astype(np.float32))
    return np.array(frames)


def test_the_host_builds_the_models_once_and_extracts_each_scene_once(tmp_path, resident, media):
    first, again = Recorder(), Recorder()
    one = _animate(tmp_path / "a", media, first)
    pid = _host_pid()
    two = _animate(tmp_path / "b", media, again)
    assert _host_pid() == pid
    assert _calls(tmp_path) == [*BUILDS, EXTRACT]  # the second step: no build, no crop or 3DMM extraction
    assert first.progress[0][1] == "SadTalker: starting its resident host"
    assert again.progress[0][1] == "SadTalker: ready (resident)"
    messages = [m or "" for _, m in again.progress]
    assert not any("landmark Det" in m or "3DMM" in m for m in messages)  # skipped: kept from the first step
    assert "SadTalker: Face Renderer 25/25" in messages
    fractions = [f for f, _ in again.progress]
    assert fractions == sorted(fractions) and fractions[-1] >= 0.95

    # the crop and coefficients kept make the same video
    videos = [LocalStorage(tmp_path / d / "objects").get_file(out.outputs["videoKey"], tmp_path / f"{d}.mp4")
              for d, out in (("a", one), ("b", two))]
    a, b = (_frames(v) for v in videos)
    assert a.shape == b.shape == (int(SECONDS * 25), H, W, 3) and np.abs(a - b).mean() < 1.0
    [left] = (tmp_path / "b" / "work" / "sadtalker" / "results").iterdir()  # main removed its folder
    assert left.suffix == ".mp4"

    # another scene: extracted, by the same models
    mirrored = _scene(tmp_path, media, "mirrored.png", cv2.flip(cv2.imread(str(media[0])), 1))
    _animate(tmp_path / "c", mirrored)
    assert _host_pid() == pid and _calls(tmp_path) == [*BUILDS, EXTRACT, EXTRACT]

    SadTalkerTalkingHead.release()  # another engine needs the card
    assert SadTalkerTalkingHead.resident is not None and SadTalkerTalkingHead.resident.host is None
    assert _host_gone(pid)  # (the next step starts a fresh one: the tests below)


def test_a_scene_without_a_face_is_not_kept_and_the_host_stays(tmp_path, resident, media):
    flat = _scene(tmp_path, media, "wall.png", np.full((H, W, 3), 128, np.uint8))
    failure = _fails(tmp_path / "a", flat)
    assert failure.code == "bad_input" and "found no face in the scene" in failure.message
    pid = _host_pid()  # the user's input: the host is fine
    _fails(tmp_path / "b", flat)  # not kept: looked for again
    _animate(tmp_path / "c", media)
    assert _host_pid() == pid and _calls(tmp_path) == [*BUILDS, EXTRACT, EXTRACT, EXTRACT]


def test_a_failure_in_the_host_stops_it_and_the_next_step_starts_a_fresh_one(tmp_path, resident, media, monkeypatch):
    for mode, code, says in (
        ("crash", "engine_failed", "sadtalker crashed (exit 1): RuntimeError: CUDA error: an illegal memory access"),
        ("oom", "out_of_memory", "CUDA out of memory. Tried to allocate"),
    ):
        monkeypatch.setenv("FAKE_SADTALKER_FAIL", mode)  # read by the fake as its host starts
        failure = _fails(tmp_path / mode, media)
        assert failure.code == code and says in failure.message and failure.retryable
        assert SadTalkerTalkingHead.resident is not None and SadTalkerTalkingHead.resident.host is None
        assert processes_mentioning(str(tmp_path)) == []
    monkeypatch.delenv("FAKE_SADTALKER_FAIL")
    assert _animate(tmp_path / "b", media).outputs["frames"] == int(SECONDS * 25)
    assert _calls(tmp_path).count("build CropAndExtract") == 3  # a fresh host each time


def test_cancel_and_the_time_limit_kill_the_host_and_the_next_step_starts_a_fresh_one(tmp_path, resident, media,
                                                                                     monkeypatch):
    monkeypatch.setenv("FAKE_SADTALKER_FAIL", "hang")  # stuck in the Face Renderer
    monkeypatch.setenv("SADTALKER_TIMEOUT_S", "20")
    failure = _fails(tmp_path / "a", media, Recorder(cancel_on="audio2exp"))
    assert failure.code == "cancelled" and "the SadTalker host was stopped" in failure.message
    assert processes_mentioning(str(tmp_path)) == []

    monkeypatch.setenv("SADTALKER_TIMEOUT_S", "2")  # a fresh host: the hang again
    t0 = time.monotonic()
    failure = _fails(tmp_path / "b", media)
    assert failure.code == "timeout" and "SADTALKER_TIMEOUT_S (2 s)" in failure.message and time.monotonic() - t0 < 6
    assert processes_mentioning(str(tmp_path)) == []

    monkeypatch.delenv("FAKE_SADTALKER_FAIL")
    monkeypatch.setenv("SADTALKER_TIMEOUT_S", "60")
    assert _animate(tmp_path / "c", media).outputs["frames"] == int(SECONDS * 25)
    assert _calls(tmp_path).count("build CropAndExtract") == 3  # a fresh host each time


def test_the_host_runs_inference_main_and_keeps_stdout_for_json_lines(tmp_path, resident, media):
    scene, speech = media
    shutil.copy(scene, tmp_path / "other.png")  # the same scene under another name
    base = ["--driven_audio", str(speech), "--checkpoint_dir", str(resident / "checkpoints"), "--preprocess", "full",
            "--still", "--verbose"]
    requests = [{"id": "a", "cwd": str(resident), "argv": [*base, "--source_image", str(scene), "--result_dir",
                                                           str(tmp_path / "r1")]},
                {"id": "b", "cwd": str(resident), "argv": [*base, "--source_image", str(tmp_path / "other.png"),
                                                           "--result_dir", str(tmp_path / "r2")]},
                {"id": "c", "cwd": str(resident), "argv": [*base, "--quality", "hd"]}]
    host = SadTalkerTalkingHead.host_script
    assert host is not None
    proc = subprocess.Popen([sys.executable, str(host), "--checkpoint_dir", str(resident / "checkpoints"),
                             "--size", "256", "--preprocess", "full"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=resident, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    out, err = proc.communicate("".join(json.dumps(r) + "\n" for r in requests), timeout=60)
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]  # every line is JSON: SadTalker's prints went to stderr
    assert [m["event"] for m in lines] == ["ready", "done", "done", "error"]
    assert lines[0]["device"] == "cuda" and lines[1]["faceCached"] is False and lines[2]["faceCached"] is True
    assert lines[3]["type"] == "SystemExit"  # inference.py's own argparse refuses the unknown flag
    assert "usage: inference.py" in err and "error: unrecognized arguments: --quality hd" in err
    assert "3DMM Extraction (cached)" in err and "\x1elikeness-end b" in err
    assert _calls(tmp_path) == [*BUILDS, "generate scene.png full 256 True"]

    # each run's first_frame_dir has the crop and the coefficients, under its own source's name
    [first] = (d for d in (tmp_path / "r1").iterdir() if d.is_dir())
    [second] = (d for d in (tmp_path / "r2").iterdir() if d.is_dir())
    assert sorted(p.name for p in (first / "first_frame_dir").iterdir()) == [
        "scene.mat", "scene.png", "scene_landmarks.txt"]
    assert sorted(p.name for p in (second / "first_frame_dir").iterdir()) == [
        "other.mat", "other.png", "other_landmarks.txt"]
    assert (second / "other##speech.mat").is_file() and list((tmp_path / "r2").glob("*.mp4"))
    # its crops went with it (sadtalker_host.CACHE_PREFIX: the host is a script, not imported here)
    assert not [p for p in Path(tempfile.gettempdir()).glob(f"likeness-sadtalker-host-{proc.pid}-*")]
