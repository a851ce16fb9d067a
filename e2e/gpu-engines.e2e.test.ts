// The GPU engines on the real stack, through the same API as the built-in ones, each tool replaced
// by its protocol-faithful fake (worker/tests/fakes/serve.py: ComfyUI and GPT-SoVITS servers, the
// Wav2Lip, SadTalker, Real-ESRGAN and kohya checkouts; the api's Ollama fake for the script):
// - a profile trained with kohya: its LoRA is in the profile, and ComfyUI loads it for the scene;
// - a video from a topic with ComfyUI (SD + SVD) + Ollama + GPT-SoVITS + Wav2Lip + Real-ESRGAN → a
//   valid MP4, the non-commercial engines flagged on the job and its steps;
// - a SadTalker video → a valid MP4;
// - a kohya training whose worker is SIGKILLed after a saved state resumes from it.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import type { EngineList, Job, Profile } from "@likeness/contracts";
import { fakeOllama, type FakeLlm } from "../apps/api/test/llm-fakes.js";
import { Client, summarize } from "./harness/client.js";
import { REPO } from "./harness/paths.js";
import { skipE2e, Stack } from "./harness/stack.js";
import { expectPlayableVideo } from "./harness/video-checks.js";

const PYTHON = path.join(REPO, "worker/.venv/bin/python");
const SERVE = path.join(REPO, "worker/tests/fakes/serve.py");
const STEPS = 40; // kohya steps; a state every 10, one step every 0.1 s: a training takes about 4 s

/** Starts serve.py and reads the environment it prints (one JSON line). */
async function startFakes(dir: string, subject: string): Promise<{ proc: ChildProcessWithoutNullStreams; env: Record<string, string> }> {
  const proc = spawn(PYTHON, [SERVE, dir, subject], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const first = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: proc.stdout });
    lines.once("line", resolve);
    proc.once("exit", (code) => reject(new Error(`serve.py exited (${code}) before it was ready: ${stderr}`)));
  });
  return { proc, env: JSON.parse(first) as Record<string, string> };
}

describe.skipIf(await skipE2e())("e2e: GPU engines over their fakes", () => {
  let stack: Stack;
  let fakes: Awaited<ReturnType<typeof startFakes>>;
  let ollama: FakeLlm;
  let a: Client;
  let profile: Profile;
  let training: Job;

  beforeAll(async () => {
    const samples = inject("samples");
    if ("error" in samples) throw new Error(`sample inputs: ${samples.error}`);
    ollama = await fakeOllama();
    // The fake ComfyUI draws the profile's photo where a LoRA is loaded, as the person's LoRA would.
    fakes = await startFakes(fs.mkdtempSync(path.join(os.tmpdir(), "lk-gpu-fakes-")), samples.portrait);
    stack = await Stack.start({
      name: "gpu-engines",
      // One worker takes the cpu and gpu0 queues: the GPU engines run here, on their fakes.
      workerEnv: {
        ...fakes.env,
        WORKER_QUEUES: "cpu,gpu0",
        KOHYA_STEPS: String(STEPS),
        KOHYA_SAVE_EVERY_N_STEPS: "10",
        FAKE_KOHYA_STEP_S: "0.1",
      },
      apiEnv: { OLLAMA_URL: ollama.url, OLLAMA_MODEL: "llama3.2" },
    });
    a = await stack.withLogs(() => Client.signup(stack.url, "alice"));
    // The worker advertises its engines once its GPU engines have looked at their fakes.
    const deadline = Date.now() + 30_000;
    while (!(await a.json<EngineList>("GET", "/v1/engines")).engines.some((e) => e.name === "kohya" && e.healthy)) {
      if (Date.now() > deadline) throw new Error(`kohya is not listed healthy: ${JSON.stringify(await a.json("GET", "/v1/engines"))}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const created = await a.createProfile("Astronaut", samples);
    const started = await a.json<Job>("POST", `/v1/profiles/${created.id}/train`, { engines: { lora_trainer: "kohya" } }, 202);
    training = await a.waitJob(started.id, { timeoutMs: 120_000 });
    expect(training.state, JSON.stringify(summarize(training))).toBe("succeeded");
    profile = await a.json<Profile>("GET", `/v1/profiles/${created.id}`);
  }, 240_000);

  afterAll(async () => {
    await stack?.close();
    fakes?.proc.kill("SIGTERM");
    await ollama?.close();
  });

  test("every GPU engine is listed healthy on its fake, with its licence; the non-commercial ones say so", async () => {
    stack.printLogsOnFailure();
    const { engines } = await a.json<EngineList>("GET", "/v1/engines");
    const of = (kind: string, name: string) => engines.find((e) => e.taskKind === kind && e.name === name);
    for (const [kind, name] of [["image", "comfyui"], ["motion", "comfyui"], ["tts", "gpt_sovits"], ["lipsync", "wav2lip"], ["talking_head", "sadtalker"], ["upscale", "realesrgan"], ["lora_trainer", "kohya"], ["llm", "ollama"]]) {
      expect(of(kind!, name!), `${kind}/${name}: ${JSON.stringify(of(kind!, name!))}`).toMatchObject({ healthy: true, default: false });
    }
    expect(of("lipsync", "wav2lip")).toMatchObject({ device: "gpu", nonCommercial: true });
    expect(of("motion", "comfyui")).toMatchObject({ nonCommercial: true });
    expect(of("talking_head", "sadtalker")).toMatchObject({ nonCommercial: false, licence: expect.stringContaining("Apache-2.0") });
    // Not configured on this worker: listed, not healthy, with the reason.
    expect(of("tts", "f5_tts")).toMatchObject({ healthy: false, problem: expect.stringContaining("F5_TTS_PYTHON") });
  });

  test("the kohya LoRA is in the profile", () => {
    const step = training.steps.find((s) => s.name === "train_lora")!;
    expect(step).toMatchObject({ engine: "kohya", state: "succeeded" });
    expect(step.outputs).toMatchObject({ trained: true, steps: STEPS, baseModel: "sd15" });
    expect(step.artifacts.map((x) => x.kind).sort()).toEqual(["lora", "lora_report"]);
    const lora = step.artifacts.find((x) => x.kind === "lora")!;
    const bytes = fs.readFileSync(path.join(stack.storageDir, lora.key));
    const headerLength = Number(bytes.readBigUInt64LE(0));
    expect(JSON.parse(bytes.subarray(8, 8 + headerLength).toString())).toHaveProperty("__metadata__");
  });

  test("a topic through Ollama, ComfyUI (SD with the LoRA, then SVD), GPT-SoVITS, Wav2Lip and Real-ESRGAN makes a valid MP4", async () => {
    stack.printLogsOnFailure();
    const engines = { llm: "ollama", image: "comfyui", motion: "comfyui", tts: "gpt_sovits", lipsync: "wav2lip", upscale: "realesrgan" };
    const { video, job: queued } = await a.createVideo({ profileId: profile.id, topic: "lighthouses", durationSec: 10, pipeline: "svd_wav2lip", width: 384, height: 512, engines });
    // Allowed, and said from the start: Wav2Lip's and SVD's licences forbid commercial use.
    expect(queued.licenceNotices.map((n) => `${n.taskKind}/${n.engine}`).sort()).toEqual(["lipsync/wav2lip", "motion/comfyui"]);
    const job = await a.waitJob(queued.id, { timeoutMs: 180_000 });
    expect(job.state, JSON.stringify(summarize(job))).toBe("succeeded");
    const ran = Object.fromEntries(job.steps.map((s) => [s.name, s.engine]));
    expect(ran).toMatchObject({ script: "ollama", image: "comfyui", tts: "gpt_sovits", motion: "comfyui", lipsync: "wav2lip", upscale: "realesrgan", mux: "ffmpeg" });
    const step = (name: string) => job.steps.find((s) => s.name === name)!;
    expect(step("lipsync")).toMatchObject({ nonCommercial: true, licence: expect.stringContaining("Wav2Lip") });
    expect(step("tts")).toMatchObject({ nonCommercial: false });
    // The scene was drawn with the profile's LoRA and trigger word.
    const scene = step("image").artifacts.find((x) => x.kind === "scene")!;
    expect(scene.meta).toMatchObject({ lora: expect.stringMatching(/^likeness\/[0-9a-f]+\.safetensors$/), prompt: expect.stringContaining(profile.triggerWord) });
    // SVD's clip (a user's workflow of serve.py's, 256x256 pixels) is smaller than the output:
    // handed on at its size, Real-ESRGAN brings it to 384x512.
    expect(step("motion").outputs).toMatchObject({ workflow: "img2vid_svd_small", loop: "ping-pong", clipFrames: 25, note: expect.stringContaining("upscale step") });
    expect(step("upscale").outputs).toMatchObject({ skipped: false, width: 384, height: 512, model: "RealESRGAN_x4plus" });
    const { videoSec } = await expectPlayableVideo(stack, a, video, job, "svd_wav2lip", false);
    expect(videoSec).toBeGreaterThan(1);
    expect(ollama.requests.some((r) => r.path === "/api/chat")).toBe(true);
  });

  test("a SadTalker video makes a valid MP4", async () => {
    stack.printLogsOnFailure();
    const engines = { talking_head: "sadtalker", tts: "gpt_sovits" };
    const { video, job: queued } = await a.createVideo({ profileId: profile.id, narration: "SadTalker speaks these words.", pipeline: "sadtalker", width: 320, height: 320, engines });
    expect(queued.licenceNotices).toEqual([]);
    const job = await a.waitJob(queued.id, { timeoutMs: 120_000 });
    expect(job.state, JSON.stringify(summarize(job))).toBe("succeeded");
    expect(job.steps.find((s) => s.name === "talking_head")).toMatchObject({ engine: "sadtalker", outputs: expect.objectContaining({ lipSync: true }) });
    await expectPlayableVideo(stack, a, video, job, "sadtalker", false);
  });

  test("a kohya training whose worker is SIGKILLed after a saved state resumes from it", async () => {
    stack.printLogsOnFailure();
    const samples = inject("samples");
    if ("error" in samples) throw new Error(samples.error);
    const created = await a.createProfile("Resumed", samples);
    const started = await a.json<Job>("POST", `/v1/profiles/${created.id}/train`, { engines: { lora_trainer: "kohya" } }, 202);
    const saved = path.join(stack.storageDir, "jobs", started.id, "train_lora", "state", "state.json");
    const deadline = Date.now() + 60_000;
    while (!fs.existsSync(saved)) {
      if (Date.now() > deadline) throw new Error(`no kohya state was saved: ${JSON.stringify(summarize(await a.getJob(started.id)))}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const state = JSON.parse(fs.readFileSync(saved, "utf8")) as { step: number };
    expect(state.step).toBeGreaterThanOrEqual(10);
    await stack.worker.kill();
    stack.worker.start();
    await stack.waitWorkerReady();
    const job = await a.waitJob(started.id, { timeoutMs: 120_000 });
    expect(job.state, JSON.stringify(summarize(job))).toBe("succeeded");
    const step = job.steps.find((s) => s.name === "train_lora")!;
    expect(step.outputs).toMatchObject({ trained: true, steps: STEPS });
    expect(step.outputs!.resumedFromStep as number).toBeGreaterThanOrEqual(state.step);
  });
});
