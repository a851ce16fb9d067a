// The `authenticate` onRequest hook (before body parsing and validation): `Authorization: Bearer
// <token>`, else the web session cookie → request.user; else 401. A request that rides on the
// cookie and changes something (or opens a WebSocket) must come from this site: its Origin is
// checked, so another site cannot act with a signed-in user's cookie.
import type { FastifyRequest } from "fastify";
import type { AuthService, AuthUser } from "./auth.service.js";
import { HttpError, unauthorized } from "../http/errors.js";
import { sessionToken } from "./session-cookie.js";

export function bearerToken(request: FastifyRequest): string | null {
  const h = request.headers.authorization;
  if (typeof h !== "string") return null;
  const m = /^Bearer\s+([A-Za-z0-9_\-.~+/=]+)\s*$/i.exec(h);
  return m?.[1] ?? null;
}

/** The token this request is signed in with, and whether it came in the cookie. */
export function requestToken(request: FastifyRequest): { token: string; cookie: boolean } | null {
  const bearer = bearerToken(request);
  if (bearer) return { token: bearer, cookie: false };
  const cookie = sessionToken(request);
  return cookie ? { token: cookie, cookie: true } : null;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * 403 unless the request's Origin is this site. Browsers send Origin on every POST, PUT, DELETE and
 * WebSocket, same-origin ones too, so a missing Origin is refused where it is checked.
 */
export function assertSameOrigin(request: FastifyRequest): void {
  const origin = request.headers.origin;
  const own = `${request.protocol}://${request.host}`;
  if (origin === own) return;
  throw new HttpError(
    403,
    "forbidden",
    origin ? `a request from ${origin.slice(0, 200)} may not use this site's session` : "a request with the session cookie must send Origin",
  );
}

const needsOriginCheck = (request: FastifyRequest) =>
  !SAFE_METHODS.has(request.method) || request.headers.upgrade?.toLowerCase() === "websocket";

export function makeAuthenticate(auth: AuthService) {
  return async function authenticate(request: FastifyRequest): Promise<void> {
    const found = requestToken(request);
    if (!found) throw unauthorized();
    if (found.cookie && needsOriginCheck(request)) assertSameOrigin(request);
    const user: AuthUser | null = await auth.verifyToken(found.token);
    if (!user) throw unauthorized(found.cookie ? "the session has ended: sign in again" : "the token is not valid (signed out or never issued)");
    request.user = user;
  };
}
