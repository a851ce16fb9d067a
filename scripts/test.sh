#!/usr/bin/env bash
# `npm test`: bootstrap, private Postgres/Redis for whichever of DATABASE_URL/REDIS_URL is unset
# (data in .data/test, apart from the demo's), then every suite (scripts/test-suites.sh).
# Extra arguments go to the root vitest run (not the web suite), e.g. `npm test -- apps/cli`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --test # chromium (the web suite), prometheus (the deploy/ checks)
exec node scripts/infra.mjs run --data-dir .data/test -- bash scripts/test-suites.sh "$@"
