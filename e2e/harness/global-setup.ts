// Sample inputs, made once per run by scripts/samples.mjs (the demo's own maker). Tests read the paths with `inject("samples")`; they are removed after.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { makeSamples } from "../../scripts/samples.mjs";

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

export default function setup(project: TestProject): () => void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lk-e2e-samples-"));
  try {
    const { portrait, voice } = makeSamples(dir);
    project.provide("samples", { portrait, voice });
  } catch (err) {
    project.provide("samples", { error: err instanceof Error ? err.message : String(err) });
  }
  return () => fs.rmSync(dir, { recursive: true, force: true });
}
