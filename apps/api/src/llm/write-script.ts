// One script from a topic, the way every engine is asked: a few tries when the answer breaks the
// schema or is not about the topic (a small model drifts), then a clear failure.
import type { Script } from "@likeness/contracts";
import { ScriptRejected, isAbout, subjectOf, type ScriptRequest } from "./prompt.js";
import type { ScriptWriter } from "./script-writer.js";

export const SCRIPT_TRIES = 3;

export async function writeScript(writer: ScriptWriter, req: ScriptRequest, signal: AbortSignal): Promise<{ script: Script; tries: number }> {
  const subject = subjectOf(req.topic);
  let last: ScriptRejected | undefined;
  for (let tries = 1; tries <= SCRIPT_TRIES; tries++) {
    try {
      const script = await writer.write(req, signal);
      if (isAbout(script, subject)) return { script, tries };
      last = new ScriptRejected(`the script "${script.title.slice(0, 80)}" is not about the topic "${subject.slice(0, 80)}"`);
    } catch (err) {
      if (!(err instanceof ScriptRejected)) throw err;
      last = err;
    }
  }
  throw new ScriptRejected(`${writer.name}: no usable script in ${SCRIPT_TRIES} tries: ${last?.message ?? "?"}`);
}
