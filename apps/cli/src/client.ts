// The shared api client plus what only a command line does with it: save the MP4 to a file.
import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { ApiClient as SharedApiClient, ApiError } from "@likeness/client";

export { VideoCreated, type UploadFile } from "@likeness/client";

export class ApiClient extends SharedApiClient {
  /** Stream the video's MP4 to `out` (a temp file renamed at the end: no half files). */
  async downloadVideo(id: string, out: string): Promise<number> {
    const res = await this.request("GET", `/v1/videos/${encodeURIComponent(id)}/file`);
    if (!res.body) throw new ApiError(res.status, undefined, "empty body", { url: this.baseUrl });
    const tmp = `${out}.part`;
    let bytes = 0;
    const counter = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
    counter.on("data", (chunk: Buffer) => (bytes += chunk.length));
    try {
      await pipeline(counter, createWriteStream(tmp));
      await rename(tmp, out);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return bytes;
  }
}
