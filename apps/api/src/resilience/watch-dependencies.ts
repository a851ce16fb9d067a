// The app's DependencyHealth: probes (select 1, PING), a probe every few seconds while the app
// runs, and the shared Redis connection's own events (a dropped connection is seen at once).
import { sql } from "kysely";
import type { FastifyInstance } from "fastify";
import type { AppDeps } from "../app-deps.js";
import { DependencyHealth } from "./dependency-health.js";
import { isTransientRedisError } from "./transient-errors.js";

export function watchDependencies(app: FastifyInstance, deps: Pick<AppDeps, "db" | "redis">): DependencyHealth {
  const health = new DependencyHealth(app.metrics, app.log, {
    postgres: () => sql`select 1`.execute(deps.db),
    // Not connected: say so at once rather than wait for the reconnect.
    redis: async () => {
      if (deps.redis.status !== "ready") throw new Error(`redis connection is ${deps.redis.status}`);
      await deps.redis.ping();
    },
  });
  // ioredis emits 'error' for each failed (re)connection: without a listener it prints them all.
  const onError = (err: Error) => {
    if (isTransientRedisError(err)) health.report("redis", false, err);
    else app.log.warn({ err }, "redis connection error");
  };
  const onReady = () => health.report("redis", true);
  deps.redis.on("error", onError);
  deps.redis.on("ready", onReady);
  app.addHook("onReady", async () => health.start());
  app.addHook("onClose", async () => {
    health.stop();
    deps.redis.off("error", onError);
    deps.redis.off("ready", onReady);
  });
  return health;
}
