// A step fails (test-only fault injection in the worker, LIKENESS_TEST_FAULTS, see
// worker/likeness_worker/faults.py); the error is visible on the job; a retry is attempt 2 and re-runs
// only what did not succeed before: the steps that succeeded in attempt 1 are reused, untouched.
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { GENERATE_VIDEO_STEPS, type Job, type Profile } from "@likeness/contracts";
import { Client, summarize } from "./harness/client.js";
import { Stack, skipE2e } from "./harness/stack.js";
import { startTrainedStack } from "./harness/trained-stack.js";
import { expectPlayableVideo } from "./harness/video-checks.js";

const NARRATION = "Hello from Likeness. This video was made on a laptop.";

/** path → "size mtime" of every object a step wrote (jobs/<jobId>/<step>/…). */
function stepFiles(stack: Stack, jobId: string, step: string): Record<string, string> {
  const dir = stack.objectPath(`jobs/${jobId}/${step}`);
  const out: Record<string, string> = {};
  if (!fs.existsSync(dir)) return out;
  for (const name of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const st = fs.statSync(path.join(dir, name));
    if (st.isFile()) out[`${step}/${name}`] = `${st.size} ${st.mtimeMs}`;
  }
  return out;
}

/**
 * Runs a sadtalker video whose attempt 1 fails in `failing`, checks the error, retries, and checks
 * that attempt 2 succeeded reusing every step that had succeeded (its files untouched).
 */
async function failThenRetry(stack: Stack, a: Client, profile: Profile, failing: string): Promise<{ first: Job; second: Job }> {
  const { video, job: queued } = await a.createVideo({ profileId: profile.id, narration: NARRATION, pipeline: "sadtalker" });
  const first = await a.waitJob(queued.id, { timeoutMs: 90_000 });
  expect(first.state, JSON.stringify(summarize(first))).toBe("failed");
  expect(first.attempt).toBe(1);
  expect(first.error).toMatchObject({ step: failing, code: "engine_failed", retryable: true, message: expect.stringContaining("injected fault") });
  const failed = first.steps.find((s) => s.name === failing)!;
  expect(failed.state).toBe("failed");
  expect(failed.error).toMatchObject({ code: "engine_failed", message: expect.stringContaining("injected fault") });
  expect(failed.engine, "the failed step names its engine").toBeTruthy();
  const videoAfterFail = await a.json<{ state: string }>("GET", `/v1/videos/${video.id}`);
  expect(videoAfterFail.state).toBe("failed");
  expect((await a.fetch(`/v1/videos/${video.id}/file`)).status, "no file for a failed video").not.toBe(200);

  const succeededBefore = first.steps.filter((s) => s.state === "succeeded").map((s) => s.name);
  const workerSteps = succeededBefore.filter((n) => n !== "script");
  const filesBefore = Object.assign({}, ...workerSteps.map((n) => stepFiles(stack, queued.id, n)));

  const retried = await a.json<Job>("POST", `/v1/jobs/${queued.id}/retry`, undefined, 202);
  expect(retried.id).toBe(queued.id);
  expect(retried.attempt).toBe(2);
  const second = await a.waitJob(queued.id, { timeoutMs: 90_000 });
  expect(second.state, JSON.stringify(summarize(second))).toBe("succeeded");
  expect(second.attempt).toBe(2);
  expect(second.error).toBeNull();
  await expectPlayableVideo(stack, a, video, second, "sadtalker");

  const byName = Object.fromEntries(second.steps.map((s) => [s.name, s]));
  // The failed step really ran again, in attempt 2.
  expect(byName[failing]?.reused, `the failed step ${failing} re-ran`).toBe(false);
  expect(byName[failing]?.attempt).toBe(2);
  // The reused steps' outputs were not rewritten.
  expect(Object.assign({}, ...workerSteps.map((n) => stepFiles(stack, queued.id, n)))).toEqual(filesBefore);
  // What had succeeded in attempt 1 shows reused=true; what had not (the failed step and the steps
  // after it) ran in attempt 2. One comparison, so a failure shows every step at once.
  expect(
    Object.fromEntries(second.steps.map((s) => [s.name, s.reused])),
    `reused per step (attempt 1 succeeded: ${succeededBefore.join(", ")})`,
  ).toEqual(Object.fromEntries(second.steps.map((s) => [s.name, succeededBefore.includes(s.name)])));
  return { first, second };
}

describe.skipIf(await skipE2e())("e2e: retry after an injected failure", () => {
  let stack: Stack;
  let a: Client;
  let profile: Profile;

  beforeAll(async () => {
    // tts fails in attempt 1 (and in its in-process retries, which are still attempt 1).
    ({ stack, a, profile } = await startTrainedStack("retry", { LIKENESS_TEST_FAULTS: "tts:1" }));
  });
  afterAll(async () => {
    await stack?.close();
  });

  test("tts fails once → job failed with step, code and message → retry: attempt 2 succeeds, earlier steps reused", async () => {
    stack.printLogsOnFailure();
    const { first, second } = await failThenRetry(stack, a, profile, "tts");
    // image runs beside tts; script (api) always succeeds before dispatch.
    expect(first.steps.filter((s) => s.state === "succeeded").map((s) => s.name)).toContain("script");
    console.info(`e2e: tts retry: attempt 1 ${JSON.stringify(summarize(first))}; attempt 2 ${JSON.stringify(summarize(second))}`);
  }, 120_000);

  test("mux fails once → retry re-runs mux and publish only; image, tts, talking_head, upscale reused", async () => {
    stack.printLogsOnFailure();
    stack.worker.env = { ...stack.worker.env, LIKENESS_TEST_FAULTS: "mux:1" };
    await stack.restartWorker();
    const { second } = await failThenRetry(stack, a, profile, "mux");
    expect(second.steps.filter((s) => !s.reused).map((s) => s.name)).toEqual(["mux", "publish"]);
    expect(second.steps.filter((s) => s.state === "succeeded").map((s) => s.name)).toEqual([...GENERATE_VIDEO_STEPS.sadtalker]);
  }, 120_000);
});
