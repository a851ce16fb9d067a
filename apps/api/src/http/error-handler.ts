// One error shape for every failure: contracts `ErrorBody`. Validation → 400 naming the field;
// errors from Fastify/plugins keep their 4xx status; Redis or Postgres briefly away → 503 with
// Retry-After; everything else → 500 without internals.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from "fastify-type-provider-zod";
import type { ErrorBody } from "@likeness/contracts";
import { fieldFromPath, HttpError } from "./errors.js";
import { InvalidRangeError, ObjectNotFoundError } from "../storage/object-storage.js";
import { isTransient } from "../resilience/transient-errors.js";

const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "unsupported_media_type",
  FST_ERR_CTP_BODY_TOO_LARGE: "too_large",
  FST_ERR_CTP_EMPTY_JSON_BODY: "validation",
  FST_ERR_CTP_INVALID_JSON_BODY: "validation",
  FST_REQ_FILE_TOO_LARGE: "too_large",
  FST_FILES_LIMIT: "too_large",
  FST_PARTS_LIMIT: "too_large",
  FST_FIELDS_LIMIT: "too_large",
  FST_INVALID_MULTIPART_CONTENT_TYPE: "validation",
};

function statusName(status: number): string {
  if (status === 400) return "validation";
  if (status === 401) return "unauthorized";
  if (status === 403) return "forbidden";
  if (status === 404) return "not_found";
  if (status === 405) return "method_not_allowed";
  if (status === 409) return "conflict";
  if (status === 413) return "too_large";
  if (status === 415) return "unsupported_media_type";
  if (status === 429) return "rate_limited";
  return status >= 500 ? "internal" : "bad_request";
}

export function toErrorBody(err: unknown, request: FastifyRequest): { status: number; body: ErrorBody } {
  if (err instanceof HttpError) {
    const body: ErrorBody = { error: err.error, message: err.message };
    if (err.field) body.field = err.field;
    if (err.issues) body.issues = err.issues;
    return { status: err.statusCode, body };
  }
  if (hasZodFastifySchemaValidationErrors(err)) {
    const first = err.validation[0];
    const segments = (first?.instancePath ?? "").split("/").filter((s) => s !== "");
    const context = (err as { validationContext?: string }).validationContext;
    const field = fieldFromPath(segments) ?? (context === "body" ? "body" : context);
    const message = `${field ? `${field}: ` : ""}${first?.message ?? "invalid request"}`;
    const body: ErrorBody = { error: "validation", message };
    if (field) body.field = field;
    return { status: 400, body };
  }
  if (isResponseSerializationError(err)) {
    request.log.error({ err, issues: err.cause.issues }, "response does not match its schema");
    return { status: 500, body: { error: "internal", message: "internal error" } };
  }
  if (err instanceof ObjectNotFoundError) return { status: 404, body: { error: "not_found", message: "object not found" } };
  if (err instanceof InvalidRangeError) return { status: 416, body: { error: "range_not_satisfiable", message: err.message } };

  if (isTransient(err)) {
    // Redis or Postgres is away for a moment (a restart, a failover): try again shortly.
    return { status: 503, body: { error: "unavailable", message: "a service the api depends on is unavailable; retry shortly" } };
  }

  const fe = err as Partial<FastifyError>;
  const status = typeof fe.statusCode === "number" ? fe.statusCode : 500;
  if (status >= 400 && status < 500) {
    const code = (fe.code && FASTIFY_CODES[fe.code]) || statusName(status);
    return { status, body: { error: code, message: fe.message ?? code } };
  }
  return { status: 500, body: { error: "internal", message: "internal error" } };
}

export function registerErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const { status, body } = toErrorBody(err, request);
    if (status === 503) void reply.header("retry-after", "5");
    if (status >= 500) request.log.error({ err }, "request failed");
    else request.log.info({ status, error: body.error, field: body.field }, body.message);
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: "not_found", message: `no route ${request.method} ${request.url.split("?")[0]}` }),
  );
}
