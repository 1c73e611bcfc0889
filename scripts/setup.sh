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

# --- Web console (services/console) ---
# The console is bundled (esbuild) into static files the API serves at `/`. Debian's chromium,
# driven by npm playwright-core, is the real browser its tests run in.
if ! command -v chromium >/dev/null 2>&1; then
  log "installing chromium (browser tests of the console)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
npm run -s -w @ebbflow/console build
log "ready"
