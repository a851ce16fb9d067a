// The public HTTP and WebSocket API. Routes validate with these schemas and the OpenAPI document
// at /docs is generated from them.
import { z } from "zod";
import {
  ArtifactRef,
  JobEvent,
  JobKind,
  OutputSize,
  Pipeline,
  Progress,
  Script,
  StepError,
  StepName,
  SubtitleMode,
  subtitleMode,
} from "./jobs.js";
import { EngineChoice, LicenceNotice } from "./engines.js";

export const ErrorBody = z.object({
  error: z.string(),
  /** The request field at fault, when there is one (e.g. "images[2]", "voice", "narration"). */
  field: z.string().optional(),
  message: z.string(),
  /**
   * Every field at fault, when there are several (an upload's bad files, each with its reason);
   * `field` and `message` repeat the first.
   */
  issues: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

/**
 * How sign-up and sign-in hand back the session: `token` (default), a bearer token in the answer,
 * for the CLI and scripts; `cookie`, an httpOnly session cookie the answer never shows, for the
 * web studio (script on the page cannot read it).
 */
export const SessionMode = z.enum(["token", "cookie"]);
export type SessionMode = z.infer<typeof SessionMode>;

export const Credentials = z.object({
  email: z.email().max(254),
  password: z.string().min(10, "at least 10 characters").max(256),
  session: SessionMode.optional().describe("`token` (default): a bearer token in the answer; `cookie`: an httpOnly session cookie"),
});
export type Credentials = z.infer<typeof Credentials>;

export const User = z.object({ id: z.uuid(), email: z.string(), createdAt: z.iso.datetime() });
export type User = z.infer<typeof User>;

export const Session = z.object({
  user: User,
  /** Bearer token: send as `Authorization: Bearer <token>`. Shown once. */
  token: z.string(),
});
export type Session = z.infer<typeof Session>;

/** The answer to a sign-in with `session: "cookie"`: the token went into the cookie only. */
export const CookieSession = z.object({ user: User });
export type CookieSession = z.infer<typeof CookieSession>;

export const ProfileState = z.enum(["draft", "queued", "training", "trained", "failed"]);
export type ProfileState = z.infer<typeof ProfileState>;

export const ProfileInput = z.object({
  kind: z.enum(["image", "voice"]),
  name: z.string(),
  contentType: z.string(),
  bytes: z.number().int(),
  width: z.number().int().optional(),
  height: z.number().int().optional(),
  durationSec: z.number().optional(),
});

export const Profile = z.object({
  id: z.uuid(),
  name: z.string(),
  state: ProfileState,
  triggerWord: z.string(),
  inputs: z.array(ProfileInput),
  /** The latest training job, if any. */
  trainJobId: z.uuid().nullable(),
  /** The engines this profile's jobs use unless a request names others (PUT /v1/profiles/{id}/engines). */
  engines: EngineChoice.optional(),
  /** Filled once trained: what each video is made from. */
  assets: z.record(z.string(), z.unknown()).nullable(),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
export type Profile = z.infer<typeof Profile>;

/** Multipart fields of POST /v1/profiles (files: `images` 1..50, `voice` exactly 1). */
export const CreateProfileFields = z.object({
  name: z.string().trim().min(1, "must not be empty").max(80),
});

export const UPLOAD_LIMITS = {
  maxImages: 50,
  maxImageBytes: 20 * 1024 * 1024,
  maxImagePixels: 40_000_000,
  minImageSide: 64,
  maxVoiceBytes: 50 * 1024 * 1024,
  minVoiceSec: 3,
  maxVoiceSec: 300,
  maxTotalBytes: 300 * 1024 * 1024,
} as const;

/** What a new video gets for the fields its request leaves out (an edit takes its source's). */
export const VIDEO_DEFAULTS = { pipeline: "sadtalker", width: 512, height: 512, subtitles: "soft" } as const;

export const CreateVideoRequest = z
  .object({
    /** Required, unless `from` names the video to edit (its profile is used). */
    profileId: z.uuid().optional(),
    /**
     * Edit and re-render: a video of yours to start from. Every field left out keeps its value
     * (the script too, unless narration, topic or stage is given); the steps whose inputs did not
     * change are reused from its job instead of run again. The source video stays as it was.
     */
    from: z.uuid().optional(),
    narration: z.string().trim().min(1).max(5000).optional(),
    topic: z.string().trim().min(1, "must not be empty").max(500, "must be at most 500 characters").optional(),
    /** With `topic`: how long the written narration should take to speak. */
    durationSec: z.number().min(5).max(300).optional().describe("With `topic`: the narration's length in seconds (default 30)"),
    /** The scene to show, in words (drives the image): replaces the template's, or the source's on an edit. Not with `topic`. */
    stage: z.string().trim().min(1).max(2000).optional(),
    pipeline: Pipeline.optional().describe(`Default ${VIDEO_DEFAULTS.pipeline}`),
    width: OutputSize.shape.width.optional().describe(`Default ${VIDEO_DEFAULTS.width}`),
    height: OutputSize.shape.height.optional().describe(`Default ${VIDEO_DEFAULTS.height}`),
    subtitles: z
      .union([SubtitleMode, z.boolean()], { error: 'must be "soft", "burned" or "none"' })
      .describe(
        "`soft` (default): a subtitle track the player can switch; `burned`: drawn into the picture; `none`. " +
          "The booleans of older clients still work: true = soft, false = none.",
      )
      .optional()
      .transform((v) => (v === undefined ? undefined : subtitleMode(v))),
    engines: EngineChoice.optional(),
  })
  .superRefine((r, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: "custom", path: [path], message });
    if (r.narration !== undefined && r.topic !== undefined) issue("narration", "give exactly one of narration or topic");
    else if (r.from === undefined && r.narration === undefined && r.topic === undefined) issue("narration", "give exactly one of narration or topic");
    if (r.from === undefined && r.profileId === undefined) issue("profileId", "is required (unless `from` names a video to edit)");
    if (r.topic !== undefined && r.stage !== undefined) issue("stage", "a topic's stage is written with its script: give narration with a stage, or a topic alone");
    if (r.durationSec !== undefined && r.topic === undefined) issue("durationSec", "goes with topic (a narration takes as long as it takes to say)");
  })
  // The rules above, as far as the OpenAPI document can say them (zod cannot derive them).
  .meta({
    description:
      "Give exactly one of `narration` (the words to speak) or `topic` (a script is written about it), and `profileId`; " +
      "or `from` (a video to edit) with only what changes.",
    anyOf: [{ required: ["profileId", "narration"] }, { required: ["profileId", "topic"] }, { required: ["from"] }],
  });
export type CreateVideoRequest = z.infer<typeof CreateVideoRequest>;

/** `cancelling`: the user cancelled a running job; it stays so until the worker reports how it ended. */
export const JobState = z.enum(["queued", "running", "cancelling", "succeeded", "failed", "cancelled"]);
export type JobState = z.infer<typeof JobState>;
/** The states a job does not leave (a retry is a new attempt of a failed or cancelled job). */
export const TERMINAL_JOB_STATES: readonly JobState[] = ["succeeded", "failed", "cancelled"];
export const isTerminal = (state: JobState): boolean => TERMINAL_JOB_STATES.includes(state);
export const StepState = z.enum(["pending", "running", "succeeded", "failed", "cancelled"]);
export type StepState = z.infer<typeof StepState>;

export const JobStep = z.object({
  name: StepName,
  state: StepState,
  engine: z.string().nullable(),
  /** The licence of the engine that ran it (SPDX), null until it starts; whether it forbids commercial use. */
  licence: z.string().nullable(),
  nonCommercial: z.boolean(),
  attempt: z.number().int().nullable(),
  startedAt: z.iso.datetime().nullable(),
  finishedAt: z.iso.datetime().nullable(),
  durationMs: z.number().nullable(),
  /** True when an earlier attempt's output was reused. */
  reused: z.boolean(),
  error: StepError.nullable(),
  outputs: z
    .record(z.string(), z.unknown())
    .nullable()
    .describe(
      "What the step reports about its work: the engine's notes, e.g. why upscale was skipped, how mux handled " +
        "the video stream, which voice and shaping tts used. Null until the step succeeds; storage keys " +
        "(fields named `…Key`) are left out, the artifacts list the step's files.",
    ),
  artifacts: z.array(ArtifactRef.extend({ engine: z.string() })),
});
export type JobStep = z.infer<typeof JobStep>;

export const Job = z.object({
  id: z.uuid(),
  kind: JobKind,
  state: JobState,
  attempt: z.number().int(),
  profileId: z.uuid(),
  videoId: z.uuid().nullable(),
  /** The engines this job was asked to use (request over profile defaults); each step records the one that ran. */
  engines: EngineChoice.optional(),
  /**
   * The engines this job was set to use (chosen, or the workers' defaults) whose licence forbids
   * commercial use: allowed, and said here from the moment the job is created.
   */
  licenceNotices: z.array(LicenceNotice),
  steps: z.array(JobStep),
  error: StepError.extend({ step: StepName.optional() }).nullable(),
  createdAt: z.iso.datetime(),
  finishedAt: z.iso.datetime().nullable(),
});
export type Job = z.infer<typeof Job>;

export const Video = z.object({
  id: z.uuid(),
  profileId: z.uuid(),
  jobId: z.uuid(),
  state: JobState,
  pipeline: Pipeline,
  width: z.number().int(),
  height: z.number().int(),
  subtitles: SubtitleMode,
  script: Script.nullable(),
  durationSec: z.number().nullable(),
  /** The video this one was edited from (`from`), while it exists. */
  sourceVideoId: z.uuid().nullable(),
  createdAt: z.iso.datetime(),
});
export type Video = z.infer<typeof Video>;

/** Messages on WebSocket /v1/jobs/:id/events. The first one is always a `job` snapshot. */
export const JobUpdate = z.discriminatedUnion("type", [
  z.object({ type: z.literal("job"), job: Job }),
  z.object({ type: z.literal("event"), event: JobEvent }),
  z.object({ type: z.literal("progress"), progress: Progress }),
]);
export type JobUpdate = z.infer<typeof JobUpdate>;
