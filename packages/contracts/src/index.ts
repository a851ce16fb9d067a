export * from "./jobs.js";
export * from "./redis.js";
export * from "./storage-keys.js";
export * from "./api.js";
export * from "./engines.js";
export * from "./json-schema.js";
