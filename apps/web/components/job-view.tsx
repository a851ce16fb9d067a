"use client";
// A job as it runs: each step with its engine, progress bar, elapsed time and ETA; a log; the
// failed step named with its message and a Retry that re-runs only what did not succeed; Cancel.
import { useState } from "react";
import { isTerminal, type JobStep } from "@likeness/contracts";
import { api, errorText } from "@/lib/api";
import { duration } from "@/lib/format";
import { TASK_LABELS } from "@/lib/video-options";
import { stepLabel, type LiveJob, type StepProgress } from "@/lib/use-job";
import { useNow } from "@/lib/use-now";
import { StateBadge } from "./state-badge";

export function JobView({ live, title }: { live: LiveJob; title: string }) {
  const { job, progress, log, connection, follow } = live;
  const [busy, setBusy] = useState<"retry" | "cancel">();
  const [problem, setProblem] = useState<string>();
  const running = !!job && !isTerminal(job.state);
  const now = useNow(running);

  if (!job) {
    return (
      <section className="card" aria-labelledby="job-title" aria-busy="true">
        <h2 id="job-title">{title}</h2>
        <p className="muted">Connecting to the job…</p>
      </section>
    );
  }

  const act = async (what: "retry" | "cancel") => {
    setBusy(what);
    setProblem(undefined);
    try {
      follow(what === "retry" ? await api().retryJob(job.id) : await api().cancelJob(job.id));
    } catch (err) {
      setProblem(errorText(err));
    } finally {
      setBusy(undefined);
    }
  };
  const failedStep = job.steps.find((s) => s.state === "failed");
  const canRetry = job.state === "failed" || job.state === "cancelled";
  const canCancel = job.state === "queued" || job.state === "running";

  return (
    <section className="card" aria-labelledby="job-title" data-testid="job-view" data-job-state={job.state}>
      <div className="card-head">
        <h2 id="job-title">{title}</h2>
        <StateBadge state={job.state} />
        <span className={`connection connection-${connection}`}>
          {connection === "live" ? "Live" : connection === "reconnecting" ? "Reconnecting…" : connection === "connecting" ? "Connecting…" : ""}
        </span>
      </div>
      {job.attempt > 1 && <p className="muted">Attempt {job.attempt}: the steps that had succeeded are reused.</p>}

      {job.state === "failed" && (
        <div role="alert" className="error-box">
          <p>
            <strong>{failedStep ? `${stepLabel(failedStep.name)} failed` : "The job failed"}:</strong>{" "}
            {failedStep?.error?.message ?? job.error?.message ?? "no reason was given"}
          </p>
          {(failedStep?.error ?? job.error)?.retryable === false && (
            <p className="muted">This looks like a problem with the inputs: a retry may fail the same way.</p>
          )}
        </div>
      )}
      {job.state === "cancelled" && <p className="notice">The job was cancelled. Retry runs what had not finished.</p>}
      {job.licenceNotices.length > 0 && (
        <p className="notice" data-testid="licence-notices">
          Non-commercial licence:{" "}
          {job.licenceNotices.map((n) => `${n.engine} (${TASK_LABELS[n.taskKind] ?? n.taskKind}, ${n.licence})`).join("; ")}. Do not use
          what this job makes commercially.
        </p>
      )}

      <ol className="steps">
        {job.steps.map((s) => (
          <StepRow key={s.name} step={s} progress={progress[s.name]} now={now} />
        ))}
      </ol>

      <div className="actions">
        {canRetry && (
          <button type="button" className="button primary" onClick={() => void act("retry")} disabled={!!busy}>
            {busy === "retry" ? "Retrying…" : "Retry"}
          </button>
        )}
        {canCancel && (
          <button type="button" className="button" onClick={() => void act("cancel")} disabled={!!busy}>
            {busy === "cancel" ? "Cancelling…" : "Cancel"}
          </button>
        )}
      </div>
      {problem && (
        <p role="alert" className="error-note">
          {problem}
        </p>
      )}

      <details className="log" open={running}>
        <summary>Log ({log.length})</summary>
        {log.length === 0 ? (
          <p className="muted">Messages from the steps show here as they come.</p>
        ) : (
          <div role="log" aria-label="Job log" className="log-lines" tabIndex={0}>
            <ol>
              {log.map((l, i) => (
                <li key={i} className={`log-${l.tone}`}>
                  <time dateTime={l.at}>{new Date(l.at).toLocaleTimeString()}</time> {l.text}
                </li>
              ))}
            </ol>
          </div>
        )}
      </details>
    </section>
  );
}

function StepRow({ step, progress, now }: { step: JobStep; progress: StepProgress | undefined; now: number }) {
  const label = stepLabel(step.name);
  const started = step.startedAt ? Date.parse(step.startedAt) : undefined;
  const elapsed = step.state === "running" && started ? now - started : step.durationMs ?? undefined;
  const fraction = step.state === "succeeded" ? 1 : step.state === "running" ? (progress?.fraction ?? 0) : 0;
  // An ETA once the step has said how far it is: the time so far, scaled to what is left.
  const eta = step.state === "running" && elapsed !== undefined && fraction >= 0.05 && fraction < 1 ? (elapsed / fraction) * (1 - fraction) : undefined;
  return (
    <li className={`step step-${step.state}`} data-step={step.name} data-state={step.state}>
      <div className="step-head">
        <span className="step-name">{label}</span>
        <span className="step-engine">
          {step.engine ? `engine: ${step.engine}` : "engine: chosen when it starts"}
          {step.nonCommercial && <span className="licence-flag" title={step.licence ?? undefined}> · non-commercial licence</span>}
        </span>
        <span className="step-state">{step.reused ? "reused" : STEP_STATE[step.state]}</span>
      </div>
      <progress max={1} value={fraction} aria-label={`${label} progress`} />
      <div className="step-meta">
        {elapsed !== undefined && <span>{step.state === "running" ? "elapsed" : "took"} {duration(elapsed)}</span>}
        {eta !== undefined && <span>about {duration(eta)} left</span>}
        {step.state === "running" && progress?.message && <span className="step-message">{progress.message}</span>}
        {step.state === "failed" && step.error && <span className="step-error">{step.error.message}</span>}
      </div>
    </li>
  );
}

const STEP_STATE: Record<JobStep["state"], string> = {
  pending: "waiting",
  running: "running",
  succeeded: "done",
  failed: "failed",
  cancelled: "cancelled",
};

