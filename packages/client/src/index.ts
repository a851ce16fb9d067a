export * from "./api-client.js";
export * from "./errors.js";
export * from "./step-note.js";
