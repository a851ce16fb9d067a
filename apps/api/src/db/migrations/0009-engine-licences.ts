// Licence notices (issue 14): a non-commercial engine may run, but the job says so from its
// creation and each step records the licence of the engine that ran it.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE jobs ADD COLUMN licence_notices jsonb NOT NULL DEFAULT '[]'::jsonb`.execute(db);
  await sql`ALTER TABLE job_steps ADD COLUMN licence text`.execute(db);
  await sql`ALTER TABLE job_steps ADD COLUMN non_commercial boolean NOT NULL DEFAULT false`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE job_steps DROP COLUMN non_commercial`.execute(db);
  await sql`ALTER TABLE job_steps DROP COLUMN licence`.execute(db);
  await sql`ALTER TABLE jobs DROP COLUMN licence_notices`.execute(db);
}
