#!/usr/bin/env bash
# Sets up a fresh Debian-like machine (run as root) for ebbflow: system packages, Node 24,
# npm packages, the BPF objects and the native addon. Safe to run again: each step checks
# what is already there.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$EBBFLOW_ROOT"

NODE_VERSION=24.21.0
# clang/llvm build the BPF objects; bpftool writes vmlinux.h from the kernel's BTF;
# libbpf-dev (static libbpf.a), libelf-dev and zlib1g-dev link the native addon; perl runs
# test workloads; kcat and protobuf-compiler are the third-party reader of the Kafka records.
APT_PACKAGES=(clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev make g++ pkg-config ca-certificates
  perl kcat protobuf-compiler)

log() { printf '[setup] %s\n' "$*" >&2; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi
# The local Kafka broker runs from its jars: Java 17+ and Maven to resolve them.
if ! command -v java >/dev/null 2>&1; then missing+=(openjdk-17-jre-headless); fi
if ! command -v mvn >/dev/null 2>&1; then missing+=(maven); fi
if ((${#missing[@]})); then
  log "installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Alerting (services/alerter): the tests start a real Alertmanager (API v2) on 127.0.0.1.
# RUNLEVEL=1 keeps the package's init script from starting a system-wide daemon on install.
if ! command -v prometheus-alertmanager >/dev/null 2>&1; then
  log "installing prometheus-alertmanager (alerting tests)"
  apt-get update -qq
  RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-alertmanager >/dev/null
fi
# --- end of alerting step

if [[ "$(node --version 2>/dev/null)" != "v$NODE_VERSION" ]]; then
  log "installing Node $NODE_VERSION from the npm registry into .tools/node"
  npm install --prefix .tools/node --no-save --no-package-lock --no-audit --no-fund "node@$NODE_VERSION" >/dev/null
fi
log "node $(node --version), npm $(npm --version)"

if [[ -f package-lock.json ]]; then
  npm ci --no-audit --no-fund >/dev/null
else
  npm install --no-audit --no-fund >/dev/null
fi

# Classic tracepoints need tracefs; some minimal VMs do not mount it.
if [[ -d /sys/kernel/tracing && ! -e /sys/kernel/tracing/events ]]; then
  mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || log "could not mount tracefs (classic tracepoints unavailable)"
fi

make -s -C bpf
make -s -C native
infra/kafka/kafka.sh fetch # Kafka jars for the integration tests (cached; a no-op when present)

# ---- Kubernetes API server for the tests (infra/kube) --------------------------------------
# kube-apiserver, kubectl and etcd are built from the Go modules pinned in infra/kube (cold:
# 10-15 min on 2 cores, then cached in .cache/kube); openssl makes the test server's
# certificates, curl asks it whether it is ready, ss finds free ports.
kube_missing=()
command -v openssl >/dev/null 2>&1 || kube_missing+=(openssl)
command -v curl >/dev/null 2>&1 || kube_missing+=(curl)
command -v ss >/dev/null 2>&1 || kube_missing+=(iproute2)
command -v go >/dev/null 2>&1 || kube_missing+=(golang-go)
if ((${#kube_missing[@]})); then
  log "installing system packages for the test API server: ${kube_missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${kube_missing[@]}" >/dev/null
fi
# Go 1.21+ fetches the toolchain a go.mod asks for by itself (GOTOOLCHAIN=auto). An older Go
# (Debian 12's is 1.19) cannot: the go.mod's toolchain comes from the Go module proxy as the
# module golang.org/toolchain into .tools/go.
go_minor=$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
if [[ -n "$go_minor" ]] && ((go_minor < 21)) && [[ ! -x .tools/go/bin/go ]]; then
  go_want=$(sed -n 's/^go \(1\.[0-9.]*\)$/\1/p' infra/kube/etcd/go.mod)
  log "Go $(go env GOVERSION) is too old to build infra/kube: fetching go$go_want from the Go module proxy"
  tmp_mod=$(mktemp -d)
  go_dir=$(cd "$tmp_mod" && go mod init toolchain-fetch >/dev/null 2>&1 \
    && go mod download -json "golang.org/toolchain@v0.0.1-go$go_want.linux-$(go env GOARCH)" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  rm -rf "$tmp_mod"
  [[ -n "$go_dir" ]] || { log "could not fetch go$go_want"; exit 1; }
  mkdir -p .tools && cp -r "$go_dir" .tools/go && chmod -R u+w .tools/go
  # Module zips do not keep file modes.
  chmod +x .tools/go/bin/* .tools/go/pkg/tool/*/*
fi
[[ -x .tools/go/bin/go ]] && export PATH="$EBBFLOW_ROOT/.tools/go/bin:$PATH"
infra/kube/kube.sh build

# --- Grafana's ClickHouse driver for the tests ---------------------------------------------
# tests/support/chquery runs SQL through clickhouse-go v2 over HTTP, as Grafana's ClickHouse
# plugin does. Built once into .cache/, keyed by the hash of its sources (tests/support/
# chquery.ts computes the same path). Debian's golang-go is older than the module needs; Go
# then fetches the toolchain the module names from the Go module proxy (golang.org/toolchain,
# what Go 1.21+ does by itself with GOTOOLCHAIN=auto).
CHQUERY_SRC=tests/support/chquery
CHQUERY_KEY=$(cat "$CHQUERY_SRC/go.mod" "$CHQUERY_SRC/go.sum" "$CHQUERY_SRC/main.go" | sha256sum | cut -c1-16)
CHQUERY_BIN=.cache/chquery-$CHQUERY_KEY/chquery
if [[ ! -x "$CHQUERY_BIN" ]]; then
  if ! command -v go >/dev/null 2>&1; then
    log "installing Go (golang-go)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends golang-go >/dev/null
  fi
  GO=go
  go_need=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$CHQUERY_SRC/go.mod")
  go_have=$(go env GOVERSION | sed 's/^go//')
  if [[ "$(printf '%s\n%s\n' "$go_need" "$go_have" | sort -V | head -1)" != "$go_need" ]]; then
    toolchain="golang.org/toolchain@v0.0.1-go$go_need.$(go env GOOS)-$(go env GOARCH)"
    log "Go $go_have is older than $go_need: fetching $toolchain from the module proxy"
    tmp_mod=$(mktemp -d)
    (cd "$tmp_mod" && go mod init fetch-toolchain >/dev/null 2>&1 && GOFLAGS=-mod=mod go mod download "$toolchain")
    rm -rf "$tmp_mod"
    GO="$(go env GOMODCACHE)/$toolchain/bin/go"
    chmod +x "$GO" "$(dirname "$GO")"/../pkg/tool/*/* 2>/dev/null || true
  fi
  log "building tests/support/chquery (clickhouse-go) into $CHQUERY_BIN"
  (cd "$CHQUERY_SRC" && GOTOOLCHAIN=local "$GO" build -o "$EBBFLOW_ROOT/$CHQUERY_BIN" .)
fi

# --- Web console (services/console) ---
# The console is bundled (esbuild) into static files the API serves at `/`. Debian's chromium,
# driven by npm playwright-core, is the real browser its tests run in.
if ! command -v chromium >/dev/null 2>&1; then
  log "installing chromium (browser tests of the console)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
npm run -s -w @ebbflow/console build

# ---- acceptance tests (tests/acceptance) ----------------------------------------------------
# python3-seccomp (libseccomp's Python binding, for Debian's /usr/bin/python3) loads the
# seccomp profiles the API generates, to run the profiled workload again under them.
if ! dpkg-query -W -f='${Status}' python3-seccomp 2>/dev/null | grep -q 'install ok installed'; then
  log "installing python3-seccomp (acceptance tests)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-seccomp >/dev/null
fi
# ---- fuzz tests (tests/fuzz) ----------------------------------------------------------------
# clang's sanitizer and libFuzzer runtimes, for the native framing harness (native/fuzz); the
# harness still runs under ASan/UBSan from gcc without them, only without libFuzzer.
if ! dpkg-query -W -f='${Status}' libclang-rt-dev 2>/dev/null | grep -q 'install ok installed'; then
  log "installing libclang-rt-dev (libFuzzer for the native framing harness)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libclang-rt-dev >/dev/null ||
    log "libclang-rt-dev unavailable: the framing harness runs without libFuzzer"
fi
# ---- end of fuzz step
log "ready"
