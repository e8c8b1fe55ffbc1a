#!/usr/bin/env bash
# Insert throughput with 50 concurrent clients and fsync on every commit:
# VexLake VSET vs Redis SET (AOF appendfsync always) of the same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000} CLIENTS=${CLIENTS:-50} DIM=${DIM:-128}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT

vec=$(python3 -c "import random; random.seed(1); print('[' + ', '.join('%.4f' % random.random() for _ in range($DIM)) + ']')")
port_vl=$((20000 + RANDOM % 10000)) port_rd=$((port_vl + 1))

wait_ping() { for _ in $(seq 100); do redis-cli -p "$1" PING >/dev/null 2>&1 && return; sleep 0.05; done; echo "server on $1 did not start" >&2; exit 1; }
rps() { # last "requests per second" figure of a redis-benchmark --csv run
  tail -n 1 | awk -F'","' '{print $2}'
}

bin/vexlake-server --port "$port_vl" --dir "$tmp/vl" --appendfsync always >"$tmp/vl.log" 2>&1 &
redis-server --port "$port_rd" --dir "$tmp" --save '' --appendonly yes --appendfsync always \
  --daemonize no >"$tmp/rd.log" 2>&1 &
wait_ping "$port_vl"; wait_ping "$port_rd"

vl=$(redis-benchmark -p "$port_vl" -c "$CLIENTS" -n "$N" -r 1000000 --csv VSET 'vec:__rand_int__' "$vec" | rps)
rd=$(redis-benchmark -p "$port_rd" -c "$CLIENTS" -n "$N" -r 1000000 --csv SET 'vec:__rand_int__' "$vec" | rps)
commits=$(redis-cli -p "$port_vl" INFO persistence | tr -d '\r' | awk -F: '/^group_commits:/ {print $2}')
fsyncs=$(redis-cli -p "$port_vl" INFO persistence | tr -d '\r' | awk -F: '/^wal_fsyncs:/ {print $2}')

echo "insert: redis-benchmark -c $CLIENTS -n $N, ${DIM}-d text vectors, appendfsync always"
printf '  vexlake VSET      %10.0f ops/s   (%s group commits, %s fsyncs)\n' "$vl" "$commits" "$fsyncs"
printf '  redis-server SET  %10.0f ops/s   (%s, AOF always)\n' "$rd" "$(redis-server --version | awk '{print $3}')"
python3 -c "print('  ratio vexlake/redis: %.2f' % ($vl / $rd))"
