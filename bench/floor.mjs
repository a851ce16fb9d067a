// The CPU floor of the chosen machinery, for `npm run bench:control`: what one job costs at the
// very least in LangGraph.js (the api's workflow shape: start → dispatch → await_worker
// (interrupt) → resumed → finalize, on the Postgres checkpointer, as the api runs it) and, through
// `python -m likeness_worker.bench.floor`, in LangGraph (the worker's video DAG) and Dramatiq.
// Nothing of ours runs in the nodes: the figures are the frameworks' own cost, a lower bound for
// what the control plane can spend per job. Postgres's and Redis's own CPU is not included.
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { Annotation, Command, END, START, StateGraph, interrupt } from "@langchain/langgraph";
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import pg from "pg";

const SCHEMA = "lg_floor";

async function langgraphJs(databaseUrl, jobs) {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  const saver = new PostgresSaver(pool, undefined, { schema: SCHEMA });
  try {
    await saver.setup();
    const State = Annotation.Root({
      jobId: Annotation(),
      attempt: Annotation(),
      dispatched: Annotation(),
      commandId: Annotation(),
      finished: Annotation(),
      outcome: Annotation(),
    });
    const graph = new StateGraph(State)
      .addNode("dispatch", async () => ({ dispatched: true, commandId: "1-0" }))
      .addNode("await_worker", async () => ({ finished: interrupt("job_finished") }))
      .addNode("finalize", async () => ({ outcome: "succeeded" }))
      .addEdge(START, "dispatch")
      .addEdge("dispatch", "await_worker")
      .addEdge("await_worker", "finalize")
      .addEdge("finalize", END)
      .compile({ checkpointer: saver });
    const job = async () => {
      const config = { configurable: { thread_id: `floor-${randomUUID()}` } };
      // As workflows/workflow.runner.ts: a start checkpointed when it stops, then the resume.
      await graph.invoke({ jobId: randomUUID(), attempt: 1, dispatched: false, commandId: null, finished: null, outcome: null }, { ...config, durability: "exit" });
      await graph.invoke(new Command({ resume: { type: "job_finished", state: "succeeded" } }), config);
    };
    for (let i = 0; i < 10; i++) await job();
    const c0 = process.cpuUsage();
    for (let i = 0; i < jobs; i++) await job();
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / 1000 / jobs;
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`).catch(() => {});
    await pool.end();
  }
}

/**
 * `{ langgraphJsMs, langgraphPyMs, langgraphPyBareMs, dramatiqMs, steps, perJobMs }`: CPU ms per
 * job (Dramatiq: per message, and `steps` messages per job), and their sum for one video job.
 */
export async function measureFloor({ databaseUrl, redisUrl, python, cwd, jobs = 200 }) {
  const langgraphJsMs = await langgraphJs(databaseUrl, jobs);
  const py = spawnSync(python, ["-m", "likeness_worker.bench.floor", String(jobs)], {
    cwd,
    env: { ...process.env, DATABASE_URL: databaseUrl, REDIS_URL: redisUrl },
    encoding: "utf8",
    timeout: 300_000,
  });
  if (py.status !== 0) throw new Error(`likeness_worker.bench.floor failed: ${py.stderr.slice(-2000)}`);
  const w = JSON.parse(py.stdout.trim().split("\n").pop());
  return {
    langgraphJsMs,
    langgraphPyMs: w.langgraph_py_async_ms,
    langgraphPyExitMs: w.langgraph_py_exit_ms,
    langgraphPyBareMs: w.langgraph_py_bare_ms,
    dramatiqMs: w.dramatiq_round_trip_ms,
    steps: w.steps,
    perJobMs: langgraphJsMs + w.langgraph_py_async_ms + w.steps * w.dramatiq_round_trip_ms,
  };
}
