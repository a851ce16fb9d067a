// Consumer of `{prefix}:events` (group `api`). For each batch read: validate (invalid → log + ack),
// record in one transaction (dedupe by eventId), XACK, PUBLISH the JobUpdates to all replicas,
// then resume the workflow of each job_finished. Entries this consumer read but never acked (the api
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
import { recordEvent, recordEvents, withoutStorageKeys, type RecordOutcome } from "./event-recorder.js";
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
        if (entries.length && !this.stopping) await this.handle(entries);
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
      const live = entries.filter((e): e is Entry => e !== null);
      if (live.length && !this.stopping) await this.handle(live);
      if (next === "0-0") break;
      start = next;
    }
  }

  /**
   * A batch of entries, as read: the valid events are recorded in one transaction, then every
   * entry is XACKed in one call, then each event is published (and its workflow resumed) in order.
   */
  private async handle(entries: Entry[]): Promise<void> {
    const settled: string[] = []; // trimmed away while pending, or invalid: acked as they are
    const valid: { id: string; event: JobEvent }[] = [];
    for (const [id, fields] of entries) {
      const event = fields ? this.parse(id, fields) : undefined;
      if (event) valid.push({ id, event });
      else settled.push(id);
    }
    let recorded: { id: string; event: JobEvent; outcome: RecordOutcome }[];
    try {
      recorded = await this.applyAll(valid);
    } catch (err) {
      // Nothing recorded, nothing acked: it stays pending. Postgres away: the loop waits and reads the PEL again.
      if (isTransientPgError(err)) {
        this.deps.health.report("postgres", false, err);
        throw new RecordingPaused(`${valid.length} event(s) could not be recorded: postgres unavailable`, { cause: err });
      }
      // One event the batch could not take (a bug): each on its own, so only that one waits.
      recorded = [];
      for (const v of valid) {
        try {
          recorded.push({ ...v, outcome: await this.apply(v.event) });
        } catch (e) {
          if (isTransientPgError(e)) throw new RecordingPaused(`event ${v.event.eventId} could not be recorded: postgres unavailable`, { cause: e });
          // Retried by XAUTOCLAIM after reclaimIdleMs (and on start).
          this.deps.log.error({ err: e, entryId: v.id, eventId: v.event.eventId }, "events consumer: could not record event");
        }
      }
    }
    if (valid.length) this.deps.health.report("postgres", true);
    const acked = [...settled, ...recorded.map((r) => r.id)];
    if (acked.length) await this.deps.redis.xack(this.stream, API_GROUP, ...acked);
    await this.publish(recorded);
    for (const { event, outcome } of recorded) await this.resume(event, outcome);
  }

  /** The entry's event, or undefined when it is not one (logged: it is acked and dropped). */
  private parse(id: string, fields: string[]): JobEvent | undefined {
    const raw = fieldValue(fields, MESSAGE_FIELD);
    let parsed: ReturnType<typeof JobEvent.safeParse> | undefined;
    try {
      parsed = JobEvent.safeParse(JSON.parse(raw ?? ""));
    } catch {
      parsed = undefined;
    }
    if (parsed?.success) return parsed.data;
    this.deps.log.warn(
      { entryId: id, issues: parsed?.error?.issues.slice(0, 5), raw: raw?.slice(0, 500) },
      "events consumer: invalid event, acknowledged and dropped",
    );
    this.deps.metrics.eventsHandled.inc({ type: "invalid", result: "invalid" });
    return undefined;
  }

  private async applyAll<T extends { event: JobEvent }>(items: T[]): Promise<(T & { outcome: RecordOutcome })[]> {
    if (items.length === 0) return [];
    const outcomes = await recordEvents(this.deps.db, items.map((i) => i.event), this.deps.metrics, this.deps.log);
    return items.map((item, i) => {
      this.count(item.event, outcomes[i]!);
      return { ...item, outcome: outcomes[i]! };
    });
  }

  private count(event: JobEvent, outcome: RecordOutcome): void {
    this.deps.metrics.eventsHandled.inc({ type: event.type, result: outcome.status });
    if (outcome.status === "unknown_job") {
      this.deps.log.warn({ eventId: event.eventId, jobId: event.jobId }, "events consumer: event for an unknown job");
    }
  }

  /** Records the event (one transaction). Exposed for the api's own events (immediate cancel). */
  async apply(event: JobEvent): Promise<RecordOutcome> {
    const outcome = await recordEvent(this.deps.db, event, this.deps.metrics, this.deps.log);
    this.count(event, outcome);
    return outcome;
  }

  /** The workflow of a finished job goes on. */
  private async resume(event: JobEvent, outcome: RecordOutcome): Promise<void> {
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

  /** Fan-out to WebSocket clients on every replica, in one round trip (lossy: a failure is logged). */
  private async publish(recorded: readonly { event: JobEvent; outcome: RecordOutcome }[]): Promise<void> {
    const shown = recorded.filter(({ outcome }) => outcome.status !== "duplicate" && outcome.status !== "unknown_job");
    if (shown.length === 0) return;
    const pipeline = this.deps.redis.pipeline();
    for (const { event } of shown) {
      // A step's outputs go out as GET /v1/jobs/:id shows them: without storage keys.
      const visible = event.type === "step_succeeded" ? { ...event, outputs: withoutStorageKeys(event.outputs) } : event;
      const update: JobUpdate = { type: "event", event: visible };
      pipeline.publish(this.keys.jobUpdates(event.jobId), JSON.stringify(update));
    }
    const results = await pipeline.exec().catch((err: unknown) => [[err, null] as const]);
    const failed = results?.find(([err]) => err)?.[0];
    if (failed) this.deps.log.warn({ err: failed }, "events consumer: publish failed");
  }

  /** Records and publishes an event of a running workflow (the api's script step): no resume. */
  async record(event: JobEvent): Promise<void> {
    await this.publish([{ event, outcome: await this.apply(event) }]);
  }

  /** Records and publishes an event that the api itself produced (no stream entry to ack), then resumes. */
  async ingest(event: JobEvent): Promise<RecordOutcome> {
    const outcome = await this.apply(event);
    await this.publish([{ event, outcome }]);
    await this.resume(event, outcome);
    return outcome;
  }
}

function fieldValue(fields: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}
