// Test support for api integration tests (also for the job side's tests):
//  - `services`: whether Postgres and Redis answer; `describeWithServices` skips when they don't,
//    and fails instead when CI is set;
//  - `createTestDatabase()`: a fresh migrated database `lk_test_<random>`, dropped by `drop()`;
//  - `createTestApp()`: buildApp on that database, a random REDIS_KEY_PREFIX and a LocalStorage
//    in a temp folder, optionally reaching Redis and Postgres through a proxy (`via`); `close()`
//    tears all of it down (SCAN MATCH <prefix>:* + DEL, DROP DATABASE).
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { Redis } from "ioredis";
import { describe } from "vitest";
import type { FastifyInstance } from "fastify";
import { loadConfig, type Config } from "../src/config.js";
import { createDb, migrateToLatest, type Db } from "../src/db/db.js";
import { createRedis } from "../src/bus/redis-client.js";
import { LocalStorage } from "../src/storage/local.storage.js";
import type { ObjectStorage } from "../src/storage/object-storage.js";
import { buildApp } from "../src/app.js";
import type { AppDeps } from "../src/app-deps.js";

export const PG_URL = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/test";
export const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";

async function pgUp(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.query("select 1");
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

async function redisUp(): Promise<boolean> {
  const r = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await r.connect();
    return (await r.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

export const services = { postgres: await pgUp(), redis: await redisUp() };
const missing = Object.entries(services).filter(([, up]) => !up).map(([name]) => name);
if (missing.length && process.env.CI) {
  throw new Error(`integration tests need ${missing.join(" and ")} (CI is set, so this fails instead of skipping)`);
}
export const servicesUp = missing.length === 0;
/** describe() that skips when Postgres or Redis is missing (and fails under CI, see above). */
export const describeWithServices = describe.skipIf(!servicesUp);

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export interface TestDatabase {
  url: string;
  name: string;
  db: Db;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `lk_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(PG_URL, name);
  const db = createDb(url, { max: 5 });
  await migrateToLatest(db);
  return {
    url,
    name,
    db,
    async drop() {
      await db.destroy();
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      try {
        // pg's Pool.end() resolves before its connections have closed; FORCE would kill one still
        // closing and its client would throw an unhandled 57P01. Give them a moment first.
        for (let i = 0; i < 40; i++) {
          const r = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1", [name]);
          if (r.rows[0]?.n === 0) break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

export interface TestApp {
  app: FastifyInstance;
  /** What the app was built with (e.g. for `jobsHandle(deps)`). */
  deps: AppDeps;
  config: Config;
  /** The app's Postgres and Redis connections (through `via` when given). */
  db: Db;
  redis: Redis;
  /** Straight to the Redis server, whatever `via` says: for the test's own reads and writes. */
  direct: Redis;
  storage: ObjectStorage;
  storageDir: string;
  database: TestDatabase;
  close(): Promise<void>;
}

export async function createTestApp(
  opts: {
    storage?: ObjectStorage;
    env?: Record<string, string>;
    log?: AppDeps["log"];
    /**
     * Where the app itself reaches Redis and Postgres (e.g. a TcpProxy that a test cuts to make an
     * outage); the test's own setup and clean-up still go straight to the servers.
     */
    via?: { redisUrl?: string; postgresUrl?: string };
  } = {},
): Promise<TestApp> {
  const database = await createTestDatabase();
  const storageDir = await mkdtemp(path.join(os.tmpdir(), "lk-test-objects-"));
  const config = loadConfig({
    DATABASE_URL: opts.via?.postgresUrl ? withDatabase(opts.via.postgresUrl, database.name) : database.url,
    REDIS_URL: opts.via?.redisUrl ?? REDIS_URL,
    REDIS_KEY_PREFIX: `lktest${randomBytes(4).toString("hex")}`,
    STORAGE_DRIVER: "local",
    STORAGE_DIR: storageDir,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    LLM_LOCAL_PRELOAD: "false", // the tests that write scripts load it; the others need not pay for it
    ...opts.env,
  });
  // The api's own connection settings (bus/redis-client.ts): they decide how an outage is ridden out.
  const redis = createRedis(config.redisUrl);
  const direct = opts.via?.redisUrl ? new Redis(REDIS_URL) : redis;
  const db = opts.via?.postgresUrl ? createDb(config.databaseUrl, { max: 5, onError: () => undefined }) : database.db;
  const storage = opts.storage ?? new LocalStorage(storageDir);
  const deps: AppDeps = { config, db, redis, storage, ...(opts.log ? { log: opts.log } : {}) };
  const app = await buildApp(deps);
  await app.ready();
  return {
    app,
    deps,
    config,
    db,
    redis,
    direct,
    storage,
    storageDir,
    database,
    /** Closes the app, deletes this test's Redis keys, drops its database and its objects folder. */
    async close() {
      try {
        await app.close();
      } finally {
        try {
          await deleteKeys(direct, `${config.redisKeyPrefix}:*`);
        } finally {
          redis.disconnect();
          direct.disconnect();
          try {
            if (db !== database.db) await db.destroy();
            await database.drop();
          } finally {
            await rm(storageDir, { recursive: true, force: true });
          }
        }
      }
    },
  };
}

/** Removes this test's Redis keys (its own random prefix only; never FLUSHDB). */
export async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 500);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== "0");
}

/** Signs up a fresh user; returns its token and id. */
export async function signUp(app: FastifyInstance, email = `u${randomBytes(5).toString("hex")}@example.com`) {
  const res = await app.inject({ method: "POST", url: "/v1/auth/signup", payload: { email, password: "correct horse battery" } });
  if (res.statusCode !== 201) throw new Error(`signup failed: ${res.statusCode} ${res.body}`);
  const body = res.json() as { token: string; user: { id: string; email: string } };
  return { token: body.token, userId: body.user.id, email, auth: { authorization: `Bearer ${body.token}` } };
}

/** The value of one series on the app's /metrics, e.g. `metricValue(app, "x_total", 'kind="a"')`; NaN when absent. */
export async function metricValue(app: FastifyInstance, name: string, labels = ""): Promise<number> {
  const body = (await app.inject({ method: "GET", url: "/metrics" })).body;
  const series = labels ? `${name}{${labels}}` : name;
  const line = body.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : Number.NaN;
}
