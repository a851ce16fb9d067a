// Engines chosen per request (issue 11): a profile's default engines (task kind → engine name,
// PUT /v1/profiles/{id}/engines) and, per job, the engines it was asked to use (the request over
// the profile's defaults, fixed when the job is created so that a resent command is the one first
// sent). Both `{}` when nothing was chosen: the workers' defaults.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE profiles ADD COLUMN engines jsonb NOT NULL DEFAULT '{}'::jsonb`.execute(db);
  await sql`ALTER TABLE jobs ADD COLUMN engines jsonb NOT NULL DEFAULT '{}'::jsonb`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE jobs DROP COLUMN engines`.execute(db);
  await sql`ALTER TABLE profiles DROP COLUMN engines`.execute(db);
}
