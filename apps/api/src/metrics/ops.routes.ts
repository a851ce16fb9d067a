// GET /metrics (Prometheus text) and GET /healthz (Postgres + Redis reachable: resilience/dependency-health.ts).
import { z } from "zod";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { AppDeps } from "../app-deps.js";

const Health = z.object({
  status: z.enum(["ok", "degraded"]),
  checks: z.object({ db: z.enum(["ok", "unavailable"]), redis: z.enum(["ok", "unavailable"]) }),
});

export const opsRoutes: FastifyPluginAsyncZod<AppDeps> = async (app) => {
  app.get("/metrics", { schema: { hide: true } }, async (_request, reply) => {
    const text = await app.metrics.metrics();
    return reply.header("content-type", app.metrics.contentType).send(text);
  });

  app.get(
    "/healthz",
    { schema: { tags: ["ops"], summary: "Postgres and Redis reachable", response: { 200: Health, 503: Health } } },
    async (_request, reply) => {
      // Each answers within 2 s or is `unavailable`; the reason goes to the log, not to an
      // unauthenticated caller. A failure also counts an outage (once per outage).
      const [db, redis] = await Promise.all([app.health.check("postgres"), app.health.check("redis")]);
      const ok = db === "ok" && redis === "ok";
      return reply.code(ok ? 200 : 503).send({ status: ok ? "ok" : "degraded", checks: { db, redis } });
    },
  );
};
