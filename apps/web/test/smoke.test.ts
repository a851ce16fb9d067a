// The harness end to end: the studio's front page renders in chromium at desktop and phone width,
// has a heading, passes axe and is saved as a screenshot; /v1 reaches the api through the web
// app's rewrite.
import fs from "node:fs";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { expectAccessible, newPage, openBrowser, pageErrors, screenshot, useStudio } from "./studio.js";

const studio = useStudio();

describe.skipIf(!studio)("the studio", () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await openBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  for (const phone of [false, true]) {
    test(`the front page at ${phone ? "phone" : "desktop"} width: a heading, accessible, no sideways scrolling`, async () => {
      const page = await newPage(browser, { phone });
      const res = await page.goto("/");
      expect(res?.status()).toBe(200);
      const h1 = page.locator("h1").first();
      await h1.waitFor();
      expect((await h1.innerText()).trim()).not.toBe("");
      await expectAccessible(page, "front page");
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow, "the page is wider than the screen").toBeLessThanOrEqual(0);
      const file = await screenshot(page, "front-page");
      expect(fs.readFileSync(file).subarray(1, 4).toString()).toBe("PNG");
      expect(pageErrors(page)).toEqual([]);
      await page.context().close();
    });
  }

  test("/v1 goes through the web app's rewrite to the api: GET /v1/me without a session is the api's 401", async () => {
    const viaWeb = await fetch(`${studio!.webUrl}/v1/me`);
    expect(viaWeb.status).toBe(401);
    expect(viaWeb.headers.get("content-type")).toMatch(/^application\/json/);
    const body = (await viaWeb.json()) as { error?: unknown };
    expect(body.error).toBe("unauthorized");
    // The same answer as the api's own: the rewrite reached this studio's api, not a page of Next's.
    const direct = await fetch(`${studio!.apiUrl}/v1/me`);
    expect(await direct.json()).toEqual(body);
  });
});
