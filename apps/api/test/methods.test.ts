// Methods the api does not declare on a path it does: 405 with `Allow`, at once, also when the
// request carries WebSocket upgrade headers (it used to hang for 10 s on the WebSocket route).
import { randomBytes, randomUUID } from "node:crypto";
import net from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestApp, describeWithServices, signUp, type TestApp } from "./support.js";

describeWithServices("undeclared methods", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it.each([
    ["TRACE", "/v1/videos", "GET, POST"],
    ["PATCH", "/v1/jobs/{id}", "GET"],
    ["PUT", "/v1/videos/{id}", "DELETE, GET"],
    ["PUT", "/v1/profiles", "GET, POST"],
    ["POST", "/v1/jobs/{id}/events", "GET"],
    ["GET", "/v1/auth/login", "POST"],
  ])("%s %s: 405 with Allow listing %s (and HEAD with GET)", async (method, path, declared) => {
    const user = await signUp(t.app);
    const url = path.replace("{id}", randomUUID());
    const res = await t.app.inject({ method: method as "GET", url, headers: user.auth });
    expect(res.statusCode, res.body).toBe(405);
    const allow = String(res.headers.allow).split(", ");
    const expected = declared.split(", ");
    if (expected.includes("GET")) expected.push("HEAD");
    expect(allow.sort()).toEqual(expected.sort());
    expect(res.json()).toEqual({ error: "method_not_allowed", message: `${method} is not allowed on ${url} (allowed: ${res.headers.allow})` });
  });

  it("a path the api does not declare is still 404; a declared method is unaffected", async () => {
    const none = await t.app.inject({ method: "PATCH", url: "/v1/nope" });
    expect(none.statusCode).toBe(404);
    expect(none.headers.allow).toBeUndefined();
    expect(none.json()).toMatchObject({ error: "not_found" });
    expect((await t.app.inject({ method: "GET", url: "/v1/videos" })).statusCode).toBe(401);
    const upgrade = { connection: "Upgrade", upgrade: "websocket" };
    expect((await t.app.inject({ method: "POST", url: "/v1/nope", headers: upgrade, payload: {} })).statusCode).toBe(404);
    expect((await t.app.inject({ method: "POST", url: "/v1/videos/x/file", headers: upgrade, payload: {} })).statusCode).toBe(405);
  });

  /** Sends a POST with WebSocket upgrade headers over a real socket; the answer's head, or rejects after 3 s. */
  async function postUpgrade(path: string): Promise<string> {
    if (!t.app.server.listening) await t.app.listen({ host: "127.0.0.1", port: 0 });
    const { port } = t.app.server.address() as net.AddressInfo;
    return new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1");
      let data = "";
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no answer after 3 s (got ${JSON.stringify(data)})`));
      }, 3000);
      socket.on("error", reject);
      socket.on("data", (chunk) => {
        data += chunk.toString();
        if (data.includes("\r\n\r\n")) {
          clearTimeout(timer);
          socket.destroy();
          resolve(data);
        }
      });
      socket.write(
        [
          `POST ${path} HTTP/1.1`,
          `Host: 127.0.0.1:${port}`,
          "Connection: Upgrade",
          "Upgrade: websocket",
          "Sec-WebSocket-Version: 13",
          `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}`,
          "Content-Type: application/json",
          "Content-Length: 2",
          "",
          "{}",
        ].join("\r\n"),
      );
    });
  }

  it("a POST with WebSocket upgrade headers to the events route is answered at once: 405, Allow GET", async () => {
    const started = Date.now();
    const head = await postUpgrade(`/v1/jobs/${randomUUID()}/events`);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(head).toMatch(/^HTTP\/1\.1 405 /);
    expect(head).toMatch(/\r\nallow: GET, HEAD\r\n/i);
  });

  it("a POST with WebSocket upgrade headers to no route is answered at once: 404", async () => {
    const started = Date.now();
    expect(await postUpgrade("/v1/nowhere")).toMatch(/^HTTP\/1\.1 404 /);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
