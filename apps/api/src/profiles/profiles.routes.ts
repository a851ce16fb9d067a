// POST /v1/profiles (multipart), GET /v1/profiles, GET /v1/profiles/:id, DELETE /v1/profiles/:id
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { ErrorBody, Profile, UPLOAD_LIMITS } from "@likeness/contracts";
import type { AppDeps } from "../app.js";
import { ProfileService } from "./profile.service.js";
import { parseProfileUpload } from "./upload-parser.js";

const IdParams = z.object({ id: z.uuid() });
const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody } as const;

export const profilesRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const profiles = new ProfileService(deps.db, deps.storage, app.log, app.profileDeleteHooks);
  app.addHook("preHandler", app.authenticate);

  app.post(
    "/v1/profiles",
    {
      schema: {
        tags: ["profiles"],
        summary: "Create a profile from photos and a voice sample",
        description:
          `multipart/form-data: field \`name\` (1..80 chars), optional \`triggerWord\`; files \`images\` ` +
          `(1..${UPLOAD_LIMITS.maxImages} PNG/JPEG/WebP, ≤ ${UPLOAD_LIMITS.maxImageBytes / 2 ** 20} MiB each, ` +
          `≤ ${UPLOAD_LIMITS.maxImagePixels / 1e6} MP) and \`voice\` (exactly 1 WAV/MP3/OGG/FLAC/WebM/M4A, ` +
          `${UPLOAD_LIMITS.minVoiceSec}..${UPLOAD_LIMITS.maxVoiceSec} s).`,
        consumes: ["multipart/form-data"],
        security: [{ bearer: [] }],
        response: { 201: Profile, ...errors, 409: ErrorBody, 413: ErrorBody, 415: ErrorBody },
      },
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
        response: { 200: z.object({ profiles: z.array(Profile) }), 401: ErrorBody },
      },
    },
    async (request) => ({ profiles: await profiles.list(request.user.id) }),
  );

  app.get(
    "/v1/profiles/:id",
    {
      schema: { tags: ["profiles"], summary: "One profile", security: [{ bearer: [] }], params: IdParams, response: { 200: Profile, ...errors } },
    },
    async (request) => profiles.get(request.user.id, request.params.id),
  );

  app.delete(
    "/v1/profiles/:id",
    {
      schema: {
        tags: ["profiles"],
        summary: "Delete a profile, its uploads, jobs and videos",
        security: [{ bearer: [] }],
        params: IdParams,
        response: { 204: z.null(), ...errors, 409: ErrorBody },
      },
    },
    async (request, reply) => {
      await profiles.delete(request.user.id, request.params.id);
      return reply.code(204).send(null);
    },
  );
};
