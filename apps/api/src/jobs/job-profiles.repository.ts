// The profile reads and writes the job side needs (train dispatch and finalize, video checks).
// Kept apart from the core's profiles code so the two can evolve without editing each other.
import type { Kysely } from "kysely";
import type { Database, ProfileInputRow, ProfileRow, ProfileStateValue } from "../db/types.js";
import { json } from "./jobs.repository.js";

type Db = Kysely<Database>;

export function findProfile(db: Db, profileId: string, userId?: string): Promise<ProfileRow | undefined> {
  let q = db.selectFrom("profiles").selectAll().where("id", "=", profileId);
  if (userId !== undefined) q = q.where("user_id", "=", userId);
  return q.executeTakeFirst();
}

export function findProfileInputs(db: Db, profileId: string): Promise<ProfileInputRow[]> {
  return db
    .selectFrom("profile_inputs")
    .selectAll()
    .where("profile_id", "=", profileId)
    .orderBy("kind")
    .orderBy("position")
    .execute();
}

export async function markProfileQueued(db: Db, profileId: string, jobId: string): Promise<void> {
  await db
    .updateTable("profiles")
    .set({ state: "queued", train_job_id: jobId, updated_at: new Date() })
    .where("id", "=", profileId)
    .execute();
}

/** Updates the profile only while `jobId` is still its latest training job. */
export async function setProfileTrainState(
  db: Db,
  profileId: string,
  jobId: string,
  state: ProfileStateValue,
  assets?: unknown,
): Promise<void> {
  await db
    .updateTable("profiles")
    .set({ state, updated_at: new Date(), ...(assets !== undefined ? { assets: json(assets) } : {}) })
    .where("id", "=", profileId)
    .where("train_job_id", "=", jobId)
    .execute();
}
