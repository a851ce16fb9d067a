// Decisions about jobs: who may train, retry and cancel what, and in which order the rows, the
// workflow and Redis are touched. Routes call this; SQL lives in the repositories.
import type { Kysely } from "kysely";
import type { Redis } from "ioredis";
import pLimit from "p-limit";
import type { FastifyBaseLogger } from "fastify";
import { isTerminal, TRAIN_PROFILE_STEPS, redisKeys, storageKeys, type Job } from "@likeness/contracts";
import type { Database, JobRow } from "../db/types.js";
import { conflict, notFound } from "../http/errors.js";
import { ProfilesRepository } from "../profiles/profiles.repository.js";
import { ProfileInputsRepository } from "../profiles/profile-inputs.repository.js";
import { jobFinishedEvent } from "../bus/job-finished.js";
import { isTransient } from "../resilience/transient-errors.js";
import type { EventsConsumer } from "../events/events.consumer.js";
import type { EngineMap, EnginesService } from "../engines/engines.service.js";
import type { LlmEngines } from "../llm/llm-engines.js";
import { RunnerClosed, type WorkflowRunner } from "../workflows/workflow.runner.js";
import { JobsRepository } from "./jobs.repository.js";
import { loadJobView } from "./job-view.js";
import type { JobMetrics } from "./jobs.metrics.js";

/**
 * Workflows started at once in the background after a 202: a burst of new jobs is accepted at
 * the speed of its inserts and dispatched at the speed of the workflows, without one holding up
 * the other's requests.
 */
const BACKGROUND_STARTS = 4;

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
  /** What the workers advertise: a job's engines are checked against it before it is queued. */
  engines: EnginesService;
  /** The script step's engines (a topic's default). */
  llm: LlmEngines;
}

export class JobsService {
  private readonly keys;
  private readonly jobs: JobsRepository;
  private readonly profiles: ProfilesRepository;
  private readonly starts = pLimit(BACKGROUND_STARTS);

  constructor(private readonly rt: JobsRuntime) {
    this.keys = redisKeys(rt.prefix);
    this.jobs = new JobsRepository(rt.db);
    this.profiles = new ProfilesRepository(rt.db);
  }

  /** Whether the user has this job (one row read: the full view is findJob). */
  async hasJob(userId: string, jobId: string): Promise<boolean> {
    return (await this.jobs.find(jobId, userId)) !== undefined;
  }

  /** The job as the user sees it, or undefined when it is not theirs (or does not exist). */
  findJob(userId: string, jobId: string): Promise<Job | undefined> {
    return loadJobView(this.rt.db, jobId, userId);
  }

  async getJob(userId: string, jobId: string): Promise<Job> {
    const job = await this.findJob(userId, jobId);
    if (!job) throw notFound("job");
    return job;
  }

  async trainProfile(userId: string, profileId: string, requested?: EngineMap): Promise<Job> {
    const profile = await this.profiles.findForUser(userId, profileId);
    if (!profile) throw notFound("profile");
    const inputs = await new ProfileInputsRepository(this.rt.db).listForProfiles([profile.id]);
    if (!inputs.some((i) => i.kind === "image") || !inputs.some((i) => i.kind === "voice")) {
      throw conflict("the profile needs at least one photo and a voice sample before it can be trained");
    }
    if (profile.state === "queued" || profile.state === "training") {
      throw conflict(`the profile is already being trained (job ${profile.train_job_id})`);
    }
    const engines = await this.rt.engines.resolve({ kind: "train_profile" }, requested, profile.engines);
    const licenceNotices = await this.rt.engines.licenceNotices({ kind: "train_profile" }, engines);
    const job = await this.rt.db.transaction().execute(async (tx) => {
      const { job: row } = await new JobsRepository(tx).insert({
        userId,
        kind: "train_profile",
        profileId: profile.id,
        request: { profileId: profile.id, ...(requested ? { engines: requested } : {}) },
        steps: TRAIN_PROFILE_STEPS,
        engines,
        licenceNotices,
      });
      await new ProfilesRepository(tx).markQueued(profile.id, row.id);
      return row;
    });
    await this.startWorkflow(job);
    return this.getJob(userId, job.id);
  }

  /**
   * Starts the new job's workflow after the response: its rows are committed, so a crash before
   * the start loses nothing (recover() starts every job not ended that has no thread).
   */
  startWorkflowSoon(job: JobRow): void {
    void this.starts(() => this.startWorkflow(job));
  }

  /**
   * Starts the attempt's workflow (script, then dispatch). Redis away for more than a few seconds
   * does not hold the request: the job stays queued and the reconciler sends its command later;
   * Postgres lost mid-way leaves the thread where it stopped and the recovery pass goes on with
   * it. Any other failure fails the job (recording that job_finished also fails the profile it
   * trained: jobs/job-outcome.ts).
   */
  async startWorkflow(job: JobRow): Promise<void> {
    try {
      await this.rt.runner.start(job);
    } catch (err) {
      if (err instanceof RunnerClosed) return; // shutting down: the next process's recover() starts it
      if (isTransient(err)) {
        this.rt.log.warn({ err, jobId: job.id }, "the job's workflow stopped on an outage; the recovery pass goes on with it");
        return;
      }
      this.rt.log.error({ err, jobId: job.id }, "could not start the job's workflow");
      await this.rt.consumer.ingest(
        jobFinishedEvent(job, {
          state: "failed",
          error: { code: "internal", message: "the job could not be queued; retry it", retryable: true },
        }),
      );
    }
  }

  /** A failed or cancelled job runs again as attempt + 1; steps that succeeded are reused. */
  async retry(userId: string, jobId: string): Promise<Job> {
    const job = await this.jobs.find(jobId, userId);
    if (!job) throw notFound("job");
    if (job.state !== "failed" && job.state !== "cancelled") {
      throw conflict(`only a failed or cancelled job can be retried; this one is ${job.state}`);
    }
    // The new attempt runs the engines the job was created with: they must still be there.
    await this.rt.engines.checkAvailable((job.engines ?? {}) as EngineMap);
    const next = await this.rt.db.transaction().execute(async (tx) => {
      const jobs = new JobsRepository(tx);
      const locked = await jobs.lock(job.id);
      if (!locked || locked.attempt !== job.attempt || (locked.state !== "failed" && locked.state !== "cancelled")) {
        throw conflict("the job changed meanwhile; reload it");
      }
      const row = await jobs.resetForRetry(locked);
      if (row.kind === "train_profile") await new ProfilesRepository(tx).markQueued(row.profile_id, row.id);
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
   * A running job shows `cancelling` until the worker reports how it ended.
   */
  async cancel(userId: string, jobId: string): Promise<Job> {
    const job = await this.jobs.find(jobId, userId);
    if (!job) throw notFound("job");
    if (isTerminal(job.state)) throw conflict(`the job has already ended (${job.state})`);
    await this.rt.redis.set(this.keys.cancel(job.id), String(job.attempt), "EX", CANCEL_TTL_SECONDS);
    if (job.state === "queued") {
      await this.rt.consumer.ingest(
        jobFinishedEvent(job, {
          state: "cancelled",
          error: { code: "cancelled", message: "cancelled before a worker started it", retryable: true },
        }),
      );
    } else if (job.state === "running") {
      await this.jobs.markCancelling(job.id, job.attempt);
    }
    return this.getJob(userId, job.id);
  }

  /**
   * Profile delete hook: refuses (409) while one of the profile's jobs may still be worked on,
   * else names the storage prefix of each of its jobs (`jobs/<jobId>/`) so their outputs go too.
   */
  async prefixesForProfileDelete(userId: string, profileId: string): Promise<string[]> {
    const jobs = await this.jobs.listForProfile(userId, profileId);
    const active = jobs.find((j) => !isTerminal(j.state));
    if (active) throw conflict(`a job of this profile is ${active.state} (job ${active.id}): cancel it first`);
    return jobs.map((j) => storageKeys.job(j.id));
  }
}
