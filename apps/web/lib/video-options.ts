// The choices of the Generate form (and of a profile's training), in a person's words, and what an
// edit will reuse.
import { GENERATE_VIDEO_STEPS, STEP_TASK, type Pipeline, type StepName, type SubtitleMode, type TaskKind } from "@likeness/contracts";

export const PIPELINES: { value: Pipeline; label: string; hint: string }[] = [
  { value: "sadtalker", label: "Talking head", hint: "Your portrait speaks, face to camera." },
  { value: "svd_wav2lip", label: "Scene + lip sync", hint: "You in a scene that moves, lips synced to the speech." },
];

export const SIZES: { id: string; label: string; width: number; height: number }[] = [
  { id: "9:16", label: "9:16 portrait", width: 360, height: 640 },
  { id: "1:1", label: "1:1 square", width: 512, height: 512 },
  { id: "16:9", label: "16:9 landscape", width: 640, height: 360 },
];

export const SUBTITLES: { value: SubtitleMode; label: string; hint: string }[] = [
  { value: "none", label: "Off", hint: "No subtitles." },
  { value: "soft", label: "Soft", hint: "A subtitle track the viewer can switch on and off." },
  { value: "burned", label: "Burned in", hint: "Drawn into the picture: every player shows them." },
];

export const TASK_LABELS: Partial<Record<TaskKind, string>> = {
  llm: "Script writer",
  image: "Scene image",
  tts: "Speech",
  talking_head: "Face animation",
  motion: "Motion",
  lipsync: "Lip sync",
  upscale: "Upscale",
  lora_trainer: "LoRA training",
  voice_trainer: "Voice model",
  evaluate: "Evaluation",
};

/** The task kinds of a profile's training that may have a choice of engine. */
export const TRAINING_TASK_KINDS: TaskKind[] = ["lora_trainer", "voice_trainer", "evaluate"];

/** The task kinds a pipeline runs (the script's llm only matters for a topic). */
export function taskKindsOf(pipeline: Pipeline, topic: boolean): TaskKind[] {
  const kinds = GENERATE_VIDEO_STEPS[pipeline].map((s) => STEP_TASK[s]).filter((k) => k !== "llm" || topic);
  return [...new Set(kinds)];
}

/** What each step's output depends on, beyond the steps before it. */
const STEP_INPUTS: Partial<Record<StepName, ("narration" | "stage" | "subtitles")[]>> = {
  image: ["stage"],
  tts: ["narration"],
  mux: ["subtitles"],
};
const STEP_NEEDS: Partial<Record<StepName, StepName[]>> = {
  motion: ["image"],
  talking_head: ["image", "tts"],
  lipsync: ["motion", "tts"],
  upscale: ["talking_head", "lipsync"],
  mux: ["upscale", "tts"],
  publish: ["mux"],
};

/**
 * The steps an edit can take from the video it edits: those whose inputs did not change. The
 * worker decides by hashing the real inputs, so this is what to expect, not a promise.
 */
export function expectedReuse(pipeline: Pipeline, changed: Set<"narration" | "stage" | "subtitles">): StepName[] {
  const steps = GENERATE_VIDEO_STEPS[pipeline].filter((s) => s !== "script");
  const redo = new Set<StepName>();
  for (const s of steps) {
    if ((STEP_INPUTS[s] ?? []).some((i) => changed.has(i)) || (STEP_NEEDS[s] ?? []).some((n) => redo.has(n))) redo.add(s);
  }
  return steps.filter((s) => !redo.has(s) && s !== "publish");
}
