# Generated from packages/contracts/schema/video-result.json by worker/scripts/generate_contracts.py.
# Do not edit: change packages/contracts and run `npm run contracts`.

from __future__ import annotations

from typing import NotRequired, TypedDict


class VideoResult(TypedDict):
    videoKey: str
    subtitlesKey: NotRequired[str]
    durationSec: float
    width: int
    height: int
    fps: float
