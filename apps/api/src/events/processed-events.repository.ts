// All SQL on `processed_events`: the dedupe of the events stream.
import type { Kysely } from "kysely";
import type { Database } from "../db/types.js";

export class ProcessedEventsRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Records the event id; false when it was recorded before (a redelivery). */
  async markProcessed(eventId: string): Promise<boolean> {
    const inserted = await this.db
      .insertInto("processed_events")
      .values({ event_id: eventId })
      .onConflict((oc) => oc.column("event_id").doNothing())
      .returning("event_id")
      .executeTakeFirst();
    return inserted !== undefined;
  }
}
