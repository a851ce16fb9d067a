// Root test entry (`npx vitest run`): one project per TypeScript package. Each folder owns its own
// vitest.config.ts (name, include, timeouts); a folder without one gets the defaults below.
// e2e/ is picked up once it exists.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { defineConfig } from "vitest/config";

const root = import.meta.dirname;
const folders = ["packages/contracts", "apps/api", "apps/cli", "e2e"].filter((dir) => existsSync(join(root, dir)));
const hasConfig = (dir: string) =>
  ["vitest.config.ts", "vitest.config.mts", "vitest.config.js", "vitest.config.mjs"].some((f) => existsSync(join(root, dir, f)));

export default defineConfig({
  test: {
    projects: folders.map((dir) =>
      hasConfig(dir)
        ? dir
        : {
            test: {
              name: dir.split("/").at(-1),
              root: join(root, dir),
              include: ["**/*.test.ts"],
              exclude: ["**/node_modules/**", "**/dist/**"],
            },
          },
    ),
  },
});
