// `ollama`: Ollama's /api/chat with `format` set to the script's JSON Schema, streamed as NDJSON
// (one JSON object a line; a line `{"error": …}` ends the stream with an error). Health: the model
// is among /api/tags. `keep_alive` is passed through: `0` unloads the model once the script is
// written, freeing the GPU for the heavy stages that follow on the same card.
import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type { Script } from "@likeness/contracts";
import { LLM_SCRIPT_SCHEMA, chatMessages, parseScript, targetWords, type ScriptRequest } from "./prompt.js";
import { LlmUnavailable, llmFetch, type EngineHealth, type ScriptWriter } from "./script-writer.js";

export interface OllamaConfig {
  url: string;
  model: string;
  /** Ollama's keep_alive: a duration ("5m") or seconds; "0" unloads right after. */
  keepAlive: string;
}

interface ChatLine {
  message?: { content?: string };
  done?: boolean;
  error?: string;
}

export class OllamaWriter implements ScriptWriter {
  readonly name = "ollama";
  readonly licence = "MIT"; // Ollama itself; the model pulled into it has its own terms
  readonly device = "gpu" as const;

  constructor(private readonly cfg: OllamaConfig) {}

  async write(req: ScriptRequest, signal: AbortSignal): Promise<Script> {
    const keepAlive = /^\d+$/.test(this.cfg.keepAlive) ? Number(this.cfg.keepAlive) : this.cfg.keepAlive;
    const res = await llmFetch(
      new URL("/api/chat", this.cfg.url).href,
      {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: this.cfg.model,
          stream: true,
          format: LLM_SCRIPT_SCHEMA,
          keep_alive: keepAlive,
          options: { temperature: 0.7, repeat_penalty: 1.15, num_predict: targetWords(req) * 4 + 200 },
          messages: chatMessages(req),
        }),
        signal,
      },
      "ollama",
    );
    let text = "";
    let done = false;
    for await (const line of ndjsonLines(res, signal)) {
      let msg: ChatLine;
      try {
        msg = JSON.parse(line) as ChatLine;
      } catch {
        throw new LlmUnavailable(`ollama: a stream line is not JSON: ${line.slice(0, 200)}`);
      }
      if (msg.error) throw new LlmUnavailable(`ollama: ${msg.error.slice(0, 500)}`);
      text += msg.message?.content ?? "";
      if (msg.done) {
        done = true;
        break;
      }
    }
    if (!done) throw new LlmUnavailable("ollama: the stream ended before the answer was done");
    return parseScript(text, req);
  }

  async health(): Promise<EngineHealth> {
    try {
      const res = await llmFetch(new URL("/api/tags", this.cfg.url).href, { signal: AbortSignal.timeout(2_000) }, "ollama");
      const { models = [] } = (await res.json()) as { models?: { name: string; model?: string }[] };
      const want = this.cfg.model.includes(":") ? this.cfg.model : `${this.cfg.model}:latest`;
      if (models.some((m) => m.name === want || m.model === want || m.name === this.cfg.model)) return { healthy: true };
      return { healthy: false, problem: `model ${this.cfg.model} is not pulled (ollama pull ${this.cfg.model})` };
    } catch (err) {
      return { healthy: false, problem: (err as Error).message };
    }
  }
}

/** The lines of an NDJSON body as they arrive; a broken stream is LlmUnavailable. */
async function* ndjsonLines(res: Response, signal: AbortSignal): AsyncGenerator<string> {
  if (!res.body) throw new LlmUnavailable("ollama: empty answer");
  const lines = createInterface({ input: Readable.fromWeb(res.body as WebReadableStream), crlfDelay: Infinity });
  try {
    for await (const line of lines) if (line.trim()) yield line;
  } catch (err) {
    if (signal.aborted) throw new LlmUnavailable("ollama: no answer in time");
    throw new LlmUnavailable(`ollama: the stream broke: ${(err as Error).message}`);
  } finally {
    lines.close();
  }
}
