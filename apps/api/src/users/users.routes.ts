// GET /v1/me
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { ErrorBody, User } from "@likeness/contracts";
import { UsersRepository } from "./users.repository.js";
import { toUser } from "./user.mapper.js";
import { unauthorized } from "../http/errors.js";
import type { AppDeps } from "../app.js";

export const usersRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const users = new UsersRepository(deps.db);
  app.get(
    "/v1/me",
    {
      preHandler: app.authenticate,
      schema: { tags: ["auth"], summary: "The signed-in user", security: [{ bearer: [] }], response: { 200: User, 401: ErrorBody } },
    },
    async (request) => {
      const row = await users.findById(request.user.id);
      if (!row) throw unauthorized();
      return toUser(row);
    },
  );
};
