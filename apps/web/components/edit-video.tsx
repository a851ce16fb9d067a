"use client";
// Edit and re-render: change the narration or the scene; the steps whose inputs stay the same are
// taken from this video instead of made again. The video itself stays as it is.
import { useRouter } from "next/navigation";
import { useState, type FormEvent } from "react";
import type { Video } from "@likeness/contracts";
import { api, errorText, fieldErrors } from "@/lib/api";
import { stepLabel } from "@/lib/use-job";
import { expectedReuse } from "@/lib/video-options";
import { TextField } from "./text-field";

export function EditVideo({ video: v }: { video: Video }) {
  const router = useRouter();
  const [narration, setNarration] = useState(v.script?.narration ?? "");
  const [stage, setStage] = useState(v.script?.stage ?? "");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [problem, setProblem] = useState<string>();
  const [busy, setBusy] = useState(false);

  const changed = new Set<"narration" | "stage">();
  if (narration.trim() !== (v.script?.narration ?? "").trim()) changed.add("narration");
  if (stage.trim() !== (v.script?.stage ?? "").trim()) changed.add("stage");
  const reuse = expectedReuse(v.pipeline, changed);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setProblem(undefined);
    if (!changed.size) {
      setProblem("Change the narration or the stage first.");
      return;
    }
    setBusy(true);
    try {
      const { video } = await api().createVideo({
        from: v.id,
        ...(changed.has("narration") ? { narration } : {}),
        ...(changed.has("stage") ? { stage } : {}),
      });
      router.push(`/videos/${video.id}`);
    } catch (err) {
      const byField = fieldErrors(err);
      setErrors(byField);
      setProblem(Object.keys(byField).length ? "The edit could not start: see the reasons by the fields." : errorText(err));
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="edit-title" className="card">
      <h2 id="edit-title">Edit and re-render</h2>
      <form className="form" onSubmit={(e) => void submit(e)} noValidate>
        <TextField id="edit-narration" label="Narration" rows={5} maxLength={5000} value={narration} onChange={(e) => setNarration(e.target.value)} error={errors.narration} />
        <TextField id="edit-stage" label="Stage" rows={2} maxLength={2000} value={stage} onChange={(e) => setStage(e.target.value)} error={errors.stage} />
        <p className="hint" aria-live="polite" data-testid="expected-reuse">
          {!changed.size
            ? "Nothing changed yet."
            : reuse.length
              ? `Will reuse from this video: ${reuse.map(stepLabel).join(", ")}. The rest is made again.`
              : "Every step is made again."}
        </p>
        {problem && (
          <p role="alert" className="error-note">
            {problem}
          </p>
        )}
        <button type="submit" className="button primary" disabled={busy}>
          {busy ? "Starting…" : "Re-render"}
        </button>
      </form>
    </section>
  );
}
