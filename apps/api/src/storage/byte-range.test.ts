// What a Range header and a driver's ByteRange mean (the routes are tested in test/jobs.test.ts).
import { describe, expect, it } from "vitest";
import { parseRange, resolveRange } from "./byte-range.js";
import { InvalidRangeError } from "./object-storage.js";

describe("parseRange", () => {
  it("follows RFC 9110 for single ranges", () => {
    expect(parseRange(undefined, 100)).toBeNull();
    expect(parseRange("bytes=0-9", 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange("bytes=90-", 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange("bytes=90-500", 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange("bytes=-10", 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange("bytes=-1000", 100)).toEqual({ start: 0, end: 99 });
    expect(parseRange("bytes=100-", 100)).toBe("unsatisfiable");
    expect(parseRange("bytes=-0", 100)).toBe("unsatisfiable");
    expect(parseRange("bytes=0-", 0)).toBe("unsatisfiable");
  });

  it("ignores what it cannot serve as one range (the whole file is sent)", () => {
    expect(parseRange("bytes=5-1", 100)).toBeNull();
    expect(parseRange("bytes=abc", 100)).toBeNull();
    expect(parseRange("bytes=0-1,5-6", 100)).toBeNull();
    expect(parseRange("items=0-1", 100)).toBeNull();
    // Ranges that touch or overlap are one range.
    expect(parseRange("bytes=0-9,10-19", 100)).toEqual({ start: 0, end: 19 });
  });
});

describe("resolveRange", () => {
  it("reads a driver's range as the same header would be read", () => {
    expect(resolveRange(undefined, 100)).toEqual({ start: 0, end: 99 });
    expect(resolveRange(undefined, 0)).toEqual({ start: 0, end: -1 });
    expect(resolveRange({ start: 10 }, 100)).toEqual({ start: 10, end: 99 });
    expect(resolveRange({ start: 10, end: 500 }, 100)).toEqual({ start: 10, end: 99 });
  });

  it("refuses a range outside the object", () => {
    for (const bad of [{ start: 100 }, { start: -1 }, { start: 1.5 }, { start: 5, end: 1 }]) {
      expect(() => resolveRange(bad, 100)).toThrow(InvalidRangeError);
    }
    expect(() => resolveRange({ start: 0 }, 0)).toThrow(InvalidRangeError);
  });
});
