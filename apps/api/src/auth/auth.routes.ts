// POST /v1/auth/signup, /v1/auth/login, /v1/auth/logout
import { z } from "zod";
import rateLimit from "@fastify/rate-limit";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { FastifyReply, FastifyRequest } from "fastify";
import { CookieSession, Credentials, Session, SessionMode } from "@likeness/contracts";
import { errorResponses } from "../http/openapi.js";
import type { AppDeps } from "../app-deps.js";
import { assertSameOrigin, requestToken } from "./authenticate.js";
import type { IssuedSession } from "./auth.service.js";
import { clearSessionCookie, setSessionCookie } from "./session-cookie.js";

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
  // A cookie session is for this site's pages only: a sign-in from another site is refused, so it
  // cannot sign the browser into an account of the attacker's choosing.
  const sessionCheck = async (request: FastifyRequest) => {
    if ((request.body as { session?: unknown }).session === "cookie") assertSameOrigin(request);
  };
  // `cookie`: the token goes into the httpOnly cookie and the answer shows only the user.
  const answer = (request: FastifyRequest, reply: FastifyReply, mode: SessionMode | undefined, s: IssuedSession) => {
    if (mode !== "cookie" || !s.expiresAt) return { user: s.user, token: s.token };
    setSessionCookie(request, reply, s.token, s.expiresAt);
    return { user: s.user };
  };

  app.post(
    "/v1/auth/signup",
    {
      config: limited,
      schema: {
        tags: ["auth"],
        summary: "Create an account; answers a bearer token (shown once), or sets the session cookie",
        body: Credentials,
        response: { 201: z.union([Session, CookieSession]), ...errorResponses(400, 403, 409, 429) },
      },
      preHandler: sessionCheck,
    },
    async (request, reply) => {
      const { email, password, session: mode } = request.body;
      const session = await auth.signup(email, password, mode);
      return reply.code(201).send(answer(request, reply, mode, session));
    },
  );

  app.post(
    "/v1/auth/login",
    {
      config: limited,
      schema: {
        tags: ["auth"],
        summary: "Sign in; answers a new bearer token, or sets the session cookie",
        body: z.object({ email: z.string().max(254), password: z.string().max(256), session: Credentials.shape.session }),
        response: { 200: z.union([Session, CookieSession]), ...errorResponses(400, 401, 403, 429) },
      },
      preHandler: sessionCheck,
    },
    async (request, reply) => {
      const { email, password, session: mode } = request.body;
      return answer(request, reply, mode, await auth.login(email, password, mode));
    },
  );

  app.post(
    "/v1/auth/logout",
    {
      onRequest: app.authenticate,
      schema: {
        tags: ["auth"],
        summary: "Revoke the token or session used for this request (and clear the session cookie)",
        security: [{ bearer: [] }, { session: [] }],
        response: { 204: z.null(), ...errorResponses(401, 403) },
      },
    },
    async (request, reply) => {
      const found = requestToken(request);
      if (found) await auth.logout(found.token);
      if (found?.cookie) clearSessionCookie(request, reply);
      return reply.code(204).send(null);
    },
  );
};
