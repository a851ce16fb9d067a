// One real Likeness stack per test file: the built api (`node apps/api/dist/server.js`) and the
// worker (`worker/.venv/bin/likeness-worker`) as child processes, on a fresh database
// `lk_e2e_<rand>` of DATABASE_URL's server, a random REDIS_KEY_PREFIX on REDIS_URL, a temp
// STORAGE_DIR and a free API_PORT. Each process logs to a file in a temp folder; the tails are
// printed when a test fails. close() stops both, drops the database, deletes the prefix's keys
// (SCAN, never FLUSHDB) and removes the temp folders.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { onTestFailed } from "vitest";
import { Redis } from "ioredis";
import pg from "pg";
import { freePort } from "../../scripts/infra.mjs";
import { API_ENTRY, REPO, WORKER_BIN } from "./paths.js";

export const DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test";
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function baseUrls(): { databaseUrl: string; redisUrl: string } {
  return {
    databaseUrl: process.env.DATABASE_URL || DEFAULT_DATABASE_URL,
    redisUrl: process.env.REDIS_URL || DEFAULT_REDIS_URL,
  };
}

/** Why the real stack cannot run here, or undefined when it can. */
export async function missingPrerequisite(): Promise<string | undefined> {
  for (const [file, what] of [
    [API_ENTRY, "the api build (npx tsc -b)"],
    [WORKER_BIN, "the worker venv (scripts/bootstrap.sh)"],
  ] as const) {
    if (!fs.existsSync(file)) return `${path.relative(REPO, file)} is missing: ${what}`;
  }
  const { databaseUrl, redisUrl } = baseUrls();
  return unreachable(databaseUrl, redisUrl);
}

/** A new, empty database `<prefix>_<random>` on the server of `adminUrl`: its name and URL. */
export async function freshDatabase(adminUrl: string, prefix: string): Promise<{ name: string; url: string }> {
  const name = `${prefix}_${randomBytes(5).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { name, url: url.toString() };
}

/** Why Postgres or Redis cannot be used at these URLs, or undefined when both answer. */
export async function unreachable(databaseUrl: string, redisUrl: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query("select 1");
  } catch (err) {
    return `Postgres is unreachable at ${redact(databaseUrl)}: ${(err as Error).message}`;
  } finally {
    await client.end().catch(() => undefined);
  }
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 3000, retryStrategy: () => null });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    return `Redis is unreachable at ${redact(redisUrl)}: ${(err as Error).message}`;
  } finally {
    redis.disconnect();
  }
  return undefined;
}

/**
 * True when the e2e tests of this file must be skipped (a laptop without Postgres/Redis or without
 * the builds). With CI set, a missing prerequisite is an error instead.
 */
export async function skipE2e(): Promise<boolean> {
  const missing = await missingPrerequisite();
  if (!missing) return false;
  if (process.env.CI) throw new Error(`e2e: ${missing} (CI is set, so this is a failure, not a skip)`);
  console.warn(`e2e: skipped: ${missing}`);
  return true;
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@");
}

/** Stops the process group `pgid` if this test process dies without cleaning up (a shell loop). */
function watchdog(pgid: number): ChildProcess {
  const script = `p=$1; g=$2; while kill -0 "$p" 2>/dev/null; do sleep 1; done; kill -KILL "-$g" 2>/dev/null; exit 0`;
  const child = spawn("sh", ["-c", script, "likeness-e2e-watchdog", String(process.pid), String(pgid)], { detached: true, stdio: "ignore" });
  child.unref();
  return child;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A child process in its own process group (so ffmpeg/espeak children go with it). */
export class Service {
  child: ChildProcess | undefined;
  exit: ExitInfo | undefined;
  private exited: Promise<ExitInfo> | undefined;
  private guard: ChildProcess | undefined;
  /** Each start appends to the same log, with a header line. */
  starts = 0;

  constructor(
    readonly name: string,
    readonly cmd: string,
    readonly args: string[],
    public env: NodeJS.ProcessEnv,
    readonly logFile: string,
  ) {}

  get running(): boolean {
    return this.child !== undefined && this.exit === undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    if (this.running) throw new Error(`${this.name} is already running`);
    this.starts += 1;
    fs.appendFileSync(this.logFile, `\n===== e2e: start #${this.starts} of ${this.name} at ${new Date().toISOString()} =====\n`);
    const fd = fs.openSync(this.logFile, "a");
    const child = spawn(this.cmd, this.args, { cwd: REPO, env: this.env, detached: true, stdio: ["ignore", fd, fd] });
    fs.closeSync(fd);
    this.child = child;
    this.exit = undefined;
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exit = { code, signal };
        fs.appendFileSync(this.logFile, `===== e2e: ${this.name} exited (${code ?? signal}) =====\n`);
        this.guard?.kill("SIGKILL");
        resolve(this.exit);
      });
    });
    if (child.pid) this.guard = watchdog(child.pid);
  }

  private signalGroup(signal: NodeJS.Signals): void {
    if (!this.child?.pid || !this.running) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      /* already gone */
    }
  }

  /** SIGKILL the whole process group and wait for the exit. */
  async kill(): Promise<ExitInfo | undefined> {
    if (!this.running) return this.exit;
    this.signalGroup("SIGKILL");
    return this.exited;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<ExitInfo | undefined> {
    if (!this.running) return this.exit;
    this.signalGroup("SIGTERM");
    const timer = setTimeout(() => this.signalGroup("SIGKILL"), graceMs);
    const info = await this.exited;
    clearTimeout(timer);
    // Leftover children of the group (ffmpeg) go too.
    try {
      if (this.child?.pid) process.kill(-this.child.pid, "SIGKILL");
    } catch {
      /* none */
    }
    return info;
  }

  tail(lines = 80): string {
    try {
      return fs.readFileSync(this.logFile, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }

  log(): string {
    try {
      return fs.readFileSync(this.logFile, "utf8");
    } catch {
      return "";
    }
  }
}

export interface StackOptions {
  /** Used in log file names and messages. */
  name: string;
  /** Extra environment of the worker only, e.g. { LIKENESS_TEST_FAULTS: "tts:1" }. */
  workerEnv?: Record<string, string>;
  /** Extra environment of the api only. */
  apiEnv?: Record<string, string>;
}

export class Stack {
  readonly api: Service;
  readonly worker: Service;
  /** Admin connection to the stack's own database (for checks the HTTP API cannot show). */
  db!: pg.Client;
  /** A Redis connection for checks. */
  redis!: Redis;
  private closed = false;

  private constructor(
    readonly name: string,
    readonly url: string,
    readonly port: number,
    readonly databaseName: string,
    readonly databaseUrl: string,
    readonly adminDatabaseUrl: string,
    readonly redisUrl: string,
    readonly redisKeyPrefix: string,
    readonly tmpDir: string,
    readonly storageDir: string,
    readonly logDir: string,
    env: NodeJS.ProcessEnv,
    opts: StackOptions,
  ) {
    this.api = new Service("api", process.execPath, [API_ENTRY], { ...env, ...opts.apiEnv }, path.join(logDir, "api.log"));
    this.worker = new Service("worker", WORKER_BIN, [], { ...env, ...opts.workerEnv }, path.join(logDir, "worker.log"));
  }

  /** Creates the database, folders and port, starts the worker and the api, waits for /healthz. */
  static async start(opts: StackOptions): Promise<Stack> {
    const { databaseUrl: adminUrl, redisUrl } = baseUrls();
    const { name: databaseName, url: databaseUrl } = await freshDatabase(adminUrl, "lk_e2e");

    const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), `lk-e2e-${opts.name}-`));
    const storageDir = path.join(tmpDir, "objects");
    const logDir = path.join(tmpDir, "logs");
    const workDir = path.join(tmpDir, "worker-work");
    for (const d of [storageDir, logDir, workDir]) fs.mkdirSync(d, { recursive: true });
    const port = await freePort();
    const redisKeyPrefix = `lke2e_${randomBytes(5).toString("hex")}`;

    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LANG: process.env.LANG ?? "C.UTF-8",
      TMPDIR: process.env.TMPDIR,
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: redisKeyPrefix,
      STORAGE_DRIVER: "local",
      STORAGE_DIR: storageDir,
      API_HOST: "127.0.0.1",
      API_PORT: String(port),
      LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? "info",
      // Fast recovery: a dead consumer's pending entries are taken over after 2 s (both planes).
      API_RECLAIM_IDLE_MS: "2000",
      WORKER_RECLAIM_IDLE_MS: "2000",
      WORKER_METRICS_PORT: "0",
      WORKER_WORK_DIR: workDir,
      WORKER_RETRY_BACKOFF_MS: "100",
      // The built-in LLM loads at the first topic (video.e2e.test.ts writes one), not in every stack.
      LLM_LOCAL_PRELOAD: "false",
    };
    for (const k of Object.keys(env)) if (env[k] === undefined) Reflect.deleteProperty(env, k);

    const stack = new Stack(opts.name, `http://127.0.0.1:${port}`, port, databaseName, databaseUrl, adminUrl, redisUrl, redisKeyPrefix, tmpDir, storageDir, logDir, env, opts);
    try {
      stack.worker.start();
      stack.api.start();
      await stack.waitHealthy();
      await stack.waitWorkerReady();
      stack.db = new pg.Client({ connectionString: databaseUrl });
      await stack.db.connect();
      stack.redis = new Redis(redisUrl, { maxRetriesPerRequest: 3 });
    } catch (err) {
      const logs = stack.logs();
      await stack.close();
      throw new Error(`${(err as Error).message}\n${logs}`, { cause: err });
    }
    return stack;
  }

  /** Waits until GET /healthz answers 200; fails early when the api process exits. */
  async waitHealthy(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: string;
    for (;;) {
      if (!this.api.running) throw new Error(`the api exited (${JSON.stringify(this.api.exit)}) before it was healthy`);
      try {
        const res = await fetch(`${this.url}/healthz`);
        if (res.ok) return;
        last = `HTTP ${res.status} ${(await res.text()).slice(0, 200)}`;
      } catch (err) {
        last = String((err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message);
      }
      if (Date.now() > deadline) throw new Error(`the api was not healthy after ${timeoutMs / 1000} s (${last})`);
      await sleep(100);
    }
  }

  /** The worker logs "worker <name>: queues …" once its Dramatiq workers and bridge run. */
  async waitWorkerReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const header = `start #${this.worker.starts} of worker`;
    for (;;) {
      if (!this.worker.running) throw new Error(`the worker exited (${JSON.stringify(this.worker.exit)}) before it was ready`);
      const log = this.worker.log();
      if (/: queues /.test(log.slice(log.lastIndexOf(header)))) return;
      if (Date.now() > deadline) throw new Error(`the worker did not report ready after ${timeoutMs / 1000} s`);
      await sleep(100);
    }
  }

  /** SIGKILLs the api (no graceful shutdown) and waits for it to be gone. */
  async killApi(): Promise<void> {
    await this.api.kill();
  }

  /** Starts a new api process on the same database, Redis prefix and storage. */
  async startApi(): Promise<void> {
    this.api.start();
    await this.waitHealthy();
  }

  async restartWorker(): Promise<void> {
    await this.worker.stop();
    this.worker.start();
    await this.waitWorkerReady();
  }

  /** The ends of both logs, for a failure message. */
  logs(lines = 80): string {
    return [
      `----- api log (${this.api.logFile}, last ${lines} lines) -----`,
      this.api.tail(lines),
      `----- worker log (${this.worker.logFile}, last ${lines} lines) -----`,
      this.worker.tail(lines),
    ].join("\n");
  }

  /** Call inside a test: prints both logs if this test fails. */
  printLogsOnFailure(): void {
    onTestFailed(({ task }) => {
      console.error(`e2e stack "${this.name}" after failed test "${task.name}":\n${this.logs(120)}`);
    });
  }

  /** Runs `fn` (e.g. setup in beforeAll); a failure carries both logs in its message. */
  async withLogs<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      e.message += `\n${this.logs(120)}`;
      throw e;
    }
  }

  /** Absolute path of an object in the local storage. */
  objectPath(key: string): string {
    return path.join(this.storageDir, key);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.api.stop(10_000), this.worker.stop(10_000)]);
    await this.db?.end().catch(() => undefined);
    const admin = new pg.Client({ connectionString: this.adminDatabaseUrl });
    try {
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${this.databaseName} WITH (FORCE)`);
    } finally {
      await admin.end().catch(() => undefined);
    }
    const redis = this.redis ?? new Redis(this.redisUrl, { maxRetriesPerRequest: 3 });
    try {
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", `${this.redisKeyPrefix}*`, "COUNT", 500);
        cursor = next;
        if (keys.length) await redis.unlink(...keys);
      } while (cursor !== "0");
    } finally {
      redis.disconnect();
    }
    if (!process.env.E2E_KEEP) fs.rmSync(this.tmpDir, { recursive: true, force: true });
    else console.warn(`e2e: kept ${this.tmpDir} (E2E_KEEP)`);
  }
}
