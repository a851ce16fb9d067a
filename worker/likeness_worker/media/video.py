"""Built-in video steps: frame the portrait, Ken Burns motion, lanczos upscale, subtitles, mux."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import soundfile as sf

from . import proc
from .encode import FINAL, FPS, frame_writer
from .errors import BadInput, ToolFailed

FACE_HEIGHT_FRACTION = 0.48  # face box height / frame height (brief: 40-55 %)
FACE_WIDTH_MAX = 0.6  # ...unless the frame is narrow (9:16): then the hair and ears still fit
EYE_LINE = 1.0 / 3.0  # eyes on the upper third line
EYES_IN_FACE_BOX = 0.36  # MediaPipe's box: eyes ~36 % down from its top
OUTPUT_LUFS = -16.0  # online video / podcast loudness


def _check_size(width: int, height: int) -> None:
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise ValueError(f"output size {width}x{height} must be even and at least 16 px")


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise BadInput(f"cannot read the image {Path(path).name}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    os.replace(tmp, path)


def _cover(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to cover width x height (lanczos up, area down) and centre-crop."""
    h, w = rgb.shape[:2]
    s = max(width / w, height / h)
    nw, nh = max(width, round(w * s)), max(height, round(h * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LANCZOS4
    r = cv2.resize(rgb, (nw, nh), interpolation=interp)
    x, y = (nw - width) // 2, (nh - height) // 2
    return r[y:y + height, x:x + width]


def frame_portrait(
    src: Path,
    face_box: dict,
    out_png: Path,
    width: int,
    height: int,
    *,
    face_fraction: float = FACE_HEIGHT_FRACTION,
) -> dict:
    """Crop/scale the portrait to width x height around the face; return the face box there.

    The face is centred horizontally, the eyes sit on the upper third line and the face box
    is ``face_fraction`` of the frame height, or 60 % of its width on a narrow frame. Where that frame reaches past the photo, the
    gap is filled with a blurred, dimmed copy of the photo (no black bars, no stretching).
    """
    _check_size(width, height)
    rgb = read_rgb(src)
    fx, fy, fw, fh = (float(face_box[k]) for k in ("x", "y", "w", "h"))
    if fw <= 0 or fh <= 0:
        raise ValueError(f"face box {face_box} is empty")
    s = min(face_fraction * height / fh, FACE_WIDTH_MAX * width / fw)  # output px per source px
    cx, eye_y = fx + fw / 2, fy + EYES_IN_FACE_BOX * fh
    if s < 1.0:  # shrink first with area averaging: warpAffine alone would alias
        h, w = rgb.shape[:2]
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        rgb = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
        sx, sy = nw / w, nh / h
        cx, eye_y, fx, fy, fw, fh = cx * sx, eye_y * sy, fx * sx, fy * sy, fw * sx, fh * sy
        s = min(face_fraction * height / fh, FACE_WIDTH_MAX * width / fw)
    tx, ty = width / 2 - cx * s, height * EYE_LINE - eye_y * s
    m = np.array([[s, 0, tx], [0, s, ty]], dtype=np.float32)
    fg = cv2.warpAffine(rgb, m, (width, height), flags=cv2.INTER_LANCZOS4,
                        borderMode=cv2.BORDER_REPLICATE)
    inside = cv2.warpAffine(np.ones(rgb.shape[:2], np.float32), m, (width, height),
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    filled = float((inside < 0.5).mean())
    if filled > 0:
        bg = _cover(rgb, width, height).astype(np.float32)
        bg = cv2.GaussianBlur(bg, (0, 0), max(width, height) / 40.0) * 0.6
        feather = max(1.0, min(width, height) / 200.0)
        alpha = cv2.GaussianBlur(np.clip(inside, 0, 1), (0, 0), feather)
        alpha = np.minimum(alpha, inside)[..., None]  # never blend the photo's own edge outward
        out = fg.astype(np.float32) * alpha + bg * (1 - alpha)
        fg = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    _write_png(Path(out_png), fg)
    box = {"x": int(round(fx * s + tx)), "y": int(round(fy * s + ty)),
           "w": int(round(fw * s)), "h": int(round(fh * s))}
    return {**box, "filled_fraction": round(filled, 4)}


def fit_scene(src: Path, out_png: Path, width: int, height: int) -> dict | None:
    """A generated image at the output size: framed around its largest face like the portrait
    (``frame_portrait``), or scaled to cover and centre-cropped when it shows no face. Returns
    the face box in the output's pixels, or None when there is no face."""
    from .faces import detect_faces

    _check_size(width, height)
    rgb = read_rgb(src)
    faces = detect_faces(rgb)
    if faces:
        return frame_portrait(src, faces[0].box(), out_png, width, height)
    _write_png(Path(out_png), _cover(rgb, width, height))
    return None


def _smoothstep(t: float) -> float:
    return t * t * (3 - 2 * t)


def ken_burns(
    still: Path,
    out: Path,
    duration_sec: float,
    width: int,
    height: int,
    fps: int = FPS,
    progress: Callable[[float], None] | None = None,
    *,
    zoom: tuple[float, float] = (1.0, 1.08),
    focus: tuple[float, float] | None = None,
    pan: tuple[float, float] = (0.02, -0.01),
    cancelled: Callable[[], bool] | None = None,
    lossless: bool = False,
    video_filter: str | None = None,
) -> int:
    """Slow eased zoom with a slight pan; exactly round(duration_sec * fps) frames, encoded
    once: the final H.264 stream, or a lossless intermediate (``lossless``) for a later step.
    Returns the number of frames.

    Frames are rendered with sub-pixel affine warps (no integer-rounding jitter, unlike
    ffmpeg zoompan) and piped to ffmpeg. ``focus``: point (fractions of the frame), e.g. the
    face centre, that the zoom is anchored on: it stays where it is while the picture grows
    around it (default: the frame centre). ``pan``: extra drift as fractions of the frame, on
    top of that (pass (0, 0) to keep the focus still). ``progress(fraction)`` is called as
    frames are written.
    """
    _check_size(width, height)
    n = int(round(duration_sec * fps))
    if n < 1:
        raise ValueError(f"duration {duration_sec} s gives no frame at {fps} fps")
    img = _cover(read_rgb(still), width, height)
    z0, z1 = zoom
    size = np.array([width, height], np.float64)
    mid = size / 2
    f = np.array(focus if focus is not None else (0.5, 0.5), np.float64) * size
    drift = np.array(pan, np.float64) * size
    with frame_writer(out, width, height, n_frames=n, fps=fps, lossless=lossless,
                      video_filter=video_filter, cancelled=cancelled) as w:
        step = max(1, n // 20)
        for i in range(n):
            e = _smoothstep(i / (n - 1)) if n > 1 else 0.0
            z = z0 + (z1 - z0) * e
            # The view centre c that maps f onto itself at zoom z, plus the drift; kept
            # inside the picture (a pure zoom about an inner point always is).
            c = f - (f - mid) / z + drift * e
            half = size / (2 * z)
            c = np.minimum(np.maximum(c, half), size - half)
            m = np.array([[z, 0, mid[0] - c[0] * z], [0, z, mid[1] - c[1] * z]], dtype=np.float64)
            w.write(cv2.warpAffine(img, m, (width, height), flags=cv2.INTER_CUBIC,
                                   borderMode=cv2.BORDER_REFLECT101))
            if progress is not None and ((i + 1) % step == 0 or i + 1 == n):
                progress((i + 1) / n)
    return n


def upscale_lanczos(
    src: Path,
    out: Path,
    width: int,
    height: int,
    *,
    cancelled: Callable[[], bool] | None = None,
    timeout: float = 600.0,
) -> None:
    """Scale the video to width x height (lanczos, cover + centre crop, light unsharp).

    Frame count and timestamps are kept (``-fps_mode passthrough``); audio, if any, is copied.
    """
    _check_size(width, height)
    vf = (f"scale={width}:{height}:force_original_aspect_ratio=increase:flags=lanczos,"
          f"crop={width}:{height},setsar=1,unsharp=5:5:0.5:5:5:0.0")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.mp4")
    try:
        proc.run(["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", str(src),
                  "-map", "0:v:0", "-map", "0:a?", "-vf", vf, "-fps_mode", "passthrough",
                  *FINAL, "-c:a", "copy", "-movflags", "+faststart", str(tmp)],
                 timeout=timeout, cancelled=cancelled)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _rate(s: str | None) -> float | None:
    try:
        f = Fraction(s) if s else None
    except (ValueError, ZeroDivisionError):
        return None
    return float(f) if f else None


def probe(path: Path, *, count_frames: bool = False, timeout: float = 60.0) -> dict:
    """ffprobe summary: format duration, per-stream codec/duration/frames/fps, and shortcuts
    for the first video / audio / subtitle stream."""
    cmd = ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams"]
    if count_frames:
        cmd.append("-count_frames")
    res = proc.run([*cmd, str(path)], timeout=timeout)
    data = json.loads(res.stdout or b"{}")
    streams = []
    for s in data.get("streams", []):
        nb = s.get("nb_read_frames") if count_frames else None
        nb = nb if nb is not None else s.get("nb_frames")
        streams.append({
            "index": s.get("index"),
            "codec_type": s.get("codec_type"),
            "codec_name": s.get("codec_name"),
            "width": s.get("width"),
            "height": s.get("height"),
            "pix_fmt": s.get("pix_fmt"),
            "fps": _rate(s.get("avg_frame_rate")) or _rate(s.get("r_frame_rate"))
            if s.get("codec_type") == "video" else None,
            "nb_frames": int(nb) if nb not in (None, "N/A") else None,
            "duration_sec": float(s["duration"]) if s.get("duration") not in (None, "N/A") else None,
            "sample_rate": int(s["sample_rate"]) if s.get("sample_rate") else None,
            "channels": s.get("channels"),
        })
    fmt = data.get("format", {})

    def first(kind: str) -> dict:
        return next((s for s in streams if s["codec_type"] == kind), {})

    v, a, sub = first("video"), first("audio"), first("subtitle")
    dur = fmt.get("duration")
    return {
        "duration_sec": float(dur) if dur not in (None, "N/A") else None,
        "format_name": fmt.get("format_name"),
        "streams": streams,
        "width": v.get("width"), "height": v.get("height"), "fps": v.get("fps"),
        "nb_frames": v.get("nb_frames"), "video_codec": v.get("codec_name"), "pix_fmt": v.get("pix_fmt"),
        "video_duration_sec": v.get("duration_sec"),
        "audio_codec": a.get("codec_name"), "sample_rate": a.get("sample_rate"),
        "audio_duration_sec": a.get("duration_sec"),
        "subtitle_codec": sub.get("codec_name"),
        "has_video": bool(v), "has_audio": bool(a), "has_subtitles": bool(sub),
    }


def final_stream_info(frames: int, width: int, height: int, fps: int = FPS) -> dict:
    """What ``probe`` would say of a stream written by ``encode.frame_writer`` (not lossless)."""
    return {"has_video": True, "video_codec": "h264", "pix_fmt": "yuv420p", "fps": float(fps),
            "nb_frames": frames, "width": width, "height": height,
            "video_duration_sec": frames / fps, "duration_sec": frames / fps}


def audio_seconds(audio: Path) -> float | None:
    try:  # a WAV, from the tts step: read its header, no ffprobe
        info = sf.info(str(audio))
        return info.frames / info.samplerate if info.frames else None
    except (RuntimeError, sf.LibsndfileError):
        a = probe(audio)
        return (a["audio_duration_sec"] or a["duration_sec"]) if a["has_audio"] else None


_EBUR128 = re.compile(r"Integrated loudness:\s+I:\s+(-?[\d.]+|-inf) LUFS.*?Peak:\s+(-?[\d.]+|-inf) dBFS", re.S)


def _gain_filter(audio: Path, target_lufs: float, *, timeout: float,
                 cancelled: Callable[[], bool] | None) -> str:
    """Filters bringing the speech to ``target_lufs`` (EBU R128): one gain, and a limiter only
    if that gain would push a peak past -1.5 dBFS. (Measured with ffmpeg's ebur128, a third of
    the time of loudnorm's pass, and applied without loudnorm's 192 kHz resampling.)"""
    res = proc.run(["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-i", str(audio), "-map", "0:a:0",
                    "-af", "ebur128=peak=sample", "-f", "null", "-"], timeout=timeout, cancelled=cancelled)
    m = _EBUR128.search(res.stderr.decode("utf-8", "replace").rsplit("Summary:", 1)[-1])
    if not m:
        raise ToolFailed("ffmpeg ebur128 printed no measurement")
    if m.group(1) == "-inf" or float(m.group(1)) < -70:  # digital silence: nothing to normalise
        return ""
    gain = target_lufs - float(m.group(1))
    peak = -math.inf if m.group(2) == "-inf" else float(m.group(2))
    limit = f"alimiter=limit={10 ** (-1.5 / 20):.4f}:level=false," if peak + gain > -1.5 else ""
    return f"volume={gain:.2f}dB,{limit}"


def mux(
    video: Path,
    audio: Path,
    out_mp4: Path,
    srt: Path | None,
    *,
    fps: int = FPS,
    target_lufs: float = OUTPUT_LUFS,
    video_filter: str | None = None,
    final_stream: dict | None = None,
    cancelled: Callable[[], bool] | None = None,
    timeout: float = 600.0,
) -> dict:
    """Final MP4: H.264 yuv420p at ``fps`` + mono AAC 48 kHz at ``target_lufs``, faststart, and a
    mov_text subtitle track from ``srt``; the video lasts round(audio duration x fps) frames.

    A video that already is that stream (H.264 yuv420p, ``fps``, the right number of frames:
    what the talking-head steps encode) is copied, not encoded again. Anything else is encoded
    here, its last frame held or cut to the speech's length, through ``video_filter`` if given;
    ``video_stream`` in the answer says which happened and why. ``final_stream``: what the step
    that encoded the video says of it (``final_stream_info``), instead of probing it again."""
    a_dur = audio_seconds(audio)
    if not a_dur:
        raise ToolFailed(f"{Path(audio).name} has no audio stream to mux")
    vinfo = final_stream or probe(video)
    if not vinfo["has_video"]:
        raise ToolFailed(f"{Path(video).name} has no video stream to mux")
    v_dur = vinfo["video_duration_sec"] or vinfo["duration_sec"] or 0.0
    n = max(1, int(round(a_dur * fps)))
    hold = max(0.0, a_dur - v_dur) + 2.0 / fps
    frames = vinfo["nb_frames"]
    final = (vinfo["video_codec"] == "h264" and vinfo["pix_fmt"] == "yuv420p"
             and vinfo["fps"] is not None and abs(vinfo["fps"] - fps) < 1e-3
             and frames is not None and abs(frames - n) <= 1)
    if video_filter:
        why = "encoded here: burning in the subtitles"
    elif final:
        why = None
    else:
        count = f"{frames} frames" if frames is not None else "an unknown number of frames"
        why = (f"encoded here: the input is {vinfo['video_codec']} {vinfo['pix_fmt']}, "
               f"{count} at {vinfo['fps']} fps (wanted h264 yuv420p, {n} at {fps})")
    norm = _gain_filter(audio, target_lufs, timeout=timeout, cancelled=cancelled)
    fc = f"[1:a:0]{norm}aresample=48000,atrim=end={a_dur:.4f},asetpts=PTS-STARTPTS[a]"
    if why:
        extra = f",{video_filter}" if video_filter else ""
        fc = (f"[0:v:0]fps={fps},tpad=stop_mode=clone:stop_duration={hold:.3f},"
              f"trim=end_frame={n},setpts=PTS-STARTPTS{extra},format=yuv420p[v];" + fc)
    has_subs = srt is not None and Path(srt).exists() and Path(srt).read_text(
        encoding="utf-8").strip() != ""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", str(video),
           "-i", str(audio)]
    if has_subs:
        cmd += ["-i", str(srt)]
    cmd += ["-filter_complex", fc, "-map", "[v]" if why else "0:v:0", "-map", "[a]"]
    if has_subs:
        cmd += ["-map", "2:s:0", "-c:s", "mov_text", "-metadata:s:s:0", "language=eng"]
    out_mp4 = Path(out_mp4)
    out_mp4.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_mp4.with_name(f".{out_mp4.stem}.tmp.mp4")
    cmd += [*FINAL, "-r", str(fps)] if why else ["-c:v", "copy"]
    # Mono speech: one AAC channel; the fast coder is 3x quicker than the default at no audible
    # cost for a voice.
    cmd += ["-c:a", "aac", "-aac_coder", "fast", "-b:a", "128k", "-ar", "48000", "-ac", "1",
            "-movflags", "+faststart", str(tmp)]
    try:
        proc.run(cmd, timeout=timeout, cancelled=cancelled)
        os.replace(tmp, out_mp4)
    finally:
        tmp.unlink(missing_ok=True)
    info = probe(out_mp4)
    return {
        "duration_sec": info["duration_sec"],
        "width": info["width"],
        "height": info["height"],
        "fps": info["fps"],
        "has_subtitles": info["has_subtitles"],
        "video_duration_sec": info["video_duration_sec"],
        "audio_duration_sec": info["audio_duration_sec"],
        "speech_duration_sec": round(a_dur, 3),
        "nb_frames": info["nb_frames"],
        "video_codec": info["video_codec"],
        "audio_codec": info["audio_codec"],
        "subtitle_codec": info["subtitle_codec"],
        "video_stream": why or "copied: already the final H.264 stream",
    }
