// The public Job: the row, its steps in workflow order, each with its artifacts and engine, and
// the video the job makes.
import { stepsFor, type Job, type JobStep, type Pipeline, type StepName } from "@likeness/contracts";
import type { Kysely } from "kysely";
import type { ArtifactRow, Database, JobRow, JobStepRow } from "../db/types.js";
import { VideosRepository } from "../videos/videos.repository.js";
import { JobsRepository } from "./jobs.repository.js";

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export async function loadJobView(db: Kysely<Database>, jobId: string, userId?: string): Promise<Job | undefined> {
  const jobs = new JobsRepository(db);
  const job = await jobs.find(jobId, userId);
  if (!job) return undefined;
  const [steps, artifacts, videoId] = await Promise.all([
    jobs.findSteps(job.id),
    jobs.findArtifacts(job.id),
    new VideosRepository(db).idForJob(job.id),
  ]);
  return toJob(job, steps, artifacts, videoId);
}

export function toJob(job: JobRow, steps: JobStepRow[], artifacts: ArtifactRow[], videoId: string | null): Job {
  const request = (job.request ?? {}) as { pipeline?: Pipeline };
  const order = stepsFor(job.kind, request.pipeline) as readonly string[];
  const ordered = [...steps].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
  return {
    id: job.id,
    kind: job.kind,
    state: job.state,
    attempt: job.attempt,
    profileId: job.profile_id,
    videoId,
    engines: (job.engines ?? {}) as Job["engines"],
    licenceNotices: (job.licence_notices ?? []) as Job["licenceNotices"],
    steps: ordered.map((s): JobStep => ({
      name: s.name as StepName,
      state: s.state,
      engine: s.engine,
      licence: s.licence,
      nonCommercial: s.non_commercial,
      attempt: s.attempt,
      startedAt: iso(s.started_at),
      finishedAt: iso(s.finished_at),
      durationMs: s.duration_ms,
      reused: s.reused,
      error: (s.error as JobStep["error"]) ?? null,
      outputs: (s.outputs as JobStep["outputs"]) ?? null,
      artifacts: artifacts
        .filter((a) => a.step === s.name)
        .map((a) => ({
          key: a.key,
          kind: a.kind,
          contentType: a.content_type,
          bytes: a.bytes,
          engine: a.engine,
          ...(a.meta ? { meta: a.meta as Record<string, unknown> } : {}),
        })),
    })),
    error: (job.error as Job["error"]) ?? null,
    createdAt: job.created_at.toISOString(),
    finishedAt: iso(job.finished_at),
  };
}
