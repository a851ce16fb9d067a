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
];

export function loggerOptions(level: string): LoggerOptions {
  return { level, redact: { paths: REDACT_PATHS, censor: "[redacted]" } };
}

export function createLogger(level: string): Logger {
  return pino(loggerOptions(level));
}
