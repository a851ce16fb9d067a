// The `script` step's engines, one registry: `none` (a given narration, spoken as it is; see
// narration.ts), `local` (built in), and `ollama` / `openai` when their servers are
// configured. What GET /v1/engines shows of them, with health kept for a few seconds.
import { LIKENESS_LICENCE, type EngineInfo } from "@likeness/contracts";
import type { LlmConfig } from "../config.js";
import { LocalWriter } from "./local.writer.js";
import { OllamaWriter } from "./ollama.writer.js";
import { OpenAiWriter } from "./openai.writer.js";
import type { EngineHealth, ScriptWriter } from "./script-writer.js";
import { SCRIPT_ENGINE } from "./narration.js";

const HEALTH_TTL_MS = 10_000;

export class LlmEngines {
  readonly defaultName: string;
  readonly timeoutMs: number;
  private readonly preloadLocal: boolean;
  private readonly writers = new Map<string, ScriptWriter>();
  private health: { at: number; list: Promise<EngineInfo[]> } | undefined;

  constructor(cfg: LlmConfig) {
    const writers: ScriptWriter[] = [new LocalWriter(cfg.local)];
    if (cfg.ollama) writers.push(new OllamaWriter(cfg.ollama));
    if (cfg.openai) writers.push(new OpenAiWriter(cfg.openai));
    for (const w of writers) this.writers.set(w.name, w);
    this.defaultName = cfg.defaultEngine;
    this.timeoutMs = cfg.timeoutMs;
    this.preloadLocal = cfg.local.preload;
  }

  get(name: string): ScriptWriter | undefined {
    return this.writers.get(name);
  }

  /** The llm engines as GET /v1/engines lists them (health looked at every HEALTH_TTL_MS at most). */
  infos(): Promise<EngineInfo[]> {
    const now = Date.now();
    if (!this.health || now - this.health.at > HEALTH_TTL_MS) {
      this.health = { at: now, list: this.look() };
    }
    return this.health.list;
  }

  private async look(): Promise<EngineInfo[]> {
    const none: EngineInfo = { ...info(SCRIPT_ENGINE, "cpu", LIKENESS_LICENCE, { healthy: true }), default: false };
    const rest = await Promise.all(
      [...this.writers.values()].map(async (w) => ({
        ...info(w.name, w.device, w.licence, await w.health().catch((err: Error) => ({ healthy: false, problem: err.message }))),
        default: w.name === this.defaultName,
      })),
    );
    return [none, ...rest];
  }

  /**
   * Loads the built-in model now when it writes topics by default (and LLM_LOCAL_PRELOAD allows),
   * so the first topic does not wait for it; chosen per request instead, it loads at its first
   * script. A failed load shows then.
   */
  warm(): void {
    const local = this.writers.get("local");
    if (this.preloadLocal && this.defaultName === "local" && local instanceof LocalWriter) void local.warm().catch(() => undefined);
  }

  async close(): Promise<void> {
    await Promise.all([...this.writers.values()].map((w) => w.close?.()));
  }
}

function info(name: string, device: "cpu" | "gpu", licence: string, h: EngineHealth): Omit<EngineInfo, "default"> {
  return {
    taskKind: "llm",
    name,
    device,
    licence,
    nonCommercial: false, // the model's own terms are the operator's to read (Gemma's allow commercial use)
    healthy: h.healthy,
    ...(h.problem ? { problem: h.problem.slice(0, 500) } : {}),
    workers: 0,
    healthyWorkers: 0,
    runsIn: "api",
  };
}
