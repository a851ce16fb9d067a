"use client";
// Anything a page did not expect: a sentence and a way on, never a stack trace.
import Link from "next/link";

export default function ErrorPage({ reset }: { error: Error; reset: () => void }) {
  return (
    <main id="main" className="page narrow center">
      <h1>Something went wrong</h1>
      <p className="muted">The page hit a problem it did not expect. Your profiles and videos are safe on the server.</p>
      <div className="actions">
        <button type="button" className="button primary" onClick={reset}>
          Try again
        </button>
        <Link href="/" className="button">
          Back to your studio
        </Link>
      </div>
    </main>
  );
}
