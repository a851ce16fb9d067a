"use client";
// A video: while it is made, the live job; then the review: the player with its subtitles, the
// download, the script, each step's engine and time, and Edit and re-render.
import Link from "next/link";
import { useParams, useRouter } from "next/navigation";
import { useState } from "react";
import { isTerminal, type Job, type Profile, type Video } from "@likeness/contracts";
import { stepNote } from "@likeness/client";
import { api, errorText } from "@/lib/api";
import { duration, when } from "@/lib/format";
import { stepLabel, useJob } from "@/lib/use-job";
import { useResource } from "@/lib/use-resource";
import { PIPELINES, SUBTITLES } from "@/lib/video-options";
import { JobView } from "@/components/job-view";
import { PendingPage } from "@/components/pending-page";
import { StateBadge } from "@/components/state-badge";
import { EditVideo } from "@/components/edit-video";
import { ConfirmButton } from "@/components/confirm-button";
import { useTitle } from "@/lib/use-title";

export default function VideoPage() {
  const { id } = useParams<{ id: string }>();
  const router = useRouter();
  const [problem, setProblem] = useState<string>();
  const video = useResource(id, () => api().getVideo(id));
  const live = useJob(video.data?.jobId, () => void video.reload());
  const profileId = video.data?.profileId;
  const profile = useResource(profileId ?? "", () => (profileId ? api().getProfile(profileId) : Promise.resolve(undefined)));
  useTitle(video.data?.script?.title || "Video");

  if (!video.data) return <PendingPage error={video.error} what="the video" />;
  const v = video.data;
  const remove = async () => {
    try {
      await api().deleteVideo(v.id);
      router.push("/");
    } catch (err) {
      setProblem(errorText(err));
    }
  };
  const title = v.script?.title || "Untitled video";
  const ready = v.state === "succeeded";

  return (
    <main id="main" className="page">
      <div className="page-head">
        <div>
          <h1>{title}</h1>
          <p className="muted">
            <StateBadge state={v.state} /> {PIPELINES.find((p) => p.value === v.pipeline)?.label} · {v.width}×{v.height} · {when(v.createdAt)}
            {v.sourceVideoId && (
              <>
                {" "}
                · edited from <Link href={`/videos/${v.sourceVideoId}`}>another video</Link>
              </>
            )}
          </p>
        </div>
        {ready && (
          <div className="actions">
            <a href={api().videoFileUrl(v.id, true)} download className="button primary">
              Download MP4
            </a>
          </div>
        )}
      </div>

      {ready ? <Player video={v} /> : <JobView live={live} title={v.state === "failed" ? "Generation failed" : v.state === "cancelled" ? "Generation cancelled" : "Generating"} />}

      <div className="columns">
        <Script video={v} profile={profile.data} />
        {ready && live.job && <StepTable job={live.job} />}
      </div>

      {ready && v.script && <EditVideo video={v} />}

      {isTerminal(v.state) && (
        <section className="danger-zone" aria-labelledby="delete-title">
          <h2 id="delete-title">Delete</h2>
          <ConfirmButton label="Delete video" confirmLabel="Delete for good" warning="This deletes the video and everything made for it." onConfirm={remove} />
          {problem && (
            <p role="alert" className="error-note">
              {problem}
            </p>
          )}
        </section>
      )}
    </main>
  );
}

function Player({ video: v }: { video: Video }) {
  return (
    <section aria-label="Player" className="player">
      <video controls playsInline preload="metadata" src={api().videoFileUrl(v.id)} style={{ aspectRatio: `${v.width} / ${v.height}` }} data-testid="player">
        {v.subtitles === "soft" && <track kind="subtitles" srcLang="en" label="English" src={api().subtitlesUrl(v.id)} default />}
        Your browser cannot play this video: download it instead.
      </video>
      <p className="muted">
        {v.durationSec ? duration(v.durationSec * 1000) : ""} · subtitles {SUBTITLES.find((s) => s.value === v.subtitles)?.label.toLowerCase()}
      </p>
    </section>
  );
}

/** The stage as a person reads it: the profile's name where the prompt has its trigger word. */
function readable(text: string, profile: Profile | undefined): string {
  return profile ? text.replaceAll(profile.triggerWord, profile.name) : text;
}

function Script({ video: v, profile }: { video: Video; profile: Profile | undefined }) {
  return (
    <section aria-labelledby="script-title" className="card">
      <h2 id="script-title">Script</h2>
      {v.script ? (
        <dl className="script">
          <dt>Title</dt>
          <dd>{v.script.title || "—"}</dd>
          <dt>Stage</dt>
          <dd>{v.script.stage ? readable(v.script.stage, profile) : "—"}</dd>
          <dt>Narration</dt>
          <dd className="narration">{v.script.narration}</dd>
        </dl>
      ) : (
        <p className="muted">The script is being written…</p>
      )}
    </section>
  );
}

function StepTable({ job }: { job: Job }) {
  return (
    <section aria-labelledby="steps-title" className="card">
      <h2 id="steps-title">How it was made</h2>
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Step</th>
              <th scope="col">Engine</th>
              <th scope="col">Time</th>
              <th scope="col">Note</th>
            </tr>
          </thead>
          <tbody>
            {job.steps.map((s) => (
              <tr key={s.name} data-step={s.name}>
                <th scope="row">{stepLabel(s.name)}</th>
                <td>{s.engine ?? "—"}</td>
                <td>{s.reused ? "reused" : s.durationMs != null ? duration(s.durationMs) : "—"}</td>
                <td>{stepNote(s.outputs) ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p className="muted">
        {job.finishedAt && `${duration(Date.parse(job.finishedAt) - Date.parse(job.createdAt))} from queued to ready`}
        {job.attempt > 1 && `, in ${job.attempt} attempts`}
      </p>
    </section>
  );
}
