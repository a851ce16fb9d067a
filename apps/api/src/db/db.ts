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
 * A pg Pool whose idle-connection errors (Postgres restarted, connection killed) are reported
 * instead of crashing the process: pg emits them on the pool, and an unhandled 'error' is fatal.
 */
export function createPool(url: string, opts: { max?: number; onError?: (err: Error) => void } = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 10,
    types: {
      getTypeParser: ((oid: number, format?: "text" | "binary") =>
        oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
    },
  });
  pool.on("error", opts.onError ?? ((err) => console.error(`postgres pool: ${err.message}`)));
  return pool;
}

/** A Kysely instance on its own pool. bigint columns come back as numbers (sizes, not money). */
export function createDb(url: string, opts: { max?: number; onError?: (err: Error) => void } = {}): Db {
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool: createPool(url, opts) }) });
}

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** Brings the schema up to date. Safe to call from several processes (Kysely takes a lock). */
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  const migrator = new Migrator({ db, provider });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === "Error");
  if (error || failed) {
    const what = failed ? `migration ${failed.migrationName} failed` : "migration failed";
    throw new Error(`${what}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}
