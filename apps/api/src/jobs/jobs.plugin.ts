// The job side of the api: job/video routes, the WebSocket, the LangGraph workflows, the
// `{prefix}:events` consumer and the reconciler. buildApp registers this with the app's deps.
import type { FastifyInstance } from "fastify";
import fastifyWebsocket from "@fastify/websocket";
import { JobKind, redisKeys } from "@likeness/contracts";
import type { AppDeps } from "../app-deps.js";
import { JobStreamProducer } from "../bus/job-stream.repository.js";
import { EventsConsumer } from "../events/events.consumer.js";
import { WorkflowRunner } from "../workflows/workflow.runner.js";
import { JobReconciler } from "./job-reconciler.js";
import { JobUpdatesHub } from "../realtime/job-updates.hub.js";
import { jobEventsRoutes } from "../realtime/job-events.routes.js";
import { VideosService } from "../videos/videos.service.js";
import { videosRoutes } from "../videos/videos.routes.js";
import { createJobMetrics, registerStreamLengthGauge } from "./jobs.metrics.js";
import { JobsService, type JobsRuntime } from "./jobs.service.js";
import { jobsRoutes } from "./jobs.routes.js";
import { EnginesService } from "../engines/engines.service.js";
import { LlmEngines } from "../llm/llm-engines.js";
import { enginesRoutes } from "../engines/engines.routes.js";

export interface JobsHandle {
  runtime: JobsRuntime;
  jobs: JobsService;
  videos: VideosService;
  consumer: EventsConsumer;
  runner: WorkflowRunner;
  reconciler: JobReconciler;
}

/** How long a request that creates a job waits for an unavailable Redis (at most API_OUTAGE_MAX_S). */
const DISPATCH_WAIT_MS = 3_000;

const handles = new WeakMap<AppDeps, JobsHandle>();
/** The job side built for these deps (tests and diagnostics). */
export function jobsHandle(deps: AppDeps): JobsHandle | undefined {
  return handles.get(deps);
}

export default async function jobsPlugin(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const prefix = deps.config.redisKeyPrefix;
  const keys = redisKeys(prefix);

  const metrics = createJobMetrics(app.metrics);
  registerStreamLengthGauge(app.metrics, deps.redis, [keys.events, ...JobKind.options.map((k) => keys.jobStream(k))], () =>
    app.health.isUp("redis"),
  );

  const health = app.health;
  const outageMaxMs = deps.config.outage.maxMs;
  const producer = new JobStreamProducer(deps.redis, prefix, (err) => health.report("redis", false, err));
  const llm = new LlmEngines(deps.config.llm);
  // The workflow's own events are recorded by the consumer, built after the runner it resumes.
  const recorder: { consumer?: EventsConsumer } = {};
  const runner = await WorkflowRunner.create(
    {
      db: deps.db,
      redis: deps.redis,
      prefix,
      producer,
      log: app.log,
      metrics,
      health,
      // A request that creates a job waits a few seconds at most for an unavailable Redis.
      dispatchWaitMs: Math.min(DISPATCH_WAIT_MS, outageMaxMs),
      llm,
      report: (event) => recorder.consumer!.record(event),
    },
    deps.config.databaseUrl,
  );
  const consumer = new EventsConsumer(
    { db: deps.db, redis: deps.redis, prefix, runner, log: app.log, metrics, health },
    deps.config.events,
  );
  recorder.consumer = consumer;
  const reconciler = new JobReconciler(
    { db: deps.db, producer, runner, consumer, metrics, health, log: app.log },
    { ...deps.config.reconcile, outageMaxMs },
  );
  const engines = new EnginesService(deps.db, deps.redis, prefix, () => llm.infos(), app.log);
  const runtime: JobsRuntime = { db: deps.db, redis: deps.redis, prefix, runner, consumer, metrics, log: app.log, engines, llm };
  const jobs = new JobsService(runtime);
  const videos = new VideosService(runtime, jobs, deps.storage);
  const hub = new JobUpdatesHub(deps.redis, app.log);
  handles.set(deps, { runtime, jobs, videos, consumer, runner, reconciler });
  // A profile is deleted with its jobs: not while one runs; their outputs go with the rows.
  app.profileDeleteHooks.push(({ userId, profileId }) => jobs.prefixesForProfileDelete(userId, profileId));

  await app.register(fastifyWebsocket, { options: { maxPayload: 64 * 1024 } });
  await app.register(jobsRoutes, { jobs });
  await app.register(videosRoutes, { videos });
  await app.register(enginesRoutes, { engines });
  jobEventsRoutes(app, jobs, hub, prefix);

  let pruning: NodeJS.Timeout | undefined;
  let offRecovered: (() => void) | undefined;
  const prune = () => runner.pruneCheckpoints().catch((err) => app.log.warn({ err }, "checkpoint retention failed"));
  app.addHook("onReady", async () => {
    await producer.connected(2_000); // so the first job is not dispatched before its connection is up
    await consumer.start();
    // Threads left mid-way by a previous process: start, continue or resume them.
    await runner.recover();
    // Then commands lost or never sent, now and periodically; at once when a dependency is back.
    reconciler.start();
    llm.warm(); // the built-in model when it is the default: topics need not wait for its first load
    offRecovered = health.onRecovered(() => void reconciler.pass());
    void prune();
    pruning = setInterval(prune, 60 * 60 * 1000).unref();
  });
  app.addHook("onClose", async () => {
    clearInterval(pruning);
    offRecovered?.();
    await reconciler.stop();
    await consumer.stop();
    await hub.close();
    await runner.close();
    await llm.close();
    producer.close();
  });
}
