#!/usr/bin/env bash
# Prints the path of a helm binary: $HELM when set, else helm built once from the
# Go module proxy at HELM_VERSION and cached outside the repository.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"

if [ -n "${HELM:-}" ]; then
  [ -x "$HELM" ] || { echo "helm.sh: HELM=$HELM is not executable" >&2; exit 1; }
  echo "$HELM"
  exit 0
fi

bin="${HERALD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/herald}/tools/helm-${HELM_VERSION}"
if [ ! -x "$bin/helm" ]; then
  echo "helm.sh: building helm ${HELM_VERSION} from the Go module proxy (first run only)" >&2
  mkdir -p "$bin"
  GOBIN="$bin" CGO_ENABLED=0 GOFLAGS= go install -trimpath -ldflags='-s -w' "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
fi
echo "$bin/helm"
