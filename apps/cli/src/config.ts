// Where the api is and who we are: LIKENESS_URL / LIKENESS_TOKEN, else the saved credentials.
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { UsageError } from "./errors.js";

export const DEFAULT_URL = "http://127.0.0.1:8080";

export interface SavedCredentials {
  url: string;
  email: string;
  token: string;
}

export function credentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config");
  return join(base, "likeness", "credentials.json");
}

export async function loadCredentials(file: string): Promise<SavedCredentials | undefined> {
  try {
    const data = JSON.parse(await readFile(file, "utf8")) as Partial<SavedCredentials>;
    return typeof data.token === "string" ? (data as SavedCredentials) : undefined;
  } catch {
    return undefined;
  }
}

/** Written owner-only (0600, folder 0700): the token is a password. */
export async function saveCredentials(file: string, creds: SavedCredentials): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(creds, null, 2) + "\n", { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}

export interface Resolved {
  url: string;
  token: string | undefined;
  /** The saved login was made against another api than `url` (so its token is not used). */
  savedFor?: string;
}

/** LIKENESS_URL wins over the saved url; LIKENESS_TOKEN over the saved token. */
export function resolveConfig(env: NodeJS.ProcessEnv, saved: SavedCredentials | undefined): Resolved {
  const url = (env.LIKENESS_URL || saved?.url || DEFAULT_URL).replace(/\/+$/, "");
  if (env.LIKENESS_URL) checkUrl(url);
  const savedHere = saved && (!env.LIKENESS_URL || sameUrl(saved.url, url));
  const token = env.LIKENESS_TOKEN || (savedHere ? saved.token : undefined);
  return { url, token, ...(saved && !savedHere ? { savedFor: saved.url } : {}) };
}

/** Throws when LIKENESS_URL is not an http(s) address (e.g. `127.0.0.1:8080` without the scheme). */
export function checkUrl(url: string): void {
  let ok: boolean;
  try {
    const u = new URL(url);
    ok = (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "";
  } catch {
    ok = false;
  }
  if (!ok) throw new UsageError(`LIKENESS_URL=${url} is not an http:// or https:// address (e.g. ${DEFAULT_URL})`);
}

function sameUrl(a: string, b: string): boolean {
  return a.replace(/\/+$/, "") === b.replace(/\/+$/, "");
}
