// `openai`: any OpenAI-compatible server (vLLM, llama.cpp's server, LM Studio, hosted ones):
// /chat/completions with `response_format` json_schema. The key goes in the Authorization header
// only; it is never logged (config keeps it out of what is printed). Health: /models answers.
import type { Script } from "@likeness/contracts";
import { LLM_SCRIPT_SCHEMA, chatMessages, parseScript, targetWords, type ScriptRequest } from "./prompt.js";
import { LlmUnavailable, llmFetch, type EngineHealth, type ScriptWriter } from "./script-writer.js";

export interface OpenAiConfig {
  /** Up to and including the version, e.g. http://vllm:8000/v1 */
  baseUrl: string;
  model: string;
  apiKey: string | undefined;
}

export class OpenAiWriter implements ScriptWriter {
  readonly name = "openai";
  readonly licence = "LicenseRef-Remote-Service"; // whatever serves the model sets its terms
  readonly device = "gpu" as const;

  constructor(private readonly cfg: OpenAiConfig) {}

  private url(path: string): string {
    return `${this.cfg.baseUrl.replace(/\/+$/, "")}${path}`;
  }

  private headers(): Record<string, string> {
    return { "content-type": "application/json", ...(this.cfg.apiKey ? { authorization: `Bearer ${this.cfg.apiKey}` } : {}) };
  }

  async write(req: ScriptRequest, signal: AbortSignal): Promise<Script> {
    const res = await llmFetch(
      this.url("/chat/completions"),
      {
        method: "POST",
        headers: this.headers(),
        body: JSON.stringify({
          model: this.cfg.model,
          temperature: 0.7,
          max_tokens: targetWords(req) * 4 + 200,
          response_format: { type: "json_schema", json_schema: { name: "script", strict: true, schema: LLM_SCRIPT_SCHEMA } },
          messages: chatMessages(req),
        }),
        signal,
      },
      "openai",
    );
    const body = (await res.json().catch(() => null)) as { choices?: { message?: { content?: string | null; refusal?: string | null } }[] } | null;
    const message = body?.choices?.[0]?.message;
    if (message?.refusal) throw new LlmUnavailable(`openai: the model refused: ${message.refusal.slice(0, 300)}`);
    if (typeof message?.content !== "string") throw new LlmUnavailable("openai: the answer has no choices[0].message.content");
    return parseScript(message.content, req);
  }

  async health(): Promise<EngineHealth> {
    try {
      await llmFetch(this.url("/models"), { headers: this.headers(), signal: AbortSignal.timeout(2_000) }, "openai");
      return { healthy: true };
    } catch (err) {
      return { healthy: false, problem: (err as Error).message };
    }
  }
}
