// Whether Redis and Postgres answer, as the api last saw them. Probes (GET /healthz, a timer) and
// the background loops that meet a transient error report here; an outage is counted once, when
// a dependency goes from up to down, not once per failed call. Listeners hear when one comes
// back (the reconciler then runs at once instead of at its next tick).
import { Counter, Gauge, type Registry } from "prom-client";
import type { FastifyBaseLogger } from "fastify";

export type Dependency = "redis" | "postgres";
export const DEPENDENCIES: readonly Dependency[] = ["redis", "postgres"];

/** A probe answers within this long, or the dependency counts as unavailable. */
export const PROBE_TIMEOUT_MS = 2_000;
/** How often the timer probes both, so outages are seen (and counted) with no traffic. */
export const PROBE_EVERY_MS = 5_000;

export class DependencyHealth {
  private readonly up = new Map<Dependency, boolean>();
  private readonly outages: Counter<"dependency">;
  private readonly gauge: Gauge<"dependency">;
  private readonly listeners = new Set<(dep: Dependency) => void>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    registry: Registry,
    private readonly log: FastifyBaseLogger,
    private readonly probes: Record<Dependency, () => Promise<unknown>>,
  ) {
    this.outages = new Counter({
      name: "likeness_api_dependency_outages_total",
      help: "Times Redis or Postgres went from reachable to unreachable, as this api saw it",
      labelNames: ["dependency"] as const,
      registers: [registry],
    });
    this.gauge = new Gauge({
      name: "likeness_api_dependency_up",
      help: "1 while Redis / Postgres answers this api, 0 during an outage",
      labelNames: ["dependency"] as const,
      registers: [registry],
    });
    for (const dependency of DEPENDENCIES) {
      this.outages.inc({ dependency }, 0); // the series exists from the start, at 0
      this.gauge.set({ dependency }, 1);
    }
  }

  isUp(dep: Dependency): boolean {
    return this.up.get(dep) ?? true;
  }

  /** Records what a call or a probe found. Only transitions count and log. */
  report(dep: Dependency, ok: boolean, err?: unknown): void {
    const was = this.isUp(dep);
    this.up.set(dep, ok);
    this.gauge.set({ dependency: dep }, ok ? 1 : 0);
    if (was && !ok) {
      this.outages.inc({ dependency: dep });
      this.log.warn({ err, dependency: dep }, `${dep} unavailable: waiting for it`);
    } else if (!was && ok) {
      this.log.info({ dependency: dep }, `${dep} available again`);
      for (const fn of this.listeners) {
        try {
          fn(dep);
        } catch (e) {
          this.log.warn({ err: e, dependency: dep }, "a listener of the dependency's return failed");
        }
      }
    }
  }

  /** Runs the probe (bounded by PROBE_TIMEOUT_MS) and reports it. The reason goes to the log only. */
  async check(dep: Dependency, ms = PROBE_TIMEOUT_MS): Promise<"ok" | "unavailable"> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.probes[dep](),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
        }),
      ]);
      this.report(dep, true);
      return "ok";
    } catch (err) {
      this.report(dep, false, err);
      return "unavailable";
    } finally {
      clearTimeout(timer);
    }
  }

  onRecovered(fn: (dep: Dependency) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  start(everyMs = PROBE_EVERY_MS): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      for (const dep of DEPENDENCIES) void this.check(dep);
    }, everyMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.listeners.clear();
  }
}
