// `--wait`: follow a job over the WebSocket until it ends, drawing progress; the final state
// always comes from GET /v1/jobs/:id (the recorded truth), not from the lossy stream.
import WebSocket from "ws";
import { JobUpdate, type Job } from "@likeness/contracts";
import type { ApiClient } from "./client.js";
import { applyUpdate, plainLine, renderLines, TERMINAL, viewFromJob, type JobView } from "./progress.js";

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
}

export async function waitForJob(client: ApiClient, jobId: string, out: Output, opts: { pollMs?: number; maxReconnects?: number } = {}): Promise<Job> {
  const tty = Boolean(out.isTTY);
  const live = tty ? new LiveBlock(out) : undefined;
  const printed = new Map<string, number>();
  let view: JobView | undefined;
  let lastJob: Job | undefined;
  let dirty = false;

  const show = (update: JobUpdate) => {
    view = applyUpdate(view, update);
    if (update.type === "job") lastJob = update.job;
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
    const maxReconnects = opts.maxReconnects ?? 5;
    for (;;) {
      const ended = await followSocket(client.eventsUrl(jobId), (u) => {
        show(u);
        if (tty) redraw();
      });
      if (view && TERMINAL.has(view.state)) break;
      // The socket closed before the end (api restart, network): look, then reconnect or poll.
      const job = await client.getJob(jobId);
      show({ type: "job", job });
      if (TERMINAL.has(job.state)) break;
      if (ended === "refused" || reconnects >= maxReconnects) {
        await pollUntilDone(client, jobId, opts.pollMs ?? 2000, (job) => show({ type: "job", job }), tty ? redraw : () => {});
        break;
      }
      reconnects++;
      await new Promise((r) => setTimeout(r, 500 * reconnects));
    }
    const final = await client.getJob(jobId);
    lastJob = final;
    view = viewFromJob(final, view);
    if (live) live.draw(renderLines(view, Date.now(), { columns: out.columns }));
    return final;
  } finally {
    if (ticker) clearInterval(ticker);
    void lastJob;
  }
}

/** Resolves when the socket closes: "ended" after the job finished or the server closed, "refused" if it never opened. */
function followSocket(url: string, onUpdate: (u: JobUpdate) => void): Promise<"ended" | "refused"> {
  return new Promise((resolve) => {
    let opened = false;
    let terminal = false;
    const ws = new WebSocket(url);
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
      if ((u.type === "job" && TERMINAL.has(u.job.state)) || (u.type === "event" && u.event.type === "job_finished")) {
        terminal = true;
        ws.close(1000);
      }
    });
    ws.on("error", () => {});
    ws.on("unexpected-response", (_req, res) => {
      res.resume();
      ws.terminate();
    });
    ws.on("close", () => resolve(opened || terminal ? "ended" : "refused"));
  });
}

async function pollUntilDone(client: ApiClient, jobId: string, pollMs: number, onJob: (job: Job) => void, redraw: () => void) {
  for (;;) {
    const job = await client.getJob(jobId);
    onJob(job);
    redraw();
    if (TERMINAL.has(job.state)) return;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
