// The OpenAPI document at /docs/json: every route is in it, with what zod alone cannot say
// (the multipart body, the MP4 file, the WebSocket), only the error statuses a route can answer,
// and no body on a 204. And the 400 messages of request validation, in short human words.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { humanErrorMap } from "../src/http/validation.js";
import { createTestApp, describeWithServices, signUp, type TestApp } from "./support.js";

// The tests walk the document's schemas by path (`schema.properties.engines.type`...).
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a JSON Schema of any shape
type Schema = Record<string, any>;

interface Operation {
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: Schema }>; headers?: Record<string, unknown> }>;
  parameters?: Array<{ in: string; name: string; description?: string }>;
  description?: string;
  security?: unknown[];
  [key: `x-${string}`]: unknown;
}
type Doc = { paths: Record<string, Record<string, Operation>> };

const ERROR_BODY = { type: "object", required: ["error", "message"], properties: { error: {}, message: {}, field: {} } };

describeWithServices("OpenAPI document", () => {
  let t: TestApp;
  let doc: Doc;
  const routes: Array<{ method: string; url: string }> = [];

  beforeAll(async () => {
    t = await createTestApp();
    const res = await t.app.inject({ method: "GET", url: "/docs/json" });
    expect(res.statusCode).toBe(200);
    doc = res.json() as Doc;
    // Every (method, url) Fastify serves, from its printed route tree: a line's indent is its depth
    // (4 characters a level) and its segment continues its parent's path.
    const parents: string[] = [];
    for (const line of t.app.printRoutes({ commonPrefix: false }).split("\n")) {
      const start = line.search(/[^\s│├└─]/);
      const m = /^(\S+)(?: \(([A-Z, ]+)\))?$/.exec(line.slice(start).trim());
      if (start < 0 || !m) continue;
      const depth = start / 4;
      const url = (parents[depth - 1] ?? "") + m[1]!;
      parents[depth] = url;
      parents.length = depth + 1;
      for (const method of (m[2] ?? "").split(",").map((s) => s.trim()).filter(Boolean)) routes.push({ method, url });
    }
  });
  afterAll(async () => {
    await t?.close();
  });

  const op = (method: string, path: string): Operation => {
    const o = doc.paths[path]?.[method];
    if (!o) throw new Error(`${method.toUpperCase()} ${path} is not in the document`);
    return o;
  };
  const openApiPath = (url: string) => url.replace(/:(\w+)/g, "{$1}");

  it("documents every route the app serves (except /docs itself and the hidden /metrics)", () => {
    const served = routes.filter((r) => r.method !== "HEAD" && !r.url.startsWith("/docs") && r.url !== "/metrics");
    expect(served.length).toBeGreaterThanOrEqual(17);
    expect(served).toContainEqual({ method: "GET", url: "/v1/videos/:id/file" });
    expect(served).toContainEqual({ method: "GET", url: "/v1/jobs/:id/events" });
    const missing = served.filter((r) => !doc.paths[openApiPath(r.url)]?.[r.method.toLowerCase()]);
    expect(missing).toEqual([]);
    for (const path of Object.keys(doc.paths)) expect(path.startsWith("/docs")).toBe(false);
  });

  it("documents the multipart body of POST /v1/profiles without validating one", () => {
    const body = op("post", "/v1/profiles").requestBody;
    expect(Object.keys(body?.content ?? {})).toEqual(["multipart/form-data"]);
    const schema = body!.content["multipart/form-data"]!.schema;
    expect(schema.required).toEqual(expect.arrayContaining(["name", "images", "voice"]));
    expect(schema.required).not.toContain("triggerWord");
    expect(schema.properties.name).toMatchObject({ type: "string" });
    expect(schema.properties.triggerWord).toMatchObject({ type: "string" });
    expect(schema.properties.images).toMatchObject({ type: "array", minItems: 1, maxItems: 50, items: { type: "string", format: "binary" } });
    expect(schema.properties.images.description).toMatch(/20 MiB/);
    expect(schema.properties.voice).toMatchObject({ type: "string", format: "binary" });
    expect(schema.properties.voice.description).toMatch(/3\.\.300 s/);
    // Every limit the upload check enforces (contracts UPLOAD_LIMITS) is in the field's description.
    expect(schema.properties.images.description).toMatch(/40 megapixels/);
    expect(schema.properties.images.description).toMatch(/64 px/);
    expect(schema.properties.voice.description).toMatch(/50 MiB/);
  });

  it("says that POST /v1/videos takes a profile and exactly one of narration or topic, or `from` (anyOf), as the route checks", async () => {
    const body = op("post", "/v1/videos").requestBody!.content["application/json"]!.schema;
    expect(body.required ?? []).toEqual([]);
    expect(body.anyOf).toEqual([{ required: ["profileId", "narration"] }, { required: ["profileId", "topic"] }, { required: ["from"] }]);
    expect(body.description).toMatch(/exactly one of `narration`.*`from`/s);
    // What the schema now refuses, the route refuses; what it accepts gets past validation.
    const user = await signUp(t.app);
    const post = (payload: Record<string, unknown>) =>
      t.app.inject({ method: "POST", url: "/v1/videos", headers: user.auth, payload: { profileId: randomUUID(), ...payload } });
    for (const payload of [{}, { narration: "hi", topic: "cats" }]) {
      const res = await post(payload);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ field: "narration", message: "narration: give exactly one of narration or topic" });
    }
    expect((await post({ narration: "hi" })).statusCode).toBe(404); // past validation: no such profile
    expect((await post({ topic: "cats" })).statusCode).toBe(404); // a topic alone is valid too
  });

  it("answers 401 before any validation on every route that declares security", async () => {
    const secured = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods)
        .filter(([, o]) => (o.security?.length ?? 0) > 0)
        .map(([method]) => ({ method: method.toUpperCase(), url: path.replace(/\{\w+\}/g, "not-a-uuid") })),
    );
    expect(secured.length).toBeGreaterThanOrEqual(14);
    for (const { method, url } of secured) {
      const badBodies = method === "GET" || method === "DELETE" ? [undefined] : [{}, "{not json", { narration: 1, width: -1 }];
      for (const payload of badBodies) {
        const res = await t.app.inject({
          method: method as "GET",
          url: `${url}?download=maybe`,
          ...(payload === undefined ? {} : { payload, headers: { "content-type": "application/json" } }),
        });
        expect(res.statusCode, `${method} ${url} ${JSON.stringify(payload)}: ${res.body}`).toBe(401);
        expect(res.json()).toMatchObject({ error: "unauthorized" });
      }
    }
  });

  it("documents the MP4 of GET /v1/videos/{id}/file: 200, 206, 416, Range and ?download", () => {
    const file = op("get", "/v1/videos/{id}/file");
    for (const status of ["200", "206"]) {
      expect(file.responses[status]?.content?.["video/mp4"]?.schema).toMatchObject({ type: "string", format: "binary" });
    }
    expect(file.responses["206"]?.headers).toHaveProperty("Content-Range");
    expect(file.responses["416"]?.content?.["application/json"]?.schema).toMatchObject(ERROR_BODY);
    const params = file.parameters ?? [];
    expect(params.find((p) => p.in === "header" && p.name.toLowerCase() === "range")?.description).toMatch(/bytes=/);
    expect(params.find((p) => p.in === "query" && p.name === "download")?.description).toMatch(/attachment/);
  });

  it("documents the WebSocket: 101, auth by header or ?token=, the JobUpdate messages", () => {
    const ws = op("get", "/v1/jobs/{id}/events");
    expect(ws.responses["101"]).toBeDefined();
    expect(ws.responses["101"]!.content).toBeUndefined();
    expect(ws.description).toMatch(/\?token=/);
    expect(ws.description).toMatch(/Authorization: Bearer/);
    expect(ws.description).toMatch(/"job"[\s\S]*"event"[\s\S]*"progress"/);
    expect(ws.parameters?.some((p) => p.in === "query" && p.name === "token")).toBe(true);
    const messages = ws["x-websocket-messages"] as { oneOf: Array<{ properties: { type: { enum: string[] } } }> };
    expect(messages.oneOf.map((m) => m.properties.type.enum[0])).toEqual(["job", "event", "progress"]);
  });

  it("lists only the error statuses a route can answer, each an ErrorBody; a 204 has no body", () => {
    const errorsOf = (method: string, path: string) =>
      Object.keys(op(method, path).responses).filter((s) => Number(s) >= 400).sort();
    expect(errorsOf("get", "/v1/videos")).toEqual(["401"]);
    expect(errorsOf("get", "/v1/profiles")).toEqual(["401"]);
    expect(errorsOf("get", "/v1/jobs/{id}")).toEqual(["400", "401", "404"]);
    expect(errorsOf("get", "/v1/videos/{id}")).toEqual(["400", "401", "404"]);
    expect(errorsOf("post", "/v1/profiles")).toEqual(["400", "401", "409", "413", "415"]);
    expect(errorsOf("get", "/v1/videos/{id}/file")).toEqual(["400", "401", "404", "409", "416"]);

    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, o] of Object.entries(methods)) {
        for (const [status, r] of Object.entries(o.responses)) {
          if (status === "204" || status === "101") {
            expect(r.content, `${method} ${path} ${status}`).toBeUndefined();
          } else if (Number(status) >= 400 && path !== "/healthz") {
            expect(r.content?.["application/json"]?.schema, `${method} ${path} ${status}`).toMatchObject(ERROR_BODY);
            expect(r.description).not.toBe("Default Response");
          }
        }
      }
    }
    expect(op("post", "/v1/auth/logout").responses["204"]).toBeDefined();
    expect(op("delete", "/v1/profiles/{id}").responses["204"]).toBeDefined();
  });

  it("documents the subtitle modes of POST /v1/videos and the mode on a video", () => {
    const body = op("post", "/v1/videos").requestBody!.content["application/json"]!.schema;
    const subtitles = body.properties.subtitles;
    expect(subtitles.description).toMatch(/`soft` \(default\)/); // filled in by the api: an edit keeps its source's
    expect(subtitles.anyOf).toContainEqual(expect.objectContaining({ type: "string", enum: ["soft", "burned", "none"] }));
    expect(subtitles.description).toMatch(/burned/);
    const video = op("get", "/v1/videos/{id}").responses["200"]!.content!["application/json"]!.schema;
    expect(video.properties.subtitles).toMatchObject({ type: "string", enum: ["soft", "burned", "none"] });
    expect(video.required).toContain("subtitles");
  });

  it("documents what each step of a job reports (its outputs), null until it succeeds", () => {
    const job = op("get", "/v1/jobs/{id}").responses["200"]!.content!["application/json"]!.schema;
    const step = job.properties.steps.items;
    expect(step.required).toContain("outputs");
    expect(step.properties.outputs).toMatchObject({ type: "object", nullable: true });
    expect(step.properties.outputs.description).toMatch(/why upscale was skipped/);
    expect(step.properties.outputs.description).toMatch(/storage keys/);
  });

  it("documents the engines: GET /v1/engines, the `engines` of a video, of a training and of a profile", () => {
    const list = op("get", "/v1/engines");
    expect(list.security).toEqual([{ bearer: [] }]);
    const listed = list.responses["200"]!.content!["application/json"]!.schema;
    expect(listed.required).toEqual(expect.arrayContaining(["engines", "workers"]));
    expect(listed.properties.engines.items.required).toEqual(
      expect.arrayContaining(["taskKind", "name", "device", "licence", "healthy", "default", "workers", "healthyWorkers", "runsIn"]),
    );
    expect(list.description).toMatch(/400/);
    for (const [method, path] of [["post", "/v1/videos"], ["post", "/v1/profiles/{id}/train"], ["put", "/v1/profiles/{id}/engines"]] as const) {
      const body = op(method, path).requestBody!.content["application/json"]!.schema;
      const engines = body.properties.engines;
      expect(engines, `${method} ${path}`).toBeDefined();
      expect(engines.description, `${method} ${path}`).toMatch(/engines\.<kind>/);
      expect(Object.keys(engines.properties ?? {}), `${method} ${path}`).toContain("tts");
    }
    expect(op("post", "/v1/videos").requestBody!.content["application/json"]!.schema.required ?? []).not.toContain("engines");
    expect(Object.keys(op("put", "/v1/profiles/{id}/engines").responses).filter((s) => s >= "400").sort()).toEqual(["400", "401", "404"]);
    const job = op("get", "/v1/jobs/{id}").responses["200"]!.content!["application/json"]!.schema;
    expect(job.properties.engines).toBeDefined();
  });

  it("the documented WebSocket route still upgrades, and a plain GET is still refused", async () => {
    const user = await signUp(t.app);
    const plain = await t.app.inject({ method: "GET", url: `/v1/jobs/${randomUUID()}/events`, headers: user.auth });
    expect(plain.statusCode).toBe(404);
    const unauthenticated = await t.app.inject({ method: "GET", url: `/v1/jobs/${randomUUID()}/events` });
    expect(unauthenticated.statusCode).toBe(401);
  });

});

describeWithServices("validation messages", () => {
  let t: TestApp;
  let auth: Record<string, string>;
  beforeAll(async () => {
    t = await createTestApp();
    auth = (await signUp(t.app)).auth;
  });
  afterAll(async () => {
    await t?.close();
  });

  const createVideo = (payload: Record<string, unknown>) =>
    t.app.inject({ method: "POST", url: "/v1/videos", headers: auth, payload: { profileId: randomUUID(), ...payload } });

  it.each([
    ["an empty narration", { narration: "   " }, "narration", "narration: must not be empty"],
    ["a narration too long", { narration: "x".repeat(5001) }, "narration", "narration: must be at most 5000 characters"],
    ["an odd width", { narration: "hi", width: 513 }, "width", "width: must be an even number"],
    ["a width too small", { narration: "hi", width: 64 }, "width", "width: must be at least 128"],
    ["a profileId that is not a UUID", { narration: "hi", profileId: "abc" }, "profileId", "profileId: must be a UUID"],
    ["neither narration nor topic", {}, "narration", "narration: give exactly one of narration or topic"],
    ["an unknown pipeline", { narration: "hi", pipeline: "nope" }, "pipeline", /^pipeline: must be one of "/],
    ["an unknown subtitle mode", { narration: "hi", subtitles: "yes" }, "subtitles", 'subtitles: must be "soft", "burned" or "none"'],
    ["a number for a subtitle mode", { narration: "hi", subtitles: 1 }, "subtitles", 'subtitles: must be "soft", "burned" or "none"'],
  ])("POST /v1/videos with %s: 400 naming the field", async (_what, payload, field, message) => {
    const res = await createVideo(payload);
    expect(res.statusCode, res.body).toBe(400);
    const body = res.json();
    expect(body).toMatchObject({ error: "validation", field });
    if (typeof message === "string") expect(body.message).toBe(message);
    else expect(body.message).toMatch(message);
    expect(body.message).not.toMatch(/Too small|Too big|Invalid|expected/);
  });

  it("names a path parameter that is not a UUID", async () => {
    const res = await t.app.inject({ method: "GET", url: "/v1/jobs/not-a-uuid", headers: auth });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({ error: "validation", field: "id", message: "id: must be a UUID" });
  });

  it("keeps a message the schema sets itself, and says a missing field is required", async () => {
    const short = await t.app.inject({ method: "POST", url: "/v1/auth/signup", payload: { email: "a@example.com", password: "short" } });
    expect(short.json()).toMatchObject({ error: "validation", field: "password", message: "password: at least 10 characters" });
    const missing = await t.app.inject({ method: "POST", url: "/v1/auth/signup", payload: { password: "correct horse battery" } });
    expect(missing.json()).toMatchObject({ error: "validation", field: "email", message: "email: is required" });
    const badEmail = await t.app.inject({ method: "POST", url: "/v1/auth/signup", payload: { email: "nope", password: "correct horse battery" } });
    expect(badEmail.json()).toMatchObject({ field: "email", message: "email: must be an email address" });
  });
});

describe("humanErrorMap", () => {
  it("words zod's issues briefly, and leaves a schema's own message alone", () => {
    const S = z.object({ a: z.string().min(1), b: z.array(z.string()).max(2), c: z.string().min(3, "custom words") });
    const r = S.safeParse({ a: "", b: ["x", "y", "z"], c: "" }, { error: humanErrorMap });
    expect(r.error?.issues.map((i) => i.message)).toEqual(["must not be empty", "must be at most 2 items", "custom words"]);
  });
});
