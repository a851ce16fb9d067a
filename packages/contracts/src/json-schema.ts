// The JSON Schema documents of the Redis messages, for the worker (Python) to validate against.
import { z } from "zod";
import { JobCommand, JobEvent, Progress } from "./jobs.js";

export const MESSAGE_SCHEMAS = {
  "job-command": JobCommand,
  "job-event": JobEvent,
  progress: Progress,
} as const;

export function toJsonSchemas(): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(MESSAGE_SCHEMAS).map(([name, schema]) => [
      name,
      z.toJSONSchema(schema, { target: "draft-2020-12", io: "output" }),
    ]),
  );
}

/** Stable text of one schema file: what is committed under schema/. */
export const schemaFileText = (schema: unknown) => JSON.stringify(schema, null, 2) + "\n";
