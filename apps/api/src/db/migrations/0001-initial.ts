// The app schema (docs/foundation.md, "Postgres"). Every table the api owns, jobs side included.
import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE EXTENSION IF NOT EXISTS citext`.execute(db);

  await sql`
    CREATE TABLE users (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      email citext NOT NULL UNIQUE CHECK (email::text = lower(email::text)),
      password_hash text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);

  await sql`
    CREATE TABLE api_tokens (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      token_hash text NOT NULL UNIQUE,
      name text,
      created_at timestamptz NOT NULL DEFAULT now(),
      last_used_at timestamptz
    )`.execute(db);
  await sql`CREATE INDEX api_tokens_user_id_idx ON api_tokens(user_id)`.execute(db);

  await sql`
    CREATE TABLE profiles (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      name text NOT NULL,
      trigger_word text NOT NULL,
      state text NOT NULL DEFAULT 'draft'
        CHECK (state IN ('draft','queued','training','trained','failed')),
      assets jsonb,
      train_job_id uuid,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (user_id, trigger_word)
    )`.execute(db);
  await sql`CREATE INDEX profiles_user_id_idx ON profiles(user_id, created_at)`.execute(db);

  await sql`
    CREATE TABLE profile_inputs (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      profile_id uuid NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
      kind text NOT NULL CHECK (kind IN ('image','voice')),
      position int NOT NULL,
      key text NOT NULL UNIQUE,
      original_name text NOT NULL,
      content_type text NOT NULL,
      bytes bigint NOT NULL,
      width int,
      height int,
      duration_sec double precision,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (profile_id, kind, position)
    )`.execute(db);

  await sql`
    CREATE TABLE jobs (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      kind text NOT NULL CHECK (kind IN ('train_profile','generate_video')),
      profile_id uuid NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
      state text NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued','running','succeeded','failed','cancelled')),
      attempt int NOT NULL DEFAULT 1,
      request jsonb NOT NULL,
      result jsonb,
      error jsonb,
      created_at timestamptz NOT NULL DEFAULT now(),
      started_at timestamptz,
      finished_at timestamptz
    )`.execute(db);
  await sql`CREATE INDEX jobs_user_id_idx ON jobs(user_id, created_at)`.execute(db);
  await sql`CREATE INDEX jobs_profile_id_idx ON jobs(profile_id)`.execute(db);
  await sql`
    ALTER TABLE profiles ADD CONSTRAINT profiles_train_job_id_fkey
      FOREIGN KEY (train_job_id) REFERENCES jobs(id) ON DELETE SET NULL`.execute(db);

  await sql`
    CREATE TABLE job_steps (
      job_id uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
      name text NOT NULL,
      state text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending','running','succeeded','failed','cancelled')),
      engine text,
      attempt int,
      started_at timestamptz,
      finished_at timestamptz,
      duration_ms int,
      reused boolean NOT NULL DEFAULT false,
      error jsonb,
      PRIMARY KEY (job_id, name)
    )`.execute(db);

  await sql`
    CREATE TABLE artifacts (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      job_id uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
      step text NOT NULL,
      key text NOT NULL UNIQUE,
      kind text NOT NULL,
      content_type text NOT NULL,
      bytes bigint NOT NULL,
      engine text NOT NULL,
      meta jsonb,
      created_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE INDEX artifacts_job_id_idx ON artifacts(job_id, step)`.execute(db);

  await sql`
    CREATE TABLE videos (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      profile_id uuid NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
      job_id uuid NOT NULL UNIQUE REFERENCES jobs(id) ON DELETE CASCADE,
      pipeline text NOT NULL,
      width int NOT NULL,
      height int NOT NULL,
      script jsonb,
      duration_sec double precision,
      video_key text,
      created_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE INDEX videos_user_id_idx ON videos(user_id, created_at)`.execute(db);

  await sql`
    CREATE TABLE processed_events (
      event_id uuid PRIMARY KEY,
      processed_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of [
    "processed_events",
    "videos",
    "artifacts",
    "job_steps",
    "profile_inputs",
  ]) {
    await sql`DROP TABLE IF EXISTS ${sql.table(t)}`.execute(db);
  }
  await sql`ALTER TABLE IF EXISTS profiles DROP CONSTRAINT IF EXISTS profiles_train_job_id_fkey`.execute(db);
  for (const t of ["jobs", "profiles", "api_tokens", "users"]) {
    await sql`DROP TABLE IF EXISTS ${sql.table(t)}`.execute(db);
  }
}
