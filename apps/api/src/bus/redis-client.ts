// The api's Redis connections: how they ride through an outage. Every duplicate() inherits this.
import { Redis, type RedisOptions } from "ioredis";
import { backoffMs } from "../resilience/retry.js";

export function redisOptions(): RedisOptions {
  return {
    // Reconnect forever, 0.2 s doubling to 5 s: an outage is a wait, never the end of the api.
    retryStrategy: (times: number) => backoffMs(times - 1),
    // A command sent while disconnected waits through three reconnects, and 5 s at most, then
    // fails: an HTTP request answers 503 rather than hang, and the background loops retry on their
    // own schedule. A connection that must simply wait (the blocking reader) overrides both.
    maxRetriesPerRequest: 3,
    commandTimeout: 5_000,
    // After a failover the old primary is a read-only replica and a restarted one may still be
    // loading: reconnect (DNS or the proxy then lead to the primary) and resend the command.
    reconnectOnError: (err: Error) => (/^(READONLY|LOADING|MASTERDOWN)\b/.test(err.message) ? 2 : false),
  };
}

export function createRedis(url: string, overrides: RedisOptions = {}): Redis {
  return new Redis(url, { ...redisOptions(), ...overrides });
}
