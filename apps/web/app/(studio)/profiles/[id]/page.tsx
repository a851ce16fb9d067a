"use client";
// A profile: its training, live (or, before it starts, the engines to train with); then the photos that were used and those that were not, with
// the reasons; the voice sample; the way to make a video.
import Link from "next/link";
import { useParams, useRouter } from "next/navigation";
import { useState } from "react";
import type { Job, Profile } from "@likeness/contracts";
import { api, errorText, fieldErrors } from "@/lib/api";
import { duration } from "@/lib/format";
import { useJob } from "@/lib/use-job";
import { useResource } from "@/lib/use-resource";
import { useTitle } from "@/lib/use-title";
import { TRAINING_TASK_KINDS } from "@/lib/video-options";
import { EngineChoices, chosenEngines, type ChosenEngines } from "@/components/engine-choices";
import { JobView } from "@/components/job-view";
import { PendingPage } from "@/components/pending-page";
import { StateBadge } from "@/components/state-badge";
import { ProfilePhoto } from "@/components/photo";
import { ConfirmButton } from "@/components/confirm-button";

export default function ProfilePage() {
  const { id } = useParams<{ id: string }>();
  const router = useRouter();
  const profile = useResource(id, () => api().getProfile(id));
  const live = useJob(profile.data?.trainJobId, () => void profile.reload());
  const [problem, setProblem] = useState<string>();
  const [chosen, setChosen] = useState<ChosenEngines>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  useTitle(profile.data?.name ?? "Profile");

  if (!profile.data) return <PendingPage error={profile.error} what="the profile" />;
  const p = profile.data;

  const train = async () => {
    setProblem(undefined);
    setErrors({});
    try {
      live.follow(await api().trainProfile(p.id, chosenEngines(chosen, TRAINING_TASK_KINDS)));
      await profile.reload();
    } catch (err) {
      const byEngine = Object.fromEntries(Object.entries(fieldErrors(err)).filter(([f]) => f.startsWith("engines.")));
      setErrors(byEngine);
      if (!Object.keys(byEngine).length) setProblem(errorText(err));
    }
  };
  const remove = async () => {
    try {
      await api().deleteProfile(p.id);
      router.push("/");
    } catch (err) {
      setProblem(errorText(err));
    }
  };

  return (
    <main id="main" className="page">
      <div className="page-head">
        <div>
          <h1>{p.name}</h1>
          <p className="muted">
            <StateBadge state={p.state} /> In a scene you write yourself, this person is <code>{p.triggerWord}</code>.
          </p>
        </div>
        <div className="actions">
          {p.state === "trained" && (
            <Link href={`/videos/new?profile=${p.id}`} className="button primary">
              Make a video
            </Link>
          )}
        </div>
      </div>
      {problem && (
        <p role="alert" className="error-note">
          {problem}
        </p>
      )}

      {p.trainJobId && <JobView live={live} title={p.state === "trained" ? "Training (done)" : "Training"} />}
      {p.state === "draft" && (
        <div className="card form">
          {!p.trainJobId && <p className="notice">Training has not started. Start it when you are ready: it takes a few minutes on this machine.</p>}
          <EngineChoices kinds={TRAINING_TASK_KINDS} chosen={chosen} onChange={setChosen} errors={errors} />
          <div className="actions">
            <button type="button" className="button primary" onClick={() => void train()}>
              Start training
            </button>
          </div>
        </div>
      )}

      <Inputs profile={p} job={live.job} />

      <section className="danger-zone" aria-labelledby="delete-title">
        <h2 id="delete-title">Delete</h2>
        <ConfirmButton
          label="Delete profile"
          confirmLabel="Delete for good"
          warning="This deletes the profile, its photos, voice sample and every video made with it."
          onConfirm={remove}
        />
      </section>
    </main>
  );
}

/** The photos with what training made of each, and the voice sample. */
function Inputs({ profile: p, job }: { profile: Profile; job: Job | undefined }) {
  const prepare = job?.steps.find((s) => s.name === "prepare");
  const judged = prepare?.state === "succeeded" && prepare.outputs ? prepare.outputs : undefined;
  const rejectedList = (judged?.rejectedImages as { name: string; reason: string; index?: number }[] | undefined) ?? [];
  // By place in the upload (two photos may share a name); by name for records made before the index.
  const reasonOf = (name: string, i: number) => rejectedList.find((r) => (r.index !== undefined ? r.index === i : r.name === name))?.reason;
  const images = p.inputs.filter((i) => i.kind === "image");
  const voice = p.inputs.find((i) => i.kind === "voice");
  const used = images.length - rejectedList.length;
  return (
    <section aria-labelledby="inputs-title">
      <h2 id="inputs-title">Photos and voice</h2>
      {judged && (
        <p className="muted">
          Training used {used} of {images.length} photos{rejectedList.length ? `; ${rejectedList.length} could not be used` : ""}.
        </p>
      )}
      <ul className="grid photos">
        {images.map((img, i) => {
          const reason = reasonOf(img.name, i);
          return (
            <li key={img.name + i} className={`photo-item${reason ? " bad" : ""}`} data-testid="profile-photo" data-used={judged ? String(!reason) : undefined}>
              <ProfilePhoto profileId={p.id} position={i + 1} alt={img.name} size={160} />
              <span className="photo-name">{img.name}</span>
              {judged && (reason ? <span className="field-error">Not used: {reason}</span> : <span className="good-note">Used</span>)}
            </li>
          );
        })}
      </ul>
      {voice && (
        <p>
          Voice sample: <strong>{voice.name}</strong>
          {voice.durationSec !== undefined && <>, {duration(voice.durationSec * 1000)}</>}
        </p>
      )}
    </section>
  );
}
