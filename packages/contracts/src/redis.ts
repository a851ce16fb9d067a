// Every Redis key the two planes share. One prefix, so a deployment can share a Redis.
import type { JobKind } from "./jobs.js";

export const KEY_PREFIX = "lk";

/** Stream of job commands for one job kind (api XADD, worker XREADGROUP). */
export const jobStream = (kind: JobKind) => `${KEY_PREFIX}:jobs:${kind}`;
/** Consumer group of the workers on every job stream. */
export const WORKER_GROUP = "workers";

/** Durable results stream (worker XADD, api XREADGROUP). */
export const EVENTS_STREAM = `${KEY_PREFIX}:events`;
/** Consumer group of the api replicas on the events stream. */
export const API_GROUP = "api";

/** Pub/Sub channel with the worker's live progress of one job. */
export const progressChannel = (jobId: string) => `${KEY_PREFIX}:progress:${jobId}`;
/** Pub/Sub channel where the api replica that recorded an event fans it out to all replicas. */
export const jobUpdatesChannel = (jobId: string) => `${KEY_PREFIX}:job-updates:${jobId}`;
/** Set (with a TTL) by the api when a user cancels; the worker checks it between and inside steps. */
export const cancelKey = (jobId: string) => `${KEY_PREFIX}:cancel:${jobId}`;

/** Every stream entry carries one field holding the JSON message. */
export const MESSAGE_FIELD = "data";

/** Streams are trimmed to about this many entries (backpressure, bounded memory). */
export const STREAM_MAXLEN = 100_000;
