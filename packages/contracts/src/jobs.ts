// The job protocol between the api (control plane) and the worker (GPU plane).
// Every message that crosses Redis is described here once; the worker validates the exported
// JSON Schema (schema/*.json) so the two planes cannot drift apart silently.
import { z } from "zod";

export const PROTOCOL_VERSION = 1 as const;

export const JobKind = z.enum(["train_profile", "generate_video"]).meta({ title: "JobKind" });
export type JobKind = z.infer<typeof JobKind>;

export const Pipeline = z.enum(["sadtalker", "svd_wav2lip"]).meta({ title: "Pipeline" });
export type Pipeline = z.infer<typeof Pipeline>;

/** Task kinds: what a step needs done. Engines (which tool does it) are the worker's business. */
export const TaskKind = z.enum([
  "llm",
  "prepare",
  "lora_trainer",
  "voice_trainer",
  "evaluate",
  "image",
  "motion",
  "tts",
  "lipsync",
  "talking_head",
  "upscale",
  "mux",
  "publish",
]).meta({ title: "TaskKind" });
export type TaskKind = z.infer<typeof TaskKind>;

export const StepName = z.enum([
  // train_profile
  "prepare",
  "train_lora",
  "train_voice",
  "evaluate",
  // generate_video
  "script",
  "image",
  "motion",
  "tts",
  "lipsync",
  "talking_head",
  "upscale",
  "mux",
  // both
  "publish",
]).meta({ title: "StepName" });
export type StepName = z.infer<typeof StepName>;

/** The task kind each step runs. */
export const STEP_TASK: Record<StepName, TaskKind> = {
  prepare: "prepare",
  train_lora: "lora_trainer",
  train_voice: "voice_trainer",
  evaluate: "evaluate",
  script: "llm",
  image: "image",
  motion: "motion",
  tts: "tts",
  lipsync: "lipsync",
  talking_head: "talking_head",
  upscale: "upscale",
  mux: "mux",
  publish: "publish",
};

/**
 * The steps of each workflow, in an order that respects their dependencies. `script` runs in the
 * api (it talks to the LLM); every other step runs on the worker.
 */
export const TRAIN_PROFILE_STEPS = ["prepare", "train_lora", "train_voice", "evaluate", "publish"] as const;
export const GENERATE_VIDEO_STEPS: Record<Pipeline, readonly StepName[]> = {
  svd_wav2lip: ["script", "image", "motion", "tts", "lipsync", "upscale", "mux", "publish"],
  sadtalker: ["script", "image", "tts", "talking_head", "upscale", "mux", "publish"],
};
export const API_STEPS: readonly StepName[] = ["script"];

export function stepsFor(kind: JobKind, pipeline?: Pipeline): readonly StepName[] {
  if (kind === "train_profile") return TRAIN_PROFILE_STEPS;
  return GENERATE_VIDEO_STEPS[pipeline ?? "sadtalker"];
}

/** Storage keys are made by the server: lowercase path segments, no dots at the start, no `..`. */
export const StorageKey = z
  .string()
  .min(1)
  .max(512)
  .regex(/^[a-z0-9][a-z0-9_-]*(\/[a-z0-9][a-z0-9_.-]*)*$/, "storage key");

/** Engine overrides per task kind, e.g. {"tts": "espeak"}; unset kinds use the worker's default. */
export const EngineOverrides = z.partialRecord(TaskKind, z.string().min(1).max(64)).meta({ title: "EngineOverrides" });

/** An uploaded file: where it is stored and the name the user gave it. */
const UploadRef = z.object({ key: StorageKey, name: z.string().max(255) }).meta({ title: "UploadRef" });

export const TrainProfilePayload = z.object({
  profileId: z.uuid(),
  /** Trigger token written into the captions of the LoRA dataset. */
  triggerWord: z.string().min(1).max(64),
  images: z.array(UploadRef).min(1).max(50),
  voiceSample: UploadRef,
}).meta({ title: "TrainProfilePayload" });
export type TrainProfilePayload = z.infer<typeof TrainProfilePayload>;

/** What a trained profile hands to every video made from it (the train_profile result). */
export const ProfileAssets = z.object({
  portraitKey: StorageKey,
  /** Face box in the portrait, pixels: where the face is for the lip-sync engines. */
  faceBox: z.object({ x: z.number(), y: z.number(), w: z.number(), h: z.number() }).meta({ title: "FaceBox" }),
  datasetKey: StorageKey,
  voiceReferenceKey: StorageKey,
  voiceProfileKey: StorageKey,
  loraKey: StorageKey.optional(),
  /** The model family the LoRA was trained on: an image workflow of another family cannot load it. */
  loraBaseModel: z.enum(["sd15", "sdxl"]).optional(),
  voiceModelKey: StorageKey.optional(),
  /**
   * The profile's trigger word, which its LoRA was trained with: an image engine that loads the
   * LoRA puts it in the prompt. The api fills it in each video command from the profile.
   */
  triggerWord: z.string().min(1).max(64).optional(),
  acceptedImages: z.number().int().nonnegative(),
  rejectedImages: z
    .array(
      z
        .object({
          name: z.string(),
          reason: z.string(),
          /** The photo's place in the upload (0-based): two photos may share a name. */
          index: z.number().int().nonnegative().optional(),
        })
        .meta({ title: "RejectedImage" }),
    )
    .default([]),
}).meta({ title: "ProfileAssets" });
export type ProfileAssets = z.infer<typeof ProfileAssets>;

export const Script = z.object({
  title: z.string().max(200),
  /** Stage description: what the scene looks like (drives text-to-image). */
  stage: z.string().max(2000),
  /** What the person says. */
  narration: z.string().min(1).max(5000),
}).meta({ title: "Script" });
export type Script = z.infer<typeof Script>;

/** Size of the output video in pixels (H.264 yuv420p needs even sides). */
export const OutputSize = z.object({
  width: z.number().int().min(128).max(2160).multipleOf(2),
  height: z.number().int().min(128).max(3840).multipleOf(2),
});

/**
 * How the narration shows as text: `soft` a subtitle track the player can switch on and off,
 * `burned` drawn into the picture (every player shows it), `none` no subtitles.
 */
export const SubtitleMode = z.enum(["soft", "burned", "none"]).meta({ title: "SubtitleMode" });
export type SubtitleMode = z.infer<typeof SubtitleMode>;

/** The mode a boolean of an older client or command stands for: true = soft, false = none. */
export const subtitleMode = (v: SubtitleMode | boolean): SubtitleMode => (v === true ? "soft" : v === false ? "none" : v);

export const GenerateVideoPayload = z.object({
  profileId: z.uuid(),
  profile: ProfileAssets,
  script: Script,
  pipeline: Pipeline,
  ...OutputSize.shape,
  fps: z.literal(25),
  /**
   * The api writes a SubtitleMode. A boolean comes only from commands queued before the modes
   * existed (read it with `subtitleMode`); drop `z.boolean()` once those have drained.
   */
  subtitles: z.union([SubtitleMode, z.boolean()]),
  /**
   * An edit: the job of the video it was made from. A step whose inputs hash to the `inputHash`
   * that job's step recorded takes that step's outputs (copied) instead of running.
   */
  reuseFrom: z.uuid().optional(),
}).meta({ title: "GenerateVideoPayload" });
export type GenerateVideoPayload = z.infer<typeof GenerateVideoPayload>;

/** Fields of every message about one run of a job: command, event and progress. */
const jobAttempt = {
  v: z.literal(PROTOCOL_VERSION),
  jobId: z.uuid(),
  /** 1 for the first run, +1 for each retry. Outputs of earlier attempts are reused. */
  attempt: z.number().int().min(1),
};

const commandBase = {
  ...jobAttempt,
  userId: z.uuid(),
  engines: EngineOverrides.default({}),
  createdAt: z.iso.datetime(),
};

/** lk:jobs:<kind> stream entry, field `data`. */
export const JobCommand = z.discriminatedUnion("kind", [
  z.object({ ...commandBase, kind: z.literal("train_profile"), payload: TrainProfilePayload }).meta({ title: "TrainProfileCommand" }),
  z.object({ ...commandBase, kind: z.literal("generate_video"), payload: GenerateVideoPayload }).meta({ title: "GenerateVideoCommand" }),
]).meta({ title: "JobCommand" });
export type JobCommand = z.infer<typeof JobCommand>;

export const ArtifactRef = z.object({
  key: StorageKey,
  /** What it is, in the user's words: portrait, dataset, voice_profile, speech, subtitles, video... */
  kind: z.string().min(1).max(64),
  contentType: z.string().min(1).max(128),
  bytes: z.number().int().nonnegative(),
  /** Hex SHA-256 of the content: what a later step's input hash is made of (an edit's reuse). */
  sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  meta: z.record(z.string(), z.unknown()).optional(),
}).meta({ title: "ArtifactRef" });
export type ArtifactRef = z.infer<typeof ArtifactRef>;

export const ErrorCode = z.enum([
  "bad_input", // the inputs cannot work (no face, silent voice): retry will not help
  "engine_unavailable", // tool missing or unreachable
  "engine_failed", // the tool crashed or returned garbage
  "out_of_memory",
  "timeout",
  "cancelled",
  "internal",
  "llm_unavailable", // the script step's LLM could not be reached or did not answer in time
]).meta({ title: "ErrorCode" });
export type ErrorCode = z.infer<typeof ErrorCode>;

export const StepError = z.object({
  code: ErrorCode,
  message: z.string().max(4000),
  retryable: z.boolean(),
}).meta({ title: "StepError" });
export type StepError = z.infer<typeof StepError>;

const eventBase = {
  ...jobAttempt,
  /** Unique per event: the api records each event once even when it is delivered twice. */
  eventId: z.uuid(),
  at: z.iso.datetime(),
};

/** lk:events stream entry, field `data`: the durable results of the worker. */
export const JobEvent = z.discriminatedUnion("type", [
  z.object({ ...eventBase, type: z.literal("job_started"), worker: z.string().max(200) }).meta({ title: "JobStarted" }),
  z.object({
    ...eventBase,
    type: z.literal("step_started"),
    step: StepName,
    engine: z.string().max(64),
    /** The SPDX licence of the engine that runs the step, and whether it forbids commercial use. */
    licence: z.string().max(200).optional(),
    nonCommercial: z.boolean().optional(),
  }).meta({ title: "StepStarted" }),
  z.object({
    ...eventBase,
    type: z.literal("step_succeeded"),
    step: StepName,
    engine: z.string().max(64),
    artifacts: z.array(ArtifactRef),
    /** Small structured outputs (scores, timings, the voice profile...). */
    outputs: z.record(z.string(), z.unknown()).default({}),
    durationMs: z.number().nonnegative(),
    /** True when the output already existed from an earlier attempt and was reused. */
    reused: z.boolean(),
  }).meta({ title: "StepSucceeded" }),
  z.object({
    ...eventBase,
    type: z.literal("step_failed"),
    step: StepName,
    engine: z.string().max(64),
    error: StepError,
    durationMs: z.number().nonnegative(),
  }).meta({ title: "StepFailed" }),
  z.object({
    ...eventBase,
    type: z.literal("job_finished"),
    state: z.enum(["succeeded", "failed", "cancelled"]),
    /** train_profile: ProfileAssets. generate_video: VideoResult. */
    result: z.record(z.string(), z.unknown()).optional(),
    error: StepError.extend({ step: StepName.optional() }).meta({ title: "JobError" }).optional(),
  }).meta({ title: "JobFinished" }),
]).meta({ title: "JobEvent" });
export type JobEvent = z.infer<typeof JobEvent>;

export const VideoResult = z.object({
  videoKey: StorageKey,
  subtitlesKey: StorageKey.optional(),
  durationSec: z.number().positive(),
  width: z.number().int(),
  height: z.number().int(),
  fps: z.number(),
}).meta({ title: "VideoResult" });
export type VideoResult = z.infer<typeof VideoResult>;

/** lk:progress:<jobId> Pub/Sub message: lossy, for live display only. */
export const Progress = z.object({
  ...jobAttempt,
  step: StepName,
  /** 0..1 */
  fraction: z.number().min(0).max(1),
  message: z.string().max(500).optional(),
  at: z.iso.datetime(),
}).meta({ title: "Progress" });
export type Progress = z.infer<typeof Progress>;
