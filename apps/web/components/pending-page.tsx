"use client";
import { notFound } from "next/navigation";
import { errorText, isNotFound } from "@/lib/api";

/** A page whose resource has not loaded: the 404 page when it is not the user's, its error, or a loading line. */
export function PendingPage({ error, what }: { error: unknown; what: string }) {
  if (isNotFound(error)) notFound();
  return (
    <main id="main" className="page">
      {error ? (
        <p role="alert" className="error-note">
          {errorText(error)}
        </p>
      ) : (
        <p className="muted">Loading {what}…</p>
      )}
    </main>
  );
}
