// Capped exponential backoff: 0.2 s doubling to 5 s, the one schedule for every wait on Redis or
// Postgres (ioredis reconnects, the events consumer, dispatch), bounded by a deadline.
import { setTimeout as delay } from "node:timers/promises";
import { isTransient } from "./transient-errors.js";

export const BACKOFF_FIRST_MS = 200;
export const BACKOFF_CAP_MS = 5_000;

/** The wait before retry number `attempt` (0-based). */
export function backoffMs(attempt: number, firstMs = BACKOFF_FIRST_MS, capMs = BACKOFF_CAP_MS): number {
  return Math.min(capMs, firstMs * 2 ** Math.min(attempt, 30));
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return delay(Math.max(0, ms), undefined, { signal }).catch(() => undefined);
}

export interface RetryOptions {
  /** Give up (rethrow the last error) once this much time has passed. */
  maxMs: number;
  /** Which errors are waited out; default: a transient Redis or Postgres error. */
  retryable?: (err: unknown) => boolean;
  /** Stops waiting: the last error is rethrown. */
  signal?: AbortSignal;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** The first wait (tests make it short). */
  firstMs?: number;
}

/** Runs `fn` until it succeeds, fails with an error that is not retryable, or time is up. */
export async function retryTransient<T>(fn: () => Promise<T>, opts: RetryOptions): Promise<T> {
  const deadline = Date.now() + opts.maxMs;
  const retryable = opts.retryable ?? isTransient;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const delay = Math.min(backoffMs(attempt, opts.firstMs), deadline - Date.now());
      if (!retryable(err) || opts.signal?.aborted || delay <= 0) throw err;
      opts.onRetry?.(err, attempt + 1, delay);
      await sleep(delay, opts.signal);
      if (opts.signal?.aborted) throw err;
    }
  }
}
