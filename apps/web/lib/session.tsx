"use client";
// Who is signed in, for the studio's pages. The session itself is the httpOnly cookie the api set;
// this only asks the api whose it is (GET /v1/me), and signs out on the server.
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from "react";
import { useRouter } from "next/navigation";
import type { User } from "@likeness/contracts";
import { api, errorText, isSignedOut } from "./api";

interface SessionValue {
  user: User;
  signOut: () => Promise<void>;
}

const SessionContext = createContext<SessionValue | null>(null);

export function useSession(): SessionValue {
  const s = useContext(SessionContext);
  if (!s) throw new Error("useSession outside <RequireSession>");
  return s;
}

/** Renders its children only for a signed-in user; anyone else goes to /signin and sees no data. */
export function RequireSession({ children }: { children: ReactNode }) {
  const router = useRouter();
  const [user, setUser] = useState<User | null>(null);
  const [problem, setProblem] = useState<string>();

  useEffect(() => {
    let live = true;
    api()
      .me()
      .then((u) => live && setUser(u))
      .catch((err: unknown) => {
        if (!live) return;
        if (isSignedOut(err)) router.replace(`/signin?next=${encodeURIComponent(window.location.pathname + window.location.search)}`);
        else setProblem(errorText(err));
      });
    return () => {
      live = false;
    };
  }, [router]);

  const signOut = useCallback(async () => {
    await api().logout().catch(() => undefined); // signed out already, or the server is away: the page leaves anyway
    router.replace("/signin");
  }, [router]);

  if (problem) {
    return (
      <main id="main" className="page narrow">
        <h1>The studio cannot load</h1>
        <p role="alert" className="error-note">{problem}</p>
        <button type="button" className="button" onClick={() => window.location.reload()}>
          Try again
        </button>
      </main>
    );
  }
  if (!user) {
    return (
      <main id="main" className="page narrow" aria-busy="true">
        <p className="muted">Loading…</p>
      </main>
    );
  }
  return <SessionContext.Provider value={{ user, signOut }}>{children}</SessionContext.Provider>;
}
