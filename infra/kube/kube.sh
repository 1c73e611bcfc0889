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
#   infra/kube/kube.sh spo-crds              the Security Profiles Operator's CRD folder
#
# `start` makes a CA and serving certs with openssl, a static token file with one admin
# (group system:masters), a service-account signing key pair, starts etcd and kube-apiserver
# on free 127.0.0.1 ports with RBAC on, writes DIR/kubeconfig (admin token, CA data) and waits
# for /readyz. Progress goes to stderr.
#
# Environment: KUBE_DIR (default .cache/kube/run), KUBE_START_TIMEOUT (s, default 60),
# KUBE_STOP_TIMEOUT (s, default 20), KUBE_APISERVER_ARGS (more kube-apiserver flags, split on
# spaces, e.g. --watch-cache-sizes=pods#0), GOFLAGS/GOPROXY as usual for the build.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
APISERVER_MOD="$SCRIPT_DIR/apiserver"
ETCD_MOD="$SCRIPT_DIR/etcd"
SPO_MOD="$SCRIPT_DIR/spo"

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
  # scripts/setup.sh puts a newer Go there when the system's is too old.
  [[ -x "$REPO_ROOT/.tools/go/bin/go" ]] && PATH="$REPO_ROOT/.tools/go/bin:$PATH"
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


# ---------------------------------------------------------------- SPO CRDs

# The operator publishes its CRD YAML inside its Go module (deploy/base-crds/crds); the module
# is downloaded (go.sum in infra/kube/spo checks it) into the Go module cache, nothing is built.
cmd_spo_crds() {
  [[ -x "$REPO_ROOT/.tools/go/bin/go" ]] && PATH="$REPO_ROOT/.tools/go/bin:$PATH"
  command -v go >/dev/null 2>&1 || die "Go not found: install it (Debian: apt-get install golang-go)"
  local dir
  dir=$(cd "$SPO_MOD" && go mod download -json sigs.k8s.io/security-profiles-operator \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p') || die "downloading the SPO module failed"
  [[ -d "$dir/deploy/base-crds/crds" ]] || die "no deploy/base-crds/crds in the SPO module at ${dir:-?}"
  echo "$dir/deploy/base-crds/crds"
}

# ---------------------------------------------------------------- start / stop

DIR=""
ONLY=""
parse_args() {
  DIR=$DEFAULT_DIR
  while (($#)); do
    case "$1" in
      --dir) DIR=${2:?--dir needs a value}; shift 2 ;;
      --only) ONLY=${2:?--only needs a value}; shift 2 ;;
      *) die "unknown argument: $1" ;;
    esac
  done
  [[ -z "$ONLY" || "$ONLY" == apiserver || "$ONLY" == etcd ]] || die "--only takes apiserver or etcd, not $ONLY"
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
}

alive() { [[ -f "$DIR/$1.pid" ]] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }

port_free() { [[ -z "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]; }

# A port nobody listens on. The kernel's ephemeral range is avoided so that an outgoing
# connection cannot take it between now and the bind.
free_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 12000))
    port_free "$p" && { echo "$p"; return 0; }
  done
  die "no free port found"
}

# The folder keeps its ports, certificates and token across restarts, so a client's
# kubeconfig stays valid when only the API server is restarted.
prepare() {
  local state="$DIR/state.env"
  if [[ -f "$state" ]]; then
    # shellcheck disable=SC1090
    source "$state"
    return 0
  fi
  command -v openssl >/dev/null 2>&1 || die "openssl not found (Debian: apt-get install openssl)"
  ETCD_PORT=$(free_port)
  ETCD_PEER_PORT=$(free_port)
  while [[ "$ETCD_PEER_PORT" == "$ETCD_PORT" ]]; do ETCD_PEER_PORT=$(free_port); done
  API_PORT=$(free_port)
  while [[ "$API_PORT" == "$ETCD_PORT" || "$API_PORT" == "$ETCD_PEER_PORT" ]]; do API_PORT=$(free_port); done
  ADMIN_TOKEN=$(openssl rand -hex 32)
  local pki="$DIR/pki"
  mkdir -p "$pki"
  (
    cd "$pki"
    # P-256 keys: generated in milliseconds, so a test file can afford its own server.
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout ca.key -out ca.crt \
      -days 3650 -subj "/CN=ebbflow-test-ca" 2>/dev/null
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout apiserver.key -out apiserver.csr \
      -subj "/CN=kube-apiserver" 2>/dev/null
    printf '%s\n' 'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local' \
      'extendedKeyUsage=serverAuth' 'keyUsage=digitalSignature,keyEncipherment' >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt \
      -days 3650 -extfile apiserver.ext 2>/dev/null
    # Signs the tokens of service accounts (TokenRequest, `kubectl create token`).
    openssl ecparam -name prime256v1 -genkey -noout -out sa.key.ec 2>/dev/null
    openssl pkcs8 -topk8 -nocrypt -in sa.key.ec -out sa.key
    openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f sa.key.ec apiserver.csr
  ) || die "making the certificates failed"
  # token,user,uid,"groups": the admin is in system:masters, which RBAC lets do anything.
  printf '%s,ebbflow-admin,ebbflow-admin,"system:masters"\n' "$ADMIN_TOKEN" >"$pki/tokens.csv"
  chmod 600 "$pki"/*.key "$pki/tokens.csv"
  cat >"$DIR/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
  - name: ebbflow-test
    cluster:
      server: https://127.0.0.1:$API_PORT
      certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
  - name: ebbflow-admin
    user:
      token: $ADMIN_TOKEN
contexts:
  - name: ebbflow-test
    context:
      cluster: ebbflow-test
      user: ebbflow-admin
current-context: ebbflow-test
KC
  chmod 600 "$DIR/kubeconfig"
  printf 'ETCD_PORT=%s\nETCD_PEER_PORT=%s\nAPI_PORT=%s\nADMIN_TOKEN=%s\n' \
    "$ETCD_PORT" "$ETCD_PEER_PORT" "$API_PORT" "$ADMIN_TOKEN" >"$state.tmp"
  mv "$state.tmp" "$state"
}

wait_for() {
  local what=$1 pidfile=$2 deadline=$((SECONDS + START_TIMEOUT))
  shift 2
  until "$@" >/dev/null 2>&1; do
    kill -0 "$(cat "$pidfile")" 2>/dev/null || die "$what exited; see $DIR/$what.log: $(tail -n 5 "$DIR/$what.log")"
    ((SECONDS < deadline)) || die "$what not ready after ${START_TIMEOUT}s; see $DIR/$what.log"
    sleep 0.1
  done
}

etcd_healthy() { curl -sf "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
apiserver_ready() {
  curl -sf --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" "https://127.0.0.1:$API_PORT/readyz"
}

start_etcd() {
  alive etcd && return 0
  port_free "$ETCD_PORT" || die "etcd's port $ETCD_PORT is taken by another process"
  say "starting etcd $ETCD_VERSION on 127.0.0.1:$ETCD_PORT"
  # Plain http on loopback only; fsync off because this is test data that dies with the run.
  setsid "$BIN_DIR/etcd" --name=default --data-dir="$DIR/etcd-data" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="default=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync=true --log-level=warn \
    </dev/null >"$DIR/etcd.log" 2>&1 &
  echo $! >"$DIR/etcd.pid"
  wait_for etcd "$DIR/etcd.pid" etcd_healthy
}

start_apiserver() {
  alive apiserver && return 0
  port_free "$API_PORT" || die "the API server's port $API_PORT is taken by another process"
  say "starting kube-apiserver $KUBE_VERSION on https://127.0.0.1:$API_PORT"
  local pki="$DIR/pki" extra=()
  read -r -a extra <<<"${KUBE_APISERVER_ARGS:-}"
  # No kubelet and no controller manager: the endpoint reconciler would publish this address
  # as the kubernetes Service's endpoints, which nothing here needs.
  setsid "$BIN_DIR/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --token-auth-file="$pki/tokens.csv" \
    --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --endpoint-reconciler-type=none \
    --allow-privileged=true \
    --profiling=false \
    --v=0 \
    "${extra[@]}" \
    </dev/null >"$DIR/apiserver.log" 2>&1 &
  echo $! >"$DIR/apiserver.pid"
  wait_for apiserver "$DIR/apiserver.pid" apiserver_ready
}

cmd_start() {
  built || die "the binaries are not built: run infra/kube/kube.sh build (10-15 min cold)"
  parse_args "$@"
  prepare
  [[ "$ONLY" == apiserver ]] || start_etcd
  [[ "$ONLY" == etcd ]] || start_apiserver
  say "ready: KUBECONFIG=$DIR/kubeconfig"
  echo "$DIR/kubeconfig"
}

stop_one() {
  local name=$1 pid
  alive "$name" || { rm -f "$DIR/$name.pid"; return 0; }
  pid=$(cat "$DIR/$name.pid")
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      say "$name (pid $pid) did not stop in ${STOP_TIMEOUT}s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.1
  done
  rm -f "$DIR/$name.pid"
  say "stopped $name"
}

cmd_stop() {
  parse_args "$@"
  # The API server first: it would log errors for every second etcd is gone before it.
  [[ "$ONLY" == etcd ]] || stop_one apiserver
  [[ "$ONLY" == apiserver ]] || stop_one etcd
}

cmd_env() {
  parse_args "$@"
  [[ -f "$DIR/state.env" ]] || die "nothing started in $DIR"
  # shellcheck disable=SC1091
  source "$DIR/state.env"
  # `eval "$(infra/kube/kube.sh env)"` in a shell; one export per line for other readers.
  printf 'export KUBECONFIG=%q\n' "$DIR/kubeconfig"
  printf 'export KUBE_APISERVER=%q\n' "https://127.0.0.1:$API_PORT"
  printf 'export KUBE_CA_FILE=%q\n' "$DIR/pki/ca.crt"
  printf 'export KUBE_ETCD=%q\n' "http://127.0.0.1:$ETCD_PORT"
  printf 'export KUBE_BIN_DIR=%q\n' "$BIN_DIR"
}

case "${1:-}" in
  build) cmd_build ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  env) shift; cmd_env "$@" ;;
  bin-dir) echo "$BIN_DIR" ;;
  spo-crds) cmd_spo_crds ;;
  *) die "usage: kube.sh build | start [--dir DIR] [--only apiserver|etcd] | stop [--dir DIR] [--only apiserver|etcd] | env [--dir DIR] | bin-dir | spo-crds" ;;
esac
