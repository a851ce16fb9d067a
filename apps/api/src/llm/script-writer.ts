// The port of the `script` step's LLM engines: topic → {title, stage, narration}. Each engine is an
// adapter over one kind of LLM server, or the model built in (local.writer.ts).
import type { Script } from "@likeness/contracts";
import type { ScriptRequest } from "./prompt.js";

export interface EngineHealth {
  healthy: boolean;
  /** Why it cannot run now, when not healthy. */
  problem?: string;
}

export interface ScriptWriter {
  /** The engine name a request's `engines.llm` chooses it by. */
  readonly name: string;
  /** SPDX expression, or LicenseRef, of the model or server behind it. */
  readonly licence: string;
  readonly device: "cpu" | "gpu";
  write(req: ScriptRequest, signal: AbortSignal): Promise<Script>;
  health(): Promise<EngineHealth>;
  close?(): Promise<void>;
}

/**
 * The LLM could not be reached or did not answer in time: the step fails as `llm_unavailable`
 * (retryable). An answer that breaks the schema is a ScriptRejected (prompt.ts) instead.
 */
export class LlmUnavailable extends Error {
  override name = "LlmUnavailable";
}

/** fetch with the step's signal and a time limit; network failures are LlmUnavailable. */
export async function llmFetch(url: string, init: RequestInit, what: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (err) {
    if (init.signal?.aborted) throw new LlmUnavailable(`${what}: no answer in time`);
    throw new LlmUnavailable(`${what}: cannot reach ${new URL(url).origin}: ${(err as Error).cause ?? (err as Error).message}`);
  }
  if (!res.ok) {
    const body = (await res.text().catch(() => "")).slice(0, 300);
    throw new LlmUnavailable(`${what}: HTTP ${res.status} from ${new URL(url).origin}${body ? `: ${body}` : ""}`);
  }
  return res;
}
