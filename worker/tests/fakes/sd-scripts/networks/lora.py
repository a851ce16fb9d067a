"""Fake sd-scripts networks/lora.py: ``create_network(multiplier, network_dim, network_alpha, vae,
text_encoder, unet, neuron_dropout=None, **kwargs)`` returning a LoRA network whose modules carry
sd-scripts' names (``lora_unet_…``, ``lora_te_…``; SDXL: ``lora_te1_…``/``lora_te2_…``) and
tensors (``<name>.lora_down.weight`` [dim, in], ``<name>.lora_up.weight`` [out, dim], ``<name>.alpha``),
saved by ``save_weights`` as a .safetensors file with its ``ss_*`` metadata.

A few modules only, at their real shapes, and a toy objective instead of the U-Net: each module
learns a fixed low-rank map of the image's features (``up @ down * alpha / dim``), so the loss is a
real one that falls as it trains (Adam, the learning rate of the command line). ``lora_up`` starts
at zero, as sd-scripts' does.
"""

from __future__ import annotations

import hashlib

import numpy as np
from library.safetensors_file import save_file

SD15_MODULES = [
    ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", 320, 320),
    ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", 768, 320),
    ("lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_out_0", 1280, 1280),
    ("lora_te_text_model_encoder_layers_0_self_attn_q_proj", 768, 768),
]
SDXL_MODULES = [
    ("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q", 640, 640),
    ("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", 2048, 640),
    ("lora_unet_middle_block_1_transformer_blocks_0_attn1_to_out_0", 1280, 1280),
    ("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 768, 768),
    ("lora_te2_text_model_encoder_layers_0_self_attn_q_proj", 1280, 1280),
]
FEATURES = 80


def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


class LoRAModule:
    def __init__(self, name: str, in_dim: int, out_dim: int, dim: int, alpha: float, base_seed: int) -> None:
        self.lora_name = name
        self.dim, self.alpha = dim, alpha
        self.scale = alpha / dim
        init = _rng(name, "init")
        self.down = init.uniform(-1, 1, (dim, in_dim)).astype(np.float32) / np.sqrt(in_dim)
        self.up = np.zeros((out_dim, dim), np.float32)
        fixed = _rng(base_seed, name)  # the "base model": what this module's output should become
        self.project = fixed.normal(0, 1, (in_dim, FEATURES)).astype(np.float32) / np.sqrt(FEATURES)
        self.target_a = fixed.normal(0, 1, (out_dim, 2)).astype(np.float32)
        self.target_b = fixed.normal(0, 1, (2, in_dim)).astype(np.float32) / np.sqrt(in_dim)

    def loss_and_grads(self, features: np.ndarray, noise: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        v = features @ self.project.T  # [batch, in]
        target = (v @ self.target_b.T) @ self.target_a.T + noise  # [batch, out]
        hidden = v @ self.down.T  # [batch, dim]
        residual = self.scale * hidden @ self.up.T - target
        n = residual.size
        loss = float(np.sum(residual * residual) / n)
        g = 2.0 * residual / n
        grad_up = self.scale * g.T @ hidden
        grad_down = self.scale * (g @ self.up).T @ v
        return loss, grad_up, grad_down


class LoRANetwork:
    accelerate_kind = "model"

    def __init__(self, modules: list[LoRAModule], multiplier: float) -> None:
        self.modules = modules
        self.multiplier = multiplier

    def state_dict(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for m in self.modules:
            out[f"{m.lora_name}.lora_down.weight"] = m.down.copy()
            out[f"{m.lora_name}.lora_up.weight"] = m.up.copy()
            out[f"{m.lora_name}.alpha"] = np.array(m.alpha, np.float32)
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for m in self.modules:
            m.down = state[f"{m.lora_name}.lora_down.weight"].astype(np.float32)
            m.up = state[f"{m.lora_name}.lora_up.weight"].astype(np.float32)

    def parameters(self) -> list[np.ndarray]:
        return [p for m in self.modules for p in (m.up, m.down)]

    def step(self, features: np.ndarray, optimizer: AdamW, noise_scale: float = 0.05) -> float:
        losses, grads = [], []
        for m in self.modules:
            noise = np.random.normal(0, noise_scale, (features.shape[0], m.up.shape[0])).astype(np.float32)
            loss, grad_up, grad_down = m.loss_and_grads(features, noise)
            losses.append(loss)
            grads += [grad_up, grad_down]
        optimizer.step(self, grads)
        return float(np.mean(losses))

    def save_weights(self, file: str, dtype, metadata: dict[str, str] | None) -> None:
        state = self.state_dict()
        if dtype is not None:
            state = {k: v.astype(dtype) for k, v in state.items()}
        save_file(state, file, metadata)


class AdamW:
    """torch.optim.AdamW's update (sd-scripts' default optimizer), on the network's arrays."""

    accelerate_kind = "optimizer"

    def __init__(self, lr: float, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01) -> None:
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.t = 0
        self.m: list[np.ndarray] = []
        self.v: list[np.ndarray] = []

    def step(self, network: LoRANetwork, grads: list[np.ndarray]) -> None:
        if not self.m:
            self.m = [np.zeros_like(g) for g in grads]
            self.v = [np.zeros_like(g) for g in grads]
        self.t += 1
        b1, b2 = self.betas
        for i, (m, grad) in enumerate(zip(network.modules, zip(grads[0::2], grads[1::2], strict=True), strict=True)):
            for j, (param, g) in enumerate(((m.up, grad[0]), (m.down, grad[1]))):
                k = 2 * i + j
                param *= 1 - self.lr * self.weight_decay
                self.m[k] = b1 * self.m[k] + (1 - b1) * g
                self.v[k] = b2 * self.v[k] + (1 - b2) * g * g
                m_hat = self.m[k] / (1 - b1 ** self.t)
                v_hat = self.v[k] / (1 - b2 ** self.t)
                param -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def state_dict(self) -> dict:
        return {"state": {"t": self.t, "m": self.m, "v": self.v},
                "param_groups": [{"lr": self.lr, "betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay}]}

    def load_state_dict(self, state: dict) -> None:
        self.t, self.m, self.v = state["state"]["t"], state["state"]["m"], state["state"]["v"]


class ConstantScheduler:
    accelerate_kind = "scheduler"

    def __init__(self, lr: float) -> None:
        self.base_lrs = [lr]
        self.last_epoch = 0

    def step(self) -> None:
        self.last_epoch += 1

    def get_last_lr(self) -> list[float]:
        return self.base_lrs

    def state_dict(self) -> dict:
        return {"base_lrs": self.base_lrs, "last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.base_lrs, self.last_epoch = state["base_lrs"], state["last_epoch"]


def create_network(multiplier, network_dim, network_alpha, vae, text_encoder, unet, neuron_dropout=None, **kwargs):
    if network_dim is None:
        network_dim = 4  # sd-scripts' default
    if network_alpha is None:
        network_alpha = 1.0
    specs = SDXL_MODULES if getattr(unet, "sdxl", False) else SD15_MODULES
    modules = [LoRAModule(name, i, o, int(network_dim), float(network_alpha), unet.seed) for name, i, o in specs]
    return LoRANetwork(modules, multiplier)
