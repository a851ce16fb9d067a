// videos.subtitles: how the narration shows as text (soft track, burned in, none). Videos made
// before take it from their request's old boolean (true or missing = soft, false = none).
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE videos ADD COLUMN subtitles text NOT NULL DEFAULT 'soft'
      CHECK (subtitles IN ('soft','burned','none'))`.execute(db);
  await sql`
    UPDATE videos SET subtitles = 'none'
      FROM jobs WHERE jobs.id = videos.job_id AND jobs.request->'subtitles' = 'false'::jsonb`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE videos DROP COLUMN subtitles`.execute(db);
}
