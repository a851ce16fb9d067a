// How the CLI reports failures: one line a person can act on.
import { ApiError, ConnectionError, parseErrorBody } from "@likeness/client";

export { ApiError, ConnectionError, parseErrorBody };

/** A mistake on the command line or in local files, found before anything is sent. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * `error: <field>: <message>`; an ApiError's `names` map request fields (`images[2]`) to what the
 * user gave (`IMG_0003.jpg`), so a rejection points at the user's own file.
 */
export function formatError(err: unknown): string {
  if (err instanceof ApiError) {
    const field = err.body?.field;
    if (field) {
      const given = err.names[field];
      const label = given ? `${field} (${given})` : (err.options[field] ?? field);
      // The api often starts its message with the field already ("email: Invalid email address").
      const message = err.message.startsWith(`${field}: `) ? err.message.slice(field.length + 2) : err.message;
      return `error: ${label}: ${message}`;
    }
    if (err.status === 401 && err.request.authenticated !== false) {
      const hint = "run `likeness login`, or set LIKENESS_TOKEN";
      return err.body ? `error: ${err.message}; ${hint}` : `error: not logged in (${hint})`;
    }
    if (!err.body) {
      const where = err.request.url ? ` at ${err.request.url}` : "";
      const text = err.rawText.replace(/\s+/g, " ").trim();
      if (/^\s*</.test(err.rawText) || !text) {
        return `error: the server${where} answered HTTP ${err.status}, not as the Likeness api does (is LIKENESS_URL right?)`;
      }
      return `error: HTTP ${err.status}${where}: ${text.slice(0, 300)}`;
    }
    return `error: ${err.message}`;
  }
  if (err instanceof UsageError) return err.field ? `error: ${err.field}: ${err.message}` : `error: ${err.message}`;
  if (err instanceof Error) return `error: ${err.message}`;
  return `error: ${String(err)}`;
}
