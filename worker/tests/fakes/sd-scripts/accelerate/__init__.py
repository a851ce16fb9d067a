"""Stand-in for Hugging Face ``accelerate`` (a dependency of sd-scripts, not part of it), only what
sd-scripts' training loop uses: ``Accelerator`` with ``save_state`` / ``load_state`` and their
pre-hooks, and ``accelerate launch`` (accelerate/commands/launch.py).

``save_state(dir)`` writes what accelerate writes, in its order: the pre-hooks first (sd-scripts'
``save_model_hook`` writes ``train_state.json`` there), then ``model.safetensors`` (the network's
weights: sd-scripts' hook drops every other model), ``optimizer.bin``, ``scheduler.bin`` and last
``random_states_0.pkl``. ``load_state(dir)`` of a folder that is not there raises accelerate's
``ValueError: Tried to find <dir> but folder does not exist``.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import random
import time

import numpy as np
from library import fake_switches
from library.safetensors_file import load_file, save_file

logger = logging.getLogger("accelerate.accelerator")

MODEL_NAME = "model"
OPTIMIZER_NAME = "optimizer"
SCHEDULER_NAME = "scheduler"
RNG_STATE_NAME = "random_states"


class Accelerator:
    def __init__(self, gradient_accumulation_steps: int = 1, mixed_precision: str = "no", **_: object) -> None:
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.mixed_precision = mixed_precision
        self.is_main_process = True
        self.is_local_main_process = True
        self.num_processes = 1
        self.process_index = 0
        self.device = "cuda:0"
        self.trackers: list = []
        self._save_hooks: list = []
        self._load_hooks: list = []
        self._models: list = []
        self._optimizers: list = []
        self._schedulers: list = []

    def prepare(self, *objects):
        for obj in objects:
            kind = getattr(obj, "accelerate_kind", None)
            {"model": self._models, "optimizer": self._optimizers, "scheduler": self._schedulers}.get(kind, []).append(obj)
        return objects if len(objects) != 1 else objects[0]

    def register_save_state_pre_hook(self, hook) -> None:
        self._save_hooks.append(hook)

    def register_load_state_pre_hook(self, hook) -> None:
        self._load_hooks.append(hook)

    def unwrap_model(self, model):
        return model

    def print(self, *args, **kwargs) -> None:
        print(*args, **kwargs, flush=True)

    def wait_for_everyone(self) -> None:
        pass

    def end_training(self) -> None:
        pass

    def skip_first_batches(self, dataloader, num_batches: int = 0):
        return list(dataloader)[num_batches:]

    def save_state(self, output_dir: str) -> str:
        os.makedirs(output_dir, exist_ok=True)
        logger.info(f"Saving current state to {output_dir}")
        weights = [m.state_dict() for m in self._models]
        for hook in self._save_hooks:
            hook(self._models, weights, output_dir)
        pause = fake_switches.save_s()
        step = _step_of(output_dir)
        for i, state in enumerate(weights):
            time.sleep(pause)
            path = os.path.join(output_dir, f"{MODEL_NAME}.safetensors" if i == 0 else f"{MODEL_NAME}_{i}.safetensors")
            save_file(state, path, {"format": "pt"})
            logger.info(f"Model weights saved in {path}")
        if fake_switches.fail() == "hang_in_save" and fake_switches.fail_at_step() in (None, step):
            fake_switches.hang()
        for name, objects in ((OPTIMIZER_NAME, self._optimizers), (SCHEDULER_NAME, self._schedulers)):
            for i, obj in enumerate(objects):
                time.sleep(pause)
                path = os.path.join(output_dir, f"{name}.bin" if i == 0 else f"{name}_{i}.bin")
                with open(path, "wb") as f:
                    pickle.dump(obj.state_dict(), f)
                logger.info(f"{name.capitalize()} state saved in {path}")
        time.sleep(pause)
        path = os.path.join(output_dir, f"{RNG_STATE_NAME}_{self.process_index}.pkl")
        with open(path, "wb") as f:
            pickle.dump({"random_state": random.getstate(), "numpy_random_seed": np.random.get_state()}, f)
        logger.info(f"Random states saved in {path}")
        return output_dir

    def load_state(self, input_dir: str) -> None:
        if not os.path.isdir(input_dir):
            raise ValueError(f"Tried to find {input_dir} but folder does not exist")
        logger.info(f"Loading states from {input_dir}")
        models = list(self._models)
        for hook in self._load_hooks:
            hook(models, input_dir)
        for i, model in enumerate(models):
            name = f"{MODEL_NAME}.safetensors" if i == 0 else f"{MODEL_NAME}_{i}.safetensors"
            tensors, _ = load_file(os.path.join(input_dir, name))
            model.load_state_dict(tensors)
        logger.info("All model weights loaded successfully")
        for name, objects in ((OPTIMIZER_NAME, self._optimizers), (SCHEDULER_NAME, self._schedulers)):
            for i, obj in enumerate(objects):
                with open(os.path.join(input_dir, f"{name}.bin" if i == 0 else f"{name}_{i}.bin"), "rb") as f:
                    obj.load_state_dict(pickle.load(f))
        logger.info("All optimizer states loaded successfully")
        logger.info("All scheduler states loaded successfully")
        logger.info("All dataloader sampler states loaded successfully")
        with open(os.path.join(input_dir, f"{RNG_STATE_NAME}_{self.process_index}.pkl"), "rb") as f:
            states = pickle.load(f)
        random.setstate(states["random_state"])
        np.random.set_state(states["numpy_random_seed"])
        logger.info("All random states loaded successfully")


def _step_of(output_dir: str) -> int | None:
    try:
        with open(os.path.join(output_dir, "train_state.json"), encoding="utf-8") as f:
            return int(json.load(f)["current_step"])
    except (OSError, ValueError, KeyError):
        return None

