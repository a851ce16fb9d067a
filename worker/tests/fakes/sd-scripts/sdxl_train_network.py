"""Fake kohya-ss/sd-scripts ``sdxl_train_network.py``: train_network.py's parser plus
``sdxl_train_util.add_sdxl_training_arguments`` (``--cache_text_encoder_outputs``,
``--cache_text_encoder_outputs_to_disk``, ``--disable_mmap_load_safetensors``), and SDXL's LoRA
module names (``lora_unet_input_blocks_…``, ``lora_te1_…``, ``lora_te2_…``)."""

from __future__ import annotations

import sys

import train_network
from library import train_util


class SdxlNetworkTrainer(train_network.NetworkTrainer):
    is_sdxl = True

    def base_model_version(self) -> tuple[str, str]:
        return "sdxl_base_v1-0", "stable-diffusion-xl-v1-base/lora"


def setup_parser():
    parser = train_network.setup_parser()
    train_util.add_arguments(parser, "sdxl_train_network")
    return parser


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    parser = setup_parser()

    args = parser.parse_args()
    train_util.verify_command_line_training_args(args)
    args = train_util.read_config_from_file(args, parser)

    trainer = SdxlNetworkTrainer()
    trainer.train(args)
