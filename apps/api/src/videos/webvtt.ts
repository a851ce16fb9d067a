// SubRip (what mux writes beside the MP4) → WebVTT (what a browser's <track> reads). Browsers do
// not show the MP4's own mov_text track, so the player gets the same cues this way.

/** The cue times' comma becomes a dot; numbering lines may stay (WebVTT reads them as cue ids). */
export function srtToWebVtt(srt: string): string {
  const body = srt
    .replace(/^\uFEFF/, "")
    .replace(/\r\n?/g, "\n")
    .replace(/(\d\d:\d\d:\d\d),(\d\d\d)/g, "$1.$2")
    .trim();
  return `WEBVTT\n\n${body}\n`;
}
