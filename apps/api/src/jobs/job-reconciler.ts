// The reconciler: Postgres is the truth, Redis only delivers. At start-up, every
// API_RECONCILE_INTERVAL_S and as soon as Redis or Postgres is back after an outage, one api
// replica at a time (a Postgres advisory lock):
//  1. re-drives the workflows an outage or a crash left mid-way (WorkflowRunner.recover);
//  2. sends again the command of every dispatched job that has not ended and whose command is
//     no longer pending in its stream (never sent because Redis was away, lost with Redis,
//     acknowledged without a job_finished recorded), or that has shown no sign of life for
//     API_RECONCILE_STALE_S (its entry idle that long in a worker's PEL, and no event recorded);
//  3. fails a job whose command could not be sent at all for API_OUTAGE_MAX_S.
// A resent command has the same jobId and attempt: the worker resumes the attempt from its step
// markers and re-emits what had already finished (the stored job_finished keeps its eventId), so
// a resend costs time, never a step run twice, and the api records each event once.
import { isTerminal, JobKind } from "@likeness/contracts";
import type { FastifyBaseLogger } from "fastify";
import type { Db } from "../db/db.js";
import type { JobRow } from "../db/types.js";
import { withTryAdvisoryLock } from "../db/advisory-lock.js";
import type { CommandState, JobStreamProducer } from "../bus/job-stream.repository.js";
import type { EventsConsumer } from "../events/events.consumer.js";
import { jobFinishedEvent } from "../bus/job-finished.js";
import type { WorkflowRunner } from "../workflows/workflow.runner.js";
import { buildJobCommand, JobGone } from "../workflows/job-command.js";
import type { DependencyHealth } from "../resilience/dependency-health.js";
import { isTransientPgError, isTransientRedisError } from "../resilience/transient-errors.js";
import { JobsRepository } from "./jobs.repository.js";
import type { JobMetrics } from "./jobs.metrics.js";


type Candidate = JobRow & { quiet_ms: number; unsent_ms: number | null };
export type ResendReason = "unsent" | "missing" | "acked" | "stale";

export interface ReconcileReport {
  /** False when another replica held the lock (nothing was done here) or the pass failed. */
  locked: boolean;
  recovered: { started: number; continued: number; resumed: number };
  resent: { jobId: string; reason: ResendReason }[];
  /** Jobs failed because their command could not be sent for API_OUTAGE_MAX_S. */
  failed: string[];
  /** Why the pass stopped early (an outage), if it did. */
  error?: string;
}

export interface ReconcilerOptions {
  intervalMs: number;
  /** A read command idle this long, with no event either, is sent again. */
  staleMs: number;
  /** A command that could not be sent for this long fails its job. */
  outageMaxMs: number;
}

export class JobReconciler {
  /**
   * A command sent, or an event recorded, less than this long ago is never sent again: the job
   * was just dispatched, or is just finishing (its job_finished may still be on its way through
   * the events stream). Two periods (60 s by default): a pass never acts on what the one before
   * it had no chance to see settle.
   */
  readonly graceMs: number;
  readonly staleMs: number;
  private readonly jobs: JobsRepository;
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<ReconcileReport> | undefined;
  private queued: Promise<ReconcileReport> | undefined;
  private stopped = false;
  /** When the last recovery began; the api runs one (24 h back) just before it starts this. */
  private recoveredAt = Date.now();

  constructor(
    private readonly d: {
      db: Db;
      producer: JobStreamProducer;
      runner: WorkflowRunner;
      consumer: EventsConsumer;
      metrics: JobMetrics;
      health: DependencyHealth;
      log: FastifyBaseLogger;
    },
    private readonly opts: ReconcilerOptions,
  ) {
    this.jobs = new JobsRepository(d.db);
    this.graceMs = 2 * opts.intervalMs;
    this.staleMs = Math.max(opts.staleMs, this.graceMs);
  }

  /** A first pass now, then one every interval. */
  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => void this.pass(), this.opts.intervalMs).unref();
    void this.pass();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await Promise.allSettled([this.current, this.queued]);
  }

  /**
   * A pass that starts after the one running now, if any (at most one waits: a timer tick or a
   * kick while one waits joins it). Never rejects; an outage ends the pass early (see `error`).
   */
  pass(): Promise<ReconcileReport> {
    if (this.queued) return this.queued;
    const before = this.current ?? Promise.resolve();
    const next: Promise<ReconcileReport> = before.then(() => {
      this.queued = undefined;
      this.current = next;
      return this.run();
    });
    this.queued = next;
    void next.finally(() => {
      if (this.current === next) this.current = undefined;
    });
    return next;
  }

  private async run(): Promise<ReconcileReport> {
    const report: ReconcileReport = { locked: false, recovered: { started: 0, continued: 0, resumed: 0 }, resent: [], failed: [] };
    if (this.stopped) return report;
    try {
      const got = await withTryAdvisoryLock(this.d.db, "reconcile", () => this.reconcile(report));
      report.locked = got.locked;
    } catch (err) {
      report.error = String((err as Error)?.message ?? err);
      if (isTransientPgError(err)) this.d.health.report("postgres", false, err);
      else if (isTransientRedisError(err)) this.d.health.report("redis", false, err);
      else this.d.log.error({ err }, "reconcile pass failed");
    }
    return report;
  }

  private async reconcile(report: ReconcileReport): Promise<void> {
    // What recover() does needs Redis (dispatch, finalize's publish): while Redis is known to be
    // away it waits for the pass that runs as soon as Redis is back.
    if (this.d.health.isUp("redis")) {
      // Jobs that ended since the last recovery that ran (start-up's looked back 24 h), with a
      // margin: not every job of the last hour at every pass.
      const startedAt = Date.now();
      report.recovered = await this.d.runner.recover((startedAt - this.recoveredAt + this.graceMs) / 3_600_000);
      this.recoveredAt = startedAt;
    }
    const candidates = await this.jobs.findToReconcile(this.graceMs);
    if (candidates.length === 0) return;
    const states = await this.commandStates(candidates);
    let redisDown = false; // after one failed send, the others only check their deadline
    for (const job of candidates) {
      if (this.stopped) break;
      const reason = this.resendReason(job, job.command_id ? states.get(job.command_id) : undefined);
      if (!reason) continue;
      try {
        if (redisDown) {
          if (await this.failIfNeverQueued(job)) report.failed.push(job.id);
        } else if (await this.resend(job, reason)) {
          report.resent.push({ jobId: job.id, reason });
        }
      } catch (err) {
        if (err instanceof JobGone) {
          this.d.log.warn({ err, jobId: job.id }, "reconcile: the job's inputs are gone; not sent again");
        } else if (isTransientRedisError(err)) {
          redisDown = true;
          this.d.health.report("redis", false, err);
          if (await this.failIfNeverQueued(job)) report.failed.push(job.id);
        } else {
          throw err;
        }
      }
    }
  }

  /** What Redis says about each sent command. A stream Redis cannot answer for is left out: its jobs wait. */
  private async commandStates(jobs: Candidate[]): Promise<Map<string, CommandState>> {
    const states = new Map<string, CommandState>();
    for (const kind of JobKind.options) {
      const ids = jobs.filter((j) => j.kind === kind && j.command_id).map((j) => j.command_id!);
      if (ids.length === 0) continue;
      try {
        for (const [id, state] of await this.d.producer.commandStates(kind, ids)) states.set(id, state);
        this.d.health.report("redis", true);
      } catch (err) {
        if (!isTransientRedisError(err)) throw err;
        this.d.health.report("redis", false, err);
      }
    }
    return states;
  }

  /** Why this job's command must be sent (again), or null when it is where it should be. */
  private resendReason(job: Candidate, state: CommandState | undefined): ResendReason | null {
    if (!job.command_id) return "unsent";
    switch (state?.state) {
      case undefined: // Redis did not answer: wait for it
      case "undelivered": // waiting for a free worker, however long that takes
        return null;
      case "missing":
      case "acked": // findToReconcile: nothing seen of it for graceMs either
        return state.state;
      case "pending":
        return state.idleMs >= this.staleMs && job.quiet_ms >= this.staleMs ? "stale" : null;
    }
  }

  /**
   * Sends the attempt's command again, if its workflow did dispatch it and now waits for the
   * worker (a thread stopped before that is recover()'s, which just ran) and the attempt is
   * still current and not ended.
   */
  private async resend(job: Candidate, reason: ResendReason): Promise<boolean> {
    if (!(await this.d.runner.waitsForWorker(job))) return false;
    const current = await this.jobs.find(job.id);
    if (!current || current.attempt !== job.attempt || isTerminal(current.state)) return false;
    const command = await buildJobCommand(this.d.db, current);
    const commandId = await this.d.producer.enqueue(command);
    await this.jobs.markSent(job.id, job.attempt, commandId);
    this.d.metrics.commandsResent.inc({ kind: job.kind });
    this.d.log.warn(
      { jobId: job.id, attempt: job.attempt, kind: job.kind, reason, commandId, previous: job.command_id },
      reason === "unsent" ? "job command sent late (Redis was unavailable at dispatch)" : "job command sent again",
    );
    return true;
  }

  /** A job whose command never reached Redis for API_OUTAGE_MAX_S fails, and says why. */
  private async failIfNeverQueued(job: Candidate): Promise<boolean> {
    if (job.unsent_ms === null || job.unsent_ms < this.opts.outageMaxMs) return false;
    const seconds = Math.round(this.opts.outageMaxMs / 1000);
    // Recorded only: with Redis away, the workflow is finalized (and clients told) by the
    // recovery pass once Redis is back.
    const outcome = await this.d.consumer.apply(
      jobFinishedEvent(job, {
        state: "failed",
        error: { code: "internal", message: `the job could not be queued: Redis was unavailable for over ${seconds} s; retry it`, retryable: true },
      }),
    );
    this.d.log.error({ jobId: job.id, attempt: job.attempt }, "job failed: its command could not be queued");
    return outcome.status === "applied";
  }
}
