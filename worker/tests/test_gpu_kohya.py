"""The kohya lora_trainer engine against a checkout-shaped fake of kohya-ss/sd-scripts
(tests/fakes/sd-scripts: train_network.py, sdxl_train_network.py, networks/lora.py, library/ with the
real parser's flags, state folder names, "steps" bar, errors), which trains a toy numpy LoRA for
real and writes real .safetensors files. The engine runs through a TaskContext on a local storage
folder as the runtime would run it; a retried attempt gets a fresh work folder, as on another machine."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import conftest
import cv2
import numpy as np
import pytest

from likeness_worker.engines import TaskContext
from likeness_worker.engines.gpu import kohya
from likeness_worker.engines.gpu.kohya import KohyaLoraTrainer
from likeness_worker.engines.ports import TASK_PORTS, Input, TaskPorts
from likeness_worker.errors import StepFailure
from likeness_worker.storage import LocalStorage

FAKE = Path(__file__).resolve().parent / "fakes" / "sd-scripts"
TRIGGER = "lkperson"
STEPS = 30
DATASET_KEY = "jobs/job/prepare/dataset.tar"
CONFIG_KEY = "jobs/job/prepare/dataset.toml"
STATE_PREFIX = "jobs/job/train_lora/state/"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("KOHYA_", "FAKE_KOHYA_")):
            monkeypatch.delenv(name)
    monkeypatch.setattr(kohya, "STATE_POLL_S", 0.05)


@pytest.fixture
def base_model(tmp_path) -> Path:
    """A small but real .safetensors checkpoint (the fake reads its header and its first bytes)."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                         "__metadata__": {"modelspec.architecture": "stable-diffusion-v1"}}).encode()
    header += b" " * (-len(header) % 8)
    path = tmp_path / "models" / "sd15.safetensors"
    path.parent.mkdir()
    path.write_bytes(struct.pack("<Q", len(header)) + header + np.arange(4, dtype="<f4").tobytes())
    return path


@pytest.fixture
def fake(tmp_path, monkeypatch, base_model) -> Path:
    """KOHYA_* pointing at the fake checkout, run with this Python (KOHYA_LAUNCH=python)."""
    env = {"KOHYA_DIR": str(FAKE), "KOHYA_PYTHON": sys.executable, "KOHYA_LAUNCH": "python",
           "KOHYA_BASE_MODEL": str(base_model), "KOHYA_STEPS": str(STEPS), "KOHYA_NETWORK_DIM": "4",
           "KOHYA_NETWORK_ALPHA": "4", "KOHYA_LEARNING_RATE": "0.01", "KOHYA_SAVE_EVERY_N_STEPS": "10",
           "FAKE_KOHYA_PID_FILE": str(tmp_path / "fake.pid"), "FAKE_KOHYA_ARGV_FILE": str(tmp_path / "argv.jsonl")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return tmp_path


@pytest.fixture
def with_config_port(monkeypatch):
    """lora_trainer declaring prepare's dataset.toml as an optional input (the change asked of ports.py)."""
    monkeypatch.setitem(TASK_PORTS, "lora_trainer",
                        TaskPorts(inputs=("dataset",), optional=("dataset_config",), outputs=("lora",)))


class Recorder(conftest.Recorder):  # with the step lines of kohya's bar
    def steps(self) -> list[tuple[float, str]]:
        return [(f, m) for f, m in self.progress if m and m.startswith("kohya: step ")]


def _dataset(tmp_path: Path, storage: LocalStorage, images: int = 3, config: str | None = None) -> dict:
    """What prepare uploads: dataset.tar (dataset/img/<repeats>_<trigger>/NNN.png + NNN.txt) and
    dataset.toml (media/faces.py's, image_dir relative to its own folder); the input records."""
    src = tmp_path / "prepared"
    sub = src / "dataset" / "img" / f"10_{TRIGGER}"
    sub.mkdir(parents=True)
    for i in range(images):
        rgb = np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8)
        cv2.imwrite(str(sub / f"{i + 1:03d}.png"), rgb)
        (sub / f"{i + 1:03d}.txt").write_text(f"{TRIGGER}, a photo of a person\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(src / "dataset", arcname="dataset")
    storage.put_bytes(DATASET_KEY, buf.getvalue(), "application/x-tar")
    toml = config if config is not None else (
        "# kohya sd-scripts dataset config (--dataset_config), DreamBooth style with captions\n"
        "[general]\nshuffle_caption = false\ncaption_extension = \".txt\"\nkeep_tokens = 1\n\n"
        "[[datasets]]\nresolution = 512\nbatch_size = 1\nenable_bucket = false\n\n"
        f"  [[datasets.subsets]]\n  image_dir = \"dataset/img/10_{TRIGGER}\"\n  num_repeats = 10\n"
        f"  class_tokens = \"{TRIGGER}\"\n")
    storage.put_bytes(CONFIG_KEY, toml.encode(), "application/toml")
    outputs = {"acceptedImages": images, "rejectedImages": []}
    return {"dataset": Input("dataset", DATASET_KEY, {"key": DATASET_KEY, "kind": "dataset"}, outputs, "prepare").to_record(),
            "dataset_config": Input("dataset_config", CONFIG_KEY, {"key": CONFIG_KEY, "kind": "dataset_config"}, outputs,
                                    "prepare").to_record()}


def _context(tmp_path: Path, rec: Recorder, inputs: dict, *, attempt: int = 1) -> TaskContext:
    command = {"kind": "train_profile", "payload": {"profileId": "00000000-0000-4000-8000-000000000000",
                                                    "triggerWord": TRIGGER, "images": [], "voiceSample": {}}}
    declared = TASK_PORTS["lora_trainer"].takes
    return TaskContext(job_id="job", attempt=attempt, step="train_lora", task_kind="lora_trainer", engine="kohya",
                       work_dir=tmp_path / f"work-{attempt}", storage=LocalStorage(tmp_path / "objects"), command=command,
                       inputs={k: v for k, v in inputs.items() if k in declared}, _progress=rec, _cancelled=rec.cancel.is_set)


def _setup(tmp_path: Path, **kw) -> tuple[LocalStorage, dict]:
    storage = LocalStorage(tmp_path / "objects")
    return storage, _dataset(tmp_path, storage, **kw)


def _fails(tmp_path: Path, inputs: dict, rec: Recorder | None = None, attempt: int = 1) -> StepFailure:
    with pytest.raises(StepFailure) as info:
        KohyaLoraTrainer().train(_context(tmp_path, rec or Recorder(), inputs, attempt=attempt))
    return info.value


def _read_safetensors(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    tensors = {}
    for name, info in header.items():
        if name != "__metadata__":
            start, end = info["data_offsets"]
            tensors[name] = np.frombuffer(data[8 + n + start:8 + n + end], dtype="<f4").reshape(info["shape"])
    return header, tensors


def _argv(tmp_path: Path) -> list[list[str]]:
    return [json.loads(line) for line in (tmp_path / "argv.jsonl").read_text().splitlines()]


def _gone(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return True
    return fields[0] in ("Z", "X")


def _states(storage: LocalStorage) -> list[str]:
    return list(storage.list(STATE_PREFIX))


# --- a training --------------------------------------------------------------------------------


def test_a_training_makes_a_lora_that_parses_as_safetensors(fake, with_config_port):
    storage, inputs = _setup(fake)
    rec = Recorder()
    out = KohyaLoraTrainer().train(_context(fake, rec, inputs))

    lora_ref, report_ref = out.artifacts
    assert lora_ref["kind"] == "lora" and lora_ref["key"] == "jobs/job/train_lora/lora.safetensors"
    assert report_ref["kind"] == "lora_report"  # the `lora` port evaluate and publish read
    header, tensors = _read_safetensors(storage.get_file(lora_ref["key"], fake / "lora.safetensors"))
    meta = header["__metadata__"]
    assert meta["ss_network_module"] == "networks.lora" and meta["ss_network_dim"] == "4" and meta["ss_steps"] == str(STEPS)
    assert meta["ss_base_model_version"] == "sd_v1"
    name = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    assert tensors[f"{name}.lora_down.weight"].shape == (4, 320) and tensors[f"{name}.lora_up.weight"].shape == (320, 4)
    assert np.abs(tensors[f"{name}.lora_up.weight"]).max() > 0  # trained: lora_up starts at zero
    assert any(k.startswith("lora_te_") for k in tensors)
    assert lora_ref["bytes"] == len(storage.get_bytes(lora_ref["key"]))

    assert out.outputs["trained"] is True and out.outputs["loraKey"] == lora_ref["key"]
    assert out.outputs["steps"] == STEPS and out.outputs["resumedFromStep"] is None
    assert out.outputs["triggerWord"] == TRIGGER and lora_ref["meta"]["triggerWord"] == TRIGGER
    assert lora_ref["meta"]["baseModel"] == "sd15" and lora_ref["meta"]["networkAlpha"] == 4.0
    assert lora_ref["meta"]["baseModelFile"] == "sd15.safetensors"
    assert json.loads(storage.get_bytes(report_ref["key"]))["loraKey"] == lora_ref["key"]

    # Progress: each step of the "steps" bar (not the latent-caching bar), never backwards, with avr_loss.
    steps = rec.steps()
    assert [m.split(",")[0] for _, m in steps][-1] == f"kohya: step {STEPS}/{STEPS}"
    assert {int(m.split()[2].split("/")[0].rstrip(",")) for _, m in steps} == set(range(0, STEPS + 1))
    every = [f for f, _ in rec.progress]
    assert every == sorted(every) and every[-1] == 1.0
    losses = [float(m.rsplit("avr_loss ", 1)[1]) for _, m in steps if "avr_loss" in m]
    assert len(losses) >= STEPS - 1 and out.outputs["avrLoss"] == pytest.approx(losses[-1], rel=1e-3)
    assert losses[-1] < 0.8 * max(losses[:8])  # a real loss that falls as it trains
    assert any(m == "kohya: caching latents" for _, m in rec.progress)

    # What kohya was told: the config with absolute image dirs, one epoch, a state every 10 steps.
    [argv] = _argv(fake)
    assert argv[0].endswith("train_network.py")
    flags = dict(zip(argv[1::2], argv[2::2], strict=False))
    assert "--resume" not in argv and "--save_state" in argv and flags["--save_every_n_steps"] == "10"
    toml = Path(argv[argv.index("--dataset_config") + 1]).read_text()
    assert f'image_dir = "{fake / "work-1"}' in toml and "num_repeats = 10" in toml  # 3 images x 10 = 30 = all steps
    assert _states(storage) == []  # the states went once the LoRA was up


def test_without_its_config_the_dataset_is_read_from_the_tar_and_sdxl_runs_under_accelerate(fake, monkeypatch):
    """No dataset_config port: the config is made from dataset/img/<repeats>_<trigger>; SDXL's script,
    launched by `accelerate launch` found beside KOHYA_PYTHON (its venv's bin/)."""
    bin_dir = fake / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, body in (("python", f'exec "{sys.executable}" "$@"\n'),
                       ("accelerate", f'exec "{sys.executable}" -m accelerate.commands.launch "$@"\n')):
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("KOHYA_PYTHON", str(bin_dir / "python"))
    monkeypatch.delenv("KOHYA_LAUNCH")
    monkeypatch.setenv("KOHYA_MODEL_FAMILY", "sdxl")
    monkeypatch.setenv("KOHYA_STEPS", "40")
    storage, inputs = _setup(fake, images=2)
    out = KohyaLoraTrainer().train(_context(fake, Recorder(), inputs))

    header, tensors = _read_safetensors(storage.get_file(out.outputs["loraKey"], fake / "lora.safetensors"))
    assert header["__metadata__"]["ss_base_model_version"] == "sdxl_base_v1-0"
    assert any(k.startswith("lora_te1_") for k in tensors) and any(k.startswith("lora_te2_") for k in tensors)
    assert out.outputs["steps"] == 40 and out.artifacts[0]["meta"]["baseModelLicence"] == "CreativeML-OpenRAIL++-M"
    [argv] = _argv(fake)
    assert argv[0].endswith("sdxl_train_network.py")
    toml = Path(argv[argv.index("--dataset_config") + 1]).read_text()
    assert "num_repeats = 20" in toml and 'caption_extension = ".txt"' in toml  # 2 x 10 x 2 = 40 steps in one epoch
    assert out.artifacts[0]["meta"]["repeatsFactor"] == 2


# --- resuming ------------------------------------------------------------------------------------


def test_a_crashed_training_resumes_from_its_saved_state_on_another_machine(fake, monkeypatch):
    storage, inputs = _setup(fake)
    monkeypatch.setenv("FAKE_KOHYA_FAIL", "crash")
    monkeypatch.setenv("FAKE_KOHYA_FAIL_AT_STEP", "25")
    failure = _fails(fake, inputs)
    assert failure.code == "engine_failed" and failure.retryable
    assert "illegal memory access" in failure.message and "state of step 20 is kept" in failure.message
    assert _states(storage) == [STATE_PREFIX + "lora-step00000020-state.tar", STATE_PREFIX + "state.json"]
    with tarfile.open(storage.get_file(STATE_PREFIX + "lora-step00000020-state.tar", fake / "s.tar")) as tar:
        names = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
        assert json.load(tar.extractfile("lora-step00000020-state/train_state.json"))["current_step"] == 20
    assert names == {"train_state.json", "model.safetensors", "optimizer.bin", "scheduler.bin", "random_states_0.pkl"}

    # Attempt 2: a fresh work folder (another machine), the same job and storage.
    monkeypatch.delenv("FAKE_KOHYA_FAIL")
    rec = Recorder()
    out = KohyaLoraTrainer().train(_context(fake, rec, inputs, attempt=2))
    assert out.outputs["resumedFromStep"] == 20 and out.outputs["steps"] == STEPS
    header, _ = _read_safetensors(storage.get_file(out.outputs["loraKey"], fake / "lora.safetensors"))
    assert header["__metadata__"]["ss_steps"] == str(STEPS)
    first, second = _argv(fake)
    assert "--resume" not in first
    resume_dir = second[second.index("--resume") + 1]
    assert resume_dir.startswith(str(fake / "work-2")) and resume_dir.endswith("lora-step00000020-state")
    assert "--skip_until_initial_step" in second
    steps = rec.steps()
    assert steps[0][1].startswith("kohya: step 20/30") and steps[-1][1].startswith("kohya: step 30/30")
    assert steps[0][0] > 0.6  # progress picks up where the first attempt stopped
    assert any("resuming from the state saved at step 20" in (m or "") for _, m in rec.progress)
    assert _states(storage) == []


def test_a_cancelled_training_is_killed_and_the_next_attempt_resumes(fake, monkeypatch):
    storage, inputs = _setup(fake)
    monkeypatch.setenv("FAKE_KOHYA_FAIL", "hang")
    monkeypatch.setenv("FAKE_KOHYA_FAIL_AT_STEP", "25")
    rec = Recorder(cancel_on="step 24/30")
    failure = _fails(fake, inputs, rec)
    assert failure.code == "cancelled" and "step 24/30" in failure.message and "state of step 20" in failure.message
    assert _gone(int((fake / "fake.pid").read_text()))
    assert storage.get_json(STATE_PREFIX + "state.json")["step"] == 20

    monkeypatch.delenv("FAKE_KOHYA_FAIL")
    out = KohyaLoraTrainer().train(_context(fake, Recorder(), inputs, attempt=2))
    assert out.outputs["resumedFromStep"] == 20 and out.outputs["steps"] == STEPS


def test_the_time_limit_kills_it_and_a_state_still_being_written_is_not_kept(fake, monkeypatch):
    """It hangs half-way through writing the state of step 20: only the complete one of step 10 is up."""
    storage, inputs = _setup(fake)
    monkeypatch.setenv("FAKE_KOHYA_FAIL", "hang_in_save")
    monkeypatch.setenv("FAKE_KOHYA_FAIL_AT_STEP", "20")
    monkeypatch.setenv("KOHYA_TIMEOUT_S", "4")
    failure = _fails(fake, inputs)
    assert failure.code == "timeout" and failure.retryable
    assert "KOHYA_TIMEOUT_S (4 s)" in failure.message and "state of step 10 is kept" in failure.message
    assert _gone(int((fake / "fake.pid").read_text()))
    assert _states(storage) == [STATE_PREFIX + "lora-step00000010-state.tar", STATE_PREFIX + "state.json"]
    half = fake / "work-1" / "kohya" / "output" / "lora-step00000020-state"
    assert (half / "model.safetensors").is_file() and not (half / "random_states_0.pkl").exists()


def test_a_state_made_with_other_settings_is_not_resumed(fake, monkeypatch):
    storage, inputs = _setup(fake)
    monkeypatch.setenv("FAKE_KOHYA_FAIL", "crash")
    monkeypatch.setenv("FAKE_KOHYA_FAIL_AT_STEP", "15")
    _fails(fake, inputs)
    assert storage.get_json(STATE_PREFIX + "state.json")["step"] == 10
    monkeypatch.delenv("FAKE_KOHYA_FAIL")
    monkeypatch.setenv("KOHYA_NETWORK_DIM", "8")  # the saved weights would not even load
    out = KohyaLoraTrainer().train(_context(fake, Recorder(), inputs, attempt=2))
    assert out.outputs["resumedFromStep"] is None and "other settings" in out.outputs["resumeNote"]
    assert "--resume" not in _argv(fake)[1] and _states(storage) == []


# --- failures ------------------------------------------------------------------------------------


def test_out_of_memory(fake, monkeypatch):
    _, inputs = _setup(fake)
    monkeypatch.setenv("FAKE_KOHYA_FAIL", "oom")
    failure = _fails(fake, inputs)
    assert failure.code == "out_of_memory" and failure.retryable
    assert "CUDA out of memory. Tried to allocate 20.00 MiB" in failure.message and "KOHYA_NETWORK_DIM" in failure.message


def test_the_base_model_that_diffusers_cannot_find_is_weights_missing(fake, monkeypatch):
    _, inputs = _setup(fake)
    monkeypatch.setenv("FAKE_KOHYA_FAIL", "weights")
    failure = _fails(fake, inputs)
    assert failure.code == "engine_unavailable" and not failure.retryable
    assert "KOHYA_BASE_MODEL" in failure.message and "neither a valid local path nor a valid repo id" in failure.message


def test_a_base_model_that_is_not_there_fails_before_kohya_runs(fake, monkeypatch):
    _, inputs = _setup(fake)
    monkeypatch.setenv("KOHYA_BASE_MODEL", str(fake / "models" / "nope.safetensors"))
    failure = _fails(fake, inputs)
    assert failure.code == "engine_unavailable" and not failure.retryable and "weights missing" in failure.message
    assert not (fake / "argv.jsonl").exists()
    assert "weights missing: KOHYA_BASE_MODEL" in (KohyaLoraTrainer.problem() or "")


def test_an_unreadable_base_model(fake, base_model):
    _, inputs = _setup(fake)
    base_model.write_bytes(b"\xff" * 64)  # a header length no file has: safetensors' HeaderTooLarge
    failure = _fails(fake, inputs)
    assert failure.code == "engine_unavailable" and "not a readable checkpoint" in failure.message
    assert "HeaderTooLarge" in failure.message


def test_a_dataset_config_kohya_refuses_is_bad_input(fake, with_config_port):
    config = ("[general]\ncaption_extension = \".txt\"\n[[datasets]]\nresolution = 512\n"
              f"  [[datasets.subsets]]\n  image_dir = \"dataset/img/10_{TRIGGER}\"\n  num_repeat = 10\n")
    _, inputs = _setup(fake, config=config)
    failure = _fails(fake, inputs)
    assert failure.code == "bad_input" and not failure.retryable
    assert "extra keys not allowed @ data['datasets'][0]['subsets'][0]['num_repeat']" in failure.message


def test_no_data_found_is_bad_input(fake, monkeypatch):
    """sd-scripts finds no image, logs "No data found" and returns (exit 0, no LoRA)."""
    _, inputs = _setup(fake)
    monkeypatch.setenv("FAKE_KOHYA_FAIL", "dataset")
    failure = _fails(fake, inputs)
    assert failure.code == "bad_input" and "No data found" in failure.message


def test_a_dataset_without_images_fails_before_kohya_runs(fake, with_config_port):
    storage, inputs = _setup(fake)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(f"dataset/img/10_{TRIGGER}")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    storage.put_bytes(DATASET_KEY, buf.getvalue())
    failure = _fails(fake, inputs)
    assert failure.code == "bad_input" and "no images" in failure.message
    assert not (fake / "argv.jsonl").exists()


def test_an_image_dir_outside_the_dataset_is_bad_input(fake, with_config_port):
    _, inputs = _setup(fake, config="[[datasets]]\n  [[datasets.subsets]]\n  image_dir = \"/etc\"\n")
    failure = _fails(fake, inputs)
    assert failure.code == "bad_input" and "is not a folder of dataset.tar" in failure.message


def test_its_environment_broken(fake, monkeypatch):
    _, inputs = _setup(fake)
    monkeypatch.setenv("FAKE_KOHYA_FAIL", "env")
    failure = _fails(fake, inputs)
    assert failure.code == "engine_unavailable" and not failure.retryable and "No module named 'torch'" in failure.message


def test_a_flag_this_sd_scripts_does_not_know(fake, monkeypatch):
    _, inputs = _setup(fake)
    monkeypatch.setenv("KOHYA_EXTRA_ARGS", "--gradient_checkpointing --no_such_flag 1")
    failure = _fails(fake, inputs)
    assert failure.code == "engine_unavailable" and not failure.retryable
    assert "unrecognized arguments: --no_such_flag 1" in failure.message and "KOHYA_EXTRA_ARGS" in failure.message


def test_extra_args_may_not_name_the_engines_own_flags(fake, monkeypatch):
    _, inputs = _setup(fake)
    monkeypatch.setenv("KOHYA_EXTRA_ARGS", "--sdpa --resu /tmp/x")  # argparse would take --resu for --resume
    assert "--resu: set by the kohya engine itself" in (KohyaLoraTrainer.problem() or "")
    failure = _fails(fake, inputs)
    assert failure.code == "bad_input" and "KOHYA_EXTRA_ARGS" in failure.message


# --- health and the fake's contract --------------------------------------------------------------


def test_problem_names_what_is_missing(fake, monkeypatch, tmp_path):
    assert KohyaLoraTrainer.problem() is None
    monkeypatch.setenv("KOHYA_LAUNCH", "accelerate launch --num_cpu_threads_per_process 1")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("KOHYA_PYTHON", sys.executable)  # a venv without accelerate, none on PATH
    assert "KOHYA_LAUNCH runs accelerate" in (KohyaLoraTrainer.problem() or "")
    monkeypatch.setenv("KOHYA_LAUNCH", "python")
    monkeypatch.setenv("KOHYA_PYTHON", "no-such-python")
    assert "KOHYA_PYTHON (no-such-python) is not an executable" in (KohyaLoraTrainer.problem() or "")
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    monkeypatch.setenv("KOHYA_PYTHON", sys.executable)
    monkeypatch.setenv("KOHYA_DIR", str(checkout))
    assert "train_network.py is not in KOHYA_DIR" in (KohyaLoraTrainer.problem() or "")
    monkeypatch.setenv("KOHYA_DIR", str(tmp_path / "nowhere"))
    assert "is not a folder" in (KohyaLoraTrainer.problem() or "")
    monkeypatch.delenv("KOHYA_DIR")
    assert KohyaLoraTrainer.problem() == "not configured: KOHYA_DIR is not set (a kohya-ss/sd-scripts checkout)"
    _, inputs = _setup(fake)
    failure = _fails(fake, inputs)
    assert failure.code == "engine_unavailable" and not failure.retryable and "KOHYA_DIR" in failure.message


def test_the_fake_speaks_sd_scripts_command_line(tmp_path):
    """The same parser as the real train_network.py: its flags parse, an unknown one exits 2."""
    ok = subprocess.run([sys.executable, "-c", "import sys; sys.argv=['train_network.py', '--network_dim', '8', "
                         "'--lr_warmup_steps', '0.1', '--gradient_checkpointing', '--sdpa']; import train_network; "
                         "a = train_network.setup_parser().parse_args(); print(a.network_dim, a.lr_warmup_steps, a.sdpa)"],
                        cwd=FAKE, capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.split() == ["8", "0.1", "True"]
    bad = subprocess.run([sys.executable, "train_network.py", "--no_such_flag"], cwd=FAKE, capture_output=True, text=True)
    assert bad.returncode == 2 and "train_network.py: error: unrecognized arguments: --no_such_flag" in bad.stderr
    sdxl = subprocess.run([sys.executable, "sdxl_train_network.py", "--cache_text_encoder_outputs", "--no_such_flag"],
                          cwd=FAKE, capture_output=True, text=True)
    assert sdxl.returncode == 2 and "unrecognized arguments: --no_such_flag" in sdxl.stderr



def test_a_state_is_taken_once_its_files_stop_changing_and_only_when_complete(tmp_path, monkeypatch):
    """No newer state folder and no bar past it: a complete state is taken once its files have not
    changed for STATE_QUIET_S; one without the file accelerate writes last is never taken."""
    monkeypatch.setattr(kohya, "STATE_QUIET_S", 0.2)
    storage = LocalStorage(tmp_path / "objects")
    ctx = TaskContext(job_id="job", attempt=1, step="train_lora", task_kind="lora_trainer", engine="kohya",
                      work_dir=tmp_path / "work", storage=storage, command={"kind": "train_profile", "payload": {}})
    out = tmp_path / "output"
    keeper = kohya._StateKeeper(ctx, out, tmp_path / "upload", STEPS, "fp", None, None)

    def state(step: int, *files: str) -> None:
        folder = out / f"lora-step{step:08d}-state"
        folder.mkdir(parents=True)
        for name in files:
            (folder / name).write_text(json.dumps({"current_step": step}))

    state(10, "train_state.json", "model.safetensors", "optimizer.bin", "scheduler.bin", "random_states_0.pkl")
    keeper.poll(final=False)
    assert _states(storage) == []  # just written: it may still change
    time.sleep(0.3)
    keeper.poll(final=False)
    assert storage.get_json(STATE_PREFIX + "state.json")["step"] == 10

    state(20, "train_state.json", "model.safetensors")  # the rest not written yet
    keeper.poll(final=False)
    time.sleep(0.3)
    keeper.poll(final=False)
    keeper.poll(final=True)
    assert storage.get_json(STATE_PREFIX + "state.json")["step"] == 10
    assert _states(storage) == [STATE_PREFIX + "lora-step00000010-state.tar", STATE_PREFIX + "state.json"]
