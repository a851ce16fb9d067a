// Job metrics on the app's registry (app.metrics, served at /metrics by the core): per-step
// durations, step failures, retries, finalized workflows, events handled, stream lengths.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Redis } from "ioredis";

export function createJobMetrics(registry: Registry) {
  const registers = [registry];
  return {
    stepDuration: new Histogram({
      name: "likeness_job_step_duration_seconds",
      help: "Duration of a job step (worker steps from step_succeeded/step_failed; script in the api)",
      labelNames: ["step", "engine", "outcome", "reused"] as const,
      buckets: [0.05, 0.25, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    }),
    stepFailures: new Counter({
      name: "likeness_job_step_failures_total",
      help: "Job steps that failed, by step and error code",
      labelNames: ["step", "code"] as const,
      registers,
    }),
    jobRetries: new Counter({
      name: "likeness_job_retries_total",
      help: "Jobs retried by a user (a new attempt of the same job)",
      labelNames: ["kind"] as const,
      registers,
    }),
    jobsFinalized: new Counter({
      name: "likeness_jobs_finalized_total",
      help: "Workflows finalized, by job kind and outcome",
      labelNames: ["kind", "state"] as const,
      registers,
    }),
    eventsHandled: new Counter({
      name: "likeness_job_events_total",
      help: "Events read from the events stream, by type and how they were handled",
      labelNames: ["type", "result"] as const,
      registers,
    }),
  };
}
export type JobMetrics = ReturnType<typeof createJobMetrics>;

/** Gauge of XLEN for each stream, read at scrape time. */
export function registerStreamLengthGauge(registry: Registry, redis: Redis, streams: string[]): void {
  new Gauge({
    name: "likeness_stream_length",
    help: "Entries in the Redis job and event streams (XLEN)",
    labelNames: ["stream"] as const,
    registers: [registry],
    async collect() {
      for (const stream of streams) {
        try {
          this.set({ stream }, await redis.xlen(stream));
        } catch {
          // Redis unreachable: leave the last value rather than fail the whole scrape.
        }
      }
    },
  });
}
