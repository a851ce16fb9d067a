import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CreateVideoRequest } from "./api.js";
import { MESSAGE_SCHEMAS, schemaFileText, toJsonSchemas } from "./json-schema.js";
import { fillKey, STORAGE_KEY_TEMPLATES, storageKeys } from "./storage-keys.js";

const root = join(import.meta.dirname, "..");
const fixtures = readdirSync(join(root, "fixtures")).filter((f) => f.endsWith(".json"));
const schemaFor = (file: string) => file.replace(/^invalid\./, "").split(".")[0] as keyof typeof MESSAGE_SCHEMAS;
const read = (file: string) => JSON.parse(readFileSync(join(root, "fixtures", file), "utf8"));

describe("golden fixtures", () => {
  it("exist for every message schema", () => {
    const covered = new Set(fixtures.filter((f) => !f.startsWith("invalid.")).map(schemaFor));
    expect([...covered].sort()).toEqual(Object.keys(MESSAGE_SCHEMAS).sort());
  });

  for (const file of fixtures) {
    it(`${file} ${file.startsWith("invalid.") ? "is refused" : "parses"}`, () => {
      const result = MESSAGE_SCHEMAS[schemaFor(file)].safeParse(read(file));
      expect(result.success).toBe(!file.startsWith("invalid."));
    });
  }
});

describe("exported JSON Schema", () => {
  it("is up to date (run `npm run contracts` after a change)", () => {
    for (const [name, schema] of Object.entries(toJsonSchemas())) {
      const committed = readFileSync(join(root, "schema", `${name}.json`), "utf8");
      expect(committed, `schema/${name}.json is stale`).toBe(schemaFileText(schema));
    }
  });
});

describe("subtitles of a video request", () => {
  const request = { profileId: "33333333-3333-4333-8333-333333333333", narration: "Hello" };
  it.each([
    // Left out: the api fills in VIDEO_DEFAULTS.subtitles (soft), or an edit's source's mode.
    [undefined, undefined],
    ["soft", "soft"],
    ["burned", "burned"],
    ["none", "none"],
    [true, "soft"],
    [false, "none"],
  ])("%s is read as %s", (subtitles, mode) => {
    expect(CreateVideoRequest.parse({ ...request, subtitles }).subtitles).toBe(mode);
  });

  it("refuses anything else", () => {
    for (const subtitles of ["yes", "hard", 1, null]) {
      const r = CreateVideoRequest.safeParse({ ...request, subtitles });
      expect(r.error?.issues.map((i) => [i.path.join("."), i.message])).toEqual([["subtitles", 'must be "soft", "burned" or "none"']]);
    }
  });
});

describe("compatibility", () => {
  it("a reader ignores fields it does not know (the exported schemas leave objects open too)", () => {
    const event = { ...read("job-event.job_finished.json"), fromNewerWorker: true };
    expect(MESSAGE_SCHEMAS["job-event"].parse(event)).not.toHaveProperty("fromNewerWorker");
    const exported = JSON.stringify(toJsonSchemas());
    expect(exported).not.toContain('"additionalProperties":false');
  });
});

describe("storage keys", () => {
  it("are filled from the one table both planes read", () => {
    expect(storageKeys.uploadImage("u", "p", 3, "png")).toBe("uploads/u/p/images/03.png");
    expect(storageKeys.uploadVoice("u", "p", "wav")).toBe("uploads/u/p/voice/sample.wav");
    expect(storageKeys.uploads("u", "p")).toBe("uploads/u/p/");
    expect(storageKeys.job("j")).toBe("jobs/j/");
    expect(fillKey(STORAGE_KEY_TEMPLATES.stepDone, { jobId: "j", step: "tts" })).toBe("jobs/j/tts/_done.json");
  });
});
