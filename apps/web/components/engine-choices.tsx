"use client";
// The "Engines" fieldset of a form that starts a job (a video, a profile's training): a select per
// task kind where more than one engine can run now (GET /v1/engines), "Default (…)" first, each
// engine with its device and, where its licence forbids commercial use, that licence. Nothing
// shows while every task kind has one engine. A 400 naming `engines.<kind>` shows by its select.
import type { EngineChoice, EngineInfo, TaskKind } from "@likeness/contracts";
import { api } from "@/lib/api";
import { useResource } from "@/lib/use-resource";
import { TASK_LABELS } from "@/lib/video-options";

export type ChosenEngines = Partial<Record<TaskKind, string>>;

export function EngineChoices({
  kinds,
  chosen,
  onChange,
  errors,
}: {
  /** The task kinds the job runs. */
  kinds: TaskKind[];
  chosen: ChosenEngines;
  onChange: (chosen: ChosenEngines) => void;
  /** Field errors of the request, by field (`engines.<kind>`). */
  errors: Record<string, string>;
}) {
  const engines = useResource("engines", () => api().listEngines());
  const choices = engineChoices(engines.data?.engines ?? [], kinds);
  if (choices.length === 0) return null;
  return (
    <fieldset className="field">
      <legend>Engines</legend>
      <p className="hint">Where this studio has more than one engine for a step. The default is what the workers use unless told otherwise.</p>
      <div className="engine-grid">
        {choices.map(({ kind, engines: list }) => {
          const id = `engine-${kind}`;
          const error = errors[`engines.${kind}`];
          return (
            <div className="field" key={kind}>
              <label htmlFor={id}>{TASK_LABELS[kind] ?? kind} engine</label>
              <select
                id={id}
                value={chosen[kind] ?? ""}
                onChange={(e) => onChange({ ...chosen, [kind]: e.target.value })}
                aria-invalid={!!error}
                aria-describedby={error ? `${id}-error` : undefined}
              >
                <option value="">Default ({list.find((e) => e.default)?.name ?? "the workers' choice"})</option>
                {list.map((e) => (
                  <option key={e.name} value={e.name}>
                    {e.name} ({e.device.toUpperCase()}){e.name === "none" ? ": leaves this step out" : ""}
                    {e.nonCommercial ? `: non-commercial licence (${e.licence})` : ""}
                  </option>
                ))}
              </select>
              {error && (
                <p id={`${id}-error`} className="field-error">
                  {error}
                </p>
              )}
            </div>
          );
        })}
      </div>
    </fieldset>
  );
}

/** What to send as a request's `engines`: the engines chosen for these task kinds, or undefined for the defaults. */
export function chosenEngines(chosen: ChosenEngines, kinds: TaskKind[]): EngineChoice | undefined {
  const picked = Object.fromEntries(Object.entries(chosen).filter(([k, v]) => v && kinds.includes(k as TaskKind)));
  return Object.keys(picked).length ? picked : undefined;
}

/** The task kinds with more than one engine that can run now. */
function engineChoices(all: EngineInfo[], kinds: TaskKind[]): { kind: TaskKind; engines: EngineInfo[] }[] {
  return kinds
    // The script writer "none" speaks a given narration: it cannot write about a topic.
    .map((kind) => ({ kind, engines: all.filter((e) => e.taskKind === kind && e.healthy && !(kind === "llm" && e.name === "none")) }))
    .filter((c) => c.engines.length > 1);
}
