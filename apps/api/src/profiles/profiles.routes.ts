// POST /v1/profiles (multipart), GET /v1/profiles, GET /v1/profiles/:id, DELETE /v1/profiles/:id
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { Profile, UPLOAD_LIMITS } from "@likeness/contracts";
import type { AppDeps } from "../app-deps.js";
import { errorResponses, errorResponsesDoc, type JsonSchema } from "../http/openapi.js";
import { ProfileService } from "./profile.service.js";
import { parseProfileUpload } from "./upload-parser.js";

const IdParams = z.object({ id: z.uuid() });
const MiB = 2 ** 20;

/**
 * The multipart body of POST /v1/profiles, for the OpenAPI document only: the route parses the
 * stream itself (upload-parser.ts), so Fastify must not validate a body against this.
 */
const createProfileBody: JsonSchema = {
  type: "object",
  required: ["name", "images", "voice"],
  properties: {
    name: { type: "string", minLength: 1, maxLength: 80, description: "The profile's name: 1..80 characters (trimmed)." },
    triggerWord: {
      type: "string",
      pattern: "^[a-z][a-z0-9]{2,31}$",
      description:
        "Optional: the word the trained model knows this person by; 3..32 lowercase letters and digits, " +
        "starting with a letter, unique among your profiles. Made from the name when left out.",
    },
    images: {
      type: "array",
      minItems: 1,
      maxItems: UPLOAD_LIMITS.maxImages,
      items: { type: "string", format: "binary" },
      description:
        `Photos of the person: 1..${UPLOAD_LIMITS.maxImages} files in the field \`images\` (repeat the field), PNG, JPEG or WebP, ` +
        `each at most ${UPLOAD_LIMITS.maxImageBytes / MiB} MiB, at most ${UPLOAD_LIMITS.maxImagePixels / 1e6} megapixels and ` +
        `at least ${UPLOAD_LIMITS.minImageSide} px on each side.`,
    },
    voice: {
      type: "string",
      format: "binary",
      description:
        `Exactly one voice sample: WAV, MP3, OGG, FLAC, WebM or M4A, ${UPLOAD_LIMITS.minVoiceSec}..${UPLOAD_LIMITS.maxVoiceSec} s, ` +
        `at most ${UPLOAD_LIMITS.maxVoiceBytes / MiB} MiB.`,
    },
  },
};

export const profilesRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const profiles = new ProfileService(deps.db, deps.storage, app.log, app.profileDeleteHooks);
  // onRequest: a request without a valid token is 401 before its body or parameters are looked at.
  app.addHook("onRequest", app.authenticate);

  app.post(
    "/v1/profiles",
    {
      schema: {
        tags: ["profiles"],
        summary: "Create a profile from photos and a voice sample",
        description:
          `multipart/form-data: field \`name\` (1..80 chars), optional \`triggerWord\`; files \`images\` ` +
          `(1..${UPLOAD_LIMITS.maxImages} PNG/JPEG/WebP, ≤ ${UPLOAD_LIMITS.maxImageBytes / MiB} MiB each, ` +
          `≤ ${UPLOAD_LIMITS.maxImagePixels / 1e6} MP) and \`voice\` (exactly 1 WAV/MP3/OGG/FLAC/WebM/M4A, ` +
          `${UPLOAD_LIMITS.minVoiceSec}..${UPLOAD_LIMITS.maxVoiceSec} s). ` +
          `At most ${UPLOAD_LIMITS.maxTotalBytes / MiB} MiB in all.`,
        consumes: ["multipart/form-data"],
        security: [{ bearer: [] }],
        response: { 201: Profile, ...errorResponses(400, 401, 409, 413, 415) },
      },
      // Documented only: the route streams and checks the parts itself (see createProfileBody).
      config: { openapi: { body: createProfileBody, consumes: ["multipart/form-data"] } },
    },
    async (request, reply) => {
      const tmp = await mkdtemp(path.join(os.tmpdir(), "lk-upload-"));
      try {
        const upload = await parseProfileUpload(request, tmp);
        const profile = await profiles.create(request.user.id, upload);
        return reply.code(201).send(profile);
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    },
  );

  app.get(
    "/v1/profiles",
    {
      schema: {
        tags: ["profiles"],
        summary: "Your profiles, newest first",
        security: [{ bearer: [] }],
        response: { 200: z.object({ profiles: z.array(Profile) }), ...errorResponses(401) },
      },
    },
    async (request) => ({ profiles: await profiles.list(request.user.id) }),
  );

  app.get(
    "/v1/profiles/:id",
    {
      schema: { tags: ["profiles"], summary: "One profile", security: [{ bearer: [] }], params: IdParams, response: { 200: Profile, ...errorResponses(400, 401, 404) } },
    },
    async (request) => profiles.get(request.user.id, request.params.id),
  );

  app.get(
    "/v1/profiles/:id/photos/:position",
    {
      schema: {
        tags: ["profiles"],
        summary: "One of the profile's photos as a square WebP thumbnail",
        description: "`position` is the photo's place in the upload (1-based), as in `inputs`; `size` is the side in pixels.",
        security: [{ bearer: [] }, { session: [] }],
        params: z.object({ id: z.uuid(), position: z.coerce.number().int().min(1).max(UPLOAD_LIMITS.maxImages) }),
        querystring: z.object({ size: z.coerce.number().int().min(32).max(1024).default(256) }),
      },
      config: {
        openapi: { responses: { 200: { description: "WebP", content: { "image/webp": { schema: { type: "string", format: "binary" } } } }, ...errorResponsesDoc(400, 401, 404) } },
      },
    },
    async (request, reply) => {
      const image = await profiles.thumbnail(request.user.id, request.params.id, request.params.position, request.query.size);
      // An upload never changes: the browser may keep it for a day.
      return reply.header("content-type", "image/webp").header("cache-control", "private, max-age=86400").send(image);
    },
  );

  app.delete(
    "/v1/profiles/:id",
    {
      schema: {
        tags: ["profiles"],
        summary: "Delete a profile, its uploads, jobs and videos",
        security: [{ bearer: [] }],
        params: IdParams,
        response: { 204: z.null(), ...errorResponses(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      await profiles.delete(request.user.id, request.params.id);
      return reply.code(204).send(null);
    },
  );
};
