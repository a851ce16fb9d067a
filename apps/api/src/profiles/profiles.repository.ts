// All SQL on `profiles`. Reads of a user's profile filter by user_id.
import type { Kysely } from "kysely";
import { json } from "../db/db.js";
import type { Database, NewProfile, ProfileRow, ProfileStateValue } from "../db/types.js";

export class ProfilesRepository {
  constructor(private readonly db: Kysely<Database>) {}

  insert(row: NewProfile): Promise<ProfileRow> {
    return this.db.insertInto("profiles").values(row).returningAll().executeTakeFirstOrThrow();
  }

  findForUser(userId: string, id: string): Promise<ProfileRow | undefined> {
    return this.db.selectFrom("profiles").selectAll().where("id", "=", id).where("user_id", "=", userId).executeTakeFirst();
  }

  /** Not scoped to a user: for the job side, which already holds the owner's job. */
  findById(id: string): Promise<ProfileRow | undefined> {
    return this.db.selectFrom("profiles").selectAll().where("id", "=", id).executeTakeFirst();
  }

  listForUser(userId: string): Promise<ProfileRow[]> {
    return this.db
      .selectFrom("profiles")
      .selectAll()
      .where("user_id", "=", userId)
      .orderBy("created_at", "desc")
      .orderBy("id")
      .execute();
  }

  /** Trigger words of this user that start with `base` (to derive a unique one). */
  async triggerWordsStartingWith(userId: string, base: string): Promise<Set<string>> {
    const rows = await this.db
      .selectFrom("profiles")
      .select("trigger_word")
      .where("user_id", "=", userId)
      .where("trigger_word", "like", `${base.replace(/[%_\\]/g, "\\$&")}%`)
      .execute();
    return new Set(rows.map((r) => r.trigger_word));
  }

  /** A training job was queued for the profile: it becomes its latest training job. */
  async markQueued(id: string, trainJobId: string): Promise<void> {
    await this.db
      .updateTable("profiles")
      .set({ state: "queued", train_job_id: trainJobId, updated_at: new Date() })
      .where("id", "=", id)
      .execute();
  }

  /** Updates the profile only while `trainJobId` is still its latest training job. */
  async setTrainState(id: string, trainJobId: string, state: ProfileStateValue, assets?: unknown): Promise<void> {
    await this.db
      .updateTable("profiles")
      .set({ state, updated_at: new Date(), ...(assets !== undefined ? { assets: json(assets) } : {}) })
      .where("id", "=", id)
      .where("train_job_id", "=", trainJobId)
      .execute();
  }

  /** The profile's default engines (the whole map). False when the user has no such profile. */
  async setEngines(userId: string, id: string, engines: Record<string, string>): Promise<boolean> {
    const r = await this.db
      .updateTable("profiles")
      .set({ engines: json(engines), updated_at: new Date() })
      .where("id", "=", id)
      .where("user_id", "=", userId)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Deletes the profile (its inputs, jobs, steps, artifacts and videos cascade). */
  async deleteForUser(userId: string, id: string): Promise<boolean> {
    const r = await this.db.deleteFrom("profiles").where("id", "=", id).where("user_id", "=", userId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}
