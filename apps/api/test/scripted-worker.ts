// The job side's test doubles and helpers, shared by the api's job tests: a scripted worker
// (a test double of the Python plane that reads the job streams and answers with contract
// events), a poll-until helper and a profile written straight into the tables.
import { randomBytes, randomUUID } from "node:crypto";
import { expect } from "vitest";
import type { Redis } from "ioredis";
import {
  JobCommand,
  JobEvent,
  MESSAGE_FIELD,
  PROTOCOL_VERSION,
  WORKER_GROUP,
  redisKeys,
  type JobKind,
  type ProfileAssets,
  type StepName,
} from "@likeness/contracts";
import type { ObjectStorage } from "../src/storage/object-storage.js";
import type { Db } from "../src/db/db.js";

type Cmd = JobCommand;
type EventInput = { type: JobEvent["type"] } & Record<string, unknown>;

/** Reads the job streams and answers with contract events, like the Python worker would. */
type StepArtifact = { key: string; kind: string; contentType: string; bytes: number };

export class ScriptedWorker {
  private readonly keys;
  readonly name = `worker-${randomBytes(3).toString("hex")}`;
  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly storage: ObjectStorage,
  ) {
    this.keys = redisKeys(prefix);
  }

  async next(kind: JobKind, timeoutMs = 5000): Promise<{ entryId: string; command: Cmd }> {
    const stream = this.keys.jobStream(kind);
    await this.redis.xgroup("CREATE", stream, WORKER_GROUP, "0", "MKSTREAM").catch(() => undefined);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const res = (await this.redis.xreadgroup(
        "GROUP", WORKER_GROUP, this.name, "COUNT", 1, "BLOCK", 200, "STREAMS", stream, ">",
      )) as [string, [string, string[]][]][] | null;
      const entry = res?.[0]?.[1]?.[0];
      if (entry) {
        const [entryId, fields] = entry;
        expect(fields[0]).toBe(MESSAGE_FIELD);
        return { entryId, command: JobCommand.parse(JSON.parse(fields[1]!)) };
      }
    }
    throw new Error(`no ${kind} command within ${timeoutMs} ms`);
  }

  /** How many commands for this job its stream holds (a resend adds one). */
  async commandsFor(kind: JobKind, jobId: string): Promise<number> {
    const entries = (await this.redis.xrange(this.keys.jobStream(kind), "-", "+")) as [string, string[]][];
    return entries.filter(([, fields]) => (JSON.parse(fields[1]!) as { jobId: string }).jobId === jobId).length;
  }

  /** What a live worker does every few seconds: re-claim its own entry, so it never grows idle. */
  async touch(kind: JobKind, entryId: string): Promise<void> {
    await this.redis.xclaim(this.keys.jobStream(kind), WORKER_GROUP, this.name, 0, entryId, "JUSTID");
  }

  async pendingCommands(kind: JobKind): Promise<number> {
    return this.redis.xlen(this.keys.jobStream(kind));
  }

  event(cmd: Pick<Cmd, "jobId" | "attempt">, e: EventInput): JobEvent {
    return JobEvent.parse({ v: PROTOCOL_VERSION, eventId: randomUUID(), jobId: cmd.jobId, attempt: cmd.attempt, at: new Date().toISOString(), ...e });
  }

  async emit(ev: JobEvent): Promise<JobEvent> {
    await this.redis.xadd(this.keys.events, "*", MESSAGE_FIELD, JSON.stringify(ev));
    return ev;
  }

  async send(cmd: Pick<Cmd, "jobId" | "attempt">, e: EventInput): Promise<JobEvent> {
    return this.emit(this.event(cmd, e));
  }

  async progress(cmd: Pick<Cmd, "jobId" | "attempt">, step: StepName, fraction: number): Promise<void> {
    await this.redis.publish(
      this.keys.progress(cmd.jobId),
      JSON.stringify({ v: PROTOCOL_VERSION, jobId: cmd.jobId, attempt: cmd.attempt, step, fraction, at: new Date().toISOString() }),
    );
  }

  async step(cmd: Cmd, step: StepName, engine: string, artifacts: StepArtifact[] = [], reused = false) {
    await this.send(cmd, { type: "step_started", step, engine });
    await this.send(cmd, { type: "step_succeeded", step, engine, artifacts, outputs: {}, durationMs: 1234, reused });
  }

  assets(jobId: string): ProfileAssets {
    const p = `jobs/${jobId}`;
    return {
      portraitKey: `${p}/prepare/portrait.png`,
      faceBox: { x: 10, y: 20, w: 100, h: 120 },
      datasetKey: `${p}/prepare/dataset.tar`,
      voiceReferenceKey: `${p}/prepare/voice_reference.wav`,
      voiceProfileKey: `${p}/train_voice/voice_profile.json`,
      acceptedImages: 2,
      rejectedImages: [],
    };
  }

  /** The whole train_profile DAG, successful; `skip` steps succeeded in an earlier attempt. */
  async train(cmd: Cmd, opts: { reused?: StepName[] } = {}) {
    await this.send(cmd, { type: "job_started", worker: this.name });
    const engines: Record<string, string> = { prepare: "dataset", train_lora: "dataset", train_voice: "dataset", evaluate: "builtin", publish: "builtin" };
    for (const step of ["prepare", "train_lora", "train_voice", "evaluate", "publish"] as const) {
      const arts = step === "prepare"
        ? [{ key: `jobs/${cmd.jobId}/prepare/portrait.png`, kind: "portrait", contentType: "image/png", bytes: 1000 }]
        : [];
      await this.step(cmd, step, engines[step]!, arts, opts.reused?.includes(step) ?? false);
    }
    await this.send(cmd, { type: "job_finished", state: "succeeded", result: this.assets(cmd.jobId) });
  }

  /** The generate_video DAG; writes a fake MP4 (random bytes) where mux puts the video, and SubRip beside it for soft subtitles. */
  async video(cmd: Cmd): Promise<Buffer> {
    if (cmd.kind !== "generate_video") throw new Error("not a video command");
    await this.send(cmd, { type: "job_started", worker: this.name });
    const bytes = randomBytes(200_000);
    const key = `jobs/${cmd.jobId}/mux/video.mp4`;
    for (const step of ["image", "tts", "talking_head", "upscale"] as const) await this.step(cmd, step, "builtin");
    await this.storage.put(key, bytes, "video/mp4");
    const muxed: StepArtifact[] = [{ key, kind: "video", contentType: "video/mp4", bytes: bytes.length }];
    if (cmd.payload.subtitles === "soft") {
      const srt = Buffer.from(SCRIPTED_SRT);
      muxed.push({ key: `jobs/${cmd.jobId}/mux/subtitles.srt`, kind: "subtitles", contentType: "application/x-subrip", bytes: srt.length });
      await this.storage.put(muxed[1]!.key, srt, "application/x-subrip");
    }
    await this.step(cmd, "mux", "ffmpeg", muxed);
    await this.step(cmd, "publish", "builtin");
    await this.send(cmd, {
      type: "job_finished",
      state: "succeeded",
      result: { videoKey: key, durationSec: 3.2, width: cmd.payload.width, height: cmd.payload.height, fps: 25 },
    });
    return bytes;
  }
}

/** The soft subtitles a scripted video has. */
export const SCRIPTED_SRT = "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n";

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

/** A profile with two photos and a voice sample, straight into the tables (uploads are the core's). */
export async function makeProfile(db: Db, userId: string, opts: { trained?: boolean; inputs?: boolean } = {}) {
  const id = randomUUID();
  const trigger = `lk${randomBytes(3).toString("hex")}`;
  const assets = opts.trained
    ? {
        portraitKey: `jobs/${randomUUID()}/prepare/portrait.png`,
        faceBox: { x: 1, y: 2, w: 30, h: 40 },
        datasetKey: "jobs/x/prepare/dataset.tar",
        voiceReferenceKey: "jobs/x/prepare/voice_reference.wav",
        voiceProfileKey: "jobs/x/train_voice/voice_profile.json",
        acceptedImages: 2,
        rejectedImages: [],
      }
    : null;
  await db
    .insertInto("profiles")
    .values({ id, user_id: userId, name: `Ada ${trigger}`, trigger_word: trigger, state: opts.trained ? "trained" : "draft", assets: assets ? JSON.stringify(assets) : null })
    .execute();
  if (opts.inputs !== false) {
    const base = `uploads/${userId}/${id}`;
    await db
      .insertInto("profile_inputs")
      .values([
        { profile_id: id, kind: "image", position: 0, key: `${base}/images/00.png`, original_name: "a.png", content_type: "image/png", bytes: 100, width: 256, height: 256 },
        { profile_id: id, kind: "image", position: 1, key: `${base}/images/01.jpg`, original_name: "b.jpg", content_type: "image/jpeg", bytes: 100, width: 256, height: 256 },
        { profile_id: id, kind: "voice", position: 0, key: `${base}/voice/sample.wav`, original_name: "me.wav", content_type: "audio/wav", bytes: 100, duration_sec: 5 },
      ])
      .execute();
  }
  return { id, trigger };
}
