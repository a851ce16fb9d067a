"use client";
import Link from "next/link";
import { usePathname } from "next/navigation";
import { useSession } from "@/lib/session";

const NAV = [
  { href: "/", label: "Home" },
  { href: "/profiles/new", label: "New profile" },
  { href: "/videos/new", label: "New video" },
];

export function StudioHeader() {
  const { user, signOut } = useSession();
  const path = usePathname();
  return (
    <header className="topbar">
      <Link href="/" className="brand">
        <span className="logo" aria-hidden="true">
          ◐
        </span>{" "}
        Likeness
      </Link>
      <nav aria-label="Studio">
        <ul>
          {NAV.map((n) => (
            <li key={n.href}>
              <Link href={n.href} aria-current={path === n.href ? "page" : undefined}>
                {n.label}
              </Link>
            </li>
          ))}
        </ul>
      </nav>
      <div className="account">
        <span className="muted account-email">{user.email}</span>
        <button type="button" className="button small" onClick={() => void signOut()}>
          Sign out
        </button>
      </div>
    </header>
  );
}
