// Which engines exist (what the live workers advertise, merged) and whether a request's choice
// of engines can run: validate before you queue. A job's engines are its request's choice over
// its profile's defaults, for the task kinds its steps run; each must be advertised by a live
// worker that can run it, or the request is a 400 naming it (`engines.<kind>`).
import type { Redis } from "ioredis";
import type { FastifyBaseLogger } from "fastify";
import {
  STEP_TASK,
  TaskKind,
  stepsFor,
  type EngineInfo,
  type EngineList,
  type JobKind,
  type LicenceNotice,
  type Pipeline,
  type WorkerAdvert,
} from "@likeness/contracts";
import type { Db } from "../db/db.js";
import { badRequest, notFound } from "../http/errors.js";
import { ProfilesRepository } from "../profiles/profiles.repository.js";
import { EngineAdvertsRepository } from "./engine-adverts.repository.js";

export type EngineMap = Partial<Record<TaskKind, string>>;

/** How long the merged adverts are reused: job creation must not read Redis on every request. */
const CACHE_MS = 1_000;

/** The adverts of every live worker, one entry per (task kind, engine), sorted. */
export function mergeAdverts(adverts: WorkerAdvert[], apiEngines: EngineInfo[] = []): EngineInfo[] {
  const merged = new Map<string, EngineInfo>();
  for (const advert of adverts) {
    for (const e of advert.engines) {
      const key = `${e.taskKind}\u0000${e.name}`;
      const m = merged.get(key) ?? {
        taskKind: e.taskKind,
        name: e.name,
        device: e.device,
        licence: e.licence,
        nonCommercial: e.nonCommercial ?? false,
        healthy: false,
        default: false,
        workers: 0,
        healthyWorkers: 0,
        runsIn: "worker" as const,
      };
      m.workers++;
      if (e.healthy) {
        m.healthy = true;
        m.healthyWorkers++;
        delete m.problem;
      } else if (!m.healthy && e.problem && !m.problem) {
        m.problem = e.problem;
      }
      m.default ||= e.default;
      merged.set(key, m);
    }
  }
  return [...apiEngines, ...merged.values()].sort(
    (a, b) => TaskKind.options.indexOf(a.taskKind) - TaskKind.options.indexOf(b.taskKind) || a.name.localeCompare(b.name),
  );
}

/** The task kinds a job's steps run (those a choice of engines may name). */
export function jobTaskKinds(kind: JobKind, pipeline?: Pipeline): Set<TaskKind> {
  return new Set(stepsFor(kind, pipeline).map((s) => STEP_TASK[s]));
}

export class EnginesService {
  private readonly adverts: EngineAdvertsRepository;
  private cached: { at: number; list: EngineList } | undefined;
  private loading: Promise<EngineList> | undefined;

  constructor(
    private readonly db: Db,
    redis: Redis,
    prefix: string,
    /** The engines the api runs itself: the script step's (`llm`). */
    private readonly apiEngines: () => Promise<EngineInfo[]>,
    log?: FastifyBaseLogger,
  ) {
    this.adverts = new EngineAdvertsRepository(redis, prefix, log);
  }

  /** GET /v1/engines: fresh from Redis (and kept for the next checks). */
  list(): Promise<EngineList> {
    return this.load(true);
  }

  /**
   * The engines a new job runs with: `requested` over the profile's `defaults`, for the task kinds
   * of its steps. Throws a 400 naming the first engine that is unknown or that no live worker can
   * run, or a requested task kind the job has no step for; nothing is written before this.
   */
  async resolve(
    job: { kind: JobKind; pipeline?: Pipeline },
    requested: EngineMap | undefined,
    defaults: unknown,
  ): Promise<EngineMap> {
    const kinds = jobTaskKinds(job.kind, job.pipeline);
    const what = job.kind === "train_profile" ? "training" : `the ${job.pipeline} pipeline`;
    for (const kind of Object.keys(requested ?? {}) as TaskKind[]) {
      if (!kinds.has(kind)) {
        throw badRequest(`${what} has no ${kind} step (its task kinds: ${[...kinds].join(", ")})`, `engines.${kind}`);
      }
    }
    const fromProfile = Object.fromEntries(
      Object.entries((defaults ?? {}) as Record<string, string>).filter(([k]) => kinds.has(k as TaskKind)),
    ) as EngineMap;
    const chosen: EngineMap = { ...fromProfile, ...(requested ?? {}) };
    if (Object.keys(chosen).length === 0) return {}; // the workers' defaults: nothing to check
    await this.check(chosen, (kind) => (requested?.[kind] === undefined ? " (the profile's default engine)" : ""));
    return chosen;
  }

  /**
   * The engines of `job`'s task kinds whose licence forbids commercial use: the chosen one of each
   * kind, else the one the live workers run by default. Read from the adverts `resolve` has just
   * checked (no extra Redis read while they are fresh).
   */
  async licenceNotices(job: { kind: JobKind; pipeline?: Pipeline }, engines: EngineMap): Promise<LicenceNotice[]> {
    let list: EngineList;
    try {
      list = await this.load(false);
    } catch {
      // Redis is down: the job is still accepted (it waits the outage out like any other); the
      // last adverts seen say what they can, and each step records its licence when it runs.
      if (!this.cached) return [];
      list = this.cached.list;
    }
    const notices: LicenceNotice[] = [];
    for (const kind of jobTaskKinds(job.kind, job.pipeline)) {
      const name = engines[kind];
      const e = list.engines.find((x) => x.taskKind === kind && (name === undefined ? x.default : x.name === name));
      if (e?.nonCommercial) notices.push({ taskKind: kind, engine: e.name, licence: e.licence, nonCommercial: true });
    }
    return notices;
  }

  /** A profile's new default engines, or a retried job's: every one must be advertised and runnable now. */
  async checkAvailable(engines: EngineMap): Promise<void> {
    if (Object.keys(engines).length === 0) return;
    await this.check(engines, () => "");
  }

  /** PUT /v1/profiles/:id/engines: the whole map, checked first. Another user's profile is 404. */
  async setProfileDefaults(userId: string, profileId: string, engines: EngineMap): Promise<EngineMap> {
    const profiles = new ProfilesRepository(this.db);
    if (!(await profiles.findForUser(userId, profileId))) throw notFound("profile");
    await this.checkAvailable(engines);
    if (!(await profiles.setEngines(userId, profileId, engines as Record<string, string>))) throw notFound("profile");
    return engines;
  }

  private async check(chosen: EngineMap, origin: (kind: TaskKind) => string): Promise<void> {
    let list = await this.load(false);
    let problem = findProblem(list, chosen, origin);
    if (problem) {
      // A worker that started (or healed) within the cache's lifetime: look again before refusing.
      list = await this.load(true);
      problem = findProblem(list, chosen, origin);
    }
    if (problem) throw badRequest(problem.message, `engines.${problem.kind}`);
  }

  private async load(fresh: boolean): Promise<EngineList> {
    const now = Date.now();
    if (!fresh && this.cached && now - this.cached.at < CACHE_MS) return this.cached.list;
    // One Redis read at a time, shared by the requests that wait for it.
    this.loading ??= (async () => {
      try {
        const [adverts, own] = await Promise.all([this.adverts.live(), this.apiEngines()]);
        const list = { engines: mergeAdverts(adverts, own), workers: adverts.length };
        this.cached = { at: Date.now(), list };
        return list;
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }
}

function findProblem(
  list: EngineList,
  chosen: EngineMap,
  origin: (kind: TaskKind) => string,
): { kind: TaskKind; message: string } | undefined {
  for (const [kind, name] of Object.entries(chosen) as [TaskKind, string][]) {
    const ofKind = list.engines.filter((e) => e.taskKind === kind);
    const healthy = ofKind.filter((e) => e.healthy).map((e) => e.name);
    const known = healthy.length ? `available for ${kind}: ${healthy.join(", ")}` : `no ${kind} engine is available`;
    const engine = ofKind.find((e) => e.name === name);
    if (!engine) {
      const why = list.workers === 0 && kind !== "llm" ? "no worker is advertising its engines; " : "";
      return { kind, message: `unknown engine "${name}" for ${kind}${origin(kind)}: ${why}${known}` };
    }
    if (!engine.healthy) {
      return {
        kind,
        message: `engine "${name}" for ${kind}${origin(kind)} is unavailable${engine.problem ? ` (${engine.problem})` : ""}: ${known}`,
      };
    }
  }
  return undefined;
}
