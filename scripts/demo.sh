#!/usr/bin/env bash
# `npm run demo`: bootstrap, then the whole stack end to end through the real CLI (scripts/demo.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec node scripts/demo.mjs "$@"
