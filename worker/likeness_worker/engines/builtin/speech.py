"""tts engines: espeak (espeak-ng shaped to the profile's pitch)."""

from __future__ import annotations

from ..base import Engine, StepOutput, TaskContext
from ..registry import REGISTRY
from .video import wav_duration


@REGISTRY.engine("tts", "espeak", default=True)
class EspeakTts(Engine):
    """espeak-ng shaped to the profile's measured pitch; word timings from espeak's own events."""

    def synthesize(self, ctx: TaskContext) -> StepOutput:
        from ...media.tts import synthesize_espeak

        p = ctx.payload
        key = p["profile"].get("voiceProfileKey")
        voice_profile = ctx.storage.get_json_or_none(key) if key else None  # none: espeak's own voice
        out = ctx.path("out/speech.wav")
        words = synthesize_espeak(p["script"]["narration"], out, voice_profile, cancelled=ctx.cancelled)
        duration = wav_duration(out)
        timings = {"durationSec": duration, "words": words}
        artifacts = [
            ctx.upload("speech.wav", out, "speech", "audio/wav", {"durationSec": round(duration, 3)}),
            ctx.upload_json("timings.json", timings, "timings", {"words": len(words)}),
        ]
        return StepOutput(artifacts, {"durationSec": duration, "words": len(words)})
