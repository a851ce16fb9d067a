/**
 * The one thing worth a glance in a step's outputs: its `reason` (e.g. upscale: "skipped: the
 * frames are already 512x512"), else mux's `video` (copied, or why it was encoded).
 */
export function stepNote(outputs: Record<string, unknown> | null | undefined): string | undefined {
  for (const field of ["reason", "video"]) {
    const v = outputs?.[field];
    if (typeof v === "string" && v.trim()) return v.trim();
  }
  return undefined;
}
