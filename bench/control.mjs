#!/usr/bin/env node
// `npm run bench:control`: the control plane alone. The real api and worker (private Postgres and
// Redis when DATABASE_URL/REDIS_URL are unset, data in .data/bench-control), with the bench-only
// `noop` engine of every task kind (WORKER_ENGINE_PLUGINS=likeness_worker.bench.noop_engines; no
// worker loads it by default), chosen per request through `engines`. Nothing is rendered: what is
// measured is the api, Redis, the bridge, the task DAG, Dramatiq, the events and the progress.
//
//   1. idle: jobs one at a time, each followed over the WebSocket: dispatch latency (job created →
//      its first worker step started, as GET /v1/jobs/:id records them) with where it goes, and
//      progress latency (the worker's publish, its `at` → the WebSocket client);
//   2. load: `--jobs` POST /v1/videos from `--clients` concurrent clients: accepted jobs/s (202s
//      over the time they took), then completed jobs/s (until the last one finished);
//   3. api and worker RSS (the worker with its child processes), sampled every 100 ms;
//   4. a script from a topic by the built-in LLM (`local`, the rest noop): GET /v1/jobs/:id latency,
//      p50 and p99, every 20 ms while the model writes (the model runs on llama.cpp's threads, not
//      the api's event loop; goal p99 ≤ 50 ms);
//   5. the floor (bench/floor.mjs): the CPU that LangGraph.js, LangGraph and Dramatiq alone spend
//      on one job, with empty nodes and actors, next to the budget the completed goal leaves.
//
// Ends with one line to compare runs by:
//   likeness-control accepted_per_s=… completed_per_s=… dispatch_p50_ms=… dispatch_p99_ms=… progress_p99_ms=…
// Options: --jobs N (default 1000), --clients N (32), --idle N (40 idle jobs; 0 skips the idle phase), --workers N (1).
// Exit 0 when the run completed (a figure short of its goal is reported, not an error), 1 when the
// stack or a job failed.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import WebSocket from "ws";
import { startInfra } from "../scripts/infra.mjs";
import { makeSamples } from "../scripts/samples.mjs";
import { TRAIN_KINDS, VIDEO_KINDS, api, createProfile, engineFor, signUp, waitJob } from "./client.mjs";
import { measureFloor } from "./floor.mjs";
import { cpuMeter, rssSampler } from "./rss.mjs";
import { API_ENTRY, REPO, Stack, StackError, WORKER_BIN, rel, requireBuilt, runStack } from "../scripts/stack.mjs";

const DATA = path.join(REPO, ".data", "bench-control");
const PLUGIN = "likeness_worker.bench.noop_engines";
const GOALS = { accepted: 1000, completed: 100, dispatchP99: 25, progressP99: 50, progressPerS: 10, getWhileWritingP99: 50 };
const MB = 1024 * 1024;

const { values: args } = parseArgs({
  options: {
    jobs: { type: "string", default: "1000" },
    clients: { type: "string", default: "32" },
    idle: { type: "string", default: "40" },
    workers: { type: "string", default: "1" },
  },
});
const JOBS = Number(args.jobs);
const CLIENTS = Number(args.clients);
const IDLE = Number(args.idle);
const WORKERS = Number(args.workers);

const say = (msg) => process.stderr.write(`bench:control: ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const stack = new Stack(path.join(DATA, "logs"));
let infra;
let pool;
let stopped = false;

async function shutdown() {
  if (stopped) return;
  stopped = true;
  await pool?.end().catch(() => {});
  await stack.stop();
  await infra?.stop();
}

function quantile(values, q) {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
const fmt = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : "nan");

/** Follows a job over the WebSocket until its terminal snapshot; progress latencies and arrival times. */
function follow(url, token, jobId) {
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/v1/jobs/${jobId}/events?token=${encodeURIComponent(token)}`);
  const progress = []; // {latencyMs, at}
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new StackError(`job ${jobId}: no terminal snapshot over the WebSocket within 60 s`));
    }, 60_000);
    ws.on("message", (data) => {
      const now = Date.now();
      const u = JSON.parse(String(data));
      if (u.type === "progress") progress.push({ latencyMs: now - Date.parse(u.progress.at), at: now });
    });
    ws.on("close", () => {
      clearTimeout(timer);
      resolve(progress);
    });
    ws.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  const open = new Promise((resolve) => ws.once("open", resolve));
  return { open, done };
}

/** Most progress messages one job got within any one second. */
function maxPerSecond(times) {
  let best = 0;
  for (let i = 0, j = 0; j < times.length; j++) {
    while (times[j] - times[i] >= 1000) i++;
    best = Math.max(best, j - i + 1);
  }
  return best;
}

/** Where the dispatch time of each job went, from its rows (ms): api workflow, queue, worker DAG start. */
async function dispatchBreakdown(ids) {
  const { rows } = await pool.query(
    `SELECT j.id,
            extract(epoch FROM j.dispatched_at - j.created_at) * 1000 AS api_ms,
            extract(epoch FROM j.started_at - j.dispatched_at) * 1000 AS queue_ms,
            extract(epoch FROM min(s.started_at) - j.started_at) * 1000 AS dag_ms,
            extract(epoch FROM min(s.started_at) - j.created_at) * 1000 AS total_ms,
            extract(epoch FROM j.finished_at - j.created_at) * 1000 AS job_ms
       FROM jobs j JOIN job_steps s ON s.job_id = j.id AND s.name <> 'script'
      WHERE j.id = ANY($1) GROUP BY j.id`,
    [ids],
  );
  return rows.map((r) => ({ api: Number(r.api_ms), queue: Number(r.queue_ms), dag: Number(r.dag_ms), total: Number(r.total_ms), job: Number(r.job_ms) }));
}

async function main() {
  requireBuilt([
    [API_ENTRY, "the api build (npx tsc -b)"],
    [WORKER_BIN, "the worker venv (scripts/bootstrap.sh)"],
  ]);
  fs.mkdirSync(DATA, { recursive: true });
  infra = await startInfra({ dataDir: DATA });
  const env = {
    ...infra.env,
    WORKER_ENGINE_PLUGINS: PLUGIN,
    WORKER_METRICS_PORT: "0",
    WORKER_MAX_JOBS: process.env.WORKER_MAX_JOBS ?? "16",
    // noop steps take no device: many run side by side (real engines run one at a time).
    WORKER_STEP_THREADS: process.env.WORKER_STEP_THREADS ?? "8",
    LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
  };
  const { url, env: stackEnv } = await stack.startApiAndWorker(env, { storageDir: path.join(DATA, "objects") });
  for (let i = 2; i <= WORKERS; i++) stack.start(`worker${i}`, WORKER_BIN, [], stackEnv);
  pool = new pg.Pool({ connectionString: stackEnv.DATABASE_URL, max: 2 });
  say(`api on ${url}; ${WORKERS} worker(s) with ${PLUGIN}; logs in ${rel(stack.logsDir)}`);

  const samples = makeSamples(path.join(DATA, "inputs"));
  const token = await signUp(url, "control");

  // The workers advertise their engines: wait until every noop one is offered.
  const need = [...new Set([...VIDEO_KINDS, ...TRAIN_KINDS])];
  for (const t0 = Date.now(); ; ) {
    stack.check();
    const { engines, workers } = await api(url, token, "GET", "/v1/engines");
    const ok = need.every((k) => engines.some((e) => e.taskKind === k && e.name === "noop" && e.healthy));
    if (ok && workers >= WORKERS) break;
    if (Date.now() - t0 > 60_000) throw new StackError(`the workers did not advertise the noop engines within 60 s (GET /v1/engines: ${workers} workers)`);
    await sleep(200);
  }

  const profile = await createProfile(url, token, samples, "Control");
  const train = await api(url, token, "POST", `/v1/profiles/${profile.id}/train`, { engines: engineFor("noop", TRAIN_KINDS) });
  const trained = await waitJob(url, token, train.id, { stack, everyMs: 50 });
  if (trained.state !== "succeeded") throw new StackError(`training with the noop engines ${trained.state}: ${JSON.stringify(trained.error)}`);
  const video = { profileId: profile.id, narration: "Control plane.", engines: engineFor("noop", VIDEO_KINDS) };

  const apiPid = stack.services.find((s) => s.name === "api").child.pid;
  const workerPids = stack.services.filter((s) => s.name.startsWith("worker")).map((s) => s.child.pid);
  const rss = rssSampler({ api: [apiPid], worker: workerPids });

  // 1. Idle: one job at a time (a few first to warm up both processes).
  say(`idle: ${IDLE} jobs one at a time, each followed over the WebSocket`);
  const idleIds = [];
  const progressLatency = [];
  let progressMaxPerS = 0;
  for (let i = 0; i < (IDLE ? IDLE + 5 : 0); i++) {
    stack.check();
    const created = await api(url, token, "POST", "/v1/videos", video, 202);
    const watch = follow(url, token, created.job.id);
    const progress = await watch.done;
    const job = await api(url, token, "GET", `/v1/jobs/${created.job.id}`);
    if (job.state !== "succeeded") throw new StackError(`job ${job.id} ${job.state}: ${JSON.stringify(job.error)}`);
    const engines = new Set(job.steps.filter((s) => s.name !== "script").map((s) => s.engine));
    if (engines.size !== 1 || !engines.has("noop")) throw new StackError(`job ${job.id} ran engines ${[...engines].join(", ")}, not noop`);
    if (i < 5) continue;
    idleIds.push(job.id);
    progressLatency.push(...progress.map((p) => p.latencyMs));
    progressMaxPerS = Math.max(progressMaxPerS, maxPerSecond(progress.map((p) => p.at)));
  }
  const breakdown = await dispatchBreakdown(idleIds);
  const dispatch = breakdown.map((b) => b.total);

  // 2. Load: JOBS requests from CLIENTS concurrent clients.
  say(`load: ${JOBS} jobs from ${CLIENTS} concurrent clients`);
  const ids = [];
  const refused = new Map();
  // Processes that exit meanwhile (none should) lose their CPU from the sum; postgres backends
  // come and go, so theirs is a lower bound.
  const cpu = cpuMeter({ api: [apiPid], worker: workerPids }, { postgres: "postgres", redis: "redis-server" });
  let next = 0;
  const t0 = performance.now();
  const startedAt = Date.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next < JOBS) {
        next++;
        const res = await fetch(`${url}/v1/videos`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json", accept: "application/json" },
          body: JSON.stringify(video),
        });
        const text = await res.text();
        if (res.status === 202) ids.push(JSON.parse(text).job.id);
        else refused.set(res.status, (refused.get(res.status) ?? 0) + 1);
      }
    }),
  );
  const acceptSec = (performance.now() - t0) / 1000;
  const acceptedPerS = ids.length / acceptSec;
  if (refused.size) say(`refused: ${[...refused].map(([s, n]) => `${n}x HTTP ${s}`).join(", ")}`);
  say(`accepted ${ids.length} in ${fmt(acceptSec, 2)} s (${fmt(acceptedPerS, 0)}/s); waiting for them to complete`);

  let counts;
  for (const deadline = Date.now() + 10 * 60_000; ; ) {
    stack.check();
    const { rows } = await pool.query(
      `SELECT count(*) FILTER (WHERE state = 'succeeded')::int AS ok,
              count(*) FILTER (WHERE state IN ('failed', 'cancelled'))::int AS bad,
              extract(epoch FROM max(finished_at)) * 1000 AS last
         FROM jobs WHERE id = ANY($1)`,
      [ids],
    );
    counts = rows[0];
    if (counts.ok + counts.bad === ids.length) break;
    if (Date.now() > deadline) throw new StackError(`${ids.length - counts.ok - counts.bad} of ${ids.length} jobs still unfinished after 10 min`);
    await sleep(200);
  }
  const completeSec = (Number(counts.last) - startedAt) / 1000;
  const completedPerS = counts.ok / completeSec;
  const cpuUsed = cpu.stop();
  const loadBreakdown = await dispatchBreakdown(ids);
  const { peak, last } = rss.stop();

  // 4. GET /v1/jobs/:id while the built-in LLM writes a script (it loaded at the api's start).
  say("script: a topic written by the built-in LLM while GET /v1/jobs/:id is timed every 20 ms");
  const topic = await api(url, token, "POST", "/v1/videos", { profileId: profile.id, topic: "why the sea is salty", durationSec: 20, engines: { ...engineFor("noop", VIDEO_KINDS), llm: "local" } }, 202);
  const getMs = [];
  let scriptStep;
  for (const until = Date.now() + 120_000; Date.now() < until; ) {
    stack.check();
    const t = performance.now();
    const j = await api(url, token, "GET", `/v1/jobs/${topic.job.id}`);
    getMs.push(performance.now() - t);
    scriptStep = j.steps.find((s) => s.name === "script");
    if (scriptStep.state !== "pending" && scriptStep.state !== "running") break;
    await sleep(20);
  }
  if (scriptStep?.state !== "succeeded") throw new StackError(`the script step ${scriptStep?.state}: ${JSON.stringify(scriptStep?.error)}`);

  // 5. The frameworks' own floor, with the stack idle.
  say("floor: LangGraph.js, LangGraph and Dramatiq with empty nodes and actors");
  const floor = await measureFloor({
    databaseUrl: stackEnv.DATABASE_URL,
    redisUrl: stackEnv.REDIS_URL,
    python: path.join(REPO, "worker/.venv/bin/python"),
    cwd: path.join(REPO, "worker"),
  });
  const budgetMs = (os.cpus().length * 1000) / GOALS.completed;

  const p = (xs, q) => quantile(xs, q);
  const lines = [
    "",
    `control plane, ${os.cpus().length} cores, ${WORKERS} worker process(es), noop engines for ${VIDEO_KINDS.join(", ")}`,
    "",
    `  accepted    ${fmt(acceptedPerS, 0).padStart(7)} jobs/s   ${ids.length} POST /v1/videos → 202 in ${fmt(acceptSec, 2)} s from ${CLIENTS} clients (goal ≥ ${GOALS.accepted})`,
    `  completed   ${fmt(completedPerS, 0).padStart(7)} jobs/s   ${counts.ok} succeeded, ${counts.bad} failed, the last ${fmt(completeSec, 2)} s after the first POST (goal ≥ ${GOALS.completed})`,
    `  dispatch    p50 ${fmt(p(dispatch, 0.5))} ms, p99 ${fmt(p(dispatch, 0.99))} ms at idle, job created → first worker step started, ${dispatch.length} jobs (goal p99 ≤ ${GOALS.dispatchP99})`,
    `              of which api (created → dispatched) p50 ${fmt(p(breakdown.map((b) => b.api), 0.5))} / p99 ${fmt(p(breakdown.map((b) => b.api), 0.99))} ms, ` +
      `queue (→ job_started) ${fmt(p(breakdown.map((b) => b.queue), 0.5))} / ${fmt(p(breakdown.map((b) => b.queue), 0.99))} ms, ` +
      `worker DAG (→ first step) ${fmt(p(breakdown.map((b) => b.dag), 0.5))} / ${fmt(p(breakdown.map((b) => b.dag), 0.99))} ms`,
    `              a whole noop job at idle (created → finished) p50 ${fmt(p(breakdown.map((b) => b.job), 0.5), 0)} ms, p99 ${fmt(p(breakdown.map((b) => b.job), 0.99), 0)} ms`,
    `              under load p50 ${fmt(p(loadBreakdown.map((b) => b.total), 0.5), 0)} ms, p99 ${fmt(p(loadBreakdown.map((b) => b.total), 0.99), 0)} ms (jobs wait for a free worker slot)`,
    `  cpu         ${Object.entries(cpuUsed).map(([k, v]) => `${k} ${fmt((v * 1000) / ids.length)}`).join(", ")} ms per job under load ` +
      `(${fmt(Object.values(cpuUsed).reduce((a, b) => a + b, 0) * 1000 / ids.length)} in all; 100 jobs/s on ${os.cpus().length} cores needs ≤ ${fmt((os.cpus().length * 1000) / GOALS.completed, 0)})`,
    `  progress    p50 ${fmt(p(progressLatency, 0.5))} ms, p99 ${fmt(p(progressLatency, 0.99))} ms, worker publish → WebSocket client, ${progressLatency.length} messages at idle (goal p99 ≤ ${GOALS.progressP99}); ` +
      `at most ${progressMaxPerS} messages/s per job (goal ≤ ${GOALS.progressPerS})`,
    `  script      ${fmt((scriptStep.durationMs ?? 0) / 1000, 1)} s by llm/local (${scriptStep.outputs?.words} words); GET /v1/jobs/:id meanwhile p50 ${fmt(p(getMs, 0.5))} ms, p99 ${fmt(p(getMs, 0.99))} ms, ${getMs.length} requests (goal p99 ≤ ${GOALS.getWhileWritingP99})`,
    `  floor       ${fmt(floor.perJobMs)} ms of CPU per job in the frameworks alone, empty nodes and actors (budget for ${GOALS.completed} jobs/s on ${os.cpus().length} cores: ${fmt(budgetMs, 0)} ms in all):`,
    `              LangGraph.js workflow (start, interrupt, resume; Postgres checkpointer) ${fmt(floor.langgraphJsMs)} ms; ` +
      `LangGraph ${floor.steps}-step DAG ${fmt(floor.langgraphPyMs)} ms checkpointed per superstep (${fmt(floor.langgraphPyExitMs)} at exit only, ${fmt(floor.langgraphPyBareMs)} without); ` +
      `Dramatiq send + actor + result ${fmt(floor.dramatiqMs)} ms × ${floor.steps} steps`,
    `  memory      api ${fmt(peak.api / MB, 0)} MB peak (${fmt(last.api / MB, 0)} MB at the end), worker ${fmt(peak.worker / MB, 0)} MB peak (${fmt(last.worker / MB, 0)} MB at the end), RSS with child processes`,
    "",
  ];
  for (const l of lines) console.log(l);
  const line =
    `likeness-control accepted_per_s=${fmt(acceptedPerS, 0)} completed_per_s=${fmt(completedPerS, 0)} ` +
    `dispatch_p50_ms=${fmt(p(dispatch, 0.5))} dispatch_p99_ms=${fmt(p(dispatch, 0.99))} progress_p99_ms=${fmt(p(progressLatency, 0.99))}`;
  fs.writeFileSync(
    path.join(DATA, "result.json"),
    JSON.stringify({ line, acceptedPerS, completedPerS, dispatch, breakdown, progressLatency, progressMaxPerS, getWhileWritingMs: getMs, rss: { peak, last }, cpuSecondsUnderLoad: cpuUsed, floor, refused: Object.fromEntries(refused) }, null, 2) + "\n",
  );
  console.log(line);
  if (counts.bad) throw new StackError(`${counts.bad} of ${ids.length} jobs did not succeed`);
}

await runStack("bench:control", stack, { main, shutdown, say });
