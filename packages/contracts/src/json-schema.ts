// The JSON Schema documents of the Redis messages, for the worker (Python) to validate against.
import { z } from "zod";
import { JobCommand, JobEvent, Progress } from "./jobs.js";
import { API_GROUP, MESSAGE_FIELD, REDIS_KEY_TEMPLATES, STREAM_MAXLEN, WORKER_GROUP } from "./redis.js";

export const MESSAGE_SCHEMAS = {
  "job-command": JobCommand,
  "job-event": JobEvent,
  progress: Progress,
} as const;

/** Every file under schema/: the message schemas plus the Redis names, for the worker. */
export function toJsonSchemas(): Record<string, unknown> {
  return {
    ...Object.fromEntries(
      Object.entries(MESSAGE_SCHEMAS).map(([name, schema]) => [
        name,
        z.toJSONSchema(schema, { target: "draft-2020-12", io: "output" }),
      ]),
    ),
    "redis-keys": {
      templates: REDIS_KEY_TEMPLATES,
      groups: { worker: WORKER_GROUP, api: API_GROUP },
      messageField: MESSAGE_FIELD,
      streamMaxlen: STREAM_MAXLEN,
    },
  };
}

/** Stable text of one schema file: what is committed under schema/. */
export const schemaFileText = (schema: unknown) => JSON.stringify(schema, null, 2) + "\n";
