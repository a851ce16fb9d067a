import { mkdtemp, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { parseSize, run, type Deps } from "./cli.js";
import type { ApiClient } from "./client.js";
import { ApiError, formatError } from "./errors.js";
import { JOB_ID, PROFILE_ID, trainJob } from "./test/fixtures.js";

interface Call {
  method: string;
  args: unknown[];
}

function harness(env: NodeJS.ProcessEnv = {}) {
  const calls: Call[] = [];
  const stdout: string[] = [];
  const stderr: string[] = [];
  let failWith: unknown;
  const fake = new Proxy(
    { baseUrl: "http://api.test", token: env.LIKENESS_TOKEN },
    {
      get(target, prop: string) {
        if (prop in target) return target[prop as keyof typeof target];
        if (prop === "then") return undefined;
        return async (...args: unknown[]) => {
          calls.push({ method: prop, args });
          if (failWith) throw failWith;
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
      { method: "createVideo", args: [{ profileId: PROFILE_ID, narration: "Hello there", pipeline: "svd_wav2lip", width: 640, height: 360, subtitles: false }] },
    ]);
  });

  it("video create defaults: sadtalker 512x512 with subtitles", async () => {
    const h = harness(env);
    await h.run("video", "create", "--profile", PROFILE_ID, "--topic", "tea");
    expect(h.calls[0]!.args[0]).toEqual({ profileId: PROFILE_ID, topic: "tea", pipeline: "sadtalker", width: 512, height: 512, subtitles: true });
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
    expect(() => parseSize("511x512")).toThrow(/even/);
    expect(() => parseSize("512")).toThrow(/WIDTHxHEIGHT/);
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

  it("api errors are printed as error: <field>: <message> with exit 1", async () => {
    const h = harness(env);
    h.fail(new ApiError(400, { error: "bad_input", field: "narration", message: "too long" }));
    expect(await h.run("video", "create", "--profile", PROFILE_ID, "--narration", "x")).toBe(1);
    expect(h.stderr.join("")).toBe("error: narration: too long\n");
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
