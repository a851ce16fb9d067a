// The api over HTTP, for the CLI (bearer token) and the web studio (same-origin session cookie):
// one method per route, each answer parsed with its contracts schema.
import { z } from "zod";
import { CookieSession, EngineList, Job, Profile, ProfileEngines, Session, User, Video, CreateVideoRequest, type EngineChoice } from "@likeness/contracts";
import { ApiError, ConnectionError, parseErrorBody } from "./errors.js";

export interface UploadFile {
  /** What the user called it (shown in errors); the server names stored files itself. */
  name: string;
  type: string;
  data: Blob | Uint8Array<ArrayBuffer>;
}

export const VideoCreated = z.object({ video: Video, job: Job });
export type VideoCreated = z.infer<typeof VideoCreated>;

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    /** A bearer token; without one a browser sends its session cookie (same origin). */
    readonly token: string | undefined,
    // A wrapper, not `fetch` itself: a browser's fetch called as a method of another object throws.
    private readonly fetchImpl: typeof fetch = (input, init) => fetch(input, init),
  ) {}

  signup(email: string, password: string) {
    return this.json("POST", "/v1/auth/signup", Session, { email, password }, false);
  }
  login(email: string, password: string) {
    return this.json("POST", "/v1/auth/login", Session, { email, password }, false);
  }
  /** Sign up or in for a browser: the api sets an httpOnly session cookie, and the answer shows only the user. */
  openSession(kind: "signup" | "login", email: string, password: string) {
    return this.json("POST", `/v1/auth/${kind}`, CookieSession, { email, password, session: "cookie" }, false);
  }
  async logout(): Promise<void> {
    await this.request("POST", "/v1/auth/logout", {});
  }
  me() {
    return this.json("GET", "/v1/me", User);
  }

  createProfile(name: string, images: UploadFile[], voice: UploadFile, triggerWord?: string) {
    const form = new FormData();
    form.append("name", name);
    if (triggerWord !== undefined) form.append("triggerWord", triggerWord);
    for (const img of images) form.append("images", asBlob(img), img.name);
    form.append("voice", asBlob(voice), voice.name);
    return this.json("POST", "/v1/profiles", Profile, form);
  }
  async listProfiles(): Promise<Profile[]> {
    return (await this.json("GET", "/v1/profiles", z.object({ profiles: z.array(Profile) }))).profiles;
  }
  getProfile(id: string) {
    return this.json("GET", `/v1/profiles/${enc(id)}`, Profile);
  }
  async deleteProfile(id: string): Promise<void> {
    await this.request("DELETE", `/v1/profiles/${enc(id)}`);
  }
  trainProfile(id: string, engines?: EngineChoice) {
    return this.json("POST", `/v1/profiles/${enc(id)}/train`, Job, engines ? { engines } : {});
  }
  setProfileEngines(id: string, engines: EngineChoice) {
    return this.json("PUT", `/v1/profiles/${enc(id)}/engines`, ProfileEngines, { engines });
  }
  /** A photo the profile was made from (1-based, in upload order), as a square WebP thumbnail. */
  photoUrl(profileId: string, position: number, size = 256): string {
    return this.url(`/v1/profiles/${enc(profileId)}/photos/${position}?size=${size}`);
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
  async deleteVideo(id: string): Promise<void> {
    await this.request("DELETE", `/v1/videos/${enc(id)}`);
  }
  videoFileUrl(id: string, download = false): string {
    return this.url(`/v1/videos/${enc(id)}/file${download ? "?download=1" : ""}`);
  }
  /** The soft subtitles as WebVTT, for a `<track>`. */
  subtitlesUrl(id: string): string {
    return this.url(`/v1/videos/${enc(id)}/subtitles.vtt`);
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

  /** ws(s)://…/v1/jobs/:id/events, with ?token= when there is a token (a browser sends its cookie). */
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
    const url = this.url(path);
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

  private url(path: string): string {
    return new URL(path, this.baseUrl).toString();
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

const asBlob = (f: UploadFile): Blob => (f.data instanceof Blob ? f.data : new Blob([f.data], { type: f.type }));
const enc = encodeURIComponent;
