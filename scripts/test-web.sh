#!/usr/bin/env bash
# `npm run test:web`: the browser tests (apps/web/test, their own vitest config). Bootstrap with
# Debian's chromium, private Postgres/Redis for whichever of DATABASE_URL/REDIS_URL is unset (data
# in .data/test-web, apart from npm test's), then vitest. The harness (apps/web/test/studio.ts)
# runs the api on the port the web build was made for (API_PORT, default 8080), so that port must
# be free. Extra arguments go to vitest, e.g. `npm run test:web -- smoke`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --browser
exec node scripts/infra.mjs run --data-dir .data/test-web -- npx --no-install vitest run --config apps/web/vitest.config.ts "$@"
