// WebSocket GET /v1/jobs/:id/events. Auth: `Authorization: Bearer`, `?token=` (a script cannot set
// headers on a WebSocket), or the web studio's session cookie with this site's Origin. First message: {type:"job", job} snapshot; then every JobUpdate
// from `{prefix}:job-updates:<jobId>` and progress from `{prefix}:progress:<jobId>` as
// {type:"progress", progress}, in the order they arrive. Closes after a terminal snapshot.
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { WebSocket } from "ws";
import { z } from "zod";
import { isTerminal, JobUpdate, Progress, redisKeys, type Job } from "@likeness/contracts";
import { notFound } from "../http/errors.js";
import { errorResponsesDoc } from "../http/openapi.js";
import type { JobsService } from "../jobs/jobs.service.js";
import type { JobUpdatesHub } from "./job-updates.hub.js";

/** After job_finished, how long to wait for the finalized snapshot before sending one from the db. */
const FINAL_SNAPSHOT_WAIT_MS = 10_000;

const Params = z.object({ id: z.uuid() });
const Query = z.object({
  token: z
    .string()
    .max(512)
    .optional()
    .describe("The bearer token, for clients that cannot set headers on a WebSocket (browsers); `Authorization` wins when both are sent"),
});

const DESCRIPTION = [
  "A **WebSocket** (RFC 6455): open it with `GET` and `Connection: Upgrade`, `Upgrade: websocket`; the answer is ",
  "`101 Switching Protocols`. A plain HTTP GET without the upgrade is 404.",
  "",
  "**Auth**: `Authorization: Bearer <token>`, or `?token=<token>` where headers cannot be set, or the web ",
  "studio's session cookie (then `Origin` must be this site, else 403). ",
  "Without a valid token the upgrade is refused with 401; another user's job, or none, is 404.",
  "",
  "**Messages** (server → client, JSON text frames, contracts `JobUpdate`; see `x-websocket-messages`):",
  "1. first always `{type: \"job\", job}`: a snapshot of the job (as `GET /v1/jobs/{id}`);",
  "2. then, in the order they happen, `{type: \"event\", event}` (the worker's and the api's job events) and ",
  "   `{type: \"progress\", progress}` (step progress);",
  "3. when the job ends, a final `{type: \"job\", job}` snapshot in its terminal state (`succeeded`, `failed`, ",
  "   `cancelled`), then the server closes with code 1000. A job that has already ended: its snapshot, then the close.",
  "",
  "The client sends nothing (messages from it are ignored). Close codes: 1000 finished, 1008 job not found, 1011 server error.",
].join("\n");

export function jobEventsRoutes(app: FastifyInstance, jobs: JobsService, hub: JobUpdatesHub, prefix: string): void {
  const keys = redisKeys(prefix);

  app.route({
    method: "GET",
    url: "/v1/jobs/:id/events",
    schema: {
      summary: "Live updates of a job over a WebSocket: snapshot, events and progress until it ends",
      description: DESCRIPTION,
      tags: ["jobs"],
      security: [{ bearer: [] }, { session: [] }],
      params: Params,
      querystring: Query,
    },
    // Documented only (nothing here is validated or serialized): the upgrade and the messages.
    config: {
      openapi: {
        headers: {
          properties: {
            connection: { type: "string", enum: ["Upgrade"], description: "`Upgrade`" },
            upgrade: { type: "string", enum: ["websocket"], description: "`websocket`" },
          },
          required: ["connection", "upgrade"],
        },
        responses: {
          101: { description: "Switching Protocols: the WebSocket is open; the messages are `x-websocket-messages`", type: "null" },
          ...errorResponsesDoc(400, 401, 403, 404),
        },
        extensions: { "x-websocket-messages": z.toJSONSchema(JobUpdate, { target: "openapi-3.0", io: "output" }) },
      },
    },
    // wsHandler serves the upgrade; handler answers a plain HTTP GET.
    handler: async () => {
      throw notFound("route"); // plain HTTP on a WebSocket route
    },
    // The token first (?token= becomes the header), then authenticate: 401 before validation.
    onRequest: [
      async (request: FastifyRequest) => {
        const q = request.query as { token?: unknown };
        if (!request.headers.authorization && typeof q.token === "string" && q.token !== "") {
          request.headers.authorization = `Bearer ${q.token}`;
        }
      },
      app.authenticate,
    ],
    preHandler: async (request: FastifyRequest) => {
      const { id } = request.params as { id: string };
      if (!(await jobs.hasJob(request.user.id, id))) throw notFound("job");
    },
    wsHandler: (socket: WebSocket, request: FastifyRequest) => {
      const { id: jobId } = request.params as { id: string };
      const userId = request.user.id;
      let ready = false;
      let closed = false;
      const pending: JobUpdate[] = [];
      let finalTimer: NodeJS.Timeout | undefined;
      let unsubscribe: (() => Promise<void>) | undefined;

      const finish = (code = 1000, reason = "job finished") => {
        if (closed) return;
        closed = true;
        clearTimeout(finalTimer);
        void unsubscribe?.();
        socket.close(code, reason);
      };
      const send = (u: JobUpdate) => {
        if (closed) return;
        socket.send(JSON.stringify(u));
        if (u.type === "job" && isTerminal(u.job.state)) finish();
        else if (u.type === "event" && u.event.type === "job_finished" && !finalTimer) {
          // The finalized snapshot normally follows within milliseconds; do not wait forever.
          finalTimer = setTimeout(() => void snapshot().then((job) => job && send({ type: "job", job })), FINAL_SNAPSHOT_WAIT_MS);
        }
      };
      const snapshot = (): Promise<Job | undefined> => jobs.findJob(userId, jobId);

      const onMessage = (channel: string, message: string) => {
        let update: JobUpdate | undefined;
        try {
          const data: unknown = JSON.parse(message);
          if (channel === keys.progress(jobId)) {
            const p = Progress.safeParse(data);
            if (p.success) update = { type: "progress", progress: p.data };
          } else {
            const u = JobUpdate.safeParse(data);
            if (u.success) update = u.data;
          }
        } catch {
          update = undefined;
        }
        if (!update) return;
        if (update.type === "job" && update.job.id !== jobId) return;
        if (ready) send(update);
        else pending.push(update);
      };

      socket.on("close", () => {
        closed = true;
        clearTimeout(finalTimer);
        void unsubscribe?.();
      });
      socket.on("error", () => finish(1011, "error"));

      void (async () => {
        try {
          // Subscribe first, then read the snapshot: nothing published in between is lost.
          unsubscribe = await hub.subscribe([keys.jobUpdates(jobId), keys.progress(jobId)], onMessage);
          if (closed) return void unsubscribe();
          const job = await snapshot();
          if (!job) return finish(1008, "job not found");
          ready = true;
          send({ type: "job", job });
          for (const u of pending.splice(0)) send(u);
        } catch (err) {
          request.log.error({ err, jobId }, "job events socket failed");
          finish(1011, "internal error");
        }
      })();
    },
  });
}
