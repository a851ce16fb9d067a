// The happy path through the HTTP API on the real stack: sign up, upload photos + a voice sample,
// train (watched on the WebSocket), make a video with each pipeline, download and probe it. Then a
// second user must not see any of it. One stack for the file; the tests run in order and share
// what the earlier ones made.
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { TRAIN_PROFILE_STEPS, type Job, type Profile, type Video } from "@likeness/contracts";
import { Client, describeUpdate, summarize } from "./harness/client.js";
import { Stack, skipE2e } from "./harness/stack.js";
import { expectAllStepsSucceeded, expectPlayableVideo } from "./harness/video-checks.js";
import type { Samples } from "./harness/global-setup.js";

const NARRATION = "Hello from Likeness. This video was made on a laptop.";

describe.skipIf(await skipE2e())("e2e: profile → video on the real stack", () => {
  let stack: Stack;
  let a: Client;
  let samples: Samples;
  const made: { profile?: Profile; trainJob?: Job; video?: Video; videoJob?: Job } = {};

  beforeAll(async () => {
    const s = inject("samples");
    if ("error" in s) throw new Error(`sample inputs: ${s.error}`);
    samples = s;
    stack = await Stack.start({ name: "video" });
    a = await Client.signup(stack.url, "alice");
  });
  afterAll(async () => {
    await stack?.close();
  });

  test("upload + train: the WebSocket sends a snapshot first, then events, and ends terminal; the profile is trained", async () => {
    stack.printLogsOnFailure();
    const created = await a.createProfile("Astronaut", samples);
    expect(created.state).toBe("draft");
    expect(created.inputs.map((i) => i.kind).sort()).toEqual(["image", "voice"]);

    const started = await a.json<Job>("POST", `/v1/profiles/${created.id}/train`, undefined, 202);
    expect(started.kind).toBe("train_profile");
    expect(started.steps.map((s) => s.name)).toEqual([...TRAIN_PROFILE_STEPS]);

    const watch = a.watchJob(started.id);
    const t0 = performance.now();
    const job = await a.waitJob(started.id, { timeoutMs: 150_000 });
    const trainSec = (performance.now() - t0) / 1000;
    expectAllStepsSucceeded(job, TRAIN_PROFILE_STEPS);

    const closed = await Promise.race([watch.closed, new Promise((r) => setTimeout(() => r("open"), 15_000))]);
    const seen = watch.messages.map(describeUpdate);
    expect(closed, `socket after the job ended; messages: ${seen.join(", ")}`).toMatchObject({ code: 1000 });
    expect(watch.messages[0]?.type, seen.join(", ")).toBe("job");
    expect(watch.messages[0]?.type === "job" && watch.messages[0].job.id).toBe(started.id);
    const events = watch.messages.flatMap((m) => (m.type === "event" ? [m.event] : []));
    expect(events.some((e) => e.type === "step_started"), seen.join(", ")).toBe(true);
    expect(events.some((e) => e.type === "step_succeeded"), seen.join(", ")).toBe(true);
    expect(events.every((e) => e.jobId === started.id)).toBe(true);
    const last = watch.messages.at(-1);
    expect(last?.type === "job" ? last.job.state : describeUpdate(last!), seen.join(", ")).toBe("succeeded");

    const profile = await a.json<Profile>("GET", `/v1/profiles/${created.id}`);
    expect(profile.state).toBe("trained");
    expect(profile.trainJobId).toBe(started.id);
    expect(profile.assets).toMatchObject({
      portraitKey: expect.any(String),
      voiceReferenceKey: expect.any(String),
      voiceProfileKey: expect.any(String),
      datasetKey: expect.any(String),
      acceptedImages: 1,
    });
    console.info(`e2e timing: training ${trainSec.toFixed(1)} s; websocket: ${seen.length} messages (${watch.messages.filter((m) => m.type === "progress").length} progress)`);
    made.profile = profile;
    made.trainJob = job;
  }, 180_000);

  test("sadtalker video: succeeded, engines + timings per step, MP4 = H.264 25 fps + AAC as long as the speech, Range works", async () => {
    stack.printLogsOnFailure();
    if (!made.profile) throw new Error("needs the trained profile of the test above");
    const t0 = performance.now();
    const { video, job: queued } = await a.createVideo({ profileId: made.profile.id, narration: NARRATION, pipeline: "sadtalker" });
    expect(queued.kind).toBe("generate_video");
    expect(queued.videoId).toBe(video.id);
    const job = await a.waitJob(queued.id, { timeoutMs: 150_000 });
    const sec = (performance.now() - t0) / 1000;
    expect(job.state, JSON.stringify(summarize(job))).toBe("succeeded");
    const r = await expectPlayableVideo(stack, a, video, job, "sadtalker");
    expect(video.script === null || video.script.narration === NARRATION).toBe(true);
    console.info(
      `e2e timing: sadtalker video ${sec.toFixed(1)} s (${r.bytes} bytes, video ${r.videoSec} s, speech ${r.speechSec} s); steps: ` +
        job.steps.map((s) => `${s.name}/${s.engine} ${((s.durationMs ?? 0) / 1000).toFixed(2)}s`).join(", "),
    );
    made.video = video;
    made.videoJob = job;
  }, 180_000);

  test("edit and re-render: each edit re-runs only what its change reaches; the source stays as it was", async () => {
    stack.printLogsOnFailure();
    const { video: source, videoJob: sourceJob } = made;
    if (!source || !sourceJob) throw new Error("needs the sadtalker video of the test above");
    const before = Buffer.from(await (await a.fetch(`/v1/videos/${source.id}/file`)).arrayBuffer());
    const edit = async (body: Record<string, unknown>) => {
      const { video, job: queued } = await a.createVideo({ from: source.id, ...body });
      expect(video.sourceVideoId).toBe(source.id);
      const job = await a.waitJob(queued.id, { timeoutMs: 150_000 });
      expect(job.state, JSON.stringify(summarize(job))).toBe("succeeded");
      await expectPlayableVideo(stack, a, video, job, "sadtalker");
      const reused = job.steps.filter((s) => s.reused).map((s) => s.name);
      for (const s of job.steps.filter((x) => x.reused && x.name !== "script")) expect(s.outputs?.reusedFrom, s.name).toBe(sourceJob.id);
      return { video: await a.json<Video>("GET", `/v1/videos/${video.id}`), reused };
    };

    // A new narration: the scene is the same, so the image is reused; the speech and all after it are new.
    const narrated = await edit({ narration: "A second take, with other words." });
    expect(narrated.reused).toEqual(["image"]);
    expect(narrated.video.script).toMatchObject({ narration: "A second take, with other words.", stage: source.script?.stage });

    // Subtitles off: only mux (and publish, which always runs) work again.
    const quiet = await edit({ subtitles: "none" });
    expect(quiet.reused).toEqual(["script", "image", "tts", "talking_head", "upscale"]);
    expect(quiet.video.script).toEqual(source.script);

    // A new stage: the image runs again; the speech is reused. (The built-in image engine frames the
    // portrait whatever the stage says, so its output is the same and what follows is reused too:
    // reuse follows content, not step names.)
    const staged = await edit({ stage: "ohwx person on a windy beach at dawn" });
    expect(staged.reused).not.toContain("image");
    expect(staged.reused).toContain("tts");

    // The source is untouched: same job, same bytes.
    expect((await a.json<Job>("GET", `/v1/jobs/${sourceJob.id}`)).steps.map((s) => s.reused)).toEqual(sourceJob.steps.map((s) => s.reused));
    expect(Buffer.from(await (await a.fetch(`/v1/videos/${source.id}/file`)).arrayBuffer()).equals(before)).toBe(true);
  }, 300_000);

  test("from a topic: the built-in LLM writes a title, a stage and a narration about it, and the video is made", async () => {
    stack.printLogsOnFailure();
    if (!made.profile) throw new Error("needs the trained profile of the test above");
    const { video, job: queued } = await a.createVideo({ profileId: made.profile.id, topic: "why the sea is salty", durationSec: 12 });
    expect(queued.engines?.llm).toBe("local");
    const job = await a.waitJob(queued.id, { timeoutMs: 150_000 });
    expect(job.state, JSON.stringify(summarize(job))).toBe("succeeded");
    expect(job.steps[0]).toMatchObject({ name: "script", engine: "local", state: "succeeded", reused: false });
    await expectPlayableVideo(stack, a, video, job, "sadtalker");
    const { script } = await a.json<Video>("GET", `/v1/videos/${video.id}`);
    expect(script?.title.length).toBeGreaterThan(0);
    expect(script?.stage).toContain(made.profile.triggerWord);
    expect(`${script?.title} ${script?.narration}`).toMatch(/\b(sea|salt)/i);
  }, 180_000);

  test("svd_wav2lip video at 9:16 with burned subtitles: a valid MP4 too", async () => {
    stack.printLogsOnFailure();
    if (!made.profile) throw new Error("needs the trained profile of the test above");
    const t0 = performance.now();
    const { video, job: queued } = await a.createVideo({
      profileId: made.profile.id, narration: NARRATION, pipeline: "svd_wav2lip", width: 720, height: 1280, subtitles: "burned",
    });
    expect(video.subtitles).toBe("burned");
    const job = await a.waitJob(queued.id, { timeoutMs: 150_000 });
    expect(job.state, JSON.stringify(summarize(job))).toBe("succeeded");
    const r = await expectPlayableVideo(stack, a, video, job, "svd_wav2lip");
    console.info(`e2e timing: svd_wav2lip video ${((performance.now() - t0) / 1000).toFixed(1)} s (${r.bytes} bytes)`);
  }, 180_000);

  test("user B gets 404 on A's profile, jobs, video and file, and B's job WebSocket is refused", async () => {
    stack.printLogsOnFailure();
    const { profile, trainJob, video, videoJob } = made;
    if (!profile || !trainJob || !video || !videoJob) throw new Error("needs the profile, jobs and video of the tests above");
    const b = await Client.signup(stack.url, "bob");

    const probes: [string, string, unknown?][] = [
      ["GET", `/v1/profiles/${profile.id}`],
      ["GET", `/v1/jobs/${trainJob.id}`],
      ["GET", `/v1/jobs/${videoJob.id}`],
      ["GET", `/v1/videos/${video.id}`],
      ["GET", `/v1/videos/${video.id}/file`],
      ["POST", `/v1/profiles/${profile.id}/train`],
      ["POST", `/v1/jobs/${videoJob.id}/retry`],
      ["POST", `/v1/jobs/${videoJob.id}/cancel`],
      ["DELETE", `/v1/profiles/${profile.id}`],
      ["POST", "/v1/videos", { profileId: profile.id, narration: "Not yours." }],
    ];
    const statuses: Record<string, number> = {};
    for (const [method, p, body] of probes) {
      const res = await b.fetch(p, {
        method,
        ...(body ? { body: JSON.stringify(body), headers: { "content-type": "application/json" } } : {}),
      });
      await res.arrayBuffer();
      statuses[`${method} ${p}`] = res.status;
    }
    expect(statuses).toEqual(Object.fromEntries(Object.keys(statuses).map((k) => [k, 404])));

    // B's lists are empty; A still sees everything (so the 404s above are about ownership).
    expect((await b.json<{ profiles: unknown[] }>("GET", "/v1/profiles")).profiles).toEqual([]);
    expect((await b.json<{ videos: unknown[] }>("GET", "/v1/videos")).videos).toEqual([]);
    expect((await a.fetch(`/v1/videos/${video.id}/file`, { headers: { range: "bytes=0-9" } })).status).toBe(206);
    expect((await a.json<Profile>("GET", `/v1/profiles/${profile.id}`)).state).toBe("trained");

    for (const jobId of [trainJob.id, videoJob.id]) {
      const watch = b.watchJob(jobId);
      const end = await watch.closed;
      expect(watch.messages, `B received messages of A's job ${jobId}`).toEqual([]);
      expect(end.refusedStatus ?? end.code, JSON.stringify(end)).toBe(404);
    }
    // Control: A's socket on the same (finished) job is accepted and sends the terminal snapshot.
    const own = a.watchJob(videoJob.id);
    const first = await own.next((u) => u.type === "job", 10_000);
    expect(first.type === "job" && first.job.state).toBe("succeeded");
    own.close();
  }, 60_000);
});
