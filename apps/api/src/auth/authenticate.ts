// The `authenticate` onRequest hook (before body parsing and validation): `Authorization: Bearer <token>` → request.user, else 401.
import type { FastifyRequest } from "fastify";
import type { AuthService, AuthUser } from "./auth.service.js";
import { unauthorized } from "../http/errors.js";

export function bearerToken(request: FastifyRequest): string | null {
  const h = request.headers.authorization;
  if (typeof h !== "string") return null;
  const m = /^Bearer\s+([A-Za-z0-9_\-.~+/=]+)\s*$/i.exec(h);
  return m?.[1] ?? null;
}

export function makeAuthenticate(auth: AuthService) {
  return async function authenticate(request: FastifyRequest): Promise<void> {
    const token = bearerToken(request);
    if (!token) throw unauthorized();
    const user: AuthUser | null = await auth.verifyToken(token);
    if (!user) throw unauthorized("the token is not valid (signed out or never issued)");
    request.user = user;
  };
}
