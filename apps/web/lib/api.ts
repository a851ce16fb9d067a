// The one api client of the studio: the shared typed client, at this page's origin. The browser
// sends the httpOnly session cookie with every same-origin request; there is no token in script.
import { ApiClient, ApiError, ConnectionError } from "@likeness/client";

let client: ApiClient | undefined;

export function api(): ApiClient {
  client ??= new ApiClient(window.location.origin, undefined);
  return client;
}

export { ApiError };

/** What to tell the user about a failed call: the api's own message, never a stack trace. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 429) return "Too many attempts. Wait a minute and try again.";
    if (err.body) return err.body.message;
    if (err.status >= 500) return `The studio's server had a problem (HTTP ${err.status}). Try again in a moment.`;
    return `The request failed (HTTP ${err.status}).`;
  }
  if (err instanceof ConnectionError) return "Cannot reach the studio's server. Check that it is running, then try again.";
  if (err instanceof TypeError) return "The network request failed. Check your connection and try again.";
  return err instanceof Error ? err.message : String(err);
}

/** The api's message for one request field, e.g. "password: at least 10 characters" → "at least 10 characters". */
export function fieldErrors(err: unknown): Record<string, string> {
  if (!(err instanceof ApiError) || !err.body) return {};
  const issues = err.body.issues ?? (err.body.field ? [{ field: err.body.field, message: err.body.message }] : []);
  return Object.fromEntries(issues.map((i) => [i.field, stripField(i.field, i.message)]));
}

const stripField = (field: string, message: string) => (message.startsWith(`${field}: `) ? message.slice(field.length + 2) : message);

/** Not there for this user: none, another user's, or an id that cannot be one (a mistyped URL). */
export const isNotFound = (err: unknown): boolean =>
  err instanceof ApiError && (err.status === 404 || (err.status === 400 && err.body?.field === "id"));
export const isSignedOut = (err: unknown): boolean => err instanceof ApiError && err.status === 401;
