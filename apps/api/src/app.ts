// The app is a plugin; the server is separate (server.ts). Tests build it with buildApp(deps)
// and drive it with app.inject().
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import fastifySwagger from "@fastify/swagger";
import fastifySwaggerUi from "@fastify/swagger-ui";
import fastifyMultipart from "@fastify/multipart";
import fastifyCookie from "@fastify/cookie";
import { serializerCompiler } from "fastify-type-provider-zod";
import { UPLOAD_LIMITS } from "@likeness/contracts";
import type { AppDeps } from "./app-deps.js";
import "./http/fastify-augment.js";
import { loggerOptions } from "./http/logger.js";
import { registerErrorHandlers } from "./http/error-handler.js";
import { registerMethodNotAllowed } from "./http/method-not-allowed.js";
import { validatorCompiler } from "./http/validation.js";
import { openApiTransform } from "./http/openapi.js";
import { createMetricsRegistry, registerHttpMetrics } from "./metrics/metrics.js";
import { watchDependencies } from "./resilience/watch-dependencies.js";
import { opsRoutes } from "./metrics/ops.routes.js";
import { AuthService } from "./auth/auth.service.js";
import { makeAuthenticate } from "./auth/authenticate.js";
import { SESSION_COOKIE } from "./auth/session-cookie.js";
import { authRoutes } from "./auth/auth.routes.js";
import { usersRoutes } from "./users/users.routes.js";
import { profilesRoutes } from "./profiles/profiles.routes.js";
import type { ProfileDeleteHook } from "./profiles/profile.service.js";
import jobsPlugin from "./jobs/jobs.plugin.js";

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    ...(deps.log
      ? { loggerInstance: deps.log as FastifyBaseLogger }
      : { logger: loggerOptions(deps.config.logLevel) }),
    // Multipart is streamed by @fastify/multipart with its own limits; this bounds JSON bodies.
    bodyLimit: 1024 * 1024,
    trustProxy: true,
  });

  // fastify-type-provider-zod's compilers; validation messages in short human words (http/validation.ts).
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandlers(app);
  registerMethodNotAllowed(app); // before any route: it records each route's methods

  await app.register(fastifySwagger, {
    openapi: {
      info: { title: "Likeness API", description: "Profiles from photos + a voice sample; talking-avatar videos.", version: "0.1.0" },
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer" },
          session: { type: "apiKey", in: "cookie", name: SESSION_COOKIE, description: "The web studio's session (sign in with `session: \"cookie\"`)" },
        },
      },
    },
    // jsonSchemaTransform plus the documentation-only `config.openapi` of a route (http/openapi.ts).
    transform: openApiTransform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: "/docs" });

  await app.register(fastifyMultipart, {
    // See profiles/upload-parser.ts: the per-kind limits are enforced while streaming; these
    // are the outer bounds that stop a request before it costs memory or disk.
    preservePath: true, // keep "a/b.png" as sent, so a path in a file name is refused, not hidden
    throwFileSizeLimit: true,
    limits: {
      fileSize: Math.max(UPLOAD_LIMITS.maxImageBytes, UPLOAD_LIMITS.maxVoiceBytes) + 1,
      files: UPLOAD_LIMITS.maxImages + 10,
      fields: 20,
      fieldSize: 64 * 1024,
      parts: UPLOAD_LIMITS.maxImages + 40,
      headerPairs: 200,
    },
  });

  const metrics = createMetricsRegistry();
  app.decorate("metrics", metrics);
  registerHttpMetrics(app, metrics);
  app.decorate("health", watchDependencies(app, deps));

  await app.register(fastifyCookie);

  const auth = new AuthService(deps.db);
  app.decorate("auth", auth);
  app.decorate("authenticate", makeAuthenticate(auth));
  app.decorateRequest("user", null as never);

  app.decorate("profileDeleteHooks", [] as ProfileDeleteHook[]);

  await app.register(opsRoutes, deps);
  await app.register(authRoutes, deps);
  await app.register(usersRoutes, deps);
  await app.register(profilesRoutes, deps);

  // The job side (jobs, videos, workflows, the events consumer, WebSocket) registers here. It
  // receives the same deps; its own routes and hooks live in ./jobs/jobs.plugin.ts.
  await app.register(jobsPlugin, deps);

  return app;
}
