// Is this file what it claims to be, whole, and within limits? Magic bytes first (cheap, by
// file-type), then the header (pixel bombs are refused before any decoding), then a full decode:
// sharp for images, ffmpeg for the voice sample (which also measures its real duration).
import { spawn } from "node:child_process";
import { fileTypeFromBuffer, fileTypeFromFile, type FileTypeResult } from "file-type";
import mime from "mime-types";
import sharp from "sharp";
import { UPLOAD_LIMITS } from "@likeness/contracts";
import { badRequest } from "../http/errors.js";

export type ImageFormat = "png" | "jpeg" | "webp";
export type AudioFormat = "wav" | "mp3" | "ogg" | "flac" | "webm" | "m4a";

/** file-type's `ext` → the image format it is accepted as (sharp's name; an APNG is a PNG). */
const IMAGE_FORMATS: Partial<Record<string, ImageFormat>> = { png: "png", apng: "png", jpg: "jpeg", webp: "webp" };

/**
 * file-type's `ext` → the audio container it is accepted as, which names the ffmpeg demuxer it is
 * decoded with (FFMPEG_DEMUXER). A family is one container whatever its brand or codec; whether
 * the file holds decodable audio is for ffprobe and ffmpeg to say.
 */
const AUDIO_FORMATS: Partial<Record<string, AudioFormat>> = {
  wav: "wav",
  mp3: "mp3", mp2: "mp3", mp1: "mp3", // MPEG audio
  ogg: "ogg", oga: "ogg", opus: "ogg", spx: "ogg", ogx: "ogg", // Ogg
  flac: "flac",
  webm: "webm", mkv: "webm", // Matroska
  m4a: "m4a", m4b: "m4a", mp4: "m4a", mov: "m4a", "3gp": "m4a", "3g2": "m4a", // ISO-BMFF
};

/** How an accepted file is stored: the key's extension and its content type (mime-types). */
function stored(ext: string): { ext: string; contentType: string } {
  return { ext, contentType: mime.lookup(ext) || "application/octet-stream" };
}

/** What file-type reads at the start of a file (or in these bytes); undefined when nothing it knows. */
async function detect(input: string | Uint8Array): Promise<FileTypeResult | undefined> {
  try {
    return typeof input === "string" ? await fileTypeFromFile(input) : await fileTypeFromBuffer(input);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code) throw err; // reading the file failed
    return undefined; // a parser error on malformed content: not a format we know
  }
}

export async function sniffImage(input: string | Uint8Array): Promise<ImageFormat | null> {
  const ext = (await detect(input))?.ext;
  return (ext && IMAGE_FORMATS[ext]) || null;
}

export async function sniffAudio(input: string | Uint8Array): Promise<AudioFormat | null> {
  const ext = (await detect(input))?.ext;
  return (ext && AUDIO_FORMATS[ext]) || null;
}

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

export interface CheckedImage {
  format: ImageFormat;
  contentType: string;
  ext: string;
  width: number;
  height: number;
}

export async function checkImage(path: string, field: string, bytes: number): Promise<CheckedImage> {
  if (bytes === 0) throw badRequest(`${field}: the file is empty`, field);
  const format = await sniffImage(path);
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
  return { format, ...stored(format === "jpeg" ? "jpg" : format), width, height };
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
  const format = await sniffAudio(path);
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
  return { format, ...stored(format), durationSec: Math.round(durationSec * 1000) / 1000 };
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
