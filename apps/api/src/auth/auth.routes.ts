// POST /v1/auth/signup, /v1/auth/login, /v1/auth/logout
import { z } from "zod";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { Credentials, Session } from "@likeness/contracts";
import { errorResponses } from "../http/openapi.js";
import type { AppDeps } from "../app.js";
import { bearerToken } from "./authenticate.js";

export const authRoutes: FastifyPluginAsyncZod<AppDeps> = async (app) => {
  const auth = app.auth;

  app.post(
    "/v1/auth/signup",
    {
      schema: {
        tags: ["auth"],
        summary: "Create an account; answers a session with a bearer token (shown once)",
        body: Credentials,
        response: { 201: Session, ...errorResponses(400, 409) },
      },
    },
    async (request, reply) => {
      const session = await auth.signup(request.body.email, request.body.password);
      return reply.code(201).send(session);
    },
  );

  app.post(
    "/v1/auth/login",
    {
      schema: {
        tags: ["auth"],
        summary: "Sign in; answers a new bearer token",
        body: z.object({ email: z.string().max(254), password: z.string().max(256) }),
        response: { 200: Session, ...errorResponses(400, 401) },
      },
    },
    async (request) => auth.login(request.body.email, request.body.password),
  );

  app.post(
    "/v1/auth/logout",
    {
      preHandler: app.authenticate,
      schema: { tags: ["auth"], summary: "Revoke the token used for this request", security: [{ bearer: [] }], response: { 204: z.null(), ...errorResponses(401) } },
    },
    async (request, reply) => {
      const token = bearerToken(request);
      if (token) await auth.logout(token);
      return reply.code(204).send(null);
    },
  );
};
