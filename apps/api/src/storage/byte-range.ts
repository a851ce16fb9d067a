// Byte ranges of an object, in one place: the `Range` header of a request for it (RFC 9110 §14)
// and the range a caller asks a storage driver for. range-parser (jshttp, as used by `send`)
// decides both: what a range means for an object of a given size, and when none can be served.
import { combineRanges, parse } from "range-parser";
import { InvalidRangeError, type ByteRange } from "./object-storage.js";

/** First and last byte, both inclusive, inside the object. */
export interface ResolvedRange {
  start: number;
  end: number;
}

// range-parser's result codes (bit flags).
const MALFORMED = 1; // a syntax error or an invalid range such as `5-1`
const UNSATISFIABLE = 2; // a range that starts at or past the end

/**
 * The `Range` header of a GET of an object of `size` bytes:
 * - null: no header, or one that is ignored (RFC 9110 lets a server ignore it) and the whole
 *   object is sent: a unit other than `bytes`, a malformed or invalid range (`bytes=5-1`), or
 *   several ranges that do not merge into one (multipart/byteranges is not served);
 * - "unsatisfiable": no range overlaps the object (the route answers 416 naming the size);
 * - otherwise the one range, its end clamped to the object (`bytes=-1000` of 100 bytes is 0-99;
 *   ranges that overlap or touch are merged first, and unsatisfiable ones beside a good one are dropped).
 */
export function parseRange(header: string | undefined, size: number): ResolvedRange | null | "unsatisfiable" {
  if (!header) return null;
  const { code, type, ranges } = parse(size, header.trim());
  if (type !== "bytes" || code & MALFORMED) return null;
  if (ranges.length === 0) return code & UNSATISFIABLE ? "unsatisfiable" : null;
  const merged = combineRanges(ranges);
  if (merged.length !== 1) return null;
  const { start, end } = merged[0]!;
  return { start, end };
}

/**
 * The bytes a storage driver reads for `range` of an object of `size` bytes (all of it when no
 * range is given). The range is read as the header `bytes=<start>-<end>` would be, so drivers and
 * the HTTP layer agree; one that is not satisfiable throws InvalidRangeError (the api answers 416).
 */
export function resolveRange(range: ByteRange | undefined, size: number): ResolvedRange {
  if (!range) return { start: 0, end: Math.max(size - 1, -1) };
  const spec = `${range.start}-${range.end ?? ""}`;
  const { code, ranges } = parse(size, `bytes=${spec}`);
  if (code !== 0 || ranges.length !== 1) {
    throw new InvalidRangeError(`range ${spec} not satisfiable for ${size} bytes`);
  }
  const { start, end } = ranges[0]!;
  return { start, end };
}
