"""generate_video engines: portrait (image), landmarks (talking_head, lipsync: the face speaks),
kenburns (motion; also a talking_head without lip sync), none (lipsync), lanczos (upscale),
ffmpeg (mux). They read their declared inputs (``scene``, ``speech``, ``timings``, ``video``: the
video so far) with ``ctx.input``, whatever the pipeline; each one that makes a video reports its
key as ``outputs.videoKey`` (its ``video`` output), with what it knows of the frames (width,
height, frames, encode, subtitlesBurned) beside it for the steps after it.

Frames are encoded once: the step that makes the final frames (talking_head, lipsync) encodes
them as the MP4's H.264 stream, burning the subtitles in when asked; motion hands its frames on
losslessly; upscale does nothing when the frames are already at the output size; mux copies the
video stream."""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

from ..base import Engine, StepOutput, TaskContext, engine

LOSSLESS_NOTE = "lossless intermediate (RGB H.264, qp 0): the next step makes the final frames"


class _Framing(TypedDict, total=False):
    """ken_burns' framing arguments; those left out keep its defaults."""

    focus: tuple[float, float]
    pan: tuple[float, float]


@engine("image", "portrait", default=True)
class PortraitImage(Engine):
    """The profile's reference portrait, framed to the output size around the face."""

    # OpenCV
    licence = "Apache-2.0"

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


def _timings(ctx: TaskContext) -> dict:
    return ctx.storage.get_json(ctx.input("timings").key)


def burn_in(ctx: TaskContext, timings: dict | None = None) -> str | None:
    """The -vf filter that burns the subtitles into the final frames, when the request asks
    (``timings``: the speech's, if the caller has them already)."""
    from ...media.subtitles import burn_filter, write_srt

    if not ctx.payload["burnSubtitles"]:
        return None
    timings = timings or _timings(ctx)
    srt = ctx.path("out/burned.srt")
    write_srt(timings["words"], srt)
    return burn_filter(srt, ctx.payload["width"], ctx.payload["height"])


def _speech(ctx: TaskContext) -> tuple[Path, dict]:
    return ctx.fetch_input("speech", "speech.wav"), _timings(ctx)


def _kenburns(ctx: TaskContext, name: str, *, final: bool) -> StepOutput:
    from ...media.video import ken_burns

    p = ctx.payload
    scene = ctx.input("scene")
    still = ctx.fetch(scene.key, "scene.png")
    duration = float(ctx.input("speech").outputs["durationSec"])
    focus = face_focus(scene.outputs.get("faceBox"), p["width"], p["height"])
    # A zoom anchored on the face, without pan: the face stays where the image step framed it.
    on_face: _Framing = {"focus": focus, "pan": (0.0, 0.0)} if focus else {}
    out = ctx.path(f"out/{name}")
    burn = burn_in(ctx) if final else None
    frames = ken_burns(
        still, out, duration, p["width"], p["height"], lossless=not final, video_filter=burn,
        progress=lambda f: ctx.progress(f, "rendering frames"), cancelled=ctx.cancelled, **on_face,
    )
    encode = "final H.264" if final else LOSSLESS_NOTE
    meta = {"durationSec": round(duration, 3), "frames": frames,
            "width": p["width"], "height": p["height"], "encode": encode,
            "subtitlesBurned": burn is not None}
    ref = ctx.upload(name, out, "video" if final else "video_raw",
                     "video/mp4" if final else "video/x-matroska", meta)
    return StepOutput([ref], {"videoKey": ref["key"], **meta})


@engine("motion", "kenburns", default=True)
class KenBurnsMotion(Engine):
    """Slow zoom of the still anchored on the face, as long as the speech (so it follows tts on
    the CPU), handed on losslessly to the lip sync."""

    # OpenCV; FFmpeg with libx264
    licence = "Apache-2.0 AND GPL-2.0-or-later"
    tools = ("ffmpeg",)

    def animate(self, ctx: TaskContext) -> StepOutput:
        return _kenburns(ctx, "motion.mkv", final=False)


@engine("talking_head", "kenburns")
class KenBurnsTalkingHead(Engine):
    """The face-anchored zoom of the portrait, without lip sync (choose `landmarks` for that)."""

    # OpenCV; FFmpeg with libx264
    licence = "Apache-2.0 AND GPL-2.0-or-later"
    tools = ("ffmpeg",)

    def animate(self, ctx: TaskContext) -> StepOutput:
        return _kenburns(ctx, "talking_head.mp4", final=True)


def _speak(ctx: TaskContext, animate, source: Path, name: str, doing: str) -> StepOutput:
    """Make the face of ``source`` (a still or a video) speak the ``speech`` input with
    ``animate`` (media.talking); the result is the final stream."""
    from ...media.talking import seed_of

    p = ctx.payload
    speech, timings = _speech(ctx)
    out = ctx.path(f"out/{name}")
    burn = burn_in(ctx, timings)
    stats = animate(source, speech, timings, out, p["width"], p["height"], seed=seed_of(ctx.job_id),
                    video_filter=burn, progress=lambda f: ctx.progress(f, doing), cancelled=ctx.cancelled)
    meta = {**stats, "width": p["width"], "height": p["height"], "encode": "final H.264",
            "lipSync": True, "subtitlesBurned": burn is not None}
    ref = ctx.upload(name, out, "video", "video/mp4", meta)
    return StepOutput([ref], {"videoKey": ref["key"], **meta})


@engine("talking_head", "landmarks", default=True)
class LandmarksTalkingHead(Engine):
    """The portrait's face speaks: MediaPipe's face mesh warped per frame from the phoneme
    timeline (visemes) and the speech energy, with a painted mouth interior, blinks and small
    head motion; the frames are encoded once, as the final stream."""

    # MediaPipe face mesh, OpenCV; FFmpeg with libx264
    licence = "Apache-2.0 AND GPL-2.0-or-later"
    tools = ("ffmpeg",)

    @classmethod
    def warm(cls) -> None:
        from ...media.talking import warm_talking

        warm_talking()

    def animate(self, ctx: TaskContext) -> StepOutput:
        from ...media.talking import animate_portrait

        still = ctx.fetch_input("scene", "scene.png")
        return _speak(ctx, animate_portrait, still, "talking_head.mp4", "animating the face")


@engine("lipsync", "landmarks", default=True)
class LandmarksLipsync(Engine):
    """Lip sync on the video so far (the motion's): the face is tracked on every frame and
    animated like `landmarks` talking_head; the frames are encoded once, as the final stream."""

    # MediaPipe face mesh, OpenCV; FFmpeg with libx264
    licence = "Apache-2.0 AND GPL-2.0-or-later"
    tools = ("ffmpeg",)

    @classmethod
    def warm(cls) -> None:
        LandmarksTalkingHead.warm()

    def sync(self, ctx: TaskContext) -> StepOutput:
        from ...media.talking import lipsync_video

        video = ctx.fetch_input("video")
        return _speak(ctx, lipsync_video, video, "lipsync.mp4", "lip sync")


@engine("lipsync", "none")
class NoLipsync(Engine):
    """No lip sync: the video is passed through, unchanged."""

    def sync(self, ctx: TaskContext) -> StepOutput:
        video = ctx.input("video").key
        return StepOutput([], {"videoKey": video, "lipSync": False, "reason": "engine none: video passed through"})


@engine("upscale", "lanczos", default=True)
class LanczosUpscale(Engine):
    """ffmpeg lanczos to the output size; nothing at all when the frames already have it."""

    # FFmpeg (Debian's build, GPL)
    licence = "GPL-2.0-or-later"
    tools = ("ffmpeg", "ffprobe")

    def upscale(self, ctx: TaskContext) -> StepOutput:
        from ...media.video import probe, upscale_lanczos

        p = ctx.payload
        video = ctx.input("video")
        made = video.outputs  # what the step that made it says of its frames
        size = (made.get("width"), made.get("height"))
        src = None
        if None in size:  # the step that made the frames did not say their size: look
            src = ctx.fetch_input("video")
            info = probe(src)
            size = (info["width"], info["height"])
        if size == (p["width"], p["height"]):
            reason = f"skipped: the frames are already {p['width']}x{p['height']}"
            return StepOutput([], {"videoKey": video.key, "skipped": True, "reason": reason})
        src = src or ctx.fetch_input("video")
        out = ctx.path("out/upscaled.mp4")
        upscale_lanczos(src, out, p["width"], p["height"], cancelled=ctx.cancelled)
        ref = ctx.upload("upscaled.mp4", out, "video_upscaled", "video/mp4", {"width": p["width"], "height": p["height"]})
        # Subtitles burned in upstream are in these frames too: mux must not burn them again.
        return StepOutput([ref], {"videoKey": ref["key"], "skipped": False, "width": p["width"], "height": p["height"],
                                  "subtitlesBurned": bool(made.get("subtitlesBurned")),
                                  "reason": f"scaled {size[0]}x{size[1]} to {p['width']}x{p['height']}"})


@engine("mux", "ffmpeg", default=True)
class FfmpegMux(Engine):
    """The MP4: the video stream copied (encoded only if no earlier step made a final stream),
    AAC at -16 LUFS, soft subtitles (mov_text) from the TTS word timings, +faststart."""

    # FFmpeg (Debian's build, GPL)
    licence = "GPL-2.0-or-later"
    tools = ("ffmpeg", "ffprobe")

    def mux(self, ctx: TaskContext) -> StepOutput:
        from ...media.subtitles import subtitle_mode, write_srt
        from ...media.video import final_stream_info, mux

        p = ctx.payload
        mode = subtitle_mode(p)
        video_in = ctx.input("video")
        video = ctx.fetch_input("video")
        speech = ctx.fetch_input("speech", "speech.wav")
        srt = None
        artifacts = []
        if mode == "soft":
            srt = ctx.path("out/subtitles.srt")
            write_srt(_timings(ctx)["words"], srt)
        made = video_in.outputs  # what the step that made the frames says of them
        # Burned in already by the step that made the final frames, or here (then mux encodes).
        burn = burn_in(ctx) if mode == "burned" and not made.get("subtitlesBurned") else None
        final = (final_stream_info(made["frames"], made["width"], made["height"])
                 if made.get("encode") == "final H.264" and made.get("frames") else None)
        out = ctx.path("out/video.mp4")
        info = mux(video, speech, out, srt, video_filter=burn, final_stream=final, cancelled=ctx.cancelled)
        outputs = {
            "durationSec": float(info["duration_sec"]),
            "width": int(info["width"]),
            "height": int(info["height"]),
            "fps": float(info["fps"]),
            "video": info["video_stream"],
            "subtitles": mode,
        }
        video_ref = ctx.upload("video.mp4", out, "video", "video/mp4", dict(outputs))
        artifacts.append(video_ref)
        outputs["videoKey"] = video_ref["key"]
        if srt is not None:
            sub_ref = ctx.upload("subtitles.srt", srt, "subtitles", "application/x-subrip")
            artifacts.append(sub_ref)
            outputs["subtitlesKey"] = sub_ref["key"]
        return StepOutput(artifacts, outputs)
