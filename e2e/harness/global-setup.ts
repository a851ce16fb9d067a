// Sample inputs, made once per run from installed packages (nothing is committed): the
// scikit-image astronaut portrait and ALSA's recorded speech (espeak-ng when alsa-utils is absent),
// concatenated to >= 5 s. Tests read the paths with `inject("samples")`; they are removed after.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { PYTHON, REPO } from "./paths.js";

export interface Samples {
  /** A portrait photo (PNG). */
  portrait: string;
  /** Speech, mono 16-bit WAV, >= 5 s. */
  voice: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    /** The sample inputs, or why they could not be made. */
    samples: Samples | { error: string };
  }
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: "utf8", cwd: REPO });
  if (r.status !== 0) {
    throw new Error(`${path.basename(cmd)} failed: ${(r.stderr || r.stdout || String(r.error)).trim().slice(-1000)}`);
  }
}

function makeSamples(dir: string): Samples {
  const portrait = path.join(dir, "astronaut.png");
  const voice = path.join(dir, "voice.wav");
  if (!fs.existsSync(PYTHON)) throw new Error(`${PYTHON} is missing (scripts/bootstrap.sh makes the worker venv)`);
  run(PYTHON, ["-c", "import sys, skimage.data, imageio.v3 as iio; iio.imwrite(sys.argv[1], skimage.data.astronaut())", portrait]);

  const alsa = "/usr/share/sounds/alsa";
  const names = ["Front_Center", "Front_Left", "Front_Right", "Rear_Center", "Rear_Left", "Rear_Right", "Side_Left", "Side_Right"];
  let parts = names.map((n) => path.join(alsa, `${n}.wav`)).filter((f) => fs.existsSync(f));
  if (parts.length === 0) {
    const spoken = path.join(dir, "espeak.wav");
    run("espeak-ng", ["-w", spoken, "Hello, this is a voice sample for Likeness. I am reading a few sentences so that there is enough speech to measure."]);
    parts = [spoken];
  }
  const inputs = parts.flatMap((f) => ["-i", f]);
  const filter = `${parts.map((_, i) => `[${i}:a]`).join("")}concat=n=${parts.length}:v=0:a=1[a]`;
  run("ffmpeg", ["-v", "error", "-y", ...inputs, "-filter_complex", filter, "-map", "[a]", "-ac", "1", "-c:a", "pcm_s16le", voice]);
  const probe = spawnSync("ffprobe", ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", voice], { encoding: "utf8" });
  const seconds = Number(probe.stdout.trim());
  if (!(seconds >= 5)) throw new Error(`the voice sample is ${seconds} s; at least 5 s are needed`);
  return { portrait, voice };
}

export default function setup(project: TestProject): () => void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lk-e2e-samples-"));
  try {
    project.provide("samples", makeSamples(dir));
  } catch (err) {
    project.provide("samples", { error: err instanceof Error ? err.message : String(err) });
  }
  return () => fs.rmSync(dir, { recursive: true, force: true });
}
