// The voice checks on every accepted container, made by ffmpeg here (skipped without ffmpeg).
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkVoice, sniffAudio, sniffImage } from "./media-check.js";

const hasFfmpeg = (() => {
  try {
    execFileSync("ffmpeg", ["-version"], { stdio: "ignore" });
    return true;
  } catch {
    if (process.env.CI) throw new Error("ffmpeg is required (CI is set)");
    return false;
  }
})();

describe.skipIf(!hasFfmpeg)("checkVoice", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "lk-voice-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const formats: Array<[string, string[], string]> = [
    ["wav", [], "audio/wav"],
    ["mp3", ["-c:a", "libmp3lame"], "audio/mpeg"],
    ["ogg", ["-c:a", "libvorbis"], "audio/ogg"],
    ["flac", [], "audio/x-flac"], // mime-types' (mime-db's) type for .flac
    ["webm", ["-c:a", "libopus"], "video/webm"], // and for .webm
    ["m4a", ["-c:a", "aac"], "audio/mp4"],
  ];
  for (const [ext, codec, type] of formats) {
    it(`accepts ${ext} and measures its duration`, async () => {
      const file = path.join(dir, `v.${ext}`);
      execFileSync("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=300:duration=4", ...codec, file]);
      const r = await checkVoice(file, "voice", (await stat(file)).size);
      expect(r.contentType).toBe(type);
      expect(r.durationSec).toBeGreaterThan(3.8);
      expect(r.durationSec).toBeLessThan(4.2);
    });
  }

  it("never lets a playlist read other files (ID3 header + HLS playlist naming a local file)", async () => {
    // The ID3 header passes the mp3 magic-byte check; ffmpeg's own probe skips ID3 tags and
    // would then pick the HLS demuxer, which opens the files the playlist names (here a local
    // .mp3, e.g. another user's voice sample) and reports *their* audio as this upload's.
    const secret = path.join(dir, "secret.mp3");
    execFileSync("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=300:duration=5", "-c:a", "libmp3lame", secret]);
    const playlist = Buffer.from(`#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:5.0,\n${secret}\n#EXT-X-ENDLIST\n`);
    const id3 = Buffer.concat([Buffer.from("ID3\x04\x00\x00\x00\x00\x00\x0a", "latin1"), Buffer.alloc(10)]);
    const file = path.join(dir, "playlist.mp3");
    await writeFile(file, Buffer.concat([id3, playlist]));
    await expect(checkVoice(file, "voice", (await stat(file)).size)).rejects.toMatchObject({ statusCode: 400, field: "voice" });
  });

  it("refuses a file with no audio stream", async () => {
    const file = path.join(dir, "video-only.webm");
    execFileSync("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "color=c=red:s=64x64:d=4", "-c:v", "libvpx", file]);
    await expect(checkVoice(file, "voice", (await stat(file)).size)).rejects.toMatchObject({ statusCode: 400, field: "voice" });
  });
});

describe("magic bytes", () => {
  it("tells the formats apart", async () => {
    const png = await sharp({ create: { width: 2, height: 2, channels: 3, background: "red" } }).png().toBuffer();
    expect(await sniffImage(png)).toBe("png");
    expect(await sniffImage(Buffer.from([0xff, 0xd8, 0xff, 0xe0]))).toBe("jpeg");
    expect(await sniffImage(Buffer.from("RIFF\0\0\0\0WEBPVP8 "))).toBe("webp");
    expect(await sniffImage(Buffer.from("GIF89a"))).toBeNull();
    expect(await sniffAudio(Buffer.from("RIFF\0\0\0\0WAVEfmt "))).toBe("wav");
    expect(await sniffAudio(Buffer.from("RIFF\0\0\0\0WEBPVP8 "))).toBeNull();
    // An ID3v2 tag (its size runs past these bytes): MP3.
    expect(await sniffAudio(Buffer.from("ID3\x04\0\0\0\0\x02\0", "latin1"))).toBe("mp3");
    expect(await sniffAudio(Buffer.from("\0\0\0\x20ftypM4A "))).toBe("m4a");
    expect(await sniffAudio(png)).toBeNull();
  });
});
