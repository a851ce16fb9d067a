// The OpenAPI document (/docs/json) is generated from the routes' zod schemas by
// fastify-type-provider-zod's `jsonSchemaTransform`. What a zod schema cannot say without changing
// what the route validates or serializes (a multipart body the route parses itself, a binary
// response, a request header, a WebSocket upgrade) is added here, for the document only:
//   - `config.openapi` on a route: extra body/headers/responses/`x-` keys, merged after the zod
//     transform; Fastify never sees them;
//   - a 204 (or 101) response is documented without a body.
import type { FastifySchema } from "fastify";
import type { SwaggerTransform } from "@fastify/swagger";
import { jsonSchemaTransform } from "fastify-type-provider-zod";
import { z } from "zod";
import { ErrorBody } from "@likeness/contracts";

/** A JSON Schema object as @fastify/swagger reads it (route schemas after the zod transform). */
export type JsonSchema = Record<string, unknown>;

export interface OpenApiExtras {
  /** A request body to document (JSON Schema); with `consumes`. Not validated by Fastify. */
  body?: JsonSchema;
  consumes?: string[];
  /** Request headers to document: merged into the route's `headers` object schema. */
  headers?: { properties: Record<string, JsonSchema>; required?: string[] };
  /**
   * Responses to document or replace, in @fastify/swagger's response form: a JSON Schema with a
   * `description`, or `{ description, content: { "<type>": { schema } }, headers? }`, or
   * `{ description, type: "null" }` for no body.
   */
  responses?: Record<string, JsonSchema>;
  /** Vendor extensions (`x-...`) copied onto the operation. */
  extensions?: Record<`x-${string}`, unknown>;
}

declare module "fastify" {
  interface FastifyContextConfig {
    /** Documentation-only additions to this route's OpenAPI operation (see http/openapi.ts). */
    openapi?: OpenApiExtras;
  }
}

/** Statuses without a body: documented with no `content`. */
const NO_CONTENT = new Set(["101", "204", "304"]);

export const openApiTransform: SwaggerTransform = (doc) => {
  const out = jsonSchemaTransform(doc as Parameters<typeof jsonSchemaTransform>[0]);
  const schema = out.schema as FastifySchema & Record<string, unknown>;
  if (schema.hide) return out;
  const extras = doc.route.config?.openapi;
  if (extras) {
    if (extras.body) schema.body = extras.body;
    if (extras.consumes) schema.consumes = extras.consumes;
    if (extras.headers) {
      const current = (schema.headers ?? { type: "object", properties: {} }) as JsonSchema & { properties?: Record<string, unknown>; required?: string[] };
      schema.headers = {
        ...current,
        type: "object",
        properties: { ...current.properties, ...extras.headers.properties },
        required: [...(current.required ?? []), ...(extras.headers.required ?? [])],
      };
    }
    if (extras.responses) schema.response = { ...(schema.response as JsonSchema | undefined), ...extras.responses };
    for (const [key, value] of Object.entries(extras.extensions ?? {})) schema[key] = value;
  }
  const response = schema.response as Record<string, JsonSchema> | undefined;
  for (const status of Object.keys(response ?? {})) {
    if (!NO_CONTENT.has(status) || !response) continue;
    const r = response[status]!;
    response[status] = { description: typeof r.description === "string" ? r.description : NO_CONTENT_DESCRIPTION[status], type: "null" };
  }
  return out;
};

const NO_CONTENT_DESCRIPTION: Record<string, string> = {
  "101": "Switching Protocols",
  "204": "No Content",
  "304": "Not Modified",
};

/** What each error status means in this api; the description of its response. */
const ERROR_DESCRIPTIONS = {
  400: "Validation failed: `field` names the request field at fault (error `validation`)",
  401: "No valid bearer token or session cookie (error `unauthorized`)",
  403: "A request riding on the session cookie came from another site: its `Origin` is not this one (error `forbidden`)",
  404: "Not found, or not yours (error `not_found`)",
  409: "Conflicts with the current state (error `conflict`)",
  413: "Too large (error `too_large`)",
  415: "Unsupported media type (error `unsupported_media_type`)",
  416: "Range not satisfiable (error `range_not_satisfiable`)",
  429: "Too many attempts: wait for `retry-after` seconds (error `rate_limited`)",
} as const;
export type ErrorStatus = keyof typeof ERROR_DESCRIPTIONS;

/**
 * The error responses of a route: each the contracts `ErrorBody`, described. List only the
 * statuses the route can really answer.
 */
export function errorResponses<const S extends ErrorStatus>(...statuses: S[]): { [K in S]: typeof ErrorBody } {
  const out: Partial<Record<ErrorStatus, typeof ErrorBody>> = {};
  for (const s of statuses) out[s] = ErrorBody.describe(ERROR_DESCRIPTIONS[s]);
  return out as { [K in S]: typeof ErrorBody };
}

/**
 * The same error responses as JSON Schema, for `config.openapi.responses` (documentation only: for
 * a route whose replies are not serialized through its schema, e.g. a stream).
 */
export function errorResponsesDoc(...statuses: ErrorStatus[]): Record<string, JsonSchema> {
  const body = z.toJSONSchema(ErrorBody, { target: "openapi-3.0", io: "output" }) as JsonSchema;
  delete body.$schema;
  const out: Record<string, JsonSchema> = {};
  for (const s of statuses) out[s] = { ...body, description: ERROR_DESCRIPTIONS[s] };
  return out;
}
