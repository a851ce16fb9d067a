// All SQL on `api_tokens`.
import { sql, type Kysely } from "kysely";
import type { Database } from "../db/types.js";

export interface TokenOwner {
  tokenId: string;
  userId: string;
  email: string;
  lastUsedAt: Date | null;
}

/** How often a token's use is written: the hot path of every request stays read-only. */
export const TOUCH_EVERY_MS = 60_000;

export class ApiTokensRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async create(userId: string, tokenHash: string, name: string | null, expiresAt: Date | null = null): Promise<string> {
    const row = await this.db
      .insertInto("api_tokens")
      .values({ user_id: userId, token_hash: tokenHash, name, expires_at: expiresAt })
      .returning("id")
      .executeTakeFirstOrThrow();
    return row.id;
  }

  findOwner(tokenHash: string): Promise<TokenOwner | undefined> {
    return this.db
      .selectFrom("api_tokens")
      .innerJoin("users", "users.id", "api_tokens.user_id")
      .select(["api_tokens.id as tokenId", "users.id as userId", "users.email as email", "api_tokens.last_used_at as lastUsedAt"])
      .where("api_tokens.token_hash", "=", tokenHash)
      .where((eb) => eb.or([eb("api_tokens.expires_at", "is", null), eb("api_tokens.expires_at", ">", sql<Date>`now()`)]))
      .executeTakeFirst();
  }

  /** Records use (the caller skips it when the last use was written under TOUCH_EVERY_MS ago). */
  async touch(tokenId: string): Promise<void> {
    await this.db
      .updateTable("api_tokens")
      .set({ last_used_at: sql<Date>`now()` })
      .where("id", "=", tokenId)
      .where((eb) => eb.or([eb("last_used_at", "is", null), eb("last_used_at", "<", sql<Date>`now() - interval '1 minute'`)]))
      .execute();
  }

  /** A user's web sessions that have ended (they no longer sign anyone in; this only tidies). */
  async deleteExpired(userId: string): Promise<void> {
    await this.db.deleteFrom("api_tokens").where("user_id", "=", userId).where("expires_at", "<=", sql<Date>`now()`).execute();
  }

  async deleteByHash(tokenHash: string): Promise<void> {
    await this.db.deleteFrom("api_tokens").where("token_hash", "=", tokenHash).execute();
  }
}
