// All SQL on `jobs`, `job_steps` and `artifacts`. Reads of a user's resource filter by user_id.
// Built on the app's Kysely instance or on a transaction, like the core's repositories.
import { sql, type Kysely } from "kysely";
import { TERMINAL_JOB_STATES, type JobKind, type LicenceNotice, type StepName } from "@likeness/contracts";
import { json } from "../db/db.js";
import type { Database, JobRow, JobStateValue, JobStepRow, ArtifactRow } from "../db/types.js";

/** A worker may hold the job: it is dispatched, running, or running with a cancel asked for. */
const ACTIVE_JOB_STATES = ["queued", "running", "cancelling"] as const satisfies readonly JobStateValue[];

export interface NewJobInput {
  userId: string;
  kind: JobKind;
  profileId: string;
  request: unknown;
  steps: readonly StepName[];
  /** Task kind → engine name, sent in the job's commands; `{}` (the default): the workers' defaults. */
  engines?: Record<string, string>;
  /** The non-commercial engines among those it will run (Job.licenceNotices). */
  licenceNotices?: LicenceNotice[];
  /** Steps done before the job is queued (the script of a given narration, or kept by an edit), by name. */
  doneSteps?: Partial<Record<StepName, { engine: string; reused?: boolean }>>;
}

export type StepUpdate = Partial<{
  state: JobStepRow["state"];
  engine: string | null;
  licence: string | null;
  non_commercial: boolean;
  attempt: number | null;
  started_at: Date | string | null;
  finished_at: Date | string | null;
  duration_ms: number | null;
  reused: boolean;
  error: string | null;
  /** JSON (`json(…)`) or null. */
  outputs: string | null;
}>;

export interface NewArtifact {
  userId: string;
  jobId: string;
  step: string;
  key: string;
  kind: string;
  contentType: string;
  bytes: number;
  engine: string;
  meta: unknown;
}

export class JobsRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * Inserts the job row and one job_steps row per step: pending, or succeeded now for the
   * `doneSteps`. Call inside a transaction.
   */
  async insert(input: NewJobInput): Promise<{ job: JobRow; steps: JobStepRow[] }> {
    const job = await this.db
      .insertInto("jobs")
      .values({
        user_id: input.userId,
        kind: input.kind,
        profile_id: input.profileId,
        state: "queued",
        attempt: 1,
        request: json(input.request),
        engines: json(input.engines ?? {}),
        licence_notices: json(input.licenceNotices ?? []),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    const steps = await this.db
      .insertInto("job_steps")
      .values(
        input.steps.map((name) => {
          const done = input.doneSteps?.[name];
          if (done === undefined) return { job_id: job.id, name, state: "pending" as const };
          const now = new Date();
          return { job_id: job.id, name, state: "succeeded" as const, engine: done.engine, attempt: 1, started_at: now, finished_at: now, duration_ms: 0, reused: done.reused ?? false };
        }),
      )
      .returningAll()
      .execute();
    return { job, steps };
  }

  find(jobId: string, userId?: string): Promise<JobRow | undefined> {
    let q = this.db.selectFrom("jobs").selectAll().where("id", "=", jobId);
    if (userId !== undefined) q = q.where("user_id", "=", userId);
    return q.executeTakeFirst();
  }

  /** The row, locked until the transaction ends. */
  lock(jobId: string): Promise<JobRow | undefined> {
    return this.db.selectFrom("jobs").selectAll().where("id", "=", jobId).forUpdate().executeTakeFirst();
  }

  /** The jobs of one of the user's profiles (id and state). */
  listForProfile(userId: string, profileId: string): Promise<Pick<JobRow, "id" | "state">[]> {
    return this.db
      .selectFrom("jobs")
      .select(["id", "state"])
      .where("profile_id", "=", profileId)
      .where("user_id", "=", userId)
      .execute();
  }

  /**
   * Dispatch writes the row before the command goes out: the attempt must still be current and
   * wanted (queued, or running when a restarted api re-dispatches). Undefined when it is not.
   * From now on the attempt's command belongs on its stream (the reconciler sees to it).
   */
  markDispatched(jobId: string, attempt: number): Promise<{ id: string } | undefined> {
    return this.db
      .updateTable("jobs")
      .set({ dispatched_at: sql<Date>`now()` })
      .where("id", "=", jobId)
      .where("attempt", "=", attempt)
      .where("state", "in", ACTIVE_JOB_STATES)
      .returning("id")
      .executeTakeFirst();
  }

  /** The attempt's command is on its stream as entry `commandId`. */
  async markSent(jobId: string, attempt: number, commandId: string): Promise<void> {
    await this.db
      .updateTable("jobs")
      .set({ command_id: commandId, last_seen_at: sql<Date>`now()` })
      .where("id", "=", jobId)
      .where("attempt", "=", attempt)
      .execute();
  }

  /**
   * The rows, locked until the transaction ends, in id order: two transactions that lock
   * overlapping sets (two api replicas recording batches of events) cannot deadlock.
   */
  lockMany(jobIds: readonly string[]): Promise<JobRow[]> {
    if (jobIds.length === 0) return Promise.resolve([]);
    return this.db.selectFrom("jobs").selectAll().where("id", "in", jobIds).orderBy("id").forUpdate().execute();
  }

  /** Events of their current attempts were recorded: a sign of life. */
  async markSeen(jobIds: readonly string[]): Promise<void> {
    if (jobIds.length === 0) return;
    await this.db.updateTable("jobs").set({ last_seen_at: sql<Date>`now()` }).where("id", "in", jobIds).execute();
  }

  /**
   * Dispatched jobs that have not ended and that the reconciler must look at: those whose command
   * was never sent, and those with no sign of life for `graceMs` (a command sent or an event
   * recorded just now is left alone). `quiet_ms`: since that last sign; `unsent_ms`: since
   * dispatch, while no XADD has succeeded.
   */
  findToReconcile(graceMs: number): Promise<(JobRow & { quiet_ms: number; unsent_ms: number | null })[]> {
    const lastSign = sql`greatest(dispatched_at, coalesce(last_seen_at, dispatched_at))`;
    return this.db
      .selectFrom("jobs")
      .selectAll()
      .select([
        sql<number>`(extract(epoch from now() - ${lastSign}) * 1000)::float8`.as("quiet_ms"),
        sql<number | null>`case when command_id is null then (extract(epoch from now() - dispatched_at) * 1000)::float8 end`.as("unsent_ms"),
      ])
      .where("state", "in", ACTIVE_JOB_STATES)
      .where("dispatched_at", "is not", null)
      .where((eb) =>
        eb.or([eb("command_id", "is", null), eb(lastSign, "<", sql<Date>`now() - make_interval(secs => ${graceMs / 1000})`)]),
      )
      .orderBy("created_at")
      .execute();
  }

  /** A worker reported on the job: queued → running (a job being cancelled stays `cancelling`). */
  async markRunning(job: JobRow, at: string): Promise<JobRow> {
    if (job.state !== "queued") return job;
    return this.db
      .updateTable("jobs")
      .set({ state: "running", started_at: job.started_at ?? at })
      .where("id", "=", job.id)
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  /** A running job the user cancelled: visible as `cancelling` until the worker reports. */
  markCancelling(jobId: string, attempt: number): Promise<JobRow | undefined> {
    return this.db
      .updateTable("jobs")
      .set({ state: "cancelling" })
      .where("id", "=", jobId)
      .where("attempt", "=", attempt)
      .where("state", "=", "running")
      .returningAll()
      .executeTakeFirst();
  }

  finish(
    job: JobRow,
    end: { state: "succeeded" | "failed" | "cancelled"; result: unknown; error: unknown; at: string },
  ): Promise<JobRow> {
    return this.db
      .updateTable("jobs")
      .set({
        state: end.state,
        result: end.result === null ? null : json(end.result),
        error: end.error === null ? null : json(end.error),
        started_at: job.started_at ?? end.at,
        finished_at: end.at,
      })
      .where("id", "=", job.id)
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  /** Retry: attempt + 1, job back to queued, every step that did not succeed back to pending. */
  async resetForRetry(job: JobRow): Promise<JobRow> {
    const next = await this.db
      .updateTable("jobs")
      .set({
        state: "queued",
        attempt: job.attempt + 1,
        result: null,
        error: null,
        started_at: null,
        finished_at: null,
        dispatched_at: null,
        command_id: null,
        last_seen_at: null,
      })
      .where("id", "=", job.id)
      .where("attempt", "=", job.attempt)
      .returningAll()
      .executeTakeFirstOrThrow();
    await this.db
      .updateTable("job_steps")
      .set({ state: "pending", error: null, outputs: null, started_at: null, finished_at: null, duration_ms: null, reused: false, licence: null, non_commercial: false })
      .where("job_id", "=", job.id)
      .where("state", "<>", "succeeded")
      .execute();
    return next;
  }

  /** Jobs not ended (to re-drive after a restart) and recently finished ones (to finalize). */
  findToRecover(finishedWithinHours: number): Promise<JobRow[]> {
    return this.db
      .selectFrom("jobs")
      .selectAll()
      .where((eb) =>
        eb.or([
          eb("state", "in", ACTIVE_JOB_STATES),
          // secs: make_interval's hours are whole; a periodic pass looks back a fraction of one.
          eb("finished_at", ">", sql<Date>`now() - make_interval(secs => ${finishedWithinHours * 3600})`),
        ]),
      )
      .orderBy("created_at")
      .execute();
  }

  findSteps(jobId: string): Promise<JobStepRow[]> {
    return this.db.selectFrom("job_steps").selectAll().where("job_id", "=", jobId).execute();
  }

  findStep(jobId: string, name: StepName): Promise<JobStepRow | undefined> {
    return this.db
      .selectFrom("job_steps")
      .selectAll()
      .where("job_id", "=", jobId)
      .where("name", "=", name)
      .executeTakeFirst();
  }

  async updateStep(jobId: string, name: StepName, values: StepUpdate): Promise<void> {
    await this.db.updateTable("job_steps").set(values).where("job_id", "=", jobId).where("name", "=", name).execute();
  }

  /**
   * A step ended (step_succeeded / step_failed): `values`, keeping the started_at its step_started
   * set, or `startedAt` when that event never came.
   */
  async endStep(jobId: string, name: StepName, values: Omit<StepUpdate, "started_at">, startedAt: string): Promise<void> {
    await this.db
      .updateTable("job_steps")
      .set({ ...values, started_at: sql<Date>`coalesce(started_at, ${startedAt}::timestamptz)` })
      .where("job_id", "=", jobId)
      .where("name", "=", name)
      .execute();
  }

  /** Steps still open when the job ends: on cancel pending and running ones, on failure running ones. */
  async closeOpenSteps(jobId: string, outcome: "failed" | "cancelled", at: string): Promise<void> {
    await this.db
      .updateTable("job_steps")
      .set({ state: outcome, finished_at: at })
      .where("job_id", "=", jobId)
      .where("state", "in", outcome === "cancelled" ? ["pending", "running"] : ["running"])
      .execute();
  }

  async upsertArtifact(a: NewArtifact): Promise<void> {
    await this.db
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

  /**
   * Deletes a user's job that has ended (its steps, artifacts and video go with it: ON DELETE
   * CASCADE). False when there is none, or it runs again (a retry came first).
   */
  async deleteEnded(jobId: string, userId: string): Promise<boolean> {
    const row = await this.db
      .deleteFrom("jobs")
      .where("id", "=", jobId)
      .where("user_id", "=", userId)
      .where("state", "in", TERMINAL_JOB_STATES)
      .returning("id")
      .executeTakeFirst();
    return row !== undefined;
  }

  findArtifacts(jobId: string): Promise<ArtifactRow[]> {
    return this.db.selectFrom("artifacts").selectAll().where("job_id", "=", jobId).orderBy("created_at").orderBy("key").execute();
  }
}
