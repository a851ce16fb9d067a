// The benches' HTTP client: one JSON call, a user with a profile made from the sample inputs, and
// waiting for a job. Errors are StackErrors naming the route, as the stack's own.
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { StackError } from "../scripts/stack.mjs";

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

/** The task kinds of a sadtalker video and of a training: what a bench engine must stand in for. */
export const VIDEO_KINDS = ["image", "tts", "talking_head", "upscale", "mux", "publish"];
export const TRAIN_KINDS = ["prepare", "lora_trainer", "voice_trainer", "evaluate", "publish"];
/** A request's `engines`: the engine `name` for each of `kinds`. */
export const engineFor = (name, kinds) => Object.fromEntries(kinds.map((k) => [k, name]));

/** One JSON call; an answer other than `expect` (default: any 2xx) is a StackError naming the route. */
export async function api(url, token, method, route, body, expect) {
  const headers = { accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined && !(body instanceof FormData)) headers["content-type"] = "application/json";
  const res = await fetch(url + route, { method, headers, body: body instanceof FormData || body === undefined ? body : JSON.stringify(body) });
  const text = await res.text();
  if (expect ? res.status !== expect : !res.ok) throw new StackError(`${method} ${route}: HTTP ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

/** A new user (`<who>-<random>@likeness.local`): its token. */
export async function signUp(url, who) {
  const email = `${who}-${randomBytes(4).toString("hex")}@likeness.local`;
  return (await api(url, null, "POST", "/v1/auth/signup", { email, password: randomBytes(18).toString("base64url") })).token;
}

/** A profile from the sample portrait and voice (scripts/samples.mjs). */
export function createProfile(url, token, samples, name) {
  const form = new FormData();
  form.append("name", name);
  form.append("images", new Blob([fs.readFileSync(samples.portrait)], { type: "image/png" }), "astronaut.png");
  form.append("voice", new Blob([fs.readFileSync(samples.voice)], { type: "audio/wav" }), "voice.wav");
  return api(url, token, "POST", "/v1/profiles", form);
}

/** Polls GET /v1/jobs/:id every `everyMs` until the job ends (`stack.check()` notices a dead process at once). */
export async function waitJob(url, token, id, { stack, everyMs = 100, timeoutMs = 15 * 60 * 1000 }) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    stack.check();
    const job = await api(url, token, "GET", `/v1/jobs/${id}`);
    if (TERMINAL.has(job.state)) return job;
    if (Date.now() > deadline) throw new StackError(`job ${id} still ${job.state} after ${timeoutMs / 1000} s`);
    await sleep(everyMs);
  }
}
