// What the app needs from outside, in a module of its own: the route plugins take it without
// importing app.ts (which imports them).
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { Config } from "./config.js";
import type { Db } from "./db/db.js";
import type { ObjectStorage } from "./storage/object-storage.js";

/** Everything the app needs from outside. server.ts builds these; tests build their own. */
export interface AppDeps {
  config: Config;
  db: Db;
  /** The shared command connection. Need a subscriber? Use `redis.duplicate()` and close it on app close. */
  redis: Redis;
  storage: ObjectStorage;
  /** A pino logger; default: a new one at config.logLevel with secrets redacted. */
  log?: Logger;
}
