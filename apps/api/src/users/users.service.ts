// The signed-in user's own record.
import type { User } from "@likeness/contracts";
import type { Db } from "../db/db.js";
import { unauthorized } from "../http/errors.js";
import { UsersRepository } from "./users.repository.js";
import { toUser } from "./user.mapper.js";

export class UsersService {
  private readonly users: UsersRepository;

  constructor(db: Db) {
    this.users = new UsersRepository(db);
  }

  /** The user a valid token names; a user deleted since the token was checked is a 401. */
  async me(userId: string): Promise<User> {
    const row = await this.users.findById(userId);
    if (!row) throw unauthorized();
    return toUser(row);
  }
}
