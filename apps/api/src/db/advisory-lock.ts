// A Postgres advisory lock held for the length of one task, so that of several api replicas only
// one does it at a time. Session-level, on a connection kept for the task: if that connection
// dies, Postgres drops the lock with it, and the next try (here or on another replica) takes it.
import { sql } from "kysely";
import type { Db } from "./db.js";

export type Locked<T> = { locked: true; value: T } | { locked: false };

/** Runs `fn` holding the lock named `name`; `{locked: false}` at once when another session holds it. */
export async function withTryAdvisoryLock<T>(db: Db, name: string, fn: () => Promise<T>): Promise<Locked<T>> {
  return db.connection().execute(async (conn) => {
    const got = await sql<{ locked: boolean }>`select pg_try_advisory_lock(hashtext('likeness:task'), hashtext(${name})) as locked`.execute(conn);
    if (!got.rows[0]?.locked) return { locked: false };
    try {
      return { locked: true, value: await fn() };
    } finally {
      // A failure here means the connection is gone, and the lock with it.
      await sql`select pg_advisory_unlock(hashtext('likeness:task'), hashtext(${name}))`.execute(conn).catch(() => undefined);
    }
  });
}
