// The process: config → deps → buildApp → listen. Graceful shutdown on SIGTERM/SIGINT (close-with-grace).
import closeWithGrace from "close-with-grace";
import { loadConfig, ConfigError } from "./config.js";
import { createDb, migrateToLatest } from "./db/db.js";
import { createRedis } from "./bus/redis-client.js";
import { retryTransient } from "./resilience/retry.js";
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
  // Postgres restarting as the api starts is waited for (up to API_OUTAGE_MAX_S), not fatal.
  const applied = await retryTransient(() => migrateToLatest(db), {
    maxMs: config.outage.maxMs,
    onRetry: (err, attempt) => attempt === 1 && log.warn({ err }, "postgres unavailable at start-up; waiting for it"),
  });
  if (applied.length) log.info({ applied }, "database migrated");
  // Reconnects forever; see bus/redis-client.ts.
  const redis = createRedis(config.redisUrl);
  redis.on("error", () => undefined); // reported once per outage by the app (resilience/watch-dependencies.ts)
  const storage = createStorage(config.storage);

  const app = await buildApp({ config, db, redis, storage, log });

  // SIGTERM or SIGINT, or an uncaught error: close the app, then its connections, and exit 0
  // (1 after an error, a failed close or a second signal); a close still running after 20 s exits 1.
  closeWithGrace(
    {
      delay: 20_000,
      logger: false,
      skip: ["SIGHUP", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGSEGV", "SIGUSR2", "beforeExit"],
      onTimeout: () => log.error("shutdown took longer than 20 s; exiting"),
      onSecondSignal: (signal) => log.error({ signal }, "second signal while shutting down; exiting"),
      onSecondError: (err) => log.error({ err }, "error while shutting down; exiting"),
    },
    async ({ signal, err }) => {
      if (err) log.fatal({ err }, "uncaught error; shutting down");
      else log.info({ signal }, "shutting down");
      try {
        await app.close();
        redis.disconnect();
        await storage.close?.();
        await db.destroy();
      } catch (closeErr) {
        log.error({ err: closeErr }, "shutdown failed");
        throw closeErr;
      }
    },
  );

  await app.listen({ host: config.api.host, port: config.api.port });
}

main().catch((err) => {
  process.stderr.write(`likeness-api: failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
