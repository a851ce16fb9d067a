import { describe, expect, it } from "vitest";
import path from "node:path";
import { existsSync } from "node:fs";
import { loadConfig, REPO_ROOT } from "./config.js";

const base = { DATABASE_URL: "postgres://u@h:5432/db", REDIS_URL: "redis://h:6379" };

describe("loadConfig", () => {
  it("applies the documented defaults", () => {
    const c = loadConfig(base);
    expect(c).toMatchObject({
      redisKeyPrefix: "lk",
      storage: { driver: "local", dir: path.join(REPO_ROOT, ".data/objects") },
      api: { host: "127.0.0.1", port: 8080 },
      logLevel: "info",
      events: { consumerName: undefined, reclaimIdleMs: 30_000 },
      outage: { maxMs: 300_000 },
      reconcile: { intervalMs: 30_000, staleMs: 600_000 },
    });
    expect(loadConfig({ ...base, API_OUTAGE_MAX_S: "1.5", API_RECONCILE_INTERVAL_S: "0.2", API_RECONCILE_STALE_S: "2" })).toMatchObject({
      outage: { maxMs: 1500 },
      reconcile: { intervalMs: 200, staleMs: 2000 },
    });
    expect(loadConfig({ ...base, API_CONSUMER_NAME: "api-1", API_RECLAIM_IDLE_MS: "200" }).events).toEqual({
      consumerName: "api-1",
      reclaimIdleMs: 200,
    });
    expect(existsSync(path.join(REPO_ROOT, "packages/contracts"))).toBe(true);
  });

  it("takes every LOG_LEVEL the worker takes, Python's `warning` as `warn`", () => {
    for (const level of ["trace", "debug", "info", "warn", "error", "fatal", "silent"]) {
      expect(loadConfig({ ...base, LOG_LEVEL: level }).logLevel).toBe(level);
    }
    expect(loadConfig({ ...base, LOG_LEVEL: "warning" }).logLevel).toBe("warn");
    expect(() => loadConfig({ ...base, LOG_LEVEL: "loud" })).toThrow(/LOG_LEVEL/);
  });

  it("names the variable that is missing or wrong", () => {
    expect(() => loadConfig({ REDIS_URL: "redis://h" })).toThrow(/DATABASE_URL: is required/);
    expect(() => loadConfig({ ...base, API_PORT: "eighty" })).toThrow(/API_PORT/);
    expect(() => loadConfig({ ...base, STORAGE_DRIVER: "ftp" })).toThrow(/STORAGE_DRIVER/);
    expect(() => loadConfig({ ...base, STORAGE_DRIVER: "s3" })).toThrow(/S3_BUCKET/);
    expect(() => loadConfig({ ...base, API_CONSUMER_NAME: "has space" })).toThrow(/API_CONSUMER_NAME/);
    expect(() => loadConfig({ ...base, API_OUTAGE_MAX_S: "0" })).toThrow(/API_OUTAGE_MAX_S/);
    expect(() => loadConfig({ ...base, API_RECONCILE_INTERVAL_S: "soon" })).toThrow(/API_RECONCILE_INTERVAL_S/);
  });

  it("reads the s3 settings", () => {
    const c = loadConfig({ ...base, STORAGE_DRIVER: "s3", S3_BUCKET: "media", S3_ENDPOINT: "http://minio:9000", S3_FORCE_PATH_STYLE: "false", API_PORT: "9000" });
    expect(c.storage).toEqual({
      driver: "s3",
      s3: { endpoint: "http://minio:9000", region: "us-east-1", bucket: "media", accessKeyId: undefined, secretAccessKey: undefined, forcePathStyle: false },
    });
    expect(c.api.port).toBe(9000);
  });
});
