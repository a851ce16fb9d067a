// Migrations that carry data forward: rows written under the previous schema read right after.
import { randomBytes, randomUUID } from "node:crypto";
import { Migrator, sql } from "kysely";
import { afterAll, beforeAll, expect, it } from "vitest";
import { json, migrateToLatest } from "../src/db/db.js";
import { migrations } from "../src/db/migrations/index.js";
import { createTestDatabase, describeWithServices, type TestDatabase } from "./support.js";

describeWithServices("migrations", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(async () => {
    await t?.drop();
  });

  /** The schema as of migration `name`, with a user and a profile written under it. */
  const at = async (name: string) => {
    const migrator = new Migrator({ db: t.db, provider: { getMigrations: async () => migrations } });
    expect((await migrator.migrateTo(name)).error).toBeUndefined();
    const user = await t.db.insertInto("users").values({ email: `${randomUUID()}@example.com`, password_hash: "x" }).returning("id").executeTakeFirstOrThrow();
    const profile = await t.db
      .insertInto("profiles")
      .values({ user_id: user.id, name: "Ada", trigger_word: `lk${randomBytes(3).toString("hex")}`, state: "trained" })
      .returning("id")
      .executeTakeFirstOrThrow();
    return { migrator, db: t.db, user, profile };
  };

  it("0003 gives older videos the subtitle mode their request's boolean meant", async () => {
    const { db, user, profile } = await at("0002-job-cancelling");
    const videoFor = async (request: object) => {
      const job = await db
        .insertInto("jobs")
        .values({ user_id: user.id, kind: "generate_video", profile_id: profile.id, state: "succeeded", request: json(request) })
        .returning("id")
        .executeTakeFirstOrThrow();
      // Under 0002 the table has no subtitles column: insert only what it had.
      const video = await db
        .insertInto("videos")
        .values({ user_id: user.id, profile_id: profile.id, job_id: job.id, pipeline: "sadtalker", width: 512, height: 512 })
        .returning("id")
        .executeTakeFirstOrThrow();
      return video.id;
    };
    const soft = await videoFor({ narration: "Hi", subtitles: true });
    const none = await videoFor({ narration: "Hi", subtitles: false });
    const unsaid = await videoFor({ narration: "Hi" });

    expect(await migrateToLatest(db)).toContain("0003-video-subtitles");
    const rows = await db.selectFrom("videos").select(["id", "subtitles"]).execute();
    expect(Object.fromEntries(rows.map((r) => [r.id, r.subtitles]))).toEqual({ [soft]: "soft", [none]: "none", [unsaid]: "soft" });
    await expect(sql`UPDATE videos SET subtitles = 'hard' WHERE id = ${unsaid}`.execute(db)).rejects.toThrow(/check constraint/);
  });

  it("0004 gives job steps a nullable outputs column, empty for the steps before it, and takes it back", async () => {
    const { migrator, db, user, profile } = await at("0003-video-subtitles");
    const job = await db
      .insertInto("jobs")
      .values({ user_id: user.id, kind: "train_profile", profile_id: profile.id, state: "succeeded", request: json({}) })
      .returning("id")
      .executeTakeFirstOrThrow();
    await db.insertInto("job_steps").values({ job_id: job.id, name: "prepare", state: "succeeded", engine: "dataset" }).execute();

    expect(await migrateToLatest(db)).toContain("0004-step-outputs");
    const step = await db.selectFrom("job_steps").selectAll().where("job_id", "=", job.id).executeTakeFirstOrThrow();
    expect(step).toMatchObject({ name: "prepare", state: "succeeded", outputs: null });
    await db.updateTable("job_steps").set({ outputs: json({ reason: "why" }) }).where("job_id", "=", job.id).execute();
    expect((await db.selectFrom("job_steps").select("outputs").executeTakeFirstOrThrow()).outputs).toEqual({ reason: "why" });

    expect((await migrator.migrateTo("0003-video-subtitles")).error).toBeUndefined();
    const columns = await sql<{ column_name: string }>`
      SELECT column_name FROM information_schema.columns WHERE table_name = 'job_steps'`.execute(db);
    expect(columns.rows.map((r) => r.column_name)).not.toContain("outputs");
    await migrateToLatest(db);
  });
});
