// The server's upload limits (contracts UPLOAD_LIMITS), checked in the browser first so a person
// learns at once what is wrong with a file; the server checks again and has the last word.
import { UPLOAD_LIMITS } from "@likeness/contracts";

const MiB = 1024 * 1024;
export const IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp"];
export const VOICE_ACCEPT = "audio/wav,audio/x-wav,audio/mpeg,audio/ogg,audio/flac,audio/webm,audio/mp4,audio/x-m4a,.wav,.mp3,.ogg,.flac,.webm,.m4a";
/** What makes a good likeness; fewer still works. */
export const RECOMMENDED_PHOTOS = { min: 10, max: 30 } as const;

export type PhotoCheck = { width: number; height: number } | { problem: string };

export async function checkPhoto(file: File): Promise<PhotoCheck> {
  if (!IMAGE_TYPES.includes(file.type)) return { problem: "not a PNG, JPEG or WebP image" };
  if (file.size === 0) return { problem: "the file is empty" };
  if (file.size > UPLOAD_LIMITS.maxImageBytes) return { problem: `larger than ${UPLOAD_LIMITS.maxImageBytes / MiB} MB` };
  let width: number, height: number;
  try {
    const bitmap = await createImageBitmap(file);
    ({ width, height } = bitmap);
    bitmap.close();
  } catch {
    return { problem: "cannot be read as an image (damaged or truncated?)" };
  }
  if (width * height > UPLOAD_LIMITS.maxImagePixels) return { problem: `${width}×${height} is too many pixels (at most ${UPLOAD_LIMITS.maxImagePixels / 1e6} megapixels)` };
  if (Math.min(width, height) < UPLOAD_LIMITS.minImageSide) return { problem: `${width}×${height} is too small (each side at least ${UPLOAD_LIMITS.minImageSide} px)` };
  return { width, height };
}

export type VoiceCheck = { durationSec: number; peaks: number[] } | { problem: string };

/** Decodes the sample: its real duration, and the peaks of its waveform (`bars` of them, 0..1). */
export async function checkVoice(file: Blob, bars = 120): Promise<VoiceCheck> {
  if (file.size === 0) return { problem: "the file is empty" };
  if (file.size > UPLOAD_LIMITS.maxVoiceBytes) return { problem: `larger than ${UPLOAD_LIMITS.maxVoiceBytes / MiB} MB` };
  let audio: AudioBuffer;
  try {
    // An offline context decodes without a user gesture and plays nothing.
    audio = await new OfflineAudioContext(1, 1, 44100).decodeAudioData(await file.arrayBuffer());
  } catch {
    return { problem: "cannot be read as audio (WAV, MP3, OGG, FLAC, WebM or M4A)" };
  }
  const durationSec = audio.duration;
  if (durationSec < UPLOAD_LIMITS.minVoiceSec) return { problem: `${durationSec.toFixed(1)} s is too short (at least ${UPLOAD_LIMITS.minVoiceSec} s)` };
  if (durationSec > UPLOAD_LIMITS.maxVoiceSec) return { problem: `${Math.round(durationSec)} s is too long (at most ${UPLOAD_LIMITS.maxVoiceSec / 60} minutes)` };
  return { durationSec, peaks: peaksOf(audio.getChannelData(0), bars) };
}

function peaksOf(samples: Float32Array, bars: number): number[] {
  const size = Math.max(1, Math.floor(samples.length / bars));
  const peaks: number[] = [];
  for (let b = 0; b < bars; b++) {
    let max = 0;
    for (let i = b * size; i < Math.min(samples.length, (b + 1) * size); i++) max = Math.max(max, Math.abs(samples[i]!));
    peaks.push(max);
  }
  const top = Math.max(...peaks, 1e-6);
  return peaks.map((p) => p / top);
}

export function totalTooLarge(bytes: number): string | undefined {
  return bytes > UPLOAD_LIMITS.maxTotalBytes ? `the files come to more than ${UPLOAD_LIMITS.maxTotalBytes / MiB} MB together` : undefined;
}
