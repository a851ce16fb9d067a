#!/usr/bin/env bash
# `npm start`: the studio on this machine (scripts/start.mjs). The web app's /v1 rewrite to the api
# is fixed when it is built, so the bootstrap builds it for this api's URL (derived from API_PORT,
# default 8080) and rebuilds it when that changes. The ports are checked first: a taken one is
# one line and exit 1, before a build that could take a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
node scripts/start.mjs --check-ports
export LIKENESS_API_URL="http://127.0.0.1:${API_PORT:-8080}"
bash scripts/bootstrap.sh
exec node scripts/start.mjs "$@"
