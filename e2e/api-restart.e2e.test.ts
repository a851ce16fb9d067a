// The api is SIGKILLed while a video job runs and a new api process starts on the same database,
// Redis and storage: the job still finishes, succeeded, exactly once.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { GENERATE_VIDEO_STEPS, type Profile } from "@likeness/contracts";
import { Client, describeUpdate, summarize } from "./harness/client.js";
import { Stack, skipE2e } from "./harness/stack.js";
import { startTrainedStack } from "./harness/trained-stack.js";
import { expectPlayableVideo } from "./harness/video-checks.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(await skipE2e())("e2e: api restarted mid-job", () => {
  let stack: Stack;
  let a: Client;
  let profile: Profile;

  beforeAll(async () => {
    // tts sleeps 3 s (test-only fault): the worker is surely mid-job while no api is running.
    ({ stack, a, profile } = await startTrainedStack("api-restart", { LIKENESS_TEST_FAULTS: "tts:sleep=3" }));
  });
  afterAll(async () => {
    await stack?.close();
  });

  test("SIGKILL the api at the first step event, start a new one: the job succeeds once", async () => {
    stack.printLogsOnFailure();
    const t0 = performance.now();
    const { video, job: queued } = await a.createVideo({ profileId: profile.id, narration: "Hello from Likeness. This video was made on a laptop.", pipeline: "sadtalker" });
    const watch = a.watchJob(queued.id);
    await watch.next((u) => u.type === "event" && u.event.type === "step_started", 60_000);

    const oldPid = stack.api.pid;
    await stack.killApi();
    const killedAt = Date.now();
    expect(stack.api.exit?.signal).toBe("SIGKILL");
    const atKill = await stack.db.query<{ state: string }>("select state from jobs where id = $1", [queued.id]);
    expect(atKill.rows[0]?.state, "the job was still running when the api died").toBe("running");
    const socketEnd = await watch.closed;
    expect(socketEnd.code, `the old api's socket ended (${JSON.stringify(socketEnd)}); got ${watch.messages.map(describeUpdate).join(", ")}`).toBeDefined();

    // The worker goes on alone: wait until it has written events that no api consumes yet.
    const events = `${stack.redisKeyPrefix}:events`;
    const writtenSinceKill = async () =>
      (await stack.redis.xrange(events, "-", "+"))
        .map(([, f]) => JSON.parse(f[1]!) as { jobId: string; at: string })
        .filter((e) => e.jobId === queued.id && Date.parse(e.at) > killedAt).length;
    for (let i = 0; i < 200 && (await writtenSinceKill()) < 2; i++) await sleep(100);
    await sleep(300);
    const restartedAt = Date.now();
    await stack.startApi();
    expect(stack.api.pid).not.toBe(oldPid);

    // The new api serves the job's WebSocket too: a snapshot first, and it ends on the terminal one.
    const again = a.watchJob(queued.id);
    const first = await again.next(() => true, 10_000);
    expect(first.type).toBe("job");

    const job = await a.waitJob(queued.id, { timeoutMs: 90_000 });
    const end = await Promise.race([again.closed, sleep(15_000).then(() => "still open")]);
    expect(end, again.messages.map(describeUpdate).join(", ")).toMatchObject({ code: 1000 });
    const last = again.messages.at(-1);
    expect(last?.type === "job" && last.job.state).toBe("succeeded");
    const sec = (performance.now() - t0) / 1000;
    expect(job.state, JSON.stringify(summarize(job))).toBe("succeeded");
    expect(job.attempt).toBe(1);
    await expectPlayableVideo(stack, a, video, job, "sadtalker");
    // Every step ran once: nothing was redone or reused within the attempt.
    expect(job.steps.filter((s) => s.reused).map((s) => s.name)).toEqual([]);

    // Exactly once, as the database and the events stream see it.
    const videos = await stack.db.query<{ n: string }>("select count(*) as n from videos where job_id = $1", [queued.id]);
    expect(Number(videos.rows[0]!.n)).toBe(1);
    expect((await a.json<{ videos: { id: string }[] }>("GET", "/v1/videos")).videos.map((v) => v.id)).toEqual([video.id]);
    const steps = await stack.db.query<{ name: string; state: string; attempt: number }>(
      "select name, state, attempt from job_steps where job_id = $1 order by name",
      [queued.id],
    );
    expect(steps.rows.map((r) => [r.name, r.state, r.attempt])).toEqual(
      [...GENERATE_VIDEO_STEPS.sadtalker].sort().map((n) => [n, "succeeded", 1]),
    );
    const entries = (await stack.redis.xrange(events, "-", "+")).map(([, f]) => JSON.parse(f[1]!) as { type: string; jobId: string; at: string; step?: string });
    const mine = entries.filter((e) => e.jobId === queued.id);
    expect(mine.filter((e) => e.type === "job_finished")).toHaveLength(1);
    expect(mine.filter((e) => e.type === "job_started")).toHaveLength(1);
    for (const name of GENERATE_VIDEO_STEPS.sadtalker.filter((n) => n !== "script")) {
      expect(mine.filter((e) => e.type === "step_succeeded" && e.step === name), `step_succeeded ${name}`).toHaveLength(1);
    }
    // The scenario really happened: the worker wrote events while no api was there.
    const whileDown = mine.filter((e) => Date.parse(e.at) > killedAt && Date.parse(e.at) < restartedAt);
    expect(whileDown.length, "events written while the api was down").toBeGreaterThan(0);
    // And the new api consumed and acknowledged all of them.
    const pending = (await stack.redis.xpending(events, "api")) as [number, ...unknown[]];
    expect(pending[0]).toBe(0);
    console.info(`e2e timing: api restart job ${sec.toFixed(1)} s; ${whileDown.length} events written while the api was down`);
  }, 150_000);
});
