// Streams a multipart profile upload into temp files, enforcing the limits while the bytes
// arrive (contracts UPLOAD_LIMITS): nothing oversized is ever held in memory or stored.
import { createWriteStream } from "node:fs";
import path from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { FastifyRequest } from "fastify";
import { UPLOAD_LIMITS } from "@likeness/contracts";
import { badRequest, HttpError, tooLarge, unsupportedMedia } from "../http/errors.js";

export interface TempFile {
  /** The ErrorBody field name: "images[0]", "voice". */
  field: string;
  rawName: string | undefined;
  path: string;
  bytes: number;
}

export interface ParsedUpload {
  fields: Record<string, string>;
  images: TempFile[];
  voices: TempFile[];
}

const TEXT_FIELDS = new Set(["name", "triggerWord"]);

function sizeGuard(file: TempFile, maxBytes: number, total: { bytes: number }) {
  const field = file.field;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      file.bytes += chunk.length;
      total.bytes += chunk.length;
      if (file.bytes > maxBytes) {
        cb(tooLarge(`${field}: larger than ${Math.round(maxBytes / 1024 / 1024)} MiB`, field));
      } else if (total.bytes > UPLOAD_LIMITS.maxTotalBytes) {
        cb(tooLarge(`the upload is larger than ${Math.round(UPLOAD_LIMITS.maxTotalBytes / 1024 / 1024)} MiB in all`, field));
      } else cb(null, chunk);
    },
  });
}

export async function parseProfileUpload(request: FastifyRequest, tmpDir: string): Promise<ParsedUpload> {
  if (!request.isMultipart()) {
    throw unsupportedMedia("send multipart/form-data: field name, files images and voice");
  }
  try {
    return await readParts(request, tmpDir);
  } catch (err) {
    throw asClientError(err);
  }
}

/**
 * A body that is not well-formed multipart (no boundary, cut short, a broken part header) is the
 * client's fault: busboy reports it as a plain Error, which would otherwise become a 500.
 * Errors that already carry a status, and system errors (ENOSPC, EACCES...), are passed on.
 */
function asClientError(err: unknown): unknown {
  if (err instanceof HttpError) return err;
  const e = err as { statusCode?: unknown; code?: unknown; message?: unknown };
  if (typeof e?.statusCode === "number" || typeof e?.code === "string") return err;
  const message = typeof e?.message === "string" ? e.message : "";
  if (/^(Multipart: |Unexpected end of |Malformed part header|(Part|Preamble) terminated early)/.test(message)) {
    return badRequest(`the multipart/form-data body is malformed (${message.slice(0, 100)})`);
  }
  return err;
}

async function readParts(request: FastifyRequest, tmpDir: string): Promise<ParsedUpload> {
  const out: ParsedUpload = { fields: {}, images: [], voices: [] };
  const total = { bytes: 0 };
  let n = 0;

  for await (const part of request.parts()) {
    if (!part.fieldname) throw badRequest("every part of the form needs a name (Content-Disposition: form-data; name=...)");
    if (part.type === "field") {
      if (part.fieldname === "images" || part.fieldname === "voice") {
        throw badRequest(`${part.fieldname}: must be a file (with a file name)`, part.fieldname);
      }
      if (!TEXT_FIELDS.has(part.fieldname)) throw badRequest(`unknown field ${part.fieldname}`, part.fieldname);
      if (part.fieldname in out.fields) throw badRequest(`${part.fieldname}: given twice`, part.fieldname);
      out.fields[part.fieldname] = String(part.value);
      continue;
    }

    let field: string;
    let max: number;
    if (part.fieldname === "images") {
      if (out.images.length >= UPLOAD_LIMITS.maxImages) {
        throw badRequest(`images: at most ${UPLOAD_LIMITS.maxImages} images`, "images");
      }
      field = `images[${out.images.length}]`;
      max = UPLOAD_LIMITS.maxImageBytes;
    } else if (part.fieldname === "voice") {
      if (out.voices.length >= 1) throw badRequest("voice: exactly one voice sample", "voice");
      field = "voice";
      max = UPLOAD_LIMITS.maxVoiceBytes;
    } else {
      throw badRequest(`unknown file field ${part.fieldname}`, part.fieldname);
    }

    const file: TempFile = { field, rawName: part.filename, path: path.join(tmpDir, `part-${n++}`), bytes: 0 };
    (part.fieldname === "images" ? out.images : out.voices).push(file);
    const guard = sizeGuard(file, max, total);
    try {
      await pipeline(part.file, guard, createWriteStream(file.path));
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === "FST_REQ_FILE_TOO_LARGE") throw tooLarge(`${field}: file too large`, field);
      throw err;
    }
  }
  return out;
}
