#!/usr/bin/env node
// `npm run chaos`: a fault drill on the real stack. Private Postgres and Redis (always private: the
// drill restarts them), one api, two workers; a user, a profile trained from the built-in samples,
// then N videos, and while they render, faults at seeded random times: worker SIGKILL, api SIGKILL,
// Redis restart with and without its data, Postgres crash-restart, worker SIGSTOP past the reclaim
// time. Every job must end succeeded with a valid MP4 (H.264 + AAC). Ends with one line:
//
//   likeness-chaos jobs=12 succeeded=12 failed=0 stuck=0 bad_mp4=0
//
// Exit 0 only when every job succeeded with a valid MP4 (and, with --one-of-each, every fault was
// injected while jobs ran). Data and logs under .data/chaos (cleared at each start).
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { freePort, startInfra, stopStale } from "./infra.mjs";
import { FAULT_KINDS, Service, parseFaultList, planFaults, rng } from "./faults.mjs";
import { makeSamples } from "./samples.mjs";
import { API_ENTRY, REPO, StackError, WORKER_BIN, rel, requireBuilt } from "./stack.mjs";

const HELP = `usage: npm run chaos -- [options]
  --jobs N           videos to render (default 12)
  --seed S           seed of the fault plan, targets, outages and narrations (default: random, printed)
  --duration SEC     length of the fault window, from the last submission (default 120;
                     with --one-of-each 4 s per fault kind); it closes early once every job ended.
                     Faults run one after another: one that is late waits for the one before
  --every SEC        mean gap between drawn faults (default 5)
  --faults LIST      all (default), none, or kinds with an optional count, comma-separated:
                     ${FAULT_KINDS.join(", ")}
                     e.g. --faults worker-kill:20,api-kill:5,redis-wipe:1
  --one-of-each      exactly one fault of each listed kind, spaced over the window (the short drill)
  --workers N        worker processes (default 2)
  --timeout SEC      every job must end within this many seconds of the first submission, or it
                     is stuck (default 600)
  --data-dir DIR     data and logs (default .data/chaos; its pg, redis, objects, work, logs and
                     downloads folders are cleared at start)
Service settings (WORKER_RECLAIM_IDLE_MS, API_RECLAIM_IDLE_MS, ...) may be set in the environment.`;

/** Short narrations, a sentence or two each, different lengths and sounds. */
const NARRATIONS = [
  "Hello! This is a short video made while the studio was being shaken.",
  "Good morning. Today we look at how a queue survives a restart.",
  "My lips follow the words, even when a worker goes away in the middle.",
  "Postgres keeps the truth. Redis only carries the messages.",
  "A paused machine wakes up and finds its job taken. That is fine.",
  "Welcome back! Here are three quick tips for better sleep.",
  "The quick brown fox jumps over the lazy dog, twice, to be sure.",
  "Thank you for watching. Please share this video with a friend.",
  "Big bold maps, bright blue boats, and a moment of calm.",
  "Every step is done once, and the finished ones are reused.",
  "Numbers matter: one, two, three, four, five. And then we stop.",
  "I am a talking portrait. I was made from one photo and a voice.",
  "Open wide for the vowels, close for m, b and p.",
  "Some days the servers restart. The videos still come out.",
];

/** Settings of the services that make takeovers happen within seconds; the environment wins. */
const TUNABLES = {
  API_RECLAIM_IDLE_MS: "3000",
  API_RECONCILE_INTERVAL_S: "5",
  API_RECONCILE_STALE_S: "60",
  WORKER_RECLAIM_IDLE_MS: "5000",
  WORKER_HEARTBEAT_TIMEOUT_MS: "5000",
  WORKER_SHUTDOWN_GRACE_S: "3",
  LOG_LEVEL: "info",
};

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const POLL_MS = 1000;
const READY_TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------------------------------------
// Options

function parseArgs(argv) {
  const o = { jobs: 12, seed: undefined, duration: undefined, every: 5, faults: "all", oneOfEach: false, workers: 2, timeout: 600, dataDir: path.join(REPO, ".data", "chaos") };
  const num = (name, v, min) => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < min) throw new StackError(`${name} needs a number ≥ ${min} (got ${v ?? "nothing"})`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let v;
    if (a.startsWith("--") && a.includes("=")) [a, v] = [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)];
    const value = () => v ?? argv[++i];
    if (a === "--jobs") o.jobs = Math.floor(num(a, value(), 1));
    else if (a === "--seed") o.seed = Math.floor(num(a, value(), 0)) >>> 0;
    else if (a === "--duration") o.duration = num(a, value(), 1);
    else if (a === "--every") o.every = num(a, value(), 0.5);
    else if (a === "--faults") o.faults = value() ?? "";
    else if (a === "--one-of-each") o.oneOfEach = true;
    else if (a === "--workers") o.workers = Math.floor(num(a, value(), 1));
    else if (a === "--timeout") o.timeout = num(a, value(), 10);
    else if (a === "--data-dir") o.dataDir = path.resolve(value() ?? "");
    else if (a === "-h" || a === "--help") o.help = true;
    else throw new StackError(`unknown argument ${a} (try --help)`);
  }
  try {
    o.kinds = parseFaultList(o.faults);
  } catch (err) {
    throw new StackError(err.message);
  }
  if (o.oneOfEach) o.kinds = [...new Map(o.kinds.map((k) => [k.kind, { kind: k.kind, count: 1 }])).values()];
  // One of each: faults are injected one after another (a pause alone lasts 12 s), so a short
  // window keeps them all inside the ~45 s that 12 videos render on 2 cores.
  o.duration ??= o.oneOfEach ? 4 * Math.max(1, o.kinds.length) : 120;
  o.seed ??= randomBytes(4).readUInt32BE() >>> 1;
  return o;
}

// ---------------------------------------------------------------------------------------------
// Output: every line on stdout and in logs/chaos.log, with the wall clock and the run's seconds.

const t0 = Date.now();
let chaosLog = null;
function write(line) {
  process.stdout.write(line + "\n");
  if (chaosLog) fs.appendFileSync(chaosLog, line + "\n");
}
function note(msg) {
  const clock = new Date().toISOString().slice(11, 23);
  const since = `+${((Date.now() - t0) / 1000).toFixed(1)}s`.padStart(8);
  write(`${clock} ${since}  ${msg}`);
}
const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;

// ---------------------------------------------------------------------------------------------
// Stopping: ^C or a failure stops the services (a paused one is resumed first), then the servers.

let stopping = false;
const stopCtl = new AbortController();
/** Sleeps `ms`; returns early (false) once the drill is stopping. */
function sleep(ms) {
  return new Promise((resolve) => {
    if (stopCtl.signal.aborted) return resolve(false);
    const done = (ok) => {
      clearTimeout(timer);
      stopCtl.signal.removeEventListener("abort", onAbort);
      resolve(ok);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    stopCtl.signal.addEventListener("abort", onAbort);
  });
}

/** @type {Service | null} */
let api = null;
/** @type {Service[]} */
const workers = [];
let infra = null;
let faultInFlight = Promise.resolve();
let shutdownDone = null;

function shutdown() {
  shutdownDone ??= (async () => {
    stopping = true;
    stopCtl.abort();
    const t = Date.now();
    // A fault half-way through a restart finishes it first (no server started after the stop).
    await Promise.race([faultInFlight.catch(() => {}), new Promise((r) => setTimeout(r, 30_000))]);
    await Promise.all([api, ...workers].filter(Boolean).map((s) => s.stop(10_000)));
    await infra?.stop();
    return Date.now() - t;
  })();
  return shutdownDone;
}

// ---------------------------------------------------------------------------------------------
// HTTP

class HttpError extends Error {
  constructor(status, text, what) {
    super(`${what}: HTTP ${status} ${text.slice(0, 300)}`);
    this.status = status;
  }
}

async function http(url, method, route, { token, json, form, timeoutMs = 15_000, raw = false } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (json !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(url + route, {
    method,
    headers,
    body: form ?? (json === undefined ? undefined : JSON.stringify(json)),
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (raw) return res;
  const text = await res.text();
  if (!res.ok) throw new HttpError(res.status, text, `${method} ${route}`);
  return text ? JSON.parse(text) : undefined;
}

async function waitHealthy(url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline && !stopping) {
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(3000) });
      if (res.ok) return { ok: true };
      last = `HTTP ${res.status} ${(await res.text()).slice(0, 200)}`;
    } catch (err) {
      last = err.cause?.code ?? err.message;
    }
    await sleep(200);
  }
  return { ok: false, last };
}

const workerReady = (log) => /: queues /.test(log);

/** Starts a service again after a crash nobody caused, as `restart: unless-stopped` would. */
const crashes = [];
function onCrash(svc, info) {
  const last = crashes.filter((c) => c.name === svc.name).at(-1);
  const delay = last && Date.now() - last.at < 15_000 ? Math.min(8000, last.delay * 2) : 1000;
  crashes.push({ name: svc.name, at: Date.now(), delay, info });
  if (stopping) return;
  note(`!! ${svc.name} (pid ${svc.pid}) exited on its own (${info.code ?? info.signal}); starting it again in ${secs(delay)} — see ${rel(svc.logFile)}`);
  void sleep(delay).then((ok) => {
    if (ok && !stopping && !svc.running) svc.start();
  });
}

// ---------------------------------------------------------------------------------------------
// Faults

async function inject(f, ctx) {
  const { plan, url, pauseMs } = ctx;
  const head = `fault ${f.n}/${plan.length} ${f.kind}:`;
  const t = Date.now();
  if (f.kind === "worker-kill" || f.kind === "api-kill") {
    const svc = f.kind === "api-kill" ? api : workers[f.worker - 1];
    const oldPid = svc.pid;
    const wasRunning = svc.running;
    if (wasRunning) await svc.kill();
    note(`${head} ${wasRunning ? `SIGKILL ${svc.name} (pid ${oldPid} and its process group)` : `${svc.name} was not running (it exited on its own)`}; starting a new one`);
    if (!svc.running) svc.start();
    const ready = f.kind === "api-kill" ? await waitHealthy(url, READY_TIMEOUT_MS) : { ok: await svc.waitLog(workerReady, READY_TIMEOUT_MS) };
    note(
      ready.ok
        ? `  ↳ ${svc.name} is pid ${svc.pid}, ${f.kind === "api-kill" ? `healthy on the same port` : "ready"} after ${secs(Date.now() - t)}`
        : `  ↳ !! ${svc.name} (pid ${svc.pid}) not ${f.kind === "api-kill" ? `healthy (${ready.last})` : "ready"} after ${secs(READY_TIMEOUT_MS)} — see ${rel(svc.logFile)}`,
    );
    return ready.ok;
  }
  if (f.kind === "worker-pause") {
    const svc = workers[f.worker - 1];
    if (!svc.running || !svc.pause()) {
      note(`${head} ${svc.name} is not running; nothing to pause`);
      return false;
    }
    note(`${head} SIGSTOP ${svc.name} (pid ${svc.pid} and its process group) for ${secs(pauseMs)}`);
    await sleep(pauseMs);
    svc.resume();
    note(`  ↳ SIGCONT ${svc.name} after ${secs(Date.now() - t)}`);
    return true;
  }
  if (f.kind === "redis-restart" || f.kind === "redis-wipe") {
    const redis = infra.control.redis;
    const wipe = f.kind === "redis-wipe";
    note(`${head} redis-server :${redis.port} (pid ${redis.pid()}) SIGTERM, ${wipe ? "its AOF/RDB deleted, " : "AOF kept, "}down for ${secs(f.downMs)}`);
    const r = await redis.restart({ wipe, downMs: f.downMs });
    note(`  ↳ redis-server back as pid ${r.pid}${wipe ? `, empty (deleted: ${r.deleted.join(", ") || "nothing"})` : ""}, answering PING after ${secs(Date.now() - t)}`);
    return true;
  }
  if (f.kind === "postgres-restart") {
    const pg = infra.control.postgres;
    note(`${head} postgres :${pg.port} (pid ${pg.pid()}) SIGQUIT (immediate shutdown, as pg_ctl restart -m immediate), down for ${secs(f.downMs)}`);
    const r = await pg.crashRestart({ downMs: f.downMs });
    note(`  ↳ postgres back as pid ${r.pid} (crash recovery), accepting connections after ${secs(Date.now() - t)}`);
    return true;
  }
  throw new Error(`unknown fault ${f.kind}`);
}

// ---------------------------------------------------------------------------------------------
// Jobs

function stepsLine(job) {
  return (job?.steps ?? []).map((s) => `${s.name}:${s.state}`).join(" ");
}

function probeMp4(file) {
  const r = spawnSync("ffprobe", ["-v", "error", "-show_entries", "format=duration:stream=codec_type,codec_name,width,height", "-of", "json", file], { encoding: "utf8" });
  if (r.status !== 0) return { ok: false, why: `ffprobe: ${(r.stderr || r.error?.message || "").trim().slice(0, 200)}` };
  let info;
  try {
    info = JSON.parse(r.stdout);
  } catch {
    return { ok: false, why: "ffprobe printed no JSON" };
  }
  const v = info.streams?.find((s) => s.codec_type === "video");
  const a = info.streams?.find((s) => s.codec_type === "audio");
  const duration = Number(info.format?.duration);
  const desc = `${v ? `${v.codec_name} ${v.width}x${v.height}` : "no video"} + ${a ? a.codec_name : "no audio"}, ${Number.isFinite(duration) ? duration.toFixed(2) : "?"} s`;
  const ok = v?.codec_name === "h264" && a?.codec_name === "aac" && duration > 0;
  return { ok, why: ok ? desc : `not H.264 + AAC with a duration: ${desc}` };
}

async function checkVideo(url, token, job, dir) {
  const file = path.join(dir, `job-${String(job.n).padStart(2, "0")}.mp4`);
  let lastErr = "";
  for (let i = 0; i < 5; i++) {
    try {
      const res = await http(url, "GET", `/v1/videos/${job.videoId}/file`, { token, raw: true, timeoutMs: 60_000 });
      if (res.ok) {
        fs.writeFileSync(file, Buffer.from(await res.arrayBuffer()));
        return probeMp4(file);
      }
      lastErr = `GET /v1/videos/${job.videoId}/file: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`;
      if (res.status < 500) break;
    } catch (err) {
      lastErr = `GET /v1/videos/${job.videoId}/file: ${err.cause?.code ?? err.message}`;
    }
    if (!(await sleep(2000))) break;
  }
  return { ok: false, why: lastErr };
}

/** Postgres sessions waiting on a lock, for a service that does not start (a start-up deadlock). */
async function lockWaits(databaseUrl) {
  const pg = (await import("pg")).default;
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 3000 });
  client.on("error", () => {});
  try {
    await client.connect();
    const { rows } = await client.query(
      `select pid, state, wait_event_type || ':' || wait_event as waiting, round(extract(epoch from now() - query_start)) as secs,
              pg_blocking_pids(pid) as blocked_by, regexp_replace(left(query, 160), '\\s+', ' ', 'g') as query
         from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and wait_event_type = 'Lock'`,
    );
    return rows.map((r) => `pid ${r.pid} waits ${r.secs} s on ${r.waiting}${r.blocked_by?.length ? ` (blocked by ${r.blocked_by.join(", ")})` : ""}: ${r.query}`);
  } catch (err) {
    return [`(could not ask Postgres: ${err.message})`];
  } finally {
    await client.end().catch(() => {});
  }
}

/** The lines of a log that say something went wrong, for the failure report. */
function troubleLines(file, max = 8) {
  let text;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const seen = new Set();
  const out = [];
  for (const line of text.split("\n").reverse()) {
    if (!/error|exception|traceback|fatal|refused|NOGROUP|exited/i.test(line) || /^\s*$/.test(line)) continue;
    const key = line.replace(/\d+/g, "#").slice(0, 160);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(line.length > 400 ? line.slice(0, 400) + " …" : line);
    if (out.length >= max) break;
  }
  return out.reverse();
}

// ---------------------------------------------------------------------------------------------

async function main(o) {
  requireBuilt([
    [API_ENTRY, "the api build (npx tsc -b)"],
    [WORKER_BIN, "the worker venv (scripts/bootstrap.sh)"],
  ]);
  if (spawnSync("ffprobe", ["-version"], { stdio: "ignore" }).status !== 0) throw new StackError("ffprobe is not installed (scripts/bootstrap.sh installs ffmpeg)");

  const random = rng(o.seed);
  const plan = planFaults({ kinds: o.kinds, duration: o.duration, every: o.every, oneOfEach: o.oneOfEach, workers: o.workers, random });
  const narrationOffset = random.int(0, NARRATIONS.length - 1);

  // A fresh run: the servers a dead drill left go first, then last run's data.
  fs.mkdirSync(o.dataDir, { recursive: true });
  await stopStale(o.dataDir, (m) => process.stderr.write(`chaos: ${m}\n`)).catch((err) => {
    throw new StackError(err.message);
  });
  const dirs = Object.fromEntries(["pg", "redis", "objects", "work", "logs", "downloads"].map((d) => [d, path.join(o.dataDir, d)]));
  for (const d of Object.values(dirs)) fs.rmSync(d, { recursive: true, force: true });
  for (const d of ["objects", "work", "logs", "downloads"]) fs.mkdirSync(dirs[d], { recursive: true });
  // As root, Postgres runs as `postgres`, which must reach <data>/pg.
  if (process.getuid?.() === 0) fs.chmodSync(o.dataDir, 0o755);
  chaosLog = path.join(dirs.logs, "chaos.log");

  const effective = Object.fromEntries(Object.entries(TUNABLES).map(([k, v]) => [k, process.env[k] || v]));
  const reclaimMs = Number(effective.WORKER_RECLAIM_IDLE_MS);
  const pauseMs = 2 * Math.max(reclaimMs, Number(effective.WORKER_HEARTBEAT_TIMEOUT_MS)) + 2000;

  write(`likeness chaos: ${o.jobs} videos, ${o.workers} workers, seed ${o.seed}`);
  write(`  faults: ${o.kinds.length ? o.kinds.map((k) => k.kind + (k.count !== undefined && !o.oneOfEach ? `:${k.count}` : "")).join(", ") : "none"}${o.oneOfEach ? " (one of each)" : ""}, window ${o.duration} s${o.oneOfEach ? "" : `, mean gap ${o.every} s`}; jobs stuck after ${o.timeout} s`);
  write(`  settings: ${Object.entries(effective).map(([k, v]) => `${k}=${v}`).join(" ")}; a pause lasts ${secs(pauseMs)}`);
  write(`  plan (seconds after the last submission): ${plan.map((f) => `+${f.at.toFixed(1)} ${f.kind}${f.kind.startsWith("worker") ? ` w${f.worker}` : ""}${/redis|postgres/.test(f.kind) ? ` (down ${secs(f.downMs)})` : ""}`).join(", ") || "no faults"}`);
  write(`  data ${rel(o.dataDir)}, logs ${rel(dirs.logs)}; rerun this plan with --seed ${o.seed}`);

  let t = Date.now();
  infra = await startInfra({
    dataDir: o.dataDir,
    env: {}, // always private: the drill restarts them
    log: (m) => process.stderr.write(`chaos: infra: ${m}\n`),
  });
  note(`postgres :${infra.control.postgres.port} and redis-server :${infra.control.redis.port} (AOF) started in ${secs(Date.now() - t)}`);

  t = Date.now();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const base = { ...process.env };
  for (const k of ["DATABASE_URL", "REDIS_URL", "LIKENESS_TEST_FAULTS", "API_CONSUMER_NAME"]) Reflect.deleteProperty(base, k);
  const env = {
    ...base,
    ...effective,
    ...infra.env,
    STORAGE_DRIVER: "local",
    STORAGE_DIR: dirs.objects,
    API_HOST: "127.0.0.1",
    API_PORT: String(port),
  };
  api = new Service("api", process.execPath, [API_ENTRY], env, path.join(dirs.logs, "api.log"), { onCrash });
  for (let i = 1; i <= o.workers; i++) {
    const work = path.join(dirs.work, `worker-${i}`);
    fs.mkdirSync(work, { recursive: true });
    workers.push(new Service(`worker-${i}`, WORKER_BIN, [], { ...env, WORKER_METRICS_PORT: "0", WORKER_WORK_DIR: work }, path.join(dirs.logs, `worker-${i}.log`), { onCrash }));
  }
  api.start();
  for (const w of workers) w.start();
  const healthy = await waitHealthy(url, 90_000);
  if (!healthy.ok) throw new StackError(`the api did not become healthy in 90 s (${healthy.last}) — see ${rel(api.logFile)}`);
  for (const w of workers) {
    if (!(await w.waitLog(workerReady, Math.max(1000, t + 90_000 - Date.now())))) {
      const waits = await lockWaits(infra.databaseUrl);
      throw new StackError(
        `${w.name} did not start in 90 s — see ${rel(w.logFile)}` +
          (waits.length ? `\nPostgres sessions waiting on a lock:\n  ${waits.join("\n  ")}` : ""),
      );
    }
  }
  note(`api on ${url} and ${o.workers} workers (pids ${workers.map((w) => w.pid).join(", ")}) ready in ${secs(Date.now() - t)}`);

  // A user and a trained profile, before any fault.
  t = Date.now();
  const samples = makeSamples(path.join(o.dataDir, "inputs"));
  const { token } = await http(url, "POST", "/v1/auth/signup", { json: { email: `chaos-${randomBytes(4).toString("hex")}@likeness.local`, password: randomBytes(18).toString("base64url") } });
  const form = new FormData();
  form.append("name", "Astronaut");
  form.append("images", new Blob([fs.readFileSync(samples.portrait)], { type: "image/png" }), "astronaut.png");
  form.append("voice", new Blob([fs.readFileSync(samples.voice)], { type: "audio/wav" }), "voice.wav");
  const profile = await http(url, "POST", "/v1/profiles", { token, form, timeoutMs: 60_000 });
  const train = await http(url, "POST", `/v1/profiles/${profile.id}/train`, { token, json: {} });
  for (;;) {
    const j = await http(url, "GET", `/v1/jobs/${train.id}`, { token });
    if (j.state === "succeeded") break;
    if (TERMINAL.has(j.state)) throw new StackError(`training ${j.state}: ${j.error ? `${j.error.step ?? "?"}: ${j.error.code}: ${j.error.message}` : "no error"} (job ${j.id})`);
    if (Date.now() - t > 300_000) throw new StackError(`training not done after 300 s (job ${j.id}, ${stepsLine(j)})`);
    if (!(await sleep(500))) return null;
  }
  note(`profile ${profile.id} trained in ${secs(Date.now() - t)}`);

  // The videos, then the fault window.
  const jobs = [];
  const submittedAt = Date.now();
  for (let i = 0; i < o.jobs; i++) {
    const narration = NARRATIONS[(narrationOffset + i) % NARRATIONS.length];
    const r = await http(url, "POST", "/v1/videos", { token, json: { profileId: profile.id, narration } });
    jobs.push({ n: i + 1, id: r.job.id, videoId: r.video.id, narration, job: r.job, endedAt: null });
  }
  note(`${o.jobs} videos submitted in ${secs(Date.now() - submittedAt)} (jobs ${jobs[0].id} … ${jobs.at(-1).id})`);
  const windowStart = Date.now();
  const deadline = submittedAt + o.timeout * 1000;
  const ended = () => jobs.every((j) => j.endedAt);

  // Jobs: poll each until it ends; a status line when the counts change.
  let pollErrors = 0;
  const poller = (async () => {
    let lastStatus = "";
    while (!ended() && Date.now() < deadline && !stopping) {
      for (const j of jobs.filter((x) => !x.endedAt)) {
        try {
          j.job = await http(url, "GET", `/v1/jobs/${j.id}`, { token, timeoutMs: 5000 });
          if (TERMINAL.has(j.job.state)) {
            j.endedAt = Date.now();
            const e = j.job.error;
            note(`job ${j.n} ${j.job.state}${e ? ` at ${e.step ?? "?"}: ${e.code}: ${e.message.slice(0, 200)}` : ""} (attempt ${j.job.attempt}, ${secs(j.endedAt - submittedAt)} after submission)`);
          }
        } catch {
          pollErrors += 1; // the api is restarting or an outage is on: try again next round
        }
      }
      const counts = {};
      for (const j of jobs) counts[j.job.state] = (counts[j.job.state] ?? 0) + 1;
      const status = Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", ");
      if (status !== lastStatus) note(`jobs: ${status}`);
      lastStatus = status;
      if (!ended()) await sleep(POLL_MS);
    }
  })();

  // Faults: in plan order, one at a time, while jobs run.
  const injected = [];
  const skipped = [];
  const faulter = (async () => {
    for (const f of plan) {
      const wait = windowStart + f.at * 1000 - Date.now();
      if (wait > 0) {
        // Sleep in slices so that the end of every job ends the window early.
        const until = Date.now() + wait;
        while (Date.now() < until && !ended() && !stopping) await sleep(Math.min(250, until - Date.now()));
      }
      if (stopping || ended() || Date.now() > deadline) {
        skipped.push(f);
        continue;
      }
      const p = inject(f, { plan, url, pauseMs });
      faultInFlight = p;
      try {
        ((await p) ? injected : skipped).push(f);
      } catch (err) {
        note(`  ↳ !! fault ${f.n} ${f.kind} FAILED: ${err.message}`);
        skipped.push(f);
      }
    }
  })();

  await faulter;
  if (plan.length && !stopping) note(`fault window over: ${injected.length}/${plan.length} faults injected${skipped.length ? ` (${skipped.length} not: ${ended() ? "every job had ended" : "see above"})` : ""}`);
  await poller;
  if (stopping) return null;

  // Every succeeded job's MP4, downloaded and probed.
  for (const j of jobs.filter((x) => x.job.state === "succeeded")) j.mp4 = await checkVideo(url, token, j, dirs.downloads);

  const counts = {
    jobs: jobs.length,
    succeeded: jobs.filter((j) => j.job.state === "succeeded").length,
    failed: jobs.filter((j) => j.endedAt && j.job.state !== "succeeded").length,
    stuck: jobs.filter((j) => !j.endedAt).length,
    bad_mp4: jobs.filter((j) => j.mp4 && !j.mp4.ok).length,
  };
  write("");
  write("jobs");
  for (const j of jobs) {
    const s = j.endedAt ? j.job.state : "stuck";
    const e = j.job.error;
    const took = j.job.finishedAt ? secs(Date.parse(j.job.finishedAt) - Date.parse(j.job.createdAt)) : "";
    let what;
    if (s === "succeeded") what = `mp4 ${j.mp4.ok ? "ok" : "BAD"}: ${j.mp4.why}`;
    else if (s === "stuck") what = `still ${j.job.state} after ${o.timeout} s: ${stepsLine(j.job)}`;
    else what = e ? `at ${e.step ?? "?"}: ${e.code}: ${e.message}` : "no error recorded";
    write(`  ${String(j.n).padStart(2)}  ${j.id}  ${s.padEnd(9)}  attempt ${j.job.attempt}  ${took.padStart(7)}  ${what}`);
  }
  if (crashes.length) write(`services that exited on their own (and were started again): ${crashes.map((c) => `${c.name} (${c.info.code ?? c.info.signal})`).join(", ")}`);
  write(`${pollErrors} job polls failed during faults (connection refused, timeouts, 5xx)`);

  const allGood = counts.succeeded === counts.jobs && counts.bad_mp4 === 0;
  const faultsShort = o.oneOfEach && injected.length < plan.length;
  if (faultsShort) write(`!! only ${injected.length} of ${plan.length} faults were injected while jobs ran: use more --jobs or a shorter --duration`);
  if (!allGood || faultsShort) {
    write("");
    write("what the logs say (latest distinct error lines):");
    const logs = [api.logFile, ...workers.map((w) => w.logFile), infra.control.redis.logFile, infra.control.postgres.logFile];
    for (const file of logs) {
      const lines = troubleLines(file);
      if (lines.length) write(`--- ${rel(file)}\n${lines.join("\n")}`);
    }
    write(`logs: ${rel(dirs.logs)}/ (chaos.log, api.log, ${workers.map((w) => path.basename(w.logFile)).join(", ")}), ${rel(infra.control.redis.logFile)}, ${rel(infra.control.postgres.logFile)}`);
  }
  return { counts, ok: allGood && !faultsShort };
}

// ---------------------------------------------------------------------------------------------

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`chaos: ${err.message}\n`);
  process.exit(2);
}
if (opts.help) {
  console.log(HELP);
  process.exit(0);
}
let signalled = false;
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    if (signalled) return;
    signalled = true;
    note(`${sig}: stopping the services and the servers`);
    shutdown().finally(() => process.exit(130));
  });
}
try {
  const result = await main(opts);
  if (signalled) await new Promise(() => {}); // the signal handler stops everything and exits 130
  const ms = await shutdown();
  note(`stopped the api, the workers, postgres and redis-server in ${secs(ms)}`);
  const c = result.counts;
  write(`likeness-chaos jobs=${c.jobs} succeeded=${c.succeeded} failed=${c.failed} stuck=${c.stuck} bad_mp4=${c.bad_mp4}`);
  process.exit(result.ok ? 0 : 1);
} catch (err) {
  if (signalled) await new Promise(() => {});
  write(`\nchaos FAILED: ${err instanceof StackError ? err.message : err.stack ?? String(err)}`);
  for (const s of [api, ...workers].filter(Boolean)) {
    const tail = s.tail(15);
    if (tail.trim()) write(`--- last lines of ${rel(s.logFile)} ---\n${tail}`);
  }
  await shutdown().catch(() => {});
  process.exit(1);
}
