// Types that the app adds to Fastify: request.user after `authenticate`, and the decorators.
import type { onRequestAsyncHookHandler } from "fastify";
import type { Registry } from "prom-client";
import type { AuthService, AuthUser } from "../auth/auth.service.js";
import type { ProfileDeleteHook } from "../profiles/profile.service.js";
import type { DependencyHealth } from "../resilience/dependency-health.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Set by the `authenticate` hook. Only read it on routes that use it. */
    user: AuthUser;
  }
  interface FastifyInstance {
    /**
     * onRequest hook: `Authorization: Bearer <token>` → request.user, else 401 ErrorBody. Run it in
     * onRequest, so that an anonymous request is 401 before any validation (never 400).
     */
    authenticate: onRequestAsyncHookHandler;
    /** Token checks (e.g. for a WebSocket that sends its token another way). */
    auth: AuthService;
    /** The app's prom-client registry: register your metrics with `registers: [app.metrics]`. */
    metrics: Registry;
    /** Whether Redis and Postgres answer; report what a background loop meets there. */
    health: DependencyHealth;
    /**
     * Called before a profile's rows are deleted (push yours from any plugin). A hook may throw
     * an HttpError (e.g. 409 while a job runs) and returns storage prefixes ("jobs/<id>/") to
     * delete once the rows are gone.
     */
    profileDeleteHooks: ProfileDeleteHook[];
  }
}

export {};
