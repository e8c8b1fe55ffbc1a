#!/usr/bin/env bash
# bench/tail_trace.sh - the unindexed tail under a sustained insert stream
# (issue 7: "keep that unindexed tail bounded, so that search p99 holds
# while a 50-client insert stream runs").
#
# Per build (BASELINE_SERVER first when given, then VEXLAKE_SERVER, default
# bin/vexlake-server; both in the same run, one after the other): a fresh
# server, the dataset loaded, saved and indexed, a quiet probe; then a
# stream of VSETs rewriting the dataset in place (50 clients, pipeline 1,
# appendfsync always) for SECONDS (30), and every 2 s INFO vectors
# (unindexed_rows, tail_indexed_rows, tail_indexes, indexed_rows, builds)
# and a 1-client probe of PROBE_N (200) searches at EF. Prints one line per
# probe and a summary: probe p99 beside the stream over the quiet probe's,
# the stream's inserts/s, and the server's CPU seconds.
# Environment: VL_DATASETS (../shared/datasets), SET (debian-minilm-384-cosine-20k),
# EF (24), SECONDS (30), PROBE_N (200), METRIC (cosine), ARGS (more server flags),
# STREAM (rewrite: the dataset's keys in place; new: copies of its rows under
# new keys, so the collection grows and flushes pile up segments to index).
set -euo pipefail
cd "$(dirname "$0")/.."
DATASETS=${VL_DATASETS:-../shared/datasets}
SET=${SET:-debian-minilm-384-cosine-20k}
EF=${EF:-24} SECONDS_=${SECONDS:-30} PROBE_N=${PROBE_N:-200} METRIC=${METRIC:-cosine}
data=$DATASETS/$SET
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
info_field() { redis-cli -p "$1" INFO vectors | tr -d '\r' | awk -F: -v k="$2" '$1 == k {print $2}'; }
field() { awk -v k="$2" '$1 == "result" { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' "$1" | head -n 1; }
cpu_s() { awk '{printf "%.1f", ($14 + $15) / 100}' "/proc/$1/stat"; }
rows=$(python3 -c "import os,struct,sys; f=open(sys.argv[1],'rb'); d=struct.unpack('<i',f.read(4))[0]; print(os.path.getsize(sys.argv[1])//(4+4*d))" "$data/base.fvecs")

trace() { # trace NAME SERVER
  local name=$1 bin=$2 port pid
  cp "$bin" "$tmp/$name-server"
  port=$(free_port)
  "$tmp/$name-server" --port "$port" --bind 127.0.0.1 --dir "$tmp/$name" --metric "$METRIC" \
    --appendfsync always ${ARGS:-} >"$tmp/$name.log" 2>&1 &
  pid=$!; pids+=("$pid")
  for _ in $(seq 200); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.05; done
  bin/vexlake-bench -mode=insert -dataset="$data" -concurrency=50 -pipeline=16 -port="$port" >/dev/null
  redis-cli -p "$port" SAVE >/dev/null
  for _ in $(seq 600); do
    [ "$(info_field "$port" index_build_running)" = 0 ] && [ "$(info_field "$port" indexed_rows)" -gt 0 ] && break
    sleep 0.2
  done
  bin/vexlake-bench -mode=search -dataset="$data" -n="$PROBE_N" -concurrency=1 -ef="$EF" -port="$port" >"$tmp/quiet" 2>&1
  local q99; q99=$(field "$tmp/quiet" p99_ms)
  echo "$name: quiet probe p50 $(field "$tmp/quiet" p50_ms) ms p99 $q99 ms recall $(field "$tmp/quiet" recall)"
  local cpu0; cpu0=$(cpu_s "$pid")
  local keys=(-key-offset=0 -keyspace="$rows")
  [ "${STREAM:-rewrite}" = new ] && keys=(-key-offset="$rows" -key-prefix=n)
  bin/vexlake-bench -mode=insert -dataset="$data" -n=100000000 -concurrency=50 -pipeline=1 \
    "${keys[@]}" -seconds="$SECONDS_" -port="$port" >"$tmp/stream" 2>&1 &
  local spid=$!
  local t0; t0=$(date +%s.%N)
  local worst=0 p99s=()
  while kill -0 "$spid" 2>/dev/null; do
    sleep 2
    kill -0 "$spid" 2>/dev/null || break
    local u ti tr ix b tb
    u=$(info_field "$port" unindexed_rows); ti=$(info_field "$port" tail_indexes)
    tr=$(info_field "$port" tail_indexed_rows); ix=$(info_field "$port" indexed_rows)
    b=$(info_field "$port" index_builds)/$(info_field "$port" index_build_running)
    tb=$(info_field "$port" tail_index_builds)
    bin/vexlake-bench -mode=search -dataset="$data" -n="$PROBE_N" -concurrency=1 -ef="$EF" -port="$port" >"$tmp/probe" 2>&1 || true
    local p99; p99=$(field "$tmp/probe" p99_ms)
    p99s+=("$p99")
    printf '    %s t=%4.1fs unindexed=%-6s tail_indexed=%-6s tail_indexes=%-3s indexed=%-6s builds/running=%s tail_builds=%s  probe p50 %s ms p99 %s ms recall %s\n' \
      "$name" "$(echo "$(date +%s.%N) - $t0" | bc)" "$u" "${tr:--}" "${ti:--}" "$ix" "$b" "${tb:--}" \
      "$(field "$tmp/probe" p50_ms)" "$p99" "$(field "$tmp/probe" recall)"
  done
  wait "$spid" || true
  local med; med=$(printf '%s\n' "${p99s[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  local mx; mx=$(printf '%s\n' "${p99s[@]}" | sort -g | tail -n 1)
  echo "$name: stream $(field "$tmp/stream" ops_per_sec) inserts/s; probe p99 beside it: median $med ms (x$(python3 -c "print('%.2f' % ($med / $q99))")), worst $mx ms (x$(python3 -c "print('%.2f' % ($mx / $q99))")); server CPU $(echo "$(cpu_s "$pid") - $cpu0" | bc) s during the stream"
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
}
[ -n "${BASELINE_SERVER:-}" ] && trace baseline "$BASELINE_SERVER"
trace this "${VEXLAKE_SERVER:-bin/vexlake-server}"
