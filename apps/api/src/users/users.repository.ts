// All SQL on `users`.
import type { Kysely } from "kysely";
import type { Database, UserRow } from "../db/types.js";

export class UsersRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Returns null when the email is taken. */
  async create(email: string, passwordHash: string): Promise<UserRow | null> {
    const row = await this.db
      .insertInto("users")
      .values({ email: email.toLowerCase(), password_hash: passwordHash })
      .onConflict((oc) => oc.column("email").doNothing())
      .returningAll()
      .executeTakeFirst();
    return row ?? null;
  }

  findByEmail(email: string): Promise<UserRow | undefined> {
    return this.db.selectFrom("users").selectAll().where("email", "=", email.toLowerCase()).executeTakeFirst();
  }

  findById(id: string): Promise<UserRow | undefined> {
    return this.db.selectFrom("users").selectAll().where("id", "=", id).executeTakeFirst();
  }
}
