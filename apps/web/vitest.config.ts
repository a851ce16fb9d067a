// The browser tests (`npm run test:web`, and the web suite of `npm test`): the real studio (api,
// worker, `next start` on the web app's build) in Debian's chromium, started once per run by
// test/studio.ts. Not a project of the root vitest.config.ts, which is for the fast suites.
// Files run one after another: one studio, one browser at a time, timings that mean something.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "web",
    root: import.meta.dirname,
    include: ["test/**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/.next/**"],
    environment: "node",
    pool: "forks",
    fileParallelism: false,
    globalSetup: ["./test/studio.ts"],
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
