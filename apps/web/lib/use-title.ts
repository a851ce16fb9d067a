"use client";
import { useEffect } from "react";

/** The page's title (the studio's pages are client pages: Next's metadata cannot name them). */
export function useTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · Likeness`;
  }, [title]);
}
