#!/usr/bin/env bash
# Provides the kube-apiserver and etcd binaries that envtest starts, built from
# the Go module proxy (no prebuilt downloads are reachable from CI), and prints
# the directory that holds them: use it as KUBEBUILDER_ASSETS.
#
# A preset KUBEBUILDER_ASSETS that already holds both binaries is honoured as is.
# Builds are cached outside the repository, keyed by version, so only the first
# run on a machine pays for them (about 8 minutes for kube-apiserver, 1 for etcd).
#
# Environment:
#   KUBEBUILDER_ASSETS   use these binaries instead of building
#   HERALD_CACHE_DIR     cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/herald)
#   KUBERNETES_VERSION   kube-apiserver version (default below)
#   ETCD_VERSION         etcd version (default below)
set -euo pipefail

KUBERNETES_VERSION="${KUBERNETES_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
# Staging modules (k8s.io/api, …) are versioned 0.<minor>.<patch> alongside k8s.io/kubernetes 1.<minor>.<patch>.
STAGING_VERSION="0.${KUBERNETES_VERSION#1.}"

log() { echo "envtest-assets: $*" >&2; }

has_assets() { [ -x "$1/kube-apiserver" ] && [ -x "$1/etcd" ]; }

if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  if has_assets "$KUBEBUILDER_ASSETS"; then
    echo "$KUBEBUILDER_ASSETS"
    exit 0
  fi
  log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS does not contain executable kube-apiserver and etcd"
  exit 1
fi

cache_root="${HERALD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/herald}"
assets="$cache_root/envtest/k8s-v${KUBERNETES_VERSION}-etcd-v${ETCD_VERSION}"
if has_assets "$assets"; then
  echo "$assets"
  exit 0
fi
mkdir -p "$assets"

# One build at a time per machine: concurrent test runs (make test in several
# clones) wait for the first build instead of racing it on the same files.
exec 9>"$assets.lock"
if ! flock -n 9; then
  log "waiting for another build of $assets to finish"
  flock 9
fi
if has_assets "$assets"; then
  echo "$assets"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOWORK=off

# kubernetes_module writes a scratch module that builds commands of
# k8s.io/kubernetes at KUBERNETES_VERSION and prints its directory.
kubernetes_module() {
  local dir="$work/kubernetes"
  if [ -f "$dir/go.mod" ]; then echo "$dir"; return; fi
  mkdir -p "$dir"
  local src
  src="$(cd "$dir" && go mod download -json "k8s.io/kubernetes@v${KUBERNETES_VERSION}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  # The module zip leaves staging/ out (each is a module of its own); its go.mod names them.
  local staging
  staging="$(sed -n 's#^[[:space:]]*k8s.io/\([^[:space:]]*\) => ./staging/src/k8s.io/.*#\1#p' "$src/go.mod")"
  [ -n "$staging" ] || { log "found no staging modules in $src/go.mod"; return 1; }
  {
    echo "module herald.local/envtest/kubernetes"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes v${KUBERNETES_VERSION}"
    echo
    # k8s.io/kubernetes requires its staging modules at v0.0.0; point each at its published release.
    for m in $staging; do
      echo "replace k8s.io/$m => k8s.io/$m v${STAGING_VERSION}"
    done
  } >"$dir/go.mod"
  (cd "$dir" && go get "k8s.io/kubernetes/cmd/kube-apiserver@v${KUBERNETES_VERSION}" "k8s.io/kubernetes/cmd/kubectl@v${KUBERNETES_VERSION}" >&2)
  echo "$dir"
}

# build_kubernetes_command NAME builds k8s.io/kubernetes/cmd/NAME into the assets.
build_kubernetes_command() {
  log "building $1 v${KUBERNETES_VERSION} from the Go module proxy (first run only, several minutes)"
  local dir
  dir="$(kubernetes_module)"
  (cd "$dir" && go build -trimpath -ldflags='-s -w' -o "$assets/$1.tmp" "k8s.io/kubernetes/cmd/$1")
  mv "$assets/$1.tmp" "$assets/$1"
}

build_etcd() {
  log "building etcd v${ETCD_VERSION} from the Go module proxy (first run only, about a minute)"
  local dir="$work/etcd"
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<MOD
module herald.local/envtest/etcd

go 1.26

require go.etcd.io/etcd/server/v3 v${ETCD_VERSION}
MOD
  cat >"$dir/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$dir" && go mod tidy >&2 && go build -trimpath -ldflags='-s -w' -o "$assets/etcd.tmp" .)
  mv "$assets/etcd.tmp" "$assets/etcd"
}

[ -x "$assets/etcd" ] || build_etcd
[ -x "$assets/kube-apiserver" ] || build_kubernetes_command kube-apiserver
# The tests drive the real kubectl: the machine's if it has one, else this build.
command -v kubectl >/dev/null || [ -x "$assets/kubectl" ] || build_kubernetes_command kubectl
has_assets "$assets" || { log "build finished but $assets is incomplete"; exit 1; }
echo "$assets"
