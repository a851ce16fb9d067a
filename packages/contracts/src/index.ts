export * from "./jobs.js";
export * from "./redis.js";
export * from "./api.js";
export * from "./json-schema.js";
