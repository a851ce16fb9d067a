#!/usr/bin/env bash
# `npm run bench`: bootstrap, the worker's `bench` extra (resemblyzer on CPU torch) once, then the
# run itself (bench/run.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# Installed again only when worker/pyproject.toml changed (or the stamp is missing): pip takes
# seconds even when there is nothing to do, and torch is large the first time.
STAMP=worker/.venv/.likeness-bench
want=$(sha256sum worker/pyproject.toml | cut -c1-64)
if [ "$want" != "$(cat "$STAMP" 2>/dev/null || true)" ]; then
  t=$(date +%s)
  if ! worker/.venv/bin/python -m pip install -q --disable-pip-version-check -e 'worker[bench]' >.data/logs/bench-pip.log 2>&1; then
    echo "bench: FAILED: pip install -e 'worker[bench]' (full log: .data/logs/bench-pip.log)" >&2
    tail -n 40 .data/logs/bench-pip.log >&2
    exit 1
  fi
  echo "$want" >"$STAMP"
  echo "bench: worker venv: pip install -e 'worker[bench]' ($(( $(date +%s) - t )) s)" >&2
fi
exec node bench/run.mjs "$@"
