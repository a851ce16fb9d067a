// Live job display as pure functions: a view is folded from the job snapshot and each update,
// then rendered to lines. The terminal code (wait.ts) only prints what these return.
import { isTerminal, type Job, type JobUpdate, type StepError, type StepName } from "@likeness/contracts";
import { stepNote } from "@likeness/client";

type StepState = Job["steps"][number]["state"];

export interface StepView {
  name: StepName;
  state: StepState;
  engine: string | null;
  /** 0..1; 1 once succeeded. */
  fraction: number;
  message?: string;
  startedAt: number | null;
  durationMs: number | null;
  reused: boolean;
  error: StepError | null;
  /** What the step said about its work (see stepNote), once it succeeded. */
  note?: string;
}

export interface JobView {
  id: string;
  kind: Job["kind"];
  state: Job["state"];
  attempt: number;
  steps: StepView[];
  error: Job["error"];
}


const ms = (iso: string | null | undefined) => (iso ? Date.parse(iso) : null);

export function viewFromJob(job: Job, previous?: JobView): JobView {
  return {
    id: job.id,
    kind: job.kind,
    state: job.state,
    attempt: job.attempt,
    error: job.error,
    steps: job.steps.map((s) => {
      const before = previous?.steps.find((p) => p.name === s.name);
      return {
        name: s.name,
        state: s.state,
        engine: s.engine,
        fraction: s.state === "succeeded" ? 1 : s.state === "running" ? (before?.fraction ?? 0) : 0,
        message: s.state === "running" ? before?.message : undefined,
        startedAt: ms(s.startedAt),
        durationMs: s.durationMs,
        reused: s.reused,
        error: s.error,
        note: s.state === "succeeded" ? stepNote(s.outputs) : undefined,
      };
    }),
  };
}

/** Fold one WebSocket message into the view (returns a new view; the input is not changed). */
export function applyUpdate(view: JobView | undefined, update: JobUpdate): JobView | undefined {
  if (update.type === "job") return viewFromJob(update.job, view);
  if (!view) return view;
  const next: JobView = { ...view, steps: view.steps.map((s) => ({ ...s })) };
  const step = (name: StepName) => {
    let s = next.steps.find((x) => x.name === name);
    if (!s) {
      s = { name, state: "pending", engine: null, fraction: 0, startedAt: null, durationMs: null, reused: false, error: null };
      next.steps.push(s);
    }
    return s;
  };
  if (update.type === "progress") {
    const p = update.progress;
    if (p.attempt !== view.attempt) return view;
    const s = step(p.step);
    if (s.state === "pending") s.state = "running";
    if (s.state === "running") {
      s.fraction = Math.max(s.fraction, p.fraction);
      s.message = p.message;
      s.startedAt ??= ms(p.at);
    }
    return next;
  }
  const e = update.event;
  if (e.attempt !== view.attempt && e.type !== "job_finished") return view;
  switch (e.type) {
    case "job_started":
      if (!isTerminal(next.state)) next.state = "running";
      break;
    case "step_started": {
      const s = step(e.step);
      Object.assign(s, { state: "running", engine: e.engine, startedAt: ms(e.at), fraction: 0, error: null, note: undefined });
      if (!isTerminal(next.state)) next.state = "running";
      break;
    }
    case "step_succeeded": {
      const s = step(e.step);
      Object.assign(s, { state: "succeeded", engine: e.engine, fraction: 1, durationMs: e.durationMs, reused: e.reused, message: undefined, note: stepNote(e.outputs) });
      break;
    }
    case "step_failed": {
      const s = step(e.step);
      // A step stopped by a cancel is recorded by the api as cancelled, not failed.
      Object.assign(s, { state: e.error.code === "cancelled" ? "cancelled" : "failed", engine: e.engine, durationMs: e.durationMs, error: e.error });
      break;
    }
    case "job_finished":
      next.state = e.state;
      next.error = e.error ?? null;
      for (const s of next.steps) if (s.state === "running" || (s.state === "pending" && e.state !== "succeeded")) s.state = e.state === "succeeded" ? "succeeded" : "cancelled";
      break;
  }
  return next;
}

export function formatSeconds(msec: number | null): string {
  if (msec === null || !Number.isFinite(msec)) return "";
  const s = Math.max(0, msec) / 1000;
  return s < 60 ? `${s.toFixed(1)}s` : `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
}

function elapsed(s: StepView, now: number): number | null {
  if (s.durationMs !== null && s.state !== "running") return s.durationMs;
  if (s.startedAt !== null && s.state === "running") return now - s.startedAt;
  return s.durationMs;
}

export function bar(fraction: number, width: number): string {
  const f = Math.min(1, Math.max(0, fraction));
  const full = Math.round(f * width);
  return "█".repeat(full) + "░".repeat(width - full);
}

const MARK: Record<StepState, string> = { pending: " ", running: "›", succeeded: "✓", failed: "✗", cancelled: "-" };

/** The TTY display: a header, then one line per step (name, engine, bar, %, elapsed). */
export function renderLines(view: JobView, now: number, opts: { barWidth?: number; columns?: number } = {}): string[] {
  const barWidth = opts.barWidth ?? 24;
  const nameW = Math.max(4, ...view.steps.map((s) => s.name.length));
  const engineW = Math.max(6, ...view.steps.map((s) => (s.engine ?? "").length));
  const lines = [`${view.kind} ${view.id}  ${view.state}${view.attempt > 1 ? `  (attempt ${view.attempt})` : ""}`];
  for (const s of view.steps) {
    const pct = s.state === "pending" ? "" : `${Math.floor(s.fraction * 100)}%`;
    const tailText = s.state === "failed" && s.error
      ? `${s.error.code}: ${s.error.message}`
      : [s.reused ? "reused" : s.message, s.note && `— ${s.note}`].filter(Boolean).join(" ");
    let line = `${MARK[s.state]} ${s.name.padEnd(nameW)}  ${(s.engine ?? "").padEnd(engineW)}  ${bar(s.fraction, barWidth)} ${pct.padStart(4)}  ${formatSeconds(elapsed(s, now)).padStart(6)}`;
    if (tailText) line += `  ${tailText}`;
    lines.push(line);
  }
  const cols = opts.columns;
  return cols ? lines.map((l) => (l.length > cols ? l.slice(0, Math.max(0, cols - 1)) + "…" : l)) : lines;
}

/**
 * Not a TTY: one plain line per event. Progress is printed only when a step has moved on by a
 * tenth since the last printed line (`printed` remembers that, keyed by step).
 */
export function plainLine(update: JobUpdate, printed: Map<string, number>): string | undefined {
  if (update.type === "job") return `job ${update.job.id} ${update.job.kind} ${update.job.state}`;
  if (update.type === "progress") {
    const p = update.progress;
    const tenth = Math.floor(p.fraction * 10);
    if ((printed.get(p.step) ?? -1) >= tenth) return undefined;
    printed.set(p.step, tenth);
    return `progress ${p.step} ${Math.floor(p.fraction * 100)}%${p.message ? ` ${p.message}` : ""}`;
  }
  const e = update.event;
  switch (e.type) {
    case "job_started":
      return `job started on ${e.worker}`;
    case "step_started":
      return `step ${e.step} started (${e.engine})`;
    case "step_succeeded":
      return `step ${e.step} succeeded (${e.engine}) in ${formatSeconds(e.durationMs)}${e.reused ? ", reused" : ""}${noteOf(e.outputs)}`;
    case "step_failed":
      if (e.error.code === "cancelled") return `step ${e.step} cancelled (${e.engine}): ${e.error.message}`;
      return `step ${e.step} failed (${e.engine}): ${e.error.code}: ${e.error.message}`;
    case "job_finished":
      if (e.state === "cancelled") return "job cancelled";
      return `job ${e.state}${e.error ? `: ${e.error.step ? `${e.error.step}: ` : ""}${e.error.code}: ${e.error.message}` : ""}`;
  }
}

const noteOf = (outputs: Record<string, unknown>): string => {
  const note = stepNote(outputs);
  return note ? ` — ${note}` : "";
};

/** The closing line, and the exit status it implies. */
export function finalSummary(job: Job): { line: string; exitCode: number } {
  const total = job.finishedAt ? Date.parse(job.finishedAt) - Date.parse(job.createdAt) : null;
  if (job.state === "succeeded") return { line: `${job.kind} ${job.id} succeeded in ${formatSeconds(total)}`, exitCode: 0 };
  if (job.state === "failed") {
    const failedStep = job.error?.step ?? job.steps.find((s) => s.state === "failed")?.name;
    const err = job.error ?? job.steps.find((s) => s.error)?.error;
    return {
      line: `${job.kind} ${job.id} failed${failedStep ? ` at step ${failedStep}` : ""}: ${err ? `${err.code}: ${err.message}` : "no error recorded"}${err?.retryable ? " (retryable: likeness job retry " + job.id + ")" : ""}`,
      exitCode: 1,
    };
  }
  if (job.state === "cancelled") return { line: `${job.kind} ${job.id} cancelled (run it again: likeness job retry ${job.id})`, exitCode: 1 };
  return { line: `${job.kind} ${job.id} ${job.state}`, exitCode: 0 };
}
