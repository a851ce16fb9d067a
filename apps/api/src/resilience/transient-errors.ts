// Which errors mean "Redis or Postgres is briefly away" (a restart, a failover, a dropped
// connection): those are waited out and retried, never turned into a job failure. Anything else
// (a bad command, a constraint violation, a bug) is an answer and goes up as it is.

/** Socket-level failures: the server is restarting, unreachable or dropped the connection. */
const NETWORK_CODES = new Set([
  "ECONNREFUSED", "ECONNRESET", "ECONNABORTED", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH",
  "ENOTFOUND", "EAI_AGAIN",
]);

/**
 * ioredis and Redis: the client lost its connection or gave up waiting for one; Redis is loading
 * its data set after a restart, or is a replica / a primary cut off from its replicas during a failover.
 */
const REDIS_TRANSIENT = [
  /^Connection is closed/,
  /Reached the max retries per request limit/, // ioredis MaxRetriesPerRequestError
  /Stream isn't writeable/,
  /^Command timed out/,
  /^(LOADING|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN)\b/,
];

/**
 * Postgres: SQLSTATE class 08 (connection exception), 57P01-57P03 (the server shuts down, crashed
 * or is starting up), 53300 (too many connections: a restart storm). pg's own messages for a
 * connection that ended under a query or could not be made.
 */
const PG_TRANSIENT_CODES = /^(08...|57P0[123]|53300)$/;
const PG_TRANSIENT = [
  /^Connection terminated/,
  /is not queryable/,
  /timeout exceeded when trying to connect/,
  /^terminating connection/,
  /the database system is (starting up|shutting down|in recovery mode)/,
];

function* chain(err: unknown): Generator<{ code?: unknown; message?: unknown; name?: unknown }> {
  // LangGraph and Kysely pass errors through, but a wrapper may keep the original as `cause`.
  for (let e = err, depth = 0; e && typeof e === "object" && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    yield e as { code?: unknown; message?: unknown; name?: unknown };
  }
}

const message = (e: { message?: unknown }) => (typeof e.message === "string" ? e.message : "");

export function isNetworkError(err: unknown): boolean {
  for (const e of chain(err)) if (typeof e.code === "string" && NETWORK_CODES.has(e.code)) return true;
  return false;
}

export function isTransientRedisError(err: unknown): boolean {
  for (const e of chain(err)) {
    if (e.name === "MaxRetriesPerRequestError") return true;
    if (REDIS_TRANSIENT.some((re) => re.test(message(e)))) return true;
  }
  return isNetworkError(err);
}

export function isTransientPgError(err: unknown): boolean {
  for (const e of chain(err)) {
    if (typeof e.code === "string" && PG_TRANSIENT_CODES.test(e.code)) return true;
    if (PG_TRANSIENT.some((re) => re.test(message(e)))) return true;
  }
  return isNetworkError(err);
}

/** Either dependency briefly away: wait and retry. */
export function isTransient(err: unknown): boolean {
  return isTransientRedisError(err) || isTransientPgError(err);
}
