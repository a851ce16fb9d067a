"""``python -m fakes.realesrgan DEST`` (from worker/tests): both fakes installed under DEST, and
the settings that point the realesrgan engine at them."""

import sys
from pathlib import Path

from . import install_checkout, install_ncnn

root = Path(sys.argv[1] if len(sys.argv) > 1 else "realesrgan-fakes").resolve()
checkout = install_checkout(root / "Real-ESRGAN")
binary = install_ncnn(root / "realesrgan-ncnn-vulkan")
print(f"REALESRGAN_DIR={checkout}\nREALESRGAN_PYTHON={sys.executable}\nREALESRGAN_BIN={binary}")
