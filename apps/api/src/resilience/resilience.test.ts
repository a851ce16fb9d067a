import { describe, expect, it } from "vitest";
import { isTransient, isTransientPgError, isTransientRedisError } from "./transient-errors.js";
import { backoffMs, retryTransient } from "./retry.js";
import { compareStreamIds } from "../bus/job-stream.repository.js";

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe("transient errors", () => {
  it("knows a dependency briefly away from an answer", () => {
    expect(isTransientRedisError(new Error("Connection is closed."))).toBe(true);
    expect(isTransientRedisError(Object.assign(new Error("Reached the max retries per request limit (which is 3)."), { name: "MaxRetriesPerRequestError" }))).toBe(true);
    expect(isTransientRedisError(new Error("LOADING Redis is loading the dataset in memory"))).toBe(true);
    expect(isTransientRedisError(new Error("READONLY You can't write against a read only replica."))).toBe(true);
    expect(isTransientRedisError(withCode("connect ECONNREFUSED 127.0.0.1:6379", "ECONNREFUSED"))).toBe(true);
    expect(isTransientPgError(withCode("terminating connection due to administrator command", "57P01"))).toBe(true);
    expect(isTransientPgError(withCode("the database system is starting up", "57P03"))).toBe(true);
    expect(isTransientPgError(new Error("Connection terminated unexpectedly"))).toBe(true);
    // Wrapped (Kysely's migrator, a graph node): the cause decides.
    expect(isTransient(new Error("migration failed", { cause: withCode("read ECONNRESET", "ECONNRESET") }))).toBe(true);

    expect(isTransient(new Error("NOGROUP No such key 'lk:events' or consumer group 'api'"))).toBe(false);
    expect(isTransient(new Error("WRONGTYPE Operation against a key holding the wrong kind of value"))).toBe(false);
    expect(isTransient(withCode('duplicate key value violates unique constraint "users_email_key"', "23505"))).toBe(false);
    expect(isTransient(withCode("syntax error", "42601"))).toBe(false);
  });
});

describe("retry", () => {
  it("waits 0.2 s doubling to 5 s", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 50].map((n) => backoffMs(n))).toEqual([200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
  });

  it("retries transient errors until it succeeds, and never retries an answer", async () => {
    let calls = 0;
    const ok = await retryTransient(async () => {
      if (++calls < 3) throw new Error("Connection is closed.");
      return "done";
    }, { maxMs: 5_000, firstMs: 1 });
    expect([ok, calls]).toEqual(["done", 3]);

    calls = 0;
    await expect(retryTransient(async () => {
      calls++;
      throw new Error("WRONGTYPE");
    }, { maxMs: 5_000, firstMs: 1 })).rejects.toThrow("WRONGTYPE");
    expect(calls).toBe(1);
  });

  it("gives up when time is up or it is told to stop", async () => {
    const started = Date.now();
    await expect(retryTransient(async () => {
      throw new Error("Connection is closed.");
    }, { maxMs: 100, firstMs: 20 })).rejects.toThrow("Connection is closed.");
    expect(Date.now() - started).toBeLessThan(1_000);

    const stop = new AbortController();
    setTimeout(() => stop.abort(), 30);
    await expect(retryTransient(async () => {
      throw new Error("Connection is closed.");
    }, { maxMs: 60_000, signal: stop.signal })).rejects.toThrow("Connection is closed.");
  });
});

describe("stream ids", () => {
  it("orders by time, then sequence, as numbers", () => {
    expect(compareStreamIds("1700000000000-0", "1700000000000-0")).toBe(0);
    expect(compareStreamIds("1700000000000-2", "1700000000000-10")).toBe(-1);
    expect(compareStreamIds("1700000000001-0", "1700000000000-99")).toBe(1);
    expect(compareStreamIds("0-0", "1-0")).toBe(-1);
  });
});
