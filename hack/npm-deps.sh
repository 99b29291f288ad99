#!/usr/bin/env bash
# Installs the npm packages of the test suites that drive a Node program
# (test/eventsource runs the eventsource package, test/browser drives
# Chromium with playwright-core), exactly as their
# package-lock.json pins them, with `npm ci`. It does so only when a suite's
# node_modules is missing or older than its package.json or package-lock.json,
# so a second run costs nothing. Quiet on success; on failure it prints npm's
# output.
#
# Needs Node.js 20 or newer and npm, from the npm registry only.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_MAJOR_MIN=20
SUITES=(test/eventsource test/browser)

fail() { echo "npm-deps.sh: $*" >&2; exit 1; }

command -v node >/dev/null ||
  fail "node is not installed; the eventsource and browser tests need Node.js ${NODE_MAJOR_MIN} or newer and npm (Debian: apt-get install nodejs npm)"
command -v npm >/dev/null ||
  fail "npm is not installed; the eventsource and browser tests need it to install their packages (Debian: apt-get install npm)"
node -e "process.exit(Number(process.versions.node.split('.')[0]) >= ${NODE_MAJOR_MIN} ? 0 : 1)" ||
  fail "node $(node --version) is too old: the eventsource and browser tests need Node.js ${NODE_MAJOR_MIN} or newer"

# stale DIR: whether DIR's installed packages are missing or older than its
# manifest or lock file. npm writes node_modules/.package-lock.json on every
# install, so its time is the time of the last install.
stale() {
  local installed="$1/node_modules/.package-lock.json"
  [ ! -f "$installed" ] || [ "$1/package-lock.json" -nt "$installed" ] || [ "$1/package.json" -nt "$installed" ]
}

for dir in "${SUITES[@]}"; do
  [ -f "$dir/package-lock.json" ] || fail "$dir/package-lock.json is missing"
  stale "$dir" || continue
  log="$(mktemp)"
  if ! (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=warn) >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    fail "npm ci failed in $dir (output above)"
  fi
  rm -f "$log"
done
