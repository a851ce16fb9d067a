// The web studio's session: the same kind of token as the CLI's, carried in an httpOnly cookie so
// script on the page never sees it. SameSite=Lax keeps other sites' subrequests from carrying it;
// the Origin check (authenticate.ts) covers what Lax lets through.
import type { FastifyReply, FastifyRequest } from "fastify";

export const SESSION_COOKIE = "likeness_session";
/** A web session ends this long after sign-in (a CLI token lasts until it is revoked). */
export const SESSION_TTL_MS = 30 * 24 * 3600 * 1000;

export function sessionToken(request: FastifyRequest): string | null {
  const value = request.cookies[SESSION_COOKIE];
  return typeof value === "string" && value !== "" ? value : null;
}

export function setSessionCookie(request: FastifyRequest, reply: FastifyReply, token: string, expires: Date): void {
  reply.setCookie(SESSION_COOKIE, token, { ...cookieOptions(request), expires });
}

export function clearSessionCookie(request: FastifyRequest, reply: FastifyReply): void {
  reply.clearCookie(SESSION_COOKIE, cookieOptions(request));
}

// `Secure` behind https (the proxy's X-Forwarded-Proto counts: trustProxy is on), so a plain
// http://localhost studio still works.
const cookieOptions = (request: FastifyRequest) =>
  ({ path: "/", httpOnly: true, sameSite: "lax", secure: request.protocol === "https" }) as const;
