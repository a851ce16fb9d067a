// What a finished job changes beyond its own row: the profile it trained, the video it made.
// It runs in the transaction that records the job's end, so no client ever sees a job finished
// before its outputs are there (a "succeeded" video job whose file is not yet downloadable).
import type { Kysely } from "kysely";
import { ProfileAssets, VideoResult } from "@likeness/contracts";
import type { Database, JobRow } from "../db/types.js";
import { ProfilesRepository } from "../profiles/profiles.repository.js";
import { VideosRepository } from "../videos/videos.repository.js";

export async function applyJobOutcome(tx: Kysely<Database>, job: JobRow): Promise<void> {
  if (job.kind === "train_profile") {
    const profiles = new ProfilesRepository(tx);
    if (job.state === "succeeded") {
      await profiles.setTrainState(job.profile_id, job.id, "trained", ProfileAssets.parse(job.result));
    } else if (job.state === "failed") {
      await profiles.setTrainState(job.profile_id, job.id, "failed");
    } else {
      // Cancelled: back to what the profile was before this training.
      const profile = await profiles.findById(job.profile_id);
      await profiles.setTrainState(job.profile_id, job.id, profile?.assets ? "trained" : "draft");
    }
  } else if (job.state === "succeeded") {
    const videos = new VideosRepository(tx);
    const video = await videos.findByJob(job.id);
    if (video) await videos.setResult(video.id, VideoResult.parse(job.result));
  }
}
