# syntax=docker/dockerfile:1
# One image for every part of ebbflow: `collect` (needs root and BPF capabilities at run time),
# `ingest`, `api`, `migrate`, `alert`, `up`. The build compiles the BPF objects and the native
# addon and bundles the CLI (esbuild), every TypeScript source of the project inside it.
#
#   docker build -t ghcr.io/ebbflow/ebbflow:dev .
#
# bpf/Makefile writes vmlinux.h from the *build* machine's /sys/kernel/btf/vmlinux (any
# kernel with BTF will do: CO-RE relocates the objects to the kernel they run on). Docker
# builders see the host's /sys, so building on a Linux host (or Docker Desktop) with
# CONFIG_DEBUG_INFO_BTF=y works; elsewhere the build stops and says so.

# Debian bookworm, as scripts/setup.sh targets: its libbpf-dev is the one the addon is tested with.
ARG NODE_IMAGE=node:24-bookworm
ARG RUNTIME_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
# clang/llvm compile the CO-RE objects; bpftool dumps vmlinux.h; libbpf-dev (static libbpf.a),
# libelf-dev and zlib1g-dev link the addon; make, g++ and pkg-config build it.
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev make g++ pkg-config \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The manifests first, so `npm ci` stays cached while only sources change.
COPY package.json package-lock.json ./
COPY native/package.json native/
COPY proto/package.json proto/
COPY services/common/package.json services/common/
COPY services/store/package.json services/store/
COPY services/collector/package.json services/collector/
COPY services/ingester/package.json services/ingester/
COPY services/api/package.json services/api/
COPY services/alerter/package.json services/alerter/
COPY services/cli/package.json services/cli/
COPY services/console/package.json services/console/
COPY tests/package.json tests/
COPY bench/package.json bench/
# Fixes to dependencies, applied by the postinstall script (patch-package).
COPY patches/ patches/
RUN npm ci --no-audit --no-fund
COPY . .
# Then only what runs stays: no compiler inputs, no dev dependencies.
# The console's static files and the CLI are bundled here (esbuild is a dev dependency): the
# collector starts from the bundle with ~9 MiB less and ~30 % less CPU (scripts/bundle-cli.ts).
RUN make -s -C bpf && make -s -C native && npm run -s -w @ebbflow/console build \
  && npm run -s bundle:cli \
  && rm -f bpf/build/vmlinux.h native/build/*.o native/build/vmlinux.h \
  && rm -rf native/build/fixtures \
  && npm prune --omit=dev --no-audit --no-fund

FROM ${RUNTIME_IMAGE} AS runtime
# The addon links libbpf statically, libelf, zlib and the C++ runtime dynamically.
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    libelf1 zlib1g libstdc++6 \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build --chown=root:root /app /app
ENV NODE_ENV=production
# uid 1000 is the image's `node` user, written as a number so Kubernetes can check
# runAsNonRoot. The collector alone is started as root (docker-compose.yml, the DaemonSet):
# its BPF capabilities take effect only for uid 0.
USER 1000:1000
# The GraphQL API and the ingester's Prometheus metrics.
EXPOSE 4000 9464
ENTRYPOINT ["node", "services/cli/dist/main.mjs"]
CMD ["--help"]
