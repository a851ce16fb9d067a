// Sign-up, sign-in, sign-out and token checks. Passwords: argon2id. Tokens: 32 random bytes,
// base64url, shown once; only their sha256 is stored.
import { createHash, randomBytes } from "node:crypto";
import { hash, verify } from "@node-rs/argon2";
import type { Kysely } from "kysely";
import type { Session, SessionMode } from "@likeness/contracts";
import type { Database } from "../db/types.js";
import { UsersRepository } from "../users/users.repository.js";
import { ApiTokensRepository, TOUCH_EVERY_MS } from "./api-tokens.repository.js";
import { toUser } from "../users/user.mapper.js";
import { conflict, HttpError } from "../http/errors.js";
import { SESSION_TTL_MS } from "./session-cookie.js";

export interface AuthUser {
  id: string;
  email: string;
}

// argon2id (the library default algorithm) with the OWASP minimum: 19 MiB, 2 passes.
const ARGON2 = { memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;
export const LOGIN_FAILED = "email or password is wrong";

/** A new session: the token and, for a cookie session, when it ends. */
export type IssuedSession = Session & { expiresAt: Date | null };

export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

export class AuthService {
  private readonly users: UsersRepository;
  private readonly tokens: ApiTokensRepository;
  /** A real hash to verify against when the email is unknown, so both failures cost the same. */
  private dummyHash: Promise<string> | undefined;

  constructor(db: Kysely<Database>) {
    this.users = new UsersRepository(db);
    this.tokens = new ApiTokensRepository(db);
  }

  async signup(email: string, password: string, mode: SessionMode = "token"): Promise<IssuedSession> {
    const passwordHash = await hash(password, ARGON2);
    const row = await this.users.create(email, passwordHash);
    if (!row) throw conflict("an account with this email exists", "email");
    return { user: toUser(row), ...(await this.issueToken(row.id, mode)) };
  }

  async login(email: string, password: string, mode: SessionMode = "token"): Promise<IssuedSession> {
    const row = await this.users.findByEmail(email);
    if (!row) {
      this.dummyHash ??= hash("not-a-real-password-at-all", ARGON2);
      await verify(await this.dummyHash, password).catch(() => false);
      throw new HttpError(401, "unauthorized", LOGIN_FAILED);
    }
    const ok = await verify(row.password_hash, password).catch(() => false);
    if (!ok) throw new HttpError(401, "unauthorized", LOGIN_FAILED);
    return { user: toUser(row), ...(await this.issueToken(row.id, mode)) };
  }

  async logout(token: string): Promise<void> {
    await this.tokens.deleteByHash(hashToken(token));
  }

  /** The user a bearer token belongs to, or null. */
  async verifyToken(token: string): Promise<AuthUser | null> {
    if (token.length < 20 || token.length > 200) return null;
    const owner = await this.tokens.findOwner(hashToken(token));
    if (!owner) return null;
    if (!owner.lastUsedAt || Date.now() - owner.lastUsedAt.getTime() >= TOUCH_EVERY_MS) await this.tokens.touch(owner.tokenId);
    return { id: owner.userId, email: owner.email };
  }

  /** A CLI token lasts until it is revoked; a web session ends SESSION_TTL_MS after sign-in. */
  private async issueToken(userId: string, mode: SessionMode): Promise<{ token: string; expiresAt: Date | null }> {
    const token = randomBytes(32).toString("base64url");
    const expiresAt = mode === "cookie" ? new Date(Date.now() + SESSION_TTL_MS) : null;
    await this.tokens.deleteExpired(userId);
    await this.tokens.create(userId, hashToken(token), mode === "cookie" ? "web session" : "cli", expiresAt);
    return { token, expiresAt };
  }
}
