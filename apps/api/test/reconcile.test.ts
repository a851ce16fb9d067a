// The reconciler on real Postgres and Redis: a command Redis lost, or acknowledged with no end
// recorded, is sent again and its job ends; a command still waiting in its stream, or held by a
// live worker, is left alone (until it goes stale); a finished job is never resent; one replica
// reconciles at a time; the recovery pass finishes a workflow whose resume did not happen.
// Periods are short here (0.25 s, so the grace is 0.5 s; stale after 1.5 s).
import { afterAll, beforeAll, expect, it } from "vitest";
import { WORKER_GROUP, redisKeys } from "@likeness/contracts";
import { recordEvent } from "../src/events/event-recorder.js";
import { withTryAdvisoryLock } from "../src/db/advisory-lock.js";
import { jobsHandle, type JobsHandle } from "../src/jobs/jobs.plugin.js";
import { createTestApp, describeWithServices, metricValue, signUp, type TestApp } from "./support.js";
import { makeProfile, ScriptedWorker, waitFor } from "./scripted-worker.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeWithServices("reconcile", () => {
  let t: TestApp;
  let h: JobsHandle;
  let worker: ScriptedWorker;
  let keys: ReturnType<typeof redisKeys>;
  let user: Awaited<ReturnType<typeof signUp>>;

  beforeAll(async () => {
    t = await createTestApp({
      env: { API_RECLAIM_IDLE_MS: "200", API_RECONCILE_INTERVAL_S: "0.25", API_RECONCILE_STALE_S: "1.5" },
    });
    h = jobsHandle(t.deps)!;
    keys = redisKeys(t.config.redisKeyPrefix);
    worker = new ScriptedWorker(t.redis, t.config.redisKeyPrefix, t.storage);
    user = await signUp(t.app);
  });
  afterAll(async () => {
    await t?.close();
  });

  const train = async () => {
    const p = await makeProfile(t.db, user.userId);
    const res = await t.app.inject({ method: "POST", url: `/v1/profiles/${p.id}/train`, headers: user.auth });
    expect(res.statusCode, res.body).toBe(202);
    return { profileId: p.id, jobId: res.json().id as string };
  };
  const jobRow = (id: string) => t.db.selectFrom("jobs").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
  const resent = () => metricValue(t.app, "likeness_api_commands_resent_total", 'kind="train_profile"');
  /** Long enough for the grace to pass and a few periodic passes to have looked. */
  const settle = () => sleep(h.reconciler.graceMs + 500);

  it("sends again a command Redis lost (stream and events deleted), and the job then finishes", async () => {
    const before = (await resent()) || 0;
    const { profileId, jobId } = await train();
    const { command: first } = await worker.next("train_profile");
    await worker.send(first, { type: "job_started", worker: worker.name });
    await worker.step(first, "prepare", "dataset");
    await waitFor("prepare recorded", async () =>
      (await t.db.selectFrom("job_steps").select("state").where("job_id", "=", jobId).where("name", "=", "prepare").executeTakeFirstOrThrow()).state === "succeeded",
    );
    // What a Redis restart without persistence leaves: no streams, no groups, no PEL.
    await t.redis.del(keys.jobStream("train_profile"), keys.events);

    const { command: again } = await worker.next("train_profile", 10_000);
    expect(again).toMatchObject({ jobId, attempt: first.attempt, kind: "train_profile", userId: first.userId });
    expect(again.payload).toEqual(first.payload); // one builder for dispatch and resend
    // The worker resumes the attempt: prepare is reused, the rest runs.
    await worker.train(again, { reused: ["prepare"] });
    await waitFor("trained after the resend", async () =>
      (await t.db.selectFrom("profiles").select("state").where("id", "=", profileId).executeTakeFirstOrThrow()).state === "trained",
    );
    const job = await jobRow(jobId);
    expect(job).toMatchObject({ state: "succeeded", attempt: 1 });
    expect(await resent()).toBe(before + 1);
    const steps = await t.db.selectFrom("job_steps").select(["name", "reused"]).where("job_id", "=", jobId).execute();
    expect(steps.find((s) => s.name === "prepare")?.reused).toBe(true);
  });

  it("leaves a command waiting for a worker, or held by a live one, and resends it once it has gone stale", async () => {
    const before = (await resent()) || 0;
    const { jobId } = await train();
    // Undelivered: nobody has read it, however long that takes.
    await settle();
    const report = await h.reconciler.pass();
    expect(report.locked).toBe(true);
    expect(report.resent.map((r) => r.jobId)).not.toContain(jobId);
    expect(await worker.commandsFor("train_profile", jobId)).toBe(1);

    // Held by a worker that keeps re-claiming it (a live one), with no event for longer than the stale time.
    const { entryId, command } = await worker.next("train_profile");
    const until = Date.now() + h.reconciler.staleMs + 700;
    while (Date.now() < until) {
      await worker.touch("train_profile", entryId);
      await sleep(100);
    }
    expect((await h.reconciler.pass()).resent.map((r) => r.jobId)).not.toContain(jobId);
    expect(await worker.commandsFor("train_profile", jobId)).toBe(1);

    // The worker stops (dies): its entry grows idle, no event comes; past the stale time it is sent again.
    // (The counter moves just after the XADD: wait for both.)
    await waitFor("stale command resent", async () => (await worker.commandsFor("train_profile", jobId)) === 2 && (await resent()) === before + 1, 10_000);
    const { command: again } = await worker.next("train_profile");
    expect(again).toMatchObject({ jobId, attempt: command.attempt });
    await worker.train(again);
    await waitFor("job finished", async () => (await jobRow(jobId)).state === "succeeded");
  });

  it("sends again a command a worker acknowledged when no job_finished ever arrived (lost with the events stream)", async () => {
    const { jobId } = await train();
    const { entryId, command } = await worker.next("train_profile");
    await worker.send(command, { type: "job_started", worker: worker.name });
    // The worker acks after it sent job_finished; here that event never reached the api.
    await t.redis.xack(keys.jobStream("train_profile"), WORKER_GROUP, entryId);
    await waitFor("acknowledged command resent", async () => (await worker.commandsFor("train_profile", jobId)) === 2, 10_000);
    const { command: again } = await worker.next("train_profile");
    expect(again).toMatchObject({ jobId, attempt: command.attempt });
    await worker.train(again);
    await waitFor("job finished", async () => (await jobRow(jobId)).state === "succeeded");
  });

  it("never resends a job that has finished, even when its command is gone from Redis", async () => {
    const before = (await resent()) || 0;
    const { jobId } = await train();
    const { command } = await worker.next("train_profile");
    await worker.train(command);
    await waitFor("job finished", async () => (await jobRow(jobId)).state === "succeeded");
    await t.redis.del(keys.jobStream("train_profile"));
    await settle();
    expect((await h.reconciler.pass()).resent).toEqual([]);
    expect(await worker.commandsFor("train_profile", jobId)).toBe(0);
    expect(await resent()).toBe(before);
  });

  it("reconciles on one replica at a time (a Postgres advisory lock)", async () => {
    await withTryAdvisoryLock(t.database.db, "reconcile", async () => {
      expect((await h.reconciler.pass()).locked).toBe(false);
    });
    expect((await h.reconciler.pass()).locked).toBe(true);
  });

  it("finishes, at its next pass, a workflow whose job ended without the workflow resuming", async () => {
    const { profileId, jobId } = await train();
    const { command } = await worker.next("train_profile");
    // Recorded straight into Postgres: as if the api recorded job_finished and failed to resume.
    await recordEvent(t.db, worker.event(command, { type: "job_finished", state: "succeeded", result: worker.assets(jobId) }));
    expect((await t.db.selectFrom("profiles").select("state").where("id", "=", profileId).executeTakeFirstOrThrow()).state).toBe("trained");
    const history = await waitFor("workflow finalized by the recovery pass", async () => {
      const hist = await h.runner.history(jobId, 1, "train_profile");
      return hist[0]?.next.length === 0 ? hist : undefined;
    });
    expect(history[0]!.values).toMatchObject({ outcome: "succeeded" });
  });
});
