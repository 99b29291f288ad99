#!/usr/bin/env bash
# Prints the path of a Chromium binary for the browser test
# (hack/localplatform/browser_test.go): $CHROMIUM when set, else the first of
# chromium and chromium-browser on PATH, else Debian's chromium package,
# installed with apt-get (as root) the first time. Quiet on success: stdout
# holds the path only, so that CHROMIUM="$(hack/chromium.sh)" works.
set -euo pipefail

fail() { echo "chromium.sh: $*" >&2; exit 1; }

if [ -n "${CHROMIUM:-}" ]; then
  [ -x "$CHROMIUM" ] || fail "CHROMIUM=$CHROMIUM is not executable"
  echo "$CHROMIUM"
  exit 0
fi

find_chromium() { command -v chromium || command -v chromium-browser; }

if ! bin="$(find_chromium)"; then
  command -v apt-get >/dev/null ||
    fail "no chromium on PATH and no apt-get to install Debian's chromium package; install Chromium and set CHROMIUM to its path"
  [ "$(id -u)" -eq 0 ] ||
    fail "no chromium on PATH; installing Debian's chromium package needs root: sudo apt-get install -y --no-install-recommends chromium (or set CHROMIUM to a Chromium binary)"
  echo "chromium.sh: installing Debian's chromium package (first run only)" >&2
  log="$(mktemp)"
  if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    fail "apt-get could not install chromium (output above)"
  fi
  rm -f "$log"
  bin="$(find_chromium)" || fail "the chromium package is installed, but no chromium is on PATH"
fi
echo "$bin"
