// Runs the job workflows: starts a thread per job attempt, resumes it when job_finished arrives,
// and after a restart re-drives every thread that was left mid-way. Invocations of one thread are
// serialised in this process; resuming is idempotent (a thread not waiting on the worker is left).
import { Command } from "@langchain/langgraph";
import pg from "pg";
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import { isTerminal, type JobKind } from "@likeness/contracts";
import { createPool } from "../db/db.js";
import { CheckpointsRepository } from "./checkpoints.repository.js";
import type { JobRow } from "../db/types.js";
import { JobsRepository } from "../jobs/jobs.repository.js";
import { jobFinishedEvent, type JobFinished } from "../bus/job-finished.js";
import {
  buildGenerateVideoGraph,
  buildTrainProfileGraph,
  threadId,
  type WorkflowDeps,
} from "./job-graphs.js";

export const CHECKPOINT_SCHEMA = "lg_api";
export const CHECKPOINT_RETENTION_DAYS = 7;

/**
 * Whether recover() has something to do for this thread: start it (a job not ended, no thread),
 * resume it (the job ended, the thread still waits for it) or run its next node (any other stop).
 */
function needsRecovery(job: Pick<JobRow, "state">, state: { createdAt?: string; next: string[] }): boolean {
  if (!state.createdAt) return !isTerminal(job.state);
  if (state.next.includes("await_worker")) return isTerminal(job.state);
  return state.next.length > 0;
}

/** The runner is closing: what was not started now is started by recover() in the next process. */
export class RunnerClosed extends Error {
  constructor() {
    super("workflow runner is closed");
    this.name = "RunnerClosed";
  }
}

type Graph = ReturnType<typeof buildTrainProfileGraph> | ReturnType<typeof buildGenerateVideoGraph>;

export class WorkflowRunner {
  private readonly graphs: Record<JobKind, Graph>;
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly jobs: JobsRepository;
  private closed = false;

  private constructor(
    private readonly d: WorkflowDeps,
    private readonly saver: PostgresSaver,
    private readonly locks: pg.Pool,
  ) {
    this.jobs = new JobsRepository(d.db);
    this.graphs = {
      train_profile: buildTrainProfileGraph(d, saver),
      generate_video: buildGenerateVideoGraph(d, saver),
    };
  }

  static async create(d: WorkflowDeps, databaseUrl: string): Promise<WorkflowRunner> {
    const onError = (err: Error) => d.log.warn({ err }, "workflow postgres connection error");
    const saver = new PostgresSaver(createPool(databaseUrl, { onError }), undefined, { schema: CHECKPOINT_SCHEMA });
    // setup() is idempotent, but two processes creating the schema at once can collide: retry.
    for (let i = 0; ; i++) {
      try {
        await saver.setup();
        break;
      } catch (err) {
        if (i >= 4) throw err;
        await new Promise((r) => setTimeout(r, 100 * (i + 1)));
      }
    }
    const locks = createPool(databaseUrl, { max: 8, onError });
    return new WorkflowRunner(d, saver, locks);
  }

  /**
   * Runs a new attempt's thread up to the point where it waits for the worker. A thread that
   * exists already (the recovery pass got there first) is left as it is.
   */
  start(job: Pick<JobRow, "id" | "kind" | "attempt">): Promise<void> {
    const thread = threadId(job.id, job.attempt);
    return this.serial(thread, async () => {
      if ((await this.graphs[job.kind].getState(this.config(thread))).createdAt) return;
      await this.doStart(job);
    });
  }

  /** Whether the attempt's thread dispatched and now waits for the worker's job_finished. */
  async waitsForWorker(job: Pick<JobRow, "id" | "kind" | "attempt">): Promise<boolean> {
    const state = await this.graphs[job.kind].getState(this.config(threadId(job.id, job.attempt)));
    return state.next.includes("await_worker");
  }

  /** Resumes the thread waiting for this job_finished. Returns false when none was waiting. */
  resume(event: JobFinished, kind?: JobKind): Promise<boolean> {
    return this.serial(threadId(event.jobId, event.attempt), () => this.doResume(event, kind));
  }

  /**
   * After a restart, and then periodically (the reconciler), for threads an outage or a crash
   * left mid-way: a job with no thread is started; a thread stopped between nodes goes on (before
   * dispatch, or at finalize when publishing failed); a finished job whose thread still waits is
   * resumed (its job_finished was recorded but resuming failed or never happened). A thread that
   * waits for the worker of a job still running is left alone: that is the reconciler's business.
   */
  async recover(finishedWithinHours = 24): Promise<{ started: number; continued: number; resumed: number }> {
    const counts = { started: 0, continued: 0, resumed: 0 };
    for (const job of await this.jobs.findToRecover(finishedWithinHours)) {
      if (this.closed) break;
      try {
        const thread = threadId(job.id, job.attempt);
        const graph = this.graphs[job.kind];
        // Cheap look first; the decision is taken again under the thread's lock.
        if (!needsRecovery(job, await graph.getState(this.config(thread)))) continue;
        const what = await this.serial(thread, async () => {
          const current = await this.jobs.find(job.id);
          if (!current || current.attempt !== job.attempt) return null;
          const state = await graph.getState(this.config(thread));
          if (!needsRecovery(current, state)) return null;
          if (!state.createdAt) {
            await this.doStart(current);
            return "started" as const;
          }
          if (state.next.includes("await_worker")) {
            return (await this.doResume(this.finishedFromRow(current), current.kind)) ? ("resumed" as const) : null;
          }
          await graph.invoke(null, this.config(thread));
          return "continued" as const;
        });
        if (what) counts[what]++;
      } catch (err) {
        this.d.log.error({ err, jobId: job.id }, "could not recover the job's workflow");
      }
    }
    if (counts.started + counts.continued + counts.resumed > 0) this.d.log.info(counts, "workflows recovered");
    return counts;
  }

  private async doStart(job: Pick<JobRow, "id" | "kind" | "attempt">): Promise<void> {
    await this.graphs[job.kind].invoke(
      { jobId: job.id, attempt: job.attempt, dispatched: false, commandId: null, finished: null, outcome: null },
      this.startConfig(threadId(job.id, job.attempt)),
    );
  }

  private async doResume(event: JobFinished, kind?: JobKind): Promise<boolean> {
    const thread = threadId(event.jobId, event.attempt);
    const k = kind ?? (await this.jobs.find(event.jobId))?.kind;
    if (!k) return false;
    const graph = this.graphs[k];
    const state = await graph.getState(this.config(thread));
    if (!state.next.includes("await_worker")) return false;
    await graph.invoke(new Command({ resume: event }), this.config(thread));
    return true;
  }

  /**
   * Retention: checkpoint tables grow with every job. A thread of a job that ended more than
   * `days` ago has nothing left to do (recover() looks back 24 h; late duplicate events are
   * recorded without resuming), so its checkpoints go.
   */
  async pruneCheckpoints(days = CHECKPOINT_RETENTION_DAYS): Promise<number> {
    const threads = await new CheckpointsRepository(this.d.db, CHECKPOINT_SCHEMA).threadsOfJobsEndedBefore(days);
    for (const thread of threads) {
      if (this.closed) break;
      await this.serial(thread, () => this.saver.deleteThread(thread));
    }
    if (threads.length) this.d.log.info({ threads: threads.length, days }, "old workflow checkpoints deleted");
    return threads.length;
  }

  /** The checkpoints of one thread, newest first (tests and diagnostics). */
  async history(jobId: string, attempt: number, kind: JobKind) {
    const out = [];
    for await (const s of this.graphs[kind].getStateHistory(this.config(threadId(jobId, attempt)))) out.push(s);
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.chains.values()]);
    await this.saver.end();
    await this.locks.end();
  }

  /** The job_finished a finished job's row stands for (its own event was recorded earlier). */
  private finishedFromRow(job: JobRow): JobFinished {
    return jobFinishedEvent(job, {
      state: job.state as JobFinished["state"],
      at: job.finished_at ?? new Date(),
      ...(job.result ? { result: job.result as Record<string, unknown> } : {}),
      ...(job.error ? { error: job.error as JobFinished["error"] } : {}),
    });
  }

  private config(thread: string) {
    return { configurable: { thread_id: thread } };
  }

  /**
   * How a new thread runs up to the worker: its checkpoint is written when the run stops (at
   * await_worker, or on an error), not after every node. Both nodes can run again (script reuses
   * the script it wrote; dispatch sends the command again, which the worker dedupes as it does the
   * reconciler's), so a start cut short by a crash is simply started again by recover(). Writing
   * after each node cost about 20 ms of the time from a job's creation to its dispatch.
   */
  private startConfig(thread: string) {
    return { configurable: { thread_id: thread }, durability: "exit" as const };
  }

  /**
   * One invocation of a thread at a time: chained in this process, and across api replicas by a
   * Postgres advisory lock on the thread id, so a thread is never run twice at once.
   */
  private serial<T>(thread: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new RunnerClosed());
    const prev = this.chains.get(thread) ?? Promise.resolve();
    // The lock connections come from their own pool: waiting for one never holds a connection
    // the nodes need.
    const locked = async () => {
      const conn = await this.locks.connect();
      let broken = false;
      try {
        await conn.query("select pg_advisory_lock(hashtext('likeness:workflow'), hashtext($1))", [thread]);
        try {
          return await fn();
        } finally {
          await conn
            .query("select pg_advisory_unlock(hashtext('likeness:workflow'), hashtext($1))", [thread])
            .catch(() => (broken = true));
        }
      } finally {
        conn.release(broken);
      }
    };
    const next = prev.catch(() => undefined).then(locked);
    this.chains.set(thread, next);
    const cleanup = () => {
      if (this.chains.get(thread) === next) this.chains.delete(thread);
    };
    next.then(cleanup, cleanup);
    return next;
  }
}
