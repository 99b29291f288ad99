#!/usr/bin/env bash
# Fails when the generated code or manifests, or the formatting, in the work tree
# are not what the sources produce. It regenerates them in place, so after a
# failure the tree holds the right files: review and commit them.
set -euo pipefail
cd "$(dirname "$0")/.."

generated() {
  find api config/crd/bases config/rbac charts/herald/crds charts/herald/files -type f \( -name 'zz_generated.*.go' -o -name '*.yaml' \) -print0 |
    sort -z | xargs -0 sha256sum
}

before="$(generated)"
make --no-print-directory -s generate manifests >/dev/null
after="$(generated)"

status=0
if [ "$before" != "$after" ]; then
  echo "generated files were out of date and have been regenerated; commit them:" >&2
  diff <(echo "$before") <(echo "$after") | sed -n 's/^> [0-9a-f]*  /  /p' >&2
  status=1
fi

unformatted="$(gofmt -l $(git ls-files --cached --others --exclude-standard '*.go'))"
if [ -n "$unformatted" ]; then
  echo "gofmt would change these files; run 'make fmt':" >&2
  echo "$unformatted" | sed 's/^/  /' >&2
  status=1
fi
exit "$status"
