// All SQL for jobs, job_steps and artifacts. Reads of a user's resource filter by user_id.
import { sql, type Kysely } from "kysely";
import {
  stepsFor,
  type Job,
  type JobKind,
  type JobStep,
  type Pipeline,
  type StepName,
} from "@likeness/contracts";
import type { Database, JobRow, JobStateValue, JobStepRow, ArtifactRow } from "../db/types.js";

type Db = Kysely<Database>;

export const TERMINAL_JOB_STATES: readonly JobStateValue[] = ["succeeded", "failed", "cancelled"];
export const isTerminal = (state: JobStateValue): boolean => TERMINAL_JOB_STATES.includes(state);

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);
export const json = (v: unknown): string => JSON.stringify(v);

export interface NewJobInput {
  userId: string;
  kind: JobKind;
  profileId: string;
  request: unknown;
  steps: readonly StepName[];
}

/** Inserts the job row and one pending job_steps row per step. Call inside a transaction. */
export async function insertJob(db: Db, input: NewJobInput): Promise<JobRow> {
  const job = await db
    .insertInto("jobs")
    .values({
      user_id: input.userId,
      kind: input.kind,
      profile_id: input.profileId,
      state: "queued",
      attempt: 1,
      request: json(input.request),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  await db
    .insertInto("job_steps")
    .values(input.steps.map((name) => ({ job_id: job.id, name, state: "pending" as const })))
    .execute();
  return job;
}

export function findJob(db: Db, jobId: string, userId?: string): Promise<JobRow | undefined> {
  let q = db.selectFrom("jobs").selectAll().where("id", "=", jobId);
  if (userId !== undefined) q = q.where("user_id", "=", userId);
  return q.executeTakeFirst();
}

export function lockJob(db: Db, jobId: string): Promise<JobRow | undefined> {
  return db.selectFrom("jobs").selectAll().where("id", "=", jobId).forUpdate().executeTakeFirst();
}

export function findSteps(db: Db, jobId: string): Promise<JobStepRow[]> {
  return db.selectFrom("job_steps").selectAll().where("job_id", "=", jobId).execute();
}

export function findStep(db: Db, jobId: string, name: StepName): Promise<JobStepRow | undefined> {
  return db
    .selectFrom("job_steps")
    .selectAll()
    .where("job_id", "=", jobId)
    .where("name", "=", name)
    .executeTakeFirst();
}

export async function updateStep(
  db: Db,
  jobId: string,
  name: StepName,
  values: Partial<{
    state: JobStepRow["state"];
    engine: string | null;
    attempt: number | null;
    started_at: Date | string | null;
    finished_at: Date | string | null;
    duration_ms: number | null;
    reused: boolean;
    error: string | null;
  }>,
): Promise<void> {
  await db.updateTable("job_steps").set(values).where("job_id", "=", jobId).where("name", "=", name).execute();
}

/** Steps still pending/running when the job ends: cancelled (cancel) or failed (running, on failure). */
export async function closeOpenSteps(
  db: Db,
  jobId: string,
  outcome: "failed" | "cancelled",
  at: string,
): Promise<void> {
  await db
    .updateTable("job_steps")
    .set({ state: outcome, finished_at: at })
    .where("job_id", "=", jobId)
    .where("state", outcome === "cancelled" ? "in" : "=", outcome === "cancelled" ? ["pending", "running"] : "running")
    .execute();
}

export async function upsertArtifact(
  db: Db,
  a: { userId: string; jobId: string; step: string; key: string; kind: string; contentType: string; bytes: number; engine: string; meta: unknown },
): Promise<void> {
  await db
    .insertInto("artifacts")
    .values({
      user_id: a.userId,
      job_id: a.jobId,
      step: a.step,
      key: a.key,
      kind: a.kind,
      content_type: a.contentType,
      bytes: a.bytes,
      engine: a.engine,
      meta: a.meta === undefined ? null : json(a.meta),
    })
    .onConflict((oc) =>
      oc.column("key").doUpdateSet((eb) => ({
        kind: eb.ref("excluded.kind"),
        content_type: eb.ref("excluded.content_type"),
        bytes: eb.ref("excluded.bytes"),
        engine: eb.ref("excluded.engine"),
        meta: eb.ref("excluded.meta"),
      })).where("artifacts.job_id", "=", a.jobId),
    )
    .execute();
}

export function findArtifacts(db: Db, jobId: string): Promise<ArtifactRow[]> {
  return db.selectFrom("artifacts").selectAll().where("job_id", "=", jobId).orderBy("created_at").orderBy("key").execute();
}

/**
 * Dispatch writes the row before the command goes out: the attempt must still be current and
 * wanted (queued, or running when a restarted api re-dispatches). Undefined when it is not.
 */
export function markDispatched(db: Db, jobId: string, attempt: number): Promise<{ id: string } | undefined> {
  return db
    .updateTable("jobs")
    .set((eb) => ({
      state: eb.case().when("state", "=", "running").then("running" as const).else("queued" as const).end(),
    }))
    .where("id", "=", jobId)
    .where("attempt", "=", attempt)
    .where("state", "in", ["queued", "running"])
    .returning("id")
    .executeTakeFirst();
}

/** Retry: attempt + 1, job back to queued, every step that did not succeed back to pending. */
export async function resetForRetry(db: Db, job: JobRow): Promise<JobRow> {
  const next = await db
    .updateTable("jobs")
    .set({ state: "queued", attempt: job.attempt + 1, result: null, error: null, started_at: null, finished_at: null })
    .where("id", "=", job.id)
    .where("attempt", "=", job.attempt)
    .returningAll()
    .executeTakeFirstOrThrow();
  await db
    .updateTable("job_steps")
    .set({ state: "pending", error: null, started_at: null, finished_at: null, duration_ms: null, reused: false })
    .where("job_id", "=", job.id)
    .where("state", "<>", "succeeded")
    .execute();
  return next;
}

/** Non-terminal jobs (to re-drive after a restart) and recently finished ones (to finalize). */
export function findJobsToRecover(db: Db, finishedWithinHours: number): Promise<JobRow[]> {
  return db
    .selectFrom("jobs")
    .selectAll()
    .where((eb) =>
      eb.or([
        eb("state", "in", ["queued", "running"]),
        eb("finished_at", ">", sql<Date>`now() - make_interval(hours => ${finishedWithinHours})`),
      ]),
    )
    .orderBy("created_at")
    .execute();
}

export function videoIdOfJob(db: Db, jobId: string): Promise<string | null> {
  return db
    .selectFrom("videos")
    .select("id")
    .where("job_id", "=", jobId)
    .executeTakeFirst()
    .then((r) => r?.id ?? null);
}

/** The public Job: steps in workflow order, each with its artifacts and engine. */
export async function loadJobView(db: Db, jobId: string, userId?: string): Promise<Job | undefined> {
  const job = await findJob(db, jobId, userId);
  if (!job) return undefined;
  const [steps, artifacts, videoId] = await Promise.all([
    findSteps(db, job.id),
    findArtifacts(db, job.id),
    videoIdOfJob(db, job.id),
  ]);
  const request = (job.request ?? {}) as { pipeline?: Pipeline };
  const order = stepsFor(job.kind, request.pipeline) as readonly string[];
  steps.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
  return {
    id: job.id,
    kind: job.kind,
    state: job.state,
    attempt: job.attempt,
    profileId: job.profile_id,
    videoId,
    steps: steps.map((s): JobStep => ({
      name: s.name as StepName,
      state: s.state,
      engine: s.engine,
      attempt: s.attempt,
      startedAt: iso(s.started_at),
      finishedAt: iso(s.finished_at),
      durationMs: s.duration_ms,
      reused: s.reused,
      error: (s.error as JobStep["error"]) ?? null,
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
