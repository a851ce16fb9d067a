import { mkdtemp, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { engineTable, parseEngine, parseSize, run, type Deps } from "./cli.js";
import type { ApiClient } from "./client.js";
import { ApiError, formatError } from "./errors.js";
import type { EngineList, Profile } from "@likeness/contracts";
import { AT, at, JOB_ID, PROFILE_ID, trainJob, VIDEO_ID } from "./test/fixtures.js";

interface Call {
  method: string;
  args: unknown[];
}

function harness(env: NodeJS.ProcessEnv = {}) {
  const calls: Call[] = [];
  const stdout: string[] = [];
  const stderr: string[] = [];
  let failWith: unknown;
  const answers: Record<string, unknown> = {};
  const fake = new Proxy(
    { baseUrl: "http://api.test", token: env.LIKENESS_TOKEN, eventsUrl: () => "ws://127.0.0.1:1/closed" },
    {
      get(target, prop: string) {
        if (prop in target) return target[prop as keyof typeof target];
        if (prop === "then") return undefined;
        return async (...args: unknown[]) => {
          calls.push({ method: prop, args });
          if (failWith) throw failWith;
          if (prop in answers) return answers[prop];
          if (prop === "trainProfile" || prop === "getJob" || prop === "retryJob" || prop === "cancelJob") return trainJob();
          if (prop === "createVideo") return { video: { id: "v" }, job: trainJob({ kind: "generate_video" }) };
          if (prop === "signup" || prop === "login") return { user: { id: "u", email: args[0], createdAt: "" }, token: "tok-123" };
          return {};
        };
      },
    },
  ) as unknown as ApiClient;
  const deps: Deps = {
    env,
    stdout: { write: (s) => void stdout.push(s) },
    stderr: { write: (s) => void stderr.push(s) },
    readStdin: async () => "correct horse battery\n",
    makeClient: () => fake,
  };
  return {
    calls,
    stdout,
    stderr,
    deps,
    answers,
    fail: (e: unknown) => (failWith = e),
    run: (...argv: string[]) => run(argv, deps, formatError),
  };
}

describe("argument parsing", () => {
  const env = { LIKENESS_TOKEN: "t" };

  it("video create: narration, pipeline, size, subtitles", async () => {
    const h = harness(env);
    const code = await h.run("video", "create", "--profile", PROFILE_ID, "--narration", "Hello there", "--pipeline", "svd_wav2lip", "--size", "640x360", "--no-subtitles");
    expect(code).toBe(0);
    expect(h.calls).toEqual([
      { method: "createVideo", args: [{ profileId: PROFILE_ID, narration: "Hello there", pipeline: "svd_wav2lip", width: 640, height: 360, subtitles: "none" }] },
    ]);
  });

  it("video create sends only what was given: the api's defaults (sadtalker 512x512, soft subtitles) fill the rest", async () => {
    const h = harness(env);
    await h.run("video", "create", "--profile", PROFILE_ID, "--topic", "tea");
    expect(h.calls[0]!.args[0]).toEqual({ profileId: PROFILE_ID, topic: "tea" });
  });

  it("video create --burn-subtitles asks for subtitles drawn into the picture", async () => {
    const h = harness(env);
    expect(await h.run("video", "create", "--profile", PROFILE_ID, "--narration", "Hi", "--burn-subtitles")).toBe(0);
    expect(h.calls[0]!.args[0]).toMatchObject({ subtitles: "burned" });
  });

  it("refuses --burn-subtitles with --no-subtitles, naming both, before calling the api", async () => {
    const h = harness(env);
    expect(await h.run("video", "create", "--profile", PROFILE_ID, "--narration", "Hi", "--burn-subtitles", "--no-subtitles")).toBe(2);
    expect(h.calls).toEqual([]);
    expect(h.stderr.join("")).toContain("error: give at most one of --burn-subtitles, --subtitles or --no-subtitles");
  });

  it("refuses both or neither of --narration/--topic, before calling the api", async () => {
    for (const extra of [[], ["--narration", "a", "--topic", "b"]]) {
      const h = harness(env);
      expect(await h.run("video", "create", "--profile", PROFILE_ID, ...extra)).toBe(2);
      expect(h.calls).toEqual([]);
      expect(h.stderr.join("")).toContain("error: give exactly one of --narration or --topic");
    }
  });

  it("refuses a bad pipeline or size", async () => {
    const h = harness(env);
    expect(await h.run("video", "create", "--profile", PROFILE_ID, "--narration", "a", "--pipeline", "magic")).toBe(2);
    expect(h.stderr.join("")).toMatch(/Allowed choices are sadtalker, svd_wav2lip/);
    const h2 = harness(env);
    expect(await h2.run("video", "create", "--profile", PROFILE_ID, "--narration", "a", "--size", "big")).toBe(2);
    expect(h2.stderr.join("")).toContain("expected WIDTHxHEIGHT");
    expect(h2.calls).toEqual([]);
  });

  it("parseSize", () => {
    expect(parseSize("1280x720")).toEqual({ width: 1280, height: 720 });
    expect(parseSize("720X1280")).toEqual({ width: 720, height: 1280 });
    expect(() => parseSize("511x512")).toThrow(/even numbers, e\.g\. 512x512/);
    expect(() => parseSize("512")).toThrow(/WIDTHxHEIGHT/);
    expect(() => parseSize("100x100")).toThrow("100x100 is out of range: width 128–2160 and height 128–3840 pixels, both even");
    expect(() => parseSize("4000x4000")).toThrow(/out of range/);
  });

  it("job commands pass the id", async () => {
    const h = harness(env);
    await h.run("job", "retry", JOB_ID);
    await h.run("job", "cancel", JOB_ID);
    await h.run("--json", "job", "show", JOB_ID);
    expect(h.calls.map((c) => [c.method, c.args[0]])).toEqual([
      ["retryJob", JOB_ID],
      ["cancelJob", JOB_ID],
      ["getJob", JOB_ID],
    ]);
    expect(JSON.parse(h.stdout.at(-1)!).id).toBe(JOB_ID);
  });

  it("without a token, says how to log in and calls nothing", async () => {
    const h = harness({ XDG_CONFIG_HOME: await mkdtemp(join(tmpdir(), "lk-cfg-")) });
    expect(await h.run("profile", "list")).toBe(2);
    expect(h.stderr.join("")).toMatch(/not logged in: run `likeness login`/);
  });

  it("api errors are printed as error: <option>: <message> with exit 1", async () => {
    const h = harness(env);
    h.fail(new ApiError(400, { error: "bad_input", field: "narration", message: "narration: too long" }));
    expect(await h.run("video", "create", "--profile", PROFILE_ID, "--narration", "x")).toBe(1);
    expect(h.stderr.join("")).toBe("error: --narration: too long\n");
    const h2 = harness(env);
    h2.fail(new ApiError(409, { error: "conflict", field: "profileId", message: 'profile "Ada" is not trained (state: draft); train it first' }));
    expect(await h2.run("video", "create", "--profile", PROFILE_ID, "--narration", "x")).toBe(1);
    expect(h2.stderr.join("")).toBe('error: --profile: profile "Ada" is not trained (state: draft); train it first\n');
  });

  it("video create --out into a missing folder is refused before the job starts", async () => {
    const h = harness(env);
    expect(await h.run("video", "create", "--profile", PROFILE_ID, "--narration", "x", "--wait", "--out", "/no/such/dir/x.mp4")).toBe(2);
    expect(h.stderr.join("")).toBe("error: --out: cannot save to /no/such/dir/x.mp4: the folder /no/such/dir does not exist\n");
    expect(h.calls).toEqual([]);
  });

  it("a usage mistake points at --help instead of printing all of it", async () => {
    const h = harness(env);
    expect(await h.run("video", "create", "--profile", PROFILE_ID, "--narration", "x", "--size", "721x1280")).toBe(2);
    expect(h.stderr.join("")).toBe(
      "error: option '--size <WxH>' argument '721x1280' is invalid. width and height must be even numbers, e.g. 722x1280\n(add --help for usage)\n",
    );
  });

  it("with a saved login for another api, says so", async () => {
    const dir = await mkdtemp(join(tmpdir(), "lk-cfg-"));
    await mkdir(join(dir, "likeness"));
    await writeFile(join(dir, "likeness", "credentials.json"), JSON.stringify({ url: "http://127.0.0.1:8080", email: "a@b.c", token: "t" }));
    const h = harness({ XDG_CONFIG_HOME: dir, LIKENESS_URL: "http://127.0.0.1:9999" });
    expect(await h.run("profile", "list")).toBe(2);
    expect(h.stderr.join("")).toBe(
      "error: not logged in to http://127.0.0.1:9999 (your saved login is for http://127.0.0.1:8080): run `likeness login` (or `likeness signup`), or set LIKENESS_TOKEN\n",
    );
  });

  it("refuses a LIKENESS_URL that is not an http(s) address", async () => {
    const h = harness({ LIKENESS_TOKEN: "t", LIKENESS_URL: "127.0.0.1:8080" });
    expect(await h.run("profile", "list")).toBe(2);
    expect(h.stderr.join("")).toMatch(/^error: LIKENESS_URL=127\.0\.0\.1:8080 is not an http:\/\/ or https:\/\/ address/);
    expect(h.calls).toEqual([]);
  });
});

describe("login and profile create", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "lk-cli-"));
  });

  it("login --password-stdin saves the token owner-only", async () => {
    const h = harness({ XDG_CONFIG_HOME: dir });
    expect(await h.run("login", "--email", "a@b.c", "--password-stdin")).toBe(0);
    expect(h.calls).toEqual([{ method: "login", args: ["a@b.c", "correct horse battery"] }]);
    const file = join(dir, "likeness", "credentials.json");
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual({ url: "http://api.test", email: "a@b.c", token: "tok-123" });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it("profile create uploads the photos of the folder and the voice, names rejections", async () => {
    const imgs = join(dir, "photos");
    await mkdir(imgs);
    await writeFile(join(imgs, "b.jpg"), "jpg");
    await writeFile(join(imgs, "a.PNG"), "png");
    await writeFile(join(imgs, "notes.txt"), "x");
    await writeFile(join(dir, "voice.wav"), "wav");
    const h = harness({ LIKENESS_TOKEN: "t" });
    h.fail(new ApiError(422, { error: "bad_input", field: "images[1]", message: "not an image" }));
    expect(await h.run("profile", "create", "--images", imgs, "--voice", join(dir, "voice.wav"))).toBe(1);
    const [name, images, voice] = h.calls[0]!.args as [string, { name: string; type: string }[], { name: string; type: string }];
    expect(name).toBe("photos");
    expect(images.map((i) => [i.name, i.type])).toEqual([
      ["a.PNG", "image/png"],
      ["b.jpg", "image/jpeg"],
    ]);
    expect(voice).toMatchObject({ name: "voice.wav", type: "audio/wav" });
    const err = h.stderr.join("");
    expect(err).toContain("skipped notes.txt: not a photo");
    expect(err).toContain("error: images[1] (b.jpg): not an image");
  });

  it("profile create --trigger-word is sent; its refusal names the option's value", async () => {
    const imgs = join(dir, "photos");
    await mkdir(imgs);
    await writeFile(join(imgs, "a.jpg"), "jpg");
    await writeFile(join(dir, "voice.wav"), "wav");
    const h = harness({ LIKENESS_TOKEN: "t" });
    h.fail(new ApiError(400, { error: "bad_request", field: "triggerWord", message: "triggerWord: 3..32 characters, lowercase letters and digits, starting with a letter" }));
    expect(await h.run("profile", "create", "--name", "Ada", "--trigger-word", "Ada!", "--images", imgs, "--voice", join(dir, "voice.wav"))).toBe(1);
    expect(h.calls[0]!.args[0]).toBe("Ada");
    expect(h.calls[0]!.args[3]).toBe("Ada!");
    expect(h.stderr.join("")).toBe("error: triggerWord (Ada!): 3..32 characters, lowercase letters and digits, starting with a letter\n");
  });

  it("profile create refuses a folder without photos and an unknown sound format", async () => {
    const h = harness({ LIKENESS_TOKEN: "t" });
    await writeFile(join(dir, "v.txt"), "x");
    expect(await h.run("profile", "create", "--images", dir, "--voice", join(dir, "v.txt"))).toBe(2);
    expect(h.stderr.join("")).toMatch(/^error: --images: no photos/);
    await writeFile(join(dir, "p.jpg"), "x");
    const h2 = harness({ LIKENESS_TOKEN: "t" });
    expect(await h2.run("profile", "create", "--images", dir, "--voice", join(dir, "v.txt"))).toBe(2);
    expect(h2.stderr.join("")).toMatch(/^error: --voice: v\.txt: not a sound file/);
    expect(h2.calls).toEqual([]);
  });
});

describe("what the user sees after the fact", () => {
  const env = { LIKENESS_TOKEN: "t" };
  const profile = (over: Partial<Profile>): Profile => ({
    id: PROFILE_ID,
    name: "Ada",
    state: "trained",
    triggerWord: "lkada",
    inputs: [
      { kind: "image", name: "a.png", contentType: "image/png", bytes: 1 },
      { kind: "image", name: "coffee.png", contentType: "image/png", bytes: 1 },
      { kind: "voice", name: "voice.wav", contentType: "audio/wav", bytes: 1, durationSec: 11.4 },
    ],
    trainJobId: JOB_ID,
    assets: null,
    createdAt: AT,
    updatedAt: AT,
    ...over,
  });

  it("profile show lists the photos training did not use, with the reason", async () => {
    const h = harness(env);
    h.answers.getProfile = profile({ assets: { acceptedImages: 1, rejectedImages: [{ name: "coffee.png", reason: "no face found" }] } });
    expect(await h.run("profile", "show", PROFILE_ID)).toBe(0);
    expect(h.stdout.join("")).toBe(
      [
        `${PROFILE_ID}  Ada  trained`,
        "  trigger word: lkada",
        "  inputs: 2 photos, voice sample voice.wav (11.4 s)",
        `  training job: ${JOB_ID}`,
        "  photos used: 1 of 2; not used:",
        "    coffee.png: no face found",
        "",
      ].join("\n"),
    );
  });

  it("profile show of a failed profile says why training failed", async () => {
    const h = harness(env);
    h.answers.getProfile = profile({ state: "failed" });
    h.answers.getJob = trainJob({
      state: "failed",
      finishedAt: at(2),
      error: { code: "bad_input", message: "no usable face in any photo: coffee.png: no face found", retryable: false, step: "prepare" },
    });
    expect(await h.run("profile", "show", PROFILE_ID)).toBe(0);
    const text = h.stdout.join("");
    expect(text).toContain("  training failed: at step prepare: bad_input: no usable face in any photo: coffee.png: no face found\n");
    expect(text).toContain("make a new one (likeness profile create)");
    expect(h.calls.map((c) => c.method)).toEqual(["getProfile", "getJob"]);
  });

  it("Ctrl-C during --wait stops following, says how to pick the job up again, exit 130", async () => {
    const h = harness(env);
    const controller = new AbortController();
    controller.abort();
    let stopped = false;
    h.deps.watchInterrupt = () => ({ signal: controller.signal, stop: () => void (stopped = true) });
    h.answers.createVideo = { video: { id: VIDEO_ID }, job: trainJob({ kind: "generate_video", state: "running", videoId: VIDEO_ID }) };
    expect(await h.run("video", "create", "--profile", PROFILE_ID, "--narration", "x", "--wait", "--out", join(tmpdir(), "hello.mp4"))).toBe(130);
    expect(stopped).toBe(true);
    expect(h.stderr.join("")).toBe(
      [
        "",
        `stopped following job ${JOB_ID} (Ctrl-C)`,
        `job ${JOB_ID} keeps running on the server; follow it again: likeness job show ${JOB_ID} --wait`,
        `stop it: likeness job cancel ${JOB_ID}; when it is done: likeness video download ${VIDEO_ID} --out ${join(tmpdir(), "hello.mp4")}`,
        "",
      ].join("\n"),
    );
    expect(h.calls.map((c) => c.method)).not.toContain("cancelJob");
  });

  it("job show of a finished video says how to download it", async () => {
    const h = harness(env);
    h.answers.getJob = trainJob({ kind: "generate_video", state: "succeeded", finishedAt: at(5), videoId: VIDEO_ID, steps: [] });
    expect(await h.run("job", "show", JOB_ID)).toBe(0);
    expect(h.stdout.join("")).toContain(`next: likeness video download ${VIDEO_ID} --out video.mp4\n`);
  });

  it("job show notes why a step did what it did; --json has all of its outputs", async () => {
    const h = harness(env);
    const base = trainJob().steps[0]!;
    const outputs = { skipped: true, reason: "skipped: the frames are already 512x512" };
    h.answers.getJob = trainJob({
      kind: "generate_video",
      state: "succeeded",
      finishedAt: at(5),
      videoId: VIDEO_ID,
      steps: [
        { ...base, name: "tts", state: "succeeded", engine: "piper", durationMs: 900, outputs: { voice: "en_US-joe-medium", shaping: { pitch: "skipped" } } },
        { ...base, name: "upscale", state: "succeeded", engine: "lanczos", durationMs: 20, outputs },
        { ...base, name: "mux", state: "succeeded", engine: "ffmpeg", durationMs: 400, outputs: { video: "copied: already the final H.264 stream", subtitles: "soft" } },
      ],
    });
    expect(await h.run("job", "show", JOB_ID)).toBe(0);
    const lines = h.stdout.join("").split("\n");
    expect(lines[1]).toMatch(/^✓ tts\s+piper\s+█+ 100%\s+0\.9s$/);
    expect(lines[2]).toMatch(/^✓ upscale\s+lanczos\s+█+ 100%\s+0\.0s {2}— skipped: the frames are already 512x512$/);
    expect(lines[3]).toMatch(/^✓ mux\s+ffmpeg\s+█+ 100%\s+0\.4s {2}— copied: already the final H\.264 stream$/);

    await h.run("--json", "job", "show", JOB_ID);
    const steps = JSON.parse(h.stdout.at(-1)!).steps;
    expect(steps[0].outputs).toEqual({ voice: "en_US-joe-medium", shaping: { pitch: "skipped" } });
    expect(steps[1].outputs).toEqual(outputs);
  });

  it("video show: the script and the engine of each step", async () => {
    const h = harness(env);
    h.answers.getVideo = { id: VIDEO_ID, profileId: PROFILE_ID, jobId: JOB_ID, state: "succeeded", pipeline: "sadtalker", width: 512, height: 512, script: { title: "Why the Sea Is Salty", stage: "ohwx person on a beach", narration: "Rivers carry salt." }, durationSec: 3.12, createdAt: AT };
    const done = (name: string, engine: string, durationMs: number, reused = false) => ({ ...trainJob().steps[0]!, name: name as never, state: "succeeded" as const, engine, durationMs, reused });
    h.answers.getJob = trainJob({ kind: "generate_video", state: "succeeded", videoId: VIDEO_ID, steps: [done("script", "local", 3400), done("image", "portrait", 60, true)] });
    expect(await h.run("video", "show", VIDEO_ID)).toBe(0);
    expect(h.stdout.join("")).toBe(
      [
        `video ${VIDEO_ID}  succeeded  512x512  sadtalker  3.1 s`,
        "  title:     Why the Sea Is Salty",
        "  stage:     ohwx person on a beach",
        "  narration: Rivers carry salt.",
        "  steps:",
        "    script        succeeded  local          3.4 s",
        "    image         succeeded  portrait       0.1 s  reused",
        "",
      ].join("\n"),
    );
    expect(h.calls.map((c) => c.method)).toEqual(["getVideo", "getJob"]);
  });

  it("video create --from: sends only what changes", async () => {
    const h = harness(env);
    expect(await h.run("video", "create", "--from", VIDEO_ID, "--narration", "New words")).toBe(0);
    expect(h.calls[0]!.args[0]).toEqual({ from: VIDEO_ID, narration: "New words" });
    const h2 = harness(env);
    expect(await h2.run("video", "create", "--from", VIDEO_ID, "--no-subtitles", "--size", "720x1280")).toBe(0);
    expect(h2.calls[0]!.args[0]).toEqual({ from: VIDEO_ID, subtitles: "none", width: 720, height: 1280 });
    const h3 = harness(env);
    expect(await h3.run("video", "create", "--from", VIDEO_ID, "--stage", "a beach", "--pipeline", "svd_wav2lip")).toBe(0);
    expect(h3.calls[0]!.args[0]).toEqual({ from: VIDEO_ID, stage: "a beach", pipeline: "svd_wav2lip" });
    const on = harness(env);
    expect(await on.run("video", "create", "--from", VIDEO_ID, "--subtitles")).toBe(0);
    expect(on.calls[0]!.args[0]).toEqual({ from: VIDEO_ID, subtitles: "soft" });
    const h4 = harness(env);
    expect(await h4.run("video", "create", "--narration", "Hi")).toBe(2);
    expect(h4.stderr.join("")).toContain("--profile is required");
    expect(await harness(env).run("video", "create", "--from", VIDEO_ID, "--topic", "t", "--stage", "s")).toBe(2);
  });

  it("video create --topic --duration; --duration alone is refused", async () => {
    const h = harness(env);
    expect(await h.run("video", "create", "--profile", PROFILE_ID, "--topic", "tides", "--duration", "20")).toBe(0);
    expect(h.calls[0]!.args[0]).toMatchObject({ topic: "tides", durationSec: 20 });
    const h2 = harness(env);
    expect(await h2.run("video", "create", "--profile", PROFILE_ID, "--narration", "Hi", "--duration", "20")).toBe(2);
    expect(h2.stderr.join("")).toContain("--duration goes with --topic");
    expect(await harness(env).run("video", "create", "--profile", PROFILE_ID, "--topic", "tides", "--duration", "2")).toBe(2);
  });

  it("video list: one line per video", async () => {
    const h = harness(env);
    h.answers.listVideos = [
      { id: VIDEO_ID, profileId: PROFILE_ID, jobId: JOB_ID, state: "succeeded", pipeline: "sadtalker", width: 512, height: 512, script: { title: "t", stage: "s", narration: "Hello there." }, durationSec: 3.12, createdAt: AT },
    ];
    expect(await h.run("video", "list")).toBe(0);
    expect(h.stdout.join("")).toBe(`${VIDEO_ID}  succeeded   512x512    sadtalker      3.1 s  "Hello there."\n`);
  });
});

describe("engines", () => {
  const env = { LIKENESS_TOKEN: "t" };

  it("--engine KIND=NAME is repeatable and sent as the request's engines, on video create and profile train", async () => {
    const h = harness(env);
    expect(await h.run("video", "create", "--profile", PROFILE_ID, "--narration", "Hi", "--engine", "tts=espeak", "--engine", "talking_head=kenburns")).toBe(0);
    expect(h.calls[0]!.args[0]).toMatchObject({ engines: { tts: "espeak", talking_head: "kenburns" } });
    expect(await h.run("profile", "train", PROFILE_ID, "--engine", "prepare=dataset")).toBe(0);
    expect(h.calls[1]).toEqual({ method: "trainProfile", args: [PROFILE_ID, { prepare: "dataset" }] });
    expect(await h.run("video", "create", "--profile", PROFILE_ID, "--narration", "Hi")).toBe(0);
    expect(h.calls[2]!.args[0]).not.toHaveProperty("engines");
  });

  it("refuses a malformed --engine before calling the api, saying why", async () => {
    for (const [value, why] of [
      ["tts", "expected KIND=NAME, e.g. tts=espeak"],
      ["voice=espeak", 'unknown task kind "voice" (task kinds: llm, prepare,'],
      ["tts=Espeak!", '"Espeak!" is not an engine name'],
    ] as const) {
      const h = harness(env);
      expect(await h.run("video", "create", "--profile", PROFILE_ID, "--narration", "Hi", "--engine", value)).toBe(2);
      expect(h.calls).toEqual([]);
      expect(h.stderr.join("")).toContain(why);
    }
    expect(() => parseEngine("tts=piper", { tts: "espeak" })).toThrow("tts is given twice (espeak and piper)");
    expect(parseEngine(" tts = piper ")).toEqual({ tts: "piper" });
  });

  it("an engine the api refuses is printed against the option that chose it", async () => {
    const h = harness(env);
    h.fail(new ApiError(400, { error: "validation", field: "engines.tts", message: 'unknown engine "f5" for tts: available for tts: espeak, piper' }));
    expect(await h.run("video", "create", "--profile", PROFILE_ID, "--narration", "Hi", "--engine", "tts=f5")).toBe(1);
    expect(h.stderr.join("")).toBe('error: --engine tts=f5: unknown engine "f5" for tts: available for tts: espeak, piper\n');
  });

  it("likeness engines prints a table per task kind; --json the api's answer", async () => {
    const list: EngineList = {
      workers: 2,
      engines: [
        { taskKind: "llm", name: "none", device: "cpu", licence: "LicenseRef-Likeness", nonCommercial: false, healthy: true, default: true, workers: 0, healthyWorkers: 0, runsIn: "api" },
        { taskKind: "tts", name: "espeak", device: "cpu", licence: "GPL-3.0-or-later", nonCommercial: false, healthy: false, default: false, workers: 2, healthyWorkers: 0, runsIn: "worker", problem: "not installed: espeak-ng" },
        { taskKind: "tts", name: "piper", device: "cpu", licence: "GPL-3.0-or-later AND MIT", nonCommercial: false, healthy: true, default: true, workers: 2, healthyWorkers: 2, runsIn: "worker" },
        { taskKind: "lipsync", name: "wav2lip", device: "gpu", licence: "LicenseRef-Wav2Lip-NonCommercial", nonCommercial: true, healthy: true, default: false, workers: 1, healthyWorkers: 1, runsIn: "worker" },
      ],
    };
    const h = harness(env);
    h.answers.listEngines = list;
    expect(await h.run("engines")).toBe(0);
    const lines = h.stdout.join("").split("\n");
    expect(lines[0]).toMatch(/^task kind\s+engine\s+device\s+healthy\s+default\s+workers\s+licence$/);
    expect(lines[2]).toMatch(/^llm\s+none\s+cpu\s+yes\s+yes\s+api\s+LicenseRef-Likeness$/);
    expect(lines[3]).toMatch(/^tts\s+espeak\s+cpu\s+no \(not installed: espeak-ng\)\s+0\/2\s+GPL-3\.0-or-later$/);
    expect(lines[4]).toMatch(/^\s+piper\s+cpu\s+yes\s+yes\s+2\/2\s+GPL-3\.0-or-later AND MIT$/);
    expect(lines[5]).toMatch(/^lipsync\s+wav2lip\s+gpu\s+yes\s+1\/1\s+LicenseRef-Wav2Lip-NonCommercial \(non-commercial\)$/);
    expect(lines[6]).toContain("2 workers connected");
    expect(engineTable({ workers: 0, engines: [list.engines[0]!] }).at(-1)).toMatch(/no worker is connected/);
    const j = harness(env);
    j.answers.listEngines = list;
    await j.run("--json", "engines");
    expect(JSON.parse(j.stdout.join(""))).toEqual(list);
  });

  it("profile engines shows the defaults, sets them (the whole set) or clears them", async () => {
    const h = harness(env);
    h.answers.getProfile = { engines: { tts: "espeak" } };
    h.answers.setProfileEngines = { engines: { tts: "piper", image: "portrait" } };
    expect(await h.run("profile", "engines", PROFILE_ID)).toBe(0);
    expect(h.stdout.join("")).toBe("tts          espeak\n");
    expect(await h.run("profile", "engines", PROFILE_ID, "--engine", "tts=piper", "--engine", "image=portrait")).toBe(0);
    expect(h.calls.at(-1)).toEqual({ method: "setProfileEngines", args: [PROFILE_ID, { tts: "piper", image: "portrait" }] });
    await h.run("profile", "engines", PROFILE_ID, "--clear");
    expect(h.calls.at(-1)).toEqual({ method: "setProfileEngines", args: [PROFILE_ID, {}] });
    expect(await h.run("profile", "engines", PROFILE_ID, "--clear", "--engine", "tts=piper")).toBe(2);
  });
});
