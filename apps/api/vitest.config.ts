import { defineConfig } from "vitest/config";

// Integration tests talk to a real Postgres and Redis (DATABASE_URL / REDIS_URL, or the local
// defaults); each test file creates its own database and Redis key prefix (see test/support.ts).
export default defineConfig({
  test: {
    name: "api",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    environment: "node",
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
