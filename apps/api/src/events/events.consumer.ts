// Consumer of `{prefix}:events` (group `api`). For each entry: validate (invalid → log + ack),
// record in one transaction (dedupe by eventId), XACK, PUBLISH the JobUpdate to all replicas,
// then resume the workflow on job_finished. Entries this consumer read but never acked (the api
// was killed mid-way) are read again from its PEL on start ("0" before ">"); entries stuck on a
// dead replica are taken over with XAUTOCLAIM.
//
// Outages are waits: a transient Redis error, or a Postgres one while recording, stops the turn,
// waits (0.2 s doubling to 5 s) and starts again from this consumer's own PEL, so an event that
// could not be recorded is retried as soon as Postgres answers, not after the reclaim time.
import os from "node:os";
import type { Redis } from "ioredis";
import type { Kysely } from "kysely";
import type { FastifyBaseLogger } from "fastify";
import { API_GROUP, JobEvent, MESSAGE_FIELD, redisKeys, type JobUpdate } from "@likeness/contracts";
import type { Database } from "../db/types.js";
import { recordEvent, withoutStorageKeys, type RecordOutcome } from "./event-recorder.js";
import type { JobMetrics } from "../jobs/jobs.metrics.js";
import type { WorkflowRunner } from "../workflows/workflow.runner.js";
import type { DependencyHealth } from "../resilience/dependency-health.js";
import { backoffMs, sleep } from "../resilience/retry.js";
import { isTransientPgError, isTransientRedisError } from "../resilience/transient-errors.js";

/** Fields are null for an entry read back from the PEL after it was trimmed from the stream. */
type Entry = [id: string, fields: string[] | null];

/** Recording an event met a Postgres outage: the turn stops and the PEL is read again later. */
class RecordingPaused extends Error {
  override name = "RecordingPaused";
}

export interface EventsConsumerOptions {
  /** Stable across restarts of the same replica so its PEL is re-read at once. */
  consumerName?: string;
  /** A pending entry idle this long on another consumer is taken over. */
  reclaimIdleMs?: number;
  blockMs?: number;
  batch?: number;
}

export function defaultConsumerName(): string {
  return `api-${os.hostname()}-${process.pid}`;
}

export class EventsConsumer {
  readonly name: string;
  private readonly keys;
  private readonly stream: string;
  private readonly reclaimIdleMs: number;
  private readonly blockMs: number;
  private readonly batch: number;
  private reader: Redis | undefined;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private readonly stopped = new AbortController();
  private lastReclaim = 0;

  constructor(
    private readonly deps: {
      db: Kysely<Database>;
      redis: Redis;
      prefix: string;
      runner: WorkflowRunner;
      metrics: JobMetrics;
      health: DependencyHealth;
      log: FastifyBaseLogger;
    },
    opts: EventsConsumerOptions = {},
  ) {
    this.name = opts.consumerName ?? defaultConsumerName();
    this.keys = redisKeys(deps.prefix);
    this.stream = this.keys.events;
    this.reclaimIdleMs = opts.reclaimIdleMs ?? 30_000;
    this.blockMs = opts.blockMs ?? 2_000;
    this.batch = opts.batch ?? 64;
  }

  async start(): Promise<void> {
    try {
      await this.ensureGroup();
    } catch (err) {
      // Redis away at start-up: the loop creates the group when it meets NOGROUP.
      if (!isTransientRedisError(err)) throw err;
      this.deps.health.report("redis", false, err);
    }
    // A dedicated connection: XREADGROUP BLOCK holds it. It waits through reconnects (null).
    this.reader = this.deps.redis.duplicate({ maxRetriesPerRequest: null, commandTimeout: undefined });
    this.reader.on("error", (err) => this.deps.health.report("redis", false, err));
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.stopped.abort(); // ends a backoff wait
    this.reader?.disconnect(); // aborts a blocked XREADGROUP; an entry being handled finishes
    await this.loop;
  }

  /** The consumer group, created with its stream when missing (a new Redis, or one restarted
   * without persistence: the stream and its group are gone, and the events go on). */
  private async ensureGroup(): Promise<void> {
    try {
      // "0": a group created after the worker already wrote events still sees them.
      await this.deps.redis.xgroup("CREATE", this.stream, API_GROUP, "0", "MKSTREAM");
    } catch (err) {
      if (!String((err as Error).message).includes("BUSYGROUP")) throw err;
    }
  }

  private async run(): Promise<void> {
    const reader = this.reader!;
    // "0": our own pending entries first, from the start of our PEL; then the id of the last one
    // read, until the PEL is exhausted; then ">" (new entries).
    let cursor = "0";
    let failures = 0;
    const reclaimEvery = Math.min(this.reclaimIdleMs, 5_000);
    const block = Math.max(10, Math.min(this.blockMs, reclaimEvery));
    while (!this.stopping) {
      try {
        if (Date.now() - this.lastReclaim >= reclaimEvery) {
          this.lastReclaim = Date.now();
          await this.reclaim();
        }
        const res = (await (cursor !== ">"
          ? reader.xreadgroup("GROUP", API_GROUP, this.name, "COUNT", this.batch, "STREAMS", this.stream, cursor)
          : reader.xreadgroup(
              "GROUP", API_GROUP, this.name, "COUNT", this.batch, "BLOCK", block, "STREAMS", this.stream, ">",
            ))) as [string, Entry[]][] | null;
        this.deps.health.report("redis", true);
        const entries = res?.[0]?.[1] ?? [];
        for (const entry of entries) {
          if (this.stopping) break;
          await this.handle(entry);
        }
        // An entry that failed for good stays in the PEL (XAUTOCLAIM retries it): read past it.
        if (cursor !== ">") cursor = entries.length ? entries[entries.length - 1]![0] : ">";
        failures = 0;
      } catch (err) {
        if (this.stopping) break;
        cursor = "0"; // re-read whatever we hold
        if (String((err as Error).message).includes("NOGROUP")) {
          this.deps.log.warn("events consumer: the stream or its group is gone; recreating it");
          await this.ensureGroup().catch((e: unknown) => this.deps.log.error({ err: e }, "events consumer: cannot recreate the group"));
          continue;
        }
        if (err instanceof RecordingPaused) {
          // Postgres is away: health and the log already know (handle()).
        } else if (isTransientRedisError(err)) {
          this.deps.health.report("redis", false, err);
        } else {
          this.deps.log.error({ err }, "events consumer: read failed; retrying");
        }
        await sleep(backoffMs(failures++), this.stopped.signal);
      }
    }
  }

  /** Takes over entries idle too long on any consumer (a dead replica; or our own failures). */
  private async reclaim(): Promise<void> {
    let start = "0-0";
    for (let i = 0; i < 10 && !this.stopping; i++) {
      const res = (await this.deps.redis.xautoclaim(
        this.stream, API_GROUP, this.name, this.reclaimIdleMs, start, "COUNT", this.batch,
      )) as [string, (Entry | null)[], string[]?];
      const [next, entries] = res;
      for (const entry of entries) {
        if (entry && !this.stopping) await this.handle(entry);
      }
      if (next === "0-0") break;
      start = next;
    }
  }

  private async handle([id, fields]: Entry): Promise<void> {
    if (!fields) {
      // Trimmed away while pending: nothing left to record.
      await this.deps.redis.xack(this.stream, API_GROUP, id);
      return;
    }
    const raw = fieldValue(fields, MESSAGE_FIELD);
    let parsed: ReturnType<typeof JobEvent.safeParse> | undefined;
    try {
      parsed = JobEvent.safeParse(JSON.parse(raw ?? ""));
    } catch {
      parsed = undefined;
    }
    if (!parsed?.success) {
      this.deps.log.warn(
        { entryId: id, issues: parsed?.error?.issues.slice(0, 5), raw: raw?.slice(0, 500) },
        "events consumer: invalid event, acknowledged and dropped",
      );
      this.deps.metrics.eventsHandled.inc({ type: "invalid", result: "invalid" });
      await this.deps.redis.xack(this.stream, API_GROUP, id);
      return;
    }
    const event = parsed.data;
    let outcome: RecordOutcome;
    try {
      outcome = await this.apply(event);
    } catch (err) {
      // Not acked: it stays pending. Postgres away: the loop waits and reads the PEL again.
      if (isTransientPgError(err)) {
        this.deps.health.report("postgres", false, err);
        throw new RecordingPaused(`event ${event.eventId} could not be recorded: postgres unavailable`, { cause: err });
      }
      // Anything else is retried by XAUTOCLAIM after reclaimIdleMs (and on start).
      this.deps.log.error({ err, entryId: id, eventId: event.eventId }, "events consumer: could not record event");
      return;
    }
    this.deps.health.report("postgres", true);
    await this.deps.redis.xack(this.stream, API_GROUP, id);
    await this.afterAck(event, outcome);
  }

  /** Records the event (one transaction). Exposed for the api's own events (immediate cancel). */
  async apply(event: JobEvent): Promise<RecordOutcome> {
    const outcome = await recordEvent(this.deps.db, event, this.deps.metrics, this.deps.log);
    this.deps.metrics.eventsHandled.inc({ type: event.type, result: outcome.status });
    if (outcome.status === "unknown_job") {
      this.deps.log.warn({ eventId: event.eventId, jobId: event.jobId }, "events consumer: event for an unknown job");
    }
    return outcome;
  }

  /** Fan-out to WebSocket clients on every replica, then resume the workflow on job_finished. */
  async afterAck(event: JobEvent, outcome: RecordOutcome): Promise<void> {
    await this.publish(event, outcome);
    // Also on a duplicate: the first delivery may have been recorded by an api that died before
    // resuming. resume() does nothing when the thread is not waiting.
    if (event.type === "job_finished" && outcome.status !== "unknown_job") {
      const kind = "job" in outcome ? outcome.job.kind : undefined;
      try {
        await this.deps.runner.resume(event, kind);
      } catch (err) {
        // The job's end is recorded; only its workflow lags. The reconciler's recovery pass
        // resumes it (at its next tick, or as soon as the dependency that failed is back).
        this.deps.log.warn({ err, jobId: event.jobId }, "events consumer: could not resume the workflow; the recovery pass will");
      }
    }
  }

  private async publish(event: JobEvent, outcome: RecordOutcome): Promise<void> {
    if (outcome.status !== "duplicate" && outcome.status !== "unknown_job") {
      // A step's outputs go out as GET /v1/jobs/:id shows them: without storage keys.
      const shown = event.type === "step_succeeded" ? { ...event, outputs: withoutStorageKeys(event.outputs) } : event;
      const update: JobUpdate = { type: "event", event: shown };
      await this.deps.redis
        .publish(this.keys.jobUpdates(event.jobId), JSON.stringify(update))
        .catch((err) => this.deps.log.warn({ err }, "events consumer: publish failed"));
    }
  }

  /** Records and publishes an event of a running workflow (the api's script step): no resume. */
  async record(event: JobEvent): Promise<void> {
    await this.publish(event, await this.apply(event));
  }

  /** Records and publishes an event that the api itself produced (no stream entry to ack). */
  async ingest(event: JobEvent): Promise<RecordOutcome> {
    const outcome = await this.apply(event);
    await this.afterAck(event, outcome);
    return outcome;
  }
}

function fieldValue(fields: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}
