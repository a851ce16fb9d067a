// Records one worker event in Postgres, in ONE transaction: the dedupe row (processed_events)
// and every change it implies (job_steps, jobs, artifacts, profiles). A duplicate does nothing.
import type { Kysely } from "kysely";
import {
  ProfileAssets,
  VideoResult,
  type JobEvent,
  type StepError,
  type StepName,
} from "@likeness/contracts";
import type { Database, JobRow } from "../db/types.js";
import {
  closeOpenSteps,
  findStep,
  isTerminal,
  json,
  lockJob,
  updateStep,
  upsertArtifact,
} from "../jobs/jobs.repository.js";
import { setProfileTrainState } from "../jobs/job-profiles.repository.js";
import type { JobMetrics } from "../jobs/jobs.metrics.js";

export type RecordOutcome =
  | { status: "duplicate" }
  | { status: "unknown_job" }
  /** Recorded but changed nothing: an older attempt's event, or the job had already ended. */
  | { status: "stale"; job: JobRow }
  | { status: "applied"; job: JobRow };

type JobError = StepError & { step?: StepName };

export async function recordEvent(db: Kysely<Database>, event: JobEvent, metrics?: JobMetrics): Promise<RecordOutcome> {
  return db.transaction().execute(async (tx): Promise<RecordOutcome> => {
    const inserted = await tx
      .insertInto("processed_events")
      .values({ event_id: event.eventId })
      .onConflict((oc) => oc.column("event_id").doNothing())
      .returning("event_id")
      .executeTakeFirst();
    if (!inserted) return { status: "duplicate" };

    const job = await lockJob(tx, event.jobId);
    if (!job) return { status: "unknown_job" };
    if (job.attempt !== event.attempt || isTerminal(job.state)) return { status: "stale", job };

    switch (event.type) {
      case "job_started": {
        const updated = await tx
          .updateTable("jobs")
          .set({ state: "running", started_at: job.started_at ?? event.at })
          .where("id", "=", job.id)
          .returningAll()
          .executeTakeFirstOrThrow();
        if (job.kind === "train_profile") await setProfileTrainState(tx, job.profile_id, job.id, "training");
        return { status: "applied", job: updated };
      }
      case "step_started": {
        await updateStep(tx, job.id, event.step, {
          state: "running",
          engine: event.engine,
          attempt: event.attempt,
          started_at: event.at,
          finished_at: null,
          duration_ms: null,
          error: null,
        });
        const updated = await markRunning(tx, job, event.at);
        return { status: "applied", job: updated };
      }
      case "step_succeeded": {
        const step = await findStep(tx, job.id, event.step);
        await updateStep(tx, job.id, event.step, {
          state: "succeeded",
          engine: event.engine,
          attempt: event.attempt,
          started_at: step?.started_at ?? new Date(Date.parse(event.at) - event.durationMs).toISOString(),
          finished_at: event.at,
          duration_ms: Math.round(event.durationMs),
          reused: event.reused,
          error: null,
        });
        for (const a of event.artifacts) {
          await upsertArtifact(tx, {
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
        return { status: "applied", job: await markRunning(tx, job, event.at) };
      }
      case "step_failed": {
        const step = await findStep(tx, job.id, event.step);
        await updateStep(tx, job.id, event.step, {
          state: event.error.code === "cancelled" ? "cancelled" : "failed",
          engine: event.engine,
          attempt: event.attempt,
          started_at: step?.started_at ?? new Date(Date.parse(event.at) - event.durationMs).toISOString(),
          finished_at: event.at,
          duration_ms: Math.round(event.durationMs),
          error: json(event.error),
        });
        metrics?.stepFailures.inc({ step: event.step, code: event.error.code });
        metrics?.stepDuration.observe(
          { step: event.step, engine: event.engine, outcome: "failed", reused: "false" },
          event.durationMs / 1000,
        );
        return { status: "applied", job: await markRunning(tx, job, event.at) };
      }
      case "job_finished": {
        let state = event.state;
        let error: JobError | null = event.error ?? null;
        let result: unknown = event.result ?? null;
        if (state === "succeeded") {
          const schema = job.kind === "train_profile" ? ProfileAssets : VideoResult;
          const parsed = schema.safeParse(result);
          if (parsed.success) {
            result = parsed.data;
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
          await closeOpenSteps(tx, job.id, state, event.at);
          if (error?.step) {
            // The failing step carries the error even when no step_failed event preceded it.
            const step = await findStep(tx, job.id, error.step);
            if (step && step.state !== "succeeded" && !step.error) {
              const { step: _name, ...stepError } = error;
              await updateStep(tx, job.id, error.step, {
                state: state === "cancelled" ? "cancelled" : "failed",
                finished_at: event.at,
                error: json(stepError),
              });
            }
          }
        }
        const updated = await tx
          .updateTable("jobs")
          .set({
            state,
            result: result === null ? null : json(result),
            error: error === null ? null : json(error),
            started_at: job.started_at ?? event.at,
            finished_at: event.at,
          })
          .where("id", "=", job.id)
          .returningAll()
          .executeTakeFirstOrThrow();
        return { status: "applied", job: updated };
      }
    }
  });
}

async function markRunning(tx: Kysely<Database>, job: JobRow, at: string): Promise<JobRow> {
  if (job.state === "running") return job;
  return tx
    .updateTable("jobs")
    .set({ state: "running", started_at: job.started_at ?? at })
    .where("id", "=", job.id)
    .returningAll()
    .executeTakeFirstOrThrow();
}
