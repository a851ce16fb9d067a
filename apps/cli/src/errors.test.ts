import { describe, expect, it } from "vitest";
import { ApiError, ConnectionError, formatError, parseErrorBody, UsageError } from "./errors.js";

describe("error formatting", () => {
  it("api errors with a field: error: <field>: <message>", () => {
    const e = new ApiError(400, { error: "bad_input", field: "narration", message: "must not be empty" });
    expect(formatError(e)).toBe("error: narration: must not be empty");
  });
  it("names the user's file for an upload field", () => {
    const e = new ApiError(422, { error: "bad_input", field: "images[1]", message: "image is 40x40, at least 64 px a side" });
    e.names = { "images[1]": "tiny.png" };
    expect(formatError(e)).toBe("error: images[1] (tiny.png): image is 40x40, at least 64 px a side");
  });
  it("api errors without a field", () => {
    expect(formatError(new ApiError(409, { error: "conflict", message: "email already registered" }))).toBe("error: email already registered");
  });
  it("a body that is not ErrorBody still says something", () => {
    const text = "<html>bad gateway</html>";
    expect(parseErrorBody(text)).toBeUndefined();
    expect(formatError(new ApiError(502, parseErrorBody(text), text))).toBe("error: <html>bad gateway</html>");
    expect(formatError(new ApiError(401, undefined, ""))).toMatch(/not logged in/);
  });
  it("usage and connection errors", () => {
    expect(formatError(new UsageError("no photos in x", "--images"))).toBe("error: --images: no photos in x");
    expect(formatError(new ConnectionError("http://127.0.0.1:1", "ECONNREFUSED"))).toBe(
      "error: cannot reach the api at http://127.0.0.1:1 (ECONNREFUSED); is it running? LIKENESS_URL sets where it is",
    );
  });
});
