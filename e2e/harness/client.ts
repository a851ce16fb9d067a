// A thin HTTP + WebSocket client of the public API, as a user (or the CLI) would use it.
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import WebSocket from "ws";
import type { Job, JobUpdate, Profile, Session, Video } from "@likeness/contracts";
import type { Samples } from "./global-setup.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    what: string,
  ) {
    super(`${what}: HTTP ${status} ${body.slice(0, 500)}`);
  }
}

export class Client {
  constructor(
    readonly baseUrl: string,
    readonly token?: string,
    readonly email?: string,
  ) {}

  /** POST /v1/auth/signup with a fresh email; returns a client that sends its bearer token. */
  static async signup(baseUrl: string, who = "user"): Promise<Client> {
    const email = `${who}-${randomBytes(4).toString("hex")}@e2e.example.com`;
    const res = await fetch(`${baseUrl}/v1/auth/signup`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email, password: "correct horse battery staple" }),
    });
    const text = await res.text();
    if (res.status !== 201) throw new HttpError(res.status, text, "signup");
    const session = JSON.parse(text) as Session;
    return new Client(baseUrl, session.token, email);
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...extra };
  }

  /** A raw request (for status checks). */
  fetch(pathname: string, init: RequestInit = {}): Promise<Response> {
    return fetch(`${this.baseUrl}${pathname}`, { ...init, headers: { ...this.headers(), ...(init.headers as Record<string, string> | undefined) } });
  }

  /** JSON request; throws HttpError unless the status is `expect`. */
  async json<T>(method: string, pathname: string, body?: unknown, expect = 200): Promise<T> {
    const res = await this.fetch(pathname, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
    });
    const text = await res.text();
    if (res.status !== expect) throw new HttpError(res.status, text, `${method} ${pathname}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** POST /v1/profiles as multipart: name, images[], voice. */
  async createProfile(name: string, samples: Samples): Promise<Profile> {
    const form = new FormData();
    form.append("name", name);
    form.append("images", await fs.openAsBlob(samples.portrait, { type: "image/png" }), path.basename(samples.portrait));
    form.append("voice", await fs.openAsBlob(samples.voice, { type: "audio/wav" }), path.basename(samples.voice));
    const res = await this.fetch("/v1/profiles", { method: "POST", body: form });
    const text = await res.text();
    if (res.status !== 201) throw new HttpError(res.status, text, "POST /v1/profiles");
    return JSON.parse(text) as Profile;
  }

  getJob(id: string): Promise<Job> {
    return this.json<Job>("GET", `/v1/jobs/${id}`);
  }

  /** Polls GET /v1/jobs/:id until `done(job)` (default: a terminal state). */
  async waitJob(id: string, opts: { timeoutMs?: number; done?: (job: Job) => boolean; intervalMs?: number } = {}): Promise<Job> {
    const { timeoutMs = 180_000, done = (j: Job) => TERMINAL.has(j.state), intervalMs = 250 } = opts;
    const deadline = Date.now() + timeoutMs;
    let job: Job | undefined;
    for (;;) {
      try {
        job = await this.getJob(id);
        if (done(job)) return job;
      } catch (err) {
        // The api may be restarting (connection refused): keep polling until the deadline.
        if (err instanceof HttpError) throw err;
      }
      if (Date.now() > deadline) {
        throw new Error(`job ${id} not done after ${timeoutMs / 1000} s; last seen: ${JSON.stringify(summarize(job))}`);
      }
      await sleep(intervalMs);
    }
  }

  /** Uploads the samples, trains, waits for `trained`. */
  async trainedProfile(samples: Samples, name = "Astronaut"): Promise<{ profile: Profile; job: Job }> {
    const created = await this.createProfile(name, samples);
    const started = await this.json<Job>("POST", `/v1/profiles/${created.id}/train`, undefined, 202);
    const job = await this.waitJob(started.id);
    if (job.state !== "succeeded") throw new Error(`training failed: ${JSON.stringify(summarize(job))}`);
    const profile = await this.json<Profile>("GET", `/v1/profiles/${created.id}`);
    return { profile, job };
  }

  createVideo(body: Record<string, unknown>): Promise<{ video: Video; job: Job }> {
    return this.json("POST", "/v1/videos", body, 202);
  }

  /** Opens WebSocket /v1/jobs/:id/events?token=… and records every message until it closes. */
  watchJob(jobId: string): JobWatch {
    return new JobWatch(`${this.baseUrl.replace(/^http/, "ws")}/v1/jobs/${jobId}/events?token=${encodeURIComponent(this.token ?? "")}`);
  }
}

/** A WebSocket on a job's events: messages in order, plus how it ended. */
export class JobWatch {
  readonly messages: JobUpdate[] = [];
  readonly socket: WebSocket;
  /** Resolves when the socket closes: code and reason, or the HTTP status when the upgrade was refused. */
  readonly closed: Promise<{ code?: number; reason?: string; refusedStatus?: number; error?: string }>;
  private waiters: { pred: (u: JobUpdate) => boolean; resolve: (u: JobUpdate) => void }[] = [];

  constructor(url: string) {
    this.socket = new WebSocket(url);
    this.closed = new Promise((resolve) => {
      this.socket.on("unexpected-response", (_req, res) => {
        resolve({ refusedStatus: res.statusCode });
        res.resume();
        this.socket.terminate();
      });
      this.socket.on("error", (err) => resolve({ error: err.message }));
      this.socket.on("close", (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.socket.on("message", (data) => {
      const u = JSON.parse(String(data)) as JobUpdate;
      this.messages.push(u);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(u)) return true;
        w.resolve(u);
        return false;
      });
    });
  }

  /** The first message (already received or still to come) matching `pred`. */
  next(pred: (u: JobUpdate) => boolean, timeoutMs = 60_000): Promise<JobUpdate> {
    const seen = this.messages.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching job update in ${timeoutMs / 1000} s; got ${this.messages.map(describeUpdate).join(", ")}`)), timeoutMs);
      this.waiters.push({
        pred,
        resolve: (u) => {
          clearTimeout(timer);
          resolve(u);
        },
      });
    });
  }

  close(): void {
    this.socket.terminate();
  }
}

export function describeUpdate(u: JobUpdate): string {
  if (u.type === "job") return `job(${u.job.state})`;
  if (u.type === "progress") return `progress(${u.progress.step} ${u.progress.fraction.toFixed(2)})`;
  const e = u.event;
  return `event(${e.type}${"step" in e && e.step ? ` ${e.step}` : ""})`;
}

/** A compact view of a job for failure messages. */
export function summarize(job: Job | undefined): unknown {
  if (!job) return undefined;
  return {
    id: job.id,
    state: job.state,
    attempt: job.attempt,
    error: job.error,
    steps: job.steps.map((s) => `${s.name}:${s.state}${s.engine ? `(${s.engine})` : ""}${s.reused ? " reused" : ""}${s.error ? ` ${s.error.code}: ${s.error.message}` : ""}`),
  };
}
