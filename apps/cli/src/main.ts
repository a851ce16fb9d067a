#!/usr/bin/env node
// Entry point of the `likeness` command.
import { run, type Deps } from "./cli.js";
import { formatError } from "./errors.js";

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Read a line from the terminal without echoing it. */
function promptPassword(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let value = "";
    const onData = (buf: Buffer) => {
      for (const ch of buf.toString("utf8")) {
        if (ch === "\r" || ch === "\n") {
          cleanup();
          process.stderr.write("\n");
          return resolve(value);
        }
        if (ch === "\u0003") {
          cleanup();
          return reject(new Error("cancelled"));
        }
        if (ch === "\u007f") value = value.slice(0, -1);
        else value += ch;
      }
    };
    const cleanup = () => {
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
    };
    stdin.on("data", onData);
  });
}

/** Ctrl-C while following a job stops following (the job goes on); a second Ctrl-C quits at once. */
function watchInterrupt() {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on("SIGINT", onSigint);
  return { signal: controller.signal, stop: () => void process.off("SIGINT", onSigint) };
}

// `likeness profile list | head -1`: the reader went away; stop quietly, not with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });
}

const deps: Deps = {
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  readStdin,
  promptPassword: process.stdin.isTTY ? promptPassword : undefined,
  watchInterrupt,
};

process.exitCode = await run(process.argv.slice(2), deps, formatError);
