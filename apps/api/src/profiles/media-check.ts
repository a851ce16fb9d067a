// Is this file what it claims to be, whole, and within limits? Magic bytes first (cheap), then
// the header (pixel bombs are refused before any decoding), then a full decode: sharp for
// images, ffmpeg for the voice sample (which also measures its real duration).
import { open } from "node:fs/promises";
import { spawn } from "node:child_process";
import sharp from "sharp";
import { UPLOAD_LIMITS } from "@likeness/contracts";
import { badRequest } from "../http/errors.js";

export type ImageFormat = "png" | "jpeg" | "webp";
export type AudioFormat = "wav" | "mp3" | "ogg" | "flac" | "webm" | "m4a";

export const IMAGE_TYPES: Record<ImageFormat, { contentType: string; ext: string }> = {
  png: { contentType: "image/png", ext: "png" },
  jpeg: { contentType: "image/jpeg", ext: "jpg" },
  webp: { contentType: "image/webp", ext: "webp" },
};

export const AUDIO_TYPES: Record<AudioFormat, { contentType: string; ext: string }> = {
  wav: { contentType: "audio/wav", ext: "wav" },
  mp3: { contentType: "audio/mpeg", ext: "mp3" },
  ogg: { contentType: "audio/ogg", ext: "ogg" },
  flac: { contentType: "audio/flac", ext: "flac" },
  webm: { contentType: "audio/webm", ext: "webm" },
  m4a: { contentType: "audio/mp4", ext: "m4a" },
};

/**
 * The ffmpeg demuxer for each sniffed format. ffprobe/ffmpeg are always told which demuxer to
 * use: left to probe, ffmpeg skips an ID3 header and may pick a playlist demuxer (HLS, concat)
 * that opens the local files or URLs the "audio" names. With the demuxer forced and only the
 * `file` protocol allowed, a file is decoded as the container its magic bytes claim, or refused.
 */
const FFMPEG_DEMUXER: Record<AudioFormat, string> = {
  wav: "wav",
  mp3: "mp3",
  ogg: "ogg",
  flac: "flac",
  webm: "matroska",
  m4a: "mov",
};

/** ffmpeg input options: this demuxer, the local file only (the `file:` prefix: no other protocol). */
function ffmpegInput(format: AudioFormat, path: string): string[] {
  return ["-protocol_whitelist", "file", "-f", FFMPEG_DEMUXER[format], "-i", `file:${path}`];
}

async function head(path: string, n = 16): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

const ascii = (b: Buffer, start: number, s: string) => b.subarray(start, start + s.length).toString("latin1") === s;

export function sniffImage(b: Buffer): ImageFormat | null {
  if (b.length >= 8 && b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return "png";
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpeg";
  if (b.length >= 12 && ascii(b, 0, "RIFF") && ascii(b, 8, "WEBP")) return "webp";
  return null;
}

export function sniffAudio(b: Buffer): AudioFormat | null {
  if (b.length >= 12 && ascii(b, 0, "RIFF") && ascii(b, 8, "WAVE")) return "wav";
  if (b.length >= 4 && ascii(b, 0, "OggS")) return "ogg";
  if (b.length >= 4 && ascii(b, 0, "fLaC")) return "flac";
  if (b.length >= 4 && b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3) return "webm";
  if (b.length >= 8 && ascii(b, 4, "ftyp")) return "m4a";
  if (b.length >= 3 && ascii(b, 0, "ID3")) return "mp3";
  if (b.length >= 2 && b[0] === 0xff && ((b[1] ?? 0) & 0xe0) === 0xe0) return "mp3";
  return null;
}

export interface CheckedImage {
  format: ImageFormat;
  contentType: string;
  ext: string;
  width: number;
  height: number;
}

export async function checkImage(path: string, field: string, bytes: number): Promise<CheckedImage> {
  if (bytes === 0) throw badRequest(`${field}: the file is empty`, field);
  const format = sniffImage(await head(path));
  if (!format) throw badRequest(`${field}: not a PNG, JPEG or WebP image (its first bytes say otherwise)`, field);

  const opts = { failOn: "error", limitInputPixels: UPLOAD_LIMITS.maxImagePixels, sequentialRead: true } as const;
  let width: number, height: number;
  try {
    const meta = await sharp(path, { ...opts, limitInputPixels: false }).metadata();
    if (meta.format !== format) throw new Error(`content is ${meta.format}, not ${format}`);
    width = meta.width ?? 0;
    height = meta.height ?? 0;
  } catch (err) {
    throw badRequest(`${field}: not a readable ${format.toUpperCase()} image (${shortReason(err, path)})`, field);
  }
  if (width * height > UPLOAD_LIMITS.maxImagePixels) {
    throw badRequest(`${field}: ${width}×${height} is too many pixels (at most ${UPLOAD_LIMITS.maxImagePixels / 1e6} megapixels)`, field);
  }
  if (Math.min(width, height) < UPLOAD_LIMITS.minImageSide) {
    throw badRequest(`${field}: ${width}×${height} is too small (each side at least ${UPLOAD_LIMITS.minImageSide} px)`, field);
  }
  try {
    // Decodes every pixel (catches truncated and corrupt data) without keeping the bitmap.
    await sharp(path, opts).stats();
  } catch (err) {
    throw badRequest(`${field}: the image is damaged or truncated (${shortReason(err, path)})`, field);
  }
  return { format, ...IMAGE_TYPES[format], width, height };
}

export interface CheckedVoice {
  format: AudioFormat;
  contentType: string;
  ext: string;
  durationSec: number;
}

interface RunResult {
  code: number | null;
  stdoutBytes: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], opts: { keepStdout: boolean; timeoutMs: number }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdoutBytes = 0;
    const out: Buffer[] = [];
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs);
    child.stdout.on("data", (c: Buffer) => {
      stdoutBytes += c.length;
      if (opts.keepStdout) out.push(c);
    });
    child.stderr.on("data", (c: Buffer) => {
      if (stderr.length < 4000) stderr += c.toString("utf8");
    });
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdoutBytes, stdout: Buffer.concat(out).toString("utf8"), stderr });
    });
  });
}

const DECODE_RATE = 8000; // Hz, mono s16le: 16000 bytes per decoded second

export async function checkVoice(path: string, field: string, bytes: number): Promise<CheckedVoice> {
  if (bytes === 0) throw badRequest(`${field}: the file is empty`, field);
  const format = sniffAudio(await head(path));
  if (!format) throw badRequest(`${field}: not a WAV, MP3, OGG, FLAC, WebM or M4A file (its first bytes say otherwise)`, field);

  const probe = await run(
    "ffprobe",
    ["-v", "error", "-select_streams", "a:0", "-show_entries", "stream=codec_name:format=duration", "-of", "json", ...ffmpegInput(format, path)],
    { keepStdout: true, timeoutMs: 30_000 },
  );
  let header: { streams?: { codec_name?: string }[]; format?: { duration?: string } } = {};
  try {
    header = JSON.parse(probe.stdout || "{}");
  } catch {
    /* reported below */
  }
  if (probe.code !== 0 || !header.streams?.length) {
    const why = firstLine(hidePath(probe.stderr, path)) || "no audio stream";
    throw badRequest(`${field}: no readable audio in the file (${why})`, field);
  }

  // Full decode: errors stop it (-xerror); the decoded length is the real duration.
  const decode = await run(
    "ffmpeg",
    ["-nostdin", "-v", "error", "-xerror", ...ffmpegInput(format, path), "-map", "0:a:0", "-ac", "1", "-ar", String(DECODE_RATE), "-f", "s16le", "-"],
    { keepStdout: false, timeoutMs: 60_000 },
  );
  if (decode.code !== 0) {
    const why = firstLine(hidePath(decode.stderr, path)) || `ffmpeg exit ${decode.code}`;
    throw badRequest(`${field}: the audio is damaged or truncated (${why})`, field);
  }
  const durationSec = decode.stdoutBytes / (2 * DECODE_RATE);
  const declared = Number(header.format?.duration);
  if ((format === "wav" || format === "flac") && Number.isFinite(declared) && durationSec < declared * 0.95 - 0.1) {
    throw badRequest(`${field}: the audio is truncated (${durationSec.toFixed(1)} s of ${declared.toFixed(1)} s)`, field);
  }
  if (durationSec < UPLOAD_LIMITS.minVoiceSec) {
    throw badRequest(`${field}: ${durationSec.toFixed(1)} s of audio is too short (at least ${UPLOAD_LIMITS.minVoiceSec} s)`, field);
  }
  if (durationSec > UPLOAD_LIMITS.maxVoiceSec) {
    throw badRequest(`${field}: ${durationSec.toFixed(1)} s of audio is too long (at most ${UPLOAD_LIMITS.maxVoiceSec} s)`, field);
  }
  return { format, ...AUDIO_TYPES[format], durationSec: Math.round(durationSec * 1000) / 1000 };
}

/** Tool output names the temp file; the client sees "file" instead. */
function hidePath(s: string, path: string): string {
  return s.split(`file:${path}`).join("file").split(path).join("file");
}

function firstLine(s: string): string {
  return s.split("\n").map((l) => l.trim()).find((l) => l !== "")?.slice(0, 200) ?? "";
}

function shortReason(err: unknown, path: string): string {
  const msg = (err instanceof Error ? err.message : String(err)).split(path).join("file");
  return firstLine(msg.replace(/^Input file /, "")) || "unreadable";
}
