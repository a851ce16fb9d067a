// Building blocks of the chaos drill (scripts/chaos.mjs): a seeded random generator, the fault
// plan it draws, and a supervised service process that faults can kill, pause and restart.
import { spawn } from "node:child_process";
import fs from "node:fs";
import { REPO } from "./stack.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** What the drill can do to the stack, in the order the help lists them. */
export const FAULT_KINDS = /** @type {const} */ ([
  "worker-kill", // SIGKILL a worker's process group, start a new worker in its place
  "api-kill", // SIGKILL the api, start it again on the same port
  "redis-restart", // SIGTERM redis-server, start it again on the same port and data (AOF kept)
  "redis-wipe", // stop redis-server, delete its AOF/RDB, start it again empty
  "postgres-restart", // SIGQUIT the postmaster (pg_ctl restart -m immediate), start it again
  "worker-pause", // SIGSTOP a worker's process group past the reclaim time, then SIGCONT
]);

/** How often each kind is drawn in a random plan (kills are the common fault, restarts rarer). */
const WEIGHTS = { "worker-kill": 4, "api-kill": 2, "redis-restart": 1, "redis-wipe": 1, "postgres-restart": 1, "worker-pause": 1 };

/** mulberry32: a small, fast, seedable generator; `next()` is uniform in [0, 1). */
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    /** An integer in [lo, hi]. */
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    /** A number in [lo, hi). */
    range: (lo, hi) => lo + next() * (hi - lo),
    pick: (list) => list[Math.floor(next() * list.length)],
    shuffle: (list) => {
      const a = [...list];
      for (let i = a.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [a[i], a[j]] = [a[j], a[i]];
      }
      return a;
    },
  };
}

/**
 * Parses `--faults`: "all", "none", or a comma list of kinds, each optionally with a count
 * ("worker-kill:20,api-kill:5,redis-wipe"). Returns [{kind, count|undefined}].
 */
export function parseFaultList(text) {
  if (text === "all") return FAULT_KINDS.map((kind) => ({ kind, count: undefined }));
  if (text === "none" || text === "") return [];
  return text.split(",").map((item) => {
    const [kind, n] = item.trim().split(":");
    if (!FAULT_KINDS.includes(kind)) throw new Error(`unknown fault kind "${kind}" (kinds: ${FAULT_KINDS.join(", ")})`);
    if (n !== undefined && !/^\d+$/.test(n)) throw new Error(`bad count in "${item}" (kind:count, e.g. worker-kill:20)`);
    return { kind, count: n === undefined ? undefined : Number(n) };
  });
}

/**
 * The faults of a run, drawn once from the seed, sorted by time (seconds after the window opens).
 * - oneOfEach: one fault of each listed kind, in a shuffled order, spaced evenly over the window.
 * - otherwise: kinds with a count get exactly that many, at uniform random times; the others share
 *   about `duration / every` faults, drawn by weight.
 * Each fault carries what else the seed decides: the worker it hits, how long an outage lasts.
 */
export function planFaults({ kinds, duration, every, oneOfEach, workers, random }) {
  /** @type {{at: number, kind: string}[]} */
  let plan = [];
  if (oneOfEach) {
    const order = random.shuffle(kinds.map((k) => k.kind));
    const gap = duration / Math.max(1, order.length);
    plan = order.map((kind, i) => ({ at: gap * (i + 0.5) + random.range(-gap / 5, gap / 5), kind }));
  } else {
    const first = Math.min(3, duration / 4); // let the jobs get going
    const when = () => random.range(first, duration);
    for (const { kind, count } of kinds) for (let i = 0; i < (count ?? 0); i++) plan.push({ at: when(), kind });
    const drawn = kinds.filter((k) => k.count === undefined).map((k) => k.kind);
    if (drawn.length) {
      const total = drawn.reduce((s, k) => s + WEIGHTS[k], 0);
      const n = Math.max(1, Math.round(duration / every));
      for (let i = 0; i < n; i++) {
        let u = random.next() * total;
        const kind = drawn.find((k) => (u -= WEIGHTS[k]) < 0) ?? drawn.at(-1);
        plan.push({ at: when(), kind });
      }
    }
  }
  plan.sort((a, b) => a.at - b.at);
  return plan.map((f, i) => ({
    n: i + 1,
    ...f,
    at: Math.max(0, f.at),
    worker: random.int(1, workers), // worker faults: which slot
    downMs: Math.round(random.range(500, 3000)), // restarts: how long the server stays down
  }));
}

/**
 * A service process (api or worker) in its own process group, logging to a file that each start
 * appends to (with a header line). A fault kills or pauses it on purpose; an exit nobody asked for
 * is reported to `onCrash` (the drill restarts it, as `restart: unless-stopped` would).
 */
export class Service {
  /**
   * @param {string} name
   * @param {string} cmd
   * @param {string[]} args
   * @param {NodeJS.ProcessEnv} env
   * @param {string} logFile
   * @param {{onCrash?: (svc: Service, info: {code: number|null, signal: string|null}) => void}} [hooks]
   */
  constructor(name, cmd, args, env, logFile, hooks = {}) {
    Object.assign(this, { name, cmd, args, env, logFile, hooks });
    /** @type {import('node:child_process').ChildProcess | null} */
    this.child = null;
    this.exitInfo = null;
    this.exited = Promise.resolve(null);
    this.starts = 0;
    this.paused = false;
    this.expectExit = false;
    this.guard = 0;
  }

  get running() {
    return this.child !== null && this.exitInfo === null;
  }

  get pid() {
    return this.child?.pid;
  }

  start() {
    if (this.running) throw new Error(`${this.name} is already running`);
    this.starts += 1;
    this.expectExit = false;
    this.paused = false;
    this.exitInfo = null;
    fs.appendFileSync(this.logFile, `\n===== chaos: start #${this.starts} of ${this.name} at ${new Date().toISOString()} =====\n`);
    this.logOffset = fs.statSync(this.logFile).size;
    const fd = fs.openSync(this.logFile, "a");
    const child = spawn(this.cmd, this.args, { cwd: REPO, env: this.env, detached: true, stdio: ["ignore", fd, fd] });
    fs.closeSync(fd);
    this.child = child;
    // If the drill itself dies (SIGKILL), the group goes too: a shell loop watching our pid
    // (dash's kill takes no "--": the group is "-PGID" right after the signal).
    const dog = spawn(
      "sh",
      ["-c", `p=$1; g=$2; while kill -0 "$p" 2>/dev/null; do sleep 1; done; kill -CONT "-$g" 2>/dev/null; kill -KILL "-$g" 2>/dev/null; exit 0`, "likeness-chaos-watchdog", String(process.pid), String(child.pid)],
      { detached: true, stdio: "ignore" },
    );
    dog.unref();
    this.guard = dog.pid;
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        fs.appendFileSync(this.logFile, `===== chaos: ${this.name} exited (${code ?? signal}) at ${new Date().toISOString()} =====\n`);
        // Whatever the process left in its group (an ffmpeg it ran) goes with it.
        this.signalGroup("SIGKILL", true);
        try {
          process.kill(this.guard, "SIGKILL");
        } catch { /* already gone */ }
        if (!this.expectExit) this.hooks.onCrash?.(this, this.exitInfo);
        resolve(this.exitInfo);
      });
    });
    return child;
  }

  signalGroup(signal, evenIfExited = false) {
    if (!this.child?.pid || (!evenIfExited && !this.running)) return false;
    try {
      process.kill(-this.child.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /** SIGKILL the whole group (the process and what it runs) and wait for the exit. */
  async kill() {
    if (!this.running) return this.exitInfo;
    this.expectExit = true;
    this.signalGroup("SIGKILL");
    return this.exited;
  }

  pause() {
    this.paused = this.signalGroup("SIGSTOP");
    return this.paused;
  }

  resume() {
    this.paused = false;
    return this.signalGroup("SIGCONT");
  }

  /** A clean stop: SIGCONT if paused, SIGTERM, then SIGKILL of the group after `graceMs`. */
  async stop(graceMs = 15000) {
    if (!this.running) return this.exitInfo;
    this.expectExit = true;
    if (this.paused) this.resume();
    try {
      process.kill(this.child.pid, "SIGTERM");
    } catch { /* already gone */ }
    const timer = setTimeout(() => this.signalGroup("SIGKILL"), graceMs);
    const info = await this.exited;
    clearTimeout(timer);
    return info;
  }

  /** The log written since the latest start. */
  logSinceStart() {
    try {
      const fd = fs.openSync(this.logFile, "r");
      try {
        const size = fs.fstatSync(fd).size - this.logOffset;
        if (size <= 0) return "";
        const buf = Buffer.alloc(size);
        fs.readSync(fd, buf, 0, size, this.logOffset);
        return buf.toString("utf8");
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return "";
    }
  }

  /** Resolves true once `ready(logSinceStart)` holds; false if the process exits or time runs out. */
  async waitLog(ready, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) return false;
      if (ready(this.logSinceStart())) return true;
      await sleep(100);
    }
    return false;
  }

  tail(lines = 20) {
    try {
      return fs.readFileSync(this.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }
}
