// One interface for objects (uploads, step outputs, videos). Keys are made by the server and
// must match contracts `StorageKey`; a prefix is a key-like path ending in "/".
import type { Readable } from "node:stream";
import { StorageKey, storageKeys } from "@likeness/contracts";

export interface ObjectInfo {
  key: string;
  size: number;
  contentType: string;
  lastModified: Date;
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive; omitted = to the end. */
  end?: number;
}

export interface ObjectStream {
  stream: Readable;
  /** Bytes in `stream` (the range length when a range was asked for). */
  size: number;
  /** Size of the whole object. */
  totalSize: number;
  contentType: string;
}

export interface ObjectStorage {
  put(key: string, body: Buffer | Readable, contentType: string): Promise<void>;
  getStream(key: string, range?: ByteRange): Promise<ObjectStream>;
  /** Throws ObjectNotFoundError when missing. */
  stat(key: string): Promise<ObjectInfo>;
  exists(key: string): Promise<boolean>;
  /** Deleting a missing object is not an error. */
  delete(key: string): Promise<void>;
  /** Deletes every object whose key starts with prefix (which must end with "/"). */
  deletePrefix(prefix: string): Promise<number>;
  /** Keys under prefix ("" = everything), sorted. */
  list(prefix: string): Promise<string[]>;
  close?(): Promise<void>;
}

export class ObjectNotFoundError extends Error {
  override name = "ObjectNotFoundError";
  constructor(readonly key: string) {
    super(`no object at ${key}`);
  }
}

export class InvalidKeyError extends Error {
  override name = "InvalidKeyError";
  constructor(readonly key: string) {
    super(`invalid storage key: ${JSON.stringify(key.slice(0, 200))}`);
  }
}

/** A ByteRange outside the object (see resolveRange in byte-range.ts); the api answers 416. */
export class InvalidRangeError extends Error {
  override name = "InvalidRangeError";
}

/**
 * Every object a job makes lives under `jobs/<jobId>/`. Keys in worker events come from the worker
 * plane, which is trusted less than the database: a key elsewhere (another job's output, a
 * user's upload) is never recorded, so no route can be made to serve it (a confused deputy).
 * StorageKey already refuses "..", "." and empty segments, so a prefix test is enough.
 */
export function isJobKey(jobId: string, key: string): boolean {
  const prefix = storageKeys.job(jobId);
  return key.startsWith(prefix) && key.length > prefix.length;
}

export function assertKey(key: string): void {
  if (!StorageKey.safeParse(key).success || key.split("/").some((s) => s === "." || s === "..")) {
    throw new InvalidKeyError(key);
  }
}

/** "" or a valid key followed by "/". */
export function assertPrefix(prefix: string, allowEmpty = true): void {
  if (prefix === "" && allowEmpty) return;
  if (!prefix.endsWith("/")) throw new InvalidKeyError(prefix);
  assertKey(prefix.slice(0, -1));
}

/** `exists` of every driver: a stat that answers false instead of ObjectNotFoundError. */
export async function existsByStat(storage: Pick<ObjectStorage, "stat">, key: string): Promise<boolean> {
  try {
    await storage.stat(key);
    return true;
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return false;
    throw err;
  }
}
