// The command an attempt sends to the worker, built from its rows. One builder for the workflow's
// dispatch node and for the reconciler, so that a resent command is the one first sent.
import type { Kysely } from "kysely";
import {
  GenerateVideoPayload,
  PROTOCOL_VERSION,
  ProfileAssets,
  TrainProfilePayload,
  type JobCommand,
} from "@likeness/contracts";
import type { Database, JobRow } from "../db/types.js";
import { ProfilesRepository } from "../profiles/profiles.repository.js";
import { ProfileInputsRepository } from "../profiles/profile-inputs.repository.js";
import { VideosRepository } from "../videos/videos.repository.js";

/** What a job needs is gone (deleted meanwhile): nothing to send. */
export class JobGone extends Error {
  override name = "JobGone";
}

function commandBase(job: JobRow) {
  return {
    v: PROTOCOL_VERSION,
    jobId: job.id,
    userId: job.user_id,
    attempt: job.attempt,
    // Fixed when the job was created (request over profile defaults), checked against the workers' adverts then.
    engines: (job.engines ?? {}) as JobCommand["engines"],
    createdAt: new Date().toISOString(),
  };
}

async function trainProfileCommand(db: Kysely<Database>, job: JobRow): Promise<JobCommand> {
  const profile = await new ProfilesRepository(db).findForUser(job.user_id, job.profile_id);
  if (!profile) throw new JobGone(`profile ${job.profile_id} is gone`);
  const inputs = await new ProfileInputsRepository(db).listForProfiles([profile.id]);
  const voice = inputs.find((i) => i.kind === "voice");
  const payload = TrainProfilePayload.parse({
    profileId: profile.id,
    triggerWord: profile.trigger_word,
    images: inputs.filter((i) => i.kind === "image").map((i) => ({ key: i.key, name: i.original_name })),
    voiceSample: voice ? { key: voice.key, name: voice.original_name } : undefined,
  });
  return { ...commandBase(job), kind: "train_profile", payload };
}

async function generateVideoCommand(db: Kysely<Database>, job: JobRow): Promise<JobCommand> {
  const videos = new VideosRepository(db);
  const video = await videos.findByJob(job.id);
  const profile = await new ProfilesRepository(db).findForUser(job.user_id, job.profile_id);
  if (!video || !profile) throw new JobGone(`video or profile of job ${job.id} is gone`);
  // An edit reuses the steps of its source's job whose inputs did not change (while the source exists).
  const source = video.source_video_id ? await videos.find(video.source_video_id, job.user_id) : undefined;
  const payload = GenerateVideoPayload.parse({
    profileId: profile.id,
    profile: ProfileAssets.parse({ ...(profile.assets as object), triggerWord: profile.trigger_word }),
    script: video.script,
    pipeline: video.pipeline,
    width: video.width,
    height: video.height,
    fps: 25,
    subtitles: video.subtitles,
    ...(source ? { reuseFrom: source.job_id } : {}),
  });
  return { ...commandBase(job), kind: "generate_video", payload };
}

/** The command of the job's current attempt. Throws JobGone when its profile or video is gone. */
export function buildJobCommand(db: Kysely<Database>, job: JobRow): Promise<JobCommand> {
  switch (job.kind) {
    case "train_profile":
      return trainProfileCommand(db, job);
    case "generate_video":
      return generateVideoCommand(db, job);
  }
}
