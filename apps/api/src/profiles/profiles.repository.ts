// All SQL on `profiles`. Reads of a user's profile filter by user_id.
import type { Kysely } from "kysely";
import type { Database, NewProfile, ProfileRow } from "../db/types.js";

export class ProfilesRepository {
  constructor(private readonly db: Kysely<Database>) {}

  insert(row: NewProfile): Promise<ProfileRow> {
    return this.db.insertInto("profiles").values(row).returningAll().executeTakeFirstOrThrow();
  }

  findForUser(userId: string, id: string): Promise<ProfileRow | undefined> {
    return this.db.selectFrom("profiles").selectAll().where("id", "=", id).where("user_id", "=", userId).executeTakeFirst();
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

  /** Deletes the profile (its inputs, jobs, steps, artifacts and videos cascade). */
  async deleteForUser(userId: string, id: string): Promise<boolean> {
    const r = await this.db.deleteFrom("profiles").where("id", "=", id).where("user_id", "=", userId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}
