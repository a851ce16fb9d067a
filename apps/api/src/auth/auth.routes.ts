// POST /v1/auth/signup, /v1/auth/login, /v1/auth/logout
import { z } from "zod";
import rateLimit from "@fastify/rate-limit";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { Credentials, Session } from "@likeness/contracts";
import { errorResponses } from "../http/openapi.js";
import type { AppDeps } from "../app-deps.js";
import { bearerToken } from "./authenticate.js";

/**
 * Password guessing and mass sign-ups are slowed per client address and email, counted in Redis
 * so every api replica shares the count.
 */
export const AUTH_ATTEMPTS_PER_MINUTE = 10;

export const authRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const auth = app.auth;
  await app.register(rateLimit, {
    global: false,
    redis: deps.redis,
    nameSpace: `${deps.config.redisKeyPrefix}:ratelimit:`,
    // After the body is parsed, so the email can be part of the key.
    hook: "preHandler",
    keyGenerator: (request) => {
      const email = (request.body as { email?: unknown } | undefined)?.email;
      return `${request.ip}|${typeof email === "string" ? email.trim().toLowerCase() : ""}`;
    },
  });
  const limited = { rateLimit: { max: AUTH_ATTEMPTS_PER_MINUTE, timeWindow: 60_000 } };

  app.post(
    "/v1/auth/signup",
    {
      config: limited,
      schema: {
        tags: ["auth"],
        summary: "Create an account; answers a session with a bearer token (shown once)",
        body: Credentials,
        response: { 201: Session, ...errorResponses(400, 409, 429) },
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
      config: limited,
      schema: {
        tags: ["auth"],
        summary: "Sign in; answers a new bearer token",
        body: z.object({ email: z.string().max(254), password: z.string().max(256) }),
        response: { 200: Session, ...errorResponses(400, 401, 429) },
      },
    },
    async (request) => auth.login(request.body.email, request.body.password),
  );

  app.post(
    "/v1/auth/logout",
    {
      onRequest: app.authenticate,
      schema: { tags: ["auth"], summary: "Revoke the token used for this request", security: [{ bearer: [] }], response: { 204: z.null(), ...errorResponses(401) } },
    },
    async (request, reply) => {
      const token = bearerToken(request);
      if (token) await auth.logout(token);
      return reply.code(204).send(null);
    },
  );
};
