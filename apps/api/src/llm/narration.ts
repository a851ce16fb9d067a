// The `script` step's engine `none`, for a given narration: the narration is used verbatim and the
// stage description comes from a template. A topic is written by an LLM engine (llm-engines.ts).
import type { Pipeline, Script } from "@likeness/contracts";

export const SCRIPT_ENGINE = "none";

const PIPELINE_LOOK: Record<Pipeline, string> = {
  sadtalker: "a talking-head shot animated from the portrait (sadtalker pipeline)",
  svd_wav2lip: "a short video clip animated from the scene (svd_wav2lip pipeline)",
};

export function scriptFromNarration(input: { narration: string; triggerWord: string; pipeline: Pipeline }): Script {
  const narration = input.narration.trim();
  const words = narration.split(/\s+/);
  const title = words.slice(0, 8).join(" ") + (words.length > 8 ? "…" : "");
  const stage =
    `Head-and-shoulders portrait of ${input.triggerWord}, facing the camera and speaking, ` +
    `soft even studio light, plain softly blurred background; ${PIPELINE_LOOK[input.pipeline]}.`;
  return { title: title.slice(0, 200), stage, narration };
}
