import type { User } from "@likeness/contracts";
import type { UserRow } from "../db/types.js";

export function toUser(row: Pick<UserRow, "id" | "email" | "created_at">): User {
  return { id: row.id, email: row.email, createdAt: row.created_at.toISOString() };
}
