"""GPU engines that drive a ComfyUI server (COMFYUI_URL) over its HTTP and WebSocket API: the
scene (image: text to image with the profile's LoRA) and its motion (motion: Stable Video
Diffusion, image to video).

``ENGINES`` lists them; load_engines (engines/registry.py) adds them beside the built-in ones,
never as a default: a request selects one by name (``engines: {image: "comfyui"}``), and until
COMFYUI_URL names a server that has the workflow's nodes and models, the advert says why not.
"""

from ..base import Engine
from .image import ComfyUIImage
from .motion import ComfyUIMotion

ENGINES: tuple[type[Engine], ...] = (ComfyUIImage, ComfyUIMotion)
