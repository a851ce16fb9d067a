// Job metrics on the app's registry (app.metrics, served at /metrics by the core): per-step
// durations, step failures, retries, finalized workflows, commands re-sent, events handled, stream lengths.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Redis } from "ioredis";
import { JobKind, TERMINAL_JOB_STATES } from "@likeness/contracts";

export function createJobMetrics(registry: Registry) {
  const registers = [registry];
  const metrics = {
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
    commandsResent: new Counter({
      name: "likeness_api_commands_resent_total",
      help: "Job commands the reconciler sent again (lost with Redis, acknowledged without an end, stale) or sent late (Redis was away at dispatch)",
      labelNames: ["kind"] as const,
      registers,
    }),
    eventsHandled: new Counter({
      name: "likeness_job_events_total",
      help: "Events read from the events stream, by type and how they were handled",
      labelNames: ["type", "result"] as const,
      registers,
    }),
  };
  // Series from the start, at 0: a counter first seen at 1 hides that first job from increase()
  // (the alert rule on the failure ratio reads jobsFinalized; each api restart would lose one).
  for (const kind of JobKind.options) {
    metrics.commandsResent.inc({ kind }, 0);
    metrics.jobRetries.inc({ kind }, 0);
    for (const state of TERMINAL_JOB_STATES) metrics.jobsFinalized.inc({ kind, state }, 0);
  }
  return metrics;
}
export type JobMetrics = ReturnType<typeof createJobMetrics>;

/**
 * Gauge of XLEN for each stream, read at scrape time. While Redis is known to be down it is not
 * asked (a scrape would wait for it): the last values stay.
 */
export function registerStreamLengthGauge(registry: Registry, redis: Redis, streams: string[], redisUp: () => boolean): void {
  new Gauge({
    name: "likeness_stream_length",
    help: "Entries in the Redis job and event streams (XLEN)",
    labelNames: ["stream"] as const,
    registers: [registry],
    async collect() {
      if (!redisUp()) return;
      await Promise.all(
        streams.map(async (stream) => {
          try {
            this.set({ stream }, await redis.xlen(stream));
          } catch {
            // Redis unreachable: leave the last value rather than fail the whole scrape.
          }
        }),
      );
    },
  });
}
