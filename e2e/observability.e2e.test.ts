// The monitoring of deploy/ proven live: Debian's `prometheus` runs with the repository's own
// deploy/prometheus/prometheus.yml (its targets rewritten to this stack's local ports, its rules
// loaded from deploy/prometheus/rules) and scrapes the real api, the real worker and Debian's
// Redis exporter while real jobs run: a training, then a video whose tts fails (injected fault)
// and is retried by its user. Then:
// - every PromQL expression of every panel of the provisioned Grafana dashboard returns at least
//   one series (the panels of exporters that cannot run here, cAdvisor and DCGM, are named);
// - every alert rule evaluates without error against the real metrics, and none fires.
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import YAML from "yaml";
import type { Job } from "@likeness/contracts";
import { freePort } from "../scripts/infra.mjs";
import { Client, summarize } from "./harness/client.js";
import { REPO } from "./harness/paths.js";
import { Service, skipE2e, Stack } from "./harness/stack.js";

const DEPLOY = path.join(REPO, "deploy");
// Scrape jobs of prometheus.yml whose exporters need Docker, a GPU or an image from elsewhere: no
// such process can run on a test machine. Every other job is scraped live.
const NOT_RUNNABLE_HERE: Record<string, string> = {
  traefik: "Traefik is not packaged by Debian",
  cadvisor: "cAdvisor reads Docker's containers",
  minio: "MinIO is not packaged by Debian",
  grafana: "Grafana is not packaged by Debian",
  dcgm: "the DCGM exporter needs an NVIDIA GPU",
};
const EXPORTER_OF_METRIC: [RegExp, string][] = [
  [/\bcontainer_/, "cadvisor"],
  [/\bDCGM_/, "dcgm"],
];

interface ScrapeConfig {
  job_name: string;
  static_configs?: { targets: string[] }[];
  dns_sd_configs?: unknown[];
  [key: string]: unknown;
}
interface PromConfig {
  global: Record<string, string>;
  rule_files: string[];
  scrape_configs: ScrapeConfig[];
}
interface QueryResult {
  status: string;
  error?: string;
  data: { resultType: string; result: unknown[] };
}
interface RuleGroups {
  data: { groups: { name: string; rules: { name: string; type: string; health: string; lastError?: string; state?: string }[] }[] };
}

/** The repository's prometheus.yml with each runnable job pointed at its local port. */
function localConfig(ports: Record<string, number>): { config: PromConfig; dropped: string[] } {
  const config = YAML.parse(fs.readFileSync(path.join(DEPLOY, "prometheus/prometheus.yml"), "utf8")) as PromConfig;
  const dropped: string[] = [];
  const scrape: ScrapeConfig[] = [];
  for (const job of config.scrape_configs) {
    const port = ports[job.job_name];
    if (port === undefined) {
      dropped.push(job.job_name);
      continue;
    }
    const { dns_sd_configs: _dns, static_configs: _static, ...rest } = job;
    scrape.push({ ...rest, static_configs: [{ targets: [`127.0.0.1:${port}`] }] });
  }
  // Compose mounts deploy/prometheus/rules at /etc/prometheus/rules.
  const rules = config.rule_files.map((f) => f.replace(/^\/etc\/prometheus\/rules\//, `${DEPLOY}/prometheus/rules/`));
  return {
    config: { ...config, global: { ...config.global, scrape_interval: "1s", evaluation_interval: "1s" }, rule_files: rules, scrape_configs: scrape },
    dropped,
  };
}

/** Every expression of every panel of the provisioned dashboard, as Grafana would send it. */
function dashboardQueries(): { panel: string; expr: string }[] {
  const dash = JSON.parse(fs.readFileSync(path.join(DEPLOY, "grafana/dashboards/likeness.json"), "utf8")) as {
    panels: { title: string; targets?: { expr: string }[] }[];
  };
  return dash.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({
      panel: p.title,
      // Grafana's $__rate_interval is at least 4 scrape intervals; $__range is the dashboard's time range.
      expr: t.expr.replaceAll("$__rate_interval", "1m").replaceAll("$__range", "15m"),
    })),
  );
}

describe.skipIf(await skipE2e())("e2e: Prometheus live on the api and the worker", () => {
  let stack: Stack;
  let prometheus: Service;
  let exporter: Service;
  let promUrl: string;
  let dropped: string[];
  let video: Job;

  async function query(expr: string): Promise<QueryResult> {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (await res.json()) as QueryResult;
  }

  async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check().catch(() => false))) {
      if (!prometheus.running) throw new Error(`prometheus exited: ${prometheus.tail()}`);
      if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs / 1000} s\n${prometheus.tail(30)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  beforeAll(async () => {
    const samples = inject("samples");
    if ("error" in samples) throw new Error(`sample inputs: ${samples.error}`);
    const workerMetrics = await freePort();
    stack = await Stack.start({ name: "observability", workerEnv: { WORKER_METRICS_PORT: String(workerMetrics), LIKENESS_TEST_FAULTS: "tts:1" } });

    const exporterPort = await freePort();
    exporter = new Service("redis-exporter", "prometheus-redis-exporter",
      ["-redis.addr", stack.redisUrl, "-web.listen-address", `127.0.0.1:${exporterPort}`], { PATH: process.env.PATH }, path.join(stack.logDir, "redis-exporter.log"));
    exporter.start();

    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    const local = localConfig({ prometheus: promPort, api: stack.port, worker: workerMetrics, redis: exporterPort });
    dropped = local.dropped;
    const configFile = path.join(stack.tmpDir, "prometheus.yml");
    fs.writeFileSync(configFile, YAML.stringify(local.config));
    prometheus = new Service("prometheus", "prometheus", [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(stack.tmpDir, "prometheus-data")}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ], { PATH: process.env.PATH }, path.join(stack.logDir, "prometheus.log"));
    prometheus.start();
    await waitFor("prometheus ready", async () => (await fetch(`${promUrl}/-/ready`)).ok);
    await waitFor("every target up", async () => {
      const r = await query("up");
      return r.data.result.length === 4 && r.data.result.every((s) => (s as { value: [number, string] }).value[1] === "1");
    });

    // Real jobs while Prometheus scrapes: a training, then a video that fails in tts (every
    // in-process retry too) and succeeds when its user retries it.
    const a = await stack.withLogs(() => Client.signup(stack.url, "alice"));
    const { profile } = await stack.withLogs(() => a.trainedProfile(samples));
    const { job: queued } = await a.createVideo({ profileId: profile.id, narration: "Metrics, live.", pipeline: "sadtalker" });
    const first = await a.waitJob(queued.id, { timeoutMs: 90_000 });
    expect(first.state, JSON.stringify(summarize(first))).toBe("failed");
    await a.json<Job>("POST", `/v1/jobs/${queued.id}/retry`, undefined, 202);
    video = await a.waitJob(queued.id, { timeoutMs: 90_000 });
    expect(video.state, JSON.stringify(summarize(video))).toBe("succeeded");
    // The last events are scraped (1 s) and the rules evaluated (1 s) after the job ended.
    await waitFor("the retried job's success scraped", async () => {
      const r = await query('sum(likeness_jobs_finalized_total{kind="generate_video",state="succeeded"})');
      return r.data.result.length === 1 && (r.data.result[0] as { value: [number, string] }).value[1] === "1";
    });
    await new Promise((r) => setTimeout(r, 2_500));
  }, 300_000);

  afterAll(async () => {
    await prometheus?.stop(5_000);
    await exporter?.stop(5_000);
    await stack?.close();
  });

  test("promtool and prometheus load the repository's config; only the jobs that cannot run here are left out", async () => {
    expect(video.attempt).toBe(2);
    expect(dropped.sort()).toEqual(Object.keys(NOT_RUNNABLE_HERE).sort());
    const targets = (await (await fetch(`${promUrl}/api/v1/targets`)).json()) as { data: { activeTargets: { labels: { job: string }; health: string }[] } };
    expect(targets.data.activeTargets.map((t) => `${t.labels.job}:${t.health}`).sort()).toEqual(["api:up", "prometheus:up", "redis:up", "worker:up"]);
  });

  test("every Grafana panel's query returns at least one series", async () => {
    const empty: string[] = [];
    const exempt = new Set<string>();
    for (const { panel, expr } of dashboardQueries()) {
      const exporterName = EXPORTER_OF_METRIC.find(([re]) => re.test(expr))?.[1];
      if (exporterName) {
        expect(NOT_RUNNABLE_HERE[exporterName], `${panel}: ${exporterName}`).toBeDefined();
        exempt.add(panel);
        continue;
      }
      const r = await query(expr);
      expect(r.status, `${panel}: ${expr}: ${r.error}`).toBe("success");
      if (r.data.result.length === 0) empty.push(`${panel}: ${expr}`);
    }
    expect(empty, "panels with no series").toEqual([]);
    // Only the container and GPU panels are left to a real deployment.
    expect([...exempt].sort()).toEqual(["Container CPU", "Container memory (working set)", "GPU utilisation and memory (DCGM, profile gpu)"]);
  });

  test("every alert rule evaluates against the real metrics, and none fires on a healthy stack", async () => {
    const rules = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as RuleGroups;
    const all = rules.data.groups.flatMap((g) => g.rules);
    expect(all.length).toBeGreaterThanOrEqual(6);
    for (const rule of all) {
      expect(rule.health, `${rule.name}: ${rule.lastError ?? ""}`).toBe("ok");
    }
    const alerts = (await (await fetch(`${promUrl}/api/v1/alerts`)).json()) as { data: { alerts: { labels: { alertname: string }; state: string }[] } };
    expect(alerts.data.alerts.map((a) => `${a.labels.alertname} ${a.state}`)).toEqual([]);
  });
});
