// Web sessions (issue 13): a browser's session cookie is a token like the CLI's, but it ends on its
// own after a while; a CLI token (expires_at NULL) lasts until it is revoked.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE api_tokens DROP COLUMN expires_at`.execute(db);
}
