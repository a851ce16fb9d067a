// Resident memory of process trees, for the benches: a process and all its descendants, summed
// from /proc (the worker runs ffmpeg and other tools as child processes, and they count).
import { spawnSync } from "node:child_process";
import fs from "node:fs";

const PAGE = Number(spawnSync("getconf", ["PAGESIZE"], { encoding: "utf8" }).stdout) || 4096;

/** pid → its children's pids, from field 4 of /proc/<pid>/stat (the name, field 2, may hold spaces). */
function childrenByParent() {
  const children = new Map();
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const ppid = Number(fs.readFileSync(`/proc/${name}/stat`, "utf8").replace(/^.*\) /s, "").split(" ")[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(name));
    } catch { /* the process ended meanwhile */ }
  }
  return children;
}

/**
 * Samples each named tree (`{ worker: [pid, …] }`) every `everyMs`; `stop()` takes a last sample
 * and returns `{ peak, last }` in bytes per name.
 */
export function rssSampler(roots, everyMs = 100) {
  const peak = Object.fromEntries(Object.keys(roots).map((k) => [k, 0]));
  const last = { ...peak };
  const sample = () => {
    const children = childrenByParent();
    for (const [what, pids] of Object.entries(roots)) {
      let total = 0;
      for (const todo = [...pids]; todo.length; ) {
        const pid = todo.pop();
        try {
          total += Number(fs.readFileSync(`/proc/${pid}/statm`, "utf8").split(" ")[1]) * PAGE;
        } catch { /* ended meanwhile */ }
        todo.push(...(children.get(pid) ?? []));
      }
      last[what] = total;
      peak[what] = Math.max(peak[what], total);
    }
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { peak, last };
    },
  };
}

const TICKS = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100;

/** CPU seconds (user + system) a process has used, with its reaped children's. */
function cpuSeconds(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "").split(" ");
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICKS; // utime stime cutime cstime
  } catch {
    return 0;
  }
}

/** The pids of the processes whose command name (/proc/<pid>/comm) starts with `prefix`. */
function pidsNamed(prefix) {
  return fs.readdirSync("/proc").filter((n) => /^\d+$/.test(n)).filter((n) => {
    try {
      return fs.readFileSync(`/proc/${n}/comm`, "utf8").startsWith(prefix);
    } catch {
      return false;
    }
  }).map(Number);
}

/**
 * CPU used over an interval by named process trees (`{ api: [pid] }`) and by every process whose
 * name starts with one of `byName` (`{ postgres: "postgres" }`): where the time of a load goes.
 * `stop()` returns seconds per name, `bench` included (this process).
 */
export function cpuMeter(roots, byName = {}) {
  const read = () => {
    const children = childrenByParent();
    const out = {};
    for (const [what, pids] of Object.entries(roots)) {
      let total = 0;
      for (const todo = [...pids]; todo.length; ) {
        const pid = todo.pop();
        total += cpuSeconds(pid);
        todo.push(...(children.get(pid) ?? []));
      }
      out[what] = total;
    }
    for (const [what, prefix] of Object.entries(byName)) out[what] = pidsNamed(prefix).reduce((s, pid) => s + cpuSeconds(pid), 0);
    const self = process.cpuUsage();
    out.bench = (self.user + self.system) / 1e6;
    return out;
  };
  const start = read();
  return {
    stop() {
      const end = read();
      return Object.fromEntries(Object.keys(end).map((k) => [k, end[k] - (start[k] ?? 0)]));
    },
  };
}
