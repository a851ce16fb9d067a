// GET /v1/engines: what the live workers can run, merged. PUT /v1/profiles/:id/engines: the
// profile's default engines (checked against the same list).
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { EngineList, ProfileEngines } from "@likeness/contracts";
import { errorResponses } from "../http/openapi.js";
import type { EnginesService } from "./engines.service.js";

export const enginesRoutes: FastifyPluginAsyncZod<{ engines: EnginesService }> = async (app, { engines }) => {
  // onRequest: a request without a valid token is 401 before its body or parameters are looked at.
  app.addHook("onRequest", app.authenticate);

  app.get(
    "/v1/engines",
    {
      schema: {
        summary: "The engines the connected workers can run, per task kind",
        description:
          "Merged from what every live worker advertises (its engines, their device, licence, health and whether each is " +
          "the default for its task kind), plus the api's own script engine. Name one in a request's `engines` " +
          "(`POST /v1/videos`, `POST /v1/profiles/{id}/train`, `PUT /v1/profiles/{id}/engines`); an engine that is not " +
          "listed here, or not healthy, is refused with 400.",
        tags: ["engines"],
        security: [{ bearer: [] }],
        response: { 200: EngineList, ...errorResponses(401) },
      },
    },
    async () => engines.list(),
  );

  app.put(
    "/v1/profiles/:id/engines",
    {
      schema: {
        summary: "Set a profile's default engines",
        description:
          "The whole map, task kind → engine name (`{}` clears it). The profile's jobs use these unless their request names " +
          "others; each must be listed, healthy, by `GET /v1/engines`.",
        tags: ["profiles"],
        security: [{ bearer: [] }],
        params: z.object({ id: z.uuid() }),
        body: ProfileEngines,
        response: { 200: ProfileEngines, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => ({ engines: await engines.setProfileDefaults(request.user.id, request.params.id, request.body.engines) }),
  );
};
