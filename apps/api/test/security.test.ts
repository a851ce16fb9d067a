// Attacks on the api as a whole: secrets in logs, malformed requests, another user's resources.
import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loggerOptions } from "../src/http/logger.js";
import { createTestApp, describeWithServices, signUp, type TestApp } from "./support.js";

describeWithServices("security", () => {
  let t: TestApp;
  const lines: string[] = [];
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString("utf8"));
        cb();
      },
    });
    // The logger server.ts builds (createLogger), at the most verbose level, into memory.
    t = await createTestApp({ log: pino(loggerOptions("trace"), sink) });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("never logs a token, whether sent as a header or as the WebSocket's ?token=", async () => {
    const user = await signUp(t.app);
    lines.length = 0;
    const jobId = randomUUID();
    for (const url of [`/v1/jobs/${jobId}/events?token=${user.token}`, `/v1/jobs/${jobId}/events?download=1&token=${encodeURIComponent(user.token)}&x=1`]) {
      const res = await t.app.inject({ method: "GET", url });
      expect(res.statusCode).toBe(404); // authenticated by the query token; the job is not theirs
    }
    await t.app.inject({ method: "GET", url: "/v1/me", headers: user.auth });
    await t.app.inject({ method: "POST", url: "/v1/auth/login", payload: { email: user.email, password: "correct horse battery" } });
    const log = lines.join("");
    expect(log).toContain("/events"); // requests are logged...
    expect(log).toContain("token=[redacted]");
    expect(log).not.toContain(user.token); // ...without the token
    expect(log).not.toContain(encodeURIComponent(user.token));
    expect(log).not.toContain("correct horse battery");
  });

  it("answers a malformed multipart body with 400, not 500, and stores nothing", async () => {
    const user = await signUp(t.app);
    const cases: Array<[string, string]> = [
      ["multipart/form-data", "no boundary in the content type"],
      ["multipart/form-data; boundary=XX", "a body without the boundary"],
      ["multipart/form-data; boundary=XX", '--XX\r\nContent-Disposition: form-data; name="name"\r\n\r\nAda'],
      ["multipart/form-data; boundary=XX", '--XX\r\nContent-Disposition: form-data; name="images"; filename="a.png"\r\n\r\n\x89PNG'],
    ];
    for (const [contentType, body] of cases) {
      const res = await t.app.inject({ method: "POST", url: "/v1/profiles", headers: { ...user.auth, "content-type": contentType }, body });
      expect(res.statusCode, body).toBe(400);
      expect(res.json()).toMatchObject({ error: "validation", message: expect.stringMatching(/malformed/) });
    }
    const nameless = await t.app.inject({
      method: "POST",
      url: "/v1/profiles",
      headers: { ...user.auth, "content-type": "multipart/form-data; boundary=XX" },
      body: "--XX\r\nContent-Disposition: form-data\r\n\r\nAda\r\n--XX--\r\n",
    });
    expect(nameless.statusCode).toBe(400);
    expect(nameless.json().message).toMatch(/needs a name/);
    expect(await t.db.selectFrom("profiles").select("id").where("user_id", "=", user.userId).execute()).toEqual([]);
    expect(await t.storage.list(`uploads/${user.userId}/`)).toEqual([]);
  });
});
