// Decisions about videos: what may be generated from which profile (validate before you queue),
// listing, and opening the MP4 for streaming.
import { text } from "node:stream/consumers";
import {
  GENERATE_VIDEO_STEPS,
  ProfileAssets,
  Script,
  VIDEO_DEFAULTS,
  isTerminal,
  storageKeys,
  type Pipeline,
  type TaskKind,
  type CreateVideoRequest,
  type Job,
  type Video,
} from "@likeness/contracts";
import { isJobKey, type ObjectStorage, type ObjectStream } from "../storage/object-storage.js";
import { parseRange } from "../storage/byte-range.js";
import { HttpError, badRequest, conflict, notFound } from "../http/errors.js";
import { JobsRepository } from "../jobs/jobs.repository.js";
import { ProfilesRepository } from "../profiles/profiles.repository.js";
import type { JobsRuntime, JobsService } from "../jobs/jobs.service.js";
import { VideosRepository } from "./videos.repository.js";
import { toVideo } from "./video.mapper.js";
import { srtToWebVtt } from "./webvtt.js";
import { toJob } from "../jobs/job-view.js";
import { SCRIPT_ENGINE, scriptFromNarration } from "../llm/narration.js";
import { jobTaskKinds, type EngineMap } from "../engines/engines.service.js";

export class VideosService {
  private readonly videos: VideosRepository;

  constructor(
    private readonly rt: JobsRuntime,
    private readonly jobs: JobsService,
    private readonly storage: ObjectStorage,
  ) {
    this.videos = new VideosRepository(rt.db);
  }

  async create(userId: string, req: CreateVideoRequest): Promise<{ video: Video; job: Job }> {
    const llmChoice = req.engines?.llm;
    if (req.narration !== undefined && llmChoice !== undefined && llmChoice !== SCRIPT_ENGINE) {
      throw badRequest(`a narration is spoken as given, so the llm engine "${llmChoice}" would not run: send a topic for it to write one`, "engines.llm");
    }
    if (req.topic !== undefined && llmChoice === SCRIPT_ENGINE) {
      throw badRequest(`"${SCRIPT_ENGINE}" speaks a given narration; a topic needs an LLM engine (GET /v1/engines lists them)`, "engines.llm");
    }
    const source = req.from === undefined ? undefined : await this.source(userId, req);
    const profileId = source?.video.profile_id ?? req.profileId;
    if (profileId === undefined) throw badRequest("is required (unless `from` names a video to edit)", "profileId");
    const profile = await new ProfilesRepository(this.rt.db).findForUser(userId, profileId);
    if (!profile) throw notFound("profile");
    if (profile.state !== "trained") {
      throw conflict(`profile "${profile.name}" is not trained (state: ${profile.state}); train it first`, "profileId");
    }
    if (!ProfileAssets.safeParse(profile.assets).success) {
      throw conflict(`profile "${profile.name}" has no usable training result; train it again`, "profileId");
    }
    // Fields left out: an edit keeps its source's, a new video takes the defaults.
    const was = source?.video;
    const pipeline = req.pipeline ?? (was?.pipeline as Pipeline | undefined) ?? VIDEO_DEFAULTS.pipeline;
    const width = req.width ?? was?.width ?? VIDEO_DEFAULTS.width;
    const height = req.height ?? was?.height ?? VIDEO_DEFAULTS.height;
    const subtitles = req.subtitles ?? was?.subtitles ?? VIDEO_DEFAULTS.subtitles;
    const { script, scriptStep } = this.scriptNow(req, source, profile.trigger_word, pipeline);
    // A topic's llm: the request's, the source job's, the profile's default, the api's default.
    // Without a topic no llm runs (a narration is spoken as given; an edit keeps its script).
    // The source's choices for the task kinds this pipeline still has (an edit may change it).
    const kinds = jobTaskKinds("generate_video", pipeline);
    const fromSource = Object.fromEntries(
      Object.entries((source?.job.engines ?? {}) as EngineMap).filter(([k]) => kinds.has(k as TaskKind)),
    ) as EngineMap;
    const defaults = { ...((profile.engines ?? {}) as EngineMap) };
    if (req.topic === undefined) {
      delete fromSource.llm;
      delete defaults.llm;
    }
    const requested = source || req.engines ? { ...fromSource, ...req.engines } : undefined;
    const engines = await this.rt.engines.resolve({ kind: "generate_video", pipeline }, requested, defaults);
    if (req.topic !== undefined && engines.llm === undefined) {
      // The step records and a retry name the engine that wrote the script.
      engines.llm = this.rt.llm.defaultName;
      await this.rt.engines.checkAvailable({ llm: engines.llm });
    }
    const licenceNotices = await this.rt.engines.licenceNotices({ kind: "generate_video", pipeline }, engines);
    // What the job runs, every field filled: the script step reads topic, narration and durationSec.
    const request = { ...req, profileId, pipeline, width, height, subtitles, ...(requested ? { engines: requested } : {}) };
    const { job, steps, video } = await this.rt.db.transaction().execute(async (tx) => {
      const { job, steps } = await new JobsRepository(tx).insert({
        userId,
        kind: "generate_video",
        profileId,
        request,
        steps: GENERATE_VIDEO_STEPS[pipeline],
        engines,
        licenceNotices,
        ...(scriptStep ? { doneSteps: { script: scriptStep } } : {}),
      });
      const video = await new VideosRepository(tx).insert({
        userId,
        profileId,
        jobId: job.id,
        pipeline,
        width,
        height,
        subtitles,
        script,
        sourceVideoId: source?.video.id ?? null,
      });
      return { job, steps, video };
    });
    // Answered as queued; the script (from a topic) and the dispatch follow in the background.
    this.jobs.startWorkflowSoon(job);
    return { video: toVideo({ ...video, state: job.state }), job: toJob(job, steps, [], video.id) };
  }

  /** The video an edit starts from: the user's, its job ended (its steps are what it reuses). */
  private async source(userId: string, req: CreateVideoRequest) {
    const video = await this.videos.find(req.from ?? "", userId);
    if (!video) throw notFound("video `from`");
    if (req.profileId !== undefined && req.profileId !== video.profile_id) {
      throw badRequest("must be the profile of the video in `from` (or be left out)", "profileId");
    }
    const job = await new JobsRepository(this.rt.db).find(video.job_id, userId);
    if (!job) throw notFound("video `from`");
    if (!isTerminal(job.state)) throw conflict(`the video in \`from\` is still being made (job ${job.id} is ${job.state}); edit it once it has ended`, "from");
    return { video, job };
  }

  /**
   * The script when it is known at once, and how its step counts: a narration (engine `none`,
   * with the request's stage or, on an edit, its source's), an edit that changes only the stage,
   * or an edit that keeps its source's script (the step reused). Null for a topic: the LLM writes it.
   */
  private scriptNow(
    req: CreateVideoRequest,
    source: { video: { script: unknown }; job: { engines: unknown } } | undefined,
    triggerWord: string,
    pipeline: Pipeline,
  ): { script: Script | null; scriptStep?: { engine: string; reused?: boolean } } {
    if (req.topic !== undefined) return { script: null };
    const was = source?.video.script ? Script.parse(source.video.script) : undefined;
    if (req.narration !== undefined) {
      const fresh = scriptFromNarration({ narration: req.narration, triggerWord, pipeline });
      return { script: Script.parse({ ...fresh, stage: req.stage ?? was?.stage ?? fresh.stage }), scriptStep: { engine: SCRIPT_ENGINE } };
    }
    if (!was) throw conflict("the video in `from` has no script (its job failed before writing one): give narration or topic", "from");
    if (req.stage !== undefined) return { script: Script.parse({ ...was, stage: req.stage }), scriptStep: { engine: SCRIPT_ENGINE } };
    const engine = (source?.job.engines as EngineMap | undefined)?.llm ?? SCRIPT_ENGINE;
    return { script: was, scriptStep: { engine, reused: true } };
  }

  async get(userId: string, videoId: string): Promise<Video> {
    const v = await this.videos.find(videoId, userId);
    if (!v) throw notFound("video");
    return toVideo(v);
  }

  async list(userId: string): Promise<Video[]> {
    return (await this.videos.listForUser(userId)).map(toVideo);
  }

  /**
   * Deletes a video of the user's whose job has ended: its job (steps, artifacts) and its
   * objects. A video edited from it keeps its own copies (it forgets where it came from).
   */
  async delete(userId: string, videoId: string): Promise<void> {
    const v = await this.videos.find(videoId, userId);
    if (!v) throw notFound("video");
    if (!(await new JobsRepository(this.rt.db).deleteEnded(v.job_id, userId))) {
      throw conflict(`the video is still being made (job ${v.job_id}): cancel it first`);
    }
    const prefix = storageKeys.job(v.job_id);
    await this.storage.deletePrefix(prefix).catch((err: unknown) =>
      this.rt.log.error({ err, videoId, prefix }, "video deleted but some of its objects could not be removed"),
    );
  }

  /** The soft subtitles as WebVTT; 404 when the video has none (burned, off, or not made yet). */
  async subtitles(userId: string, videoId: string): Promise<string> {
    const v = await this.videos.find(videoId, userId);
    if (!v) throw notFound("video");
    const key = v.subtitles === "soft" && v.video_key ? await this.videos.subtitlesKey(v.job_id) : null;
    if (!key || !isJobKey(v.job_id, key)) throw notFound("subtitles");
    const { stream } = await this.storage.getStream(key);
    return srtToWebVtt(await text(stream));
  }

  /**
   * The MP4, whole or one byte range. `rangeHeader` is read by parseRange (storage/byte-range.ts):
   * one `bytes=` range is honoured; a malformed header, or ranges that do not merge into one,
   * is ignored (the whole file is sent).
   */
  async openFile(
    userId: string,
    videoId: string,
    rangeHeader: string | undefined,
  ): Promise<{ file: ObjectStream; range: { start: number; end: number } | null }> {
    const v = await this.videos.find(videoId, userId);
    if (!v) throw notFound("video");
    if (!v.video_key) throw conflict(`the video is not ready (job ${v.state})`);
    if (!isJobKey(v.job_id, v.video_key)) {
      // Only the job's own output is ever served (events are checked too; this guards old rows).
      this.rt.log.error({ videoId, jobId: v.job_id, key: v.video_key }, "video key outside its job's folder: not served");
      throw notFound("video file");
    }
    const info = await this.storage.stat(v.video_key);
    const range = parseRange(rangeHeader, info.size);
    if (range === "unsatisfiable") {
      throw new RangeNotSatisfiable(info.size);
    }
    const file = await this.storage.getStream(v.video_key, range ?? undefined);
    return { file, range };
  }
}

export class RangeNotSatisfiable extends HttpError {
  constructor(readonly totalSize: number) {
    super(416, "range_not_satisfiable", `the range is outside the file (${totalSize} bytes)`);
  }
}
