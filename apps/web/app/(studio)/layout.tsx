import type { ReactNode } from "react";
import { RequireSession } from "@/lib/session";
import { StudioHeader } from "@/components/studio-header";

export default function StudioLayout({ children }: { children: ReactNode }) {
  return (
    <RequireSession>
      <StudioHeader />
      {children}
    </RequireSession>
  );
}
