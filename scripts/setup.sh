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

# --- Collector cost benchmarks (bench/exec-overhead): bpftrace is the reference a collector's
# overhead is compared with (an execsnoop-style script). Only the bench uses it.
if ! command -v bpftrace >/dev/null 2>&1; then
  log "installing bpftrace (overhead reference for bench/exec-overhead)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bpftrace >/dev/null
fi
# --- end of collector cost step

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

# ---- Go, for every Go module the tests build or read (infra/kube, tests/support) -----------
# One toolchain at least as new as the newest `go` line of those go.mod files. Debian's
# golang-go may be older; Go 1.21+ would fetch a newer one by itself (GOTOOLCHAIN=auto), older
# ones cannot, so the toolchain comes from the Go module proxy (the module golang.org/toolchain)
# into .tools/go, once, and every later step runs it with GOTOOLCHAIN=local.
if ! command -v go >/dev/null 2>&1; then
  log "installing Go (golang-go)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends golang-go >/dev/null
fi
go_need=$(sed -n 's/^go \([0-9.]*\)$/\1/p' infra/kube/*/go.mod tests/support/*/go.mod | sort -V | tail -1)
version_at_least() { [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" == "$2" ]]; }
[[ -x .tools/go/bin/go ]] && export PATH="$EBBFLOW_ROOT/.tools/go/bin:$PATH"
if ! version_at_least "$(go env GOVERSION | sed 's/^go//')" "$go_need"; then
  toolchain="golang.org/toolchain@v0.0.1-go$go_need.$(go env GOOS)-$(go env GOARCH)"
  log "Go $(go env GOVERSION) is older than $go_need: fetching $toolchain from the module proxy"
  tmp_mod=$(mktemp -d)
  go_dir=$(cd "$tmp_mod" && go mod init toolchain-fetch >/dev/null 2>&1 \
    && GOTOOLCHAIN=local go mod download -json "$toolchain" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  rm -rf "$tmp_mod"
  [[ -n "$go_dir" ]] || { log "could not fetch go$go_need"; exit 1; }
  rm -rf .tools/go && mkdir -p .tools && cp -r "$go_dir" .tools/go && chmod -R u+w .tools/go
  # Module zips do not keep file modes.
  chmod +x .tools/go/bin/* .tools/go/pkg/tool/*/*
  export PATH="$EBBFLOW_ROOT/.tools/go/bin:$PATH"
fi
export GOTOOLCHAIN=local

# ---- Kubernetes API server for the tests (infra/kube) --------------------------------------
# kube-apiserver, kubectl and etcd are built from the Go modules pinned in infra/kube (cold:
# 10-15 min on 2 cores, then cached in .cache/kube); openssl makes the test server's
# certificates, curl asks it whether it is ready, ss finds free ports.
kube_missing=()
command -v openssl >/dev/null 2>&1 || kube_missing+=(openssl)
command -v curl >/dev/null 2>&1 || kube_missing+=(curl)
command -v ss >/dev/null 2>&1 || kube_missing+=(iproute2)
if ((${#kube_missing[@]})); then
  log "installing system packages for the test API server: ${kube_missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${kube_missing[@]}" >/dev/null
fi
infra/kube/kube.sh build
# --- The Security Profiles Operator's CRDs (tests/manifests): its Go module, pinned by
# infra/kube/spo/go.sum, into the Go module cache (3 MB; nothing is built from it).
infra/kube/kube.sh spo-crds >/dev/null
# --- end of SPO CRD step

# --- Grafana's ClickHouse driver for the tests ---------------------------------------------
# tests/support/chquery runs SQL through clickhouse-go v2 over HTTP, as Grafana's ClickHouse
# plugin does. Built once into .cache/, keyed by the hash of its sources (tests/support/
# chquery.ts computes the same path), with the Go of the step above.
CHQUERY_SRC=tests/support/chquery
CHQUERY_KEY=$(cat "$CHQUERY_SRC/go.mod" "$CHQUERY_SRC/go.sum" "$CHQUERY_SRC/main.go" | sha256sum | cut -c1-16)
CHQUERY_BIN=.cache/chquery-$CHQUERY_KEY/chquery
if [[ ! -x "$CHQUERY_BIN" ]]; then
  log "building tests/support/chquery (clickhouse-go) into $CHQUERY_BIN"
  (cd "$CHQUERY_SRC" && go build -o "$EBBFLOW_ROOT/$CHQUERY_BIN" .)
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

# ---- the CLI bundled ahead of time (bin/ebbflow runs it for `collect` while it is fresh) -----
npm run -s bundle:cli

# ---- acceptance tests (tests/acceptance) ----------------------------------------------------
# python3-seccomp (libseccomp's Python binding, for Debian's /usr/bin/python3) loads the
# seccomp profiles the API generates, to run the profiled workload again under them.
if ! dpkg-query -W -f='${Status}' python3-seccomp 2>/dev/null | grep -q 'install ok installed'; then
  log "installing python3-seccomp (acceptance tests)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-seccomp >/dev/null
fi
# ---- Serverless functions (tests/integration/serverless.test.ts) ----------------------------
# The AWS Lambda Runtime Interface Emulator, built from its Go module (pinned by
# tests/support/lambda-rie/go.mod), and the npm runtime client aws-lambda-ric (pinned by
# tests/support/lambda-ric/package.json), whose install builds curl and aws-lambda-cpp with
# cmake and its addon with node-gyp. node-gyp takes Node's headers from the Node running here
# (the npm package `node` ships them) instead of downloading them. Both go into .cache/, keyed by
# the hash of their pins (tests/support/lambda.ts computes the same paths). zip packs functions.
sls_missing=()
command -v cmake >/dev/null 2>&1 || sls_missing+=(cmake)
command -v zip >/dev/null 2>&1 || sls_missing+=(zip)
if ((${#sls_missing[@]})); then
  log "installing system packages for the serverless functions: ${sls_missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${sls_missing[@]}" >/dev/null
fi
RIE_SRC=tests/support/lambda-rie
RIE_BIN=.cache/lambda-rie-$(cat "$RIE_SRC/go.mod" "$RIE_SRC/go.sum" | sha256sum | cut -c1-16)/aws-lambda-rie
if [[ ! -x "$RIE_BIN" ]]; then
  log "building the AWS Lambda Runtime Interface Emulator into $RIE_BIN"
  (cd "$RIE_SRC" && CGO_ENABLED=0 go build -mod=readonly -trimpath -o "$EBBFLOW_ROOT/$RIE_BIN" \
    github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie)
fi
RIC_SRC=tests/support/lambda-ric
RIC_DIR=.cache/lambda-ric-$(sha256sum <"$RIC_SRC/package.json" | cut -c1-16)
if [[ ! -f "$RIC_DIR/node_modules/aws-lambda-ric/rapid-client.node" ]]; then
  log "installing aws-lambda-ric into $RIC_DIR (builds its native part: a few minutes)"
  rm -rf "$RIC_DIR" && mkdir -p "$RIC_DIR" && cp "$RIC_SRC/package.json" "$RIC_DIR/"
  node_dir=$(node -p "require('path').resolve(process.execPath, '../..')")
  [[ -f "$node_dir/include/node/common.gypi" ]] && export npm_config_nodedir="$node_dir"
  (cd "$RIC_DIR" && npm install --no-audit --no-fund --no-package-lock >"$EBBFLOW_ROOT/$RIC_DIR.log" 2>&1) \
    || { log "aws-lambda-ric did not build (see $RIC_DIR.log)"; exit 1; }
  unset npm_config_nodedir
fi
# The Knative Service CRD (its OpenAPI schema validates infra/k8s/knative/service.yaml), from
# the Go module knative.dev/serving, which carries it in config/.
KNATIVE_SERVING=v0.51.0
KNATIVE_CRD=.cache/knative-serving-$KNATIVE_SERVING/service.yaml
if [[ ! -f "$KNATIVE_CRD" ]]; then
  log "fetching the Knative Service CRD (knative.dev/serving $KNATIVE_SERVING) from the Go module proxy"
  tmp_mod=$(mktemp -d)
  serving_dir=$(cd "$tmp_mod" && go mod download -json "knative.dev/serving@$KNATIVE_SERVING" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  rm -rf "$tmp_mod"
  mkdir -p "$(dirname "$KNATIVE_CRD")" && cp "$serving_dir/config/core/300-resources/service.yaml" "$KNATIVE_CRD"
fi
# --- end of serverless step
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
