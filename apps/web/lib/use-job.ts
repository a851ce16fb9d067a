"use client";
// A job, live: the WebSocket's snapshot, then its events and progress applied as they come. The
// socket reconnects on its own (the server's first message is always a fresh snapshot, so a
// reload or a dropped connection shows the same state); a retry starts a new attempt and a new
// socket.
import { useCallback, useEffect, useRef, useState } from "react";
import { isTerminal, JobUpdate, type Job, type JobEvent, type JobStep, type Progress, type StepName } from "@likeness/contracts";
import { api } from "./api";

export interface StepProgress {
  fraction: number;
  message?: string;
  at: string;
}

export interface LogLine {
  at: string;
  text: string;
  tone: "info" | "success" | "error";
}

export type Connection = "connecting" | "live" | "reconnecting" | "ended";

export interface LiveJob {
  job: Job | undefined;
  progress: Partial<Record<StepName, StepProgress>>;
  log: LogLine[];
  connection: Connection;
  /** Listen again after a retry (a new attempt) or a cancel. */
  follow: (job: Job) => void;
}

const MAX_LOG = 200;
const RETRY_MS = [500, 1000, 2000, 5000, 10000];

export function useJob(jobId: string | null | undefined, onEnd?: (job: Job) => void): LiveJob {
  const [job, setJob] = useState<Job>();
  const [progress, setProgress] = useState<Partial<Record<StepName, StepProgress>>>({});
  const [log, setLog] = useState<LogLine[]>([]);
  const [connection, setConnection] = useState<Connection>("connecting");
  const [generation, setGeneration] = useState(0);
  const onEndRef = useRef(onEnd);
  useEffect(() => {
    onEndRef.current = onEnd;
  });

  useEffect(() => {
    if (!jobId) return;
    let socket: WebSocket | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let failures = 0;
    let stopped = false;
    const addLog = (line: LogLine) => setLog((l) => (l.at(-1)?.text === line.text ? l : [...l, line].slice(-MAX_LOG)));

    const open = () => {
      setConnection((c) => (c === "live" ? "reconnecting" : c));
      socket = new WebSocket(api().eventsUrl(jobId));
      socket.onopen = () => {
        failures = 0;
        setConnection("live");
      };
      socket.onmessage = (msg) => {
        const parsed = JobUpdate.safeParse(JSON.parse(String(msg.data)));
        if (!parsed.success) return;
        const u = parsed.data;
        if (u.type === "job") {
          setJob(u.job);
          // Opened mid-job (a reload, a reconnect): the log starts with what the steps have done so far.
          setLog((l) => (l.length ? l : snapshotLines(u.job)));
          if (isTerminal(u.job.state)) {
            stopped = true;
            setConnection("ended");
            onEndRef.current?.(u.job);
          }
        } else if (u.type === "event") {
          setJob((j) => (j && u.event.attempt === j.attempt ? applyEvent(j, u.event) : j));
          const line = eventLine(u.event);
          if (line) addLog(line);
        } else {
          setProgress((p) => ({ ...p, [u.progress.step]: progressOf(u.progress) }));
          if (u.progress.message) addLog({ at: u.progress.at, text: `${stepLabel(u.progress.step)}: ${u.progress.message}`, tone: "info" });
        }
      };
      socket.onclose = (ev) => {
        if (stopped) return;
        if (ev.code === 1008) {
          setConnection("ended"); // the job is gone
          return;
        }
        setConnection("reconnecting");
        timer = setTimeout(open, RETRY_MS[Math.min(failures++, RETRY_MS.length - 1)]);
      };
    };
    open();
    return () => {
      stopped = true;
      clearTimeout(timer);
      socket?.close();
    };
  }, [jobId, generation]);

  const follow = useCallback((next: Job) => {
    setJob(next);
    setProgress({});
    setConnection("connecting");
    setGeneration((g) => g + 1);
  }, []);

  return { job, progress, log, connection, follow };
}

function progressOf(p: Progress): StepProgress {
  return { fraction: p.fraction, message: p.message, at: p.at };
}

/** The snapshot as it would be after this event (the server's next snapshot agrees). */
export function applyEvent(job: Job, e: JobEvent): Job {
  const step = (name: StepName, change: (s: JobStep) => JobStep): Job => ({
    ...job,
    steps: job.steps.map((s) => (s.name === name ? change(s) : s)),
  });
  switch (e.type) {
    case "job_started":
      return { ...job, state: job.state === "queued" ? "running" : job.state };
    case "step_started":
      return step(e.step, (s) => ({ ...s, state: "running", engine: e.engine, startedAt: e.at, finishedAt: null, error: null }));
    case "step_succeeded":
      return step(e.step, (s) => ({ ...s, state: "succeeded", engine: e.engine, durationMs: e.durationMs, reused: e.reused, finishedAt: e.at }));
    case "step_failed":
      return step(e.step, (s) => ({ ...s, state: "failed", engine: e.engine, durationMs: e.durationMs, error: e.error, finishedAt: e.at }));
    case "job_finished":
      return job; // the final snapshot follows at once, with the outcome as the api recorded it
  }
}

function eventLine(e: JobEvent): LogLine | undefined {
  switch (e.type) {
    case "job_started":
      return { at: e.at, text: `Started on ${e.worker}`, tone: "info" };
    case "step_started":
      return startedLine(e.step, e.engine, e.at);
    case "step_succeeded":
      return succeededLine(e.step, e.reused, e.durationMs, e.at);
    case "step_failed":
      return failedLine(e.step, e.error.message, e.at);
    case "job_finished":
      return { at: e.at, text: `Finished: ${e.state}`, tone: e.state === "succeeded" ? "success" : "error" };
  }
}

function snapshotLines(job: Job): LogLine[] {
  const lines: LogLine[] = [];
  for (const s of job.steps) {
    if (s.startedAt && !s.reused) lines.push(startedLine(s.name, s.engine ?? "?", s.startedAt));
    if (s.finishedAt && s.state === "succeeded") lines.push(succeededLine(s.name, s.reused, s.durationMs ?? 0, s.finishedAt));
    if (s.finishedAt && s.state === "failed") lines.push(failedLine(s.name, s.error?.message ?? "", s.finishedAt));
  }
  return lines.sort((a, b) => a.at.localeCompare(b.at));
}

// One wording for a step's lines, live (events) or rebuilt (a snapshot).
const startedLine = (step: StepName, engine: string, at: string): LogLine => ({ at, text: `${stepLabel(step)} started (${engine})`, tone: "info" });
const succeededLine = (step: StepName, reused: boolean, ms: number, at: string): LogLine => ({
  at,
  text: `${stepLabel(step)} ${reused ? "reused" : `done in ${seconds(ms)}`}`,
  tone: "success",
});
const failedLine = (step: StepName, message: string, at: string): LogLine => ({ at, text: `${stepLabel(step)} failed: ${message}`, tone: "error" });

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** What a person calls each step. */
export const STEP_LABELS: Record<StepName, string> = {
  prepare: "Prepare photos and voice",
  train_lora: "Learn the face",
  train_voice: "Learn the voice",
  evaluate: "Check the likeness",
  script: "Script",
  image: "Scene image",
  motion: "Motion",
  tts: "Speech",
  lipsync: "Lip sync",
  talking_head: "Talking head",
  upscale: "Upscale",
  mux: "Video file",
  publish: "Publish",
};

export const stepLabel = (s: StepName): string => STEP_LABELS[s];
