// Decisions about videos: what may be generated from which profile (validate before you queue),
// listing, and opening the MP4 for streaming.
import {
  GENERATE_VIDEO_STEPS,
  ProfileAssets,
  Script,
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
import { toJob } from "../jobs/job-view.js";
import { SCRIPT_ENGINE, scriptFromNarration } from "../llm/narration.js";
import type { EngineMap } from "../engines/engines.service.js";

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
    const profile = await new ProfilesRepository(this.rt.db).findForUser(userId, req.profileId);
    if (!profile) throw notFound("profile");
    if (profile.state !== "trained") {
      throw conflict(`profile "${profile.name}" is not trained (state: ${profile.state}); train it first`, "profileId");
    }
    if (!ProfileAssets.safeParse(profile.assets).success) {
      throw conflict(`profile "${profile.name}" has no usable training result; train it again`, "profileId");
    }
    // A given narration is the script at once (engine `none`): the 202 shows it.
    const script =
      req.narration === undefined
        ? null
        : Script.parse(scriptFromNarration({ narration: req.narration, triggerWord: profile.trigger_word, pipeline: req.pipeline }));
    // A profile's default llm writes topics; a narration needs none.
    const defaults = { ...((profile.engines ?? {}) as EngineMap) };
    if (req.narration !== undefined) delete defaults.llm;
    const engines = await this.rt.engines.resolve({ kind: "generate_video", pipeline: req.pipeline }, req.engines, defaults);
    if (req.topic !== undefined && engines.llm === undefined) {
      // The step records and a retry name the engine that wrote the script.
      engines.llm = this.rt.llm.defaultName;
      await this.rt.engines.checkAvailable({ llm: engines.llm });
    }
    const { job, steps, video } = await this.rt.db.transaction().execute(async (tx) => {
      const { job, steps } = await new JobsRepository(tx).insert({
        userId,
        kind: "generate_video",
        profileId: profile.id,
        request: req,
        steps: GENERATE_VIDEO_STEPS[req.pipeline],
        engines,
        ...(script ? { doneSteps: { script: SCRIPT_ENGINE } } : {}),
      });
      const video = await new VideosRepository(tx).insert({
        userId,
        profileId: profile.id,
        jobId: job.id,
        pipeline: req.pipeline,
        width: req.width,
        height: req.height,
        subtitles: req.subtitles,
        script,
      });
      return { job, steps, video };
    });
    // Answered as queued; the script (from a topic) and the dispatch follow in the background.
    this.jobs.startWorkflowSoon(job);
    return { video: toVideo({ ...video, state: job.state }), job: toJob(job, steps, [], video.id) };
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
