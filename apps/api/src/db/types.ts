// Kysely table types for every table of the app schema (docs/foundation.md, "Postgres").
// Conventions:
//  - timestamps are timestamptz → Date on read;
//  - jsonb columns read as parsed JSON and are WRITTEN AS A JSON STRING (`JSON.stringify(x)`),
//    because node-postgres would turn a JS array into a Postgres array literal;
//  - bigint columns (bytes) are parsed to number by createDb().
import type { ColumnType, Generated, Insertable, Selectable, Updateable } from "kysely";
import type { JobKind, JobState, ProfileState, StepState, SubtitleMode } from "@likeness/contracts";

export type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
export type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
export type JsonValue = unknown;
/** jsonb NOT NULL: read parsed, write `JSON.stringify(value)`. */
export type Json = ColumnType<JsonValue, string, string>;
/** jsonb NOT NULL with a default: read parsed, write `JSON.stringify(value)` or leave it out. */
export type DefaultedJson = ColumnType<JsonValue, string | undefined, string>;
/** jsonb NULL: read parsed or null, write `JSON.stringify(value)` or null. */
export type NullableJson = ColumnType<JsonValue | null, string | null | undefined, string | null>;

/** The state columns hold the contracts' values (the CHECK constraints of the migrations list them too). */
export type ProfileStateValue = ProfileState;
export type JobKindValue = JobKind;
export type JobStateValue = JobState;
export type StepStateValue = StepState;

export interface UsersTable {
  id: Generated<string>;
  /** Stored lower-case (citext column, unique). */
  email: string;
  password_hash: string;
  created_at: Generated<Date>;
}

export interface ApiTokensTable {
  id: Generated<string>;
  user_id: string;
  /** hex sha256 of the token; the token itself is never stored. */
  token_hash: string;
  name: string | null;
  created_at: Generated<Date>;
  last_used_at: NullableTimestamp;
  /** A web session's end; null for a CLI token (it lasts until revoked). */
  expires_at: NullableTimestamp;
}

export interface ProfilesTable {
  id: Generated<string>;
  user_id: string;
  name: string;
  trigger_word: string;
  state: ColumnType<ProfileStateValue, ProfileStateValue | undefined, ProfileStateValue>;
  assets: NullableJson;
  train_job_id: string | null;
  /** Default engines of the profile's jobs, task kind → engine name (`{}`: the workers' defaults). */
  engines: DefaultedJson;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface ProfileInputsTable {
  id: Generated<string>;
  profile_id: string;
  kind: "image" | "voice";
  position: number;
  key: string;
  original_name: string;
  content_type: string;
  bytes: number;
  width: number | null;
  height: number | null;
  duration_sec: number | null;
  created_at: Generated<Date>;
}

export interface JobsTable {
  id: Generated<string>;
  user_id: string;
  kind: JobKindValue;
  profile_id: string;
  state: ColumnType<JobStateValue, JobStateValue | undefined, JobStateValue>;
  attempt: ColumnType<number, number | undefined, number>;
  request: Json;
  result: NullableJson;
  error: NullableJson;
  created_at: Generated<Date>;
  started_at: NullableTimestamp;
  finished_at: NullableTimestamp;
  /** When the workflow dispatched this attempt; null before (recover()'s business, not the reconciler's). */
  dispatched_at: NullableTimestamp;
  /** The stream entry id of this attempt's last XADD; null while no XADD succeeded. */
  command_id: string | null;
  /** The last sign of life of this attempt: its command sent, or one of its events recorded. */
  last_seen_at: NullableTimestamp;
  /** The engines this job asked for, task kind → engine name (request over profile defaults); sent in its command. */
  engines: DefaultedJson;
  /** LicenceNotice[]: the non-commercial engines the job was set to use, when it was created. */
  licence_notices: DefaultedJson;
}

export interface JobStepsTable {
  job_id: string;
  name: string;
  state: ColumnType<StepStateValue, StepStateValue | undefined, StepStateValue>;
  engine: string | null;
  /** The SPDX licence of the engine that ran it (from step_started); null before. */
  licence: string | null;
  non_commercial: ColumnType<boolean, boolean | undefined, boolean>;
  attempt: number | null;
  started_at: NullableTimestamp;
  finished_at: NullableTimestamp;
  duration_ms: number | null;
  reused: ColumnType<boolean, boolean | undefined, boolean>;
  error: NullableJson;
  /** The step_succeeded event's `outputs`, storage keys removed; null until the step succeeds. */
  outputs: NullableJson;
}

export interface ArtifactsTable {
  id: Generated<string>;
  user_id: string;
  job_id: string;
  step: string;
  key: string;
  kind: string;
  content_type: string;
  bytes: number;
  engine: string;
  meta: NullableJson;
  created_at: Generated<Date>;
}

export interface VideosTable {
  id: Generated<string>;
  user_id: string;
  profile_id: string;
  job_id: string;
  pipeline: string;
  width: number;
  height: number;
  /** 'soft' | 'burned' | 'none' (CHECK); 'soft' when not given. */
  subtitles: Generated<SubtitleMode>;
  script: NullableJson;
  duration_sec: number | null;
  video_key: string | null;
  /** The video this one was edited from (POST /v1/videos `from`); null when the source is gone. */
  source_video_id: Generated<string | null>;
  created_at: Generated<Date>;
}

export interface ProcessedEventsTable {
  event_id: string;
  processed_at: Generated<Date>;
}

export interface Database {
  users: UsersTable;
  api_tokens: ApiTokensTable;
  profiles: ProfilesTable;
  profile_inputs: ProfileInputsTable;
  jobs: JobsTable;
  job_steps: JobStepsTable;
  artifacts: ArtifactsTable;
  videos: VideosTable;
  processed_events: ProcessedEventsTable;
}

export type UserRow = Selectable<UsersTable>;
export type ApiTokenRow = Selectable<ApiTokensTable>;
export type ProfileRow = Selectable<ProfilesTable>;
export type NewProfile = Insertable<ProfilesTable>;
export type ProfileUpdate = Updateable<ProfilesTable>;
export type ProfileInputRow = Selectable<ProfileInputsTable>;
export type NewProfileInput = Insertable<ProfileInputsTable>;
export type JobRow = Selectable<JobsTable>;
export type NewJob = Insertable<JobsTable>;
export type JobUpdateRow = Updateable<JobsTable>;
export type JobStepRow = Selectable<JobStepsTable>;
export type NewJobStep = Insertable<JobStepsTable>;
export type ArtifactRow = Selectable<ArtifactsTable>;
export type NewArtifact = Insertable<ArtifactsTable>;
export type VideoRow = Selectable<VideosTable>;
export type NewVideo = Insertable<VideosTable>;
