// The only SQL on LangGraph's checkpoint tables (schema lg_api, owned by the saver): which
// threads belong to jobs that ended long ago. Deleting goes through the saver itself.
import { sql, type Kysely } from "kysely";
import type { Database } from "../db/types.js";

export class CheckpointsRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly schema: string,
  ) {}

  /** Thread ids (`<jobId>:<attempt>`) of jobs that ended more than `days` ago. */
  async threadsOfJobsEndedBefore(days: number, limit = 1000): Promise<string[]> {
    const { rows } = await sql<{ thread_id: string }>`
      select distinct c.thread_id
      from ${sql.table(`${this.schema}.checkpoints`)} c
      join jobs j on j.id::text = split_part(c.thread_id, ':', 1)
      where j.state in ('succeeded', 'failed', 'cancelled')
        and j.finished_at < now() - make_interval(days => ${days})
      limit ${limit}`.execute(this.db);
    return rows.map((r) => r.thread_id);
  }
}
