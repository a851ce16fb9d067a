// job_steps.outputs: what a step reports about its work (the step_succeeded event's `outputs`,
// storage keys removed), e.g. why upscale was skipped or how mux handled the video stream.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE job_steps ADD COLUMN outputs jsonb`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE job_steps DROP COLUMN outputs`.execute(db);
}
