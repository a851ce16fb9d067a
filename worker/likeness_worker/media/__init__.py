"""Pure media functions of the built-in CPU engines (faces, voice, speech, video).

No storage, no Redis: paths in, files and measured facts out. External tools run through
``proc.run``/``proc.pipe`` so that a timeout or a cancel kills them.
"""

from .errors import BadInput, Cancelled, ToolFailed, ToolTimeout
from .faces import FacesResult, prepare_faces
from .proc import run
from .tts import synthesize_espeak
from .video import frame_portrait, ken_burns, mux, probe, upscale_lanczos, write_srt
from .voice import VoiceClip, measure_voice, prepare_voice

__all__ = [
    "BadInput", "Cancelled", "ToolFailed", "ToolTimeout",
    "FacesResult", "prepare_faces",
    "run",
    "synthesize_espeak",
    "frame_portrait", "ken_burns", "mux", "probe", "upscale_lanczos", "write_srt",
    "VoiceClip", "measure_voice", "prepare_voice",
]
