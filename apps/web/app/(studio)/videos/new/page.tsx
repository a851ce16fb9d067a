"use client";
// Generate: a trained profile, a narration (or a topic the local LLM writes a script about), the
// animation, the size, the subtitles and, where there is a choice, the engines.
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { Suspense, useState, type FormEvent } from "react";
import { VIDEO_DEFAULTS, type Pipeline, type SubtitleMode } from "@likeness/contracts";
import { api, errorText, fieldErrors } from "@/lib/api";
import { useResource } from "@/lib/use-resource";
import { ChoiceGroup } from "@/components/choice-group";
import { EngineChoices, chosenEngines, type ChosenEngines } from "@/components/engine-choices";
import { TextField } from "@/components/text-field";
import { useTitle } from "@/lib/use-title";
import { focusFirstInvalid } from "@/lib/focus-invalid";
import { PIPELINES, SIZES, SUBTITLES, taskKindsOf } from "@/lib/video-options";

export default function NewVideoPage() {
  return (
    <Suspense>
      <NewVideoForm />
    </Suspense>
  );
}

const WORDS_PER_SECOND = 2.5;

function NewVideoForm() {
  const router = useRouter();
  const wanted = useSearchParams().get("profile");
  const profiles = useResource("profiles", () => api().listProfiles());
  const engines = useResource("engines", () => api().listEngines());
  const trained = profiles.data?.filter((p) => p.state === "trained") ?? [];

  const [profileId, setProfileId] = useState<string>();
  const [source, setSource] = useState<"narration" | "topic">("narration");
  const [narration, setNarration] = useState("");
  const [topic, setTopic] = useState("");
  const [length, setLength] = useState("30");
  const [stage, setStage] = useState("");
  const [pipeline, setPipeline] = useState<Pipeline>(VIDEO_DEFAULTS.pipeline);
  const [size, setSize] = useState("1:1");
  const [subtitles, setSubtitles] = useState<SubtitleMode>(VIDEO_DEFAULTS.subtitles);
  const [chosen, setChosen] = useState<ChosenEngines>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [problem, setProblem] = useState<string>();
  const [busy, setBusy] = useState(false);
  useTitle("New video");

  const selected = profileId ?? trained.find((p) => p.id === wanted)?.id ?? trained[0]?.id;
  const imageEngine = engines.data?.engines.find((e) => e.taskKind === "image" && e.default)?.name;
  const kinds = taskKindsOf(pipeline, source === "topic");
  const words = narration.trim() ? narration.trim().split(/\s+/).length : 0;

  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const formEl = e.currentTarget;
    setProblem(undefined);
    const local: Record<string, string> = {};
    if (!selected) local.profileId = "choose a trained profile";
    if (source === "narration" && !narration.trim()) local.narration = "write what the video says";
    if (source === "topic" && !topic.trim()) local.topic = "give a topic";
    setErrors(local);
    if (Object.keys(local).length) {
      focusFirstInvalid(formEl);
      return;
    }
    const { width, height } = SIZES.find((s) => s.id === size)!;
    const picked = chosenEngines(chosen, kinds);
    setBusy(true);
    try {
      const { video } = await api().createVideo({
        profileId: selected,
        ...(source === "narration" ? { narration, ...(stage.trim() ? { stage } : {}) } : { topic, durationSec: Number(length) }),
        pipeline,
        width,
        height,
        subtitles,
        ...(picked ? { engines: picked } : {}),
      });
      router.push(`/videos/${video.id}`);
    } catch (err) {
      const byField = fieldErrors(err);
      setErrors(byField);
      if (!Object.keys(byField).length) setProblem(errorText(err));
      else {
        setProblem("The video could not start: see the reasons by the fields.");
        focusFirstInvalid(formEl);
      }
      setBusy(false);
    }
  };

  if (profiles.data && trained.length === 0) {
    return (
      <main id="main" className="page narrow">
        <h1>New video</h1>
        <div className="empty">
          <p className="empty-title">No trained profile yet</p>
          <p>A video speaks with a trained profile&apos;s face and voice. Create one first; training takes a few minutes.</p>
          <Link href="/profiles/new" className="button primary">
            Create a profile
          </Link>
        </div>
      </main>
    );
  }

  return (
    <main id="main" className="page narrow">
      <h1>New video</h1>
      <form className="card form" onSubmit={(e) => void submit(e)} noValidate>
        <div className="field">
          <label htmlFor="profile">Profile</label>
          <select
            id="profile"
            value={selected ?? ""}
            onChange={(e) => setProfileId(e.target.value)}
            aria-invalid={!!errors.profileId}
            aria-describedby={errors.profileId ? "profile-error" : undefined}
          >
            {!profiles.data && <option value="">Loading…</option>}
            {trained.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
              </option>
            ))}
          </select>
          {errors.profileId && (
            <p id="profile-error" className="field-error">
              {errors.profileId}
            </p>
          )}
        </div>

        <ChoiceGroup
          legend="Script"
          name="source"
          value={source}
          onChange={setSource}
          options={[
            { value: "narration", label: "My own words", hint: "You write exactly what is said." },
            { value: "topic", label: "Written for me", hint: "The local LLM writes a script about a subject." },
          ]}
        />
        {source === "narration" ? (
          <>
            <TextField
              id="narration"
              label="Narration"
              rows={6}
              maxLength={5000}
              value={narration}
              onChange={(e) => setNarration(e.target.value)}
              hint={`${narration.length} / 5000 characters${words ? `, about ${Math.max(1, Math.round(words / WORDS_PER_SECOND))} s of speech` : ""}`}
              error={errors.narration}
            />
            <TextField
              id="stage"
              label="Stage (optional)"
              rows={2}
              maxLength={2000}
              value={stage}
              onChange={(e) => setStage(e.target.value)}
              hint={`Where you are and what it looks like, e.g. “a sunny beach at noon”.${
                imageEngine === "portrait" ? " The built-in image engine keeps your photo's own background: a GPU image engine (ComfyUI) draws the stage." : ""
              }`}
              error={errors.stage}
            />
          </>
        ) : (
          <div className="field-row">
            <div className="grow">
              <TextField
                id="topic"
                label="Topic"
                maxLength={500}
                value={topic}
                onChange={(e) => setTopic(e.target.value)}
                hint="e.g. “why the sea is salty”. The built-in model is small: check its script on the video's page."
                error={errors.topic}
              />
            </div>
            <div className="field">
              <label htmlFor="length">Length</label>
              <select id="length" value={length} onChange={(e) => setLength(e.target.value)}>
                <option value="15">15 seconds</option>
                <option value="30">30 seconds</option>
                <option value="60">1 minute</option>
              </select>
            </div>
          </div>
        )}

        <ChoiceGroup legend="Animation" name="pipeline" value={pipeline} onChange={setPipeline} options={PIPELINES} />
        <ChoiceGroup legend="Size" name="size" value={size} onChange={setSize} options={SIZES.map((s) => ({ value: s.id, label: s.label, hint: `${s.width}×${s.height}` }))} />
        <ChoiceGroup legend="Subtitles" name="subtitles" value={subtitles} onChange={setSubtitles} options={SUBTITLES} />

        <EngineChoices kinds={kinds} chosen={chosen} onChange={setChosen} errors={errors} />

        {problem && (
          <p role="alert" className="error-note">
            {problem}
          </p>
        )}
        <button type="submit" className="button primary wide" disabled={busy || !selected}>
          {busy ? "Starting…" : "Generate video"}
        </button>
      </form>
    </main>
  );
}
