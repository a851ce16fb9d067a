// `--wait`: follow a job over the WebSocket until it ends, drawing progress; the final state
// always comes from GET /v1/jobs/:id (the recorded truth), not from the lossy stream.
import WebSocket from "ws";
import { isTerminal, JobUpdate, type Job } from "@likeness/contracts";
import type { ApiClient } from "./client.js";
import { ConnectionError } from "./errors.js";
import { applyUpdate, plainLine, renderLines, viewFromJob, type JobView } from "./progress.js";

export interface Output {
  write(text: string): void;
  isTTY?: boolean;
  columns?: number;
}

/** Redraws a block of lines in place on a terminal. */
class LiveBlock {
  private drawn = 0;
  constructor(private readonly out: Output) {}
  draw(lines: string[]) {
    let text = this.drawn > 0 ? `\x1b[${this.drawn}F` : "";
    for (const l of lines) text += `\x1b[2K${l}\n`;
    for (let i = lines.length; i < this.drawn; i++) text += "\x1b[2K\n";
    this.out.write(text);
    this.drawn = Math.max(lines.length, this.drawn);
  }
  /** Something else was printed below the block: draw the next one afresh underneath. */
  release() {
    this.drawn = 0;
  }
}

/** Thrown by waitForJob when `signal` aborts (Ctrl-C): the job itself goes on on the server. */
export class WaitInterrupted extends Error {
  constructor(readonly jobId: string) {
    super(`stopped following job ${jobId}`);
    this.name = "WaitInterrupted";
  }
}

/** Reconnects of a socket that closed before the job ended; after these, poll instead. */
const MAX_RECONNECTS = 5;

export interface WaitOptions {
  pollMs?: number;
  /** How long to keep retrying while the api cannot be reached (restart, network) before giving up. */
  unreachableMs?: number;
  /** Aborting stops following (Ctrl-C): rejects with WaitInterrupted. */
  signal?: AbortSignal;
}

export async function waitForJob(client: ApiClient, jobId: string, out: Output, opts: WaitOptions = {}): Promise<Job> {
  const tty = Boolean(out.isTTY);
  const live = tty ? new LiveBlock(out) : undefined;
  const signal = opts.signal;
  const checkAborted = () => {
    if (signal?.aborted) throw new WaitInterrupted(jobId);
  };
  const sleep = (msec: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(done, msec);
      function done() {
        clearTimeout(t);
        signal?.removeEventListener("abort", done);
        resolve();
      }
      signal?.addEventListener("abort", done, { once: true });
    });
  /** GET /v1/jobs/:id, retried while the api is unreachable (it may be restarting). */
  const getJob = async (): Promise<Job> => {
    const deadline = Date.now() + (opts.unreachableMs ?? 120_000);
    let told = false;
    for (let delay = 500; ; delay = Math.min(delay * 2, 5000)) {
      checkAborted();
      try {
        const job = await client.getJob(jobId);
        if (told) {
          live?.release();
          out.write("the api answers again\n");
        }
        return job;
      } catch (err) {
        if (!(err instanceof ConnectionError) || Date.now() + delay > deadline) throw err;
        if (!told) {
          live?.release();
          out.write(`the api at ${err.url} cannot be reached (${err.causeCode}); retrying for up to ${Math.round((opts.unreachableMs ?? 120_000) / 1000)} s…\n`);
          told = true;
        }
        await sleep(delay);
      }
    }
  };
  const printed = new Map<string, number>();
  let view: JobView | undefined;
  let dirty = false;

  const show = (update: JobUpdate) => {
    view = applyUpdate(view, update);
    if (tty) dirty = true;
    else {
      const line = plainLine(update, printed);
      if (line) out.write(line + "\n");
    }
  };
  const redraw = () => {
    if (live && view && dirty) {
      live.draw(renderLines(view, Date.now(), { columns: out.columns }));
      dirty = false;
    }
  };
  const ticker = tty ? setInterval(() => ((dirty = true), redraw()), 200) : undefined;

  try {
    let reconnects = 0;
    for (;;) {
      const ended = await followSocket(
        client.eventsUrl(jobId),
        (u) => {
          show(u);
          if (tty) redraw();
        },
        signal,
      );
      checkAborted();
      if (view && isTerminal(view.state)) break;
      // The socket closed before the end (api restart, network): look, then reconnect or poll.
      const job = await getJob();
      show({ type: "job", job });
      if (isTerminal(job.state)) break;
      if (ended === "refused" || reconnects >= MAX_RECONNECTS) {
        for (;;) {
          await sleep(opts.pollMs ?? 2000);
          const polled = await getJob();
          show({ type: "job", job: polled });
          if (tty) redraw();
          if (isTerminal(polled.state)) break;
        }
        break;
      }
      reconnects++;
      await sleep(500 * reconnects);
    }
    const final = await getJob();
    view = viewFromJob(final, view);
    if (live) live.draw(renderLines(view, Date.now(), { columns: out.columns }));
    return final;
  } finally {
    if (ticker) clearInterval(ticker);
  }
}

/** Resolves when the socket closes: "ended" after the job finished or the server closed, "refused" if it never opened. */
function followSocket(url: string, onUpdate: (u: JobUpdate) => void, signal?: AbortSignal): Promise<"ended" | "refused"> {
  return new Promise((resolve) => {
    let opened = false;
    let terminal = false;
    const ws = new WebSocket(url);
    const abort = () => ws.terminate();
    if (signal?.aborted) abort();
    else signal?.addEventListener("abort", abort, { once: true });
    ws.on("open", () => (opened = true));
    ws.on("message", (data) => {
      let parsed;
      try {
        parsed = JobUpdate.safeParse(JSON.parse(String(data)));
      } catch {
        return;
      }
      if (!parsed.success) return;
      onUpdate(parsed.data);
      const u = parsed.data;
      // Not on the job_finished event: the api finalizes after it (e.g. records the video's file)
      // and then sends a terminal snapshot and closes. Waiting for that snapshot means that what
      // the job made is ready when --wait returns.
      if (u.type === "job" && isTerminal(u.job.state)) {
        terminal = true;
        ws.close(1000);
      }
    });
    ws.on("error", () => {});
    ws.on("unexpected-response", (_req, res) => {
      res.resume();
      ws.terminate();
    });
    ws.on("close", () => {
      signal?.removeEventListener("abort", abort);
      resolve(opened || terminal ? "ended" : "refused");
    });
  });
}
