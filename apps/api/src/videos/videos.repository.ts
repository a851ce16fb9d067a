// All SQL on `videos`. Reads of a user's video filter by user_id: another user's video does not exist.
import type { Kysely } from "kysely";
import type { Script, SubtitleMode } from "@likeness/contracts";
import { json } from "../db/db.js";
import type { Database, JobStateValue, VideoRow } from "../db/types.js";

/** A video with the state of its job (a video is as far along as the job that makes it). */
export type VideoWithState = VideoRow & { state: JobStateValue };

export class VideosRepository {
  constructor(private readonly db: Kysely<Database>) {}

  insert(v: {
    userId: string;
    profileId: string;
    jobId: string;
    pipeline: string;
    width: number;
    height: number;
    subtitles: SubtitleMode;
    /** Known at once when the narration is given; else the script step writes it. */
    script: Script | null;
    /** An edit: the video it was made from. */
    sourceVideoId: string | null;
  }): Promise<VideoRow> {
    return this.db
      .insertInto("videos")
      .values({
        user_id: v.userId,
        profile_id: v.profileId,
        job_id: v.jobId,
        pipeline: v.pipeline,
        width: v.width,
        height: v.height,
        subtitles: v.subtitles,
        script: v.script ? json(v.script) : null,
        source_video_id: v.sourceVideoId,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  /** The newest soft-subtitles file (SubRip) of a job, if its mux step wrote one. */
  async subtitlesKey(jobId: string): Promise<string | null> {
    const row = await this.db
      .selectFrom("artifacts")
      .select("key")
      .where("job_id", "=", jobId)
      .where("kind", "=", "subtitles")
      .orderBy("created_at", "desc")
      .executeTakeFirst();
    return row?.key ?? null;
  }

  private withState() {
    return this.db
      .selectFrom("videos")
      .innerJoin("jobs", "jobs.id", "videos.job_id")
      .selectAll("videos")
      .select("jobs.state as state");
  }

  find(videoId: string, userId?: string): Promise<VideoWithState | undefined> {
    let q = this.withState().where("videos.id", "=", videoId);
    if (userId !== undefined) q = q.where("videos.user_id", "=", userId);
    return q.executeTakeFirst();
  }

  findByJob(jobId: string): Promise<VideoWithState | undefined> {
    return this.withState().where("videos.job_id", "=", jobId).executeTakeFirst();
  }

  /** The id of the video a job makes, or null (a train_profile job). */
  async idForJob(jobId: string): Promise<string | null> {
    const r = await this.db.selectFrom("videos").select("id").where("job_id", "=", jobId).executeTakeFirst();
    return r?.id ?? null;
  }

  listForUser(userId: string, limit = 100): Promise<VideoWithState[]> {
    return this.withState()
      .where("videos.user_id", "=", userId)
      .orderBy("videos.created_at", "desc")
      .limit(limit)
      .execute();
  }

  async setScript(videoId: string, script: Script): Promise<void> {
    await this.db.updateTable("videos").set({ script: json(script) }).where("id", "=", videoId).execute();
  }

  async setResult(videoId: string, r: { videoKey: string; durationSec: number }): Promise<void> {
    await this.db
      .updateTable("videos")
      .set({ video_key: r.videoKey, duration_sec: r.durationSec })
      .where("id", "=", videoId)
      .execute();
  }
}
