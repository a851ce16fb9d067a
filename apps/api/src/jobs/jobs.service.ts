// Decisions about jobs: who may train, retry and cancel what, and in which order the rows, the
// workflow and Redis are touched. Routes call this; SQL lives in the repositories.
import { randomUUID } from "node:crypto";
import type { Kysely } from "kysely";
import type { Redis } from "ioredis";
import type { FastifyBaseLogger } from "fastify";
import {
  PROTOCOL_VERSION,
  TRAIN_PROFILE_STEPS,
  redisKeys,
  type Job,
  type JobEvent,
} from "@likeness/contracts";
import type { Database, JobRow } from "../db/types.js";
import { conflict, notFound } from "../http/errors.js";
import { findJob, insertJob, isTerminal, loadJobView, lockJob, resetForRetry } from "./jobs.repository.js";
import { findProfile, findProfileInputs, markProfileQueued, setProfileTrainState } from "./job-profiles.repository.js";
import type { JobMetrics } from "./jobs.metrics.js";
import type { WorkflowRunner } from "../workflows/workflow.runner.js";
import type { EventsConsumer } from "../bus/events.consumer.js";

/** The cancel flag lives this long; the worker checks it before and inside each step. */
export const CANCEL_TTL_SECONDS = 24 * 60 * 60;

export interface JobsRuntime {
  db: Kysely<Database>;
  redis: Redis;
  prefix: string;
  runner: WorkflowRunner;
  consumer: EventsConsumer;
  metrics: JobMetrics;
  log: FastifyBaseLogger;
}

type JobFinished = Extract<JobEvent, { type: "job_finished" }>;

export class JobsService {
  private readonly keys;

  constructor(private readonly rt: JobsRuntime) {
    this.keys = redisKeys(rt.prefix);
  }

  async getJob(userId: string, jobId: string): Promise<Job> {
    const job = await loadJobView(this.rt.db, jobId, userId);
    if (!job) throw notFound("job");
    return job;
  }

  async trainProfile(userId: string, profileId: string): Promise<Job> {
    const profile = await findProfile(this.rt.db, profileId, userId);
    if (!profile) throw notFound("profile");
    const inputs = await findProfileInputs(this.rt.db, profile.id);
    if (!inputs.some((i) => i.kind === "image") || !inputs.some((i) => i.kind === "voice")) {
      throw conflict("the profile needs at least one photo and a voice sample before it can be trained");
    }
    if (profile.state === "queued" || profile.state === "training") {
      throw conflict(`the profile is already being trained (job ${profile.train_job_id})`);
    }
    const job = await this.rt.db.transaction().execute(async (tx) => {
      const row = await insertJob(tx, {
        userId,
        kind: "train_profile",
        profileId: profile.id,
        request: { profileId: profile.id },
        steps: TRAIN_PROFILE_STEPS,
      });
      await markProfileQueued(tx, profile.id, row.id);
      return row;
    });
    await this.startWorkflow(job);
    return this.getJob(userId, job.id);
  }

  /** Starts the attempt's workflow (script, then dispatch). If it cannot be queued, the job fails. */
  async startWorkflow(job: JobRow): Promise<void> {
    try {
      await this.rt.runner.start(job);
    } catch (err) {
      this.rt.log.error({ err, jobId: job.id }, "could not start the job's workflow");
      await this.rt.consumer.ingest(
        this.finishedEvent(job, "failed", {
          code: "internal",
          message: "the job could not be queued; retry it",
          retryable: true,
        }),
      );
      if (job.kind === "train_profile") await setProfileTrainState(this.rt.db, job.profile_id, job.id, "failed");
    }
  }

  /** A failed or cancelled job runs again as attempt + 1; steps that succeeded are reused. */
  async retry(userId: string, jobId: string): Promise<Job> {
    const job = await findJob(this.rt.db, jobId, userId);
    if (!job) throw notFound("job");
    if (job.state !== "failed" && job.state !== "cancelled") {
      throw conflict(`only a failed or cancelled job can be retried; this one is ${job.state}`);
    }
    const next = await this.rt.db.transaction().execute(async (tx) => {
      const locked = await lockJob(tx, job.id);
      if (!locked || locked.attempt !== job.attempt || (locked.state !== "failed" && locked.state !== "cancelled")) {
        throw conflict("the job changed meanwhile; reload it");
      }
      const row = await resetForRetry(tx, locked);
      if (row.kind === "train_profile") await markProfileQueued(tx, row.profile_id, row.id);
      return row;
    });
    await this.rt.redis.del(this.keys.cancel(job.id)); // the new attempt must not see the old cancel
    this.rt.metrics.jobRetries.inc({ kind: job.kind });
    await this.startWorkflow(next);
    return this.getJob(userId, job.id);
  }

  /**
   * Sets the cancel flag the worker checks. A job no worker has started yet (still queued) is
   * cancelled at once: the api records its own job_finished(cancelled), which ends the workflow.
   */
  async cancel(userId: string, jobId: string): Promise<Job> {
    const job = await findJob(this.rt.db, jobId, userId);
    if (!job) throw notFound("job");
    if (isTerminal(job.state)) throw conflict(`the job has already ended (${job.state})`);
    await this.rt.redis.set(this.keys.cancel(job.id), String(job.attempt), "EX", CANCEL_TTL_SECONDS);
    if (job.state === "queued") {
      await this.rt.consumer.ingest(
        this.finishedEvent(job, "cancelled", {
          code: "cancelled",
          message: "cancelled before a worker started it",
          retryable: true,
        }),
      );
    }
    return this.getJob(userId, job.id);
  }

  private finishedEvent(job: JobRow, state: "failed" | "cancelled", error: NonNullable<JobFinished["error"]>): JobFinished {
    return {
      v: PROTOCOL_VERSION,
      type: "job_finished",
      eventId: randomUUID(),
      jobId: job.id,
      attempt: job.attempt,
      at: new Date().toISOString(),
      state,
      error,
    };
  }
}
