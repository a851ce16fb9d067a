// The api, the worker and the web app as child processes, shared by the demo, the bench, the
// studio (npm start) and the browser tests: start them with their logs in a folder, wait until
// they answer, notice when one dies, show the last lines of their logs on failure, stop them.
// Also the step-timing table the demo and the bench print from GET /v1/jobs/:id.
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { stepNote } from "../packages/client/dist/index.js"; // the rule the CLI and the studio use for a step's note
import { freePort, watchdog } from "./infra.mjs";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const API_ENTRY = path.join(REPO, "apps/api/dist/server.js");
export const WORKER_BIN = path.join(REPO, "worker/.venv/bin/likeness-worker");
export const CLI = path.join(REPO, "apps/cli/dist/main.js");
export const WEB_DIR = path.join(REPO, "apps/web");
export const NEXT_BIN = path.join(REPO, "node_modules/next/dist/bin/next");

export const rel = (p) => path.relative(process.cwd(), p) || ".";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A failure worth one line to the user (no stack trace): a service died, a job failed... */
export class StackError extends Error {}

/** Refuse to start when a build output is missing, naming what makes it. */
export function requireBuilt(entries) {
  for (const [file, what] of entries) {
    if (!fs.existsSync(file)) throw new StackError(`${rel(file)} is missing: ${what}`);
  }
}

/**
 * The api origin the web app's build sends /v1 to (its rewrite is fixed by `next build`, see
 * apps/web/next.config.ts), read from the build itself; throws when there is no build.
 */
export function builtApiUrl() {
  const manifest = path.join(WEB_DIR, ".next", "routes-manifest.json");
  let rewrites;
  try {
    rewrites = JSON.parse(fs.readFileSync(manifest, "utf8")).rewrites;
  } catch {
    throw new StackError(`${rel(manifest)} is missing: the web app's build (bash scripts/bootstrap.sh)`);
  }
  const all = Array.isArray(rewrites) ? rewrites : [...(rewrites?.beforeFiles ?? []), ...(rewrites?.afterFiles ?? []), ...(rewrites?.fallback ?? [])];
  const v1 = all.find((r) => r.source.startsWith("/v1"));
  if (!v1) throw new StackError(`the web app's build has no /v1 rewrite (${rel(manifest)})`);
  return new URL(v1.destination).origin;
}

export class Stack {
  /** @param {string} logsDir  where `<name>.log` of each service goes */
  constructor(logsDir) {
    this.logsDir = logsDir;
    /** @type {{name: string, child: import('node:child_process').ChildProcess, log: string}[]} */
    this.services = [];
    fs.mkdirSync(logsDir, { recursive: true });
  }

  start(name, cmd, args, env) {
    const log = path.join(this.logsDir, `${name}.log`);
    const fd = fs.openSync(log, "w");
    // Own process group: ^C reaches the launcher, which stops the services in order (api/worker
    // before the databases). A watchdog stops them if the launcher itself is killed.
    const child = spawn(cmd, args, { cwd: REPO, env, detached: true, stdio: ["ignore", fd, fd] });
    fs.closeSync(fd);
    child.exitInfo = null;
    child.on("exit", (code, signal) => (child.exitInfo = { code, signal }));
    const dog = watchdog(process.pid, "TERM", [child.pid]);
    // Once the service is gone its watchdog must not outlive it (the pid could be reused).
    child.on("exit", () => {
      try {
        process.kill(dog, "SIGKILL");
      } catch { /* already gone */ }
    });
    this.services.push({ name, child, log });
    return child;
  }

  /**
   * The api and the worker, with the databases of `infraEnv` (which may add other variables, e.g.
   * REDIS_KEY_PREFIX); resolves once the api answers /healthz. The api listens on 127.0.0.1:`port`,
   * or a free port when none is given (the web app's build needs a known one). Returns the api's
   * URL and the environment both run with.
   */
  async startApiAndWorker(infraEnv, { storageDir, port: wanted }) {
    const port = wanted ?? (await freePort());
    const url = `http://127.0.0.1:${port}`;
    const env = {
      ...process.env,
      ...infraEnv,
      API_HOST: "127.0.0.1",
      API_PORT: String(port),
      STORAGE_DRIVER: process.env.STORAGE_DRIVER ?? "local",
      STORAGE_DIR: process.env.STORAGE_DIR ?? storageDir,
      LOG_LEVEL: process.env.LOG_LEVEL ?? "info",
    };
    this.start("api", process.execPath, [API_ENTRY], env);
    this.start("worker", WORKER_BIN, [], env);
    await this.waitHealthy(url);
    this.check();
    return { url, env };
  }

  /**
   * The web app (`next start` on apps/web's build) on 127.0.0.1:`port`; resolves with its URL once
   * it answers. Refuses a build whose /v1 rewrite goes elsewhere than `apiUrl`.
   */
  async startWeb({ port, apiUrl, env }) {
    const built = builtApiUrl();
    if (built !== new URL(apiUrl).origin) {
      throw new StackError(`the web app was built for the api at ${built}, not ${apiUrl}: rebuild it with LIKENESS_API_URL=${apiUrl} bash scripts/bootstrap.sh`);
    }
    requireBuilt([[NEXT_BIN, "next (npm ci)"]]);
    const url = `http://127.0.0.1:${port}`;
    this.start("web", process.execPath, [NEXT_BIN, "start", WEB_DIR, "-p", String(port), "-H", "127.0.0.1"], {
      ...env,
      NODE_ENV: "production", // not a test runner's "test"
      LIKENESS_API_URL: apiUrl,
      NEXT_TELEMETRY_DISABLED: "1",
    });
    await this.waitAnswers("web", url, 60000);
    return url;
  }

  /** Resolves once the worker has logged that it consumes its queues ("worker <name>: queues …"). */
  async waitWorkerReady(timeoutMs = 90000) {
    const worker = this.services.find((s) => s.name === "worker");
    if (!worker) throw new Error("no worker was started");
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.check();
      let log = "";
      try {
        log = fs.readFileSync(worker.log, "utf8");
      } catch { /* not written yet */ }
      if (/: queues /.test(log)) return;
      if (Date.now() > deadline) throw new StackError(`the worker did not report ready in ${timeoutMs / 1000} s — see ${rel(worker.log)}`);
      await sleep(200);
    }
  }

  /** Rejects with a StackError as soon as one of the services exits (a running studio's watch). */
  whenOneExits() {
    return new Promise((_, reject) => {
      const fail = () => {
        try {
          this.check();
        } catch (err) {
          reject(err);
        }
      };
      for (const s of this.services) s.child.once("exit", fail);
      fail();
    });
  }

  /** Throws when a service has exited: nothing that follows can work. */
  check() {
    for (const s of this.services) {
      if (s.child.exitInfo) {
        const { code, signal } = s.child.exitInfo;
        throw new StackError(`the ${s.name} exited (${code ?? signal}) — see ${rel(s.log)}`);
      }
    }
  }

  async waitHealthy(url, timeoutMs = 90000) {
    await this.waitAnswers("api", `${url}/healthz`, timeoutMs);
  }

  /** Polls `url` until it answers 200; fails early when a service exits. */
  async waitAnswers(name, url, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
      this.check();
      try {
        const res = await fetch(url);
        if (res.ok) return;
        last = `HTTP ${res.status} ${(await res.text()).slice(0, 200)}`;
      } catch (err) {
        last = err.cause?.code ?? err.message;
      }
      if (Date.now() > deadline) throw new StackError(`the ${name} did not answer ${url} in ${timeoutMs / 1000} s (${last}) — see ${rel(path.join(this.logsDir, `${name}.log`))}`);
      await sleep(200);
    }
  }

  async stop() {
    await Promise.all(
      this.services.map(async ({ child }) => {
        if (child.exitInfo) return;
        const gone = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 20000);
        await gone;
        clearTimeout(t);
      }),
    );
  }

  /** The last lines of each service's log, for a failure report on stderr. */
  writeLogTails(lines = 15) {
    for (const s of this.services) {
      let tail = [];
      try {
        tail = fs.readFileSync(s.log, "utf8").trimEnd().split("\n").slice(-lines);
      } catch { /* no log yet */ }
      if (tail.join("").trim()) process.stderr.write(`\n--- last lines of ${rel(s.log)} ---\n${tail.join("\n")}\n`);
    }
    process.stderr.write(`\nlogs: ${this.services.map((s) => rel(s.log)).join(", ")}\n`);
  }
}

/** A job's steps as GET /v1/jobs/:id records them: engine, state, seconds, reused. */
export function stepTable(title, job) {
  const rows = job.steps.map((s) => [
    s.name, s.engine ?? "", s.state, s.durationMs == null ? "" : (s.durationMs / 1000).toFixed(2), s.reused ? "yes" : "",
    (s.state === "succeeded" && stepNote(s.outputs)) || "",
  ]);
  const total = job.finishedAt ? ((Date.parse(job.finishedAt) - Date.parse(job.createdAt)) / 1000).toFixed(2) : "";
  const head = ["step", "engine", "state", "seconds", "reused", "note"];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r) => r.map((c, i) => (i === 3 ? c.padStart(w[i]) : c.padEnd(w[i]))).join("  ").trimEnd();
  return [
    `${title} (job ${job.id}, ${job.state}, ${total} s from queued to finished)`,
    "  " + fmt(head),
    "  " + w.map((n) => "-".repeat(n)).join("  "),
    ...rows.map((r) => "  " + fmt(r)),
  ].join("\n");
}


/**
 * Runs `main` as the demo and the bench do: ^C (or TERM, HUP) stops everything through
 * `shutdown` and exits 130, and what fails after it is not reported; a failure prints
 * "<name> FAILED" with the services' last log lines, stops everything and exits 1.
 */
/**
 * A launcher's shutdown, done once however often it is called: the services, then the databases
 * `infra()` started; one line says what stopped and how long it took.
 */
export function shutdownOnce(stack, infra, say, what) {
  let done;
  return () =>
    (done ??= (async () => {
      const t0 = performance.now();
      await stack.stop();
      const started = infra();
      await started?.stop();
      say(`stopped ${what}${started?.started.length ? ` and ${started.started.join(" + ")}` : ""} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    })());
}

export async function runStack(name, stack, { main, shutdown, say, onSignal = () => {} }) {
  let stopping = false;
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(sig, () => {
      if (stopping) return;
      stopping = true;
      say(`${sig}: shutting down`);
      onSignal();
      shutdown().finally(() => process.exit(130));
    });
  }
  try {
    await main();
    await shutdown();
  } catch (err) {
    if (stopping) await new Promise(() => {}); // the signal handler stops everything and exits 130
    process.stderr.write(`\n${name} FAILED: ${err instanceof StackError ? err.message : err.stack ?? String(err)}\n`);
    if (stack.services.length) stack.writeLogTails();
    await shutdown().catch(() => {});
    process.exit(1);
  }
}
