"""tts engines: piper (the default: a neural voice shaped toward the profile) and espeak (the
fallback: espeak-ng with its pitch picked from the profile). Both write speech.wav and
timings.json ({durationSec, words, phonemes, voice, shaping}); the lip sync reads the phonemes."""

from __future__ import annotations

from ..base import Engine, StepOutput, TaskContext, engine


def _voice_profile(ctx: TaskContext) -> dict | None:
    key = ctx.payload["profile"].get("voiceProfileKey")
    return ctx.storage.get_json_or_none(key) if key else None  # none: the voice as it is


def publish_speech(ctx: TaskContext, out, timings: dict) -> StepOutput:
    from ...media.errors import ToolFailed
    from ...media.video import audio_seconds

    duration = audio_seconds(out)
    if duration is None:  # an empty WAV
        raise ToolFailed(f"{out.name} holds no audio")
    timings = {"durationSec": duration, **timings}
    n_words, n_phonemes = len(timings["words"]), len(timings.get("phonemes") or [])
    artifacts = [
        ctx.upload("speech.wav", out, "speech", "audio/wav", {"durationSec": round(duration, 3)}),
        ctx.upload_json("timings.json", timings, "timings", {"words": n_words, "phonemes": n_phonemes}),
    ]
    outputs = {"durationSec": duration, "words": n_words, "phonemes": n_phonemes,
               "voice": timings.get("voice"), "shaping": timings.get("shaping")}
    return StepOutput(artifacts, outputs)


@engine("tts", "piper", default=True)
class PiperTts(Engine):
    """piper (joe-medium, ONNX on the CPU) shaped toward the profile's pitch, formants and rate;
    word and phoneme timings from the model's own phoneme durations."""

    # piper-tts (piper1-gpl) and praat-parselmouth: GPL-3.0-or-later; the en_US-joe-medium voice: MIT
    licence = "GPL-3.0-or-later AND MIT"
    tools = ("ffmpeg",)

    @classmethod
    def warm(cls) -> None:
        from ...media.piper_tts import load_voice

        load_voice()

    def synthesize(self, ctx: TaskContext) -> StepOutput:
        from ...media.piper_tts import synthesize_piper

        out = ctx.path("out/speech.wav")
        res = synthesize_piper(ctx.payload["script"]["narration"], out, _voice_profile(ctx),
                               cancelled=ctx.cancelled)
        return publish_speech(ctx, out, res)


@engine("tts", "espeak", default=False)
class EspeakTts(Engine):
    """espeak-ng shaped to the profile's measured pitch; word and phoneme timings from espeak's
    own events."""

    # espeak-ng and praat-parselmouth
    licence = "GPL-3.0-or-later"
    tools = ("espeak-ng", "ffmpeg")

    def synthesize(self, ctx: TaskContext) -> StepOutput:
        from ...media.tts import espeak_voice_for, synthesize_espeak

        voice_profile = _voice_profile(ctx)
        out = ctx.path("out/speech.wav")
        phonemes: list[dict] = []
        words = synthesize_espeak(ctx.payload["script"]["narration"], out, voice_profile,
                                  cancelled=ctx.cancelled, phonemes=phonemes)
        voice, pitch = espeak_voice_for(voice_profile)
        shaping = {"espeakPitch": pitch, "targetF0Hz": (voice_profile or {}).get("median_f0_hz"),
                   "notes": ["espeak-ng picks voice and pitch only: no formant or rate shaping"]}
        return publish_speech(ctx, out, {"words": words, "phonemes": phonemes, "voice": voice,
                                   "shaping": shaping})
