import type { StorageConfig } from "../config.js";
import { LocalStorage } from "./local.storage.js";
import type { ObjectStorage } from "./object-storage.js";
import { S3Storage } from "./s3.storage.js";

export * from "./object-storage.js";
export { LocalStorage } from "./local.storage.js";
export { S3Storage } from "./s3.storage.js";

export function createStorage(cfg: StorageConfig): ObjectStorage {
  return cfg.driver === "s3" ? new S3Storage(cfg.s3) : new LocalStorage(cfg.dir);
}
