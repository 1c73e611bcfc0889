#!/usr/bin/env bash
# A real, local Kubernetes API server (etcd + kube-apiserver, no kubelet, no controller
# manager, no scheduler) for machines without Docker: tests, CI, a laptop. The binaries
# (kube-apiserver, kubectl, etcd) are built from their Go modules, pinned by the go.mod/go.sum
# files next to this script, into .cache/kube/<version>-<hash of those files>/bin at the repo
# root; a second build with the same files is a no-op.
#
#   infra/kube/kube.sh build
#   infra/kube/kube.sh start [--dir DIR]     prints the kubeconfig path on stdout
#   infra/kube/kube.sh stop  [--dir DIR]
#   infra/kube/kube.sh env   [--dir DIR]     KUBECONFIG=… lines for `eval`/`source`
#   infra/kube/kube.sh bin-dir               where the built binaries are
#
# `start` makes a CA and serving certs with openssl, a static token file with one admin
# (group system:masters), a service-account signing key pair, starts etcd and kube-apiserver
# on free 127.0.0.1 ports with RBAC on, writes DIR/kubeconfig (admin token, CA data) and waits
# for /readyz. Progress goes to stderr.
#
# Environment: KUBE_DIR (default .cache/kube/run), KUBE_START_TIMEOUT (s, default 60),
# KUBE_STOP_TIMEOUT (s, default 20), GOFLAGS/GOPROXY as usual for the build.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
APISERVER_MOD="$SCRIPT_DIR/apiserver"
ETCD_MOD="$SCRIPT_DIR/etcd"

die() { echo "kube.sh: error: $*" >&2; exit 1; }
say() { echo "kube.sh: $*" >&2; }

# The versions are those the go.mod files pin, so a bump there is the only place to change.
mod_version() { sed -n "s#^[[:space:]]*$2 \(v[^ ]*\).*#\1#p" "$1/go.mod" | head -n1; }
KUBE_VERSION=$(mod_version "$APISERVER_MOD" 'k8s.io/kubernetes')
ETCD_VERSION=$(mod_version "$ETCD_MOD" 'go.etcd.io/etcd/server/v3')
[[ -n "$KUBE_VERSION" ]] || die "no k8s.io/kubernetes version in $APISERVER_MOD/go.mod"
[[ -n "$ETCD_VERSION" ]] || die "no go.etcd.io/etcd/server/v3 version in $ETCD_MOD/go.mod"
MODS_HASH=$(cat "$APISERVER_MOD/go.mod" "$APISERVER_MOD/go.sum" "$ETCD_MOD/go.mod" "$ETCD_MOD/go.sum" \
  | sha256sum | cut -c1-12)
CACHE_DIR="$REPO_ROOT/.cache/kube/$KUBE_VERSION-$MODS_HASH"
BIN_DIR="$CACHE_DIR/bin"

DEFAULT_DIR=${KUBE_DIR:-$REPO_ROOT/.cache/kube/run}
START_TIMEOUT=${KUBE_START_TIMEOUT:-60}
STOP_TIMEOUT=${KUBE_STOP_TIMEOUT:-20}

built() { [[ -f "$BIN_DIR/.complete" ]]; }

# ---------------------------------------------------------------- build

cmd_build() {
  command -v go >/dev/null 2>&1 || die "Go not found: install it (Debian: apt-get install golang-go)"
  mkdir -p "$REPO_ROOT/.cache/kube"
  # Tests and setup may build at the same time; one builds, the other waits for it.
  exec 9>"$REPO_ROOT/.cache/kube/.build.lock"
  flock 9
  if built; then
    say "kube-apiserver $KUBE_VERSION, kubectl, etcd $ETCD_VERSION already built in $BIN_DIR"
    return 0
  fi
  local tmp="$CACHE_DIR/bin.tmp.$$" started=$SECONDS
  rm -rf "$tmp" && mkdir -p "$tmp"
  local major minor
  major=$(cut -d. -f1 <<<"${KUBE_VERSION#v}")
  minor=$(cut -d. -f2 <<<"$KUBE_VERSION")
  # What Kubernetes' own build (hack/lib/version.sh) stamps; without it the server reports
  # v0.0.0 and kubectl warns about version skew.
  local kube_ldflags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    kube_ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    kube_ldflags+=" -X $pkg.gitTreeState=clean"
  done
  say "building kube-apiserver and kubectl $KUBE_VERSION (a cold build takes 10-15 min on 2 cores)"
  (cd "$APISERVER_MOD" && CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "$kube_ldflags" -o "$tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl) \
    || die "building kube-apiserver/kubectl failed"
  say "building etcd $ETCD_VERSION"
  # `go install go.etcd.io/etcd/server/v3@…` is refused (its go.mod has replace directives),
  # hence a module of our own that requires it.
  (cd "$ETCD_MOD" && CGO_ENABLED=0 go build -mod=readonly -trimpath \
    -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" -o "$tmp/etcd" go.etcd.io/etcd/server/v3) \
    || die "building etcd failed"
  touch "$tmp/.complete"
  rm -rf "$BIN_DIR" && mv "$tmp" "$BIN_DIR"
  say "built in $((SECONDS - started)) s into $BIN_DIR"
}

case "${1:-}" in
  build) cmd_build ;;
  *) die "usage: kube.sh build|start|stop|env|bin-dir" ;;
esac
