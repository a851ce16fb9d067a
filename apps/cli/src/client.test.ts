// The HTTP client and --wait against tiny local servers (http + WebSocket).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { ApiClient } from "./client.js";
import { ApiError, ConnectionError } from "./errors.js";
import { WaitInterrupted, waitForJob } from "./wait.js";
import { at, ev, JOB_ID, trainJob } from "./test/fixtures.js";

type Handler = (req: IncomingMessage, body: Buffer, res: ServerResponse) => void;
let server: Server | undefined;
let wss: WebSocketServer | undefined;

async function serve(handler: Handler): Promise<string> {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => handler(req, Buffer.concat(chunks), res));
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const send = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
};

afterEach(async () => {
  wss?.close();
  wss = undefined;
  server?.closeAllConnections();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
});

describe("ApiClient over HTTP", () => {
  it("sends the bearer token and checks the answer against the contract", async () => {
    let auth: string | undefined;
    const url = await serve((req, _b, res) => {
      auth = req.headers.authorization;
      expect(req.url).toBe(`/v1/jobs/${JOB_ID}`);
      send(res, 200, trainJob());
    });
    const job = await new ApiClient(url, "tok").getJob(JOB_ID);
    expect(auth).toBe("Bearer tok");
    expect(job.id).toBe(JOB_ID);
  });

  it("signup posts JSON without a token", async () => {
    let seen: { auth?: string; type?: string; body?: unknown } = {};
    const url = await serve((req, body, res) => {
      seen = { auth: req.headers.authorization, type: req.headers["content-type"], body: JSON.parse(String(body)) };
      send(res, 201, { user: { id: "44444444-4444-4444-8444-444444444444", email: "a@b.co", createdAt: at(0) }, token: "secret" });
    });
    const s = await new ApiClient(url, "old").signup("a@b.co", "pw");
    expect(s.token).toBe("secret");
    expect(seen).toEqual({ auth: undefined, type: "application/json", body: { email: "a@b.co", password: "pw" } });
  });

  it("uploads a profile as multipart with one part per photo", async () => {
    let type = "";
    let body = "";
    const url = await serve((req, b, res) => {
      type = req.headers["content-type"] ?? "";
      body = b.toString("latin1");
      send(res, 400, { error: "bad_input", field: "images[1]", message: "no face found" });
    });
    const img = (name: string) => ({ name, type: "image/png", data: new Uint8Array(Buffer.from(`PNG-${name}`)) });
    const err = await new ApiClient(url, "t")
      .createProfile("Ada", [img("one.png"), img("two.png")], { name: "v.wav", type: "audio/wav", data: new Uint8Array(Buffer.from("RIFF")) })
      .catch((e: unknown) => e);
    expect(type).toMatch(/^multipart\/form-data; boundary=/);
    expect(body.match(/name="images"; filename="(one|two)\.png"/g)).toHaveLength(2);
    expect(body).toContain('name="voice"; filename="v.wav"');
    expect(body).toContain("PNG-two.png");
    expect(body).toMatch(/name="name"\r\n\r\nAda\r\n/);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).body).toEqual({ error: "bad_input", field: "images[1]", message: "no face found" });
  });

  it("refuses an answer that breaks the contract", async () => {
    const url = await serve((_q, _b, res) => send(res, 200, { id: "not-a-uuid" }));
    await expect(new ApiClient(url, "t").getJob(JOB_ID)).rejects.toThrow(/unexpected answer from the api/);
  });

  it("downloads a video to a file", async () => {
    const url = await serve((req, _b, res) => {
      expect(req.url).toBe("/v1/videos/v1/file");
      res.writeHead(200, { "content-type": "video/mp4" });
      res.end(Buffer.alloc(100_000, 7));
    });
    const out = join(await mkdtemp(join(tmpdir(), "lk-dl-")), "v.mp4");
    expect(await new ApiClient(url, "t").downloadVideo("v1", out)).toBe(100_000);
    expect((await readFile(out)).length).toBe(100_000);
  });

  it("an unreachable api is a ConnectionError", async () => {
    const url = await serve(() => {});
    server!.close();
    await new Promise((r) => setTimeout(r, 20));
    await expect(new ApiClient(url, "t").getJob(JOB_ID)).rejects.toBeInstanceOf(ConnectionError);
  });
});

describe("--wait over the WebSocket", () => {
  it("follows updates to the end, prints plain lines, and returns the recorded job", async () => {
    const done = trainJob({ state: "failed", finishedAt: at(3), error: { code: "bad_input", message: "no face found in any photo", retryable: false, step: "prepare" } });
    const url = await serve((req, _b, res) => {
      expect(req.url).toBe(`/v1/jobs/${JOB_ID}`);
      send(res, 200, done);
    });
    let token: string | null = null;
    wss = new WebSocketServer({ server });
    wss.on("connection", (ws, req) => {
      token = new URL(req.url!, "http://x").searchParams.get("token");
      for (const u of [{ type: "job", job: trainJob() }, ev.stepStarted("prepare", 0), ev.progress("prepare", 0.5), ev.stepFailed("prepare", 1), ev.finished("failed", 1)]) {
        ws.send(JSON.stringify(u));
      }
      // The api's finalized snapshot follows job_finished a little later; --wait waits for it.
      setTimeout(() => ws.send(JSON.stringify({ type: "job", job: done })), 50);
    });
    const lines: string[] = [];
    const job = await waitForJob(new ApiClient(url, "tok"), JOB_ID, { write: (s) => void lines.push(s), isTTY: false });
    expect(token).toBe("tok");
    expect(job.state).toBe("failed");
    expect(lines.join("")).toBe(
      [
        `job ${JOB_ID} train_profile queued`,
        "step prepare started (dataset)",
        "progress prepare 50%",
        "step prepare failed (dataset): bad_input: no face found in any photo",
        "job failed: prepare: bad_input: no face found in any photo",
        `job ${JOB_ID} train_profile failed`,
        "",
      ].join("\n"),
    );
  });

  it("falls back to polling when the WebSocket is refused", async () => {
    let polls = 0;
    const url = await serve((req, _b, res) => {
      if (req.headers.upgrade) return send(res, 404, { error: "not_found", message: "no" });
      polls++;
      send(res, 200, polls < 3 ? trainJob({ state: "running" }) : trainJob({ state: "succeeded", finishedAt: at(9) }));
    });
    server!.on("upgrade", (_req, socket) => socket.end("HTTP/1.1 404 Not Found\r\n\r\n"));
    const job = await waitForJob(new ApiClient(url, "t"), JOB_ID, { write: () => {}, isTTY: false }, { pollMs: 10 });
    expect(job.state).toBe("succeeded");
    expect(polls).toBeGreaterThanOrEqual(3);
  });

  it("Ctrl-C (abort) stops following with WaitInterrupted and never cancels the job", async () => {
    const requests: string[] = [];
    const url = await serve((req, _b, res) => {
      requests.push(`${req.method} ${req.url}`);
      send(res, 200, trainJob({ state: "running" }));
    });
    wss = new WebSocketServer({ server });
    wss.on("connection", (ws) => ws.send(JSON.stringify({ type: "job", job: trainJob({ state: "running" }) })));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    await expect(waitForJob(new ApiClient(url, "t"), JOB_ID, { write: () => {}, isTTY: false }, { signal: controller.signal })).rejects.toBeInstanceOf(
      WaitInterrupted,
    );
    expect(Date.now() - started).toBeLessThan(2000);
    expect(requests.filter((r) => r.startsWith("POST"))).toEqual([]);
  });

  it("keeps asking while the api is unreachable (a restart), says so, then goes on", async () => {
    let calls = 0;
    const client = {
      eventsUrl: () => "ws://127.0.0.1:1/closed",
      getJob: async () => {
        calls++;
        if (calls <= 2) throw new ConnectionError("http://api.test", "ECONNREFUSED");
        return trainJob({ state: "succeeded", finishedAt: at(9) });
      },
    } as unknown as ApiClient;
    const lines: string[] = [];
    const job = await waitForJob(client, JOB_ID, { write: (s) => void lines.push(s), isTTY: false }, { pollMs: 10 });
    expect(job.state).toBe("succeeded");
    const text = lines.join("");
    expect(text).toContain("the api at http://api.test cannot be reached (ECONNREFUSED); retrying for up to 120 s");
    expect(text).toContain("the api answers again");
  });

  it("gives up with the ConnectionError once the api stays away too long", async () => {
    const client = {
      eventsUrl: () => "ws://127.0.0.1:1/closed",
      getJob: async () => {
        throw new ConnectionError("http://api.test", "ECONNREFUSED");
      },
    } as unknown as ApiClient;
    await expect(waitForJob(client, JOB_ID, { write: () => {}, isTTY: false }, { unreachableMs: 0 })).rejects.toBeInstanceOf(ConnectionError);
  });
});
