import { afterAll, beforeAll, expect, it } from "vitest";
import { AUTH_ATTEMPTS_PER_MINUTE } from "../src/auth/auth.routes.js";
import { describeWithServices, createTestApp, signUp, type TestApp } from "./support.js";

describeWithServices("auth", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it("signs up, logs in, answers /v1/me and logs out", async () => {
    const { app } = t;
    const signup = await app.inject({
      method: "POST",
      url: "/v1/auth/signup",
      payload: { email: "Ada@Example.com", password: "correct horse battery" },
    });
    expect(signup.statusCode).toBe(201);
    const session = signup.json();
    expect(session.user.email).toBe("ada@example.com");
    expect(session.token).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // The token is stored only as its sha256.
    const stored = await t.db.selectFrom("api_tokens").select("token_hash").execute();
    expect(stored.map((r) => r.token_hash)).not.toContain(session.token);
    const user = await t.db.selectFrom("users").select("password_hash").executeTakeFirstOrThrow();
    expect(user.password_hash).toMatch(/^\$argon2id\$/);

    const login = await app.inject({
      method: "POST",
      url: "/v1/auth/login",
      payload: { email: "ada@example.com", password: "correct horse battery" },
    });
    expect(login.statusCode).toBe(200);
    const token = login.json().token as string;
    expect(token).not.toBe(session.token);

    const me = await app.inject({ method: "GET", url: "/v1/me", headers: { authorization: `Bearer ${token}` } });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ id: session.user.id, email: "ada@example.com" });

    const out = await app.inject({ method: "POST", url: "/v1/auth/logout", headers: { authorization: `Bearer ${token}` } });
    expect(out.statusCode).toBe(204);
    const after = await app.inject({ method: "GET", url: "/v1/me", headers: { authorization: `Bearer ${token}` } });
    expect(after.statusCode).toBe(401);
    // The other token still works.
    const still = await app.inject({ method: "GET", url: "/v1/me", headers: { authorization: `Bearer ${session.token}` } });
    expect(still.statusCode).toBe(200);
  });

  it("web sessions: an httpOnly cookie, checked Origin on changes, revoked by sign-out, ended by time", async () => {
    const { app } = t;
    const site = { host: "studio.test", origin: "http://studio.test" };
    const email = `web${Date.now()}@example.com`;
    const password = "correct horse battery";

    // From another site: refused, and no account is left behind.
    const evil = await app.inject({
      method: "POST",
      url: "/v1/auth/signup",
      headers: { ...site, origin: "http://evil.test" },
      payload: { email, password, session: "cookie" },
    });
    expect(evil.statusCode, evil.body).toBe(403);
    expect(evil.json()).toMatchObject({ error: "forbidden" });
    expect(await t.db.selectFrom("users").select("id").where("email", "=", email).execute()).toEqual([]);

    const signup = await app.inject({ method: "POST", url: "/v1/auth/signup", headers: site, payload: { email, password, session: "cookie" } });
    expect(signup.statusCode, signup.body).toBe(201);
    expect(signup.json()).toEqual({ user: expect.objectContaining({ email }) }); // the token is never in the body
    const setCookie = String(signup.headers["set-cookie"]);
    expect(setCookie).toMatch(/^likeness_session=[A-Za-z0-9_-]{43};/);
    expect(setCookie).toMatch(/; HttpOnly/);
    expect(setCookie).toMatch(/; SameSite=Lax/);
    expect(setCookie).toMatch(/; Path=\//);
    expect(setCookie).not.toMatch(/; Secure/);
    const expires = new Date(/Expires=([^;]+)/.exec(setCookie)![1]!).getTime();
    expect(expires - Date.now()).toBeGreaterThan(29 * 24 * 3600 * 1000);
    const cookie = setCookie.split(";")[0]!;

    // Reads need no Origin; a change needs this site's.
    expect((await app.inject({ method: "GET", url: "/v1/me", headers: { cookie } })).json()).toMatchObject({ email });
    const noOrigin = await app.inject({ method: "POST", url: "/v1/videos", headers: { host: site.host, cookie }, payload: {} });
    expect(noOrigin.statusCode).toBe(403);
    const crossSite = await app.inject({ method: "DELETE", url: `/v1/profiles/${crypto.randomUUID()}`, headers: { ...site, origin: "http://evil.test", cookie } });
    expect(crossSite.statusCode).toBe(403);
    expect(crossSite.json().message).toMatch(/evil\.test/);
    const sameSite = await app.inject({ method: "POST", url: "/v1/videos", headers: { ...site, cookie }, payload: {} });
    expect(sameSite.statusCode).toBe(400); // past the origin check, to validation
    // A bearer token needs no Origin (the CLI), even with a stale cookie beside it.
    const { auth } = await signUp(app);
    expect((await app.inject({ method: "POST", url: "/v1/videos", headers: { ...auth, cookie: "likeness_session=stale" }, payload: {} })).statusCode).toBe(400);

    // Behind an https proxy the cookie is Secure.
    const login = await app.inject({
      method: "POST",
      url: "/v1/auth/login",
      headers: { host: site.host, origin: "https://studio.test", "x-forwarded-proto": "https" },
      payload: { email, password, session: "cookie" },
    });
    expect(login.statusCode, login.body).toBe(200);
    expect(String(login.headers["set-cookie"])).toMatch(/; Secure/);
    const second = String(login.headers["set-cookie"]).split(";")[0]!;

    // Sign-out revokes this session on the server and clears the cookie; the other session lives.
    const out = await app.inject({ method: "POST", url: "/v1/auth/logout", headers: { ...site, cookie } });
    expect(out.statusCode).toBe(204);
    expect(String(out.headers["set-cookie"])).toMatch(/^likeness_session=;.*Expires=Thu, 01 Jan 1970/);
    expect((await app.inject({ method: "GET", url: "/v1/me", headers: { cookie } })).statusCode).toBe(401);
    expect((await app.inject({ method: "GET", url: "/v1/me", headers: { cookie: second } })).statusCode).toBe(200);

    // A web session ends on its own; a CLI token does not.
    await t.db.updateTable("api_tokens").set({ expires_at: new Date(Date.now() - 1000) }).where("name", "=", "web session").execute();
    const ended = await app.inject({ method: "GET", url: "/v1/me", headers: { cookie: second } });
    expect(ended.statusCode).toBe(401);
    expect(ended.json().message).toMatch(/sign in again/);
    expect((await app.inject({ method: "GET", url: "/v1/me", headers: auth })).statusCode).toBe(200);
    // The next sign-in tidies the ended one away.
    const user = await t.db.selectFrom("users").select("id").where("email", "=", email).executeTakeFirstOrThrow();
    await app.inject({ method: "POST", url: "/v1/auth/login", headers: site, payload: { email, password, session: "cookie" } });
    const rows = await t.db.selectFrom("api_tokens").select("expires_at").where("user_id", "=", user.id).execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.expires_at!.getTime()).toBeGreaterThan(Date.now());
  });

  it("refuses a wrong password and an unknown email with the same message", async () => {
    const { email } = await signUp(t.app);
    const wrong = await t.app.inject({ method: "POST", url: "/v1/auth/login", payload: { email, password: "not the password" } });
    const unknown = await t.app.inject({
      method: "POST",
      url: "/v1/auth/login",
      payload: { email: "nobody@example.com", password: "whatever it is" },
    });
    expect(wrong.statusCode).toBe(401);
    expect(unknown.statusCode).toBe(401);
    expect(wrong.json()).toEqual({ error: "unauthorized", message: "email or password is wrong" });
    expect(unknown.json()).toEqual(wrong.json());
  });

  it("slows password guessing: the 11th login of a minute for one email answers 429", async () => {
    const password = "correct horse battery"; // signUp's
    const { email } = await signUp(t.app);
    const login = (e: string, pw: string) => t.app.inject({ method: "POST", url: "/v1/auth/login", payload: { email: e, password: pw } });
    for (let i = 0; i < AUTH_ATTEMPTS_PER_MINUTE; i++) expect((await login(email, `guess number ${i}`)).statusCode).toBe(401);
    const limited = await login(email.toUpperCase(), password);
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({ error: "rate_limited" });
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    // Counted per email (and address): another account from the same address still signs in.
    const other = await signUp(t.app);
    expect((await login(other.email, password)).statusCode).toBe(200);
    // The count lives in Redis under the deployment's prefix, shared by every api replica.
    expect(await t.redis.keys(`${t.config.redisKeyPrefix}:ratelimit:*`)).not.toHaveLength(0);
  });

  it("names the field of a bad signup and refuses a second account for one email", async () => {
    const bad = await t.app.inject({ method: "POST", url: "/v1/auth/signup", payload: { email: "x@example.com", password: "short" } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: "validation", field: "password" });
    const badEmail = await t.app.inject({ method: "POST", url: "/v1/auth/signup", payload: { email: "nope", password: "long enough password" } });
    expect(badEmail.json()).toMatchObject({ error: "validation", field: "email" });

    const { email } = await signUp(t.app);
    const again = await t.app.inject({ method: "POST", url: "/v1/auth/signup", payload: { email: email.toUpperCase(), password: "another password" } });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ error: "conflict", field: "email" });
  });

  it("answers 401 without a token or with a bad one", async () => {
    expect((await t.app.inject({ method: "GET", url: "/v1/me" })).statusCode).toBe(401);
    const bad = await t.app.inject({ method: "GET", url: "/v1/me", headers: { authorization: "Bearer aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" } });
    expect(bad.statusCode).toBe(401);
    expect(bad.json().error).toBe("unauthorized");
  });

  it("serves /healthz, /metrics and the OpenAPI document", async () => {
    const health = await t.app.inject({ method: "GET", url: "/healthz" });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ status: "ok", checks: { db: "ok", redis: "ok" } });
    const metrics = await t.app.inject({ method: "GET", url: "/metrics" });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toContain("likeness_api_http_request_duration_seconds_bucket");
    expect(metrics.body).toMatch(/route="\/healthz"/);
    expect(metrics.body).toContain("likeness_api_process_cpu_user_seconds_total");
    const spec = await t.app.inject({ method: "GET", url: "/docs/json" });
    expect(spec.statusCode).toBe(200);
    const doc = spec.json();
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/v1/auth/signup", "/v1/profiles", "/v1/profiles/{id}", "/v1/me"]));
    expect(doc.paths["/v1/auth/signup"].post.requestBody.content["application/json"].schema.properties.password.minLength).toBe(10);
  });

  it("answers unknown routes with an ErrorBody", async () => {
    const r = await t.app.inject({ method: "GET", url: "/v1/nothing-here" });
    expect(r.statusCode).toBe(404);
    expect(r.json()).toMatchObject({ error: "not_found" });
  });
});
