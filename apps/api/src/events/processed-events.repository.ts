// All SQL on `processed_events`: the dedupe of the events stream.
import type { Kysely } from "kysely";
import type { Database } from "../db/types.js";

export class ProcessedEventsRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Records the event ids in one statement; returns those not recorded before (not redeliveries). */
  async markProcessed(eventIds: readonly string[]): Promise<Set<string>> {
    if (eventIds.length === 0) return new Set();
    const inserted = await this.db
      .insertInto("processed_events")
      .values(eventIds.map((id) => ({ event_id: id })))
      .onConflict((oc) => oc.column("event_id").doNothing())
      .returning("event_id")
      .execute();
    return new Set(inserted.map((r) => r.event_id));
  }
}
