"use client";
// New profile: a name, photos and a voice sample, checked here as the server would, and where
// there is a choice the training's engines; then the upload, and training starts at once. A refused
// upload shows each file's reason beside it; a refused engine, its reason beside its select.
import { useRouter } from "next/navigation";
import { useState, type FormEvent } from "react";
import { UPLOAD_LIMITS } from "@likeness/contracts";
import { api, errorText, fieldErrors } from "@/lib/api";
import { totalTooLarge } from "@/lib/upload-checks";
import { bytes } from "@/lib/format";
import { focusFirstInvalid } from "@/lib/focus-invalid";
import { TRAINING_TASK_KINDS } from "@/lib/video-options";
import { EngineChoices, chosenEngines, type ChosenEngines } from "@/components/engine-choices";
import { PhotoDrop, type PhotoItem } from "@/components/photo-drop";
import { TextField } from "@/components/text-field";
import { useTitle } from "@/lib/use-title";
import { VoiceInput, type VoiceSample } from "@/components/voice-input";

export default function NewProfilePage() {
  const router = useRouter();
  const [name, setName] = useState("");
  const [photos, setPhotos] = useState<PhotoItem[]>([]);
  const [voice, setVoice] = useState<VoiceSample>();
  const [chosen, setChosen] = useState<ChosenEngines>({});
  // The profile uploaded when its training was refused for an engine: a new submit only trains it.
  const [created, setCreated] = useState<string>();
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [problem, setProblem] = useState<string>();
  const [busy, setBusy] = useState<string>();
  useTitle("New profile");

  const blockers = [
    !name.trim() && "give the profile a name",
    photos.length === 0 && "add at least one photo",
    photos.length > UPLOAD_LIMITS.maxImages && `at most ${UPLOAD_LIMITS.maxImages} photos`,
    photos.some((p) => p.checking) && "wait until the photos are checked",
    photos.some((p) => p.problem) && "remove the photos that cannot be used",
    !voice && "add a voice sample",
    voice?.checking && "wait until the voice sample is checked",
    voice?.problem && "replace the voice sample that cannot be used",
    totalTooLarge(photos.reduce((n, p) => n + p.file.size, voice?.file.size ?? 0)),
  ].filter((b): b is string => !!b);

  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const formEl = e.currentTarget;
    setProblem(undefined);
    if (created) {
      await train(created, formEl);
      return;
    }
    if (blockers.length || !voice) {
      setProblem(`Before creating the profile: ${blockers.join("; ")}.`);
      return;
    }
    setBusy(`Uploading ${bytes(photos.reduce((n, p) => n + p.file.size, voice.file.size))}…`);
    setErrors({});
    let profileId: string;
    try {
      const profile = await api().createProfile(
        name.trim(),
        photos.map((p) => ({ name: p.file.name, type: p.file.type, data: p.file })),
        { name: voice.file.name, type: voice.file.type, data: voice.file },
      );
      profileId = profile.id;
    } catch (err) {
      const byField = fieldErrors(err);
      // images[i] is the i-th photo sent: the server's reason goes beside it.
      setPhotos((ps) => ps.map((p, i) => (byField[`images[${i}]`] ? { ...p, problem: byField[`images[${i}]`] } : p)));
      if (byField.voice) setVoice((v) => v && { ...v, problem: byField.voice });
      setErrors(byField);
      const shown = Object.keys(byField).some((f) => f === "name" || f === "voice" || /^images\[\d+\]$/.test(f));
      setProblem(shown ? "The server could not use some of the files: see the reasons beside them." : errorText(err));
      setBusy(undefined);
      return;
    }
    await train(profileId, formEl);
  };

  const train = async (profileId: string, formEl: HTMLFormElement) => {
    setBusy("Starting training…");
    setErrors({});
    try {
      await api().trainProfile(profileId, chosenEngines(chosen, TRAINING_TASK_KINDS));
    } catch (err) {
      const byEngine = Object.fromEntries(Object.entries(fieldErrors(err)).filter(([f]) => f.startsWith("engines.")));
      if (Object.keys(byEngine).length) {
        setErrors(byEngine);
        setCreated(profileId);
        setProblem("The profile is saved, but its training could not start: see the reason by the engine, choose another and start it again.");
        setBusy(undefined);
        focusFirstInvalid(formEl);
        return;
      }
      // Any other reason: the profile exists, and its page offers to start training again.
    }
    router.push(`/profiles/${profileId}`);
  };

  return (
    <main id="main" className="page narrow">
      <h1>New profile</h1>
      <p className="muted">Likeness learns your face from the photos and your voice from the sample. Training starts as soon as they are uploaded.</p>
      <form className="card form" onSubmit={(e) => void submit(e)} noValidate>
        <TextField
          id="profile-name"
          label="Name"
          value={name}
          maxLength={80}
          required
          onChange={(e) => setName(e.target.value)}
          hint="Who this is, e.g. your own name."
          error={errors.name}
        />
        <PhotoDrop photos={photos} onChange={setPhotos} />
        <VoiceInput voice={voice} onChange={setVoice} />
        <EngineChoices kinds={TRAINING_TASK_KINDS} chosen={chosen} onChange={setChosen} errors={errors} />
        {problem && (
          <p role="alert" className="error-note">
            {problem}
          </p>
        )}
        <button type="submit" className="button primary wide" disabled={!!busy}>
          {busy ?? (created ? "Start training" : "Create profile and start training")}
        </button>
      </form>
    </main>
  );
}
