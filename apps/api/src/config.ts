// Configuration: read once from the environment, validated, grouped. The same variable names are
// used by the worker (docs/foundation.md). A bad value stops start-up with the variable's name.
import { fileURLToPath } from "node:url";
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { DEFAULT_KEY_PREFIX } from "@likeness/contracts";

/** The repository root: this file lives at apps/api/{src,dist}/config.{ts,js}. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((v) => v === "true" || v === "1" || v === "yes");

const EnvSchema = z.object({
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, "a postgres:// URL"),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, "a redis:// URL"),
  REDIS_KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_\-.]{1,64}$/, "letters, digits, _ - . (1..64)")
    .default(DEFAULT_KEY_PREFIX),
  STORAGE_DRIVER: z.enum(["local", "s3"]).default("local"),
  STORAGE_DIR: z.string().min(1).optional(),
  S3_ENDPOINT: z.url().optional(),
  S3_REGION: z.string().min(1).default("us-east-1"),
  S3_BUCKET: z.string().min(3).optional(),
  S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  S3_FORCE_PATH_STYLE: bool.default(true),
  API_HOST: z.string().min(1).default("127.0.0.1"),
  API_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /** Stable consumer name of this replica in the `api` group of the events stream. */
  API_CONSUMER_NAME: z.string().regex(/^[A-Za-z0-9_\-.:]{1,100}$/, "letters, digits, _ - . : (1..100)").optional(),
  /** An events entry pending this long on another (dead) api replica is taken over. */
  API_RECLAIM_IDLE_MS: z.coerce.number().int().min(10).default(30_000),
  /** Redis or Postgres away this long (seconds) ends what waited for it: a command never queued fails its job. */
  API_OUTAGE_MAX_S: z.coerce.number().positive().max(86_400).default(300),
  /** The reconciler's period (seconds): it re-drives workflows and re-sends commands lost from their stream. */
  API_RECONCILE_INTERVAL_S: z.coerce.number().positive().max(86_400).default(30),
  /** A command read by a worker but idle this long (seconds), with no event for its job either, is re-sent. */
  API_RECONCILE_STALE_S: z.coerce.number().positive().max(86_400).default(600),
  /** The `script` step's engine for a topic when the request names none: local, ollama or openai. */
  LLM_ENGINE: z.enum(["local", "ollama", "openai"]).default("local"),
  /** How long writing one script may take (seconds) before the step fails as llm_unavailable. */
  LLM_TIMEOUT_S: z.coerce.number().positive().max(3_600).default(120),
  /** The built-in model (a GGUF file; scripts/bootstrap.sh writes the default one). */
  LLM_LOCAL_MODEL: z.string().min(1).optional(),
  /** Load the built-in model when the api starts (else at the first topic). */
  LLM_LOCAL_PRELOAD: bool.default(true),
  /** CPU threads of the built-in model (0: all cores). */
  LLM_LOCAL_THREADS: z.coerce.number().int().min(0).max(256).default(0),
  /** Ollama: offered when OLLAMA_URL is set. */
  OLLAMA_URL: z.url().optional(),
  OLLAMA_MODEL: z.string().min(1).default("llama3.2"),
  /** Ollama's keep_alive ("5m", seconds, or 0 to unload the model once the script is written). */
  OLLAMA_KEEP_ALIVE: z.string().regex(/^(-1|\d+|\d+(\.\d+)?(ms|s|m|h))$/, 'a duration such as "5m", or seconds').default("5m"),
  /** An OpenAI-compatible server, e.g. http://vllm:8000/v1: offered when set. */
  OPENAI_BASE_URL: z.url().optional(),
  OPENAI_MODEL: z.string().min(1).default("gpt-4o-mini"),
  OPENAI_API_KEY: z.string().min(1).optional(),
  // The same values on both planes (worker/likeness_worker/config.py; a test compares them);
  // `warning` is Python's name for `warn`.
  LOG_LEVEL: z
    .enum(["trace", "debug", "info", "warn", "warning", "error", "fatal", "silent"])
    .default("info")
    .transform((v) => (v === "warning" ? "warn" : v)),
});

export interface S3Config {
  endpoint: string | undefined;
  region: string;
  bucket: string;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  forcePathStyle: boolean;
}

export type StorageConfig = { driver: "local"; dir: string } | { driver: "s3"; s3: S3Config };

export interface Config {
  databaseUrl: string;
  redisUrl: string;
  redisKeyPrefix: string;
  storage: StorageConfig;
  api: { host: string; port: number };
  /** The events-stream consumer of this replica (job side). */
  events: { consumerName: string | undefined; reclaimIdleMs: number };
  /** How long a Redis or Postgres outage is waited out before what waits for it gives up. */
  outage: { maxMs: number };
  /** The reconciler (jobs/job-reconciler.ts): its period and when a read command counts as stale. */
  reconcile: { intervalMs: number; staleMs: number };
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  llm: LlmConfig;
}

export interface LlmConfig {
  defaultEngine: "local" | "ollama" | "openai";
  timeoutMs: number;
  local: { modelPath: string; threads: number; preload: boolean };
  ollama: { url: string; model: string; keepAlive: string } | undefined;
  /** Holds the API key: never log this object. */
  openai: { baseUrl: string; model: string; apiKey: string | undefined } | undefined;
}

/** The built-in LLM's file, as scripts/bootstrap.sh assembles it from its PyPI packages. */
export const LOCAL_MODEL_FILE = "gemma-3-270m-q4_k_m.gguf";

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parse and validate the environment. Throws a ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings count as unset (a common .env habit).
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ""),
  );
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const name = String(i.path[0] ?? "environment");
      const msg = i.code === "invalid_type" && cleaned[name] === undefined ? "is required" : i.message;
      return `${name}: ${msg}`;
    });
    throw new ConfigError(`invalid configuration: ${lines.join("; ")}`);
  }
  const e = parsed.data;

  if (e.LLM_ENGINE === "ollama" && !e.OLLAMA_URL) throw new ConfigError("invalid configuration: OLLAMA_URL: is required when LLM_ENGINE=ollama");
  if (e.LLM_ENGINE === "openai" && !e.OPENAI_BASE_URL) {
    throw new ConfigError("invalid configuration: OPENAI_BASE_URL: is required when LLM_ENGINE=openai");
  }

  let storage: StorageConfig;
  if (e.STORAGE_DRIVER === "s3") {
    if (!e.S3_BUCKET) throw new ConfigError("invalid configuration: S3_BUCKET: is required when STORAGE_DRIVER=s3");
    storage = {
      driver: "s3",
      s3: {
        endpoint: e.S3_ENDPOINT,
        region: e.S3_REGION,
        bucket: e.S3_BUCKET,
        accessKeyId: e.S3_ACCESS_KEY_ID,
        secretAccessKey: e.S3_SECRET_ACCESS_KEY,
        forcePathStyle: e.S3_FORCE_PATH_STYLE,
      },
    };
  } else {
    storage = { driver: "local", dir: path.resolve(e.STORAGE_DIR ?? path.join(REPO_ROOT, ".data/objects")) };
  }

  return {
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    storage,
    api: { host: e.API_HOST, port: e.API_PORT },
    events: { consumerName: e.API_CONSUMER_NAME, reclaimIdleMs: e.API_RECLAIM_IDLE_MS },
    outage: { maxMs: Math.round(e.API_OUTAGE_MAX_S * 1000) },
    reconcile: {
      intervalMs: Math.round(e.API_RECONCILE_INTERVAL_S * 1000),
      staleMs: Math.round(e.API_RECONCILE_STALE_S * 1000),
    },
    logLevel: e.LOG_LEVEL,
    llm: {
      defaultEngine: e.LLM_ENGINE,
      timeoutMs: Math.round(e.LLM_TIMEOUT_S * 1000),
      local: {
        modelPath: path.resolve(e.LLM_LOCAL_MODEL ?? path.join(REPO_ROOT, ".data/models", LOCAL_MODEL_FILE)),
        threads: e.LLM_LOCAL_THREADS || os.availableParallelism(),
        preload: e.LLM_LOCAL_PRELOAD,
      },
      ollama: e.OLLAMA_URL ? { url: e.OLLAMA_URL, model: e.OLLAMA_MODEL, keepAlive: e.OLLAMA_KEEP_ALIVE } : undefined,
      openai: e.OPENAI_BASE_URL ? { baseUrl: e.OPENAI_BASE_URL, model: e.OPENAI_MODEL, apiKey: e.OPENAI_API_KEY } : undefined,
    },
  };
}
