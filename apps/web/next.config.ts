// The studio talks only to the public api, at the same origin: /v1/* (REST and the job WebSocket)
// is rewritten to the api. Rewrites are fixed when the app is built, so the launcher rebuilds it
// when LIKENESS_API_URL changes. Behind Traefik (deploy/compose.yaml) /v1 never reaches Next.
import type { NextConfig } from "next";
import { UPLOAD_LIMITS } from "@likeness/contracts";

const api = process.env.LIKENESS_API_URL ?? "http://127.0.0.1:8080";

const config: NextConfig = {
  reactStrictMode: true,
  poweredByHeader: false,
  // The workspace packages are ESM built by tsc; Next bundles them for the browser.
  transpilePackages: ["@likeness/client", "@likeness/contracts"],
  experimental: {
    // Uploads of a whole profile and long video downloads go through the rewrite.
    proxyTimeout: 10 * 60_000,
    // Next keeps a copy of a proxied request's body, 10 MB by default, and a larger profile upload
    // would hang: allow the api's own limit for all the files together, plus the form's fields.
    proxyClientMaxBodySize: UPLOAD_LIMITS.maxTotalBytes + 1024 * 1024,
  },
  async rewrites() {
    return [{ source: "/v1/:path*", destination: `${api}/v1/:path*` }];
  },
};

export default config;
