// ffprobe, for tests that check what the output really is.
import { execFileSync } from "node:child_process";

export interface ProbeStream {
  index: number;
  codec_type: string;
  codec_name: string;
  pix_fmt?: string;
  width?: number;
  height?: number;
  r_frame_rate?: string;
  avg_frame_rate?: string;
  duration?: string;
  nb_frames?: string;
  sample_rate?: string;
  channels?: number;
}

export interface Probe {
  streams: ProbeStream[];
  format: { format_name: string; duration: string; size: string };
}

export function ffprobe(file: string): Probe {
  const out = execFileSync("ffprobe", ["-v", "error", "-show_streams", "-show_format", "-of", "json", file], { encoding: "utf8" });
  return JSON.parse(out) as Probe;
}

/** "25/1" → 25 */
export function rate(r: string | undefined): number {
  if (!r) return NaN;
  const [n, d] = r.split("/").map(Number);
  return d ? n! / d : Number(n);
}

/** Duration of a media file in seconds (format duration). */
export function durationSec(file: string): number {
  return Number(ffprobe(file).format.duration);
}
