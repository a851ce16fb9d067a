"""GPU engines that drive a ComfyUI server (COMFYUI_URL) over its HTTP and WebSocket API.

``ENGINES`` lists them; load_engines (engines/registry.py) adds them beside the built-in ones,
never as a default: a request selects one by name (``engines: {image: "comfyui"}``), and until
COMFYUI_URL names a server that has the workflow's nodes and models, the advert says why not.
"""

from ..base import Engine
from .engine import ComfyUIImage

ENGINES: tuple[type[Engine], ...] = (ComfyUIImage,)
