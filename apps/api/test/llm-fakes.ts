// Fake LLM servers that speak the documented protocols: Ollama's /api/chat (NDJSON stream, `format`
// JSON Schema, `{"error"}` lines) and /api/tags, and an OpenAI-compatible /v1/chat/completions
// (response_format json_schema, Bearer key) and /v1/models. Each writes a script about the topic
// it finds between the <topic> tags of the last user message, and keeps the requests it got.
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeLlm {
  url: string;
  requests: { path: string; headers: http.IncomingHttpHeaders; body: Record<string, unknown> }[];
  /** What the next chat answers: a script, a stream cut by an error line, an off-topic script, or HTTP 500. */
  mode: "ok" | "error-line" | "off-topic" | "http-500";
  close(): Promise<void>;
}

function topicOf(body: Record<string, unknown>): string {
  const messages = (body.messages ?? []) as { role: string; content: string }[];
  const last = [...messages].reverse().find((m) => m.role === "user")?.content ?? "";
  return /<topic>([\s\S]*?)<\/topic>/.exec(last)?.[1]?.trim() ?? "nothing";
}

function scriptAbout(topic: string, mode: FakeLlm["mode"]): string {
  if (mode === "off-topic") return JSON.stringify({ title: "Cats", stage: "a person with a cat", narration: "Cats sleep a lot during the day." });
  return JSON.stringify({
    title: `All about ${topic}`,
    stage: "the presenter standing in a bright studio, a plain grey wall behind, soft light",
    narration: `Today I will tell you about ${topic}. It is a subject worth a minute of your time.`,
  });
}

async function listen(handler: http.RequestListener): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  let raw = "";
  for await (const chunk of req) raw += String(chunk);
  return raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
}

export async function fakeOllama(models = ["llama3.2:latest"]): Promise<FakeLlm> {
  const fake = { requests: [], mode: "ok" } as unknown as FakeLlm;
  const { server, url } = await listen(async (req, res) => {
    const body = await readJson(req);
    fake.requests.push({ path: req.url ?? "", headers: req.headers, body });
    if (req.method === "GET" && req.url === "/api/tags") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ models: models.map((name) => ({ name, model: name, size: 1 })) }));
      return;
    }
    if (req.method !== "POST" || req.url !== "/api/chat") {
      res.writeHead(404).end("404 page not found");
      return;
    }
    if (fake.mode === "http-500") {
      res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ error: "model failed to load" }));
      return;
    }
    res.writeHead(200, { "content-type": "application/x-ndjson" });
    const text = scriptAbout(topicOf(body), fake.mode);
    const line = (o: unknown) => res.write(JSON.stringify(o) + "\n");
    // Split across lines (and one line across two writes), as a stream of tokens arrives.
    const pieces = text.match(/.{1,7}/gs) ?? [];
    for (const [i, piece] of pieces.entries()) {
      if (fake.mode === "error-line" && i === 3) {
        line({ error: "an error was encountered while running the model: unexpected EOF" });
        res.end();
        return;
      }
      const l = JSON.stringify({ model: body.model, created_at: new Date().toISOString(), message: { role: "assistant", content: piece }, done: false }) + "\n";
      res.write(l.slice(0, 10));
      res.write(l.slice(10));
    }
    line({ model: body.model, created_at: new Date().toISOString(), message: { role: "assistant", content: "" }, done: true, done_reason: "stop" });
    res.end();
  });
  return Object.assign(fake, { url, close: () => new Promise<void>((r) => server.close(() => r())) });
}

export async function fakeOpenAi(apiKey: string, model = "test-model"): Promise<FakeLlm> {
  const fake = { requests: [], mode: "ok" } as unknown as FakeLlm;
  const { server, url } = await listen(async (req, res) => {
    const body = await readJson(req);
    fake.requests.push({ path: req.url ?? "", headers: req.headers, body });
    const json = (status: number, o: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(o));
    if (req.headers.authorization !== `Bearer ${apiKey}`) {
      json(401, { error: { message: "Incorrect API key provided", type: "invalid_request_error", code: "invalid_api_key" } });
      return;
    }
    if (req.method === "GET" && req.url === "/v1/models") return json(200, { object: "list", data: [{ id: model, object: "model" }] });
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") return json(404, { error: { message: "not found" } });
    if (fake.mode === "http-500") return json(500, { error: { message: "upstream overloaded" } });
    json(200, {
      id: "chatcmpl-1",
      object: "chat.completion",
      model,
      choices: [{ index: 0, message: { role: "assistant", content: scriptAbout(topicOf(body), fake.mode), refusal: null }, finish_reason: "stop" }],
    });
  });
  return Object.assign(fake, { url: `${url}/v1`, close: () => new Promise<void>((r) => server.close(() => r())) });
}
