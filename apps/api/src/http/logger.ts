// The pino logger: secrets never reach a log line.
import { pino, type Logger, type LoggerOptions } from "pino";

export const REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  "headers.authorization",
  "authorization",
  "password",
  "*.password",
  "token",
  "*.token",
  "*.secretAccessKey",
  "*.S3_SECRET_ACCESS_KEY",
  "*.apiKey",
  "*.*.apiKey",
  "*.OPENAI_API_KEY",
];

/** Query parameters that carry a secret (the WebSocket's `?token=`, browsers cannot set headers). */
const SECRET_QUERY = /([?&](?:token|access_token)=)[^&#]*/gi;

/** A URL with the value of every secret query parameter replaced. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY, "$1[redacted]");
}

interface LoggedRequest {
  method?: string;
  url?: string;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number };
}

/** Fastify's request serializer, with the URL's secrets redacted (`redact` paths cannot do that). */
function serializeRequest(req: LoggedRequest) {
  return {
    method: req.method,
    url: typeof req.url === "string" ? redactUrl(req.url) : req.url,
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}

export function loggerOptions(level: string): LoggerOptions {
  return { level, redact: { paths: REDACT_PATHS, censor: "[redacted]" }, serializers: { req: serializeRequest } };
}

export function createLogger(level: string): Logger {
  return pino(loggerOptions(level));
}
