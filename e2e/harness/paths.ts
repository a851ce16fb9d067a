import path from "node:path";

export const REPO = path.resolve(import.meta.dirname, "../..");
export const API_ENTRY = path.join(REPO, "apps/api/dist/server.js");
export const WORKER_BIN = path.join(REPO, "worker/.venv/bin/likeness-worker");
