// The browser tests' harness (apps/web/vitest.config.ts).
//
// As vitest's globalSetup it starts one studio for the whole run: the api and the worker
// (scripts/stack.mjs) on a fresh database `lk_web_<rand>` of DATABASE_URL's server, a random
// REDIS_KEY_PREFIX on REDIS_URL and a temp STORAGE_DIR, and `next start` on the web app's build on
// a free port; logs in .data/logs/web-tests/. The worker runs with test faults that only jobs
// asking for them by a marker in their text get (LIKENESS_TEST_FAULTS below). Afterwards:
// processes stopped, database dropped, the prefix's keys deleted (SCAN, never FLUSHDB), temp
// folder removed. Without chromium, the builds, Postgres or Redis the tests are skipped — and
// fail when CI is set.
//
// For the test files: useStudio(), openBrowser(), newPage(), expectAccessible(), screenshot(),
// pageErrors().
//
// Ports. `next build` fixes the web app's /v1 rewrite to the api (apps/web/next.config.ts). The
// tests use the same build as `npm start` — scripts/bootstrap.sh builds it for LIKENESS_API_URL,
// default http://127.0.0.1:$API_PORT (8080) — and run their api where that build sends /v1, read
// from the build itself (.next/routes-manifest.json), never assumed. So going from `npm start`
// to the tests and back needs no rebuild (only changed sources do), and a test run does not swap
// the build of a running studio for one made for another port. The price: that port must be free while the tests run (a running `npm start`
// holds it), and the harness says so in one line rather than let the pages talk to another api.
// The alternatives cost more: a test-only api port means another build each time one goes from
// the studio to the tests and back (one .next folder), and a rewrite target read at run time
// would need a proxy inside the app. `API_PORT=<port> npm run test:web` builds for another port.
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { AxeBuilder } from "@axe-core/playwright";
import { Redis } from "ioredis";
import pg from "pg";
import { chromium, type Browser, type Page } from "playwright-core";
import { beforeEach, inject } from "vitest";
import type { TestProject } from "vitest/node";
import { freePort, portTaken } from "../../../scripts/infra.mjs";
import { freshDatabase, unreachable } from "../../../e2e/harness/stack.js";
import { API_ENTRY, REPO, Stack, WORKER_BIN, builtApiUrl, rel } from "../../../scripts/stack.mjs";

export const CHROMIUM = "/usr/bin/chromium";
export const SCREENSHOTS = path.join(REPO, "artifacts", "screenshots");
const LOGS = path.join(REPO, ".data", "logs", "web-tests");
const DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test";
const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";

/** What the test files get from the setup (vitest's provide/inject). */
export interface StudioInfo {
  /** The web app, e.g. http://127.0.0.1:41234: pages and, through its rewrite, /v1. */
  webUrl: string;
  /** The api itself (the URL the web build sends /v1 to). */
  apiUrl: string;
  /** The api's, the worker's and the web app's log files. */
  logs: string[];
}

declare module "vitest" {
  export interface ProvidedContext {
    studio: StudioInfo | { skipped: string };
  }
}

// ---------------------------------------------------------------------------------------------
// globalSetup: one studio per run

/** Why the studio cannot run here, or undefined when it can. */
async function missingPrerequisite(databaseUrl: string, redisUrl: string): Promise<string | undefined> {
  for (const [file, what] of [
    [CHROMIUM, "Debian's chromium (bash scripts/bootstrap.sh --browser)"],
    [API_ENTRY, "the api build (npx tsc -b)"],
    [WORKER_BIN, "the worker venv (bash scripts/bootstrap.sh)"],
    [path.join(REPO, "apps/web/.next/routes-manifest.json"), "the web app's build (bash scripts/bootstrap.sh)"],
  ] as const) {
    if (!fs.existsSync(file)) return `${rel(file)} is missing: ${what}`;
  }
  return unreachable(databaseUrl, redisUrl);
}

/** The last `lines` lines of each log, for a failure message. */
export function logTails(files: string[], lines = 30): string {
  return files
    .map((file) => {
      let tail = "(no log)";
      try {
        tail = fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
      } catch { /* not written */ }
      return `----- last lines of ${rel(file)} -----\n${tail}`;
    })
    .join("\n");
}

/** Where the web build sends /v1, checked to be a free port of this machine the api can take. */
async function apiPortOfBuild(): Promise<{ apiUrl: string; port: number }> {
  const apiUrl = builtApiUrl();
  const u = new URL(apiUrl);
  const port = Number(u.port || 80);
  if (u.hostname !== "127.0.0.1") {
    throw new Error(`web tests: the web app was built to send /v1 to ${apiUrl}, not to an api on 127.0.0.1: rebuild it with LIKENESS_API_URL unset (bash scripts/bootstrap.sh)`);
  }
  if (await portTaken(port)) {
    throw new Error(
      `web tests: port ${port} is taken on 127.0.0.1, and the web build sends /v1 there (fixed when it was built): ` +
        `stop what listens on it (a running npm start?) or run API_PORT=<a free port> npm run test:web, which builds for that port`,
    );
  }
  return { apiUrl, port };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const adminUrl = process.env.DATABASE_URL || DEFAULT_DATABASE_URL;
  const redisUrl = process.env.REDIS_URL || DEFAULT_REDIS_URL;
  const missing = await missingPrerequisite(adminUrl, redisUrl);
  if (missing) {
    if (process.env.CI) throw new Error(`web tests: ${missing} (CI is set, so this is a failure, not a skip)`);
    console.warn(`web tests: skipped: ${missing}`);
    project.provide("studio", { skipped: missing });
    return async () => {};
  }
  let built: { apiUrl: string; port: number };
  try {
    built = await apiPortOfBuild();
  } catch (err) {
    // Nothing started yet and nothing a stack trace would explain: one line, exit 1 (vitest would
    // add its trace and a misleading "No test files found").
    console.error((err as Error).message);
    process.exit(1);
  }
  const { apiUrl, port: apiPort } = built;

  const { name: databaseName, url: dbUrl } = await freshDatabase(adminUrl, "lk_web");
  const redisKeyPrefix = `lkweb_${randomBytes(5).toString("hex")}`;
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), "lk-web-"));
  const workDir = path.join(tmpDir, "worker-work");
  fs.mkdirSync(workDir, { recursive: true });
  fs.rmSync(LOGS, { recursive: true, force: true });
  const stack = new Stack(LOGS);

  const close = async (): Promise<void> => {
    await stack.stop();
    const db = new pg.Client({ connectionString: adminUrl });
    try {
      await db.connect();
      await db.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
    } finally {
      await db.end().catch(() => undefined);
    }
    const redis = new Redis(redisUrl, { maxRetriesPerRequest: 3 });
    try {
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", `${redisKeyPrefix}*`, "COUNT", 500);
        cursor = next;
        if (keys.length) await redis.unlink(...keys);
      } while (cursor !== "0");
    } finally {
      redis.disconnect();
    }
    fs.rmSync(tmpDir, { recursive: true, force: true });
  };

  try {
    const { env } = await stack.startApiAndWorker(
      {
        DATABASE_URL: dbUrl,
        REDIS_URL: redisUrl,
        REDIS_KEY_PREFIX: redisKeyPrefix,
        WORKER_METRICS_PORT: "0",
        WORKER_WORK_DIR: workDir,
        // The built-in LLM loads at the first topic, not at every start.
        LLM_LOCAL_PRELOAD: "false",
        // Faults only for the jobs whose text asks for them (worker/likeness_worker/faults.py): a
        // narration with FAILONCE fails its talking-head step in the first attempt; one with
        // SLOWLY waits 4 s in upscale (a job still running when a test needs one).
        LIKENESS_TEST_FAULTS: "talking_head/FAILONCE:1, upscale/SLOWLY:sleep=4",
      },
      { storageDir: path.join(tmpDir, "objects"), port: apiPort },
    );
    const webUrl = await stack.startWeb({ port: await freePort(), apiUrl, env });
    await stack.waitWorkerReady();
    project.provide("studio", { webUrl, apiUrl, logs: stack.services.map((s) => s.log) });
  } catch (err) {
    const logs = logTails(stack.services.map((s) => s.log));
    await close().catch(() => undefined);
    throw new Error(`web tests: the studio did not start: ${(err as Error).message}\n${logs}`, { cause: err });
  }
  return close;
}

// ---------------------------------------------------------------------------------------------
// Helpers for the test files

/**
 * The running studio, or undefined when the setup skipped it (use `describe.skipIf(!studio)`).
 * Call at the top of a test file: after each failed test it prints the last lines of the api's,
 * the worker's and the web app's logs.
 */
export function useStudio(): StudioInfo | undefined {
  const studio = inject("studio");
  if ("skipped" in studio) return undefined;
  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => console.error(`the studio's logs after this failed test:\n${logTails(studio.logs)}`));
  });
  return studio;
}

function studioInfo(): StudioInfo {
  const studio = inject("studio");
  if ("skipped" in studio) throw new Error(`the studio is not running: ${studio.skipped}`);
  return studio;
}

/**
 * Debian's chromium, headless. `--no-sandbox`: Chromium's sandbox refuses to run as root (CI and
 * these machines); the pages are our own. The fake media flags give getUserMedia a test camera
 * and microphone without a permission prompt (recording a voice sample in the browser).
 */
export function openBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"],
  });
}

type Screen = "desktop" | "phone";
const pages = new WeakMap<Page, { screen: Screen; errors: string[] }>();

/**
 * A page in a fresh context (its own cookies and storage: a new visitor) whose relative URLs are
 * the studio's: `page.goto("/")`. Desktop 1280x800, or a phone, 375x812 with touch.
 * (@axe-core/playwright needs a page from a context it can open more pages in.)
 */
export async function newPage(browser: Browser, opts: { phone?: boolean } = {}): Promise<Page> {
  const screen: Screen = opts.phone ? "phone" : "desktop";
  const context = await browser.newContext({
    baseURL: studioInfo().webUrl,
    ...(opts.phone ? { viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true } : { viewport: { width: 1280, height: 800 } }),
  });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(err.message));
  pages.set(page, { screen, errors });
  return page;
}

/** Uncaught exceptions of the page's scripts so far (a screen that renders but throws is broken). */
export function pageErrors(page: Page): string[] {
  return pages.get(page)?.errors ?? [];
}

function screenOf(page: Page): Screen {
  const screen = pages.get(page)?.screen;
  if (!screen) throw new Error("use newPage() for pages the harness checks (it knows their screen size)");
  return screen;
}

/**
 * Runs axe (WCAG 2.0 A and AA, 2.1 AA) on the page as it is now; fails on any serious or critical
 * violation, listing each rule with its impact and the elements that fail it.
 */
export async function expectAccessible(page: Page, screenName: string): Promise<void> {
  const screen = screenOf(page);
  const { violations } = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21aa"]).analyze();
  const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  if (bad.length === 0) return;
  const lines = bad.map((v) => {
    const targets = v.nodes.map((n) => n.target.map((t) => (Array.isArray(t) ? t.join(" >>> ") : t)).join(" "));
    return `  ${v.id} (${v.impact}): ${v.help}\n${targets.map((t) => `      ${t}`).join("\n")}`;
  });
  throw new Error(`${screenName} (${screen}, ${page.url()}): ${bad.length} serious or critical accessibility violation(s):\n${lines.join("\n")}`);
}

/** Saves the whole page as artifacts/screenshots/<name>-desktop.png (or -phone.png); returns the path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const file = path.join(SCREENSHOTS, `${name}-${screenOf(page)}.png`);
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
