// Objects in an S3-compatible bucket (AWS, MinIO, moto, s3rver) through the AWS SDK v3.
// S3 PUTs are atomic: a reader never sees half an object.
import { Readable } from "node:stream";
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import type { S3Config } from "../config.js";
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

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "NotFound" || e?.name === "NoSuchKey" || e?.$metadata?.httpStatusCode === 404;
}

export class S3Storage implements ObjectStorage {
  readonly client: S3Client;
  readonly bucket: string;

  constructor(cfg: S3Config) {
    const clientCfg: S3ClientConfig = {
      region: cfg.region,
      forcePathStyle: cfg.forcePathStyle,
      ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
      ...(cfg.accessKeyId && cfg.secretAccessKey
        ? { credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey } }
        : {}),
    };
    this.client = new S3Client(clientCfg);
    this.bucket = cfg.bucket;
  }

  async put(key: string, body: Buffer | Readable, contentType: string): Promise<void> {
    assertKey(key);
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: body, ContentType: contentType },
    });
    await upload.done();
  }

  async stat(key: string): Promise<ObjectInfo> {
    assertKey(key);
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return {
        key,
        size: r.ContentLength ?? 0,
        contentType: r.ContentType ?? "application/octet-stream",
        lastModified: r.LastModified ?? new Date(0),
      };
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(key);
      throw err;
    }
  }

  exists(key: string): Promise<boolean> {
    return existsByStat(this, key);
  }

  async getStream(key: string, range?: ByteRange): Promise<ObjectStream> {
    const info = await this.stat(key);
    if (info.size === 0) {
      return { stream: Readable.from([]), size: 0, totalSize: 0, contentType: info.contentType };
    }
    const { start, end } = resolveRange(range, info.size);
    try {
      const r = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ...(range ? { Range: `bytes=${start}-${end}` } : {}),
        }),
      );
      return {
        stream: r.Body as Readable,
        size: end - start + 1,
        totalSize: info.size,
        contentType: info.contentType,
      };
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(key);
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    assertKey(key);
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  async deletePrefix(prefix: string): Promise<number> {
    assertPrefix(prefix, false);
    const keys = await this.list(prefix);
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }),
      );
    }
    return keys.length;
  }

  async list(prefix: string): Promise<string[]> {
    assertPrefix(prefix);
    const out: string[] = [];
    let token: string | undefined;
    do {
      const r = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          ...(prefix ? { Prefix: prefix } : {}),
          ...(token ? { ContinuationToken: token } : {}),
        }),
      );
      for (const o of r.Contents ?? []) if (o.Key) out.push(o.Key);
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out.sort();
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
