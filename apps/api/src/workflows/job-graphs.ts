// The api-side workflow of each job kind: LangGraph.js StateGraphs, checkpointed in Postgres
// (schema lg_api). train_profile: dispatch → await_worker → finalize. generate_video: script →
// dispatch → await_worker → finalize. `await_worker` pauses with interrupt(); the events consumer
// resumes it with Command({ resume: jobFinishedEvent }).
import { Annotation, END, START, StateGraph, interrupt, type BaseCheckpointSaver } from "@langchain/langgraph";
import type { Kysely } from "kysely";
import type { Redis } from "ioredis";
import { randomUUID } from "node:crypto";
import {
  PROTOCOL_VERSION,
  isTerminal,
  Script,
  redisKeys,
  type CreateVideoRequest,
  type JobEvent,
  type Pipeline,
  type StepError,
} from "@likeness/contracts";
import type { FastifyBaseLogger } from "fastify";
import type { Database, JobRow, ProfileRow } from "../db/types.js";
import type { JobStreamProducer } from "../bus/job-stream.repository.js";
import { JobsRepository } from "../jobs/jobs.repository.js";
import { loadJobView } from "../jobs/job-view.js";
import { ProfilesRepository } from "../profiles/profiles.repository.js";
import { VideosRepository } from "../videos/videos.repository.js";
import type { JobMetrics } from "../jobs/jobs.metrics.js";
import { retryTransient } from "../resilience/retry.js";
import { isTransientRedisError } from "../resilience/transient-errors.js";
import type { DependencyHealth } from "../resilience/dependency-health.js";
import { SCRIPT_ENGINE, scriptFromNarration } from "../llm/narration.js";
import type { LlmEngines } from "../llm/llm-engines.js";
import { LlmUnavailable } from "../llm/script-writer.js";
import { DEFAULT_SCRIPT_SECONDS, ScriptRejected, wordsPerSecond } from "../llm/prompt.js";
import { writeScript } from "../llm/write-script.js";
import { buildJobCommand, JobGone } from "./job-command.js";

export const JobWorkflowState = Annotation.Root({
  jobId: Annotation<string>(),
  attempt: Annotation<number>(),
  /** False when dispatch found the job already ended (cancelled before it was queued). */
  dispatched: Annotation<boolean>(),
  /** The stream entry id of the dispatched command; null when Redis was away (the row's command_id is kept current). */
  commandId: Annotation<string | null>(),
  /** The job_finished event the worker (or a cancel) ended the job with. */
  finished: Annotation<JobEvent | null>(),
  /** The job state finalize saw. */
  outcome: Annotation<string | null>(),
});
export type JobWorkflowStateT = typeof JobWorkflowState.State;

export interface WorkflowDeps {
  db: Kysely<Database>;
  redis: Redis;
  prefix: string;
  producer: JobStreamProducer;
  log: FastifyBaseLogger;
  metrics: JobMetrics;
  health: DependencyHealth;
  /** The script step's engines. */
  llm: LlmEngines;
  /**
   * Records an event the workflow produced (the script step's) as the worker's are recorded, and
   * sends it to the job's WebSocket clients; it never resumes a thread (this one is running).
   */
  report: (event: JobEvent) => Promise<void>;
  /**
   * How long dispatch waits for an unavailable Redis before the attempt goes on without its
   * command sent (the reconciler sends it later): the request that created the job is waiting.
   */
  dispatchWaitMs: number;
}

/**
 * The script step, run here in the api: reported as a worker reports its steps (step_started,
 * then step_succeeded or step_failed, recorded and sent to the job's WebSocket clients). A failed
 * script fails the job here (job_finished recorded, no command sent): `llm_unavailable` when the
 * LLM could not be reached or did not answer in time, `engine_failed` when its answers were not
 * usable; both may be retried.
 */
async function writeScriptStep(d: WorkflowDeps, job: JobRow, videoId: string, request: CreateVideoRequest, profile: ProfileRow | undefined, pipeline: Pipeline) {
  const triggerWord = profile?.trigger_word ?? "the person";
  const videos = new VideosRepository(d.db);
  const event = { v: PROTOCOL_VERSION, jobId: job.id, attempt: job.attempt } as const;
  const at = () => ({ eventId: randomUUID(), at: new Date().toISOString() });
  if (request.topic === undefined) {
    // A narration whose script was not written at creation (a row older than that): written now.
    const script = Script.parse(scriptFromNarration({ narration: request.narration ?? "", triggerWord, pipeline }));
    await videos.setScript(videoId, script);
    await d.report({ ...event, ...at(), type: "step_succeeded", step: "script", engine: SCRIPT_ENGINE, artifacts: [], outputs: {}, durationMs: 0, reused: false });
    return;
  }
  const engine = (job.engines as Record<string, string> | null)?.llm ?? d.llm.defaultName;
  const writer = d.llm.get(engine);
  const started = performance.now();
  await d.report({ ...event, ...at(), type: "step_started", step: "script", engine });
  let error: StepError;
  try {
    if (!writer) throw new LlmUnavailable(`the llm engine "${engine}" is not configured on this api`);
    // Sized at the speaking rate the profile's training measured in the voice sample.
    const voice = profile?.train_job_id ? await new JobsRepository(d.db).findStep(profile.train_job_id, "train_voice") : undefined;
    const rate = wordsPerSecond((voice?.outputs as { voiceProfile?: { speaking_rate_sps?: unknown } } | null)?.voiceProfile?.speaking_rate_sps);
    const { script, tries } = await writeScript(
      writer,
      { topic: request.topic, triggerWord, durationSec: request.durationSec ?? DEFAULT_SCRIPT_SECONDS, wordsPerSec: rate },
      AbortSignal.timeout(d.llm.timeoutMs),
    );
    await videos.setScript(videoId, script);
    const durationMs = performance.now() - started;
    await d.report({
      ...event,
      ...at(),
      type: "step_succeeded",
      step: "script",
      engine,
      artifacts: [],
      outputs: { title: script.title, words: script.narration.split(/\s+/).length, wordsPerSec: Math.round(rate * 100) / 100, tries },
      durationMs,
      reused: false,
    });
    d.metrics.stepDuration.observe({ step: "script", engine, outcome: "succeeded", reused: "false" }, durationMs / 1000);
    return;
  } catch (err) {
    if (err instanceof LlmUnavailable) error = { code: "llm_unavailable", message: err.message.slice(0, 4000), retryable: true };
    else if (err instanceof ScriptRejected) error = { code: "engine_failed", message: err.message.slice(0, 4000), retryable: true };
    else throw err; // Postgres or Redis away: the thread stops here and the recovery pass goes on with it
  }
  const durationMs = performance.now() - started;
  d.log.warn({ jobId: job.id, engine, code: error.code }, `script step failed: ${error.message}`);
  d.metrics.stepDuration.observe({ step: "script", engine, outcome: "failed", reused: "false" }, durationMs / 1000);
  await d.report({ ...event, ...at(), type: "step_failed", step: "script", engine, error, durationMs });
  await d.report({ ...event, ...at(), type: "job_finished", state: "failed", error: { ...error, step: "script" } });
}

export const threadId = (jobId: string, attempt: number): string => `${jobId}:${attempt}`;

/** The job row of this thread, while it still belongs to this attempt. */
async function currentJob(d: WorkflowDeps, s: JobWorkflowStateT): Promise<JobRow> {
  const job = await new JobsRepository(d.db).find(s.jobId);
  if (!job || job.attempt !== s.attempt) throw new JobGone(`job ${s.jobId} attempt ${s.attempt} is gone`);
  return job;
}

/**
 * Writes the job row first (still wanted, still this attempt), then XADDs the command. Redis
 * away is waited out for `dispatchWaitMs`; after that the attempt goes on to wait for its worker
 * with no command sent yet (command_id null): the reconciler sends it once Redis answers, and
 * fails the job only if Redis stays away longer than API_OUTAGE_MAX_S.
 */
async function dispatch(d: WorkflowDeps, s: JobWorkflowStateT) {
  const job = await currentJob(d, s);
  if (isTerminal(job.state)) return { dispatched: false, commandId: null };
  const command = await buildJobCommand(d.db, job);
  const jobs = new JobsRepository(d.db);
  if (!(await jobs.markDispatched(job.id, s.attempt))) return { dispatched: false, commandId: null };
  let commandId: string | null = null;
  try {
    commandId = await retryTransient(() => d.producer.enqueue(command), {
      maxMs: d.dispatchWaitMs,
      retryable: isTransientRedisError,
      onRetry: (err) => d.health.report("redis", false, err),
    });
  } catch (err) {
    if (!isTransientRedisError(err)) throw err;
    d.health.report("redis", false, err);
    d.log.warn({ err, jobId: job.id, attempt: s.attempt }, "job dispatched while Redis is unavailable: the reconciler will send its command");
  }
  if (commandId) {
    await jobs.markSent(job.id, s.attempt, commandId);
    d.log.info({ jobId: job.id, attempt: s.attempt, kind: job.kind, commandId }, "job dispatched");
  }
  return { dispatched: true, commandId };
}

function awaitWorker(s: JobWorkflowStateT) {
  // Nothing before interrupt(): the node re-runs from the top when it is resumed.
  const finished = interrupt<{ jobId: string; attempt: number; waitingFor: string }, JobEvent>({
    jobId: s.jobId,
    attempt: s.attempt,
    waitingFor: "job_finished",
  });
  return { finished };
}

async function publishSnapshot(d: WorkflowDeps, jobId: string): Promise<void> {
  const job = await loadJobView(d.db, jobId);
  if (job) await d.redis.publish(redisKeys(d.prefix).jobUpdates(jobId), JSON.stringify({ type: "job", job }));
}

/**
 * The job's outputs (profile state and assets, the video's file) were written in the transaction
 * that recorded its end (jobs/job-outcome.ts); finalize tells every client, once.
 */
async function finalize(d: WorkflowDeps, s: JobWorkflowStateT) {
  const job = await currentJob(d, s);
  // Publish first: when Redis is away this throws, and the node runs again (recover()) later,
  // so the counter below still counts each workflow once.
  await publishSnapshot(d, job.id);
  d.metrics.jobsFinalized.inc({ kind: job.kind, state: job.state });
  d.log.info({ jobId: job.id, attempt: s.attempt, state: job.state }, `${job.kind} finalized`);
  return { outcome: job.state };
}

const afterDispatch = (s: JobWorkflowStateT) => (s.dispatched ? "await_worker" : "finalize");

export function buildTrainProfileGraph(d: WorkflowDeps, checkpointer: BaseCheckpointSaver) {
  return new StateGraph(JobWorkflowState)
    .addNode("dispatch", (s) => dispatch(d, s))
    .addNode("await_worker", awaitWorker)
    .addNode("finalize", (s) => finalize(d, s))
    .addEdge(START, "dispatch")
    .addConditionalEdges("dispatch", afterDispatch, ["await_worker", "finalize"])
    .addEdge("await_worker", "finalize")
    .addEdge("finalize", END)
    .compile({ checkpointer, name: "train_profile" });
}

export function buildGenerateVideoGraph(d: WorkflowDeps, checkpointer: BaseCheckpointSaver) {
  const jobs = new JobsRepository(d.db);
  const profiles = new ProfilesRepository(d.db);
  const videos = new VideosRepository(d.db);
  return new StateGraph(JobWorkflowState)
    .addNode("script", async (s) => {
      const job = await currentJob(d, s);
      if (isTerminal(job.state)) return {};
      const video = await videos.findByJob(job.id);
      if (!video) throw new JobGone(`video of job ${job.id} is gone`);
      const step = await jobs.findStep(job.id, "script");
      if (step?.state === "succeeded" && video.script) {
        // Written at creation (a narration) or by an earlier attempt: reused, as the worker reports its reused steps.
        if (step.attempt !== s.attempt) await jobs.updateStep(job.id, "script", { attempt: s.attempt, reused: true });
        return {};
      }
      const request = job.request as CreateVideoRequest;
      const profile = await profiles.findById(job.profile_id);
      await writeScriptStep(d, job, video.id, request, profile, video.pipeline as Pipeline);
      return {};
    })
    .addNode("dispatch", (s) => dispatch(d, s))
    .addNode("await_worker", awaitWorker)
    .addNode("finalize", (s) => finalize(d, s))
    .addEdge(START, "script")
    .addEdge("script", "dispatch")
    .addConditionalEdges("dispatch", afterDispatch, ["await_worker", "finalize"])
    .addEdge("await_worker", "finalize")
    .addEdge("finalize", END)
    .compile({ checkpointer, name: "generate_video" });
}

