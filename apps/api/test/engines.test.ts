// Engines chosen per request, on real Postgres and Redis: what scripted workers advertise in Redis
// (contracts WorkerAdvert) is what GET /v1/engines lists and what a request's `engines` is checked
// against before anything is queued; the chosen engines travel in the job's command.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { WORKER_ADVERT_TTL_HEARTBEATS, WorkerAdvert, redisKeys, type AdvertisedEngine } from "@likeness/contracts";
import { mergeAdverts } from "../src/engines/engines.service.js";
import { createTestApp, describeWithServices, signUp, type TestApp } from "./support.js";
import { makeProfile, ScriptedWorker, waitFor } from "./scripted-worker.js";

const engine = (taskKind: AdvertisedEngine["taskKind"], name: string, more: Partial<AdvertisedEngine> = {}): AdvertisedEngine => ({
  taskKind,
  name,
  device: "cpu",
  licence: "MIT",
  healthy: true,
  default: false,
  ...more,
});

/** The registry of the built-in engines, as a worker advertises it. */
const BUILTIN: AdvertisedEngine[] = [
  engine("prepare", "dataset", { default: true }),
  engine("lora_trainer", "dataset", { default: true }),
  engine("voice_trainer", "dataset", { default: true }),
  engine("evaluate", "builtin", { default: true }),
  engine("image", "portrait", { default: true }),
  engine("tts", "piper", { default: true, licence: "GPL-3.0-or-later AND MIT" }),
  engine("tts", "espeak", { licence: "GPL-3.0-or-later" }),
  engine("talking_head", "landmarks", { default: true }),
  engine("talking_head", "kenburns"),
  engine("motion", "kenburns", { default: true }),
  engine("lipsync", "landmarks", { default: true }),
  engine("upscale", "lanczos", { default: true }),
  engine("mux", "ffmpeg", { default: true }),
  engine("publish", "builtin", { default: true }),
];

describeWithServices("engines chosen per request", () => {
  let t: TestApp;
  let worker: ScriptedWorker;
  let keys: ReturnType<typeof redisKeys>;
  let a: Awaited<ReturnType<typeof signUp>>;

  /** What a worker does at start and on every heartbeat: its advert with a TTL, and the index. */
  const advertise = async (workerId: string, engines: AdvertisedEngine[], ttlMs = 30_000) => {
    const advert = WorkerAdvert.parse({
      v: 1,
      workerId,
      at: new Date().toISOString(),
      heartbeatMs: Math.round(ttlMs / WORKER_ADVERT_TTL_HEARTBEATS),
      queues: ["cpu"],
      engines,
    });
    await t.redis.multi().set(keys.worker(workerId), JSON.stringify(advert), "PX", ttlMs).sadd(keys.workers, workerId).exec();
  };
  const withdraw = async (workerId: string) => {
    await t.redis.multi().del(keys.worker(workerId)).srem(keys.workers, workerId).exec();
  };
  const list = async () => {
    const res = await t.app.inject({ method: "GET", url: "/v1/engines", headers: a.auth });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as { engines: (AdvertisedEngine & { workers: number; healthyWorkers: number; runsIn: string; problem?: string })[]; workers: number };
  };
  const rows = async () => ({
    jobs: Number((await t.db.selectFrom("jobs").select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow()).n),
    videos: Number((await t.db.selectFrom("videos").select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow()).n),
    commands: await t.redis.xlen(keys.jobStream("generate_video")),
  });

  beforeAll(async () => {
    t = await createTestApp();
    keys = redisKeys(t.config.redisKeyPrefix);
    worker = new ScriptedWorker(t.redis, t.config.redisKeyPrefix, t.storage);
    a = await signUp(t.app);
  });
  afterAll(async () => {
    await t?.close();
  });
  beforeEach(async () => {
    for (const id of await t.redis.smembers(keys.workers)) await withdraw(id);
  });

  it("lists what the live workers advertise, merged per task kind, with the api's own script engine", async () => {
    expect((await list()).workers).toBe(0);
    await advertise("w1", BUILTIN);
    await advertise("w2", [
      engine("tts", "piper", { default: true, licence: "GPL-3.0-or-later AND MIT" }),
      engine("tts", "espeak", { healthy: false, problem: "not installed: espeak-ng", licence: "GPL-3.0-or-later" }),
      engine("upscale", "realesrgan", { device: "gpu", licence: "BSD-3-Clause", healthy: false, problem: "this worker does not consume the gpu0 queue" }),
    ]);
    const { engines, workers } = await list();
    expect(workers).toBe(2);
    const of = (kind: string, name: string) => engines.find((e) => e.taskKind === kind && e.name === name);
    // The script step's engines run in the api: `local` writes topics by default, `none` speaks a narration.
    expect(of("llm", "none")).toMatchObject({ runsIn: "api", healthy: true, default: false });
    expect(of("llm", "local")).toMatchObject({ runsIn: "api", device: "cpu", licence: "LicenseRef-Gemma", default: true });
    expect(of("tts", "piper")).toMatchObject({ device: "cpu", licence: "GPL-3.0-or-later AND MIT", healthy: true, default: true, workers: 2, healthyWorkers: 2, runsIn: "worker" });
    // Healthy on one worker of the two: available, and the problem of the other is not shown.
    expect(of("tts", "espeak")).toMatchObject({ healthy: true, default: false, workers: 2, healthyWorkers: 1 });
    expect(of("tts", "espeak")?.problem).toBeUndefined();
    expect(of("upscale", "realesrgan")).toMatchObject({ device: "gpu", healthy: false, workers: 1, healthyWorkers: 0, problem: "this worker does not consume the gpu0 queue" });
    // Sorted by task kind (the contracts' order), then name.
    const order = engines.map((e) => `${e.taskKind}/${e.name}`);
    expect(order.indexOf("tts/espeak")).toBeLessThan(order.indexOf("tts/piper"));
    expect(order.indexOf("llm/local")).toBe(0);

    // A worker that stops cleanly withdraws; one that dies drops out when its key expires.
    await withdraw("w2");
    await advertise("w3", BUILTIN, 150);
    expect((await list()).workers).toBe(2);
    await new Promise((r) => setTimeout(r, 250));
    const after = await list();
    expect(after.workers).toBe(1);
    expect(after.engines.find((e) => e.name === "realesrgan")).toBeUndefined();
    expect(await t.redis.sismember(keys.workers, "w3")).toBe(0); // dropped from the index
  });

  it("sends the chosen engines in the command, the request over the profile's defaults; the job shows them", async () => {
    await advertise("w1", BUILTIN);
    const p = await makeProfile(t.db, a.userId, { trained: true });
    const put = await t.app.inject({ method: "PUT", url: `/v1/profiles/${p.id}/engines`, headers: a.auth, payload: { engines: { tts: "espeak", talking_head: "kenburns", lipsync: "landmarks" } } });
    expect(put.statusCode, put.body).toBe(200);
    expect((await t.app.inject({ method: "GET", url: `/v1/profiles/${p.id}`, headers: a.auth })).json().engines).toEqual({ tts: "espeak", talking_head: "kenburns", lipsync: "landmarks" });

    const res = await t.app.inject({ method: "POST", url: "/v1/videos", headers: a.auth, payload: { profileId: p.id, narration: "Hi", engines: { tts: "piper" } } });
    expect(res.statusCode, res.body).toBe(202);
    // lipsync is not a step of the sadtalker pipeline: the profile's default for it is left out.
    expect(res.json().job.engines).toEqual({ tts: "piper", talking_head: "kenburns" });
    const { command } = await worker.next("generate_video");
    expect(command.jobId).toBe(res.json().job.id);
    expect(command.engines).toEqual({ tts: "piper", talking_head: "kenburns" });

    // The steps record what ran.
    await worker.send(command, { type: "job_started", worker: worker.name });
    await worker.step(command, "tts", "piper");
    await worker.step(command, "talking_head", "kenburns");
    const job = await waitFor("steps recorded", async () => {
      const j = (await t.app.inject({ method: "GET", url: `/v1/jobs/${command.jobId}`, headers: a.auth })).json();
      return j.steps.find((s: { name: string; state: string }) => s.name === "talking_head" && s.state === "succeeded") ? j : undefined;
    });
    expect(job.steps.find((s: { name: string }) => s.name === "tts").engine).toBe("piper");
    expect(job.steps.find((s: { name: string }) => s.name === "talking_head").engine).toBe("kenburns");

    // Training takes engines too, in its body.
    const q = await makeProfile(t.db, a.userId);
    const train = await t.app.inject({ method: "POST", url: `/v1/profiles/${q.id}/train`, headers: a.auth, payload: { engines: { prepare: "dataset" } } });
    expect(train.statusCode, train.body).toBe(202);
    const trainCommand = (await worker.next("train_profile")).command;
    expect(trainCommand.engines).toEqual({ prepare: "dataset" });
  });

  it("allows a non-commercial engine but says so: GET /v1/engines, the job from its creation, and the step that ran it", async () => {
    const wav2lip = { device: "gpu" as const, licence: "LicenseRef-Wav2Lip-NonCommercial", nonCommercial: true };
    // A worker that runs a non-commercial engine by default (an operator's choice) flags jobs that name none.
    await advertise("w1", [...BUILTIN.filter((e) => e.taskKind !== "talking_head"), engine("talking_head", "wav2lip", { ...wav2lip, default: true }), engine("lipsync", "wav2lip", wav2lip)]);
    const listed = (await list()).engines.find((e) => e.taskKind === "lipsync" && e.name === "wav2lip");
    expect(listed).toMatchObject({ nonCommercial: true, licence: "LicenseRef-Wav2Lip-NonCommercial" });
    expect((await list()).engines.find((e) => e.name === "piper")).toMatchObject({ nonCommercial: false });
    const p = await makeProfile(t.db, a.userId, { trained: true });

    const scene = await t.app.inject({ method: "POST", url: "/v1/videos", headers: a.auth, payload: { profileId: p.id, narration: "Hi", pipeline: "svd_wav2lip", engines: { lipsync: "wav2lip" } } });
    expect(scene.statusCode, scene.body).toBe(202);
    expect(scene.json().job.licenceNotices).toEqual([{ taskKind: "lipsync", engine: "wav2lip", licence: "LicenseRef-Wav2Lip-NonCommercial", nonCommercial: true }]);
    const head = await t.app.inject({ method: "POST", url: "/v1/videos", headers: a.auth, payload: { profileId: p.id, narration: "Hi" } });
    expect(head.json().job.licenceNotices).toEqual([{ taskKind: "talking_head", engine: "wav2lip", licence: "LicenseRef-Wav2Lip-NonCommercial", nonCommercial: true }]);
    const plain = await t.app.inject({ method: "POST", url: "/v1/videos", headers: a.auth, payload: { profileId: p.id, narration: "Hi", pipeline: "svd_wav2lip" } });
    expect(plain.json().job.licenceNotices).toEqual([]);

    // The step records the licence its worker reported when it started.
    const { command } = await worker.next("generate_video");
    expect(command.jobId).toBe(scene.json().job.id);
    await worker.send(command, { type: "job_started", worker: worker.name });
    await worker.send(command, { type: "step_started", step: "lipsync", engine: "wav2lip", licence: wav2lip.licence, nonCommercial: true });
    await worker.step(command, "tts", "piper");
    const job = await waitFor("step recorded", async () => {
      const j = (await t.app.inject({ method: "GET", url: `/v1/jobs/${command.jobId}`, headers: a.auth })).json();
      return j.steps.find((s: { name: string; state: string }) => s.name === "tts" && s.state === "succeeded") ? j : undefined;
    });
    expect(job.licenceNotices).toHaveLength(1);
    expect(job.steps.find((s: { name: string }) => s.name === "lipsync")).toMatchObject({ engine: "wav2lip", licence: wav2lip.licence, nonCommercial: true });
    expect(job.steps.find((s: { name: string }) => s.name === "tts")).toMatchObject({ engine: "piper", licence: null, nonCommercial: false });
  });

  it("refuses an unknown or unavailable engine with a 400 that names it, and leaves nothing behind", async () => {
    await advertise("w1", [...BUILTIN.filter((e) => e.name !== "espeak"), engine("tts", "espeak", { healthy: false, problem: "not installed: espeak-ng" })]);
    const p = await makeProfile(t.db, a.userId, { trained: true });
    const before = await rows();
    const post = (engines: unknown) =>
      t.app.inject({ method: "POST", url: "/v1/videos", headers: a.auth, payload: { profileId: p.id, narration: "Hi", engines } });

    const unknown = await post({ tts: "f5" });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json()).toEqual({
      error: "validation",
      field: "engines.tts",
      message: 'unknown engine "f5" for tts: available for tts: piper',
    });
    const down = await post({ tts: "espeak" });
    expect(down.statusCode).toBe(400);
    expect(down.json()).toMatchObject({ field: "engines.tts", message: 'engine "espeak" for tts is unavailable (not installed: espeak-ng): available for tts: piper' });
    const notInPipeline = await post({ lipsync: "landmarks" });
    expect(notInPipeline.statusCode).toBe(400);
    expect(notInPipeline.json()).toMatchObject({ field: "engines.lipsync", message: expect.stringMatching(/sadtalker pipeline has no lipsync step/) });
    const badKind = await post({ voice: "piper" });
    expect(badKind.statusCode).toBe(400);
    expect(badKind.json().field).toMatch(/^engines/);

    // A profile default that went away is refused too, saying where it came from.
    const q = await makeProfile(t.db, a.userId, { trained: true });
    await t.db.updateTable("profiles").set({ engines: JSON.stringify({ image: "comfyui" }) }).where("id", "=", q.id).execute();
    const fromProfile = await t.app.inject({ method: "POST", url: "/v1/videos", headers: a.auth, payload: { profileId: q.id, narration: "Hi" } });
    expect(fromProfile.statusCode).toBe(400);
    expect(fromProfile.json()).toMatchObject({ field: "engines.image", message: 'unknown engine "comfyui" for image (the profile\'s default engine): available for image: portrait' });
    const putBad = await t.app.inject({ method: "PUT", url: `/v1/profiles/${p.id}/engines`, headers: a.auth, payload: { engines: { tts: "f5" } } });
    expect(putBad.statusCode).toBe(400);
    expect(putBad.json().field).toBe("engines.tts");

    // Training: the same check.
    const r = await makeProfile(t.db, a.userId);
    const train = await t.app.inject({ method: "POST", url: `/v1/profiles/${r.id}/train`, headers: a.auth, payload: { engines: { prepare: "kohya" } } });
    expect(train.statusCode).toBe(400);
    expect(train.json()).toMatchObject({ field: "engines.prepare", message: expect.stringMatching(/^unknown engine "kohya" for prepare/) });
    expect((await t.db.selectFrom("profiles").select("state").where("id", "=", r.id).executeTakeFirstOrThrow()).state).toBe("draft");

    expect(await rows()).toEqual(before);
  });

  it("with no worker advertising, a request that names an engine says so; one that names none is queued", async () => {
    const p = await makeProfile(t.db, a.userId, { trained: true });
    expect((await list()).workers).toBe(0); // GET /v1/engines reads afresh: the checks below see no worker either
    const res = await t.app.inject({ method: "POST", url: "/v1/videos", headers: a.auth, payload: { profileId: p.id, narration: "Hi", engines: { tts: "piper" } } });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toBe('unknown engine "piper" for tts: no worker is advertising its engines; no tts engine is available');
    const plain = await t.app.inject({ method: "POST", url: "/v1/videos", headers: a.auth, payload: { profileId: p.id, narration: "Hi" } });
    expect(plain.statusCode, plain.body).toBe(202);
    expect(plain.json().job.engines).toEqual({});
    expect((await worker.next("generate_video")).command.engines).toEqual({});
  });

  it("sees a worker that started a moment ago (the cached list is read again before refusing)", async () => {
    const p = await makeProfile(t.db, a.userId, { trained: true });
    await list(); // caches "no workers"
    await advertise(`w-${randomBytes(2).toString("hex")}`, BUILTIN);
    const res = await t.app.inject({ method: "POST", url: "/v1/videos", headers: a.auth, payload: { profileId: p.id, narration: "Hi", engines: { tts: "espeak" } } });
    expect(res.statusCode, res.body).toBe(202);
    await worker.next("generate_video");
  });
});

describe("merging adverts", () => {
  it("counts workers and keeps the first problem of an engine no worker can run", () => {
    const merged = mergeAdverts([
      { v: 1, workerId: "a", at: new Date().toISOString(), heartbeatMs: 1000, queues: ["cpu"], engines: [engine("mux", "ffmpeg", { healthy: false, problem: "not installed: ffmpeg" })] },
      { v: 1, workerId: "b", at: new Date().toISOString(), heartbeatMs: 1000, queues: ["cpu"], engines: [engine("mux", "ffmpeg", { healthy: false, problem: "other", default: true })] },
    ]);
    expect(merged.find((e) => e.name === "ffmpeg")).toMatchObject({ healthy: false, default: true, workers: 2, healthyWorkers: 0, problem: "not installed: ffmpeg" });
  });
});
