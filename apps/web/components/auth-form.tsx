"use client";
// Sign in and sign up: one form. The api sets the httpOnly session cookie (session: "cookie");
// the page never holds a token.
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { useEffect, useState, type FormEvent } from "react";
import { Credentials } from "@likeness/contracts";
import { api, errorText, fieldErrors } from "@/lib/api";
import { TextField } from "./text-field";
import { focusFirstInvalid } from "@/lib/focus-invalid";

export function AuthForm({ mode }: { mode: "signin" | "signup" }) {
  const router = useRouter();
  const next = safeNext(useSearchParams().get("next"));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [problem, setProblem] = useState<string>();
  const [busy, setBusy] = useState(false);
  // The page is served as HTML first: until the script runs, the form must not submit on its own.
  const [ready, setReady] = useState(false);
  useEffect(() => setReady(true), []);
  // Already signed in (the cookie is still good): straight on.
  useEffect(() => {
    api()
      .me()
      .then(() => router.replace(next))
      .catch(() => undefined);
  }, [router, next]);
  const signup = mode === "signup";

  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    setProblem(undefined);
    // Read from the form itself: what was typed before the script ran counts too.
    const formEl = e.currentTarget;
    const form = new FormData(formEl);
    const email = String(form.get("email") ?? "").trim();
    const password = String(form.get("password") ?? "");
    // The server's rules, checked here first so the person learns at once.
    const local = signup ? Credentials.safeParse({ email, password }) : undefined;
    if (local && !local.success) {
      setErrors(Object.fromEntries(local.error.issues.map((i) => [String(i.path[0]), i.path[0] === "email" ? "enter an email address" : i.message])));
      focusFirstInvalid(formEl);
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      await api().openSession(signup ? "signup" : "login", email, password);
      router.replace(next);
    } catch (err) {
      const byField = fieldErrors(err);
      setErrors(byField);
      if (Object.keys(byField).length === 0) setProblem(errorText(err));
      else focusFirstInvalid(formEl);
      setBusy(false);
    }
  };

  return (
    <main id="main" className="page auth">
      <div className="auth-brand" aria-hidden="true">
        <span className="logo">◐</span> Likeness
      </div>
      <h1>{signup ? "Create your studio account" : "Sign in to Likeness"}</h1>
      <p className="muted">
        {signup ? "Your profiles and videos stay on this server, visible only to you." : "Welcome back. Your profiles and videos are waiting."}
      </p>
      <form className="card form" method="post" onSubmit={(e) => void submit(e)} noValidate>
        <TextField id="email" label="Email" type="email" autoComplete="email" required error={errors.email} />
        <TextField
          id="password"
          label="Password"
          type="password"
          autoComplete={signup ? "new-password" : "current-password"}
          required
          minLength={signup ? 10 : undefined}
          hint={signup ? "At least 10 characters." : undefined}
          error={errors.password}
        />
        {problem && (
          <p role="alert" className="error-note">
            {problem}
          </p>
        )}
        <button type="submit" className="button primary wide" disabled={busy || !ready}>
          {busy ? (signup ? "Creating account…" : "Signing in…") : signup ? "Create account" : "Sign in"}
        </button>
      </form>
      <p className="switch">
        {signup ? (
          <>
            Have an account? <Link href={`/signin${next !== "/" ? `?next=${encodeURIComponent(next)}` : ""}`}>Sign in</Link>
          </>
        ) : (
          <>
            New here? <Link href={`/signup${next !== "/" ? `?next=${encodeURIComponent(next)}` : ""}`}>Create an account</Link>
          </>
        )}
      </p>
    </main>
  );
}

/** Only a path of this site: `next` must not send the person elsewhere after sign-in. */
function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/";
}
