// A job_finished event made by the api itself: a job cancelled or failed before a worker took it,
// or rebuilt from the row when a restarted api resumes a workflow.
import { randomUUID } from "node:crypto";
import { PROTOCOL_VERSION, type JobEvent } from "@likeness/contracts";
import type { JobRow } from "../db/types.js";

export type JobFinished = Extract<JobEvent, { type: "job_finished" }>;

export function jobFinishedEvent(
  job: Pick<JobRow, "id" | "attempt">,
  end: { state: JobFinished["state"]; error?: JobFinished["error"]; result?: JobFinished["result"]; at?: Date },
): JobFinished {
  return {
    v: PROTOCOL_VERSION,
    type: "job_finished",
    eventId: randomUUID(),
    jobId: job.id,
    attempt: job.attempt,
    at: (end.at ?? new Date()).toISOString(),
    state: end.state,
    ...(end.result ? { result: end.result } : {}),
    ...(end.error ? { error: end.error } : {}),
  };
}
