// HTTP routes of jobs: train a profile, read a job, retry, cancel. Every route is the owner's
// only: another user's job or profile is 404.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { Job, TrainProfileRequest } from "@likeness/contracts";
import { errorResponses } from "../http/openapi.js";
import type { JobsService } from "./jobs.service.js";

const Params = z.object({ id: z.uuid() });

export const jobsRoutes: FastifyPluginAsyncZod<{ jobs: JobsService }> = async (app, { jobs }) => {
  // onRequest: a request without a valid token is 401 before its body or parameters are looked at.
  app.addHook("onRequest", app.authenticate);

  app.post(
    "/v1/profiles/:id/train",
    {
      schema: {
        summary: "Train a profile from its photos and voice sample",
        tags: ["jobs"],
        security: [{ bearer: [] }],
        params: Params,
        // Optional: a POST without a body (null here) trains with the defaults.
        body: TrainProfileRequest.nullish(),
        response: { 202: Job, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request, reply) =>
      reply.code(202).send(await jobs.trainProfile(request.user.id, request.params.id, request.body?.engines)),
  );

  app.get(
    "/v1/jobs/:id",
    {
      schema: {
        summary: "A job with its steps, engines, timings, artifacts and error",
        tags: ["jobs"],
        security: [{ bearer: [] }],
        params: Params,
        response: { 200: Job, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => jobs.getJob(request.user.id, request.params.id),
  );

  app.post(
    "/v1/jobs/:id/retry",
    {
      schema: {
        summary: "Run a failed or cancelled job again (steps that succeeded are reused)",
        tags: ["jobs"],
        security: [{ bearer: [] }],
        params: Params,
        response: { 202: Job, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request, reply) => reply.code(202).send(await jobs.retry(request.user.id, request.params.id)),
  );

  app.post(
    "/v1/jobs/:id/cancel",
    {
      schema: {
        summary: "Cancel a job (at once when no worker has started it)",
        tags: ["jobs"],
        security: [{ bearer: [] }],
        params: Params,
        response: { 202: Job, ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request, reply) => reply.code(202).send(await jobs.cancel(request.user.id, request.params.id)),
  );
};
