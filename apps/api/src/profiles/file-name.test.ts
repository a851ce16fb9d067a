import { describe, expect, it } from "vitest";
import { sanitizeFileName } from "./file-name.js";
import { baseTriggerWord } from "./profile.service.js";

describe("sanitizeFileName", () => {
  it("keeps a plain name", () => expect(sanitizeFileName("me at the beach.jpg", "images[0]")).toBe("me at the beach.jpg"));
  it("refuses a path, naming the field", () => {
    for (const bad of ["../../etc/passwd.png", "a/b.png", "C:\\photos\\a.png", "/abs.png"]) {
      expect(() => sanitizeFileName(bad, "images[3]")).toThrow(expect.objectContaining({ statusCode: 400, field: "images[3]" }));
    }
  });
  it("drops control characters and caps the length, keeping the extension", () => {
    expect(sanitizeFileName("a\u0000b\u001b[31m.png", "f")).toBe("ab[31m.png");
    const long = sanitizeFileName(`${"x".repeat(300)}.jpeg`, "f");
    expect(long).toHaveLength(100);
    expect(long.endsWith(".jpeg")).toBe(true);
  });
  it("refuses an empty name", () => {
    for (const bad of [undefined, "", "..", "\u0001"]) expect(() => sanitizeFileName(bad, "voice")).toThrow(/no usable name/);
  });
});

describe("baseTriggerWord", () => {
  it("is lk + the lowercase letters of the name", () => {
    expect(baseTriggerWord("Ada Lovelace")).toBe("lkadalovelace");
    expect(baseTriggerWord("Zoë O'Brien-2")).toBe("lkzoeobrien");
    expect(baseTriggerWord("李小龙")).toBe("lkperson");
  });
});
