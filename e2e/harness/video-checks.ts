// What a finished video must be, checked through the HTTP API and ffprobe.
import fs from "node:fs";
import path from "node:path";
import { expect } from "vitest";
import { GENERATE_VIDEO_STEPS, type Job, type Pipeline, type Video } from "@likeness/contracts";
import type { Client } from "./client.js";
import { summarize } from "./client.js";
import { ffprobe, rate, durationSec } from "./media.js";
import type { Stack } from "./stack.js";

const FRAME = 1 / 25;

/** Every step of a succeeded job ran (or was reused) with a named engine and real timings. */
export function expectAllStepsSucceeded(job: Job, names: readonly string[]): void {
  expect(job.state, JSON.stringify(summarize(job))).toBe("succeeded");
  expect(job.error).toBeNull();
  expect(job.steps.map((s) => s.name)).toEqual([...names]);
  for (const s of job.steps) {
    expect(s.state, `step ${s.name}`).toBe("succeeded");
    expect(typeof s.engine === "string" && s.engine.length > 0, `step ${s.name} names its engine (got ${s.engine})`).toBe(true);
    expect(s.durationMs, `step ${s.name} durationMs`).toBeTypeOf("number");
    expect(s.durationMs!, `step ${s.name} durationMs`).toBeGreaterThanOrEqual(0);
    expect(s.startedAt, `step ${s.name} startedAt`).not.toBeNull();
    expect(s.finishedAt, `step ${s.name} finishedAt`).not.toBeNull();
    expect(Date.parse(s.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(s.startedAt!));
    expect(s.error, `step ${s.name} error`).toBeNull();
  }
  expect(job.finishedAt).not.toBeNull();
}

/**
 * Downloads GET /v1/videos/:id/file and checks the MP4: one H.264 yuv420p 25 fps video stream, one
 * AAC stream, video duration = the speech's duration (tts artifact, measured here) ± 1 frame, and a
 * Range request answers 206 with exactly those bytes.
 */
export async function expectPlayableVideo(
  stack: Stack,
  client: Client,
  video: Video,
  job: Job,
  pipeline: Pipeline,
  /** The default engines made it (false: engines of the request's choosing, e.g. the GPU ones). */
  builtIn = true,
): Promise<{ bytes: number; videoSec: number; speechSec: number }> {
  expectAllStepsSucceeded(job, GENERATE_VIDEO_STEPS[pipeline]);
  expect(job.videoId).toBe(video.id);

  const meta = await client.json<Video>("GET", `/v1/videos/${video.id}`);
  expect(meta.state).toBe("succeeded");
  expect(meta.pipeline).toBe(pipeline);
  expect(meta.jobId).toBe(job.id);

  const res = await client.fetch(`/v1/videos/${video.id}/file`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("video/mp4");
  expect(res.headers.get("accept-ranges")).toBe("bytes");
  const body = Buffer.from(await res.arrayBuffer());
  expect(Number(res.headers.get("content-length"))).toBe(body.length);
  const file = path.join(stack.tmpDir, `download-${video.id}.mp4`);
  fs.writeFileSync(file, body);

  const probe = ffprobe(file);
  const videos = probe.streams.filter((s) => s.codec_type === "video");
  const audios = probe.streams.filter((s) => s.codec_type === "audio");
  expect(videos.map((s) => s.codec_name)).toEqual(["h264"]);
  expect(audios.map((s) => s.codec_name)).toEqual(["aac"]);
  // Soft subtitles (the default): one mov_text track; burned or none: no track.
  const tracks = probe.streams.filter((s) => s.codec_type === "subtitle").map((s) => s.codec_name);
  expect(tracks).toEqual(meta.subtitles === "soft" ? ["mov_text"] : []);
  if (builtIn) {
    // The face speaks (landmarks) in a piper voice, and the frames were encoded once: the step
    // that made them encoded the final stream, upscale had nothing to do, mux copied it.
    const engines = Object.fromEntries(job.steps.map((s) => [s.name, s.engine]));
    expect(engines.tts).toBe("piper");
    expect(engines[pipeline === "sadtalker" ? "talking_head" : "lipsync"]).toBe("landmarks");
    const outputs = Object.fromEntries(job.steps.map((s) => [s.name, s.outputs ?? {}]));
    expect(outputs.upscale).toMatchObject({ skipped: true, reason: expect.stringContaining("already") });
    expect(String(outputs.mux!.video)).toMatch(/^copied/);
  }
  expect(JSON.stringify(job.steps.map((s) => s.outputs))).not.toMatch(/Key"/);
  const v = videos[0]!;
  expect(v.pix_fmt).toBe("yuv420p");
  expect(rate(v.r_frame_rate)).toBe(25);
  expect(rate(v.avg_frame_rate)).toBeCloseTo(25, 3);
  expect([v.width, v.height]).toEqual([video.width, video.height]);

  // The speech the video must match: the tts step's speech artifact, measured independently.
  const tts = job.steps.find((s) => s.name === "tts")!;
  const speech = tts.artifacts.find((a) => a.kind === "speech");
  expect(speech, `tts artifacts: ${JSON.stringify(tts.artifacts)}`).toBeDefined();
  const speechSec = durationSec(stack.objectPath(speech!.key));
  const videoSec = Number(v.duration);
  expect(speechSec).toBeGreaterThan(1);
  expect(Math.abs(videoSec - speechSec), `video ${videoSec} s vs speech ${speechSec} s`).toBeLessThanOrEqual(FRAME + 1e-6);
  if (meta.durationSec !== null) expect(Math.abs(meta.durationSec - speechSec)).toBeLessThanOrEqual(FRAME + 1e-6);

  // Range: a slice in the middle, and the last bytes.
  const start = 100;
  const end = Math.min(body.length - 1, 4195);
  const part = await client.fetch(`/v1/videos/${video.id}/file`, { headers: { range: `bytes=${start}-${end}` } });
  expect(part.status).toBe(206);
  expect(part.headers.get("content-range")).toBe(`bytes ${start}-${end}/${body.length}`);
  const partBody = Buffer.from(await part.arrayBuffer());
  expect(partBody.length).toBe(end - start + 1);
  expect(partBody.equals(body.subarray(start, end + 1))).toBe(true);

  const tail = await client.fetch(`/v1/videos/${video.id}/file`, { headers: { range: "bytes=-256" } });
  expect(tail.status).toBe(206);
  expect(Buffer.from(await tail.arrayBuffer()).equals(body.subarray(body.length - 256))).toBe(true);

  return { bytes: body.length, videoSec, speechSec };
}
