// The process: config → deps → buildApp → listen. Graceful shutdown on SIGTERM/SIGINT.
import { Redis } from "ioredis";
import { loadConfig, ConfigError } from "./config.js";
import { createDb, migrateToLatest } from "./db/db.js";
import { createStorage } from "./storage/storage.js";
import { createLogger } from "./http/logger.js";
import { buildApp } from "./app.js";

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`likeness-api: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  const db = createDb(config.databaseUrl, { onError: (err) => log.warn({ err }, "postgres connection error") });
  const applied = await migrateToLatest(db);
  if (applied.length) log.info({ applied }, "database migrated");
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 3, lazyConnect: false });
  const storage = createStorage(config.storage);

  const app = await buildApp({ config, db, redis, storage, log });

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, "shutting down");
    const force = setTimeout(() => {
      log.error("shutdown took longer than 20 s; exiting");
      process.exit(1);
    }, 20_000);
    force.unref();
    try {
      await app.close();
      redis.disconnect();
      await storage.close?.();
      await db.destroy();
      process.exit(0);
    } catch (err) {
      log.error({ err }, "shutdown failed");
      process.exit(1);
    }
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));

  await app.listen({ host: config.api.host, port: config.api.port });
}

main().catch((err) => {
  process.stderr.write(`likeness-api: failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
