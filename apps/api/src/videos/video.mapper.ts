import type { Script, Video } from "@likeness/contracts";
import type { VideoWithState } from "./videos.repository.js";

export function toVideo(v: VideoWithState): Video {
  return {
    id: v.id,
    profileId: v.profile_id,
    jobId: v.job_id,
    state: v.state,
    pipeline: v.pipeline as Video["pipeline"],
    width: v.width,
    height: v.height,
    subtitles: v.subtitles,
    script: (v.script as Script | null) ?? null,
    durationSec: v.duration_sec,
    sourceVideoId: v.source_video_id,
    createdAt: v.created_at.toISOString(),
  };
}
