// HTTP routes of videos: generate, list, read, and stream the MP4 (Range requests for players
// and resumable downloads). Another user's video is 404.
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { CreateVideoRequest, Job, Video } from "@likeness/contracts";
import { errorResponses, errorResponsesDoc, type JsonSchema } from "../http/openapi.js";
import { RangeNotSatisfiable, type VideosService } from "./videos.service.js";

const Params = z.object({ id: z.uuid() });

/** Headers of a 200/206 answer of GET /v1/videos/:id/file (documented only). */
const fileHeaders = (partial: boolean): Record<string, JsonSchema> => ({
  "Accept-Ranges": { type: "string", enum: ["bytes"], description: "Byte ranges are supported" },
  "Content-Length": { type: "integer", description: partial ? "Bytes in this range" : "Bytes in the file" },
  "Content-Disposition": {
    type: "string",
    description: '`inline; filename="likeness-<id>.mp4"`, or `attachment; ...` with `?download=1`',
  },
  ...(partial ? { "Content-Range": { type: "string", description: "`bytes <start>-<end>/<size>`" } } : {}),
});
const mp4 = { "video/mp4": { schema: { type: "string", format: "binary" } } };

export const videosRoutes: FastifyPluginAsyncZod<{ videos: VideosService }> = async (app, { videos }) => {
  // onRequest: a request without a valid token is 401 before its body or parameters are looked at.
  app.addHook("onRequest", app.authenticate);

  app.post(
    "/v1/videos",
    {
      schema: {
        summary: "Generate a talking-avatar video from a trained profile",
        tags: ["videos"],
        security: [{ bearer: [] }],
        body: CreateVideoRequest,
        response: { 202: z.object({ video: Video, job: Job }), ...errorResponses(400, 401, 404, 409) },
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
        response: { 200: z.object({ videos: z.array(Video) }), ...errorResponses(401) },
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
        response: { 200: Video, ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => videos.get(request.user.id, request.params.id),
  );

  app.delete(
    "/v1/videos/:id",
    {
      schema: {
        summary: "Delete a video: its MP4, its job's steps and files",
        description: "409 while its job runs (cancel it first). A video edited from it stays, with its own copies.",
        tags: ["videos"],
        security: [{ bearer: [] }, { session: [] }],
        params: Params,
        response: { 204: z.null(), ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      await videos.delete(request.user.id, request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    "/v1/videos/:id/file",
    {
      schema: {
        summary: "The MP4 (supports Range; ?download=1 for an attachment)",
        description:
          "Streams the finished video as `video/mp4`. Send `Range: bytes=<start>-<end>` (one range) for a part: " +
          "206 with `Content-Range`; a range outside the file is 416 with `Content-Range: bytes */<size>`. " +
          "`?download=1` (or `true`) answers `Content-Disposition: attachment`, else `inline`. " +
          "409 while the video's job has not finished.",
        tags: ["videos"],
        security: [{ bearer: [] }],
        params: Params,
        querystring: z.object({
          download: z
            .enum(["0", "1", "true", "false"])
            .optional()
            .describe("`1` or `true`: `Content-Disposition: attachment` (save as a file); default inline"),
        }),
      },
      // Documented only: the body is a stream (never serialized) and Range is read from the headers.
      config: {
        openapi: {
          headers: {
            properties: {
              range: {
                type: "string",
                description: "One byte range, `bytes=<start>-<end>`, `bytes=<start>-` or `bytes=-<suffix length>` (RFC 9110)",
                example: "bytes=0-1048575",
              },
            },
          },
          responses: {
            200: { description: "The whole video", headers: fileHeaders(false), content: mp4 },
            206: { description: "The requested byte range (Range)", headers: fileHeaders(true), content: mp4 },
            ...errorResponsesDoc(400, 401, 404, 409),
            416: {
              ...errorResponsesDoc(416)[416],
              headers: { "Content-Range": { type: "string", description: "`bytes */<size>`: the file's size" } },
            },
          },
        },
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

  app.get(
    "/v1/videos/:id/subtitles.vtt",
    {
      schema: {
        summary: "The soft subtitles as WebVTT (for a <track>)",
        description: "404 when the video has no soft subtitles: burned in, turned off, or not made yet.",
        tags: ["videos"],
        security: [{ bearer: [] }, { session: [] }],
        params: Params,
      },
      config: {
        openapi: { responses: { 200: { description: "WebVTT", content: { "text/vtt": { schema: { type: "string" } } } }, ...errorResponsesDoc(401, 404) } },
      },
    },
    async (request, reply) => {
      const vtt = await videos.subtitles(request.user.id, request.params.id);
      return reply.header("content-type", "text/vtt; charset=utf-8").header("cache-control", "private, max-age=0").send(vtt);
    },
  );
};
