// One Redis subscriber connection per app, fanned out to every WebSocket that watches a job.
// Channels are subscribed while at least one socket listens and unsubscribed after the last.
import type { Redis } from "ioredis";
import type { FastifyBaseLogger } from "fastify";

type Listener = (channel: string, message: string) => void;

export class JobUpdatesHub {
  private sub: Redis | undefined;
  private readonly listeners = new Map<string, Set<Listener>>();
  private closed = false;

  constructor(
    private readonly redis: Redis,
    private readonly log: FastifyBaseLogger,
  ) {}

  private connection(): Redis {
    if (!this.sub) {
      this.sub = this.redis.duplicate();
      this.sub.on("message", (channel: string, message: string) => {
        for (const fn of this.listeners.get(channel) ?? []) {
          try {
            fn(channel, message);
          } catch (err) {
            this.log.warn({ err, channel }, "job updates listener failed");
          }
        }
      });
      this.sub.on("error", (err) => this.log.warn({ err }, "job updates subscriber error"));
    }
    return this.sub;
  }

  /** Resolves once Redis confirmed the subscriptions; the returned function unsubscribes. */
  async subscribe(channels: string[], fn: Listener): Promise<() => Promise<void>> {
    if (this.closed) throw new Error("job updates hub is closed");
    const sub = this.connection();
    const fresh: string[] = [];
    for (const ch of channels) {
      let set = this.listeners.get(ch);
      if (!set) {
        set = new Set();
        this.listeners.set(ch, set);
        fresh.push(ch);
      }
      set.add(fn);
    }
    if (fresh.length) await sub.subscribe(...fresh);
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      const empty: string[] = [];
      for (const ch of channels) {
        const set = this.listeners.get(ch);
        set?.delete(fn);
        if (set && set.size === 0) {
          this.listeners.delete(ch);
          empty.push(ch);
        }
      }
      if (empty.length && this.sub && !this.closed) await this.sub.unsubscribe(...empty).catch(() => undefined);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    this.sub?.disconnect();
  }
}
