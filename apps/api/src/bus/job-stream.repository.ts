// Producer side of the job streams: one XADD per command, field `data` = JSON JobCommand.
import type { Redis } from "ioredis";
import { JobCommand, MESSAGE_FIELD, STREAM_MAXLEN, redisKeys } from "@likeness/contracts";

export class JobStreamProducer {
  private readonly keys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = redisKeys(prefix);
  }

  /** Validates the command against the contract, then XADDs it. Returns the stream entry id. */
  async enqueue(command: JobCommand): Promise<string> {
    const parsed = JobCommand.parse(command);
    const id = await this.redis.xadd(
      this.keys.jobStream(parsed.kind),
      "MAXLEN",
      "~",
      STREAM_MAXLEN,
      "*",
      MESSAGE_FIELD,
      JSON.stringify(parsed),
    );
    if (!id) throw new Error("XADD returned no id");
    return id;
  }
}
