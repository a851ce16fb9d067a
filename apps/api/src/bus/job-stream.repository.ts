// The job streams: one XADD per command (field `data` = JSON JobCommand), and what the reconciler
// asks about a command it sent: is it still waiting for a worker, held by one, done, or gone?
import type { Redis } from "ioredis";
import {
  JobCommand,
  MESSAGE_FIELD,
  STREAM_MAXLEN,
  WORKER_GROUP,
  redisKeys,
  type JobKind,
} from "@likeness/contracts";

/**
 * Where a sent command stands in its stream (group `workers`):
 * - `undelivered`: in the stream, no worker has read it yet;
 * - `pending`: read by a worker and not acknowledged; a live worker re-claims its own entries
 *   every few seconds, so `idleMs` grows only when nobody works on it;
 * - `acked`: read and acknowledged (the worker acks after it sent job_finished);
 * - `missing`: not in the stream (Redis lost it in a restart without persistence, or it was trimmed).
 */
export type CommandState =
  | { state: "undelivered" }
  | { state: "pending"; idleMs: number }
  | { state: "acked" }
  | { state: "missing" };

const isNoSuchKey = (err: unknown) => /no such key/i.test(String((err as Error)?.message));
const isNoGroup = (err: unknown) => /NOGROUP/.test(String((err as Error)?.message));

/** Orders two stream ids ("<ms>-<seq>"). */
export function compareStreamIds(a: string, b: string): number {
  const [am = 0n, as = 0n] = a.split("-").map(BigInt);
  const [bm = 0n, bs = 0n] = b.split("-").map(BigInt);
  return am === bm ? (as === bs ? 0 : as < bs ? -1 : 1) : am < bm ? -1 : 1;
}

export class JobStreamProducer {
  private readonly keys;
  private readonly redis: Redis;

  /**
   * On its own connection, which never queues a command while disconnected nor resends one after
   * a reconnect: a command ioredis gave up on could otherwise still be written later, and a late
   * XADD is a command sent twice. Here a call either gets its answer or fails at once, and the
   * caller (dispatch, the reconciler) decides when to try again.
   */
  constructor(redis: Redis, prefix: string, onError: (err: Error) => void) {
    this.keys = redisKeys(prefix);
    this.redis = redis.duplicate({ enableOfflineQueue: false, autoResendUnfulfilledCommands: false, maxRetriesPerRequest: 0 });
    this.redis.on("error", onError);
  }

  /** Resolves once connected, or after `ms`: Redis away at start-up is no reason to wait longer. */
  async connected(ms: number): Promise<void> {
    if (this.redis.status === "ready") return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.redis.off("ready", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.redis.once("ready", done);
    });
  }

  close(): void {
    this.redis.disconnect();
  }

  /** Validates the command against the contract, then XADDs it. Returns the stream entry id. */
  async enqueue(command: JobCommand): Promise<string> {
    const parsed = JobCommand.parse(command);
    const id = await this.redis.xadd(
      this.keys.jobStream(parsed.kind),
      "MAXLEN",
      "~",
      STREAM_MAXLEN,
      "*",
      MESSAGE_FIELD,
      JSON.stringify(parsed),
    );
    if (!id) throw new Error("XADD returned no id");
    return id;
  }

  /**
   * The state of each of these entries of one kind's stream. A stream that does not exist holds
   * nothing; a stream without the `workers` group has delivered nothing yet (the worker creates
   * the group from id 0, so every entry in the stream is still to be read).
   */
  async commandStates(kind: JobKind, entryIds: string[]): Promise<Map<string, CommandState>> {
    const stream = this.keys.jobStream(kind);
    const out = new Map<string, CommandState>();
    if (entryIds.length === 0) return out;
    let lastDelivered: string | null = null;
    try {
      const groups = (await this.redis.xinfo("GROUPS", stream)) as unknown[][];
      const group = groups.find((g) => g[g.indexOf("name") + 1] === WORKER_GROUP);
      if (group) lastDelivered = String(group[group.indexOf("last-delivered-id") + 1]);
    } catch (err) {
      if (!isNoSuchKey(err)) throw err;
      for (const id of entryIds) out.set(id, { state: "missing" });
      return out;
    }
    const batch = this.redis.pipeline();
    for (const id of entryIds) {
      batch.xpending(stream, WORKER_GROUP, id, id, 1);
      batch.xrange(stream, id, id);
    }
    const replies = (await batch.exec()) ?? [];
    entryIds.forEach((id, i) => {
      const [pendingErr, pending] = replies[2 * i] ?? [new Error("no reply")];
      const [rangeErr, range] = replies[2 * i + 1] ?? [new Error("no reply")];
      // The group or the stream vanished since XINFO: nothing of it is pending.
      if (pendingErr && !isNoGroup(pendingErr) && !isNoSuchKey(pendingErr)) throw pendingErr;
      if (rangeErr) throw rangeErr;
      const held = !pendingErr ? (pending as [string, string, number, number][])[0] : undefined;
      if (held) {
        // Still pending even when trimmed away: the worker that holds it finds out.
        out.set(id, { state: "pending", idleMs: Number(held[2]) });
      } else if ((range as unknown[]).length === 0) {
        out.set(id, { state: "missing" });
      } else if (lastDelivered === null || compareStreamIds(id, lastDelivered) > 0) {
        out.set(id, { state: "undelivered" });
      } else {
        out.set(id, { state: "acked" });
      }
    });
    return out;
  }
}
