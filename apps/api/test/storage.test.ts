// One suite, two drivers: LocalStorage in a temp folder and S3Storage against a real
// S3-compatible server started here (s3rver, from npm).
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import S3rver from "s3rver";
import { LocalStorage } from "../src/storage/local.storage.js";
import { S3Storage } from "../src/storage/s3.storage.js";
import { InvalidKeyError, ObjectNotFoundError, type ObjectStorage } from "../src/storage/object-storage.js";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

interface Driver {
  name: string;
  setup(): Promise<ObjectStorage>;
  teardown(): Promise<void>;
}

let localDir = "";
let s3Dir = "";
let s3rver: S3rver | undefined;
let s3: S3Storage | undefined;

const drivers: Driver[] = [
  {
    name: "local",
    async setup() {
      localDir = await mkdtemp(path.join(os.tmpdir(), "lk-storage-"));
      return new LocalStorage(localDir);
    },
    async teardown() {
      await rm(localDir, { recursive: true, force: true });
    },
  },
  {
    name: "s3 (s3rver)",
    async setup() {
      s3Dir = await mkdtemp(path.join(os.tmpdir(), "lk-s3rver-"));
      const port = await freePort();
      s3rver = new S3rver({ port, address: "127.0.0.1", silent: true, directory: s3Dir, configureBuckets: [{ name: "likeness-test", configs: [] }] });
      await s3rver.run();
      s3 = new S3Storage({
        endpoint: `http://127.0.0.1:${port}`,
        region: "us-east-1",
        bucket: "likeness-test",
        accessKeyId: "S3RVER",
        secretAccessKey: "S3RVER",
        forcePathStyle: true,
      });
      return s3;
    },
    async teardown() {
      await s3?.close();
      await s3rver?.close();
      await rm(s3Dir, { recursive: true, force: true });
    },
  },
];

for (const driver of drivers) {
  describe(`ObjectStorage: ${driver.name}`, () => {
    let storage: ObjectStorage;
    beforeAll(async () => {
      storage = await driver.setup();
    });
    afterAll(async () => {
      await driver.teardown();
    });

    it("puts a buffer and reads it back whole and by range", async () => {
      const body = Buffer.from("0123456789abcdef");
      await storage.put("jobs/j1/tts/speech.wav", body, "audio/wav");
      expect(await storage.exists("jobs/j1/tts/speech.wav")).toBe(true);
      const info = await storage.stat("jobs/j1/tts/speech.wav");
      expect(info).toMatchObject({ key: "jobs/j1/tts/speech.wav", size: 16, contentType: "audio/wav" });
      const whole = await storage.getStream("jobs/j1/tts/speech.wav");
      expect(whole.size).toBe(16);
      expect(whole.contentType).toBe("audio/wav");
      expect((await readAll(whole.stream)).toString()).toBe("0123456789abcdef");
      const part = await storage.getStream("jobs/j1/tts/speech.wav", { start: 4, end: 7 });
      expect(part.size).toBe(4);
      expect(part.totalSize).toBe(16);
      expect((await readAll(part.stream)).toString()).toBe("4567");
      const tail = await storage.getStream("jobs/j1/tts/speech.wav", { start: 10 });
      expect((await readAll(tail.stream)).toString()).toBe("abcdef");
    });

    it("puts a stream (larger than one chunk) and overwrites atomically", async () => {
      const big = Buffer.alloc(6 * 1024 * 1024 + 123, 7);
      await storage.put("jobs/j1/mux/video.mp4", Readable.from([big.subarray(0, 1000), big.subarray(1000)]), "video/mp4");
      const got = await storage.getStream("jobs/j1/mux/video.mp4");
      expect((await readAll(got.stream)).equals(big)).toBe(true);
      await storage.put("jobs/j1/mux/video.mp4", Buffer.from("v2"), "video/mp4");
      expect((await storage.stat("jobs/j1/mux/video.mp4")).size).toBe(2);
    });

    it("lists by prefix, deletes one and deletes a prefix", async () => {
      await storage.put("uploads/u1/p1/images/01.png", Buffer.from("a"), "image/png");
      await storage.put("uploads/u1/p1/images/02.png", Buffer.from("b"), "image/png");
      await storage.put("uploads/u1/p1/voice/sample.wav", Buffer.from("c"), "audio/wav");
      await storage.put("uploads/u1/p10/images/01.png", Buffer.from("d"), "image/png");
      expect(await storage.list("uploads/u1/p1/")).toEqual([
        "uploads/u1/p1/images/01.png",
        "uploads/u1/p1/images/02.png",
        "uploads/u1/p1/voice/sample.wav",
      ]);
      expect(await storage.list("uploads/")).toHaveLength(4);
      await storage.delete("uploads/u1/p1/images/02.png");
      await storage.delete("uploads/u1/p1/images/02.png"); // twice is fine
      expect(await storage.exists("uploads/u1/p1/images/02.png")).toBe(false);
      expect(await storage.deletePrefix("uploads/u1/p1/")).toBe(2);
      expect(await storage.list("uploads/")).toEqual(["uploads/u1/p10/images/01.png"]);
      expect(await storage.list("nothing/here/")).toEqual([]);
    });

    it("reports a missing object and refuses keys that are not storage keys", async () => {
      await expect(storage.stat("jobs/none/x.png")).rejects.toBeInstanceOf(ObjectNotFoundError);
      await expect(storage.getStream("jobs/none/x.png")).rejects.toBeInstanceOf(ObjectNotFoundError);
      for (const bad of ["../etc/passwd", "/abs/key", "Uploads/X.png", "a//b", "a/../b", "a/./b", ""]) {
        await expect(storage.put(bad, Buffer.from("x"), "text/plain")).rejects.toBeInstanceOf(InvalidKeyError);
      }
      await expect(storage.deletePrefix("")).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(storage.deletePrefix("uploads")).rejects.toBeInstanceOf(InvalidKeyError);
    });

    it("stores a zero-byte object", async () => {
      await storage.put("jobs/j2/empty.txt", Buffer.alloc(0), "text/plain");
      const s = await storage.getStream("jobs/j2/empty.txt");
      expect(s.size).toBe(0);
      expect((await readAll(s.stream)).length).toBe(0);
    });
  });
}

describe("LocalStorage specifics", () => {
  it("leaves no temp file behind and keeps objects inside its root", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "lk-storage-"));
    try {
      const s = new LocalStorage(dir);
      await s.put("a/b.txt", Buffer.from("x"), "text/plain");
      const failing = new Readable({
        read() {
          this.destroy(new Error("client went away"));
        },
      });
      await expect(s.put("a/c.txt", failing, "text/plain")).rejects.toThrow("client went away");
      const files = await readdir(path.join(dir, "a"));
      expect(files.filter((f) => f.startsWith(".tmp-"))).toEqual([]);
      expect(await s.exists("a/c.txt")).toBe(false);
      expect(await s.list("")).toEqual(["a/b.txt"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
