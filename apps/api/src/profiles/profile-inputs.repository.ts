// All SQL on `profile_inputs`.
import type { Kysely } from "kysely";
import type { Database, NewProfileInput, ProfileInputRow } from "../db/types.js";

export class ProfileInputsRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insertMany(rows: NewProfileInput[]): Promise<ProfileInputRow[]> {
    if (rows.length === 0) return [];
    return this.db.insertInto("profile_inputs").values(rows).returningAll().execute();
  }

  /** Inputs of several profiles, images first (by position), then the voice sample. */
  listForProfiles(profileIds: string[]): Promise<ProfileInputRow[]> {
    if (profileIds.length === 0) return Promise.resolve([]);
    return this.db
      .selectFrom("profile_inputs")
      .selectAll()
      .where("profile_id", "in", profileIds)
      .orderBy("profile_id")
      .orderBy("kind")
      .orderBy("position")
      .execute();
  }
}
