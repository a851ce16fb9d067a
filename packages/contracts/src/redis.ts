// Every Redis key the two planes share. One prefix (`lk` unless REDIS_KEY_PREFIX says otherwise),
// so a deployment can share a Redis and each test can isolate itself with a random prefix.
// The worker reads the same templates from schema/redis-keys.json.
import type { JobKind } from "./jobs.js";

export const DEFAULT_KEY_PREFIX = "lk";

/** Key templates: `{prefix}` and the named parts are substituted. */
export const REDIS_KEY_TEMPLATES = {
  /** Stream of job commands for one job kind (api XADD, worker XREADGROUP, group `workers`). */
  jobStream: "{prefix}:jobs:{kind}",
  /** Durable results stream (worker XADD, api XREADGROUP, group `api`). */
  events: "{prefix}:events",
  /** Pub/Sub: the worker's live progress of one job. */
  progress: "{prefix}:progress:{jobId}",
  /** Pub/Sub: the api replica that recorded an event fans it out to all replicas. */
  jobUpdates: "{prefix}:job-updates:{jobId}",
  /** Set by the api when a user cancels; the worker checks it between and inside steps. */
  cancel: "{prefix}:cancel:{jobId}",
  /** One worker's advertised engine registry (WorkerAdvert JSON), rewritten every heartbeat, TTL 3 heartbeats. */
  worker: "{prefix}:workers:{workerId}",
  /** Set of the advertising workers' ids; an id whose advert key expired is removed by the reader. */
  workers: "{prefix}:workers",
} as const;

export const WORKER_GROUP = "workers";
export const API_GROUP = "api";
/** Every stream entry carries one field holding the JSON message. */
export const MESSAGE_FIELD = "data";
/** Streams are trimmed to about this many entries (backpressure, bounded memory). */
export const STREAM_MAXLEN = 100_000;

/** A key from its template: `{prefix}` and the named parts filled in. */
function fill(template: string, parts: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => parts[name] ?? `{${name}}`);
}

/** The keys of REDIS_KEY_TEMPLATES under one prefix. */
export function redisKeys(prefix: string = DEFAULT_KEY_PREFIX) {
  const t = REDIS_KEY_TEMPLATES;
  return {
    jobStream: (kind: JobKind) => fill(t.jobStream, { prefix, kind }),
    events: fill(t.events, { prefix }),
    progress: (jobId: string) => fill(t.progress, { prefix, jobId }),
    jobUpdates: (jobId: string) => fill(t.jobUpdates, { prefix, jobId }),
    cancel: (jobId: string) => fill(t.cancel, { prefix, jobId }),
    worker: (workerId: string) => fill(t.worker, { prefix, workerId }),
    workers: fill(t.workers, { prefix }),
  };
}
export type RedisKeys = ReturnType<typeof redisKeys>;
