// How the CLI reports failures: one line a person can act on.
import { ErrorBody } from "@likeness/contracts";

/** A non-2xx answer from the api. `body` is the contracts ErrorBody when the api sent one. */
export class ApiError extends Error {
  /** Request field → what the user gave, e.g. {"images[2]": "IMG_0003.jpg"}; set by the command. */
  names: Record<string, string> = {};
  /** Request field → the command-line option that set it, e.g. {"profileId": "--profile"}; set by the command. */
  options: Record<string, string> = {};
  constructor(
    readonly status: number,
    readonly body: ErrorBody | undefined,
    readonly rawText = "",
    /** url: the api's base URL, to say where a non-api answer came from; authenticated: the request carried a token. */
    readonly request: { url?: string; authenticated?: boolean } = {},
  ) {
    super(body?.message ?? (rawText.trim().slice(0, 300) || `HTTP ${status}`));
    this.name = "ApiError";
  }
}

/** The api could not be reached at all. */
export class ConnectionError extends Error {
  constructor(
    readonly url: string,
    readonly causeCode: string,
  ) {
    super(`cannot reach the api at ${url} (${causeCode}); is it running? LIKENESS_URL sets where it is`);
    this.name = "ConnectionError";
  }
}

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

/** Parse a response body as ErrorBody, or undefined when it is something else. */
export function parseErrorBody(text: string): ErrorBody | undefined {
  try {
    const parsed = ErrorBody.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
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
