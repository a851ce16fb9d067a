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
    expect(formatError(new ApiError(502, parseErrorBody(text), text, { url: "http://api.test" }))).toBe(
      "error: the server at http://api.test answered HTTP 502, not as the Likeness api does (is LIKENESS_URL right?)",
    );
    expect(formatError(new ApiError(500, undefined, "boom\n"))).toBe("error: HTTP 500: boom");
    expect(formatError(new ApiError(401, undefined, ""))).toMatch(/not logged in/);
  });
  it("does not repeat the field when the api's message starts with it", () => {
    expect(formatError(new ApiError(400, { error: "validation", field: "password", message: "password: at least 10 characters" }))).toBe(
      "error: password: at least 10 characters",
    );
    const e = new ApiError(400, { error: "validation", field: "images[4]", message: "images[4]: not a PNG, JPEG or WebP image" });
    e.names = { "images[4]": "notes.png" };
    expect(formatError(e)).toBe("error: images[4] (notes.png): not a PNG, JPEG or WebP image");
  });
  it("names the command-line option that set a request field", () => {
    const e = new ApiError(409, { error: "conflict", field: "profileId", message: 'profile "Ada" is not trained (state: draft); train it first' });
    e.options = { profileId: "--profile" };
    expect(formatError(e)).toBe('error: --profile: profile "Ada" is not trained (state: draft); train it first');
  });
  it("a refused token says how to log in again; a failed login does not", () => {
    const body = { error: "unauthorized", message: "the token is not valid (signed out or never issued)" };
    expect(formatError(new ApiError(401, body, "", { authenticated: true }))).toBe(
      "error: the token is not valid (signed out or never issued); run `likeness login`, or set LIKENESS_TOKEN",
    );
    const login = { error: "unauthorized", message: "email or password is wrong" };
    expect(formatError(new ApiError(401, login, "", { authenticated: false }))).toBe("error: email or password is wrong");
  });
  it("usage and connection errors", () => {
    expect(formatError(new UsageError("no photos in x", "--images"))).toBe("error: --images: no photos in x");
    expect(formatError(new ConnectionError("http://127.0.0.1:1", "ECONNREFUSED"))).toBe(
      "error: cannot reach the api at http://127.0.0.1:1 (ECONNREFUSED); is it running? LIKENESS_URL sets where it is",
    );
  });
});
