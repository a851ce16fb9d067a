// Media made in the test: a real face photo when the worker venv ships scikit-image's astronaut,
// else a generated PNG; WAV files written sample by sample.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { deflateSync } from "node:zlib";
import sharp from "sharp";
import { REPO_ROOT } from "../src/config.js";

function astronautPath(): string | null {
  const lib = path.join(REPO_ROOT, "worker/.venv/lib");
  if (!existsSync(lib)) return null;
  for (const py of readdirSync(lib)) {
    const p = path.join(lib, py, "site-packages/skimage/data/astronaut.png");
    if (existsSync(p)) return p;
  }
  return null;
}

/** A 256×256 PNG of a face (the astronaut), or a generated gradient when it is not installed. */
export async function facePng(): Promise<Buffer> {
  const p = astronautPath();
  if (p) return sharp(readFileSync(p)).resize(256, 256).png().toBuffer();
  const w = 256, h = 256;
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      raw[o] = x; raw[o + 1] = y; raw[o + 2] = (x * y) & 0xff;
    }
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}

export async function faceJpeg(): Promise<Buffer> {
  return sharp(await facePng()).jpeg({ quality: 85 }).toBuffer();
}

/** Mono 16-bit PCM WAV: a 220 Hz tone with a slow tremolo, `seconds` long. */
export function wav(seconds: number, rate = 16000): Buffer {
  const n = Math.round(seconds * rate);
  const data = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    const v = Math.sin(2 * Math.PI * 220 * t) * (0.5 + 0.3 * Math.sin(2 * Math.PI * 3 * t));
    data.writeInt16LE(Math.round(v * 12000), i * 2);
  }
  const h = Buffer.alloc(44);
  h.write("RIFF", 0, "latin1");
  h.writeUInt32LE(36 + data.length, 4);
  h.write("WAVE", 8, "latin1");
  h.write("fmt ", 12, "latin1");
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write("data", 36, "latin1");
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(b: Buffer): number {
  let c = 0xffffffff;
  for (const byte of b) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A valid, tiny PNG whose header declares width×height (a pixel bomb at 30000×30000). */
export function pngDeclaring(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  // A few rows of zeros, compressed: decoding it would need width×height bytes.
  const rows = deflateSync(Buffer.alloc((width + 1) * 4));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", rows),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}
