import type { Metadata } from "next";
import Link from "next/link";

export const metadata: Metadata = { title: "Page not found" };

export default function NotFound() {
  return (
    <main id="main" className="page narrow center">
      <p className="big-code" aria-hidden="true">
        404
      </p>
      <h1>Page not found</h1>
      <p className="muted">There is nothing here, or it belongs to someone else.</p>
      <Link href="/" className="button primary">
        Back to your studio
      </Link>
    </main>
  );
}
