// Records worker events in Postgres, a batch in ONE transaction: the dedupe rows (processed_events)
// and every change each event implies (job_steps, jobs, artifacts, profiles, videos). A duplicate does nothing.
import type { Kysely } from "kysely";
import type { FastifyBaseLogger } from "fastify";
import {
  isTerminal,
  ProfileAssets,
  storageKeys,
  VideoResult,
  type JobEvent,
  type StepError,
  type StepName,
} from "@likeness/contracts";
import { json } from "../db/db.js";
import { isJobKey } from "../storage/object-storage.js";
import type { Database, JobRow } from "../db/types.js";
import { JobsRepository } from "../jobs/jobs.repository.js";
import { ProfilesRepository } from "../profiles/profiles.repository.js";
import type { JobMetrics } from "../jobs/jobs.metrics.js";
import { applyJobOutcome } from "../jobs/job-outcome.js";
import { ProcessedEventsRepository } from "./processed-events.repository.js";

export type RecordOutcome =
  | { status: "duplicate" }
  | { status: "unknown_job" }
  /** Recorded but changed nothing: an older attempt's event, or the job had already ended. */
  | { status: "stale"; job: JobRow }
  | { status: "applied"; job: JobRow };

type JobError = StepError & { step?: StepName };

/** The storage keys of a ProfileAssets / VideoResult (every field named `…Key`) outside the job's folder. */
function foreignResultKeys(jobId: string, result: Record<string, unknown>): string[] {
  return Object.entries(result)
    .filter(([name, v]) => name.endsWith("Key") && typeof v === "string" && !isJobKey(jobId, v))
    .map(([, v]) => v as string);
}

/**
 * A step's `outputs` as the api keeps and shows them: every field named `…Key` (a storage key,
 * e.g. `videoKey`), at any depth, is left out; the step's artifacts already say where its files are.
 */
export function withoutStorageKeys(outputs: Record<string, unknown>): Record<string, unknown> {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v === null || typeof v !== "object") return v;
    return Object.fromEntries(Object.entries(v).filter(([name]) => !name.endsWith("Key")).map(([name, x]) => [name, strip(x)]));
  };
  return strip(outputs) as Record<string, unknown>;
}

/** When a step that ended at `at` after `durationMs` started (for a step whose step_started was never recorded). */
const startedBefore = (e: { at: string; durationMs: number }): string =>
  new Date(Date.parse(e.at) - e.durationMs).toISOString();

/** The step already succeeded in this attempt by running (not by reusing an earlier output). */
async function ranInAttempt(jobs: JobsRepository, jobId: string, event: { step: StepName; attempt: number }): Promise<boolean> {
  const step = await jobs.findStep(jobId, event.step);
  return step?.state === "succeeded" && step.attempt === event.attempt && !step.reused;
}

/**
 * A step event older than the end already recorded for that step: delivered out of order (an
 * entry taken over from a dead replica after later ones were read), it must not reopen the step.
 */
async function endedAfter(jobs: JobsRepository, jobId: string, event: { step: StepName; at: string }): Promise<boolean> {
  const finishedAt = (await jobs.findStep(jobId, event.step))?.finished_at;
  return finishedAt != null && Date.parse(event.at) < new Date(finishedAt).getTime();
}

/**
 * Records events in ONE transaction, in their order, and returns an outcome per event. The
 * statements every event would repeat are made once for the batch: the dedupe rows, the lock of
 * each job (in id order), the sign of life. A batch fails or commits whole.
 */
export async function recordEvents(
  db: Kysely<Database>,
  events: readonly JobEvent[],
  metrics?: JobMetrics,
  log?: Pick<FastifyBaseLogger, "warn">,
): Promise<RecordOutcome[]> {
  return db.transaction().execute(async (tx): Promise<RecordOutcome[]> => {
    const fresh = await new ProcessedEventsRepository(tx).markProcessed([...new Set(events.map((e) => e.eventId))]);
    const jobs = new JobsRepository(tx);
    const locked = new Map<string, JobRow>();
    for (const job of await jobs.lockMany([...new Set(events.filter((e) => fresh.has(e.eventId)).map((e) => e.jobId))])) {
      locked.set(job.id, job);
    }
    const seen = new Set<string>();
    const outcomes: RecordOutcome[] = [];
    for (const event of events) {
      // A second copy of an event in the same batch is a duplicate as well.
      if (!fresh.delete(event.eventId)) {
        outcomes.push({ status: "duplicate" });
        continue;
      }
      const outcome = await applyEvent(tx, jobs, locked.get(event.jobId), event, seen, metrics, log);
      if ("job" in outcome) locked.set(outcome.job.id, outcome.job);
      outcomes.push(outcome);
    }
    // A sign of life for the reconciler: these attempts are being worked on.
    await jobs.markSeen([...seen]);
    return outcomes;
  });
}

export async function recordEvent(
  db: Kysely<Database>,
  event: JobEvent,
  metrics?: JobMetrics,
  log?: Pick<FastifyBaseLogger, "warn">,
): Promise<RecordOutcome> {
  return (await recordEvents(db, [event], metrics, log))[0]!;
}

/** One event, in the batch's transaction, on its job's locked row (`job`). */
async function applyEvent(
  tx: Kysely<Database>,
  jobs: JobsRepository,
  job: JobRow | undefined,
  event: JobEvent,
  seen: Set<string>,
  metrics?: JobMetrics,
  log?: Pick<FastifyBaseLogger, "warn">,
): Promise<RecordOutcome> {
  if (!job) return { status: "unknown_job" };
  if (job.attempt !== event.attempt || isTerminal(job.state)) return { status: "stale", job };
  if ("step" in event && (await endedAfter(jobs, job.id, event))) return { status: "stale", job };
  seen.add(job.id);

  switch (event.type) {
    case "job_started": {
      const updated = await jobs.markRunning(job, event.at);
      if (job.kind === "train_profile") await new ProfilesRepository(tx).setTrainState(job.profile_id, job.id, "training");
      return { status: "applied", job: updated };
    }
    case "step_started": {
      await jobs.updateStep(job.id, event.step, {
        state: "running",
        engine: event.engine,
        licence: event.licence ?? null,
        non_commercial: event.nonCommercial ?? false,
        attempt: event.attempt,
        started_at: event.at,
        finished_at: null,
        duration_ms: null,
        error: null,
        outputs: null,
      });
      return { status: "applied", job: await jobs.markRunning(job, event.at) };
    }
    case "step_succeeded": {
      // A worker that resumed from an older checkpoint reports again, as reused, a step it had
      // run in this attempt: the record of the run stays (its engine, duration and outputs).
      if (event.reused && (await ranInAttempt(jobs, job.id, event))) return { status: "stale", job };
      await jobs.endStep(
        job.id,
        event.step,
        {
          state: "succeeded",
          engine: event.engine,
          attempt: event.attempt,
          finished_at: event.at,
          duration_ms: Math.round(event.durationMs),
          reused: event.reused,
          error: null,
          outputs: json(withoutStorageKeys(event.outputs)),
        },
        startedBefore(event),
      );
      for (const a of event.artifacts) {
        if (!isJobKey(job.id, a.key)) {
          log?.warn({ jobId: job.id, eventId: event.eventId, step: event.step, key: a.key }, "event names an artifact outside the job's folder: not recorded");
          continue;
        }
        await jobs.upsertArtifact({
          userId: job.user_id,
          jobId: job.id,
          step: event.step,
          key: a.key,
          kind: a.kind,
          contentType: a.contentType,
          bytes: a.bytes,
          engine: event.engine,
          meta: a.meta,
        });
      }
      metrics?.stepDuration.observe(
        { step: event.step, engine: event.engine, outcome: "succeeded", reused: String(event.reused) },
        event.durationMs / 1000,
      );
      return { status: "applied", job: await jobs.markRunning(job, event.at) };
    }
    case "step_failed": {
      await jobs.endStep(
        job.id,
        event.step,
        {
          state: event.error.code === "cancelled" ? "cancelled" : "failed",
          engine: event.engine,
          attempt: event.attempt,
          finished_at: event.at,
          duration_ms: Math.round(event.durationMs),
          error: json(event.error),
          outputs: null,
        },
        startedBefore(event),
      );
      metrics?.stepFailures.inc({ step: event.step, code: event.error.code });
      metrics?.stepDuration.observe(
        { step: event.step, engine: event.engine, outcome: "failed", reused: "false" },
        event.durationMs / 1000,
      );
      return { status: "applied", job: await jobs.markRunning(job, event.at) };
    }
    case "job_finished": {
      let state = event.state;
      let error: JobError | null = event.error ?? null;
      let result: unknown = event.result ?? null;
      if (state === "succeeded") {
        const schema = job.kind === "train_profile" ? ProfileAssets : VideoResult;
        const parsed = schema.safeParse(result);
        const foreign = parsed.success ? foreignResultKeys(job.id, parsed.data) : [];
        if (parsed.success && foreign.length === 0) {
          result = parsed.data;
        } else if (parsed.success) {
          log?.warn({ jobId: job.id, eventId: event.eventId, keys: foreign }, "job result names objects outside the job's folder: job failed");
          state = "failed";
          result = null;
          error = {
            code: "internal",
            message: `the worker's result names an object outside ${storageKeys.job(job.id)}: ${foreign[0]!.slice(0, 200)}`,
            retryable: false,
            step: "publish",
          };
        } else {
          state = "failed";
          result = null;
          error = {
            code: "internal",
            message: `the worker's result is not a valid ${job.kind === "train_profile" ? "ProfileAssets" : "VideoResult"}: ${parsed.error.issues[0]?.message ?? "invalid"}`,
            retryable: false,
            step: "publish",
          };
        }
      } else if (state === "failed" && !error) {
        error = { code: "internal", message: "the worker reported a failure without an error", retryable: true };
      } else if (state === "cancelled" && !error) {
        error = { code: "cancelled", message: "cancelled by the user", retryable: true };
      }

      if (state !== "succeeded") {
        await jobs.closeOpenSteps(job.id, state, event.at);
        if (error?.step) {
          // The failing step carries the error even when no step_failed event preceded it.
          const step = await jobs.findStep(job.id, error.step);
          if (step && step.state !== "succeeded" && !step.error) {
            const { step: _name, ...stepError } = error;
            await jobs.updateStep(job.id, error.step, {
              state: state === "cancelled" ? "cancelled" : "failed",
              finished_at: event.at,
              error: json(stepError),
            });
          }
        }
      }
      const finished = await jobs.finish(job, { state, result, error, at: event.at });
      await applyJobOutcome(tx, finished);
      return { status: "applied", job: finished };
    }
  }
}
