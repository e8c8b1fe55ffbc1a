#!/usr/bin/env bash
# seaweedfs.sh start|stop|build - a SeaweedFS S3 store on loopback for tests and docs.
#
# The contract other checks rely on:
#   start  builds SeaweedFS if it is not cached yet, then runs `weed mini` (master,
#          volume, filer and S3 in one process) bound to 127.0.0.1 only, serving S3 on
#          http://127.0.0.1:8333 with the test-only access key `vexlake`, secret
#          `vexlake-secret` and an existing bucket `vexlake-test`. It returns only once
#          a signed PUT has succeeded ("S3 answers" is not "ready to write": the first
#          writes wait for the filer's lock service). Data goes in $SEAWEEDFS_DIR
#          (default: a fresh temporary directory, removed by stop). If one started by
#          this script is already running and accepts a signed PUT, start returns at
#          once (so several suites of one `make test` can each call it).
#   stop   ends it and waits until the process is gone; nothing is left running.
#   status exits 0 when one started by this script is running and takes a signed PUT.
#   build  only builds (and caches) the binary.
#
# Sharing: with VL_SEAWEEDFS_USER=<pid> (scripts/run-tests.sh passes its own), start
# records that process as a user and stop ends SeaweedFS only when no other recorded
# user is still alive, so parallel `make test` runs on one machine share the fixed port
# instead of stopping it under each other.  A plain `stop` always ends it.
#
# Build: github.com/seaweedfs/seaweedfs is pinned at $SEAWEEDFS_VERSION. Its go.mod has
# a replace directive (go-bip39), so `go install pkg@version` refuses; we build from a
# small wrapper module that requires that version and carries the same replace. About
# 4.5 min and 2.6 GB of RAM on 2 cores (run niced, one package at a time); the binary
# (~233 MB) is cached under ~/.cache/vexlake/seaweedfs-<version>/, outside the repo.
#
# Ports (all bound to 127.0.0.1; gRPC listens at each HTTP port + 10000):
#   S3 8333 (gRPC 18333), master 9333 (19333), volume 9340 (19340), filer 8888 (18888),
#   plus two pairs on free ports mini picks itself. Iceberg, Lance, WebDAV and the
#   admin UI are off. Port 8333 is fixed by the contract; a second `start` while one
#   runs reuses it rather than colliding.
#
# A second, separate instance (tests that stop or restart SeaweedFS on purpose must
# not touch the shared one): with SEAWEEDFS_PORT=P (P+3 and P+10003 at most 65535),
# S3 is on P, master P+1, volume P+2, filer P+3 (gRPC each + 10000), and its pid, log
# and users live in ${TMPDIR:-/tmp}/vexlake-seaweedfs-P. Every verb then acts on that
# instance only. Without SEAWEEDFS_PORT (or with 8333) nothing changes.
set -euo pipefail

SEAWEEDFS_VERSION=v0.0.0-20261109003541-7506e5f91cd6
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/vexlake/seaweedfs-$SEAWEEDFS_VERSION
WEED=$CACHE/weed
PORT=${SEAWEEDFS_PORT:-8333}
case $PORT in '' | *[!0-9]*) echo "seaweedfs: SEAWEEDFS_PORT must be a port number" >&2; exit 2 ;; esac
if [ "$PORT" = 8333 ]; then
  STATE=${TMPDIR:-/tmp}/vexlake-seaweedfs # pid, data-dir path and log of the running one
  PORTS=() # mini's own defaults, as always
else
  [ "$PORT" -ge 1024 ] && [ "$PORT" -le 55532 ] || { echo "seaweedfs: SEAWEEDFS_PORT must be 1024-55532" >&2; exit 2; }
  STATE=${TMPDIR:-/tmp}/vexlake-seaweedfs-$PORT
  PORTS=(-s3.port="$PORT" -master.port=$((PORT + 1)) -volume.port=$((PORT + 2)) -filer.port=$((PORT + 3)))
fi
ACCESS_KEY=vexlake
SECRET_KEY=vexlake-secret
BUCKET=vexlake-test
S3=http://127.0.0.1:$PORT

log() { echo "seaweedfs: $*" >&2; }

build() {
  [ -x "$WEED" ] && return 0
  command -v go >/dev/null || { log "go is not installed (needed to build SeaweedFS)"; exit 1; }
  mkdir -p "$CACHE"
  exec 9>"$CACHE/build.lock"
  flock 9 # a parallel start waits for this build instead of starting another
  [ -x "$WEED" ] && return 0
  local mod=$CACHE/wrapper t0=$SECONDS
  rm -rf "$mod" && mkdir -p "$mod"
  log "building SeaweedFS $SEAWEEDFS_VERSION (first run only: ~5 min, ~2.6 GB RAM)"
  (
    cd "$mod"
    export GOFLAGS="-p=1 -buildvcs=false" GOTOOLCHAIN=local
    go mod init vexlake.local/seaweedfs-wrapper >/dev/null 2>&1
    go mod edit -replace github.com/tyler-smith/go-bip39=github.com/cosmos/go-bip39@v1.0.0
    go get "github.com/seaweedfs/seaweedfs/weed@$SEAWEEDFS_VERSION"
    nice -n 10 go build -o "$WEED.tmp" github.com/seaweedfs/seaweedfs/weed
  ) >"$CACHE/build.log" 2>&1 || { tail -n 30 "$CACHE/build.log" >&2; log "build failed (log: $CACHE/build.log)"; exit 1; }
  mv "$WEED.tmp" "$WEED"
  log "built in $((SECONDS - t0)) s: $WEED"
}

# A signed S3 request with curl's SigV4 and the body's SHA-256 (which curl
# also hashes into the signature); prints the HTTP status.
s3_status() { # method path [body]
  local method=$1 path=$2 body=${3-} sha
  sha=$(printf '%s' "$body" | sha256sum | cut -d' ' -f1)
  local data=()
  [ "$method" = PUT ] && data=(--data-binary "$body")
  [ "$method" = HEAD ] && data=(-I)
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X "$method" "${data[@]}" \
    --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
    -H "x-amz-content-sha256: $sha" "$S3$path" 2>/dev/null || true
}

running_pid() {
  local pid
  pid=$(cat "$STATE/pid" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

ready() { running_pid >/dev/null && [ "$(s3_status PUT "/$BUCKET/.vexlake-ready" ok)" = 200 ]; }

add_user() { [ -n "${VL_SEAWEEDFS_USER:-}" ] && mkdir -p "$STATE/users" && touch "$STATE/users/$VL_SEAWEEDFS_USER"; return 0; }

# 0 when a recorded user other than us is still alive.
other_users() {
  local f pid
  for f in "$STATE"/users/*; do
    [ -e "$f" ] || continue
    pid=${f##*/}
    [ "$pid" = "${VL_SEAWEEDFS_USER:-}" ] && continue
    if kill -0 "$pid" 2>/dev/null; then return 0; fi
    rm -f "$f"
  done
  return 1
}

start() {
  mkdir -p "$STATE"
  exec 8>"$STATE/start.lock"
  flock 8 # one start at a time on this machine
  if ready; then
    add_user
    log "already running on $S3"
    return 0
  fi
  stop_quiet
  rm -rf "$STATE/users"
  add_user
  build
  local dir=${SEAWEEDFS_DIR:-}
  if [ -z "$dir" ]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/vexlake-seaweedfs-data.XXXXXX")
    echo "$dir" >"$STATE/tempdir"
  fi
  mkdir -p "$dir"
  cat >"$STATE/s3.json" <<EOF
{"identities": [{"name": "vexlake",
  "credentials": [{"accessKey": "$ACCESS_KEY", "secretKey": "$SECRET_KEY"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF
  # 8>&- 9>&-: weed must not inherit the lock descriptors, or it holds them forever.
  setsid "$WEED" mini -dir="$dir" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    "${PORTS[@]}" -s3.config="$STATE/s3.json" -s3.port.iceberg=0 -s3.port.lance=0 \
    -webdav=false -admin.ui=false </dev/null >"$STATE/weed.log" 2>&1 8>&- 9>&- &
  echo $! >"$STATE/pid"
  local deadline=$((SECONDS + 120)) st
  until [ "$(s3_status PUT "/$BUCKET")" = 200 ] || [ "$(s3_status HEAD "/$BUCKET")" = 200 ]; do
    running_pid >/dev/null || { tail -n 30 "$STATE/weed.log" >&2; log "weed exited during start-up"; exit 1; }
    [ $SECONDS -lt $deadline ] || { tail -n 30 "$STATE/weed.log" >&2; log "S3 did not answer in 120 s"; stop_quiet; exit 1; }
    sleep 0.5
  done
  until st=$(s3_status PUT "/$BUCKET/.vexlake-ready" ok) && [ "$st" = 200 ]; do
    [ $SECONDS -lt $deadline ] || { tail -n 30 "$STATE/weed.log" >&2; log "a signed PUT did not succeed in 120 s (last: $st)"; stop_quiet; exit 1; }
    sleep 0.5
  done
  log "ready on $S3 (bucket $BUCKET, data in $dir, pid $(cat "$STATE/pid"))"
}

stop_quiet() {
  local pid i
  if pid=$(running_pid); then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  if [ -f "$STATE/tempdir" ]; then rm -rf "$(cat "$STATE/tempdir")"; fi
  rm -f "$STATE/pid" "$STATE/tempdir"
}

stop() {
  mkdir -p "$STATE"
  exec 8>"$STATE/start.lock"
  flock 8
  if [ -n "${VL_SEAWEEDFS_USER:-}" ]; then
    rm -f "$STATE/users/$VL_SEAWEEDFS_USER"
    if other_users; then log "still used by another run; left running"; return 0; fi
  fi
  stop_quiet
  rm -rf "$STATE/users"
  log "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) ready ;;
  build) build ;;
  *) echo "usage: $0 start|stop|status|build" >&2; exit 2 ;;
esac
