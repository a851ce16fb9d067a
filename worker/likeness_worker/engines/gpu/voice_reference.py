"""``reference`` voice_trainer engine: the reference-audio profile, for when no voice is fine-tuned.

Nothing is trained: GPT-SoVITS (api_v2.py) and F5-TTS both clone a voice zero-shot from a few
seconds of it, so the profile's voice model is its voice reference (prepare's trimmed,
loudness-normalised clip, at most 12 s) plus what is known about it. The step makes:

- ``voice_profile.json`` (the ``voice_profile`` port): the measured voice, made by the built-in
  voice trainer's own code (``builtin.train.DatasetVoiceTrainer``: praat-parselmouth's F0, rates,
  formants), so the two engines cannot drift apart;
- ``voice_model.json`` (the ``voice_model`` port, kind ``voice_model``; publish puts its key in
  ``ProfileAssets.voiceModelKey``)::

      {"engine": "reference", "trained": false, "referenceKey": <the voice reference>,
       "referenceDurationSec": …, "referenceLoudnessLufs": …, "usableBy": ["gpt_sovits", "f5_tts"],
       "notes": [...]}

  Both GPU tts engines read ``voiceModelKey`` and use a manifest only when its ``engine`` is their
  own and it is trained; for this one they speak zero-shot from ``voiceReferenceKey``, the same
  clip as ``referenceKey``: exactly the reference-audio profile.

The transcript of the reference (``referenceText``) is left out: the upload flow gives none
(TrainProfilePayload.voiceSample is a key and a file name) and no speech recogniser runs in the
worker. GPT-SoVITS v2 speaks without one (v3/v4 models refuse an empty prompt_text); F5-TTS
transcribes the reference itself with its Whisper. The manifest says so in ``notes``.

It runs on the CPU (parselmouth), in well under a second for a 12 s clip.
"""

from __future__ import annotations

from typing import Any

from ..base import Engine, StepOutput, TaskContext, engine
from ..builtin.train import DatasetVoiceTrainer

NAME = "reference"
USABLE_BY = ("gpt_sovits", "f5_tts")
NO_TRANSCRIPT = ("no transcript of the reference: the upload gives none and no speech recogniser runs in the worker; "
                 "GPT-SoVITS v2 speaks without one (v3/v4 need one), F5-TTS transcribes the reference itself")


@engine("voice_trainer", NAME)
class ReferenceVoiceTrainer(Engine):
    """The reference-audio voice profile: the voice reference and its measured profile, no fine-tune."""

    # praat-parselmouth (the measured voice profile)
    licence = "GPL-3.0-or-later"
    device = "cpu"
    version = "1"

    def train(self, ctx: TaskContext) -> StepOutput:
        measured = DatasetVoiceTrainer().train(ctx)  # voice_profile.json, as the built-in trainer makes it
        ref = ctx.input("voice_reference")
        ctx.progress(0.8, "voice profile measured")
        doc: dict[str, Any] = {
            "engine": NAME,
            "trained": False,
            "referenceKey": ref.key,
            "referenceDurationSec": ref.outputs.get("voiceDurationSec"),
            "referenceLoudnessLufs": ref.outputs.get("voiceLoudnessLufs"),
            "usableBy": list(USABLE_BY),
            "notes": ["zero-shot: the tts engines clone the voice from the reference, nothing was fine-tuned",
                      NO_TRANSCRIPT],
        }
        model = ctx.upload_json("voice_model.json", doc, "voice_model")
        ctx.progress(1.0, "reference-audio voice model written")
        outputs = {**measured.outputs, "voiceModel": {"engine": NAME, "trained": False, "referenceText": None,
                                                      "note": NO_TRANSCRIPT}}
        return StepOutput([*measured.artifacts, model], outputs)
