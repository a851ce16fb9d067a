// The JSON Schema documents of the Redis messages and the protocol's tables: what the worker
// (Python) is generated from (worker/scripts/generate_contracts.py) and validates against.
//
// Compatibility rule: a reader ignores fields it does not know, so a message may gain an optional
// field without a new protocol version (the exported schemas leave objects open; zod strips
// unknown keys on the api side). A breaking change (a field removed, renamed, retyped or made
// required) bumps PROTOCOL_VERSION, and a reader refuses a version it does not speak.
import { z } from "zod";
import {
  API_STEPS,
  ErrorCode,
  GENERATE_VIDEO_STEPS,
  JobCommand,
  JobEvent,
  JobKind,
  Pipeline,
  ProfileAssets,
  Progress,
  PROTOCOL_VERSION,
  STEP_TASK,
  TaskKind,
  TRAIN_PROFILE_STEPS,
  VideoResult,
} from "./jobs.js";
import { STORAGE_KEY_TEMPLATES } from "./storage-keys.js";
import { LIKENESS_LICENCE, WORKER_ADVERT_TTL_HEARTBEATS, WorkerAdvert } from "./engines.js";
import { API_GROUP, MESSAGE_FIELD, REDIS_KEY_TEMPLATES, STREAM_MAXLEN, WORKER_GROUP } from "./redis.js";

export const MESSAGE_SCHEMAS = {
  "job-command": JobCommand,
  "job-event": JobEvent,
  progress: Progress,
  "worker-advert": WorkerAdvert,
} as const;

/** What a job hands back in job_finished.result, per job kind (the worker checks it before). */
export const RESULT_SCHEMAS = {
  "profile-assets": ProfileAssets,
  "video-result": VideoResult,
} as const;
export const JOB_RESULT_SCHEMA: Record<JobKind, keyof typeof RESULT_SCHEMAS> = {
  train_profile: "profile-assets",
  generate_video: "video-result",
};

/** Drops `additionalProperties: false` everywhere: readers ignore unknown fields (see above). */
function openObjects(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(openObjects);
  if (node === null || typeof node !== "object") return node;
  return Object.fromEntries(
    Object.entries(node)
      .filter(([k, v]) => !(k === "additionalProperties" && v === false))
      .map(([k, v]) => [k, openObjects(v)]),
  );
}

const toJson = (schema: z.ZodType) => openObjects(z.toJSONSchema(schema, { target: "draft-2020-12", io: "output" }));

/** The protocol's facts that are not message shapes: steps, task kinds, error codes, storage keys. */
export const PROTOCOL_TABLES = {
  protocolVersion: PROTOCOL_VERSION,
  jobKinds: JobKind.options,
  pipelines: Pipeline.options,
  taskKinds: TaskKind.options,
  errorCodes: ErrorCode.options,
  stepTask: STEP_TASK,
  trainProfileSteps: TRAIN_PROFILE_STEPS,
  generateVideoSteps: GENERATE_VIDEO_STEPS,
  apiSteps: API_STEPS,
  jobResultSchema: JOB_RESULT_SCHEMA,
  storageKeys: STORAGE_KEY_TEMPLATES,
  likenessLicence: LIKENESS_LICENCE,
};

/** Every file under schema/: the message schemas plus the Redis names, for the worker. */
export function toJsonSchemas(): Record<string, unknown> {
  return {
    ...Object.fromEntries(Object.entries({ ...MESSAGE_SCHEMAS, ...RESULT_SCHEMAS }).map(([name, schema]) => [name, toJson(schema)])),
    tables: PROTOCOL_TABLES,
    "redis-keys": {
      templates: REDIS_KEY_TEMPLATES,
      groups: { worker: WORKER_GROUP, api: API_GROUP },
      messageField: MESSAGE_FIELD,
      streamMaxlen: STREAM_MAXLEN,
      workerAdvertTtlHeartbeats: WORKER_ADVERT_TTL_HEARTBEATS,
    },
  };
}

/** Stable text of one schema file: what is committed under schema/. */
export const schemaFileText = (schema: unknown) => JSON.stringify(schema, null, 2) + "\n";
