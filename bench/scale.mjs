#!/usr/bin/env node
// `npm run bench:scale`: how completed jobs/s grow with worker processes. The real api and workers
// (private Postgres and Redis when DATABASE_URL/REDIS_URL are unset, data in .data/bench-scale), with
// the bench-only `sleep` engine of every task kind (WORKER_ENGINE_PLUGINS=
// likeness_worker.bench.sleep_engines; no worker loads it by default), chosen per request: each
// step sleeps 200 ms, standing in for its time on a GPU without using the CPU. Every worker runs
// one step at a time (WORKER_STEP_THREADS=1), as a worker with one card does.
//
// For 1, 2, 4 and 8 worker processes in turn (the first one stays; the others start for their
// round and stop after it), `--jobs` videos (default: enough for the window below) are posted at
// once, and completed jobs/s is measured in steady state:
//   - the window opens at the completion of the first `workers × WORKER_MAX_JOBS` jobs: the
//     bridges took that many at once when the jobs came, and until the first generation of them
//     has finished the steps running are not the steady mix;
//   - it closes when the last job was taken from the job stream (its job_started): from then on
//     fewer jobs are in flight than the bridges can drive, and the workers run out of steps (the tail);
//   - completed jobs/s is the steps that ended inside the window, over its length, over the 6 steps
//     of a video. In steady state jobs complete as fast as their steps do, but not evenly: a
//     bridge takes WORKER_MAX_JOBS jobs at once, they move through their steps side by side and
//     end within moments of one another, so counting whole jobs in a window of a few bursts is
//     off by up to a burst (about 25 % in 20 s); the jobs that completed in it are printed too.
// Inside that window every worker should be busy: the sleep engine records which worker process
// ran each step and when (job_steps.outputs.ran), and the Dramatiq step queue's depth is sampled
// every 20 ms (LLEN <prefix>:dramatiq:cpu). Per worker, the bench prints the steps it ran, the
// share of the window it spent in steps, and how long it sat idle while a step waited in the queue
// (in Redis, not taken: with prefetch = 1 a busy worker holds no other), and flags a worker below
// its fair share. WORKER_MAX_JOBS (jobs whose DAG one process drives) defaults to 4 here: 4 jobs
// per one-step worker leave it a ready step at nearly every moment, so DAG driving is not the limit.
//
// Ends with one line to compare runs by:
//   likeness-scale w1=… w2=… w4=… w8=… efficiency8=…      (efficiency8 = w8 / (8 × w1))
// Options: --workers 1,2,4,8  --jobs N (per round; default from --window-s)  --window-s S (20)
//          --step-ms MS (200)  --max-jobs N (WORKER_MAX_JOBS, 4)  --clients N (16 posting at once).
// Exit 0 when the run completed (an efficiency short of its goal, 0.9, is reported, not an error),
// 1 when the stack or a job failed.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import pg from "pg";
import { startInfra } from "../scripts/infra.mjs";
import { makeSamples } from "../scripts/samples.mjs";
import { TRAIN_KINDS, VIDEO_KINDS, api, createProfile, engineFor, signUp, waitJob } from "./client.mjs";
import { cpuMeter } from "./rss.mjs";
import { API_ENTRY, REPO, Stack, StackError, WORKER_BIN, rel, requireBuilt, runStack } from "../scripts/stack.mjs";

const DATA = path.join(REPO, ".data", "bench-scale");
const PLUGIN = "likeness_worker.bench.sleep_engines";
const VIDEO_STEPS = 6; // the sadtalker DAG (worker/likeness_worker/graphs/dag.py), all on the workers
const GOAL = 0.9;
const FAIR = 0.8; // a worker below this share of the mean (steps, or time in steps) is flagged
const SAMPLE_MS = 20;

const { values: args } = parseArgs({
  options: {
    workers: { type: "string", default: "1,2,4,8" },
    jobs: { type: "string" },
    "window-s": { type: "string", default: "20" },
    "step-ms": { type: "string", default: "200" },
    "max-jobs": { type: "string", default: process.env.WORKER_MAX_JOBS ?? "4" },
    clients: { type: "string", default: "16" },
  },
});
const ROUNDS = args.workers.split(",").map(Number);
const WINDOW_S = Number(args["window-s"]);
const STEP_MS = Number(args["step-ms"]);
const MAX_JOBS = Number(args["max-jobs"]);
const CLIENTS = Number(args.clients);
if (ROUNDS.some((n) => !(n >= 1)) || !(STEP_MS > 0) || !(MAX_JOBS >= 1) || !(WINDOW_S > 0)) {
  throw new Error("usage: node bench/scale.mjs [--workers 1,2,4,8] [--jobs N] [--window-s S] [--step-ms MS] [--max-jobs N] [--clients N]");
}

const say = (msg) => process.stderr.write(`bench:scale: ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmt = (v, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : "nan");
const pct = (v) => `${fmt(v * 100, 0)} %`;

const stack = new Stack(path.join(DATA, "logs"));
let round; // the extra workers of the current round: a Stack of their own, stopped after it
let infra;
let pool;
let redis;
let stopped = false;

async function shutdown() {
  if (stopped) return;
  stopped = true;
  redis?.disconnect();
  await pool?.end().catch(() => {});
  await round?.stop();
  await stack.stop();
  await infra?.stop();
}

const check = () => {
  stack.check();
  round?.check();
};

/** The workers whose engine advert is live (the set of ids, each with its own key and TTL). */
async function advertising(prefix) {
  const ids = await redis.smembers(`${prefix}:workers`);
  const live = await Promise.all(ids.map((id) => redis.exists(`${prefix}:workers:${id}`)));
  return ids.filter((_, i) => live[i]);
}

/** Samples the depth of a Dramatiq queue every SAMPLE_MS until stop(): [{at, depth}]. */
function queueSampler(key) {
  const samples = [];
  let on = true;
  const done = (async () => {
    while (on) {
      const at = Date.now();
      samples.push({ at, depth: await redis.llen(key) });
      await sleep(Math.max(0, SAMPLE_MS - (Date.now() - at)));
    }
  })();
  return {
    async stop() {
      on = false;
      await done;
      return samples;
    },
  };
}

/** Total and idle jiffies of the whole machine (/proc/stat): everyone's load, other users' too. */
function machineCpu() {
  const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  return { total: f.reduce((a, b) => a + b, 0), idle: f[3] + (f[4] ?? 0) };
}

async function runRound(n, url, token, video, env, prefix) {
  round = new Stack(path.join(DATA, "logs", `w${n}`));
  for (let i = 2; i <= n; i++) round.start(`worker${i}`, WORKER_BIN, [], env);
  for (const t0 = Date.now(); (await advertising(prefix)).length !== n; ) {
    check();
    if (Date.now() - t0 > 90_000) throw new StackError(`${n} workers did not all advertise within 90 s (${(await advertising(prefix)).length} did)`);
    await sleep(100);
  }
  // Each worker gets its first message at most one idle poll after the jobs come: let them all
  // reach their polling loop (the advert comes a little before).
  await sleep(1000);

  const ideal = n / ((VIDEO_STEPS * STEP_MS) / 1000); // jobs/s with every worker always in a step
  const jobs = Number(args.jobs ?? 2 * n * MAX_JOBS + Math.ceil(ideal * WINDOW_S));
  const pids = [stack.services.find((s) => s.name === "worker").child.pid, ...round.services.map((s) => s.child.pid)];
  const cpu = cpuMeter({ api: [stack.services.find((s) => s.name === "api").child.pid], workers: pids }, { postgres: "postgres", redis: "redis-server" });
  const machine0 = machineCpu();
  const depth = queueSampler(`${prefix}:dramatiq:cpu`);

  const ids = [];
  const postedAt = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(CLIENTS, jobs) }, async () => {
      while (next < jobs) {
        next++;
        ids.push((await api(url, token, "POST", "/v1/videos", video, 202)).job.id);
      }
    }),
  );
  say(`${n} worker(s): ${jobs} jobs posted; ideal ${fmt(ideal)} jobs/s, about ${fmt(jobs / ideal, 0)} s`);

  const limitMs = Math.max(120_000, (4 * jobs * 1000) / ideal);
  for (const deadline = Date.now() + limitMs; ; ) {
    check();
    const { rows } = await pool.query(`SELECT count(*) FILTER (WHERE state IN ('succeeded', 'failed', 'cancelled'))::int AS done FROM jobs WHERE id = ANY($1)`, [ids]);
    if (rows[0].done === ids.length) break;
    if (Date.now() > deadline) throw new StackError(`${n} workers: ${ids.length - rows[0].done} of ${ids.length} jobs unfinished after ${fmt(limitMs / 1000, 0)} s`);
    await sleep(200);
  }
  const samples = await depth.stop();
  const cpuUsed = cpu.stop();
  const machine1 = machineCpu();
  await round.stop();
  round = undefined;

  const { rows: jobRows } = await pool.query(
    `SELECT state, extract(epoch FROM started_at) * 1000 AS started, extract(epoch FROM finished_at) * 1000 AS finished, error
       FROM jobs WHERE id = ANY($1)`,
    [ids],
  );
  const bad = jobRows.filter((j) => j.state !== "succeeded");
  if (bad.length) throw new StackError(`${n} workers: ${bad.length} of ${ids.length} jobs did not succeed, e.g. ${bad[0].state}: ${JSON.stringify(bad[0].error)}`);
  const { rows: stepRows } = await pool.query(
    `SELECT job_id, name, engine, outputs->'ran' AS ran FROM job_steps WHERE job_id = ANY($1) AND name <> 'script'`,
    [ids],
  );
  const notSleep = stepRows.filter((s) => s.engine !== "sleep" || !s.ran);
  if (notSleep.length) throw new StackError(`${n} workers: step ${notSleep[0].name} ran ${notSleep[0].engine}, not the sleep engine`);
  const stepsPerJob = new Map(ids.map((id) => [id, 0]));
  for (const { job_id: id } of stepRows) stepsPerJob.set(id, stepsPerJob.get(id) + 1);
  const short = [...stepsPerJob].find(([, count]) => count !== VIDEO_STEPS);
  if (short) throw new StackError(`${n} workers: job ${short[0]} ran ${short[1]} worker steps, not ${VIDEO_STEPS}`);

  // The steady-state window (see the header).
  const finished = jobRows.map((j) => Number(j.finished)).sort((a, b) => a - b);
  const from = finished[n * MAX_JOBS - 1];
  const to = Math.max(...jobRows.map((j) => Number(j.started)));
  if (!(to - from >= 2000)) throw new StackError(`${n} workers: no steady state to measure (window ${fmt((to - from) / 1000, 1)} s): post more jobs (--jobs, --window-s)`);
  const windowS = (to - from) / 1000;
  const stepsEnded = stepRows.filter(({ ran }) => ran.endedAtMs > from && ran.endedAtMs <= to).length;
  const rate = stepsEnded / VIDEO_STEPS / windowS;
  const completed = finished.filter((t) => t > from && t <= to).length;
  // End to end, the ramp and the tail included (they grow with n: fewer jobs per worker overlap).
  const overall = ids.length / ((finished.at(-1) - postedAt) / 1000);

  // Per worker: steps, time in steps inside the window, idle while a step waited in the queue.
  const byWorker = new Map();
  for (const { ran } of stepRows) {
    if (!byWorker.has(ran.worker)) byWorker.set(ran.worker, []);
    byWorker.get(ran.worker).push([ran.startedAtMs, ran.endedAtMs]);
  }
  const inWindow = samples.filter((s) => s.at > from && s.at <= to);
  const queuedSamples = inWindow.filter((s) => s.depth > 0);
  const workers = [...byWorker].map(([name, spans]) => {
    spans.sort((a, b) => a[0] - b[0]);
    const busyMs = spans.reduce((sum, [s, e]) => sum + Math.max(0, Math.min(e, to) - Math.max(s, from)), 0);
    let i = 0;
    let idleQueued = 0;
    for (const s of queuedSamples) {
      while (i < spans.length && spans[i][1] < s.at) i++;
      if (!(i < spans.length && spans[i][0] <= s.at)) idleQueued++;
    }
    return {
      name,
      steps: spans.length,
      windowSteps: spans.filter(([s]) => s >= from && s < to).length,
      busy: busyMs / (to - from),
      idleWhileQueued: queuedSamples.length ? idleQueued / queuedSamples.length : 0,
    };
  });
  const missing = n - workers.length;
  const meanSteps = workers.reduce((a, w) => a + w.windowSteps, 0) / n;
  const meanBusy = workers.reduce((a, w) => a + w.busy, 0) / n;
  for (const w of workers) w.flag = w.windowSteps < FAIR * meanSteps || w.busy < FAIR * meanBusy;
  const machineBusy = 1 - (machine1.idle - machine0.idle) / (machine1.total - machine0.total);
  return {
    workers: n, jobs, rate, overall, completed, ideal, windowS, workerStats: workers, missing,
    queued: queuedSamples.length / Math.max(1, inWindow.length),
    meanDepth: inWindow.reduce((a, s) => a + s.depth, 0) / Math.max(1, inWindow.length),
    cpuMsPerJob: Object.fromEntries(Object.entries(cpuUsed).map(([k, v]) => [k, (v * 1000) / jobs])),
    machineBusy,
  };
}

async function main() {
  requireBuilt([
    [API_ENTRY, "the api build (npx tsc -b)"],
    [WORKER_BIN, "the worker venv (scripts/bootstrap.sh)"],
  ]);
  // A fresh database each run: the rows and checkpoints of earlier runs slow the api's queries
  // (runs on a 311 MB leftover database measured 0.86 where a fresh one gave 0.88).
  fs.rmSync(DATA, { recursive: true, force: true });
  fs.mkdirSync(stack.logsDir, { recursive: true });
  infra = await startInfra({ dataDir: DATA });
  const env = {
    ...infra.env,
    WORKER_ENGINE_PLUGINS: PLUGIN,
    LIKENESS_SLEEP_STEP_MS: String(STEP_MS),
    WORKER_METRICS_PORT: "0",
    WORKER_MAX_JOBS: String(MAX_JOBS),
    WORKER_STEP_THREADS: "1", // one step at a time: a worker with one card
    LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
  };
  const { url, env: stackEnv } = await stack.startApiAndWorker(env, { storageDir: path.join(DATA, "objects") });
  const prefix = stackEnv.REDIS_KEY_PREFIX ?? "lk";
  pool = new pg.Pool({ connectionString: stackEnv.DATABASE_URL, max: 2 });
  redis = new Redis(stackEnv.REDIS_URL, { maxRetriesPerRequest: 3 });
  say(`api on ${url}; workers with ${PLUGIN} (${STEP_MS} ms a step, WORKER_MAX_JOBS=${MAX_JOBS}); logs in ${rel(stack.logsDir)}`);

  const samples = makeSamples(path.join(DATA, "inputs"));
  const token = await signUp(url, "scale");
  for (const t0 = Date.now(); (await advertising(prefix)).length < 1; ) {
    check();
    if (Date.now() - t0 > 60_000) throw new StackError("the worker did not advertise its engines within 60 s");
    await sleep(200);
  }
  const profile = await createProfile(url, token, samples, "Scale");
  const train = await api(url, token, "POST", `/v1/profiles/${profile.id}/train`, { engines: engineFor("sleep", TRAIN_KINDS) });
  const trained = await waitJob(url, token, train.id, { stack, everyMs: 100 });
  if (trained.state !== "succeeded") throw new StackError(`training with the sleep engines ${trained.state}: ${JSON.stringify(trained.error)}`);
  const video = { profileId: profile.id, narration: "Scale out.", engines: engineFor("sleep", VIDEO_KINDS) };

  const results = [];
  for (const n of ROUNDS) results.push(await runRound(n, url, token, video, stackEnv, prefix));

  const lines = ["", `worker scaling, ${os.cpus().length} cores, sleep engine ${STEP_MS} ms a step, ${VIDEO_STEPS} steps a video, WORKER_STEP_THREADS=1, WORKER_MAX_JOBS=${MAX_JOBS}`, ""];
  const base = results.find((r) => r.workers === 1);
  for (const r of results) {
    const eff = base ? r.rate / (r.workers * base.rate) : NaN;
    lines.push(
      `  ${String(r.workers).padStart(2)} worker(s)  ${fmt(r.rate).padStart(6)} jobs/s  (ideal ${fmt(r.ideal)}, ${pct(r.rate / r.ideal)} of it; ` +
        `efficiency vs 1 worker ${fmt(eff)}), ${r.jobs} jobs, steady window ${fmt(r.windowS, 1)} s with ${r.completed} jobs completed in it`,
      `      end to end (posting to the last job's end, ramp and tail included): ${fmt(r.overall)} jobs/s`,
      `      step queue non-empty ${pct(r.queued)} of the window (mean depth ${fmt(r.meanDepth, 1)}); ` +
        `CPU per job: ${Object.entries(r.cpuMsPerJob).map(([k, v]) => `${k} ${fmt(v, 1)} ms`).join(", ")}; machine ${pct(r.machineBusy)} busy (all processes)`,
    );
    for (const w of r.workerStats) {
      lines.push(
        `      ${w.name.padEnd(28)} ${String(w.steps).padStart(5)} steps (${w.windowSteps} in the window), in steps ${pct(w.busy)} of it, ` +
          `idle ${pct(w.idleWhileQueued)} of the time a step was queued${w.flag ? `   << below ${FAIR} of the mean` : ""}`,
      );
    }
    if (r.missing > 0) lines.push(`      ${r.missing} worker(s) ran no step at all   << idle`);
  }
  const w = (n) => results.find((r) => r.workers === n)?.rate;
  const efficiency8 = w(8) / (8 * w(1));
  lines.push("", `  efficiency at 8 workers ${fmt(efficiency8)} (goal ≥ ${GOAL})${efficiency8 >= GOAL ? "" : "  << short of the goal"}`, "");
  for (const l of lines) console.log(l);
  const line = `likeness-scale ${ROUNDS.map((n) => `w${n}=${fmt(w(n))}`).join(" ")} efficiency8=${fmt(efficiency8)}`;
  fs.writeFileSync(path.join(DATA, "result.json"), JSON.stringify({ line, stepMs: STEP_MS, maxJobs: MAX_JOBS, cores: os.cpus().length, results }, null, 2) + "\n");
  console.log(line);
}

await runStack("bench:scale", stack, { main, shutdown, say });
