#!/usr/bin/env bash
# Every suite (typecheck, lint, vitest, pytest, web), always all; a summary line each; non-zero when
# any fails. Expects DATABASE_URL and REDIS_URL (scripts/test.sh provides them), and for the web
# suite the web app's build and /usr/bin/chromium (scripts/bootstrap.sh --browser).
set -uo pipefail
cd "$(dirname "$0")/.."
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
summary=()
status=0

echo "== typecheck (TypeScript sources and tests, strict) =="
t=$(now)
npm run --silent typecheck
rc=$?
[ $rc -eq 0 ] && summary+=("tsc     passed  ($(took "$t"))") || { summary+=("tsc     FAILED (exit $rc, $(took "$t"))"); status=1; }

echo "== lint (eslint, ruff, mypy; zero warnings) =="
t=$(now)
npm run --silent lint
rc=$?
[ $rc -eq 0 ] && summary+=("lint    passed  ($(took "$t"))") || { summary+=("lint    FAILED (exit $rc, $(took "$t"))"); status=1; }

echo "== vitest (packages/contracts, apps/api, apps/cli, e2e) =="
t=$(now)
npx --no-install vitest run "$@"
rc=$?
[ $rc -eq 0 ] && summary+=("vitest  passed  ($(took "$t"))") || { summary+=("vitest  FAILED (exit $rc, $(took "$t"))"); status=1; }

echo "== pytest (worker/tests) =="
t=$(now)
# Two processes, each taking whole files (their fixtures start workers and fakes per file); every
# test has its own database, Redis prefix, ports and folders, so they do not meet.
worker/.venv/bin/python -m pytest worker/tests -q -n 2 --dist loadfile
rc=$?
# Exit 5 means no tests were collected: that is a failure too.
case $rc in
  0) summary+=("pytest  passed  ($(took "$t"))") ;;
  5) summary+=("pytest  FAILED (no tests collected, $(took "$t"))"); status=1 ;;
  *) summary+=("pytest  FAILED (exit $rc, $(took "$t"))"); status=1 ;;
esac

echo "== web (apps/web/test: the studio in chromium; what npm run test:web runs) =="
t=$(now)
npx --no-install vitest run --config apps/web/vitest.config.ts
rc=$?
[ $rc -eq 0 ] && summary+=("web     passed  ($(took "$t"))") || { summary+=("web     FAILED (exit $rc, $(took "$t"))"); status=1; }

echo
echo "== summary =="
printf '%s\n' "${summary[@]}"
exit $status
