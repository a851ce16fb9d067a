// GET /metrics (Prometheus text) and GET /healthz (Postgres + Redis reachable).
import { sql } from "kysely";
import { z } from "zod";
import type { FastifyBaseLogger } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { AppDeps } from "../app.js";

const Health = z.object({
  status: z.enum(["ok", "degraded"]),
  checks: z.object({ db: z.enum(["ok", "unavailable"]), redis: z.enum(["ok", "unavailable"]) }),
});

/** "ok" or "unavailable": the reason goes to the log, not to an unauthenticated caller. */
async function check(name: string, log: FastifyBaseLogger, fn: () => Promise<unknown>, ms = 2000): Promise<"ok" | "unavailable"> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
      }),
    ]);
    return "ok";
  } catch (err) {
    log.warn({ err, check: name }, "health check failed");
    return "unavailable";
  } finally {
    clearTimeout(timer);
  }
}

export const opsRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  app.get("/metrics", { schema: { hide: true } }, async (_request, reply) => {
    const text = await app.metrics.metrics();
    return reply.header("content-type", app.metrics.contentType).send(text);
  });

  app.get(
    "/healthz",
    { schema: { tags: ["ops"], summary: "Postgres and Redis reachable", response: { 200: Health, 503: Health } } },
    async (_request, reply) => {
      const [db, redis] = await Promise.all([
        check("db", app.log, () => sql`select 1`.execute(deps.db)),
        check("redis", app.log, () => deps.redis.ping()),
      ]);
      const ok = db === "ok" && redis === "ok";
      return reply.code(ok ? 200 : 503).send({ status: ok ? "ok" : "degraded", checks: { db, redis } });
    },
  );
};
