// The workers' engine advertisements in Redis (contracts `WorkerAdvert`): `{prefix}:workers` is a
// sorted set of worker ids scored by when their advert expires; `{prefix}:workers:{workerId}`
// holds the advert itself with a TTL of WORKER_ADVERT_TTL_HEARTBEATS heartbeats.
import type { Redis } from "ioredis";
import type { FastifyBaseLogger } from "fastify";
import { WorkerAdvert, redisKeys } from "@likeness/contracts";

export class EngineAdvertsRepository {
  private readonly keys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly log?: Pick<FastifyBaseLogger, "warn">,
  ) {
    this.keys = redisKeys(prefix);
  }

  /** The adverts of the live workers (expired ones are dropped from the index on the way). */
  async live(now = Date.now()): Promise<WorkerAdvert[]> {
    const [, ids] = (await this.redis
      .multi()
      .zremrangebyscore(this.keys.workers, "-inf", now)
      .zrange(this.keys.workers, 0, -1)
      .exec())!.map(([err, v]) => {
      if (err) throw err;
      return v;
    }) as [number, string[]];
    if (ids.length === 0) return [];
    const raw = await this.redis.mget(ids.map((id) => this.keys.worker(id)));
    const adverts: WorkerAdvert[] = [];
    raw.forEach((text, i) => {
      if (text === null) return; // expired between the two calls
      let parsed: ReturnType<typeof WorkerAdvert.safeParse> | undefined;
      try {
        parsed = WorkerAdvert.safeParse(JSON.parse(text));
      } catch {
        parsed = undefined;
      }
      if (parsed?.success) adverts.push(parsed.data);
      else this.log?.warn({ workerId: ids[i], issues: parsed?.error?.issues.slice(0, 3) }, "invalid worker advertisement ignored");
    });
    return adverts;
  }
}
