/** Writes `<dir>/images/astronaut.png` and `<dir>/voice.wav` (kept when present); returns their paths. */
export function makeSamples(dir: string): { images: string; portrait: string; voice: string };
