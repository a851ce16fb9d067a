// Both flows of the studio in chromium, as a person does them: sign up; a profile from the sample
// photos and voice, its training watched live; a video from a narration that plays and downloads;
// then what goes wrong: a photo the studio cannot use, a step that fails and is retried, a reload
// in the middle of a job, another user's pages. Every screen passes axe and is saved at desktop
// and phone width (artifacts/screenshots/).
//
// The worker runs with LIKENESS_TEST_FAULTS (test/studio.ts): a narration with FAILONCE fails its
// talking-head step in the first attempt; one with SLOWLY waits 4 s in upscale.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import sharp from "sharp";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { makeSamples } from "../../../scripts/samples.mjs";
import { expectAccessible, newPage, openBrowser, pageErrors, screenshot, useStudio } from "./studio.js";

const studio = useStudio();
const PASSWORD = "correct horse battery";
const UUID = /[0-9a-f-]{36}/;

interface Files {
  portrait: string;
  voice: string;
  /** No face in it: training leaves it out, with the reason. */
  faceless: string;
  /** 32×32: under the 64 px the studio needs, caught before upload. */
  tiny: string;
}

async function makeFiles(dir: string): Promise<Files> {
  const { portrait, voice } = makeSamples(path.join(os.tmpdir(), "likeness-samples"));
  const faceless = path.join(dir, "sky.png");
  const tiny = path.join(dir, "tiny.png");
  await sharp({ create: { width: 320, height: 320, channels: 3, background: { r: 120, g: 170, b: 230 } } }).png().toFile(faceless);
  await sharp(portrait).resize(32, 32).png().toFile(tiny);
  return { portrait, voice, faceless, tiny };
}

/** Checks the screen as it is: axe, no sideways scrolling, no script errors; then the screenshot. */
async function screen(page: Page, name: string): Promise<void> {
  await expectAccessible(page, name);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow, `${name}: wider than the screen`).toBeLessThanOrEqual(0);
  expect(pageErrors(page), `${name}: script errors`).toEqual([]);
  await screenshot(page, name);
}

async function signUp(page: Page, email: string): Promise<void> {
  await page.goto("/signup");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("heading", { name: "Your studio", exact: true }).waitFor();
}

/** New profile → upload → training: returns on the profile's page once it is trained. */
async function makeProfile(page: Page, name: string, photos: string[], voice: string): Promise<string> {
  await page.goto("/profiles/new");
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Choose photos").setInputFiles(photos);
  await page.getByLabel("Upload a recording").setInputFiles(voice);
  await page.getByRole("img", { name: /^Waveform of/ }).waitFor();
  await page.getByRole("button", { name: "Create profile and start training" }).click();
  await page.waitForURL(/\/profiles\/[0-9a-f-]{36}$/);
  await page.getByRole("link", { name: "Make a video" }).waitFor({ timeout: 120_000 });
  return UUID.exec(page.url())![0];
}

/** New video from a narration; returns on the video's page, right after it opened. */
async function startVideo(page: Page, narration: string): Promise<string> {
  await page.goto("/videos/new");
  await page.getByLabel("Narration", { exact: true }).fill(narration);
  await page.getByRole("button", { name: "Generate video" }).click();
  await page.waitForURL(/\/videos\/[0-9a-f-]{36}$/);
  return UUID.exec(page.url())![0];
}

const player = (page: Page) => page.getByTestId("player");

describe.skipIf(!studio)("the studio in a browser", () => {
  let browser: Browser;
  let files: Files;
  let tmp: string;
  // What the first test leaves for the others: a signed-in page of a user with a trained profile.
  let owner: Page;
  let profileId: string;
  let videoId: string;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lk-web-flows-"));
    files = await makeFiles(tmp);
    browser = await openBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test("sign up, make a profile and watch it train, make a video that plays, download it", async () => {
    const page = await newPage(browser);
    owner = page;
    await page.goto("/");
    await page.waitForURL(/\/signin/); // signed out: no data, the sign-in page
    await screen(page, "sign-in");
    await page.getByRole("link", { name: "Create an account" }).click();
    await page.getByLabel("Email").fill(`studio-${Date.now()}@example.com`);
    await page.getByLabel("Password").fill("short");
    await page.getByRole("button", { name: "Create account" }).click();
    await expect.poll(() => page.getByText("at least 10 characters").count()).toBe(1);
    await screen(page, "sign-up");
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByRole("heading", { name: "Your studio", exact: true }).waitFor();
    await page.getByText("No profiles yet").waitFor();
    await screen(page, "home-empty");

    // New profile: the portrait and a photo without a face, and the voice sample.
    await page.getByRole("link", { name: "Create your first profile" }).click();
    await page.getByLabel("Name").fill("Astronaut");
    await page.getByLabel("Choose photos").setInputFiles([files.portrait, files.faceless]);
    await page.getByLabel("Upload a recording").setInputFiles(files.voice);
    await page.getByRole("img", { name: /^Waveform of voice\.wav, \d+(\.\d)? s$/ }).waitFor();
    await expect.poll(() => page.getByText("512×512").count()).toBe(1);
    await screen(page, "new-profile");
    await page.getByRole("button", { name: "Create profile and start training" }).click();

    // Training, live: the steps run, each with its engine, until the profile is trained.
    await page.waitForURL(/\/profiles\/[0-9a-f-]{36}$/);
    profileId = UUID.exec(page.url())![0];
    await page.getByTestId("job-view").waitFor();
    await screen(page, "training");
    await page.getByRole("link", { name: "Make a video" }).waitFor({ timeout: 120_000 });
    const steps = page.getByTestId("job-view").locator("[data-step]");
    expect(await steps.count()).toBe(5);
    for (const s of await steps.all()) {
      expect(await s.getAttribute("data-state")).toBe("succeeded");
      expect(await s.innerText()).toMatch(/engine: \w+/);
    }
    // The photos used, and the one that was not, with its reason.
    const photos = page.getByTestId("profile-photo");
    await expect.poll(() => page.locator('[data-testid="profile-photo"][data-used="true"]').count()).toBe(1);
    expect(await photos.filter({ hasText: "sky.png" }).innerText()).toMatch(/Not used: .+/);
    await screen(page, "profile-trained");

    // Generate from a narration.
    const narration = "Hello from the studio. This video was made in a browser, from start to finish.";
    await page.getByRole("link", { name: "Make a video" }).click();
    await page.getByLabel("Narration", { exact: true }).fill(narration);
    await page.getByRole("radio", { name: /^Soft/ }).check();
    await screen(page, "new-video");
    await page.getByRole("button", { name: "Generate video" }).click();
    await page.waitForURL(/\/videos\/[0-9a-f-]{36}$/);
    videoId = UUID.exec(page.url())![0];
    await screen(page, "generating");
    await player(page).waitFor({ timeout: 120_000 });

    // The player plays, as long as the speech is.
    const jobRes = await page.request.get(`/v1/videos/${videoId}`);
    const video = (await jobRes.json()) as { jobId: string; durationSec: number };
    const job = (await (await page.request.get(`/v1/jobs/${video.jobId}`)).json()) as { steps: { name: string; outputs: { durationSec?: number } | null }[] };
    const speechSec = job.steps.find((s) => s.name === "tts")!.outputs!.durationSec!;
    const played = await player(page).evaluate(async (v: HTMLVideoElement) => {
      v.muted = true;
      await v.play();
      const start = v.currentTime;
      await new Promise((r) => setTimeout(r, 1500));
      return { start, now: v.currentTime, duration: v.duration, tracks: v.textTracks.length };
    });
    expect(played.now).toBeGreaterThan(played.start + 0.5);
    expect(Math.abs(played.duration - speechSec)).toBeLessThan(0.3);
    expect(played.tracks).toBe(1); // the soft subtitles, as WebVTT
    await page.getByText(narration).first().waitFor(); // the script used
    await expect.poll(() => page.locator("table [data-step]").count()).toBe(7); // each step with its engine and time
    await screen(page, "review");

    // Download: the MP4 itself.
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Download MP4" }).click()]);
    const saved = path.join(tmp, "download.mp4");
    await download.saveAs(saved);
    const probe = execFileSync("ffprobe", ["-v", "error", "-show_entries", "stream=codec_name:format=duration", "-of", "json", saved], { encoding: "utf8" });
    const info = JSON.parse(probe) as { streams: { codec_name: string }[]; format: { duration: string } };
    expect(info.streams.map((s) => s.codec_name)).toEqual(expect.arrayContaining(["h264", "aac"]));
    expect(Math.abs(Number(info.format.duration) - speechSec)).toBeLessThan(0.3);

    await page.goto("/");
    await page.getByRole("link", { name: "Astronaut" }).waitFor();
    await page.locator(".video-row").first().waitFor();
    await screen(page, "home");
  });

  test("a profile trained with a chosen engine: the voice model by `reference`, as its job shows", async () => {
    const page = owner;
    await page.goto("/profiles/new");
    await page.getByLabel("Name").fill("Reference voice");
    await page.getByLabel("Choose photos").setInputFiles([files.portrait]);
    await page.getByLabel("Upload a recording").setInputFiles(files.voice);
    await page.getByRole("img", { name: /^Waveform of/ }).waitFor();
    // Two healthy voice trainers with the built-in workers: `dataset` (the default) and `reference`.
    const engine = page.getByLabel("Voice model engine");
    expect(await engine.locator("option").first().innerText()).toBe("Default (dataset)");
    await engine.selectOption("reference");
    await page.getByRole("button", { name: "Create profile and start training" }).click();
    await page.waitForURL(/\/profiles\/[0-9a-f-]{36}$/);
    const step = page.getByTestId("job-view").locator('[data-step="train_voice"]');
    await expect.poll(() => step.getAttribute("data-state"), { timeout: 120_000 }).toBe("succeeded");
    expect(await step.innerText()).toContain("engine: reference");
    await page.getByRole("link", { name: "Make a video" }).waitFor({ timeout: 120_000 });
  });

  test("a photo the studio cannot use shows its reason beside it, and nothing is uploaded until it is removed", async () => {
    const page = await newPage(browser);
    await signUp(page, `photos-${Date.now()}@example.com`);
    await page.goto("/profiles/new");
    await page.getByLabel("Name").fill("Tiny");
    await page.getByLabel("Choose photos").setInputFiles([files.portrait, files.tiny]);
    const bad = page.getByTestId("photo-item").filter({ hasText: "tiny.png" });
    await expect.poll(() => bad.innerText()).toMatch(/Cannot use: 32×32 is too small \(each side at least 64 px\)/);
    await page.getByLabel("Upload a recording").setInputFiles(files.voice);
    await page.getByRole("img", { name: /^Waveform of/ }).waitFor();
    await page.getByRole("button", { name: "Create profile and start training" }).click();
    await page.getByRole("alert").filter({ hasText: "remove the photos that cannot be used" }).waitFor();
    expect(page.url()).toMatch(/\/profiles\/new$/);
    await screen(page, "new-profile-bad-photo");
    await page.getByRole("button", { name: "Remove tiny.png" }).click();
    await page.getByRole("button", { name: "Create profile and start training" }).click();
    await page.waitForURL(/\/profiles\/[0-9a-f-]{36}$/);
  });

  test("a profile of photos over 10 MB uploads through the studio; photos that share a name keep their own verdicts", async () => {
    // Noise photos (no face, ~4.5 MB each as PNG), two of them named alike as a phone names them.
    const noisy: string[] = [];
    for (const [i, dir] of ["a", "b", "c"].entries()) {
      fs.mkdirSync(path.join(tmp, dir), { recursive: true });
      const file = path.join(tmp, dir, i < 2 ? "IMG_0001.png" : "IMG_0002.png");
      const raw = Buffer.alloc(1400 * 1100 * 3);
      for (let j = 0; j < raw.length; j++) raw[j] = (j * 2654435761 + i * 97) >>> 24;
      await sharp(raw, { raw: { width: 1400, height: 1100, channels: 3 } }).png({ compressionLevel: 0 }).toFile(file);
      noisy.push(file);
    }
    const total = [files.portrait, ...noisy].reduce((n, f) => n + fs.statSync(f).size, 0);
    expect(total).toBeGreaterThan(10 * 1024 * 1024); // past Next's default limit on a proxied body
    const page = owner;
    await makeProfile(page, "Large", [files.portrait, ...noisy], files.voice);
    await expect.poll(() => page.locator('[data-testid="profile-photo"][data-used="true"]').count()).toBe(1);
    expect(await page.locator('[data-testid="profile-photo"][data-used="false"]').count()).toBe(3);
    const twins = page.getByTestId("profile-photo").filter({ hasText: "IMG_0001.png" });
    for (const twin of await twins.all()) expect(await twin.innerText()).toMatch(/Not used: no face found/);
    expect(await page.getByTestId("profile-photo").filter({ hasText: "astronaut.png" }).getAttribute("data-used")).toBe("true");
  });

  test("a failed step is named with its message; Retry re-runs only what failed, and the video is made", async () => {
    const page = owner;
    await startVideo(page, "FAILONCE: this narration makes the talking head fail the first time.");
    const view = page.getByTestId("job-view");
    await page.getByRole("button", { name: "Retry" }).waitFor({ timeout: 120_000 });
    expect(await view.getAttribute("data-job-state")).toBe("failed");
    expect(await page.getByRole("alert").filter({ hasText: "Talking head failed" }).innerText()).toMatch(/injected fault in step talking_head/);
    expect(await view.locator('[data-step="tts"]').getAttribute("data-state")).toBe("succeeded");
    await screen(page, "failed-step");
    await page.getByRole("button", { name: "Retry" }).click();
    await player(page).waitFor({ timeout: 120_000 });
    const steps = await page.locator("table [data-step]").allInnerTexts();
    expect(steps.find((s) => s.startsWith("Speech"))).toMatch(/reused/); // done in attempt 1, not made again
    expect(steps.find((s) => s.startsWith("Talking head"))).not.toMatch(/reused/);
  });

  test("a reload in the middle of a job reconnects and shows the same state, then the end", async () => {
    const page = owner;
    await startVideo(page, "SLOWLY: this one takes its time in the upscale step.");
    const upscale = page.getByTestId("job-view").locator('[data-step="upscale"]');
    await expect.poll(() => upscale.getAttribute("data-state"), { timeout: 60_000 }).toBe("running");
    await page.reload();
    await page.getByText("Live", { exact: true }).waitFor();
    const view = page.getByTestId("job-view");
    expect(await view.locator('[data-step="tts"]').getAttribute("data-state")).toBe("succeeded");
    expect(await view.locator('[data-step="upscale"]').getAttribute("data-state")).toBe("running");
    await player(page).waitFor({ timeout: 60_000 });
  });

  test("Cancel stops a running job; Retry then finishes it", async () => {
    const page = owner;
    await startVideo(page, "SLOWLY: this one is cancelled while it upscales, then retried.");
    const view = page.getByTestId("job-view");
    await expect.poll(() => view.locator('[data-step="upscale"]').getAttribute("data-state"), { timeout: 60_000 }).toBe("running");
    await page.getByRole("button", { name: "Cancel" }).click();
    await expect.poll(() => view.getAttribute("data-job-state"), { timeout: 30_000 }).toBe("cancelled");
    await page.getByText("The job was cancelled.").waitFor();
    await page.getByRole("button", { name: "Retry" }).click();
    await player(page).waitFor({ timeout: 60_000 });
  });

  test("Edit and re-render: a new narration, the steps it can reuse named before and marked after", async () => {
    const page = owner;
    await page.goto(`/videos/${videoId}`);
    await player(page).waitFor();
    await page.getByLabel("Narration", { exact: true }).fill("The same scene, with new words spoken over it.");
    await expect.poll(() => page.getByTestId("expected-reuse").innerText()).toBe("Will reuse from this video: Scene image. The rest is made again.");
    await page.getByRole("button", { name: "Re-render" }).click();
    await page.waitForURL((url) => UUID.test(url.pathname) && !url.pathname.endsWith(videoId));
    await player(page).waitFor({ timeout: 120_000 });
    await page.getByRole("link", { name: "another video" }).waitFor(); // where it was edited from
    const rows = await page.locator("table [data-step]").allInnerTexts();
    expect(rows.find((r) => r.startsWith("Scene image"))).toMatch(/reused/);
    expect(rows.find((r) => r.startsWith("Speech"))).not.toMatch(/reused/);

    // Delete the edit: asked twice, then gone; the video it came from stays.
    const editId = UUID.exec(page.url())![0];
    await page.getByRole("button", { name: "Delete video" }).click();
    await page.getByRole("button", { name: "Delete for good" }).click();
    await page.getByRole("heading", { name: "Your studio", exact: true }).waitFor();
    expect((await page.request.get(`/v1/videos/${editId}`)).status()).toBe(404);
    expect((await page.request.get(`/v1/videos/${videoId}`)).status()).toBe(200);
  });

  test("a video from a topic: the local LLM writes the script, the review shows it", async () => {
    const page = owner;
    await page.goto("/videos/new");
    await page.getByRole("radio", { name: /^Written for me/ }).check();
    await page.getByLabel("Topic").fill("why the sea is salty");
    await page.getByLabel("Length").selectOption("15");
    await page.getByRole("button", { name: "Generate video" }).click();
    await page.waitForURL(/\/videos\/[0-9a-f-]{36}$/);
    await player(page).waitFor({ timeout: 180_000 });
    const script = await page.getByRole("region", { name: "Script" }).innerText();
    expect(script).toMatch(/Narration\s+\S+/);
    expect((await page.locator("table [data-step]").allInnerTexts()).find((r) => r.startsWith("Script"))).toMatch(/local/);
  }, 240_000); // the built-in LLM loads at the first topic: on 2 busy cores that alone can take a minute

  test("works from the keyboard: sign in with Tab and Enter, the focus always visible", async () => {
    const page = await newPage(browser);
    const email = `keys-${Date.now()}@example.com`;
    const res = await page.request.post("/v1/auth/signup", { data: { email, password: PASSWORD } }); // an account to sign in to
    expect(res.status()).toBe(201);
    await page.goto("/signin");
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Skip to content");
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("email");
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    expect(outline).toBe("solid");
    await page.keyboard.type(email);
    await page.keyboard.press("Tab");
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Your studio", exact: true }).waitFor();
    // The new-profile page: the hidden file input's focus shows on its button.
    await page.goto("/profiles/new");
    await page.locator("#photos-input").focus();
    await page.keyboard.press("Shift+Tab");
    await page.keyboard.press("Tab");
    const label = await page.evaluate(() => getComputedStyle(document.querySelector('label[for="photos-input"]')!).outlineStyle);
    expect(label).toBe("solid");
  });

  test("records a voice sample in the browser: a waveform and its duration", async () => {
    const page = owner;
    await page.goto("/profiles/new");
    await page.getByRole("button", { name: "Record", exact: true }).click();
    await page.getByText(/Recording… /).waitFor();
    await page.waitForTimeout(3500);
    await page.getByRole("button", { name: "Stop recording" }).click();
    const wave = page.getByRole("img", { name: /^Waveform of recording\.\w+, / });
    await wave.waitFor();
    const seconds = Number(/, ([\d.]+) s$/.exec((await wave.getAttribute("aria-label"))!)![1]);
    expect(seconds).toBeGreaterThan(3);
    expect(seconds).toBeLessThan(6);
    expect(await page.getByTestId("voice-sample").innerText()).not.toMatch(/Cannot use/);
  });

  test("another user cannot open the first user's pages: a 404 page, no data", async () => {
    const page = await newPage(browser);
    await signUp(page, `other-${Date.now()}@example.com`);
    for (const url of [`/profiles/${profileId}`, `/videos/${videoId}`]) {
      await page.goto(url);
      await page.getByRole("heading", { name: "Page not found" }).waitFor();
      expect(await page.getByText("Astronaut").count()).toBe(0);
    }
    await screen(page, "not-found");
    // Signing out ends the session on the server: the pages go back to sign-in.
    await page.goto("/");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/\/signin/);
    expect((await page.request.get("/v1/me")).status()).toBe(401);
  });

  test("the studio at phone width: every main screen fits and passes axe", async () => {
    const page = await newPage(browser, { phone: true });
    const email = `phone-${Date.now()}@example.com`;
    await page.goto("/signin");
    await screen(page, "sign-in");
    await page.goto("/signup");
    await screen(page, "sign-up");
    await signUp(page, email);
    await screen(page, "home-empty");
    await page.goto("/profiles/new");
    await screen(page, "new-profile");
    await makeProfile(page, "Phone", [files.portrait], files.voice);
    await screen(page, "profile-trained");
    await page.goto("/videos/new");
    await screen(page, "new-video");
    await startVideo(page, "A short video, made on a phone.");
    await screen(page, "generating");
    await player(page).waitFor({ timeout: 120_000 });
    await screen(page, "review");
    await page.goto("/");
    await screen(page, "home");
    await page.goto(`/videos/${crypto.randomUUID()}`);
    await page.getByRole("heading", { name: "Page not found" }).waitFor();
    await screen(page, "not-found");
  });
});
