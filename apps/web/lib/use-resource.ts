"use client";
// Load something from the api for a page: its data, the error, and a way to load it again. A 401
// sends the user to sign in; a 404 is the page's to turn into notFound().
import { useCallback, useEffect, useRef, useState } from "react";
import { useRouter } from "next/navigation";
import { isSignedOut } from "./api";

export interface Resource<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => Promise<void>;
}

/** `key` names what is loaded (e.g. the id in the URL): a new key loads again. */
export function useResource<T>(key: string, load: () => Promise<T>): Resource<T> {
  const router = useRouter();
  const [data, setData] = useState<T>();
  const [error, setError] = useState<unknown>();
  const [loading, setLoading] = useState(true);
  const loadRef = useRef(load);
  useEffect(() => {
    loadRef.current = load;
  });

  const reload = useCallback(async () => {
    try {
      setData(await loadRef.current());
      setError(undefined);
    } catch (err) {
      if (isSignedOut(err)) router.replace(`/signin?next=${encodeURIComponent(window.location.pathname)}`);
      setError(err);
    } finally {
      setLoading(false);
    }
  }, [router]);

  useEffect(() => {
    setLoading(true);
    void reload();
  }, [key, reload]);

  return { data, error, loading, reload };
}
