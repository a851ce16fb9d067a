// The api over HTTP: one method per route, responses checked against the shared contracts.
import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { z } from "zod";
import { EngineList, Job, Profile, ProfileEngines, Session, Video, CreateVideoRequest, type EngineChoice } from "@likeness/contracts";
import { ApiError, ConnectionError, parseErrorBody } from "./errors.js";

export interface UploadFile {
  /** What the user called it (shown in errors); the server names stored files itself. */
  name: string;
  type: string;
  data: Uint8Array<ArrayBuffer>;
}

export const VideoCreated = z.object({ video: Video, job: Job });
export type VideoCreated = z.infer<typeof VideoCreated>;

/** One method per route of the api the CLI uses; each answer is parsed with its contracts schema. */
export class ApiClient {
  constructor(
    readonly baseUrl: string,
    readonly token: string | undefined,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  signup(email: string, password: string) {
    return this.json("POST", "/v1/auth/signup", Session, { email, password }, false);
  }
  login(email: string, password: string) {
    return this.json("POST", "/v1/auth/login", Session, { email, password }, false);
  }

  createProfile(name: string, images: UploadFile[], voice: UploadFile, triggerWord?: string) {
    const form = new FormData();
    form.append("name", name);
    if (triggerWord !== undefined) form.append("triggerWord", triggerWord);
    for (const img of images) form.append("images", new Blob([img.data], { type: img.type }), img.name);
    form.append("voice", new Blob([voice.data], { type: voice.type }), voice.name);
    return this.json("POST", "/v1/profiles", Profile, form);
  }
  async listProfiles(): Promise<Profile[]> {
    return (await this.json("GET", "/v1/profiles", z.object({ profiles: z.array(Profile) }))).profiles;
  }
  getProfile(id: string) {
    return this.json("GET", `/v1/profiles/${enc(id)}`, Profile);
  }
  trainProfile(id: string, engines?: EngineChoice) {
    return this.json("POST", `/v1/profiles/${enc(id)}/train`, Job, engines ? { engines } : {});
  }
  setProfileEngines(id: string, engines: EngineChoice) {
    return this.json("PUT", `/v1/profiles/${enc(id)}/engines`, ProfileEngines, { engines });
  }

  listEngines() {
    return this.json("GET", "/v1/engines", EngineList);
  }

  createVideo(req: z.input<typeof CreateVideoRequest>) {
    return this.json("POST", "/v1/videos", VideoCreated, req);
  }
  async listVideos(): Promise<Video[]> {
    return (await this.json("GET", "/v1/videos", z.object({ videos: z.array(Video) }))).videos;
  }
  getVideo(id: string) {
    return this.json("GET", `/v1/videos/${enc(id)}`, Video);
  }

  getJob(id: string) {
    return this.json("GET", `/v1/jobs/${enc(id)}`, Job);
  }
  retryJob(id: string) {
    return this.json("POST", `/v1/jobs/${enc(id)}/retry`, Job, {});
  }
  cancelJob(id: string) {
    return this.json("POST", `/v1/jobs/${enc(id)}/cancel`, Job, {});
  }

  /** Stream the video's MP4 to `out` (a temp file renamed at the end: no half files). */
  async downloadVideo(id: string, out: string): Promise<number> {
    const res = await this.request("GET", `/v1/videos/${enc(id)}/file`);
    if (!res.body) throw new ApiError(res.status, undefined, "empty body", { url: this.baseUrl });
    const tmp = `${out}.part`;
    let bytes = 0;
    const counter = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
    counter.on("data", (chunk: Buffer) => (bytes += chunk.length));
    try {
      await pipeline(counter, createWriteStream(tmp));
      await rename(tmp, out);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return bytes;
  }

  /** ws(s)://…/v1/jobs/:id/events?token=… */
  eventsUrl(jobId: string): string {
    const u = new URL(`/v1/jobs/${enc(jobId)}/events`, this.baseUrl);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    if (this.token) u.searchParams.set("token", this.token);
    return u.toString();
  }

  async request(method: string, path: string, body?: unknown, auth = true): Promise<Response> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (auth && this.token) headers.authorization = `Bearer ${this.token}`;
    let payload: BodyInit | undefined;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers["content-type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const url = new URL(path, this.baseUrl).toString();
    let res: Response;
    try {
      res = await this.fetchImpl(url, { method, headers, body: payload });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ConnectionError(this.baseUrl, cause?.code ?? cause?.message ?? (err as Error).message);
    }
    if (!res.ok) {
      const text = await res.text().catch(() => "");
      throw new ApiError(res.status, parseErrorBody(text), text || res.statusText, { url: this.baseUrl, authenticated: auth });
    }
    return res;
  }

  private async json<T extends z.ZodType>(method: string, path: string, schema: T, body?: unknown, auth = true): Promise<z.infer<T>> {
    const res = await this.request(method, path, body, auth);
    const text = await res.text();
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw new Error(`${method} ${path}: the api answered ${res.status} with something that is not JSON: ${text.slice(0, 200)}`);
    }
    const parsed = schema.safeParse(data);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`${method} ${path}: unexpected answer from the api (${issue?.path.join(".") || "body"}: ${issue?.message})`);
    }
    return parsed.data;
  }
}

const enc = encodeURIComponent;
