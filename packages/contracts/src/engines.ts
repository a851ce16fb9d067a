// Engines per request: what the workers advertise in Redis, what GET /v1/engines answers, and the
// `engines` choice of a request (task kind → engine name, `EngineOverrides` of the job command).
//
// Each worker writes its registry (WorkerAdvert) at `{prefix}:workers:{workerId}` when it starts
// and again every `heartbeatMs`; the key lives WORKER_ADVERT_TTL_HEARTBEATS heartbeats, so a
// worker that died drops out by itself. The index `{prefix}:workers` (a set of worker ids) says
// which keys to read without scanning Redis; the key's TTL is the only clock (a reader removes the
// ids whose key is gone), so the api and the workers need not agree on the time.
import { z } from "zod";
import { PROTOCOL_VERSION, TaskKind } from "./jobs.js";

/**
 * The licence of the engines that are Likeness's own code with no third-party tool or model
 * behind them: no licence has been chosen yet (README, "Licence notes"), so all rights reserved.
 */
export const LIKENESS_LICENCE = "LicenseRef-Likeness";

/** A worker advertisement lives this many of its heartbeats (missing one is not dying). */
export const WORKER_ADVERT_TTL_HEARTBEATS = 3;

export const EngineDevice = z.enum(["cpu", "gpu"]);
export type EngineDevice = z.infer<typeof EngineDevice>;

/** Engine names: lowercase letters, digits, `_` and `-`, as the worker registers them. */
export const EngineName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9_-]*$/, "lowercase letters, digits, _ and -");

/** One engine of one worker's registry. */
export const AdvertisedEngine = z.object({
  taskKind: TaskKind,
  name: EngineName,
  device: EngineDevice,
  /** SPDX expression of what binds a deployment that runs it (the tool's or model's licence). */
  licence: z.string().min(1).max(200),
  /**
   * The licence forbids commercial use (Wav2Lip, F5-TTS's weights, SVD): such an engine may still
   * be chosen, but the job and its step say so. Absent from older workers: read as false.
   */
  nonCommercial: z.boolean().optional(),
  /** Whether this worker can run it now (its tool is installed, its model loaded). */
  healthy: z.boolean(),
  /** Why it cannot run, when not healthy. */
  problem: z.string().max(500).optional(),
  /** The engine this worker runs for the task kind when a command names none. */
  default: z.boolean(),
});
export type AdvertisedEngine = z.infer<typeof AdvertisedEngine>;

/** `{prefix}:workers:{workerId}` (a string key holding this JSON): one worker's registry. */
export const WorkerAdvert = z.object({
  v: z.literal(PROTOCOL_VERSION),
  workerId: z.string().min(1).max(200),
  at: z.iso.datetime(),
  /** How often the worker writes it again (ms); the key expires after WORKER_ADVERT_TTL_HEARTBEATS of them. */
  heartbeatMs: z.number().int().positive(),
  /** The Dramatiq queues the worker consumes (`cpu`, `gpu0`…). */
  queues: z.array(z.string().min(1).max(32)).max(64),
  engines: z.array(AdvertisedEngine).max(1000),
});
export type WorkerAdvert = z.infer<typeof WorkerAdvert>;

/** One engine as GET /v1/engines lists it: the advertisements of every live worker, merged. */
export const EngineInfo = z.object({
  taskKind: TaskKind,
  name: EngineName,
  device: EngineDevice,
  licence: z.string(),
  /** Its licence forbids commercial use: a job may use it, and then carries a licence notice. */
  nonCommercial: z.boolean(),
  /** At least one live worker can run it now. */
  healthy: z.boolean(),
  /** The engine used for this task kind when a request names none (on the workers that have it). */
  default: z.boolean(),
  /** How many live workers advertise it, and how many of them can run it now. */
  workers: z.number().int().nonnegative(),
  healthyWorkers: z.number().int().nonnegative(),
  /** `api` for the engines the api runs itself (the script's `llm`), else `worker`. */
  runsIn: z.enum(["api", "worker"]),
  /** Why no worker can run it, when none can. */
  problem: z.string().optional(),
});
export type EngineInfo = z.infer<typeof EngineInfo>;

export const EngineList = z.object({
  engines: z.array(EngineInfo).describe("Sorted by task kind, then name"),
  /** How many workers are advertising right now. */
  workers: z.number().int().nonnegative(),
});
export type EngineList = z.infer<typeof EngineList>;

/**
 * The `engines` field of a request: task kind → engine name; the others keep their default. The
 * same map as a command's `EngineOverrides`, spelt out per task kind (so the OpenAPI document lists
 * them) and strict: a task kind that does not exist is refused.
 */
export const EngineChoice = z
  .strictObject(Object.fromEntries(TaskKind.options.map((k) => [k, EngineName.optional()])) as Record<TaskKind, z.ZodOptional<typeof EngineName>>)
  .describe(
  "Engines to use, by task kind (e.g. `{\"tts\": \"espeak\"}`); a task kind left out uses the profile's default, " +
    "else the workers' default. Each must be listed, healthy, by `GET /v1/engines`: an unknown or unavailable engine is " +
    "a 400 naming it (field `engines.<kind>`).",
);
export type EngineChoice = z.infer<typeof EngineChoice>;

/** A non-commercial engine a job was set to use: on the job from its creation (Job.licenceNotices). */
export const LicenceNotice = z.object({
  taskKind: TaskKind,
  engine: EngineName,
  licence: z.string(),
  nonCommercial: z.literal(true),
});
export type LicenceNotice = z.infer<typeof LicenceNotice>;

/** Body of POST /v1/profiles/{id}/train (optional). */
export const TrainProfileRequest = z.object({ engines: EngineChoice.optional() });
export type TrainProfileRequest = z.infer<typeof TrainProfileRequest>;

/** Body and answer of PUT /v1/profiles/{id}/engines: the profile's default engines (the whole map). */
export const ProfileEngines = z.object({ engines: EngineChoice });
export type ProfileEngines = z.infer<typeof ProfileEngines>;
