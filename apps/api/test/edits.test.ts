// Edit and re-render through the api: POST /v1/videos `from` a video of yours, with only what
// changes. What the edit keeps of its source, what it refuses, and the command it sends (the
// worker's reuse by input hash is tested on the real stack: e2e/video.e2e.test.ts).
import { afterAll, beforeAll, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { createTestApp, describeWithServices, signUp, type TestApp } from "./support.js";
import { makeProfile, ScriptedWorker, waitFor } from "./scripted-worker.js";

describeWithServices("video edits", () => {
  let t: TestApp;
  let app: FastifyInstance;
  let worker: ScriptedWorker;
  let a: Awaited<ReturnType<typeof signUp>>;
  let b: Awaited<ReturnType<typeof signUp>>;

  beforeAll(async () => {
    t = await createTestApp();
    app = t.app;
    worker = new ScriptedWorker(t.redis, t.config.redisKeyPrefix, t.storage);
    a = await signUp(app);
    b = await signUp(app);
  });
  afterAll(async () => {
    await t?.close();
  });

  const post = (payload: Record<string, unknown>, auth = a.auth) => app.inject({ method: "POST", url: "/v1/videos", headers: auth, payload });
  const job = async (id: string) => (await app.inject({ method: "GET", url: `/v1/jobs/${id}`, headers: a.auth })).json();

  /** A finished video: created, its command taken and played through by the scripted worker. */
  async function finishedVideo(payload: Record<string, unknown>) {
    const res = await post(payload);
    expect(res.statusCode, res.body).toBe(202);
    const { command } = await worker.next("generate_video");
    await worker.video(command);
    const { video } = res.json();
    await waitFor("finished source", async () => (await job(video.jobId)).state === "succeeded");
    return { video, command };
  }

  it("keeps what is not given, sends the source's job to reuse, and leaves the source as it was", async () => {
    const p = await makeProfile(t.db, a.userId, { trained: true });
    const { video: source } = await finishedVideo({
      profileId: p.id, narration: "The first take.", stage: "ohwx on a rooftop at night", pipeline: "svd_wav2lip", width: 256, height: 320, subtitles: "burned",
    });
    expect(source.script.stage).toBe("ohwx on a rooftop at night");

    const res = await post({ from: source.id, narration: "The second take." });
    expect(res.statusCode, res.body).toBe(202);
    const { video, job: j } = res.json();
    expect(video).toMatchObject({ sourceVideoId: source.id, profileId: p.id, pipeline: "svd_wav2lip", width: 256, height: 320, subtitles: "burned" });
    expect(video.script).toMatchObject({ narration: "The second take.", stage: "ohwx on a rooftop at night" });
    expect(j.steps[0]).toMatchObject({ name: "script", state: "succeeded", engine: "none", reused: false });
    const { command } = await worker.next("generate_video");
    if (command.kind !== "generate_video") throw new Error("kind");
    expect(command.payload).toMatchObject({ reuseFrom: source.jobId, pipeline: "svd_wav2lip", width: 256, height: 320, subtitles: "burned" });

    // Only the subtitles: the script is the source's (its step reused), the rest as it was.
    const quiet = await post({ from: source.id, subtitles: "none" });
    expect(quiet.statusCode, quiet.body).toBe(202);
    expect(quiet.json().video).toMatchObject({ subtitles: "none", script: source.script, width: 256 });
    expect(quiet.json().job.steps[0]).toMatchObject({ name: "script", state: "succeeded", reused: true });
    await worker.next("generate_video");

    // Another pipeline: the source's engines for steps it no longer has are dropped, not refused.
    await t.db.updateTable("jobs").set({ engines: JSON.stringify({ motion: "kenburns", lipsync: "none" }) }).where("id", "=", source.jobId).execute();
    const other = await post({ from: source.id, pipeline: "sadtalker" });
    expect(other.statusCode, other.body).toBe(202);
    expect(other.json().job.engines).toEqual({});
    await worker.next("generate_video");

    const unchanged = (await app.inject({ method: "GET", url: `/v1/videos/${source.id}`, headers: a.auth })).json();
    expect(unchanged).toMatchObject({ script: source.script, subtitles: "burned", sourceVideoId: null, state: "succeeded" });
  });

  it("refuses an edit of what is not yours, not ended, of another profile or with no script, and writes nothing", async () => {
    const p = await makeProfile(t.db, a.userId, { trained: true });
    const other = await makeProfile(t.db, a.userId, { trained: true });
    const { video: source } = await finishedVideo({ profileId: p.id, narration: "Mine." });
    const running = (await post({ profileId: p.id, narration: "Still going." })).json().video;
    await worker.next("generate_video"); // taken, never finished

    const count = async () => (await t.db.selectFrom("videos").select("id").where("profile_id", "in", [p.id, other.id]).execute()).length;
    const before = await count();
    const cases: [Record<string, unknown>, typeof a.auth, number, string | undefined, RegExp][] = [
      [{ from: source.id, narration: "x" }, b.auth, 404, undefined, /not found/],
      [{ from: running.id, narration: "x" }, a.auth, 409, "from", /still being made/],
      [{ from: source.id, profileId: other.id }, a.auth, 400, "profileId", /profile of the video in `from`/],
      [{ from: source.id, topic: "tides", stage: "a beach" }, a.auth, 400, "stage", /topic's stage/],
      [{ narration: "x" }, a.auth, 400, "profileId", /required/],
    ];
    for (const [payload, auth, status, field, message] of cases) {
      const res = await post(payload, auth);
      expect(res.statusCode, `${JSON.stringify(payload)}: ${res.body}`).toBe(status);
      expect(res.json().message).toMatch(message);
      if (field) expect(res.json().field).toBe(field);
    }
    expect(await count()).toBe(before);

    // A source whose job failed before it had a script: an edit must say what to speak.
    await t.db.updateTable("videos").set({ script: null }).where("id", "=", source.id).execute();
    const noScript = await post({ from: source.id, subtitles: "none" });
    expect(noScript.statusCode).toBe(409);
    expect(noScript.json()).toMatchObject({ field: "from", message: expect.stringMatching(/no script/) });
    expect((await post({ from: source.id, narration: "Now with words." })).statusCode).toBe(202);
    await worker.next("generate_video");
  });
});
