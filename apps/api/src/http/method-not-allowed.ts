// A method the api does not declare on a path it does declare (`TRACE /v1/videos`,
// `PATCH /v1/jobs/{id}`) is 405 with `Allow: <the declared methods>` and an ErrorBody, not 404.
// It is answered in onRequest, before any body is read: a POST carrying WebSocket upgrade headers
// to the WebSocket route gets its 405 at once (its body would never arrive on an upgraded socket).
import type { ServerResponse } from "node:http";
import { Socket } from "node:net";
import type { FastifyInstance } from "fastify";

/** `/v1/jobs/:id/events` → a RegExp matching its concrete paths (`*` matches the rest). */
function pathPattern(url: string): RegExp {
  const source = url
    .split(/(:[A-Za-z0-9_]+|\*)/)
    .map((part) => (part === "*" ? ".*" : part.startsWith(":") ? "[^/]+" : part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${source}$`);
}

/**
 * An upgrade request's socket is no longer Node's to close (@fastify/websocket routes it through
 * Fastify by hand, and closes it only when its own hooks ran): end it once the answer is written,
 * reading and dropping whatever the client still sends, so that neither side waits on the other.
 */
function closeAfterAnswer(socket: unknown, response: ServerResponse): void {
  if (!(socket instanceof Socket)) return; // app.inject()'s stand-in: nothing to close
  response.once("finish", () => {
    socket.once("end", () => socket.destroy());
    socket.setTimeout(5000, () => socket.destroy());
    socket.resume();
    socket.end();
  });
}

/** Register before the routes (the onRoute hook sees only routes added after it). */
export function registerMethodNotAllowed(app: FastifyInstance): void {
  const routes: Array<{ pattern: RegExp; methods: string[] }> = [];
  app.addHook("onRoute", (route) => {
    routes.push({ pattern: pathPattern(route.url), methods: [route.method].flat() });
  });

  app.addHook("onRequest", async (request, reply) => {
    if (!request.is404) return;
    const path = request.url.split("?")[0] ?? "/";
    const allow = new Set(routes.filter((r) => r.pattern.test(path)).flatMap((r) => r.methods));
    if (request.headers.upgrade) closeAfterAnswer(request.raw.socket, reply.raw);
    if (allow.size === 0) {
      if (!request.headers.upgrade) return; // the not-found handler answers 404
      // An upgrade to nowhere: answered here, as the not-found handler would wait for a body.
      return reply.code(404).send({ error: "not_found", message: `no route ${request.method} ${path}` });
    }
    const allowed = [...allow].sort().join(", ");
    return reply
      .code(405)
      .header("allow", allowed)
      .send({ error: "method_not_allowed", message: `${request.method} is not allowed on ${path} (allowed: ${allowed})` });
  });
}
