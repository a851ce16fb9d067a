// All SQL for videos. Reads filter by user_id: another user's video does not exist.
import type { Kysely } from "kysely";
import type { Script, Video } from "@likeness/contracts";
import type { Database, JobStateValue, VideoRow } from "../db/types.js";
import { json } from "../jobs/jobs.repository.js";

type Db = Kysely<Database>;

export type VideoWithState = VideoRow & { state: JobStateValue };

export async function insertVideo(
  db: Db,
  v: { userId: string; profileId: string; jobId: string; pipeline: string; width: number; height: number },
): Promise<VideoRow> {
  return db
    .insertInto("videos")
    .values({
      user_id: v.userId,
      profile_id: v.profileId,
      job_id: v.jobId,
      pipeline: v.pipeline,
      width: v.width,
      height: v.height,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

function withState(db: Db) {
  return db
    .selectFrom("videos")
    .innerJoin("jobs", "jobs.id", "videos.job_id")
    .selectAll("videos")
    .select("jobs.state as state");
}

export function findVideo(db: Db, videoId: string, userId?: string): Promise<VideoWithState | undefined> {
  let q = withState(db).where("videos.id", "=", videoId);
  if (userId !== undefined) q = q.where("videos.user_id", "=", userId);
  return q.executeTakeFirst();
}

export function findVideoByJob(db: Db, jobId: string): Promise<VideoWithState | undefined> {
  return withState(db).where("videos.job_id", "=", jobId).executeTakeFirst();
}

export function listVideos(db: Db, userId: string, limit = 100): Promise<VideoWithState[]> {
  return withState(db)
    .where("videos.user_id", "=", userId)
    .orderBy("videos.created_at", "desc")
    .limit(limit)
    .execute();
}

export async function setVideoScript(db: Db, videoId: string, script: Script): Promise<void> {
  await db.updateTable("videos").set({ script: json(script) }).where("id", "=", videoId).execute();
}

export async function setVideoResult(db: Db, videoId: string, r: { videoKey: string; durationSec: number }): Promise<void> {
  await db
    .updateTable("videos")
    .set({ video_key: r.videoKey, duration_sec: r.durationSec })
    .where("id", "=", videoId)
    .execute();
}

export function toVideo(v: VideoWithState): Video {
  return {
    id: v.id,
    profileId: v.profile_id,
    jobId: v.job_id,
    state: v.state,
    pipeline: v.pipeline as Video["pipeline"],
    width: v.width,
    height: v.height,
    script: (v.script as Script | null) ?? null,
    durationSec: v.duration_sec,
    createdAt: v.created_at.toISOString(),
  };
}
