"""Built-in CPU engines (the defaults of docs/foundation.md): honest, no GPU, no weights.

They call the pure media functions in likeness_worker.media (imported lazily, inside each verb,
so the runtime starts fast and a worker that never runs a step never loads mediapipe).
``ENGINES`` lists them; load_engines (engines/registry.py) adds them to a registry.
"""

from ..base import Engine
from . import speech, train, video

ENGINES: tuple[type[Engine], ...] = (
    train.DatasetPrepare,
    train.DatasetLoraTrainer,
    train.DatasetVoiceTrainer,
    train.BuiltinEvaluate,
    train.BuiltinPublish,
    video.PortraitImage,
    video.KenBurnsMotion,
    video.KenBurnsTalkingHead,
    video.LandmarksTalkingHead,
    video.LandmarksLipsync,
    video.NoLipsync,
    video.LanczosUpscale,
    video.FfmpegMux,
    speech.PiperTts,
    speech.EspeakTts,
)
