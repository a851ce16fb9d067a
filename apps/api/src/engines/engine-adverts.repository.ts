// The workers' engine advertisements in Redis (contracts `WorkerAdvert`): `{prefix}:workers` is the
// set of advertising worker ids; `{prefix}:workers:{workerId}` holds the advert itself with a TTL of
// WORKER_ADVERT_TTL_HEARTBEATS heartbeats, the only clock: an id whose key is gone is dropped here.
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

  /** The adverts of the live workers (the ids of expired ones are dropped from the index on the way). */
  async live(): Promise<WorkerAdvert[]> {
    const ids = await this.redis.smembers(this.keys.workers);
    if (ids.length === 0) return [];
    const raw = await this.redis.mget(ids.map((id) => this.keys.worker(id)));
    const gone = ids.filter((_, i) => raw[i] === null);
    if (gone.length > 0) await this.redis.srem(this.keys.workers, ...gone);
    const adverts: WorkerAdvert[] = [];
    raw.forEach((text, i) => {
      if (text === null) return;
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
