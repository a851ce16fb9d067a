// What the reconciler (jobs/job-reconciler.ts) needs to know about each attempt's command:
// dispatched_at (the workflow dispatched this attempt: from then on its command belongs on the
// stream), command_id (the stream entry of its last XADD; null while none succeeded) and
// last_seen_at (the last sign of life: the command sent, or an event of the attempt recorded).
// Jobs dispatched before this migration keep dispatched_at null and are not reconciled.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE jobs
      ADD COLUMN dispatched_at timestamptz,
      ADD COLUMN command_id text,
      ADD COLUMN last_seen_at timestamptz`.execute(db);
  // The reconciler and the recovery pass read the jobs that have not ended, every few seconds.
  await sql`CREATE INDEX jobs_active_idx ON jobs(created_at) WHERE state IN ('queued', 'running', 'cancelling')`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX jobs_active_idx`.execute(db);
  await sql`ALTER TABLE jobs DROP COLUMN dispatched_at, DROP COLUMN command_id, DROP COLUMN last_seen_at`.execute(db);
}
