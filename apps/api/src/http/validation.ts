// Request validation with the contracts' zod schemas, in short human words. zod's own wording
// ("Too small: expected string to have >=1 characters", "Invalid UUID") is replaced through a
// per-parse error map, so it applies to request validation only. A message a schema sets itself
// (`.min(10, "at least 10 characters")`, a refine's message) wins over this map, as zod orders
// them: schema > per-parse map > global config > locale.
import type { FastifySchemaCompiler } from "fastify";
import { safeParse, type $ZodErrorMap, type $ZodIssue, type $ZodType } from "zod/v4/core";

/** The marker fastify-type-provider-zod's `hasZodFastifySchemaValidationErrors` looks for. */
const ZodValidationErrorSymbol = Symbol.for("ZodFastifySchemaValidationError");

const FORMATS: Record<string, string> = {
  uuid: "a UUID",
  guid: "a UUID",
  email: "an email address",
  url: "a URL",
  datetime: "an ISO 8601 date-time",
  date: "an ISO 8601 date",
  time: "an ISO 8601 time",
  ipv4: "an IPv4 address",
  ipv6: "an IPv6 address",
};

const TYPES: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  object: "an object",
  array: "an array",
};

const plural = (n: number | bigint, one: string) => `${n} ${one}${n === 1 || n === 1n ? "" : "s"}`;

function sizeWords(origin: string, n: number | bigint): string {
  if (origin === "string") return plural(n, "character");
  if (origin === "array" || origin === "set") return plural(n, "item");
  if (origin === "file") return plural(n, "byte");
  return String(n);
}

/** The human message of one zod issue, or undefined to keep zod's. */
export const humanErrorMap: $ZodErrorMap = (issue) => {
  switch (issue.code) {
    case "invalid_type":
      if (issue.input === undefined) return "is required";
      return `must be ${TYPES[issue.expected] ?? `a ${issue.expected}`}`;
    case "too_small": {
      const { origin, minimum } = issue;
      if (origin === "string" && Number(minimum) === 1) return "must not be empty";
      if ((origin === "array" || origin === "set") && Number(minimum) === 1) return "must have at least 1 item";
      if (issue.exact) return `must be exactly ${sizeWords(origin, minimum)}`;
      if (origin === "string" || origin === "array" || origin === "set" || origin === "file") return `must be at least ${sizeWords(origin, minimum)}`;
      return issue.inclusive === false ? `must be greater than ${minimum}` : `must be at least ${minimum}`;
    }
    case "too_big": {
      const { origin, maximum } = issue;
      if (issue.exact) return `must be exactly ${sizeWords(origin, maximum)}`;
      if (origin === "string" || origin === "array" || origin === "set" || origin === "file") return `must be at most ${sizeWords(origin, maximum)}`;
      return issue.inclusive === false ? `must be less than ${maximum}` : `must be at most ${maximum}`;
    }
    case "invalid_format": {
      const format = issue.format;
      if (FORMATS[format]) return `must be ${FORMATS[format]}`;
      if (format === "regex") return "has an invalid format";
      if (format === "starts_with" || format === "ends_with" || format === "includes") return "has an invalid format";
      return `must be a valid ${format}`;
    }
    case "not_multiple_of":
      return issue.divisor === 2 ? "must be an even number" : `must be a multiple of ${issue.divisor}`;
    case "invalid_value":
      return issue.values.length === 1
        ? `must be ${JSON.stringify(issue.values[0])}`
        : `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "unrecognized_keys":
      return `unknown field${issue.keys.length === 1 ? "" : "s"}: ${issue.keys.join(", ")}`;
    case "invalid_union":
      return "is not valid";
    default:
      return undefined;
  }
};

/** The issues as Fastify validation errors (the shape fastify-type-provider-zod gives). */
function toValidationErrors(issues: readonly $ZodIssue[]) {
  return issues.map((issue) => {
    const { path, code, message, ...params } = issue;
    return {
      [ZodValidationErrorSymbol]: true,
      keyword: code,
      instancePath: `/${path.join("/")}`,
      schemaPath: `#/${path.join("/")}/${code}`,
      message,
      params,
    };
  });
}

/** fastify-type-provider-zod's validatorCompiler, with `humanErrorMap`. */
export const validatorCompiler: FastifySchemaCompiler<$ZodType> =
  ({ schema }) =>
  (data) => {
    const result = safeParse(schema, data, { error: humanErrorMap });
    if (result.error) return { error: toValidationErrors(result.error.issues) as unknown as Error };
    return { value: result.data };
  };
