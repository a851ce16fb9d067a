// End-to-end tests: the real api and worker processes on a real Postgres and Redis (see
// harness/stack.ts). One stack per file; files run one after another so that two stacks never
// fight over the CPU (the worker's ffmpeg/espeak steps are CPU-bound and the timings matter).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "e2e",
    root: import.meta.dirname,
    include: ["**/*.e2e.test.ts"],
    exclude: ["**/node_modules/**"],
    environment: "node",
    pool: "forks",
    fileParallelism: false,
    globalSetup: ["./harness/global-setup.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
