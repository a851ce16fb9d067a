// The two ways a call to the api fails: it answered non-2xx (ApiError), or it could not be reached.
import { ErrorBody } from "@likeness/contracts";

/** A non-2xx answer from the api. `body` is the contracts ErrorBody when the api sent one. */
export class ApiError extends Error {
  /** Request field → what the user gave, e.g. {"images[2]": "IMG_0003.jpg"}; set by the caller. */
  names: Record<string, string> = {};
  /** Request field → the command-line option that set it, e.g. {"profileId": "--profile"}; set by the CLI. */
  options: Record<string, string> = {};
  constructor(
    readonly status: number,
    readonly body: ErrorBody | undefined,
    readonly rawText = "",
    /** url: the api's base URL, to say where a non-api answer came from; authenticated: the request carried credentials. */
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

/** Parse a response body as ErrorBody, or undefined when it is something else. */
export function parseErrorBody(text: string): ErrorBody | undefined {
  try {
    const parsed = ErrorBody.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
