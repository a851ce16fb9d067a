// GET /v1/me
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { User } from "@likeness/contracts";
import { errorResponses } from "../http/openapi.js";
import { UsersRepository } from "./users.repository.js";
import { toUser } from "./user.mapper.js";
import { unauthorized } from "../http/errors.js";
import type { AppDeps } from "../app.js";

export const usersRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const users = new UsersRepository(deps.db);
  app.get(
    "/v1/me",
    {
      onRequest: app.authenticate,
      schema: { tags: ["auth"], summary: "The signed-in user", security: [{ bearer: [] }], response: { 200: User, ...errorResponses(401) } },
    },
    async (request) => {
      const row = await users.findById(request.user.id);
      if (!row) throw unauthorized();
      return toUser(row);
    },
  );
};
