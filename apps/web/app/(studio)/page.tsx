"use client";
// Home: the person's profiles (state, a photo) and recent videos (state), and the way into each flow.
import Link from "next/link";
import type { Profile, Video } from "@likeness/contracts";
import { api, errorText } from "@/lib/api";
import { when } from "@/lib/format";
import { useResource } from "@/lib/use-resource";
import { StateBadge } from "@/components/state-badge";
import { ProfilePhoto } from "@/components/photo";
import { useTitle } from "@/lib/use-title";

export default function HomePage() {
  const profiles = useResource("profiles", () => api().listProfiles());
  const videos = useResource("videos", () => api().listVideos());
  useTitle("Your studio");
  const trained = profiles.data?.filter((p) => p.state === "trained") ?? [];
  const names = new Map(profiles.data?.map((p) => [p.id, p.name]));

  return (
    <main id="main" className="page">
      <div className="page-head">
        <h1>Your studio</h1>
        <div className="actions">
          {/* Named apart from the header's links, so each control has a name of its own. */}
          <Link href="/profiles/new" className="button">
            Create a profile
          </Link>
          {trained.length > 0 && (
            <Link href="/videos/new" className="button primary">
              Make a video
            </Link>
          )}
        </div>
      </div>

      <section aria-labelledby="profiles-title">
        <h2 id="profiles-title">Profiles</h2>
        {profiles.error ? (
          <p role="alert" className="error-note">
            {errorText(profiles.error)}
          </p>
        ) : !profiles.data ? (
          <p className="muted">Loading profiles…</p>
        ) : profiles.data.length === 0 ? (
          <div className="empty">
            <p className="empty-title">No profiles yet</p>
            <p>
              A profile is your likeness: 10 to 30 photos of your face and a short sample of your voice. Likeness learns both, then
              makes videos of you saying what you write.
            </p>
            <Link href="/profiles/new" className="button primary">
              Create your first profile
            </Link>
          </div>
        ) : (
          <ul className="grid profiles">
            {profiles.data.map((p) => (
              <ProfileCard key={p.id} profile={p} />
            ))}
          </ul>
        )}
      </section>

      <section aria-labelledby="videos-title">
        <h2 id="videos-title">Recent videos</h2>
        {videos.error ? (
          <p role="alert" className="error-note">
            {errorText(videos.error)}
          </p>
        ) : !videos.data ? (
          <p className="muted">Loading videos…</p>
        ) : videos.data.length === 0 ? (
          <div className="empty">
            <p className="empty-title">No videos yet</p>
            {trained.length > 0 ? (
              <>
                <p>Write a narration or give a topic, and your profile speaks it.</p>
                <Link href="/videos/new" className="button primary">
                  Make your first video
                </Link>
              </>
            ) : (
              <p>Once a profile is trained, you can make videos with it here.</p>
            )}
          </div>
        ) : (
          <ul className="list videos">
            {videos.data.slice(0, 20).map((v) => (
              <VideoRow key={v.id} video={v} profileName={names.get(v.profileId)} />
            ))}
          </ul>
        )}
      </section>
    </main>
  );
}

function ProfileCard({ profile: p }: { profile: Profile }) {
  const photos = p.inputs.filter((i) => i.kind === "image").length;
  return (
    <li className="card profile-card">
      <Link href={`/profiles/${p.id}`} className="card-link">
        <ProfilePhoto profileId={p.id} position={1} alt="" size={160} />
        <span className="profile-name">{p.name}</span>
      </Link>
      <div className="card-foot">
        <StateBadge state={p.state} />
        <span className="muted">
          {photos} photo{photos === 1 ? "" : "s"}
        </span>
      </div>
    </li>
  );
}

function VideoRow({ video: v, profileName }: { video: Video; profileName: string | undefined }) {
  const title = v.script?.title || v.script?.narration.slice(0, 60) || "Untitled video";
  return (
    <li className="video-row">
      <Link href={`/videos/${v.id}`}>{title}</Link>
      <span className="muted">
        {profileName ?? "a deleted profile"} · {v.width}×{v.height} · {when(v.createdAt)}
      </span>
      <StateBadge state={v.state} />
    </li>
  );
}
