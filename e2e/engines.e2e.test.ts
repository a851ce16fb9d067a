// Engines chosen per request on the real stack: the worker advertises its registry, GET /v1/engines
// lists it, a video made with `engines: {tts: "espeak", talking_head: "kenburns"}` runs those two
// (the step records say so, and the MP4 is valid), and an engine no worker runs is a 400 naming it.
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { GENERATE_VIDEO_STEPS, type EngineList, type Job, type Profile } from "@likeness/contracts";
import type { Client } from "./harness/client.js";
import { summarize } from "./harness/client.js";
import { durationSec, ffprobe } from "./harness/media.js";
import { skipE2e, type Stack } from "./harness/stack.js";
import { startTrainedStack } from "./harness/trained-stack.js";
import { expectAllStepsSucceeded } from "./harness/video-checks.js";

describe.skipIf(await skipE2e())("e2e: engines chosen per request", () => {
  let stack: Stack;
  let a: Client;
  let profile: Profile;

  beforeAll(async () => {
    ({ stack, a, profile } = await startTrainedStack("engines", {}));
  }, 180_000);
  afterAll(async () => {
    await stack?.close();
  });

  test("the worker's engines are listed with device, licence, health and defaults; no bench engine", async () => {
    stack.printLogsOnFailure();
    const { engines, workers } = await a.json<EngineList>("GET", "/v1/engines");
    expect(workers).toBe(1);
    const of = (kind: string, name: string) => engines.find((e) => e.taskKind === kind && e.name === name);
    expect(of("tts", "piper")).toMatchObject({ device: "cpu", licence: "GPL-3.0-or-later AND MIT", healthy: true, default: true, workers: 1 });
    expect(of("tts", "espeak")).toMatchObject({ licence: "GPL-3.0-or-later", healthy: true, default: false });
    expect(of("talking_head", "kenburns")).toMatchObject({ healthy: true, default: false });
    expect(of("llm", "none")).toMatchObject({ runsIn: "api" });
    expect(engines.filter((e) => e.name === "noop")).toEqual([]);

    const refused = await a.fetch("/v1/videos", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ profileId: profile.id, narration: "No.", engines: { tts: "noop" } }),
    });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ field: "engines.tts", message: expect.stringMatching(/^unknown engine "noop" for tts: available for tts: espeak, piper$/) });
  });

  test("a video with tts=espeak and talking_head=kenburns runs those engines; the step records show them", async () => {
    stack.printLogsOnFailure();
    const engines = { tts: "espeak", talking_head: "kenburns" };
    const { video, job: queued } = await a.createVideo({ profileId: profile.id, narration: "Chosen engines speak here.", engines });
    expect(queued.engines).toEqual(engines);
    const job = await a.waitJob(queued.id, { timeoutMs: 150_000 });
    expect(job.state, JSON.stringify(summarize(job))).toBe("succeeded");
    const ran = Object.fromEntries(job.steps.map((s: Job["steps"][number]) => [s.name, s.engine]));
    expect(ran).toMatchObject({ script: "none", image: "portrait", tts: "espeak", talking_head: "kenburns", upscale: "lanczos", mux: "ffmpeg" });
    const tts = job.steps.find((s) => s.name === "tts")!;
    expect(tts.artifacts.length).toBeGreaterThan(0);
    expect(tts.artifacts.every((x) => x.engine === "espeak")).toBe(true);
    expectAllStepsSucceeded(job, GENERATE_VIDEO_STEPS.sadtalker);

    // The MP4 is whole: H.264 + AAC, as long as espeak's speech (± 1 frame).
    const res = await a.fetch(`/v1/videos/${video.id}/file`);
    expect(res.status).toBe(200);
    const file = path.join(stack.tmpDir, `engines-${video.id}.mp4`);
    fs.writeFileSync(file, Buffer.from(await res.arrayBuffer()));
    const probe = ffprobe(file);
    expect(probe.streams.filter((x) => x.codec_type === "video").map((x) => x.codec_name)).toEqual(["h264"]);
    expect(probe.streams.filter((x) => x.codec_type === "audio").map((x) => x.codec_name)).toEqual(["aac"]);
    const speech = tts.artifacts.find((x) => x.kind === "speech")!;
    const videoSec = Number(probe.streams.find((x) => x.codec_type === "video")!.duration);
    expect(Math.abs(videoSec - durationSec(stack.objectPath(speech.key)))).toBeLessThanOrEqual(0.04 + 1e-6);
  }, 180_000);
});
