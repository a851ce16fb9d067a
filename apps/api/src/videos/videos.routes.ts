// HTTP routes of videos: generate, list, read, and stream the MP4 (Range requests for players
// and resumable downloads). Another user's video is 404.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { CreateVideoRequest, ErrorBody, Job, Video } from "@likeness/contracts";
import { RangeNotSatisfiable, type VideosService } from "./videos.service.js";

const Params = z.object({ id: z.uuid() });
const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody };

export const videosRoutes: FastifyPluginAsyncZod<{ videos: VideosService }> = async (app, { videos }) => {
  app.addHook("preHandler", app.authenticate);

  app.post(
    "/v1/videos",
    {
      schema: {
        summary: "Generate a talking-avatar video from a trained profile",
        tags: ["videos"],
        security: [{ bearer: [] }],
        body: CreateVideoRequest,
        response: { 202: z.object({ video: Video, job: Job }), ...errors },
      },
    },
    async (request, reply) => reply.code(202).send(await videos.create(request.user.id, request.body)),
  );

  app.get(
    "/v1/videos",
    {
      schema: {
        summary: "The user's videos, newest first",
        tags: ["videos"],
        security: [{ bearer: [] }],
        response: { 200: z.object({ videos: z.array(Video) }), ...errors },
      },
    },
    async (request) => ({ videos: await videos.list(request.user.id) }),
  );

  app.get(
    "/v1/videos/:id",
    {
      schema: {
        summary: "One video",
        tags: ["videos"],
        security: [{ bearer: [] }],
        params: Params,
        response: { 200: Video, ...errors },
      },
    },
    async (request) => videos.get(request.user.id, request.params.id),
  );

  app.get(
    "/v1/videos/:id/file",
    {
      schema: {
        summary: "The MP4 (supports Range; ?download=1 for an attachment)",
        tags: ["videos"],
        security: [{ bearer: [] }],
        params: Params,
        querystring: z.object({ download: z.enum(["0", "1", "true", "false"]).optional() }),
      },
    },
    async (request, reply) => {
      let opened;
      try {
        opened = await videos.openFile(request.user.id, request.params.id, request.headers.range);
      } catch (err) {
        if (err instanceof RangeNotSatisfiable) {
          return reply
            .code(416)
            .header("accept-ranges", "bytes")
            .header("content-range", `bytes */${err.totalSize}`)
            .send({ error: err.error, message: err.message });
        }
        throw err;
      }
      const { file, range } = opened;
      const download = request.query.download === "1" || request.query.download === "true";
      reply
        .header("accept-ranges", "bytes")
        .header("content-type", "video/mp4")
        .header("content-length", String(file.size))
        .header("content-disposition", `${download ? "attachment" : "inline"}; filename="likeness-${request.params.id}.mp4"`)
        .header("cache-control", "private, max-age=0");
      if (range) {
        reply.code(206).header("content-range", `bytes ${range.start}-${range.end}/${file.totalSize}`);
      }
      return reply.send(file.stream);
    },
  );
};
