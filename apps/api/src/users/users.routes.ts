// GET /v1/me
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { User } from "@likeness/contracts";
import { errorResponses } from "../http/openapi.js";
import { UsersService } from "./users.service.js";
import type { AppDeps } from "../app-deps.js";

export const usersRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const users = new UsersService(deps.db);
  app.get(
    "/v1/me",
    {
      onRequest: app.authenticate,
      schema: { tags: ["auth"], summary: "The signed-in user", security: [{ bearer: [] }], response: { 200: User, ...errorResponses(401) } },
    },
    async (request) => users.me(request.user.id),
  );
};
