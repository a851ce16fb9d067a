#!/usr/bin/env node
// The demo, as a user would do it: private Postgres/Redis (when unset), the api and the worker as
// child processes (logs in .data/logs), sample inputs made from installed packages, then the real
// `likeness` CLI: sign up, create a profile, train it, make a video, download the MP4. Prints the
// MP4 path and the per-step timings of both jobs, then shuts everything down.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, startInfra, watchdog } from "./infra.mjs";
import { makeSamples } from "./samples.mjs";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const DATA = path.join(REPO, ".data");
const LOGS = path.join(DATA, "logs");
const DEMO = path.join(DATA, "demo");
const API_ENTRY = path.join(REPO, "apps/api/dist/server.js");
const WORKER_BIN = path.join(REPO, "worker/.venv/bin/likeness-worker");
const CLI = path.join(REPO, "apps/cli/dist/main.js");
const NARRATION =
  "Hello! I am a talking portrait made by Likeness, entirely on this computer. " +
  "My voice comes from espeak, shaped to the speaker's measured pitch.";

const rel = (p) => path.relative(process.cwd(), p) || ".";
const say = (msg) => process.stderr.write(`demo: ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class DemoError extends Error {}

/** @type {{name: string, child: import('node:child_process').ChildProcess, log: string}[]} */
const services = [];
let infra;
let shuttingDown = false;

function startService(name, cmd, args, env) {
  const log = path.join(LOGS, `${name}.log`);
  const fd = fs.openSync(log, "w");
  // Own process group: ^C reaches the demo, which stops the services in order (api/worker before
  // the databases). A watchdog stops them if the demo itself is killed.
  const child = spawn(cmd, args, { cwd: REPO, env, detached: true, stdio: ["ignore", fd, fd] });
  fs.closeSync(fd);
  child.exitInfo = null;
  child.on("exit", (code, signal) => (child.exitInfo = { code, signal }));
  const dog = watchdog(process.pid, "TERM", [child.pid]);
  // Once the service is gone its watchdog must not outlive it (the pid could be reused).
  child.on("exit", () => {
    try {
      process.kill(dog, "SIGKILL");
    } catch {}
  });
  services.push({ name, child, log });
  return child;
}

async function stopServices() {
  await Promise.all(
    services.map(async ({ child }) => {
      if (child.exitInfo) return;
      const gone = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 20000);
      await gone;
      clearTimeout(t);
    }),
  );
}

async function shutdown() {
  if (shuttingDown) return;
  shuttingDown = true;
  const t0 = performance.now();
  await stopServices();
  await infra?.stop();
  say(`stopped api, worker${infra?.started.length ? ` and ${infra.started.join(" + ")}` : ""} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}

function checkServices() {
  for (const s of services) {
    if (s.child.exitInfo) {
      const { code, signal } = s.child.exitInfo;
      throw new DemoError(`the ${s.name} exited (${code ?? signal}) — see ${rel(s.log)}`);
    }
  }
}

async function waitHealthy(url, timeoutMs = 90000) {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    checkServices();
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) return;
      last = `HTTP ${res.status} ${(await res.text()).slice(0, 200)}`;
    } catch (err) {
      last = err.cause?.code ?? err.message;
    }
    if (Date.now() > deadline) throw new DemoError(`the api did not become healthy in ${timeoutMs / 1000} s (${last}) — see ${rel(path.join(LOGS, "api.log"))}`);
    await sleep(200);
  }
}

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

function stepTable(title, job) {
  const rows = job.steps.map((s) => [s.name, s.engine ?? "", s.state, s.durationMs == null ? "" : (s.durationMs / 1000).toFixed(2), s.reused ? "yes" : ""]);
  const total = job.finishedAt ? ((Date.parse(job.finishedAt) - Date.parse(job.createdAt)) / 1000).toFixed(2) : "";
  const head = ["step", "engine", "state", "seconds", "reused"];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r) => r.map((c, i) => (i === 3 ? c.padStart(w[i]) : c.padEnd(w[i]))).join("  ").trimEnd();
  return [
    `${title} (job ${job.id}, ${job.state}, ${total} s from queued to finished)`,
    "  " + fmt(head),
    "  " + w.map((n) => "-".repeat(n)).join("  "),
    ...rows.map((r) => "  " + fmt(r)),
  ].join("\n");
}

async function main() {
  const t0 = performance.now();
  const timings = [];
  const mark = (what, since) => timings.push([what, (performance.now() - since) / 1000]);
  fs.mkdirSync(LOGS, { recursive: true });
  fs.mkdirSync(DEMO, { recursive: true });
  for (const [file, what] of [
    [API_ENTRY, "the api build (npx tsc -b)"],
    [WORKER_BIN, "the worker venv (scripts/bootstrap.sh)"],
    [CLI, "the cli build (npx tsc -b)"],
  ]) {
    if (!fs.existsSync(file)) throw new DemoError(`${rel(file)} is missing: ${what}`);
  }

  let t = performance.now();
  infra = await startInfra({ dataDir: DATA });
  mark("infra (postgres, redis)", t);

  t = performance.now();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    ...infra.env,
    API_HOST: "127.0.0.1",
    API_PORT: String(port),
    STORAGE_DRIVER: process.env.STORAGE_DRIVER ?? "local",
    STORAGE_DIR: process.env.STORAGE_DIR ?? path.join(DATA, "objects"),
    LOG_LEVEL: process.env.LOG_LEVEL ?? "info",
  };
  startService("api", process.execPath, [API_ENTRY], env);
  startService("worker", WORKER_BIN, [], env);
  await waitHealthy(url);
  checkServices();
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

  // The step timings as the api recorded them: GET /v1/jobs/:id through the CLI.
  const jobs = [];
  for (const [title, id] of [["train_profile", trainJob.id], ["generate_video", videoJob.id]]) {
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
  } catch {}

  console.log("");
  console.log(`video: ${out}${desc ? `  (${desc})` : ""}`);
  console.log("");
  console.log(jobs.join("\n\n"));
  console.log("");
  console.log("demo phases");
  for (const [what, sec] of timings) console.log(`  ${what.padEnd(32)} ${sec.toFixed(2).padStart(7)} s`);
  console.log(`  ${"total".padEnd(32)} ${((performance.now() - t0) / 1000).toFixed(2).padStart(7)} s`);
}

/** Set on ^C: what fails after it (the CLI it stopped) is not a demo failure to report. */
let stopping = false;
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    say(`${sig}: shutting down`);
    for (const child of cliChildren) child.kill("SIGTERM");
    shutdown().finally(() => process.exit(130));
  });
}

try {
  await main();
  await shutdown();
} catch (err) {
  if (stopping) await new Promise(() => {}); // the signal handler stops everything and exits 130
  const msg = err instanceof DemoError ? err.message : err.stack ?? String(err);
  process.stderr.write(`\ndemo FAILED: ${msg}\n`);
  for (const s of services) {
    const lines = (() => {
      try {
        return fs.readFileSync(s.log, "utf8").trimEnd().split("\n").slice(-15);
      } catch {
        return [];
      }
    })();
    if (lines.length) process.stderr.write(`\n--- last lines of ${rel(s.log)} ---\n${lines.join("\n")}\n`);
  }
  process.stderr.write(`\nlogs: ${rel(LOGS)}/api.log, ${rel(LOGS)}/worker.log\n`);
  await shutdown().catch(() => {});
  process.exit(1);
}
