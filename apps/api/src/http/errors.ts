// Errors that become an HTTP answer with the contracts `ErrorBody` {error, field?, message}.
// Throw one from a service or a route; the error handler (error-handler.ts) does the rest.

export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly statusCode: number,
    /** Short machine-readable code: "validation", "not_found", "too_large", ... */
    readonly error: string,
    message: string,
    /** The request field at fault, e.g. "email", "images[2]", "voice". */
    readonly field?: string,
    /** Every field at fault when there are several (ErrorBody `issues`). */
    readonly issues?: { field: string; message: string }[],
  ) {
    super(message);
  }
}

/** Several field errors as one answer: the first one's status, code and message, and all of them as `issues`. */
export function combined(errors: HttpError[]): HttpError {
  const [first] = errors;
  if (!first) throw new Error("combined() needs at least one error");
  if (errors.length === 1) return first;
  const issues = errors.map((e) => ({ field: e.field ?? "", message: e.message }));
  return new HttpError(first.statusCode, first.error, `${first.message} (and ${errors.length - 1} more)`, first.field, issues);
}

export const badRequest = (message: string, field?: string) => new HttpError(400, "validation", message, field);
export const unauthorized = (message = "sign in first: send Authorization: Bearer <token>") =>
  new HttpError(401, "unauthorized", message);
export const notFound = (what = "resource") => new HttpError(404, "not_found", `${what} not found`);
export const conflict = (message: string, field?: string) => new HttpError(409, "conflict", message, field);
export const tooLarge = (message: string, field?: string) => new HttpError(413, "too_large", message, field);
export const unsupportedMedia = (message: string, field?: string) =>
  new HttpError(415, "unsupported_media_type", message, field);

/** "/images/2/name" → "images[2].name" (the field notation of ErrorBody). */
export function fieldFromPath(path: ReadonlyArray<string | number>): string | undefined {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number" || /^\d+$/.test(String(seg))) out += `[${seg}]`;
    else out += out === "" ? String(seg) : `.${String(seg)}`;
  }
  return out === "" ? undefined : out;
}
