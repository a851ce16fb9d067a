import { describe, expect, it } from "vitest";
import { srtToWebVtt } from "./webvtt.js";

describe("srtToWebVtt", () => {
  it("adds the header and turns the times' commas into dots, leaving the text as it was", () => {
    const srt = "1\r\n00:00:00,000 --> 00:00:01,250\r\nHello, world.\r\n\r\n2\r\n00:00:01,250 --> 00:01:02,005\r\nAt 10,000 feet\r\n";
    expect(srtToWebVtt(srt)).toBe(
      "WEBVTT\n\n1\n00:00:00.000 --> 00:00:01.250\nHello, world.\n\n2\n00:00:01.250 --> 00:01:02.005\nAt 10,000 feet\n",
    );
  });
});
