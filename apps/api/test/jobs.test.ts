// The job side end to end on real Postgres and Redis: routes → workflow → job stream → (scripted
// worker: a test double of the Python plane) → events stream → consumer → Postgres → WebSocket.
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import WebSocket from "ws";
import type { FastifyInstance } from "fastify";
import { API_GROUP, MESSAGE_FIELD, redisKeys, type JobUpdate } from "@likeness/contracts";
import { buildApp } from "../src/app.js";
import type { AppDeps } from "../src/app-deps.js";
import { recordEvent, recordEvents } from "../src/events/event-recorder.js";
import { defaultConsumerName } from "../src/events/events.consumer.js";
import { jobsHandle } from "../src/jobs/jobs.plugin.js";
import { createTestApp, describeWithServices, signUp, type TestApp } from "./support.js";
import { makeProfile, ScriptedWorker, waitFor } from "./scripted-worker.js";

describeWithServices("jobs", () => {
  let t: TestApp;
  let app: FastifyInstance;
  let worker: ScriptedWorker;
  let keys: ReturnType<typeof redisKeys>;
  let a: Awaited<ReturnType<typeof signUp>>;
  let b: Awaited<ReturnType<typeof signUp>>;
  const extraApps: FastifyInstance[] = [];

  beforeAll(async () => {
    // Entries idle this long on a dead replica are taken over: short, so the restart tests are quick.
    t = await createTestApp({ env: { API_RECLAIM_IDLE_MS: "200" } });
    app = t.app;
    keys = redisKeys(t.config.redisKeyPrefix);
    worker = new ScriptedWorker(t.redis, t.config.redisKeyPrefix, t.storage);
    a = await signUp(app);
    b = await signUp(app);
  });
  afterAll(async () => {
    for (const x of extraApps) await x.close().catch(() => undefined);
    await t?.close();
  });

  const job = async (id: string, auth = a.auth) => {
    const res = await app.inject({ method: "GET", url: `/v1/jobs/${id}`, headers: auth });
    expect(res.statusCode).toBe(200);
    return res.json();
  };
  const train = async (profileId: string) => {
    const res = await app.inject({ method: "POST", url: `/v1/profiles/${profileId}/train`, headers: a.auth });
    expect(res.statusCode, res.body).toBe(202);
    return res.json();
  };

  it("trains a profile: job + steps, command on the stream, events recorded, profile trained", async () => {
    const p = await makeProfile(t.db, a.userId);
    const j = await train(p.id);
    expect(j.kind).toBe("train_profile");
    expect(j.state).toBe("queued");
    expect(j.steps.map((s: { name: string }) => s.name)).toEqual(["prepare", "train_lora", "train_voice", "evaluate", "publish"]);
    expect(j.steps.every((s: { state: string }) => s.state === "pending")).toBe(true);
    const prof = await t.db.selectFrom("profiles").selectAll().where("id", "=", p.id).executeTakeFirstOrThrow();
    expect(prof.state).toBe("queued");
    expect(prof.train_job_id).toBe(j.id);

    // A second train while it runs is refused.
    const again = await app.inject({ method: "POST", url: `/v1/profiles/${p.id}/train`, headers: a.auth });
    expect(again.statusCode).toBe(409);

    const { command } = await worker.next("train_profile");
    expect(command.jobId).toBe(j.id);
    expect(command.attempt).toBe(1);
    expect(command.userId).toBe(a.userId);
    if (command.kind !== "train_profile") throw new Error("kind");
    expect(command.payload.triggerWord).toBe(p.trigger);
    expect(command.payload.images.map((i) => i.name)).toEqual(["a.png", "b.jpg"]);
    expect(command.payload.voiceSample.key).toMatch(/voice\/sample\.wav$/);

    await worker.train(command);
    const done = await waitFor("trained profile", async () => {
      const r = await t.db.selectFrom("profiles").selectAll().where("id", "=", p.id).executeTakeFirstOrThrow();
      return r.state === "trained" ? r : undefined;
    });
    expect(done.assets).toEqual(worker.assets(j.id));
    const view = await job(j.id);
    expect(view.state).toBe("succeeded");
    expect(view.finishedAt).not.toBeNull();
    const prepare = view.steps.find((s: { name: string }) => s.name === "prepare");
    expect(prepare).toMatchObject({ state: "succeeded", engine: "dataset", attempt: 1, durationMs: 1234, reused: false });
    expect(prepare.startedAt).not.toBeNull();
    expect(prepare.artifacts).toEqual([
      { key: `jobs/${j.id}/prepare/portrait.png`, kind: "portrait", contentType: "image/png", bytes: 1000, engine: "dataset" },
    ]);
    // Everything acked (the ack follows the transaction the view reads).
    await waitFor("all acked", async () => ((await t.redis.xpending(keys.events, API_GROUP)) as [number])[0] === 0);
    const metrics = await app.inject({ method: "GET", url: "/metrics" });
    expect(metrics.body).toMatch(/likeness_job_step_duration_seconds_count\{step="prepare",engine="dataset",outcome="succeeded",reused="false"\} 1/);
    expect(metrics.body).toMatch(/likeness_stream_length\{stream="[^"]+:events"\} \d+/);
  });

  it("refuses train without inputs (409) and another user's profile (404)", async () => {
    const p = await makeProfile(t.db, a.userId, { inputs: false });
    const res = await app.inject({ method: "POST", url: `/v1/profiles/${p.id}/train`, headers: a.auth });
    expect(res.statusCode).toBe(409);
    const q = await makeProfile(t.db, a.userId);
    const other = await app.inject({ method: "POST", url: `/v1/profiles/${q.id}/train`, headers: b.auth });
    expect(other.statusCode).toBe(404);
  });

  it("generates a video and serves the file with Range", async () => {
    const untrained = await makeProfile(t.db, a.userId);
    const p = await makeProfile(t.db, a.userId, { trained: true });
    // `none` speaks a given narration: it cannot write from a topic (llm.test.ts writes topics).
    const topic = await app.inject({ method: "POST", url: "/v1/videos", headers: a.auth, payload: { profileId: p.id, topic: "space", engines: { llm: "none" } } });
    expect(topic.statusCode).toBe(400);
    expect(topic.json().field).toBe("engines.llm");
    const notTrained = await app.inject({ method: "POST", url: "/v1/videos", headers: a.auth, payload: { profileId: untrained.id, narration: "Hi" } });
    expect(notTrained.statusCode).toBe(409);
    expect(notTrained.json().message).toMatch(/not trained/);
    const foreign = await app.inject({ method: "POST", url: "/v1/videos", headers: b.auth, payload: { profileId: p.id, narration: "Hi" } });
    expect(foreign.statusCode).toBe(404);

    const narration = "Hello there. This is my likeness, speaking words I never said.";
    const res = await app.inject({ method: "POST", url: "/v1/videos", headers: a.auth, payload: { profileId: p.id, narration, width: 256, height: 256 } });
    expect(res.statusCode, res.body).toBe(202);
    const { video, job: j } = res.json();
    expect(video).toMatchObject({ state: "queued", subtitles: "soft" });
    expect(video.script.narration).toBe(narration);
    expect(video.script.stage).toContain(p.trigger);
    expect(video.script.stage).toContain("sadtalker");
    expect(j.videoId).toBe(video.id);
    expect(j.steps.map((s: { name: string }) => s.name)).toEqual(["script", "image", "tts", "talking_head", "upscale", "mux", "publish"]);
    expect(j.steps[0]).toMatchObject({ name: "script", state: "succeeded", engine: "none", attempt: 1 });

    const { command } = await worker.next("generate_video");
    if (command.kind !== "generate_video") throw new Error("kind");
    expect(command.payload.script.narration).toBe(narration);
    expect(command.payload).toMatchObject({ pipeline: "sadtalker", width: 256, height: 256, fps: 25, subtitles: "soft" });
    const bytes = await worker.video(command);

    const v = await waitFor("finalized video", async () => {
      const r = await app.inject({ method: "GET", url: `/v1/videos/${video.id}`, headers: a.auth });
      const body = r.json();
      return body.durationSec ? body : undefined;
    });
    expect(v).toMatchObject({ state: "succeeded", durationSec: 3.2, pipeline: "sadtalker" });
    const list = await app.inject({ method: "GET", url: "/v1/videos", headers: a.auth });
    expect(list.json().videos.map((x: { id: string }) => x.id)).toContain(video.id);
    expect((await app.inject({ method: "GET", url: "/v1/videos", headers: b.auth })).json().videos).toEqual([]);

    const whole = await app.inject({ method: "GET", url: `/v1/videos/${video.id}/file`, headers: a.auth });
    expect(whole.statusCode).toBe(200);
    expect(whole.headers["content-type"]).toBe("video/mp4");
    expect(whole.headers["accept-ranges"]).toBe("bytes");
    expect(whole.rawPayload.equals(bytes)).toBe(true);

    const part = await app.inject({ method: "GET", url: `/v1/videos/${video.id}/file`, headers: { ...a.auth, range: "bytes=1000-1999" } });
    expect(part.statusCode).toBe(206);
    expect(part.headers["content-range"]).toBe(`bytes 1000-1999/${bytes.length}`);
    expect(part.headers["content-length"]).toBe("1000");
    expect(part.rawPayload.equals(bytes.subarray(1000, 2000))).toBe(true);

    const tail = await app.inject({ method: "GET", url: `/v1/videos/${video.id}/file`, headers: { ...a.auth, range: "bytes=-500" } });
    expect(tail.statusCode).toBe(206);
    expect(tail.rawPayload.equals(bytes.subarray(bytes.length - 500))).toBe(true);

    const bad = await app.inject({ method: "GET", url: `/v1/videos/${video.id}/file`, headers: { ...a.auth, range: `bytes=${bytes.length}-` } });
    expect(bad.statusCode).toBe(416);
    expect(bad.headers["content-range"]).toBe(`bytes */${bytes.length}`);

    const dl = await app.inject({ method: "GET", url: `/v1/videos/${video.id}/file?download=1`, headers: a.auth });
    expect(dl.headers["content-disposition"]).toMatch(/^attachment; filename=".+\.mp4"$/);

    // The soft subtitles, as WebVTT for a browser's <track>.
    const vtt = await app.inject({ method: "GET", url: `/v1/videos/${video.id}/subtitles.vtt`, headers: a.auth });
    expect(vtt.statusCode, vtt.body).toBe(200);
    expect(vtt.headers["content-type"]).toBe("text/vtt; charset=utf-8");
    expect(vtt.body).toBe("WEBVTT\n\n1\n00:00:00.000 --> 00:00:01.500\nHello there.\n");

    // User B sees none of it.
    for (const url of [`/v1/videos/${video.id}`, `/v1/videos/${video.id}/file`, `/v1/videos/${video.id}/subtitles.vtt`, `/v1/jobs/${j.id}`]) {
      expect((await app.inject({ method: "GET", url, headers: b.auth })).statusCode).toBe(404);
    }
    for (const url of [`/v1/jobs/${j.id}/retry`, `/v1/jobs/${j.id}/cancel`]) {
      expect((await app.inject({ method: "POST", url, headers: b.auth })).statusCode).toBe(404);
    }

    // Delete: not while a job runs, not another user's; the owner's takes its job and objects.
    const running = (
      await app.inject({ method: "POST", url: "/v1/videos", headers: a.auth, payload: { profileId: p.id, narration: "Still being made." } })
    ).json();
    const busy = await app.inject({ method: "DELETE", url: `/v1/videos/${running.video.id}`, headers: a.auth });
    expect(busy.statusCode, busy.body).toBe(409);
    const { command: second } = await worker.next("generate_video");
    if (second.kind !== "generate_video") throw new Error("kind");
    await worker.video(second); // ended now: nothing of it is left for the next test
    await waitFor("second video done", async () => (await job(running.job.id)).state === "succeeded");
    expect((await app.inject({ method: "DELETE", url: `/v1/videos/${video.id}`, headers: b.auth })).statusCode).toBe(404);
    const del = await app.inject({ method: "DELETE", url: `/v1/videos/${video.id}`, headers: a.auth });
    expect(del.statusCode, del.body).toBe(204);
    expect((await app.inject({ method: "GET", url: `/v1/videos/${video.id}`, headers: a.auth })).statusCode).toBe(404);
    expect((await app.inject({ method: "GET", url: `/v1/jobs/${j.id}`, headers: a.auth })).statusCode).toBe(404);
    expect(await t.storage.list(`jobs/${j.id}/`)).toEqual([]);
    expect((await app.inject({ method: "DELETE", url: `/v1/videos/${video.id}`, headers: a.auth })).statusCode).toBe(404);
  });

  it("hands the subtitle mode to the worker and shows it on the video; an old client's boolean is a mode", async () => {
    const p = await makeProfile(t.db, a.userId, { trained: true });
    for (const [asked, mode] of [["burned", "burned"], ["none", "none"], [false, "none"], [true, "soft"]] as const) {
      const res = await app.inject({ method: "POST", url: "/v1/videos", headers: a.auth, payload: { profileId: p.id, narration: "Hi.", subtitles: asked } });
      expect(res.statusCode, res.body).toBe(202);
      const { video } = res.json();
      expect(video.subtitles).toBe(mode);
      const { command } = await worker.next("generate_video");
      if (command.kind !== "generate_video") throw new Error("kind");
      expect(command.payload.subtitles).toBe(mode);
      const got = await app.inject({ method: "GET", url: `/v1/videos/${video.id}`, headers: a.auth });
      expect(got.json().subtitles).toBe(mode);
    }
  });

  it("a video job that reads succeeded can be downloaded at once (its end and its file are one transaction)", async () => {
    const p = await makeProfile(t.db, a.userId, { trained: true });
    const res = await app.inject({ method: "POST", url: "/v1/videos", headers: a.auth, payload: { profileId: p.id, narration: "Hi." } });
    const { video, job: j } = res.json();
    const { command } = await worker.next("generate_video");
    const key = `jobs/${j.id}/mux/video.mp4`;
    await t.storage.put(key, randomBytes(1000), "video/mp4");
    // Recorded straight into the database: no workflow has run when the job first reads succeeded.
    await recordEvent(t.db, worker.event(command, { type: "job_finished", state: "succeeded", result: { videoKey: key, durationSec: 1, width: 512, height: 512, fps: 25 } }));
    expect((await job(j.id)).state).toBe("succeeded");
    const file = await app.inject({ method: "GET", url: `/v1/videos/${video.id}/file`, headers: a.auth });
    expect(file.statusCode).toBe(200);
    expect(file.rawPayload.length).toBe(1000);
  });

  it("records no key from the worker outside the job's folder: artifacts, video and profile results", async () => {
    // A hostile or buggy worker points user A's job at user B's voice sample.
    const victim = await makeProfile(t.db, b.userId);
    const foreignKey = `uploads/${b.userId}/${victim.id}/voice/sample.wav`;
    await t.storage.put(foreignKey, randomBytes(1000), "audio/wav");
    const otherJobKey = `jobs/${randomUUID()}/mux/video.mp4`;

    const p = await makeProfile(t.db, a.userId, { trained: true });
    const res = await app.inject({ method: "POST", url: "/v1/videos", headers: a.auth, payload: { profileId: p.id, narration: "Hi there.", width: 256, height: 256 } });
    expect(res.statusCode, res.body).toBe(202);
    const { video, job: j } = res.json();
    const { command } = await worker.next("generate_video");
    const ownKey = `jobs/${command.jobId}/mux/video.mp4`;
    await worker.send(command, { type: "job_started", worker: worker.name });
    await worker.step(command, "mux", "ffmpeg", [
      { key: ownKey, kind: "video", contentType: "video/mp4", bytes: 10 },
      { key: foreignKey, kind: "video", contentType: "video/mp4", bytes: 1000 },
      { key: otherJobKey, kind: "video", contentType: "video/mp4", bytes: 1000 },
      { key: `jobs/${command.jobId}`, kind: "video", contentType: "video/mp4", bytes: 1000 },
    ]);
    await worker.send(command, {
      type: "job_finished",
      state: "succeeded",
      result: { videoKey: foreignKey, durationSec: 3.2, width: 256, height: 256, fps: 25 },
    });
    const failed = await waitFor("failed video job", async () => {
      const v = await job(j.id);
      return v.state === "failed" ? v : undefined;
    });
    expect(failed.error).toMatchObject({ code: "internal", retryable: false, step: "publish" });
    expect(failed.error.message).toContain(foreignKey);
    const mux = failed.steps.find((s: { name: string }) => s.name === "mux");
    expect(mux.artifacts.map((x: { key: string }) => x.key)).toEqual([ownKey]);
    expect(await t.db.selectFrom("artifacts").select("key").where("key", "in", [foreignKey, otherJobKey]).execute()).toEqual([]);
    const file = await app.inject({ method: "GET", url: `/v1/videos/${video.id}/file`, headers: a.auth });
    expect(file.statusCode).toBe(409);

    // Even a row that already holds a foreign key (written before this check) is never streamed.
    await t.db.updateTable("videos").set({ video_key: foreignKey, duration_sec: 3.2 }).where("id", "=", video.id).execute();
    const stale = await app.inject({ method: "GET", url: `/v1/videos/${video.id}/file`, headers: a.auth });
    expect(stale.statusCode).toBe(404);
    expect(stale.rawPayload.length).toBeLessThan(1000);

    // A training result naming another job's portrait does not train the profile.
    const q = await makeProfile(t.db, a.userId);
    const tj = await train(q.id);
    const { command: tc } = await worker.next("train_profile");
    await worker.send(tc, { type: "job_started", worker: worker.name });
    await worker.send(tc, { type: "job_finished", state: "succeeded", result: { ...worker.assets(tc.jobId), portraitKey: otherJobKey } });
    const tfailed = await waitFor("failed train job", async () => {
      const v = await job(tj.id);
      return v.state === "failed" ? v : undefined;
    });
    expect(tfailed.error.message).toContain(otherJobKey);
    const prof = await waitFor("failed profile", async () => {
      const r = await t.db.selectFrom("profiles").selectAll().where("id", "=", q.id).executeTakeFirstOrThrow();
      return r.state === "failed" ? r : undefined;
    });
    expect(prof.assets).toBeNull();
  });

  it("recreates its consumer group when Redis lost the events stream, and goes on recording", async () => {
    const p = await makeProfile(t.db, a.userId);
    const j = await train(p.id);
    const { command } = await worker.next("train_profile");
    await t.redis.del(keys.events); // what a Redis restart without persistence leaves: no stream, no group
    await worker.train(command);
    const done = await waitFor("trained profile after the stream was lost", async () => {
      const r = await t.db.selectFrom("profiles").selectAll().where("id", "=", p.id).executeTakeFirstOrThrow();
      return r.state === "trained" ? r : undefined;
    });
    expect(done.train_job_id).toBe(j.id);
    expect(((await t.redis.xinfo("GROUPS", keys.events)) as unknown[]).length).toBe(1);
  });

  it("records an event delivered twice only once", async () => {
    const p = await makeProfile(t.db, a.userId);
    const j = await train(p.id);
    const { command } = await worker.next("train_profile");
    await worker.send(command, { type: "job_started", worker: worker.name });
    const ev = worker.event(command, {
      type: "step_succeeded", step: "prepare", engine: "dataset", outputs: {}, durationMs: 10, reused: false,
      artifacts: [{ key: `jobs/${j.id}/prepare/faces.json`, kind: "faces", contentType: "application/json", bytes: 12 }],
    });
    await worker.emit(ev);
    await worker.emit(ev);
    const [newest] = ((await t.redis.xrevrange(keys.events, "+", "-", "COUNT", 1)) as [string, string[]][])[0]!;
    await waitFor("both deliveries acked", async () => {
      // One XINFO reply: what was delivered and what is still pending, seen at the same instant.
      const [group] = (await t.redis.xinfo("GROUPS", keys.events)) as unknown[][];
      const field = (name: string) => group![group!.indexOf(name) + 1];
      return field("last-delivered-id") === newest && field("pending") === 0;
    });
    const rows = await t.db.selectFrom("processed_events").selectAll().where("event_id", "=", ev.eventId).execute();
    expect(rows).toHaveLength(1);
    const arts = await t.db.selectFrom("artifacts").selectAll().where("job_id", "=", j.id).execute();
    expect(arts).toHaveLength(1);
    const metrics = await app.inject({ method: "GET", url: "/metrics" });
    expect(metrics.body).toMatch(/likeness_job_events_total\{type="step_succeeded",result="duplicate"\} [1-9]/);
  });

  it("records a batch of events of several jobs in one transaction: copies, unknown jobs, and one it cannot take", async () => {
    const p1 = await makeProfile(t.db, a.userId);
    const p2 = await makeProfile(t.db, a.userId);
    const [j1, j2] = [await train(p1.id), await train(p2.id)];
    const c1 = (await worker.next("train_profile")).command;
    const c2 = (await worker.next("train_profile")).command;
    const byJob = { [c1.jobId]: c1, [c2.jobId]: c2 };
    const [first, second] = [byJob[j1.id]!, byJob[j2.id]!];
    const done = worker.event(first, { type: "step_succeeded", step: "prepare", engine: "dataset", artifacts: [], outputs: {}, durationMs: 7, reused: false });
    const batch = [
      worker.event(first, { type: "job_started", worker: worker.name }),
      worker.event(second, { type: "job_started", worker: worker.name }),
      worker.event(first, { type: "step_started", step: "prepare", engine: "dataset" }),
      done,
      done, // the same event twice in one batch
      worker.event(second, { type: "step_started", step: "prepare", engine: "dataset" }),
      worker.event({ jobId: randomUUID(), attempt: 1 }, { type: "job_started", worker: worker.name }),
    ];
    const outcomes = await recordEvents(t.db, batch);
    expect(outcomes.map((o) => o.status)).toEqual(["applied", "applied", "applied", "applied", "duplicate", "applied", "unknown_job"]);
    const steps = async (id: string) => Object.fromEntries((await job(id)).steps.map((s: { name: string; state: string }) => [s.name, s.state]));
    expect(await steps(j1.id)).toMatchObject({ prepare: "succeeded", train_lora: "pending" });
    expect(await steps(j2.id)).toMatchObject({ prepare: "running" });
    expect(await job(j1.id)).toMatchObject({ state: "running" });

    // Through the stream, in one read: an event Postgres refuses (a duration past its int column)
    // stays pending for the reclaim, and the others of its batch are recorded and acked.
    const bad = worker.event(second, { type: "step_succeeded", step: "prepare", engine: "dataset", artifacts: [], outputs: {}, durationMs: 3e9, reused: false });
    const good = worker.event(first, { type: "step_started", step: "train_lora", engine: "dataset" });
    const pipeline = t.redis.pipeline();
    for (const ev of [bad, good]) pipeline.xadd(keys.events, "*", MESSAGE_FIELD, JSON.stringify(ev));
    const badEntry = ((await pipeline.exec()) as [Error | null, string][])[0]![1];
    await waitFor("the good event recorded", async () => (await steps(j1.id)).train_lora === "running");
    expect(await steps(j2.id)).toMatchObject({ prepare: "running" });
    const processed = await t.db.selectFrom("processed_events").select("event_id").where("event_id", "=", bad.eventId).executeTakeFirst();
    expect(processed).toBeUndefined();
    const pending = (await t.redis.xpending(keys.events, API_GROUP, "-", "+", 100)) as [string, string, number, number][];
    expect(pending.map(([id]) => id)).toContain(badEntry);
    await t.redis.xack(keys.events, API_GROUP, badEntry); // not to be retried for the rest of the file
  });

  it("does not reopen a step with a start delivered after its end (an entry taken over late)", async () => {
    const p = await makeProfile(t.db, a.userId);
    const j = await train(p.id);
    const { command } = await worker.next("train_profile");
    await worker.send(command, { type: "job_started", worker: worker.name });
    const started = worker.event(command, { type: "step_started", step: "prepare", engine: "dataset" });
    await new Promise((r) => setTimeout(r, 5));
    await worker.send(command, { type: "step_succeeded", step: "prepare", engine: "dataset", artifacts: [], outputs: {}, durationMs: 5, reused: false });
    await waitFor("prepare succeeded", async () => (await job(j.id)).steps.find((s: { name: string }) => s.name === "prepare").state === "succeeded");
    await worker.emit(started);
    await waitFor("late start recorded", async () =>
      (await t.db.selectFrom("processed_events").select("event_id").where("event_id", "=", started.eventId).executeTakeFirst()) !== undefined,
    );
    expect((await job(j.id)).steps.find((s: { name: string }) => s.name === "prepare")).toMatchObject({ state: "succeeded", durationMs: 5 });
    // A start sent after the end (the step runs again) still reopens it.
    await worker.send(command, { type: "step_started", step: "prepare", engine: "dataset" });
    await waitFor("prepare running again", async () => (await job(j.id)).steps.find((s: { name: string }) => s.name === "prepare").state === "running");
  });

  it("keeps a step's run when a resumed worker reports it again as reused in the same attempt", async () => {
    const p = await makeProfile(t.db, a.userId);
    const j = await train(p.id);
    const { command } = await worker.next("train_profile");
    await worker.send(command, { type: "job_started", worker: worker.name });
    await worker.send(command, { type: "step_succeeded", step: "prepare", engine: "dataset", artifacts: [], outputs: { n: 1 }, durationMs: 1500, reused: false });
    const again = worker.event(command, { type: "step_succeeded", step: "prepare", engine: "dataset", artifacts: [], outputs: { n: 1 }, durationMs: 0, reused: true });
    await worker.emit(again);
    await waitFor("the reused report recorded", async () =>
      (await t.db.selectFrom("processed_events").select("event_id").where("event_id", "=", again.eventId).executeTakeFirst()) !== undefined,
    );
    expect((await job(j.id)).steps.find((s: { name: string }) => s.name === "prepare")).toMatchObject({ state: "succeeded", durationMs: 1500, reused: false });
  });

  it("fails with the step and code, then retries as attempt 2 reusing succeeded steps", async () => {
    const p = await makeProfile(t.db, a.userId);
    const j = await train(p.id);
    const { command } = await worker.next("train_profile");
    await worker.send(command, { type: "job_started", worker: worker.name });
    await worker.step(command, "prepare", "dataset");
    await worker.send(command, { type: "step_started", step: "train_lora", engine: "dataset" });
    const error = { code: "engine_failed", message: "kohya crashed", retryable: true } as const;
    await worker.send(command, { type: "step_failed", step: "train_lora", engine: "dataset", error, durationMs: 50 });
    await worker.send(command, { type: "job_finished", state: "failed", error: { ...error, step: "train_lora" } });

    const failed = await waitFor("failed job", async () => {
      const v = await job(j.id);
      const prof = await t.db.selectFrom("profiles").select("state").where("id", "=", p.id).executeTakeFirstOrThrow();
      return v.state === "failed" && prof.state === "failed" ? v : undefined;
    });
    expect(failed.error).toEqual({ ...error, step: "train_lora" });
    const lora = failed.steps.find((s: { name: string }) => s.name === "train_lora");
    expect(lora).toMatchObject({ state: "failed", error, engine: "dataset" });

    // Only failed/cancelled jobs can be retried.
    const done = await makeProfile(t.db, a.userId);
    const running = await train(done.id);
    expect((await app.inject({ method: "POST", url: `/v1/jobs/${running.id}/retry`, headers: a.auth })).statusCode).toBe(409);
    await worker.next("train_profile"); // drain it

    const retry = await app.inject({ method: "POST", url: `/v1/jobs/${j.id}/retry`, headers: a.auth });
    expect(retry.statusCode, retry.body).toBe(202);
    const r = retry.json();
    expect(r).toMatchObject({ state: "queued", attempt: 2, error: null });
    const states = Object.fromEntries(r.steps.map((s: { name: string; state: string }) => [s.name, s.state]));
    expect(states).toEqual({ prepare: "succeeded", train_lora: "pending", train_voice: "pending", evaluate: "pending", publish: "pending" });

    const { command: c2 } = await worker.next("train_profile");
    expect(c2).toMatchObject({ jobId: j.id, attempt: 2 });
    // A late event of attempt 1 changes nothing.
    await worker.send(command, { type: "step_started", step: "evaluate", engine: "builtin" });
    await worker.train(c2, { reused: ["prepare"] });
    const ok = await waitFor("retried job succeeded", async () => {
      const v = await job(j.id);
      return v.state === "succeeded" ? v : undefined;
    });
    expect(ok.steps.find((s: { name: string }) => s.name === "prepare")).toMatchObject({ reused: true, attempt: 2 });
    await waitFor("profile trained", async () =>
      (await t.db.selectFrom("profiles").select("state").where("id", "=", p.id).executeTakeFirstOrThrow()).state === "trained",
    );
    const metrics = await app.inject({ method: "GET", url: "/metrics" });
    expect(metrics.body).toMatch(/likeness_job_retries_total\{kind="train_profile"\} 1/);
    expect(metrics.body).toMatch(/likeness_job_step_failures_total\{step="train_lora",code="engine_failed"\} 1/);
  });

  it("shows what each step reported (storage keys left out); a step that runs again, and a retry, clear it", async () => {
    const p = await makeProfile(t.db, a.userId, { trained: true });
    const res = await app.inject({ method: "POST", url: "/v1/videos", headers: a.auth, payload: { profileId: p.id, narration: "Hi there.", width: 256, height: 256 } });
    expect(res.statusCode, res.body).toBe(202);
    const { job: j } = res.json();
    const { command } = await worker.next("generate_video");
    const dir = `jobs/${command.jobId}`;
    const sub = t.redis.duplicate();
    const published: JobUpdate[] = [];
    sub.on("message", (_channel, m) => published.push(JSON.parse(m)));
    await sub.subscribe(keys.jobUpdates(j.id));
    try {
      const upscale = { skipped: true, reason: "skipped: the frames are already 256x256", videoKey: `${dir}/talking_head/talking_head.mp4` };
      const mux = {
        video: "copied: already the final H.264 stream",
        subtitles: "soft",
        videoKey: `${dir}/mux/video.mp4`,
        subtitlesKey: `${dir}/mux/subtitles.srt`,
        streams: [{ codec: "h264", sourceKey: `${dir}/talking_head/talking_head.mp4` }],
      };
      await worker.send(command, { type: "job_started", worker: worker.name });
      await worker.send(command, { type: "step_succeeded", step: "upscale", engine: "lanczos", artifacts: [], outputs: upscale, durationMs: 20, reused: false });
      await worker.send(command, { type: "step_succeeded", step: "mux", engine: "ffmpeg", artifacts: [], outputs: mux, durationMs: 400, reused: false });

      const shown = await waitFor("outputs recorded", async () => {
        const v = await job(j.id);
        return v.steps.find((s: { name: string }) => s.name === "mux").outputs ? v : undefined;
      });
      const step = (v: { steps: { name: string; outputs: unknown }[] }, name: string) => v.steps.find((s) => s.name === name)!.outputs;
      expect(step(shown, "upscale")).toEqual({ skipped: true, reason: "skipped: the frames are already 256x256" });
      expect(step(shown, "mux")).toEqual({ video: "copied: already the final H.264 stream", subtitles: "soft", streams: [{ codec: "h264" }] });
      expect(step(shown, "tts")).toBeNull();
      const stored = await t.db.selectFrom("job_steps").select("outputs").where("job_id", "=", j.id).where("name", "=", "mux").executeTakeFirstOrThrow();
      expect(JSON.stringify(stored.outputs)).not.toMatch(/Key|jobs\//);
      // The live events say the same, without the keys.
      await waitFor("events published", async () => published.filter((u) => u.type === "event" && u.event.type === "step_succeeded").length === 2);
      const live = published.flatMap((u) => (u.type === "event" && u.event.type === "step_succeeded" ? [u.event.outputs] : []));
      expect(live).toEqual([step(shown, "upscale"), step(shown, "mux")]);

      // mux runs again, then fails: what it said before is gone.
      await worker.send(command, { type: "step_started", step: "mux", engine: "ffmpeg" });
      await waitFor("mux running again", async () => (await job(j.id)).steps.find((s: { name: string }) => s.name === "mux").state === "running");
      expect(step(await job(j.id), "mux")).toBeNull();
      const error = { code: "engine_failed", message: "ffmpeg crashed", retryable: true } as const;
      await worker.send(command, { type: "step_failed", step: "mux", engine: "ffmpeg", error, durationMs: 50 });
      await worker.send(command, { type: "job_finished", state: "failed", error: { ...error, step: "mux" } });
      await waitFor("failed job", async () => (await job(j.id)).state === "failed");

      // A retry resets every step that did not succeed, outputs included (here a row that still holds some);
      // a step that succeeded keeps what it said: the worker reuses it.
      await t.db.updateTable("job_steps").set({ outputs: JSON.stringify({ video: "stale" }) }).where("job_id", "=", j.id).where("name", "=", "mux").execute();
      const retry = await app.inject({ method: "POST", url: `/v1/jobs/${j.id}/retry`, headers: a.auth });
      expect(retry.statusCode, retry.body).toBe(202);
      expect(step(retry.json(), "mux")).toBeNull();
      expect(step(retry.json(), "upscale")).toEqual({ skipped: true, reason: "skipped: the frames are already 256x256" });
      await worker.next("generate_video"); // drain attempt 2
    } finally {
      sub.disconnect();
    }
  });

  it("cancels a queued job at once, and a running job when the worker reports", async () => {
    const p = await makeProfile(t.db, a.userId);
    const j = await train(p.id);
    const res = await app.inject({ method: "POST", url: `/v1/jobs/${j.id}/cancel`, headers: a.auth });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ state: "cancelled", error: { code: "cancelled" } });
    expect(await t.redis.get(keys.cancel(j.id))).toBe("1");
    expect(await t.redis.ttl(keys.cancel(j.id))).toBeGreaterThan(3600);
    expect(res.json().steps.every((s: { state: string }) => s.state === "cancelled")).toBe(true);
    await waitFor("profile back to draft", async () =>
      (await t.db.selectFrom("profiles").select("state").where("id", "=", p.id).executeTakeFirstOrThrow()).state === "draft",
    );
    expect((await app.inject({ method: "POST", url: `/v1/jobs/${j.id}/cancel`, headers: a.auth })).statusCode).toBe(409);
    const { command: stale } = await worker.next("train_profile");
    // The worker finds the flag and reports cancelled: recorded, nothing changes.
    await worker.send(stale, { type: "job_finished", state: "cancelled" });

    const q = await makeProfile(t.db, a.userId);
    const j2 = await train(q.id);
    const { command } = await worker.next("train_profile");
    await worker.send(command, { type: "job_started", worker: worker.name });
    await worker.send(command, { type: "step_started", step: "prepare", engine: "dataset" });
    await waitFor("running", async () => (await job(j2.id)).state === "running");
    const c = await app.inject({ method: "POST", url: `/v1/jobs/${j2.id}/cancel`, headers: a.auth });
    expect(c.statusCode).toBe(202);
    expect(c.json().state).toBe("cancelling"); // until the worker reports
    expect((await job(j2.id)).state).toBe("cancelling");
    expect(await t.redis.exists(keys.cancel(j2.id))).toBe(1);
    // Events of the still-running worker keep it `cancelling`; cancelling again changes nothing.
    await worker.send(command, { type: "step_started", step: "train_lora", engine: "dataset" });
    await waitFor("train_lora running", async () =>
      (await job(j2.id)).steps.some((s: { name: string; state: string }) => s.name === "train_lora" && s.state === "running"),
    );
    expect((await job(j2.id)).state).toBe("cancelling");
    const again = await app.inject({ method: "POST", url: `/v1/jobs/${j2.id}/cancel`, headers: a.auth });
    expect(again.statusCode).toBe(202);
    expect(again.json().state).toBe("cancelling");
    await worker.send(command, {
      type: "step_failed", step: "prepare", engine: "dataset", durationMs: 5,
      error: { code: "cancelled", message: "cancelled", retryable: true },
    });
    await worker.send(command, { type: "job_finished", state: "cancelled" });
    const v = await waitFor("cancelled", async () => {
      const x = await job(j2.id);
      return x.state === "cancelled" ? x : undefined;
    });
    expect(Object.fromEntries(v.steps.map((s: { name: string; state: string }) => [s.name, s.state]))).toEqual({
      prepare: "cancelled", train_lora: "cancelled", train_voice: "cancelled", evaluate: "cancelled", publish: "cancelled",
    });
    // Retrying a cancelled job clears the flag.
    expect((await app.inject({ method: "POST", url: `/v1/jobs/${j2.id}/retry`, headers: a.auth })).statusCode).toBe(202);
    expect(await t.redis.exists(keys.cancel(j2.id))).toBe(0);
    await worker.next("train_profile");
  });

  it("deletes a profile with its jobs and their objects, but not while one of its jobs runs", async () => {
    const p = await makeProfile(t.db, a.userId);
    const tj = await train(p.id);
    const { command: tc } = await worker.next("train_profile");
    await t.storage.put(`jobs/${tj.id}/prepare/portrait.png`, Buffer.from("png"), "image/png");
    await worker.train(tc);
    await waitFor("trained", async () => (await job(tj.id)).state === "succeeded");
    await waitFor("profile trained", async () =>
      (await t.db.selectFrom("profiles").select("state").where("id", "=", p.id).executeTakeFirstOrThrow()).state === "trained",
    );

    const res = await app.inject({ method: "POST", url: "/v1/videos", headers: a.auth, payload: { profileId: p.id, narration: "Hello." } });
    expect(res.statusCode, res.body).toBe(202);
    const vj = res.json().job;
    const { command: vc } = await worker.next("generate_video");
    // The video job is queued: the profile stays, and so do the objects.
    const refused = await app.inject({ method: "DELETE", url: `/v1/profiles/${p.id}`, headers: a.auth });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().message).toContain(vj.id);
    expect((await app.inject({ method: "GET", url: `/v1/profiles/${p.id}`, headers: a.auth })).statusCode).toBe(200);

    await worker.video(vc);
    await waitFor("video done", async () => (await job(vj.id)).state === "succeeded");
    expect(await t.storage.list(`jobs/${vj.id}/`)).toEqual([`jobs/${vj.id}/mux/subtitles.srt`, `jobs/${vj.id}/mux/video.mp4`]);
    // Another user cannot delete it; its owner can, and nothing of it is left.
    expect((await app.inject({ method: "DELETE", url: `/v1/profiles/${p.id}`, headers: b.auth })).statusCode).toBe(404);
    const del = await app.inject({ method: "DELETE", url: `/v1/profiles/${p.id}`, headers: a.auth });
    expect(del.statusCode, del.body).toBe(204);
    expect(await t.storage.list(`jobs/${tj.id}/`)).toEqual([]);
    expect(await t.storage.list(`jobs/${vj.id}/`)).toEqual([]);
    expect(await t.db.selectFrom("jobs").select("id").where("profile_id", "=", p.id).execute()).toEqual([]);
    expect(await t.db.selectFrom("videos").select("id").where("job_id", "=", vj.id).execute()).toEqual([]);
    expect((await app.inject({ method: "GET", url: `/v1/jobs/${vj.id}`, headers: a.auth })).statusCode).toBe(404);
  });

  it("streams snapshot, progress and events over the WebSocket in order, then closes", async () => {
    const p = await makeProfile(t.db, a.userId);
    const j = await train(p.id);
    const { command } = await worker.next("train_profile");
    const address = await app.listen({ host: "127.0.0.1", port: 0 });
    const wsUrl = address.replace(/^http/, "ws");

    // User B, or no token: refused before the upgrade.
    const refused = async (url: string, headers: Record<string, string> = {}) =>
      new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(url, { headers });
        ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
        ws.on("open", () => reject(new Error("should not open")));
        ws.on("error", () => undefined);
      });
    expect(await refused(`${wsUrl}/v1/jobs/${j.id}/events?token=${b.token}`)).toBe(404);
    expect(await refused(`${wsUrl}/v1/jobs/${j.id}/events`, b.auth)).toBe(404);
    expect(await refused(`${wsUrl}/v1/jobs/${j.id}/events`)).toBe(401);

    const ws = new WebSocket(`${wsUrl}/v1/jobs/${j.id}/events?token=${a.token}`);
    const messages: JobUpdate[] = [];
    const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)));
    ws.on("message", (data) => messages.push(JSON.parse(String(data))));
    await new Promise((resolve, reject) => {
      ws.on("open", resolve);
      ws.on("error", reject);
    });
    await waitFor("snapshot", async () => messages.length >= 1);
    expect(messages[0]).toMatchObject({ type: "job", job: { id: j.id, state: "queued" } });

    await worker.send(command, { type: "job_started", worker: worker.name });
    await worker.send(command, { type: "step_started", step: "prepare", engine: "dataset" });
    await waitFor("step_started forwarded", async () => messages.some((m) => m.type === "event" && m.event.type === "step_started"));
    await worker.progress(command, "prepare", 0.5);
    await waitFor("progress forwarded", async () => messages.some((m) => m.type === "progress"));
    await worker.train(command);
    expect(await closed).toBe(1000);

    const kinds = messages.map((m) => (m.type === "event" ? m.event.type : m.type));
    expect(kinds[0]).toBe("job");
    expect(kinds.slice(1, 4)).toEqual(["job_started", "step_started", "progress"]);
    expect(kinds.at(-2)).toBe("job_finished");
    const last = messages.at(-1)!;
    expect(last.type === "job" && last.job.state).toBe("succeeded");
    const progress = messages.find((m) => m.type === "progress");
    expect(progress).toMatchObject({ progress: { step: "prepare", fraction: 0.5, jobId: j.id } });

    // A finished job: the snapshot, then the socket closes.
    const ws2 = new WebSocket(`${wsUrl}/v1/jobs/${j.id}/events`, { headers: a.auth });
    const got: JobUpdate[] = [];
    ws2.on("message", (d) => got.push(JSON.parse(String(d))));
    await new Promise((resolve) => ws2.on("close", resolve));
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ type: "job", job: { state: "succeeded" } });

    // A browser: the session cookie, with this site's Origin; from another site, 403.
    const site = new URL(address);
    const signin = await app.inject({
      method: "POST",
      url: "/v1/auth/login",
      headers: { host: site.host, origin: site.origin },
      payload: { email: a.email, password: "correct horse battery", session: "cookie" },
    });
    const cookie = String(signin.headers["set-cookie"]).split(";")[0]!;
    expect(await refused(`${wsUrl}/v1/jobs/${j.id}/events`, { cookie, origin: "http://evil.test" })).toBe(403);
    const ws3 = new WebSocket(`${wsUrl}/v1/jobs/${j.id}/events`, { headers: { cookie, origin: site.origin } });
    const fromCookie: JobUpdate[] = [];
    ws3.on("message", (d) => fromCookie.push(JSON.parse(String(d))));
    await new Promise((resolve) => ws3.on("close", resolve));
    expect(fromCookie).toEqual([expect.objectContaining({ type: "job" })]);
  });

  it("deletes the workflow checkpoints of jobs that ended more than a week ago, and only those", async () => {
    const trainToEnd = async () => {
      const p = await makeProfile(t.db, a.userId);
      const j = await train(p.id);
      const { command } = await worker.next("train_profile");
      await worker.train(command);
      await waitFor("job finished", async () => (await job(j.id)).state === "succeeded");
      return j.id as string;
    };
    const oldJob = await trainToEnd();
    const recentJob = await trainToEnd();
    await t.db.updateTable("jobs").set({ finished_at: new Date(Date.now() - 8 * 24 * 3600 * 1000) }).where("id", "=", oldJob).execute();
    const { runner } = jobsHandle(t.deps)!;
    const before = await runner.history(oldJob, 1, "train_profile");
    expect(before.length).toBeGreaterThan(0);

    expect(await runner.pruneCheckpoints(7)).toBeGreaterThanOrEqual(1);
    expect(await runner.history(oldJob, 1, "train_profile")).toEqual([]);
    expect((await runner.history(recentJob, 1, "train_profile")).length).toBeGreaterThan(0);
    // The job itself, its steps and its record are untouched.
    expect((await job(oldJob)).state).toBe("succeeded");
  });

  it("finishes a job after the api restarts mid-job, finalizing exactly once", async () => {
    const p = await makeProfile(t.db, a.userId);
    const j = await train(p.id);
    const { command } = await worker.next("train_profile");
    await app.close();

    // While no api runs, the worker reports; a replica that then died read two entries and
    // never acked them (they sit in its PEL until XAUTOCLAIM takes them over).
    await worker.send(command, { type: "job_started", worker: worker.name });
    await worker.step(command, "prepare", "dataset");
    await t.redis.xgroup("CREATE", keys.events, API_GROUP, "0", "MKSTREAM").catch(() => undefined);
    const stolen = (await t.redis.xreadgroup("GROUP", API_GROUP, "api-dead-replica", "COUNT", 2, "STREAMS", keys.events, ">")) as [string, unknown[]][];
    expect(stolen[0]![1].length).toBe(2);

    const deps = { config: t.config, db: t.db, redis: t.redis, storage: t.storage };
    app = await buildApp(deps);
    extraApps.push(app);
    await app.ready();
    t.app = app;

    await worker.step(command, "train_lora", "dataset");
    await worker.step(command, "train_voice", "dataset");
    await worker.step(command, "evaluate", "builtin");
    await worker.step(command, "publish", "builtin");
    await worker.send(command, { type: "job_finished", state: "succeeded", result: worker.assets(j.id) });

    await waitFor("trained after restart", async () =>
      (await t.db.selectFrom("profiles").select("state").where("id", "=", p.id).executeTakeFirstOrThrow()).state === "trained",
    );
    const v = await job(j.id);
    expect(v.state).toBe("succeeded");
    expect(v.steps.every((s: { state: string }) => s.state === "succeeded")).toBe(true);
    // The dead replica's entries are taken over (XAUTOCLAIM) and acked.
    await waitFor("dead replica's entries reclaimed", async () => ((await t.redis.xpending(keys.events, API_GROUP)) as [number])[0] === 0);

    // Exactly one finalize across both processes: one finalize write in the thread's history,
    // and the new app's counter says 1 for this kind (the old app never got that far).
    const handle = jobsHandle(deps)!;
    // The workflow resumes after the event is recorded and acked: wait for its end.
    const history = await waitFor("workflow ended", async () => {
      const h = await handle.runner.history(j.id, 1, "train_profile");
      return h[0]?.next.length === 0 ? h : undefined;
    });
    expect(history.filter((s) => s.next.includes("finalize"))).toHaveLength(1);
    expect(history[0]!.next).toEqual([]);
    expect(history[0]!.values).toMatchObject({ jobId: j.id, attempt: 1, dispatched: true, outcome: "succeeded" });
    const metrics = await app.inject({ method: "GET", url: "/metrics" });
    expect(metrics.body).toMatch(/likeness_jobs_finalized_total\{kind="train_profile",state="succeeded"\} 1\n/);
    // The outcomes not seen yet are series at 0 (the failure-ratio alert's increase() needs them).
    expect(metrics.body).toMatch(/likeness_jobs_finalized_total\{kind="generate_video",state="failed"\} 0\n/);
    // Resuming again is a no-op.
    expect(await handle.runner.resume(worker.event(command, { type: "job_finished", state: "succeeded", result: worker.assets(j.id) }) as never)).toBe(false);
  });

  it("after a restart re-reads its own unacked entries and resumes a recorded but unresumed job_finished", async () => {
    // Job 1: job_finished recorded and acked, but the api died before resuming the workflow.
    const p1 = await makeProfile(t.db, a.userId);
    const j1 = await train(p1.id);
    const { command: c1 } = await worker.next("train_profile");
    // Job 2: the api read job_finished into its own PEL and died before recording it.
    const p2 = await makeProfile(t.db, a.userId);
    const j2 = await train(p2.id);
    const { command: c2 } = await worker.next("train_profile");
    const consumerName = defaultConsumerName(); // what every app of this process uses
    await app.close();

    await recordEvent(t.db, worker.event(c1, { type: "job_finished", state: "succeeded", result: worker.assets(j1.id) }));
    // The profile is trained in the same transaction as the job's end, before any workflow runs.
    expect((await t.db.selectFrom("profiles").select("state").where("id", "=", p1.id).executeTakeFirstOrThrow()).state).toBe("trained");

    await worker.send(c2, { type: "job_finished", state: "succeeded", result: worker.assets(j2.id) });
    const read = (await t.redis.xreadgroup("GROUP", API_GROUP, consumerName, "COUNT", 10, "STREAMS", keys.events, ">")) as [string, unknown[]][];
    expect(read[0]![1].length).toBe(1);

    // An invalid entry is logged and acknowledged, never retried.
    await t.redis.xadd(keys.events, "*", MESSAGE_FIELD, JSON.stringify({ v: 1, type: "job_finished", jobId: "nope" }));

    const d: AppDeps = { config: t.config, db: t.db, redis: t.redis, storage: t.storage };
    app = await buildApp(d);
    extraApps.push(app);
    t.app = app;
    expect(jobsHandle(d)!.consumer.name).toBe(consumerName);
    await app.ready(); // recover() resumes job 1 before ready resolves
    const thread1 = await jobsHandle(d)!.runner.history(j1.id, 1, "train_profile");
    expect(thread1[0]!.next).toEqual([]);
    expect(thread1[0]!.values).toMatchObject({ outcome: "succeeded" });
    await waitFor("job 2 finalized from the PEL", async () =>
      (await t.db.selectFrom("profiles").select("state").where("id", "=", p2.id).executeTakeFirstOrThrow()).state === "trained",
    );
    expect((await job(j1.id)).state).toBe("succeeded");
    await waitFor("the invalid entry dropped", async () =>
      /likeness_job_events_total\{type="invalid",result="invalid"\} 1/.test((await app.inject({ method: "GET", url: "/metrics" })).body),
    );
    await waitFor("all acked", async () => ((await t.redis.xpending(keys.events, API_GROUP)) as [number])[0] === 0);
  });
});
