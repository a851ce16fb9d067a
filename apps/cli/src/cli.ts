// The `likeness` command line: argument parsing and the commands. I/O comes in through `Deps`
// so tests can drive the whole program without a terminal or a real api.
import { readdir, readFile, stat } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import mime from "mime-types";
import { EngineName, OutputSize, Pipeline, TaskKind, VIDEO_DEFAULTS, type EngineChoice, type EngineList, type Job, type Profile, type Video } from "@likeness/contracts";
import { ApiClient, type UploadFile, type VideoCreated } from "./client.js";
import { credentialsPath, loadCredentials, resolveConfig, saveCredentials } from "./config.js";
import { ApiError, ConnectionError, UsageError } from "./errors.js";
import { finalSummary, renderLines, viewFromJob } from "./progress.js";
import { waitForJob, WaitInterrupted, type Output } from "./wait.js";

export interface Deps {
  env: NodeJS.ProcessEnv;
  stdout: Output;
  stderr: Output;
  readStdin: () => Promise<string>;
  /** Ask for a password on the terminal without echo; undefined when there is no terminal. */
  promptPassword?: (prompt: string) => Promise<string>;
  makeClient?: (url: string, token: string | undefined) => ApiClient;
  /** Watch for Ctrl-C while following a job: the signal aborts on SIGINT until `stop()`. */
  watchInterrupt?: () => { signal: AbortSignal; stop(): void };
}

// The files `profile create` picks up: what the api's media check accepts. The api sniffs each
// file itself; the part's Content-Type is only a hint, from mime-types.
const IMAGE_EXTS = [".jpg", ".jpeg", ".png", ".webp"];
const AUDIO_EXTS = [".wav", ".mp3", ".m4a", ".ogg", ".oga", ".opus", ".flac", ".webm"];

/** The content type of a file named `name` when its extension is one of `exts`, else undefined. */
function uploadType(name: string, exts: string[]): string | undefined {
  if (!exts.includes(extname(name).toLowerCase())) return undefined;
  return mime.lookup(name) || "application/octet-stream";
}

const W = OutputSize.shape.width;
const H = OutputSize.shape.height;
/** What the api accepts, in words: "width 128–2160 and height 128–3840 pixels, both even". */
const SIZE_RULE = `width ${W.minValue}–${W.maxValue} and height ${H.minValue}–${H.maxValue} pixels, both even`;

/** `512x512` → {width, height}, checked against the api's limits (OutputSize) before anything is sent. */
export function parseSize(value: string): { width: number; height: number } {
  const m = /^(\d+)\s*[x×]\s*(\d+)$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError("expected WIDTHxHEIGHT, e.g. 512x512 or 720x1280");
  const width = Number(m[1]);
  const height = Number(m[2]);
  if (width % 2 || height % 2) throw new InvalidArgumentError(`width and height must be even numbers, e.g. ${width + (width % 2)}x${height + (height % 2)}`);
  if (!OutputSize.safeParse({ width, height }).success) throw new InvalidArgumentError(`${width}x${height} is out of range: ${SIZE_RULE}`);
  return { width, height };
}

/** `--duration`: seconds of narration to write for a topic (the api's range: 5 to 300). */
export function parseSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 5 || n > 300) throw new InvalidArgumentError("expected seconds between 5 and 300");
  return n;
}

/**
 * `--engine KIND=NAME`, repeatable: adds to the map of the options given before it. The task kind
 * and the name's form are checked here; whether a worker runs that engine, the api says (400).
 */
export function parseEngine(value: string, previous: EngineChoice = {}): EngineChoice {
  const m = /^\s*([a-z_]+)\s*=\s*(\S+)\s*$/.exec(value);
  if (!m) throw new InvalidArgumentError("expected KIND=NAME, e.g. tts=espeak (see `likeness engines`)");
  const kind = m[1]!;
  const name = m[2]!;
  if (!TaskKind.safeParse(kind).success) throw new InvalidArgumentError(`unknown task kind "${kind}" (task kinds: ${TaskKind.options.join(", ")})`);
  const k = kind as TaskKind;
  if (!EngineName.safeParse(name).success) throw new InvalidArgumentError(`"${name}" is not an engine name (lowercase letters, digits, _ and -)`);
  if (previous[k] !== undefined && previous[k] !== name) throw new InvalidArgumentError(`${k} is given twice (${previous[k]} and ${name})`);
  return { ...previous, [k]: name };
}

/** An api error about `engines.<kind>` names the option that chose it: `--engine tts=foo`. */
function engineOptions(engines: EngineChoice | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(engines ?? {}).map(([k, n]) => [`engines.${k}`, `--engine ${k}=${n}`]));
}

/** `likeness engines`: one line per engine, grouped by task kind. */
export function engineTable(list: EngineList): string[] {
  if (list.engines.length === 0) return ["no engines"];
  const head = ["task kind", "engine", "device", "healthy", "default", "workers", "licence"];
  const rows = list.engines.map((e) => [
    e.taskKind,
    e.name,
    e.device,
    e.healthy ? "yes" : `no${e.problem ? ` (${e.problem})` : ""}`,
    e.default ? "yes" : "",
    e.runsIn === "api" ? "api" : `${e.healthyWorkers}/${e.workers}`,
    e.nonCommercial ? `${e.licence} (non-commercial)` : e.licence,
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => c.padEnd(w[i]!)).join("  ").trimEnd();
  const lines = [fmt(head), w.map((n) => "-".repeat(n)).join("  ")];
  rows.forEach((r, i) => lines.push(fmt(i > 0 && rows[i - 1]![0] === r[0] ? ["", ...r.slice(1)] : r)));
  lines.push(
    list.workers === 0
      ? "no worker is connected: only the api's own engines can be chosen"
      : `${list.workers} worker${list.workers === 1 ? "" : "s"} connected; workers: healthy/advertising. Choose one with --engine KIND=NAME`,
  );
  return lines;
}

/** Fail before a long job when its MP4 could not be written where asked. */
async function checkOutFile(out: string): Promise<void> {
  const dir = dirname(out);
  let ok: boolean;
  try {
    ok = (await stat(dir)).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok) throw new UsageError(`cannot save to ${out}: the folder ${dir} does not exist`, "--out");
}

async function collectImages(dir: string): Promise<{ files: UploadFile[]; skipped: string[] }> {
  let entries: string[];
  try {
    entries = (await readdir(dir)).sort();
  } catch (err) {
    throw new UsageError(`cannot read the folder ${dir} (${(err as NodeJS.ErrnoException).code})`, "--images");
  }
  const files: UploadFile[] = [];
  const skipped: string[] = [];
  for (const name of entries) {
    const type = uploadType(name, IMAGE_EXTS);
    const full = join(dir, name);
    if (!type || !(await stat(full)).isFile()) {
      if (!name.startsWith(".")) skipped.push(name);
      continue;
    }
    files.push({ name, type, data: await readFile(full) });
  }
  if (files.length === 0) throw new UsageError(`no photos (${IMAGE_EXTS.join(", ")}) in ${dir}`, "--images");
  return { files, skipped };
}

async function readVoice(file: string): Promise<UploadFile> {
  const type = uploadType(file, AUDIO_EXTS);
  if (!type) throw new UsageError(`${basename(file)}: not a sound file this accepts (${AUDIO_EXTS.join(", ")})`, "--voice");
  try {
    return { name: basename(file), type, data: await readFile(file) };
  } catch (err) {
    throw new UsageError(`cannot read ${file} (${(err as NodeJS.ErrnoException).code})`, "--voice");
  }
}

/** A profile in words; `trainJob` (the latest training job) explains a failed training. */
function profileLines(p: Profile, trainJob?: Job): string[] {
  const images = p.inputs.filter((i) => i.kind === "image").length;
  const voice = p.inputs.find((i) => i.kind === "voice");
  const lines = [
    `${p.id}  ${p.name}  ${p.state}`,
    `  trigger word: ${p.triggerWord}`,
    `  inputs: ${images} photo${images === 1 ? "" : "s"}${voice ? `, voice sample ${voice.name}${voice.durationSec ? ` (${voice.durationSec.toFixed(1)} s)` : ""}` : ""}`,
  ];
  if (p.trainJobId) lines.push(`  training job: ${p.trainJobId}`);
  const engines = Object.entries(p.engines ?? {});
  if (engines.length) lines.push(`  default engines: ${engines.map(([k, n]) => `${k}=${n}`).join(", ")}`);
  const assets = p.assets as { acceptedImages?: number; rejectedImages?: { name: string; reason: string }[] } | null;
  if (assets) {
    const rejected = assets.rejectedImages ?? [];
    if (assets.acceptedImages !== undefined) {
      lines.push(`  photos used: ${assets.acceptedImages} of ${assets.acceptedImages + rejected.length}${rejected.length ? `; not used:` : ""}`);
    }
    for (const r of rejected) lines.push(`    ${r.name}: ${r.reason}`);
  }
  if (p.state === "failed" && trainJob?.state === "failed") {
    const { line } = finalSummary(trainJob);
    lines.push(`  training failed: ${line.replace(/^train_profile \S+ failed /, "")}`);
    if (trainJob.error?.code === "bad_input") lines.push("  the photos and voice of a profile cannot be changed: make a new one (likeness profile create)");
  }
  return lines;
}

/** `video show`: the video, its script, and each step's state, engine and time. */
function videoLines(v: Video, job: Job): string[] {
  const script = v.script
    ? [`  title:     ${v.script.title}`, `  stage:     ${v.script.stage}`, `  narration: ${v.script.narration}`]
    : ["  script:    not written yet"];
  const steps = job.steps.map((s) => {
    const took = s.durationMs != null ? `${(s.durationMs / 1000).toFixed(1)} s` : "";
    return `    ${s.name.padEnd(13)} ${s.state.padEnd(10)} ${(s.engine ?? "-").padEnd(12)} ${took.padStart(7)}${s.reused ? "  reused" : ""}`;
  });
  const head = `video ${v.id}  ${v.state}  ${v.width}x${v.height}  ${v.pipeline}${v.durationSec != null ? `  ${v.durationSec.toFixed(1)} s` : ""}`;
  return [head, ...script, "  steps:", ...steps];
}

async function describeProfile(c: ApiClient, p: Profile): Promise<string[]> {
  const job = p.state === "failed" && p.trainJobId ? await c.getJob(p.trainJobId).catch(() => undefined) : undefined;
  return profileLines(p, job);
}

function jobLines(job: Job): string[] {
  return [...renderLines(viewFromJob(job), Date.now(), { barWidth: 10 }), finalSummary(job).line, ...nextSteps(job)];
}

/** What to do after a job ended: fetch the video of a finished generate_video job. */
function nextSteps(job: Job): string[] {
  if (job.kind === "generate_video" && job.state === "succeeded" && job.videoId) return [`next: likeness video download ${job.videoId} --out video.mp4`];
  return [];
}

/** How to pick a job up again after the CLI stopped following it. */
function followAgain(jobId: string, videoId?: string | null, out = "video.mp4"): string[] {
  return [
    `job ${jobId} keeps running on the server; follow it again: likeness job show ${jobId} --wait`,
    `stop it: likeness job cancel ${jobId}${videoId ? `; when it is done: likeness video download ${videoId} --out ${out}` : ""}`,
  ];
}

/** Ctrl-C stopped `--wait`; the message is already printed. Exit status 130, like a shell. */
class Interrupted extends Error {
  constructor() {
    super("interrupted");
    this.name = "Interrupted";
  }
}

/** The api's request fields, as the options of `video create` that set them. */
const VIDEO_OPTIONS: Record<string, string> = {
  profileId: "--profile",
  from: "--from",
  stage: "--stage",
  narration: "--narration",
  topic: "--topic",
  durationSec: "--duration",
  pipeline: "--pipeline",
  width: "--size",
  height: "--size",
  subtitles: "--burn-subtitles / --no-subtitles",
};

/** `state.exitCode` is set by a command whose result should fail the process (a failed job). */
function buildProgram(deps: Deps, state: { exitCode: number }): Command {
  const program = new Command("likeness");
  const out = (line = "") => deps.stdout.write(line + "\n");
  const err = (line: string) => deps.stderr.write(line + "\n");

  program
    .description("Likeness: make a profile from photos and a voice sample, then talking-avatar videos from it")
    .option("--json", "print the api's JSON answers instead of text")
    .addHelpText("after", "\nEnvironment: LIKENESS_URL (default http://127.0.0.1:8080), LIKENESS_TOKEN (instead of `likeness login`)")
    .showHelpAfterError("(add --help for usage)")
    .configureOutput({ writeOut: (s) => deps.stdout.write(s), writeErr: (s) => deps.stderr.write(s) })
    .exitOverride();

  const json = () => Boolean(program.opts().json);
  const file = () => credentialsPath(deps.env);
  const client = async (needToken = true) => {
    const { url, token, savedFor } = resolveConfig(deps.env, await loadCredentials(file()));
    if (needToken && !token) {
      const where = savedFor ? ` to ${url} (your saved login is for ${savedFor})` : "";
      throw new UsageError(`not logged in${where}: run \`likeness login\` (or \`likeness signup\`), or set LIKENESS_TOKEN`);
    }
    return deps.makeClient ? deps.makeClient(url, token) : new ApiClient(url, token);
  };
  /** Follow a job to its end. Ctrl-C (or losing the api) stops following, never the job: say how to go on. */
  const wait = async (c: ApiClient, job: Job, out?: string): Promise<Job> => {
    const interrupt = deps.watchInterrupt?.();
    let final: Job;
    try {
      final = await waitForJob(c, job.id, deps.stderr, { signal: interrupt?.signal });
    } catch (e) {
      if (e instanceof WaitInterrupted || e instanceof ConnectionError) {
        if (e instanceof WaitInterrupted) err(`\nstopped following job ${job.id} (Ctrl-C)`);
        for (const l of followAgain(job.id, job.videoId, out)) err(l);
      }
      if (e instanceof WaitInterrupted) throw new Interrupted();
      throw e;
    } finally {
      interrupt?.stop();
    }
    const summary = finalSummary(final);
    if (summary.exitCode) state.exitCode = summary.exitCode;
    err(summary.line);
    return final;
  };

  const password = async (opts: { passwordStdin?: boolean }) => {
    let pw: string | undefined;
    if (opts.passwordStdin) pw = (await deps.readStdin()).replace(/\r?\n$/, "");
    else if (deps.env.LIKENESS_PASSWORD) pw = deps.env.LIKENESS_PASSWORD;
    else if (deps.promptPassword) pw = await deps.promptPassword("password: ");
    if (!pw) throw new UsageError("no password: use --password-stdin (or a terminal to type it)");
    return pw;
  };

  for (const [name, verb] of [
    ["signup", "create an account and log in"],
    ["login", "log in and save the token"],
  ] as const) {
    program
      .command(name)
      .description(verb)
      .requiredOption("--email <email>", "your email address", deps.env.LIKENESS_EMAIL)
      .option("--password-stdin", "read the password from standard input")
      .action(async (opts: { email: string; passwordStdin?: boolean }) => {
        const c = await client(false);
        const pw = await password(opts);
        const session = name === "signup" ? await c.signup(opts.email, pw) : await c.login(opts.email, pw);
        if (!deps.env.LIKENESS_TOKEN) await saveCredentials(file(), { url: c.baseUrl, email: session.user.email, token: session.token });
        if (json()) out(JSON.stringify(session.user));
        else out(`${name === "signup" ? "signed up" : "logged in"} as ${session.user.email} (${c.baseUrl}); token saved in ${file()}`);
      });
  }

  const profile = program.command("profile").description("profiles: the person's photos and voice sample, and what training made of them");
  profile
    .command("create")
    .description("upload photos and a voice sample as a new profile")
    .option("--name <name>", "what to call this profile (default: the photo folder's name)")
    .option("--trigger-word <word>", "the token that stands for this person in captions (3-32 lowercase letters and digits; default: made from the name)")
    .requiredOption("--images <dir>", "folder of photos (.jpg, .png, .webp) of the person's face")
    .requiredOption("--voice <file>", `a recording of the person speaking (${AUDIO_EXTS.join(", ")}), 3 s to 5 min`)
    .action(async (opts: { name?: string; triggerWord?: string; images: string; voice: string }) => {
      const { files, skipped } = await collectImages(opts.images);
      const voice = await readVoice(opts.voice);
      for (const s of skipped) err(`skipped ${s}: not a photo`);
      const c = await client();
      const names: Record<string, string> = { voice: voice.name, ...(opts.triggerWord !== undefined ? { triggerWord: opts.triggerWord } : {}) };
      files.forEach((f, i) => (names[`images[${i}]`] = f.name));
      const name = opts.name ?? (basename(opts.images.replace(/\/+$/, "")) || "profile");
      let p: Profile;
      try {
        p = opts.triggerWord === undefined ? await c.createProfile(name, files, voice) : await c.createProfile(name, files, voice, opts.triggerWord);
      } catch (e) {
        if (e instanceof ApiError) e.names = names;
        throw e;
      }
      if (json()) out(JSON.stringify(p));
      else {
        for (const l of profileLines(p)) out(l);
        out(`next: likeness profile train ${p.id} --wait`);
      }
    });
  profile
    .command("list")
    .description("your profiles")
    .action(async () => {
      const list = await (await client()).listProfiles();
      if (json()) return out(JSON.stringify(list));
      if (list.length === 0) return out("no profiles yet: likeness profile create --images DIR --voice FILE");
      for (const p of list) out(`${p.id}  ${p.state.padEnd(8)}  ${p.name}`);
    });
  profile
    .command("show <id>")
    .description("one profile, its inputs and training results")
    .action(async (id: string) => {
      const c = await client();
      const p = await c.getProfile(id);
      if (json()) out(JSON.stringify(p));
      else for (const l of await describeProfile(c, p)) out(l);
    });
  profile
    .command("train <id>")
    .description("start training the profile")
    .option("--engine <KIND=NAME>", "use this engine for a task kind, e.g. prepare=dataset (repeatable; see `likeness engines`)", parseEngine)
    .option("--wait", "follow the job to the end, with live progress")
    .action(async (id: string, opts: { wait?: boolean; engine?: EngineChoice }) => {
      const c = await client();
      let job: Job;
      try {
        job = await c.trainProfile(id, opts.engine);
      } catch (e) {
        if (e instanceof ApiError) e.options = engineOptions(opts.engine);
        throw e;
      }
      if (!opts.wait) {
        if (json()) out(JSON.stringify(job));
        else out(`training job ${job.id} ${job.state}; follow it: likeness job show ${job.id} --wait`);
        return;
      }
      job = await wait(c, job);
      if (json()) return out(JSON.stringify(job));
      for (const l of await describeProfile(c, await c.getProfile(id))) out(l);
    });

  profile
    .command("engines <id>")
    .description("show or set the profile's default engines (its jobs use them unless --engine says otherwise)")
    .option("--engine <KIND=NAME>", "a default engine for a task kind, e.g. tts=espeak (repeatable; replaces the whole set)", parseEngine)
    .option("--clear", "no defaults: the workers' own")
    .action(async (id: string, opts: { engine?: EngineChoice; clear?: boolean }) => {
      if (opts.clear && opts.engine) throw new UsageError("give either --engine or --clear");
      const c = await client();
      let engines: EngineChoice;
      if (opts.engine || opts.clear) {
        try {
          engines = (await c.setProfileEngines(id, opts.engine ?? {})).engines;
        } catch (e) {
          if (e instanceof ApiError) e.options = engineOptions(opts.engine);
          throw e;
        }
      } else {
        engines = (await c.getProfile(id)).engines ?? {};
      }
      if (json()) return out(JSON.stringify({ engines }));
      const set = Object.entries(engines);
      if (set.length === 0) out(`profile ${id}: no default engines (the workers' defaults)`);
      else for (const [k, n] of set) out(`${k.padEnd(13)}${n}`);
    });

  program
    .command("engines")
    .description("the engines the connected workers can run, per task kind, with device, health and licence")
    .action(async () => {
      const list = await (await client()).listEngines();
      if (json()) return out(JSON.stringify(list));
      for (const l of engineTable(list)) out(l);
    });

  const video = program.command("video").description("videos made from a trained profile");
  video
    .command("create")
    .description("make a talking-avatar video")
    .option("--profile <id>", "a trained profile (not with --from: the source video's)")
    .option("--from <videoId>", "edit one of your videos: give only what changes; the steps whose inputs did not change are reused")
    .option("--narration <text>", "exactly what the person says")
    .option("--topic <text>", "what the person talks about (an LLM writes the script; see `likeness engines`, task kind llm)")
    .option("--duration <seconds>", "with --topic: how long the narration should take (default 30)", parseSeconds)
    .option("--stage <text>", "the scene, in words (drives the image); not with --topic")
    .addOption(new Option("--pipeline <name>", `how the video is made (default ${VIDEO_DEFAULTS.pipeline})`).choices(Pipeline.options))
    .option("--size <WxH>", `output size, default ${VIDEO_DEFAULTS.width}x${VIDEO_DEFAULTS.height} (${SIZE_RULE})`, parseSize)
    .option("--burn-subtitles", "draw the subtitles into the picture (default: a subtitle track the player can switch)")
    .option("--subtitles", "a subtitle track the player can switch (the default; with --from, turns them back on)")
    .option("--no-subtitles", "no subtitles at all")
    .option("--engine <KIND=NAME>", "use this engine for a task kind, e.g. tts=espeak (repeatable; see `likeness engines`)", parseEngine)
    .option("--wait", "follow the job to the end, with live progress")
    .option("--out <file>", "with --wait: save the MP4 here")
    .action(async (opts: { profile?: string; from?: string; narration?: string; topic?: string; duration?: number; stage?: string; pipeline?: Pipeline; size?: { width: number; height: number }; subtitles?: boolean; burnSubtitles?: boolean; engine?: EngineChoice; wait?: boolean; out?: string }) => {
      const edit = opts.from !== undefined;
      if (opts.narration !== undefined && opts.topic !== undefined) throw new UsageError("give exactly one of --narration or --topic");
      if (!edit && opts.narration === undefined && opts.topic === undefined) throw new UsageError("give exactly one of --narration or --topic (or --from VIDEO_ID to edit a video)");
      if (!edit && opts.profile === undefined) throw new UsageError("--profile is required (unless --from names a video to edit)");
      if (opts.stage !== undefined && opts.topic !== undefined) throw new UsageError("--stage goes with --narration or --from (a topic's script writes its own stage)");
      if (opts.duration !== undefined && opts.topic === undefined) throw new UsageError("--duration goes with --topic (a narration takes as long as it takes to say)");
      if (opts.burnSubtitles && opts.subtitles !== undefined) throw new UsageError("give at most one of --burn-subtitles, --subtitles or --no-subtitles");
      if (opts.out && !opts.wait) throw new UsageError("--out needs --wait (or use `likeness video download` later)");
      if (opts.out) await checkOutFile(opts.out);
      const c = await client();
      // Only what was given: the api fills in the rest (its defaults, or an edit's source's values).
      let created: VideoCreated;
      try {
        created = await c.createVideo({
          ...(opts.profile !== undefined ? { profileId: opts.profile } : {}),
          ...(edit ? { from: opts.from } : {}),
          ...(opts.narration !== undefined ? { narration: opts.narration } : {}),
          ...(opts.topic !== undefined ? { topic: opts.topic, ...(opts.duration !== undefined ? { durationSec: opts.duration } : {}) } : {}),
          ...(opts.stage !== undefined ? { stage: opts.stage } : {}),
          ...(opts.pipeline ? { pipeline: opts.pipeline } : {}),
          ...(opts.size ?? {}),
          ...(opts.burnSubtitles ? { subtitles: "burned" } : opts.subtitles !== undefined ? { subtitles: opts.subtitles ? "soft" : "none" } : {}),
          ...(opts.engine ? { engines: opts.engine } : {}),
        });
      } catch (e) {
        if (e instanceof ApiError) e.options = { ...VIDEO_OPTIONS, ...engineOptions(opts.engine) };
        throw e;
      }
      if (!opts.wait) {
        if (json()) out(JSON.stringify(created));
        else out(`video ${created.video.id}: job ${created.job.id} ${created.job.state}; follow it: likeness job show ${created.job.id} --wait`);
        return;
      }
      const job = await wait(c, created.job, opts.out);
      let saved: string | undefined;
      if (job.state === "succeeded" && opts.out) {
        const bytes = await c.downloadVideo(created.video.id, opts.out);
        saved = opts.out;
        if (!json()) out(`saved ${opts.out} (${(bytes / 1e6).toFixed(2)} MB)`);
      }
      if (json()) out(JSON.stringify({ video: created.video, job, file: saved ?? null }));
      else if (job.state === "succeeded" && !opts.out) out(`video ${created.video.id}: likeness video download ${created.video.id} --out video.mp4`);
    });
  video
    .command("download <id>")
    .description("save a finished video's MP4")
    .requiredOption("--out <file>", "where to write it")
    .action(async (id: string, opts: { out: string }) => {
      await checkOutFile(opts.out);
      const bytes = await (await client()).downloadVideo(id, opts.out);
      if (json()) out(JSON.stringify({ file: opts.out, bytes }));
      else out(`saved ${opts.out} (${(bytes / 1e6).toFixed(2)} MB)`);
    });

  video
    .command("show <id>")
    .description("one video: its script (title, stage, narration) and the engine of each step")
    .action(async (id: string) => {
      const c = await client();
      const v = await c.getVideo(id);
      const j = await c.getJob(v.jobId);
      if (json()) out(JSON.stringify({ video: v, job: j }));
      else for (const l of videoLines(v, j)) out(l);
    });

  video
    .command("list")
    .description("your videos, newest first")
    .action(async () => {
      const list = await (await client()).listVideos();
      if (json()) return out(JSON.stringify(list));
      if (list.length === 0) return out("no videos yet: likeness video create --profile PROFILE_ID --narration TEXT --wait --out video.mp4");
      for (const v of list) {
        const said = v.script?.narration ? `  "${v.script.narration.length > 40 ? `${v.script.narration.slice(0, 39)}…` : v.script.narration}"` : "";
        out(`${v.id}  ${v.state.padEnd(10)}  ${`${v.width}x${v.height}`.padEnd(9)}  ${v.pipeline.padEnd(11)}  ${(v.durationSec != null ? `${v.durationSec.toFixed(1)} s` : "").padStart(7)}${said}`);
      }
    });

  const job = program.command("job").description("jobs: training and video making, step by step");
  job
    .command("show <id>")
    .description("a job's steps, engines and timings")
    .option("--wait", "follow the job to the end, with live progress")
    .action(async (id: string, opts: { wait?: boolean }) => {
      const c = await client();
      const j = opts.wait ? await wait(c, await c.getJob(id)) : await c.getJob(id);
      if (json()) out(JSON.stringify(j));
      else if (!opts.wait) for (const l of jobLines(j)) out(l);
      else for (const l of nextSteps(j)) out(l);
    });
  for (const [name, desc] of [
    ["retry", "run a failed job again (steps that finished are reused)"],
    ["cancel", "stop a running job"],
  ] as const) {
    job
      .command(`${name} <id>`)
      .description(desc)
      .option("--wait", "follow the job to the end, with live progress")
      .action(async (id: string, opts: { wait?: boolean }) => {
        const c = await client();
        let j = name === "retry" ? await c.retryJob(id) : await c.cancelJob(id);
        if (opts.wait) j = await wait(c, j);
        if (json()) out(JSON.stringify(j));
        else if (!opts.wait) out(`job ${j.id} ${j.state}${name === "retry" ? ` (attempt ${j.attempt}); follow it: likeness job show ${j.id} --wait` : ""}`);
        else for (const l of nextSteps(j)) out(l);
      });
  }

  return program;
}

/** Run the program; returns the exit status (0 ok, 1 failure, 2 bad usage). Never throws. */
export async function run(argv: string[], deps: Deps, format: (e: unknown) => string): Promise<number> {
  const state = { exitCode: 0 };
  const program = buildProgram(deps, state);
  try {
    await program.parseAsync(argv, { from: "user" });
    return state.exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.help" || e.code === "commander.version") return 0;
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof Interrupted) return 130;
    deps.stderr.write(format(e) + "\n");
    return e instanceof UsageError ? 2 : 1;
  }
}

