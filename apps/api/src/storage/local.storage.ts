// Objects as files under one folder (the worker's local driver uses the same layout). A put
// writes a temp file ".tmp-*" in the target folder and renames it into place, so a reader never
// sees half an object. Nothing but the object is written: the content type is derived from the
// key's extension by mime-types (both planes name their keys with the right extension), so
// objects written by the worker read back with the same type.
import { createReadStream, createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import mime from "mime-types";
import {
  assertKey,
  assertPrefix,
  existsByStat,
  ObjectNotFoundError,
  type ByteRange,
  type ObjectInfo,
  type ObjectStorage,
  type ObjectStream,
} from "./object-storage.js";
import { resolveRange } from "./byte-range.js";

const TMP_PREFIX = ".tmp-";

/** The content type of an object, from its key's extension (mime-types); unknown: octet-stream. */
export function contentTypeForKey(key: string): string {
  const ext = path.posix.extname(key);
  return (ext && mime.lookup(ext)) || "application/octet-stream";
}

export class LocalStorage implements ObjectStorage {
  readonly root: string;
  constructor(root: string) {
    this.root = path.resolve(root);
  }

  private file(key: string): string {
    assertKey(key);
    const p = path.join(this.root, ...key.split("/"));
    if (!p.startsWith(this.root + path.sep)) throw new Error(`key escapes the storage root: ${key}`);
    return p;
  }

  /** `contentType` is not stored: it is derived from the key's extension on read. */
  async put(key: string, body: Buffer | Readable, _contentType: string): Promise<void> {
    const target = this.file(key);
    const dir = path.dirname(target);
    await fs.mkdir(dir, { recursive: true });
    const tmp = path.join(dir, `${TMP_PREFIX}${randomBytes(8).toString("hex")}`);
    try {
      await pipeline(Buffer.isBuffer(body) ? Readable.from([body]) : body, createWriteStream(tmp, { flags: "wx" }));
      await fs.rename(tmp, target);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  async stat(key: string): Promise<ObjectInfo> {
    const p = this.file(key);
    let st;
    try {
      st = await fs.stat(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new ObjectNotFoundError(key);
      throw err;
    }
    if (!st.isFile()) throw new ObjectNotFoundError(key);
    return { key, size: st.size, contentType: contentTypeForKey(key), lastModified: st.mtime };
  }

  exists(key: string): Promise<boolean> {
    return existsByStat(this, key);
  }

  async getStream(key: string, range?: ByteRange): Promise<ObjectStream> {
    const info = await this.stat(key);
    const { start, end } = resolveRange(range, info.size);
    const size = info.size === 0 ? 0 : end - start + 1;
    const stream = info.size === 0 ? Readable.from([]) : createReadStream(this.file(key), { start, end });
    return { stream, size, totalSize: info.size, contentType: info.contentType };
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.file(key), { force: true });
  }

  async deletePrefix(prefix: string): Promise<number> {
    assertPrefix(prefix, false);
    const keys = await this.list(prefix);
    const dir = path.join(this.root, ...prefix.slice(0, -1).split("/"));
    await fs.rm(dir, { recursive: true, force: true });
    return keys.length;
  }

  async list(prefix: string): Promise<string[]> {
    assertPrefix(prefix);
    // Walk from the deepest folder the prefix names.
    const dirPart = prefix === "" ? "" : prefix.slice(0, -1);
    const start = dirPart === "" ? this.root : path.join(this.root, ...dirPart.split("/"));
    const out: string[] = [];
    const walk = async (dir: string, rel: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR") return;
        throw err;
      }
      for (const e of entries) {
        if (e.name.startsWith(TMP_PREFIX)) continue;
        const k = rel === "" ? e.name : `${rel}/${e.name}`;
        if (e.isDirectory()) await walk(path.join(dir, e.name), k);
        else if (e.isFile()) out.push(k);
      }
    };
    await walk(start, dirPart);
    return out.filter((k) => k.startsWith(prefix)).sort();
  }
}
