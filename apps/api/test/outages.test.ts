// Riding through outages: the app under test reaches Redis and Postgres through TCP proxies that
// the tests cut (connections reset, new ones refused: a restart as a client sees it) and restore.
// The scripted worker and the test's own reads go straight to the servers.
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Kysely } from "kysely";
import type { Database } from "../src/db/types.js";
import { createTestApp, describeWithServices, metricValue, PG_URL, REDIS_URL, signUp } from "./support.js";
import { makeProfile, ScriptedWorker, waitFor } from "./scripted-worker.js";
import { TcpProxy } from "./tcp-proxy.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An app behind its own proxies, a user, a worker on the real Redis. */
async function setup(env: Record<string, string>) {
  const redisProxy = await TcpProxy.start(REDIS_URL);
  const pgProxy = await TcpProxy.start(PG_URL);
  const t = await createTestApp({ env, via: { redisUrl: redisProxy.url(REDIS_URL), postgresUrl: pgProxy.url(PG_URL) } });
  const worker = new ScriptedWorker(t.direct, t.config.redisKeyPrefix, t.storage);
  const user = await signUp(t.app);
  const db: Kysely<Database> = t.database.db; // straight to Postgres
  const train = async () => {
    const p = await makeProfile(db, user.userId);
    const started = Date.now();
    const res = await t.app.inject({ method: "POST", url: `/v1/profiles/${p.id}/train`, headers: user.auth });
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json().state).toBe("queued");
    return { profileId: p.id, jobId: res.json().id as string, tookMs: Date.now() - started };
  };
  const job = (id: string) => db.selectFrom("jobs").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
  const close = async () => {
    await redisProxy.restore();
    await pgProxy.restore();
    await t.close();
    await redisProxy.close();
    await pgProxy.close();
  };
  return { t, redisProxy, pgProxy, worker, user, db, train, job, close };
}

describeWithServices("outages", () => {
  let s: Awaited<ReturnType<typeof setup>>;

  beforeAll(async () => {
    // Dispatch waits 3 s for Redis, then leaves the command to the reconciler (every 0.25 s).
    s = await setup({ API_OUTAGE_MAX_S: "30", API_RECONCILE_INTERVAL_S: "0.25" });
  });
  afterAll(async () => {
    await s?.close();
  });

  const health = () => s.t.app.inject({ method: "GET", url: "/healthz" });
  const outages = (dep: string) => metricValue(s.t.app, "likeness_api_dependency_outages_total", `dependency="${dep}"`);
  const up = (dep: string) => metricValue(s.t.app, "likeness_api_dependency_up", `dependency="${dep}"`);

  it("/healthz says redis unavailable during an outage, and the outage is counted once", async () => {
    expect((await health()).json()).toEqual({ status: "ok", checks: { db: "ok", redis: "ok" } });
    const before = await outages("redis");
    expect(before).toBe(0);
    expect(await up("redis")).toBe(1);

    await s.redisProxy.cut();
    for (let i = 0; i < 2; i++) {
      const res = await health();
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ status: "degraded", checks: { db: "ok", redis: "unavailable" } });
    }
    expect(await outages("redis")).toBe(1);
    expect(await up("redis")).toBe(0);

    await s.redisProxy.restore();
    await waitFor("redis back", async () => (await health()).statusCode === 200, 15_000);
    expect(await up("redis")).toBe(1);
    expect(await outages("redis")).toBe(1);
    expect(await outages("postgres")).toBe(0);
  });

  it("a job created during a short Redis outage is queued at once and runs, never failed", async () => {
    const resentBefore = (await metricValue(s.t.app, "likeness_api_commands_resent_total", 'kind="train_profile"')) || 0;
    await s.redisProxy.cut();
    setTimeout(() => void s.redisProxy.restore(), 700);
    const { jobId, profileId } = await s.train();
    const { command } = await s.worker.next("train_profile", 10_000);
    expect(command.jobId).toBe(jobId);
    expect((await s.job(jobId)).command_id).not.toBeNull(); // dispatch itself sent it
    await s.worker.train(command);
    await waitFor("trained", async () =>
      (await s.db.selectFrom("profiles").select("state").where("id", "=", profileId).executeTakeFirstOrThrow()).state === "trained",
    15_000);
    expect(await s.job(jobId)).toMatchObject({ state: "succeeded", attempt: 1, error: null });
    expect((await metricValue(s.t.app, "likeness_api_commands_resent_total", 'kind="train_profile"')) || 0).toBe(resentBefore);
  });

  it("a job created while Redis stays away longer is answered within seconds, and sent once Redis is back", async () => {
    await waitFor("redis back", async () => (await health()).statusCode === 200, 15_000);
    await s.redisProxy.cut();
    const { jobId, tookMs } = await s.train();
    expect(tookMs).toBeLessThan(8_000);
    expect(await s.job(jobId)).toMatchObject({ state: "queued", command_id: null });
    expect(await s.worker.commandsFor("train_profile", jobId)).toBe(0);
    await sleep(500);
    await s.redisProxy.restore();
    const { command } = await s.worker.next("train_profile", 15_000);
    expect(command.jobId).toBe(jobId);
    await s.worker.train(command);
    await waitFor("succeeded", async () => (await s.job(jobId)).state === "succeeded", 15_000);
    expect((await s.job(jobId)).command_id).not.toBeNull();
  });

  it("records the events a Postgres outage held back as soon as it is back, not after the reclaim time", async () => {
    await waitFor("redis back", async () => (await health()).statusCode === 200, 15_000);
    const { jobId } = await s.train();
    const { command } = await s.worker.next("train_profile");
    await s.pgProxy.cut();
    await s.worker.send(command, { type: "job_started", worker: s.worker.name });
    await s.worker.step(command, "prepare", "dataset");
    const res = await health();
    expect(res.statusCode).toBe(503);
    expect(res.json().checks).toEqual({ db: "unavailable", redis: "ok" });
    await sleep(1_000);
    await s.pgProxy.restore();
    // The reclaim time is the default 30 s: recorded well before it, from the consumer's own PEL.
    await waitFor("prepare recorded after the outage", async () => {
      const step = await s.db.selectFrom("job_steps").select("state").where("job_id", "=", jobId).where("name", "=", "prepare").executeTakeFirstOrThrow();
      return step.state === "succeeded";
    }, 10_000);
    await s.worker.step(command, "train_lora", "dataset");
    await s.worker.step(command, "train_voice", "dataset");
    await s.worker.step(command, "evaluate", "builtin");
    await s.worker.step(command, "publish", "builtin");
    await s.worker.send(command, { type: "job_finished", state: "succeeded", result: s.worker.assets(jobId) });
    await waitFor("succeeded", async () => (await s.job(jobId)).state === "succeeded", 10_000);
    expect(await outages("postgres")).toBe(1);
    // The workflow ends too (finalize ran once Postgres was back).
    await waitFor("workflow ended", async () => /likeness_jobs_finalized_total\{kind="train_profile",state="succeeded"\} [1-9]/.test(
      (await s.t.app.inject({ method: "GET", url: "/metrics" })).body,
    ));
  });
});

describeWithServices("outages longer than API_OUTAGE_MAX_S", () => {
  let s: Awaited<ReturnType<typeof setup>>;
  beforeAll(async () => {
    s = await setup({ API_OUTAGE_MAX_S: "1", API_RECONCILE_INTERVAL_S: "0.25" });
  });
  afterAll(async () => {
    await s?.close();
  });

  it("fails a job whose command could not be queued for that long, and says why", async () => {
    await s.redisProxy.cut();
    const { jobId } = await s.train();
    const failed = await waitFor("job failed", async () => {
      const j = await s.job(jobId);
      return j.state === "failed" ? j : undefined;
    }, 15_000);
    expect(failed.error).toMatchObject({ code: "internal", retryable: true });
    expect((failed.error as { message: string }).message).toMatch(/could not be queued: Redis was unavailable for over 1 s/);
    await s.redisProxy.restore();
    // Once Redis is back, the recovery pass ends the workflow too; no command was ever sent.
    await waitFor("workflow finalized", async () =>
      (await metricValue(s.t.app, "likeness_jobs_finalized_total", 'kind="train_profile",state="failed"')) === 1,
    15_000);
    expect(await s.worker.commandsFor("train_profile", jobId)).toBe(0);
  });
});
