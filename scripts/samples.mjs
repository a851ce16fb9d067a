// Sample inputs made from installed packages (nothing is committed), for the demo and the e2e
// tests: scikit-image's astronaut portrait (public domain) and ALSA's recorded speech, joined to
// about 11 s (espeak-ng speech when alsa-utils is absent). Existing files are kept.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const PYTHON = path.join(REPO, "worker/.venv/bin/python");
const ALSA = "/usr/share/sounds/alsa";
const ALSA_PHRASES = ["Front_Center", "Front_Left", "Front_Right", "Rear_Center", "Rear_Left", "Rear_Right", "Side_Left", "Side_Right"];
const MIN_VOICE_SEC = 5;

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: "utf8", cwd: REPO });
  if (r.status !== 0) {
    throw new Error(`${path.basename(cmd)} failed: ${(r.stderr || r.stdout || String(r.error)).trim().slice(-1000)}`);
  }
  return r.stdout;
}

/** Writes `<dir>/images/astronaut.png` and `<dir>/voice.wav`; returns their paths. */
export function makeSamples(dir) {
  const images = path.join(dir, "images");
  const portrait = path.join(images, "astronaut.png");
  const voice = path.join(dir, "voice.wav");
  fs.mkdirSync(images, { recursive: true });
  if (!fs.existsSync(portrait)) {
    if (!fs.existsSync(PYTHON)) throw new Error(`${PYTHON} is missing (scripts/bootstrap.sh makes the worker venv)`);
    run(PYTHON, ["-c", "import sys, skimage.data, imageio.v3 as iio; iio.imwrite(sys.argv[1], skimage.data.astronaut())", portrait]);
  }
  if (!fs.existsSync(voice)) {
    let parts = ALSA_PHRASES.map((n) => path.join(ALSA, `${n}.wav`)).filter((f) => fs.existsSync(f));
    if (parts.length === 0) {
      const spoken = path.join(dir, "espeak.wav");
      run("espeak-ng", ["-w", spoken, "Hello, this is a voice sample for Likeness. I am reading a few sentences so that there is enough speech to measure."]);
      parts = [spoken];
    }
    const inputs = parts.flatMap((f) => ["-i", f]);
    const filter = `${parts.map((_, i) => `[${i}:a]`).join("")}concat=n=${parts.length}:v=0:a=1[a]`;
    const tmp = `${voice}.tmp.wav`;
    run("ffmpeg", ["-v", "error", "-y", ...inputs, "-filter_complex", filter, "-map", "[a]", "-ac", "1", "-c:a", "pcm_s16le", tmp]);
    const seconds = Number(run("ffprobe", ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", tmp]).trim());
    if (!(seconds >= MIN_VOICE_SEC)) throw new Error(`the voice sample is ${seconds} s; at least ${MIN_VOICE_SEC} s are needed`);
    fs.renameSync(tmp, voice);
  }
  return { images, portrait, voice };
}
