// `npm run migrate -w @likeness/api`: brings DATABASE_URL's schema up to date and exits.
// (The server also migrates at start-up.)
import { loadConfig } from "../config.js";
import { createDb, migrateToLatest } from "./db.js";

const config = loadConfig();
const db = createDb(config.databaseUrl, { max: 1 });
try {
  const applied = await migrateToLatest(db);
  process.stdout.write(applied.length ? `applied: ${applied.join(", ")}\n` : "schema up to date\n");
} finally {
  await db.destroy();
}
