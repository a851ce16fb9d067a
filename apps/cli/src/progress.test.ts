import { describe, expect, it } from "vitest";
import { JobUpdate } from "@likeness/contracts";
import { applyUpdate, bar, finalSummary, plainLine, renderLines, viewFromJob, type JobView } from "./progress.js";
import { at, ev, JOB_ID, trainJob } from "./test/fixtures.js";

const fold = (updates: JobUpdate[]) => updates.reduce<JobView | undefined>((v, u) => applyUpdate(v, u), undefined);

describe("progress renderer", () => {
  it("fixtures are contract-valid updates", () => {
    for (const u of [ev.stepStarted("prepare", 1), ev.stepSucceeded("prepare", 2, 1000), ev.progress("train_voice", 0.5), ev.finished("failed", 3), ev.stepFailed("prepare", 1)]) {
      expect(JobUpdate.safeParse(u).success).toBe(true);
    }
  });

  it("draws one line per step with engine, bar, percent and elapsed time", () => {
    const view = fold([
      { type: "job", job: trainJob() },
      ev.stepStarted("prepare", 0),
      ev.stepSucceeded("prepare", 2, 2000),
      ev.stepStarted("train_voice", 2),
      ev.progress("train_voice", 0.5, "measuring pitch"),
    ])!;
    const lines = renderLines(view, Date.parse(at(5)), { barWidth: 10 });
    expect(lines).toHaveLength(6);
    expect(lines[0]).toBe(`train_profile ${JOB_ID}  running`);
    expect(lines[1]).toMatch(/^✓ prepare\s+dataset\s+██████████ 100%\s+2\.0s$/);
    expect(lines[3]).toMatch(/^› train_voice\s+dataset\s+█████░░░░░\s+50%\s+3\.0s {2}measuring pitch$/);
    expect(lines[2]).toMatch(/^ {2}train_lora\s+░{10}\s*$/);
  });

  it("shows the failing step with its code and message", () => {
    const view = fold([{ type: "job", job: trainJob() }, ev.stepStarted("prepare", 0), ev.stepFailed("prepare", 1), ev.finished("failed", 1)])!;
    expect(view.state).toBe("failed");
    const lines = renderLines(view, Date.parse(at(9)));
    expect(lines[1]).toContain("✗ prepare");
    expect(lines[1]).toContain("bad_input: no face found in any photo");
    expect(lines[2]).toMatch(/^- train_lora/);
  });

  it("never moves a bar backwards and ignores updates of another attempt", () => {
    let view = fold([{ type: "job", job: trainJob() }, ev.stepStarted("prepare", 0), ev.progress("prepare", 0.6)])!;
    view = applyUpdate(view, ev.progress("prepare", 0.4))!;
    expect(view.steps[0]!.fraction).toBe(0.6);
    const old = ev.progress("prepare", 0.9);
    if (old.type === "progress") old.progress.attempt = 2;
    expect(applyUpdate(view, old)).toBe(view);
  });

  it("a new snapshot keeps live progress of running steps", () => {
    let view = fold([{ type: "job", job: trainJob() }, ev.stepStarted("prepare", 0), ev.progress("prepare", 0.3)])!;
    const running = trainJob({ state: "running" });
    running.steps[0] = { ...running.steps[0]!, state: "running", engine: "dataset", startedAt: at(0) };
    view = applyUpdate(view, { type: "job", job: running })!;
    expect(view.steps[0]!.fraction).toBe(0.3);
  });

  it("clips lines to the terminal width", () => {
    const view = viewFromJob(trainJob());
    for (const l of renderLines(view, 0, { columns: 30 })) expect(l.length).toBeLessThanOrEqual(30);
  });

  it("bar clamps", () => {
    expect(bar(2, 4)).toBe("████");
    expect(bar(-1, 4)).toBe("░░░░");
  });

  it("plain output: one line per event, progress only every tenth", () => {
    const printed = new Map<string, number>();
    expect(plainLine(ev.stepStarted("prepare", 0), printed)).toBe("step prepare started (dataset)");
    expect(plainLine(ev.progress("prepare", 0.12), printed)).toBe("progress prepare 12%");
    expect(plainLine(ev.progress("prepare", 0.15), printed)).toBeUndefined();
    expect(plainLine(ev.progress("prepare", 0.21, "face 2 of 5"), printed)).toBe("progress prepare 21% face 2 of 5");
    expect(plainLine(ev.stepSucceeded("prepare", 2, 1500), printed)).toBe("step prepare succeeded (dataset) in 1.5s");
    expect(plainLine(ev.finished("failed", 3), printed)).toBe("job failed: prepare: bad_input: no face found in any photo");
  });

  it("shows what a step said about its work: its reason, or how mux handled the video", () => {
    const skipped = { skipped: true, reason: "skipped: the frames are already 512x512" };
    const copied = { video: "copied: already the final H.264 stream", subtitles: "soft", durationSec: 3.2 };
    const view = fold([
      { type: "job", job: trainJob({ kind: "generate_video", steps: [] }) },
      ev.stepSucceeded("tts", 1, 900, "piper", { voice: "en_US-joe-medium", shaping: { rate: 1.02 } }),
      ev.stepSucceeded("upscale", 2, 20, "lanczos", skipped),
      ev.stepSucceeded("mux", 3, 400, "ffmpeg", copied),
    ])!;
    const lines = renderLines(view, Date.parse(at(5)), { barWidth: 10 });
    expect(lines[1]).toMatch(/^✓ tts\s+piper\s+██████████ 100%\s+0\.9s$/);
    expect(lines[2]).toMatch(/^✓ upscale\s+lanczos\s+██████████ 100%\s+0\.0s {2}— skipped: the frames are already 512x512$/);
    expect(lines[3]).toMatch(/ {2}— copied: already the final H\.264 stream$/);

    const printed = new Map<string, number>();
    expect(plainLine(ev.stepSucceeded("upscale", 2, 20, "lanczos", skipped), printed)).toBe(
      "step upscale succeeded (lanczos) in 0.0s — skipped: the frames are already 512x512",
    );
    expect(plainLine(ev.stepSucceeded("tts", 1, 900, "piper", { voice: "en_US-joe-medium" }), printed)).toBe("step tts succeeded (piper) in 0.9s");

    // The same note from the job the api answers (job show), and none for a step that has not succeeded.
    const job = trainJob({ kind: "generate_video", steps: [] });
    job.steps = [
      { ...trainJob().steps[0]!, name: "upscale", state: "succeeded", engine: "lanczos", durationMs: 20, reused: true, outputs: skipped },
      { ...trainJob().steps[0]!, name: "mux", state: "running", engine: "ffmpeg", outputs: copied },
    ];
    const shown = renderLines(viewFromJob(job), Date.parse(at(5)), { barWidth: 10 });
    expect(shown[1]).toMatch(/ {2}reused — skipped: the frames are already 512x512$/);
    expect(shown[2]).not.toContain("copied");
  });

  it("final summary names the failing step, code and message, and fails the exit code", () => {
    const failed = trainJob({ state: "failed", finishedAt: at(3), error: { code: "bad_input", message: "no face found", retryable: false, step: "prepare" } });
    expect(finalSummary(failed)).toEqual({ line: `train_profile ${JOB_ID} failed at step prepare: bad_input: no face found`, exitCode: 1 });
    expect(finalSummary(trainJob({ state: "succeeded", finishedAt: at(75) }))).toEqual({ line: `train_profile ${JOB_ID} succeeded in 1m15s`, exitCode: 0 });
    expect(finalSummary(trainJob({ state: "cancelled" })).exitCode).toBe(1);
  });

  it("a step stopped by a cancel reads as cancelled, not failed", () => {
    const cancelledStep: JobUpdate = {
      type: "event",
      event: {
        v: 1, eventId: crypto.randomUUID(), jobId: JOB_ID, attempt: 1, at: at(2), type: "step_failed", step: "prepare", engine: "dataset",
        error: { code: "cancelled", message: "cancelled while ffmpeg was running", retryable: false }, durationMs: 800,
      },
    };
    const finished: JobUpdate = {
      type: "event",
      event: { v: 1, eventId: crypto.randomUUID(), jobId: JOB_ID, attempt: 1, at: at(2), type: "job_finished", state: "cancelled", error: { code: "cancelled", message: "cancelled", retryable: false } },
    };
    const printed = new Map<string, number>();
    expect(plainLine(cancelledStep, printed)).toBe("step prepare cancelled (dataset): cancelled while ffmpeg was running");
    expect(plainLine(finished, printed)).toBe("job cancelled");
    const view = applyUpdate(applyUpdate(viewFromJob(trainJob({ state: "cancelling" })), cancelledStep), finished)!;
    expect(view.steps.find((x) => x.name === "prepare")!.state).toBe("cancelled");
    expect(finalSummary(trainJob({ state: "cancelled" })).line).toBe(`train_profile ${JOB_ID} cancelled (run it again: likeness job retry ${JOB_ID})`);
  });
});
