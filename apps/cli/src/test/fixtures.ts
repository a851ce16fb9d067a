// Shared test data: contract-valid jobs and updates.
import type { Job, JobUpdate } from "@likeness/contracts";

export const JOB_ID = "11111111-1111-4111-8111-111111111111";
export const PROFILE_ID = "22222222-2222-4222-8222-222222222222";
export const VIDEO_ID = "33333333-3333-4333-8333-333333333333";
export const AT = "2025-01-01T00:00:00.000Z";
export const at = (sec: number) => new Date(Date.parse(AT) + sec * 1000).toISOString();

const step = (name: Job["steps"][number]["name"]): Job["steps"][number] => ({
  name,
  state: "pending",
  engine: null,
  licence: null,
  nonCommercial: false,
  attempt: null,
  startedAt: null,
  finishedAt: null,
  durationMs: null,
  reused: false,
  error: null,
  outputs: null,
  artifacts: [],
});

export function trainJob(overrides: Partial<Job> = {}): Job {
  return {
    id: JOB_ID,
    kind: "train_profile",
    state: "queued",
    attempt: 1,
    profileId: PROFILE_ID,
    videoId: null,
    licenceNotices: [],
    steps: ["prepare", "train_lora", "train_voice", "evaluate", "publish"].map((n) => step(n as never)),
    error: null,
    createdAt: AT,
    finishedAt: null,
    ...overrides,
  };
}

export const ev = {
  stepStarted: (s: string, sec: number, engine = "dataset"): JobUpdate => ({
    type: "event",
    event: { v: 1, eventId: crypto.randomUUID(), jobId: JOB_ID, attempt: 1, at: at(sec), type: "step_started", step: s as never, engine },
  }),
  stepSucceeded: (s: string, sec: number, durationMs: number, engine = "dataset", outputs: Record<string, unknown> = {}): JobUpdate => ({
    type: "event",
    event: { v: 1, eventId: crypto.randomUUID(), jobId: JOB_ID, attempt: 1, at: at(sec), type: "step_succeeded", step: s as never, engine, artifacts: [], outputs, durationMs, reused: false },
  }),
  stepFailed: (s: string, sec: number): JobUpdate => ({
    type: "event",
    event: {
      v: 1, eventId: crypto.randomUUID(), jobId: JOB_ID, attempt: 1, at: at(sec), type: "step_failed", step: s as never, engine: "dataset",
      error: { code: "bad_input", message: "no face found in any photo", retryable: false }, durationMs: 500,
    },
  }),
  progress: (s: string, fraction: number, message?: string): JobUpdate => ({
    type: "progress",
    progress: { v: 1, jobId: JOB_ID, attempt: 1, step: s as never, fraction, message, at: at(1) },
  }),
  finished: (state: "succeeded" | "failed" | "cancelled", sec: number): JobUpdate => ({
    type: "event",
    event: {
      v: 1, eventId: crypto.randomUUID(), jobId: JOB_ID, attempt: 1, at: at(sec), type: "job_finished", state,
      ...(state === "failed" ? { error: { code: "bad_input" as const, message: "no face found in any photo", retryable: false, step: "prepare" as const } } : {}),
    },
  }),
};
