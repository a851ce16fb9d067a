// Edit and re-render (issue 12): a video made `from` another records it. Its job's command names
// that video's job, whose steps it reuses when their inputs did not change. When the source is
// deleted the edit keeps its own copies and forgets where it came from.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE videos ADD COLUMN source_video_id uuid REFERENCES videos(id) ON DELETE SET NULL`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE videos DROP COLUMN source_video_id`.execute(db);
}
