"""GPU engines over the seed's tools, each one file: a script in the tool's own checkout run in its
own process group (Wav2Lip, SadTalker, MuseTalk, Real-ESRGAN, kohya) or a server the tool runs
(GPT-SoVITS). Selectable, never a default: each is advertised unhealthy, with the reason, until
its settings name a working install."""

from ..base import Engine
from .f5_tts import F5Tts
from .f5_tts_train import F5TtsFinetune
from .gpt_sovits import GptSovitsTts
from .gpt_sovits_train import GptSovitsVoiceTrainer
from .kohya import KohyaLoraTrainer
from .likeness_eval import LikenessEvaluate
from .musetalk import MuseTalkLipsync
from .realesrgan import RealESRGANUpscale
from .sadtalker import SadTalkerTalkingHead
from .voice_reference import ReferenceVoiceTrainer
from .wav2lip import Wav2LipLipsync, Wav2LipTalkingHead

ENGINES: tuple[type[Engine], ...] = (
    GptSovitsTts, F5Tts,  # tts
    Wav2LipLipsync, MuseTalkLipsync,  # lipsync
    Wav2LipTalkingHead, SadTalkerTalkingHead,  # talking_head
    RealESRGANUpscale,  # upscale
    KohyaLoraTrainer,  # lora_trainer
    ReferenceVoiceTrainer, GptSovitsVoiceTrainer, F5TtsFinetune,  # voice_trainer
    LikenessEvaluate,  # evaluate
)
