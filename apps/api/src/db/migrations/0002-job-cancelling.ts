// jobs.state gains `cancelling`: a running job the user cancelled, until the worker reports.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE jobs DROP CONSTRAINT jobs_state_check`.execute(db);
  await sql`
    ALTER TABLE jobs ADD CONSTRAINT jobs_state_check
      CHECK (state IN ('queued','running','cancelling','succeeded','failed','cancelled'))`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`UPDATE jobs SET state = 'running' WHERE state = 'cancelling'`.execute(db);
  await sql`ALTER TABLE jobs DROP CONSTRAINT jobs_state_check`.execute(db);
  await sql`
    ALTER TABLE jobs ADD CONSTRAINT jobs_state_check
      CHECK (state IN ('queued','running','succeeded','failed','cancelled'))`.execute(db);
}
