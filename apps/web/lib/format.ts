// How numbers, times and states read in the studio.
import type { JobState, ProfileState } from "@likeness/contracts";

export function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 ** 2).toFixed(1)} MB`;
}

export function when(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** The words for each state, and the tone its badge shows in. */
export const STATE_TEXT: Record<JobState | ProfileState, { text: string; tone: "neutral" | "busy" | "good" | "bad" }> = {
  draft: { text: "Draft", tone: "neutral" },
  queued: { text: "Queued", tone: "busy" },
  training: { text: "Training", tone: "busy" },
  trained: { text: "Trained", tone: "good" },
  running: { text: "Running", tone: "busy" },
  cancelling: { text: "Cancelling", tone: "busy" },
  succeeded: { text: "Ready", tone: "good" },
  failed: { text: "Failed", tone: "bad" },
  cancelled: { text: "Cancelled", tone: "neutral" },
};
