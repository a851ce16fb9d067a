#!/usr/bin/env node
// The demo, as a user would do it: private Postgres/Redis (when unset), the api and the worker as
// child processes (logs in .data/logs), sample inputs made from installed packages, then the real
// `likeness` CLI: sign up, create a profile, train it, make a video, download the MP4. Prints the
// MP4 path and the per-step timings of both jobs, then shuts everything down.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { startInfra } from "./infra.mjs";
import { makeSamples } from "./samples.mjs";
import { API_ENTRY, CLI, REPO, Stack, StackError, WORKER_BIN, rel, requireBuilt, runStack, shutdownOnce, stepTable } from "./stack.mjs";

const DATA = path.join(REPO, ".data");
const LOGS = path.join(DATA, "logs");
const DEMO = path.join(DATA, "demo");
const NARRATION =
  "Hello! I am a talking portrait made by Likeness, entirely on this computer. " +
  "My voice comes from piper, shaped toward the speaker's pitch, and my lips follow every word.";
const TOPIC = "why the sea is salty";
const EDIT_NARRATION = "Rivers wash salt out of the rocks and carry it to the sea, where it stays.";

const say = (msg) => process.stderr.write(`demo: ${msg}\n`);

class DemoError extends StackError {}

const stack = new Stack(LOGS);
let infra;
const shutdown = shutdownOnce(stack, () => infra, say, "api, worker");

/** CLI processes still running, stopped by the demo's own shutdown on ^C. */
const cliChildren = new Set();

/**
 * The real CLI. Its progress (stderr) goes straight to this terminal; stdout (--json) comes back.
 * It runs in its own process group so that a terminal ^C reaches only the demo, which stops
 * everything; otherwise the CLI would answer ^C with "the job keeps running on the server".
 */
function cli(args, env, input) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO, env, stdio: ["pipe", "pipe", "inherit"], detached: true });
    cliChildren.add(child);
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stdin.end(input ?? "");
    child.on("error", reject);
    child.on("exit", (code) => {
      cliChildren.delete(child);
      resolve({ code, out });
    });
  });
}

async function cliJson(args, env, input) {
  const { code, out } = await cli(["--json", ...args], env, input);
  const last = out.trim().split("\n").at(-1) ?? "";
  let data;
  try {
    data = JSON.parse(last);
  } catch {
    data = undefined;
  }
  return { code, data };
}

async function main() {
  const t0 = performance.now();
  const timings = [];
  const mark = (what, since) => timings.push([what, (performance.now() - since) / 1000]);
  fs.mkdirSync(DEMO, { recursive: true });
  requireBuilt([
    [API_ENTRY, "the api build (npx tsc -b)"],
    [WORKER_BIN, "the worker venv (scripts/bootstrap.sh)"],
    [CLI, "the cli build (npx tsc -b)"],
  ]);

  let t = performance.now();
  infra = await startInfra({ dataDir: DATA });
  mark("infra (postgres, redis)", t);

  t = performance.now();
  const { url } = await stack.startApiAndWorker(infra.env, { storageDir: path.join(DATA, "objects") });
  mark("api healthy, worker started", t);
  say(`api on ${url}; logs in ${rel(LOGS)}/{api,worker}.log`);

  t = performance.now();
  let samples;
  try {
    samples = makeSamples(path.join(DEMO, "inputs"));
  } catch (err) {
    throw new DemoError(err.message);
  }
  mark("sample inputs", t);
  say(`inputs: ${rel(path.join(samples.images, "astronaut.png"))} (scikit-image), ${rel(samples.voice)} (alsa-utils recordings)`);

  // The CLI keeps its token in the demo's own config folder, not the user's ~/.config.
  const cliEnv = { ...process.env, LIKENESS_URL: url, XDG_CONFIG_HOME: path.join(DEMO, "config") };
  delete cliEnv.LIKENESS_TOKEN;
  const userFile = path.join(DEMO, "user.json");
  let user;
  try {
    user = JSON.parse(fs.readFileSync(userFile, "utf8"));
  } catch {
    user = undefined;
  }
  t = performance.now();
  let r;
  if (user) {
    // A quiet login first (its "error:" line is expected when the database was wiped).
    const quiet = spawnSync(process.execPath, [CLI, "login", "--email", user.email, "--password-stdin"], { env: cliEnv, input: user.password + "\n", encoding: "utf8" });
    r = { code: quiet.status };
  }
  if (!user || r.code !== 0) {
    user ??= { email: `demo-${randomBytes(4).toString("hex")}@likeness.local`, password: randomBytes(18).toString("base64url") };
    fs.writeFileSync(userFile, JSON.stringify(user, null, 2) + "\n", { mode: 0o600 });
    r = await cliJson(["signup", "--email", user.email, "--password-stdin"], cliEnv, user.password + "\n");
    if (r.code !== 0) throw new DemoError("likeness signup failed (see above)");
  }
  mark("login", t);
  say(`logged in as ${user.email} (CLI credentials in ${rel(path.join(DEMO, "config"))})`);

  t = performance.now();
  r = await cliJson(["profile", "create", "--name", "Astronaut", "--images", samples.images, "--voice", samples.voice], cliEnv);
  if (r.code !== 0 || !r.data?.id) throw new DemoError("likeness profile create failed (see above)");
  const profileId = r.data.id;
  mark("profile create (upload)", t);
  say(`profile ${profileId} created; training (likeness profile train ${profileId} --wait)`);

  t = performance.now();
  r = await cliJson(["profile", "train", profileId, "--wait"], cliEnv);
  const trainJob = r.data;
  if (r.code !== 0 || trainJob?.state !== "succeeded") throw new DemoError(`training failed${trainJob?.id ? ` (likeness job show ${trainJob.id})` : ""}`);
  mark("profile train --wait", t);

  const out = path.join(DATA, "demo", "astronaut.mp4");
  say(`making a video (likeness video create --profile ${profileId} --narration "…" --wait --out ${rel(out)})`);
  t = performance.now();
  r = await cliJson(["video", "create", "--profile", profileId, "--narration", NARRATION, "--wait", "--out", out], cliEnv);
  const videoJob = r.data?.job;
  if (r.code !== 0 || videoJob?.state !== "succeeded" || !fs.existsSync(out)) throw new DemoError(`video failed${videoJob?.id ? ` (likeness job show ${videoJob.id})` : ""}`);
  mark("video create --wait + download", t);

  // From a topic: the built-in LLM writes the script (title, stage, narration), then the same steps.
  const topicOut = path.join(DATA, "demo", "topic.mp4");
  say(`making a video from a topic (likeness video create --profile ${profileId} --topic "${TOPIC}" --duration 12 --wait --out ${rel(topicOut)})`);
  t = performance.now();
  r = await cliJson(["video", "create", "--profile", profileId, "--topic", TOPIC, "--duration", "12", "--wait", "--out", topicOut], cliEnv);
  const topicJob = r.data?.job;
  if (r.code !== 0 || topicJob?.state !== "succeeded" || !fs.existsSync(topicOut)) throw new DemoError(`video from a topic failed${topicJob?.id ? ` (likeness job show ${topicJob.id})` : ""}`);
  mark("video create --topic --wait", t);
  const shown = await cliJson(["video", "show", r.data.video.id], cliEnv);
  const script = shown.data?.video?.script;
  if (shown.code !== 0 || !script) throw new DemoError(`likeness video show ${r.data.video.id} failed`);

  // An edit of the topic video with new words: the scene is reused, the speech and what follows are new.
  const editOut = path.join(DATA, "demo", "edit.mp4");
  say(`editing it with a new narration (likeness video create --from ${r.data.video.id} --narration "…" --wait --out ${rel(editOut)})`);
  t = performance.now();
  const edited = await cliJson(["video", "create", "--from", r.data.video.id, "--narration", EDIT_NARRATION, "--wait", "--out", editOut], cliEnv);
  const editJob = edited.data?.job;
  if (edited.code !== 0 || editJob?.state !== "succeeded" || !fs.existsSync(editOut)) throw new DemoError(`the edit failed${editJob?.id ? ` (likeness job show ${editJob.id})` : ""}`);
  mark("video create --from --wait", t);

  // The step timings as the api recorded them: GET /v1/jobs/:id through the CLI.
  const jobs = [];
  for (const [title, id] of [
    ["train_profile", trainJob.id],
    ["generate_video", videoJob.id],
    ["generate_video from a topic", topicJob.id],
    ["generate_video, an edit of the topic video with a new narration", editJob.id],
  ]) {
    const j = await cliJson(["job", "show", id], cliEnv);
    if (j.code !== 0 || !j.data) throw new DemoError(`likeness job show ${id} failed`);
    jobs.push(stepTable(title, j.data));
  }

  const probe = spawnSync("ffprobe", ["-v", "error", "-show_entries", "format=duration:stream=codec_type,codec_name,width,height", "-of", "json", out], { encoding: "utf8" });
  let desc = "";
  try {
    const info = JSON.parse(probe.stdout);
    const v = info.streams.find((s) => s.codec_type === "video");
    desc = `${Number(info.format.duration).toFixed(2)} s, ${info.streams.map((s) => s.codec_name).join(" + ")}${v ? `, ${v.width}x${v.height}` : ""}`;
  } catch { /* ffprobe failed: no description */ }

  console.log("");
  console.log(`video: ${out}${desc ? `  (${desc})` : ""}`);
  console.log("");
  console.log(`from the topic "${TOPIC}": ${topicOut}  (likeness video show ${r.data.video.id})`);
  console.log(`  title:     ${script.title}`);
  console.log(`  stage:     ${script.stage}`);
  console.log(`  narration: ${script.narration}`);
  console.log("");
  console.log(`edited with a new narration: ${editOut}; reused from the topic video: ${editJob.steps.filter((s) => s.reused).map((s) => s.name).join(", ") || "nothing"}`);
  console.log("");
  console.log(jobs.join("\n\n"));
  console.log("");
  console.log("demo phases");
  for (const [what, sec] of timings) console.log(`  ${what.padEnd(32)} ${sec.toFixed(2).padStart(7)} s`);
  console.log(`  ${"total".padEnd(32)} ${((performance.now() - t0) / 1000).toFixed(2).padStart(7)} s`);
}

await runStack("demo", stack, { main, shutdown, say, onSignal: () => cliChildren.forEach((c) => c.kill("SIGTERM")) });
