"""generate_video engines: portrait (image), kenburns (motion, talking_head),
none (lipsync), lanczos (upscale), ffmpeg (mux). Each step that makes a video reports its key as
``outputs.videoKey`` so the next step finds it whatever the pipeline."""

from __future__ import annotations

import wave
from pathlib import Path

from ..base import Engine, StepOutput, TaskContext
from ..registry import REGISTRY

# Where the current video is, in pipeline order: the last of these that ran is the input.
VIDEO_STEPS = ("upscale", "lipsync", "talking_head", "motion")


def wav_duration(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / float(w.getframerate())


def upstream_video(ctx: TaskContext, before: tuple[str, ...]) -> Path:
    for step in before:
        if step in ctx.upstream and ctx.upstream[step].get("outputs", {}).get("videoKey"):
            return ctx.fetch(ctx.upstream[step]["outputs"]["videoKey"], f"{step}.mp4")
    raise KeyError(f"step {ctx.step} found no upstream video (looked at {', '.join(before)})")


@REGISTRY.engine("image", "portrait", default=True)
class PortraitImage(Engine):
    """The profile's reference portrait, framed to the output size around the face."""

    def render(self, ctx: TaskContext) -> StepOutput:
        from ...media.video import frame_portrait

        p = ctx.payload
        src = ctx.fetch(p["profile"]["portraitKey"], "portrait.png")
        out = ctx.path("out/scene.png")
        box = frame_portrait(src, p["profile"]["faceBox"], out, p["width"], p["height"])
        ref = ctx.upload("scene.png", out, "scene", "image/png", {"faceBox": box, "width": p["width"], "height": p["height"]})
        return StepOutput([ref], {"faceBox": box})


def face_focus(box: dict | None, width: int, height: int) -> tuple[float, float] | None:
    """Centre of the framed face box (scene pixels) as fractions of the frame."""
    if not box or box.get("w", 0) <= 0 or box.get("h", 0) <= 0:
        return None
    return ((box["x"] + box["w"] / 2) / width, (box["y"] + box["h"] / 2) / height)


def _animate(ctx: TaskContext, name: str) -> StepOutput:
    from ...media.video import ken_burns

    p = ctx.payload
    still = ctx.fetch(ctx.upstream_artifact("image", "scene")["key"], "scene.png")
    duration = float(ctx.upstream_outputs("tts")["durationSec"])
    focus = face_focus(ctx.upstream_outputs("image").get("faceBox"), p["width"], p["height"])
    # A zoom anchored on the face, without pan: the face stays where the image step framed it.
    on_face = {"focus": focus, "pan": (0.0, 0.0)} if focus else {}
    out = ctx.path(f"out/{name}")
    ken_burns(
        still, out, duration, p["width"], p["height"],
        progress=lambda f: ctx.progress(f, "rendering frames"), cancelled=ctx.cancelled, **on_face,
    )
    ref = ctx.upload(name, out, "video_raw", "video/mp4", {"durationSec": round(duration, 3)})
    return StepOutput([ref], {"videoKey": ref["key"], "durationSec": duration})


@REGISTRY.engine("motion", "kenburns", default=True)
class KenBurnsMotion(Engine):
    """Slow zoom/pan of the still, as long as the speech (so it follows tts on the CPU)."""

    def animate(self, ctx: TaskContext) -> StepOutput:
        return _animate(ctx, "motion.mp4")


@REGISTRY.engine("talking_head", "kenburns", default=True)
class KenBurnsTalkingHead(Engine):
    """sadtalker pipeline on the CPU: zoom of the portrait driven by the speech duration, no lip sync."""

    def animate(self, ctx: TaskContext) -> StepOutput:
        return _animate(ctx, "talking_head.mp4")


@REGISTRY.engine("lipsync", "none", default=True)
class NoLipsync(Engine):
    """No lip sync yet (issue #3 brings `landmarks`): the video is passed through, unchanged."""

    def sync(self, ctx: TaskContext) -> StepOutput:
        video = ctx.upstream_outputs("motion")["videoKey"]
        return StepOutput([], {"videoKey": video, "lipSync": False, "reason": "engine none: video passed through"})


@REGISTRY.engine("upscale", "lanczos", default=True)
class LanczosUpscale(Engine):
    def upscale(self, ctx: TaskContext) -> StepOutput:
        from ...media.video import upscale_lanczos

        p = ctx.payload
        src = upstream_video(ctx, VIDEO_STEPS[1:])
        out = ctx.path("out/upscaled.mp4")
        upscale_lanczos(src, out, p["width"], p["height"], cancelled=ctx.cancelled)
        ref = ctx.upload("upscaled.mp4", out, "video_upscaled", "video/mp4", {"width": p["width"], "height": p["height"]})
        return StepOutput([ref], {"videoKey": ref["key"]})


@REGISTRY.engine("mux", "ffmpeg", default=True)
class FfmpegMux(Engine):
    """H.264 yuv420p 25 fps + AAC, +faststart, soft subtitles from the TTS word timings."""

    def mux(self, ctx: TaskContext) -> StepOutput:
        from ...media.subtitles import write_srt
        from ...media.video import mux

        p = ctx.payload
        video = upstream_video(ctx, VIDEO_STEPS)
        speech = ctx.fetch(ctx.upstream_artifact("tts", "speech")["key"], "speech.wav")
        srt = None
        artifacts = []
        if p.get("subtitles"):
            timings = ctx.storage.get_json(ctx.upstream_artifact("tts", "timings")["key"])
            srt = ctx.path("out/subtitles.srt")
            write_srt(timings["words"], srt)
        out = ctx.path("out/video.mp4")
        info = mux(video, speech, out, srt, cancelled=ctx.cancelled)
        outputs = {
            "durationSec": float(info["duration_sec"]),
            "width": int(info["width"]),
            "height": int(info["height"]),
            "fps": float(info["fps"]),
        }
        video_ref = ctx.upload("video.mp4", out, "video", "video/mp4", dict(outputs))
        artifacts.append(video_ref)
        outputs["videoKey"] = video_ref["key"]
        if srt is not None:
            sub_ref = ctx.upload("subtitles.srt", srt, "subtitles", "application/x-subrip")
            artifacts.append(sub_ref)
            outputs["subtitlesKey"] = sub_ref["key"]
        return StepOutput(artifacts, outputs)


