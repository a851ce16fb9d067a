// Types of stack.mjs for the TypeScript that imports it (the browser tests' harness).
import type { ChildProcess } from "node:child_process";

export const REPO: string;
export const API_ENTRY: string;
export const WORKER_BIN: string;
export const CLI: string;
export const WEB_DIR: string;
export const NEXT_BIN: string;

export function rel(p: string): string;

/** A failure worth one line to the user (no stack trace): a service died, a job failed... */
export class StackError extends Error {}

/** Refuse to start when a build output is missing, naming what makes it. */
export function requireBuilt(entries: [file: string, what: string][]): void;

/** The api origin the web app's build sends /v1 to; throws a StackError when there is no build. */
export function builtApiUrl(): string;

export interface Service {
  name: string;
  child: ChildProcess & { exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null };
  log: string;
}

export class Stack {
  constructor(logsDir: string);
  readonly logsDir: string;
  readonly services: Service[];
  start(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess;
  startApiAndWorker(
    infraEnv: Record<string, string>,
    opts: { storageDir: string; port?: number },
  ): Promise<{ url: string; env: NodeJS.ProcessEnv }>;
  startWeb(opts: { port: number; apiUrl: string; env: NodeJS.ProcessEnv }): Promise<string>;
  waitWorkerReady(timeoutMs?: number): Promise<void>;
  whenOneExits(): Promise<never>;
  check(): void;
  waitHealthy(url: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
  writeLogTails(lines?: number): void;
}

/** A job's steps as GET /v1/jobs/:id records them: engine, state, seconds, reused. */
export function stepTable(title: string, job: { id: string; state: string; createdAt: string; finishedAt?: string | null; steps: unknown[] }): string;

/** Runs `main` as the demo and the bench do (signals, one-line failures with log tails, exit status). */
export function runStack(
  name: string,
  stack: Stack,
  opts: { main: () => Promise<void>; shutdown: () => Promise<void>; say: (msg: string) => void; onSignal?: () => void },
): Promise<void>;
