import { describe, expect, it } from "vitest";
import { fieldFromPath } from "./errors.js";

describe("fieldFromPath", () => {
  it("writes ErrorBody field names", () => {
    expect(fieldFromPath(["email"])).toBe("email");
    expect(fieldFromPath(["images", "2"])).toBe("images[2]");
    expect(fieldFromPath(["a", 0, "b"])).toBe("a[0].b");
    expect(fieldFromPath([])).toBeUndefined();
  });
});
