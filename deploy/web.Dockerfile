# syntax=docker/dockerfile:1
# The web studio's image: the Next.js app (apps/web), production build, served by `next start`.
# Built from the repository root:  docker build -f deploy/web.Dockerfile .
# Behind Traefik (deploy/compose.yaml) the browser's /v1 requests go straight to the api; the
# app's own /v1 rewrite (fixed at build time) points at the api service for a web container
# reached without Traefik.

# ---- build: the web app's dependencies, the shared packages, the Next.js build.
FROM node:20.18.1-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY packages/contracts/package.json packages/contracts/
COPY packages/client/package.json packages/client/
COPY apps/api/package.json apps/api/
COPY apps/cli/package.json apps/cli/
COPY apps/web/package.json apps/web/
RUN npm ci --workspace=@likeness/web --include-workspace-root --no-audit --no-fund --loglevel=error
COPY packages/contracts packages/contracts
COPY packages/client packages/client
COPY apps/web apps/web
ENV NEXT_TELEMETRY_DISABLED=1 \
    LIKENESS_API_URL=http://api:8080
RUN npx --no-install tsc -b packages/client \
 && npx --no-install next build apps/web \
 && npm prune --omit=dev --workspace=@likeness/web --include-workspace-root --no-audit --no-fund --loglevel=error \
 && rm -rf packages/contracts/src packages/client/src apps/web/.next/cache

# ---- runtime: node only, non-root.
FROM node:20.18.1-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production \
    NEXT_TELEMETRY_DISABLED=1
COPY --from=build --chown=root:root /app /app
# Numeric (node, 1000): Kubernetes' runAsNonRoot can only check a numeric user.
USER 1000:1000
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=5 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:3000/signin').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node_modules/.bin/next", "start", "apps/web", "-H", "0.0.0.0", "-p", "3000"]
