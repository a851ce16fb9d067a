// The Kysely instance on a pg Pool, and the migrator that runs at start-up and in tests.
import pg from "pg";
import { Kysely, Migrator, PostgresDialect, type MigrationProvider } from "kysely";
import type { Database } from "./types.js";
import { migrations } from "./migrations/index.js";

export type Db = Kysely<Database>;

/** A value for a jsonb column: Kysely writes jsonb as a JSON string (see types.ts). */
export const json = (v: unknown): string => JSON.stringify(v);

const INT8_OID = 20;

/**
 * A pg Pool that survives Postgres going away (a restart, a killed connection): errors are
 * reported instead of crashing the process, since pg emits them as 'error' events and an
 * unhandled 'error' is fatal. The pool reports those of idle clients; a client that is checked
 * out (a transaction between statements, a held advisory lock) emits its own, so every client
 * gets a listener too. A broken client is dropped on release and the next query opens a new one.
 */
export function createPool(url: string, opts: { max?: number; onError?: (err: Error) => void } = {}): pg.Pool {
  const report = opts.onError ?? ((err: Error) => console.error(`postgres pool: ${err.message}`));
  // An idle client's error reaches both listeners: report it once.
  const reported = new WeakSet<Error>();
  const onError = (err: Error) => {
    if (reported.has(err)) return;
    reported.add(err);
    report(err);
  };
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 10,
    // A connection to a server that vanished without a reset (a VM gone, a network cut) is noticed.
    keepAlive: true,
    types: {
      getTypeParser: ((oid: number, format?: "text" | "binary") =>
        oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
    },
  });
  pool.on("error", onError);
  pool.on("connect", (client) => client.on("error", onError));
  return pool;
}

/** A Kysely instance on its own pool. bigint columns come back as numbers (sizes, not money). */
export function createDb(url: string, opts: { max?: number; onError?: (err: Error) => void } = {}): Db {
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool: createPool(url, opts) }) });
}

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** Brings the schema up to date. Safe to call from several processes (Kysely takes a lock). */
export async function migrateToLatest<DB>(db: Kysely<DB>): Promise<string[]> {
  const migrator = new Migrator({ db, provider });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === "Error");
  if (error || failed) {
    const what = failed ? `migration ${failed.migrationName} failed` : "migration failed";
    throw new Error(`${what}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}
