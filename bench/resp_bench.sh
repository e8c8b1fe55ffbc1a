#!/usr/bin/env bash
# bench/resp_bench.sh - `make bench`, over RESP: VexLake driven by
# bin/vexlake-bench, beside Debian's redis-server 7 driven by redis-benchmark.
#
#   1. insert throughput: VSET with FP32 blobs of the sift set's rows (new
#      keys), 50 clients, pipeline 1 and 16, --appendfsync always / everysec
#   2. search, per dataset in ../shared/datasets: the smallest EF that gives
#      recall@10 >= 0.95 (when VSEARCH takes EF; else today's exact scan),
#      then QPS and p50/p99 with 1 client and with 50
#   3. the same searches while 50 clients stream VSETs that rewrite the
#      dataset in place (same keys, same vectors: the answers do not change,
#      so latency and recall compare with step 2; the collection stays the
#      same size, which a stream of new keys would not)
#   4. redis-benchmark PING and SET against redis-server (no persistence)
#      beside PING and VSET against VexLake, as ratios; and vexlake-bench's
#      own PING rate beside redis-benchmark's on both servers (its overhead)
# Every server runs on 127.0.0.1, on a free port, in a temporary directory.
# Results: bench/results/<date>-resp.md (tables and the command lines), or OUT.
# Environment: VL_DATASETS (default ../shared/datasets), INSERT_N (200000),
# SEARCH_N (searches per 50-client run, at least 2000, rounded up to whole
# passes over the queries), PING_N (200000), SETS (dataset names), INDEX
# (hnsw) and QUANT (the server's default) for the search servers,
# VEXLAKE_SERVER (bin/vexlake-server), BASELINE_SERVER (another build, e.g.
# main's: its searches run beside this build's, dataset by dataset, in the
# same run, so "before" and "after" share the machine's load),
# BASELINE_BENCH (the client for the baseline's searches, e.g. main's
# bin/vexlake-bench; default this build's), SECTIONS (default "insert
# search ping": which parts to run), OUT (the results file).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh bench

DATASETS=${VL_DATASETS:-../shared/datasets}
INSERT_N=${INSERT_N:-200000} SEARCH_N=${SEARCH_N:-2000} PING_N=${PING_N:-200000}
SETS=${SETS:-"sift-128-euclidean-ngt5k fashion-mnist-784-euclidean-15k debian-minilm-384-cosine-20k manpage-minilm-384-cosine-19k"}
C=50
tmp=$(mktemp -d)
# A private copy of the server (VEXLAKE_SERVER, default bin/vexlake-server):
# a rebuild during the run does not change the binary under test.
cp "${VEXLAKE_SERVER:-bin/vexlake-server}" "$tmp/vexlake-server"
server=$tmp/vexlake-server
cp bin/vexlake-bench "$tmp/vexlake-bench"
builds="this"
if [ -n "${BASELINE_SERVER:-}" ]; then
  cp "$BASELINE_SERVER" "$tmp/baseline-server"
  cp "${BASELINE_BENCH:-bin/vexlake-bench}" "$tmp/baseline-bench"
  builds="baseline this"
fi
client=$tmp/vexlake-bench
SECTIONS=${SECTIONS:-"insert search ping"}
has() { case " $SECTIONS " in *" $1 "*) return 0 ;; esac; return 1; }
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p bench/results
out=${OUT:-"bench/results/$(date -u +%Y-%m-%d)-resp.md"}
md="$tmp/report.md"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ping() {
  for _ in $(seq 200); do redis-cli -p "$1" PING >/dev/null 2>&1 && return; sleep 0.05; done
  echo "resp_bench: server on port $1 did not start" >&2; exit 1
}
# start_vl NAME ARGS... : a fresh VexLake server; sets $port and $pid
start_vl() {
  local name=$1; shift
  port=$(free_port)
  "${bin:-$server}" --port "$port" --bind 127.0.0.1 --dir "$tmp/$name" "$@" >"$tmp/$name.log" 2>&1 &
  pid=$!; pids+=("$pid")
  wait_ping "$port"
}
# Every number awk computes is printed with printf "%.0f": its print would
# give sums above 2^31 as 4.26e+09 (OFMT), which shell arithmetic refuses.
cpu_ticks() { awk '{printf "%.0f\n", $14 + $15}' "/proc/$1/stat"; } # utime + stime, all threads
# Nanoseconds on CPU of the live threads of a process (finer than ticks).
cpu_ns() { cat "/proc/$1/task/"*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}'; }
# us_per OPS NS: microseconds per request
us_per() { python3 -c "import sys; n = int(sys.argv[1]); print('%.1f' % (float(sys.argv[2]) / 1e3 / n) if n else '-')" "$1" "$2"; }
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
# bench LOG ARGS... : run vexlake-bench ($client), keep its output, note
# the command.
bench() {
  local log=$1; shift
  echo "    bin/vexlake-bench $*" >>"$tmp/commands"
  "$client" "$@" >"$log" 2>&1 || { cat "$log" >&2; return 1; }
}
# field LOG STREAM KEY : one value of a "result" line
field() { awk -v s="stream=$2" -v k="$3" '$1 == "result" && $2 == s {
  for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' "$1"; }
rb_rps() { tail -n 1 | awk -F'","' '{gsub(/"/, "", $2); print $2}'; }
ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print('%.2f' % (a / b) if b else '-')" "$1" "$2"; }
info_field() { redis-cli -p "$1" INFO vectors | tr -d '\r' | awk -F: -v k="$2" '$1 == k {print $2}'; }
# settle PORT: commit what is unflushed, so that an index (built for sealed
# segments) can serve it, and wait while INFO shows a build running (2
# minutes at most) or unindexed rows (10 s at most: a build may not have
# started yet; rows the index leaves to the exact scan stay unindexed).
settle() {
  redis-cli -p "$1" SAVE >/dev/null
  local i
  for i in $(seq 600); do
    if [ "$(info_field "$1" index_build_running)" != 1 ]; then
      [ "$i" -le 50 ] && [ "$(info_field "$1" unindexed_rows)" -gt 0 ] 2>/dev/null || break
    fi
    sleep 0.2
  done
}
# reaches_recall DATASET EF: one pass over the queries with 1 client at
# that EF reaches recall@10 >= 0.95 (on the server at $port)
reaches_recall() {
  bench "$tmp/sweep.out" -mode=search -dataset="$1" -concurrency=1 -ef="$2" -port="$port"
  python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= 0.95 else 1)" \
    "$(field "$tmp/sweep.out" search recall)"
}
index_kind() { # what VSEARCH runs on, from INFO: "hnsw/sq8 (4500 indexed, 0 not)"
  local kind; kind=$(info_field "$1" index)
  case "$kind" in ""|flat) echo "exact scan"; return ;; esac
  echo "$kind/$(info_field "$1" quant) ($(info_field "$1" indexed_rows) indexed, $(info_field "$1" unindexed_rows) not)"
}

# The index for the search servers (INDEX=hnsw|ivf|flat, QUANT=...), once
# the server has the flags; before that every search is an exact scan.
index_flags=()
if "$server" --help 2>&1 | grep -q -- '--index'; then
  index_flags=(--index "${INDEX:-hnsw}")
  [ -n "${QUANT:-}" ] && index_flags+=(--quant "$QUANT")
fi
sift="$DATASETS/sift-128-euclidean-ngt5k"
[ -f "$sift/base.fvecs" ] || { echo "resp_bench: $sift missing (set VL_DATASETS)" >&2; exit 1; }
: >"$tmp/commands"
{
  echo "# RESP benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "$(nproc) cores ($(uname -m), kernel $(uname -r)), shared with other work (load average at the" \
       "start: $(cut -d' ' -f1-3 /proc/loadavg)); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?');" \
       "$(redis-server --version | awk '{print $1, $2, $3}')."
  echo "Client: bin/vexlake-bench, one epoll thread, 50 connections unless said; latency is per"
  echo "request, from the write of its pipeline batch to the read that completed its reply."
  echo
} >"$md"

# ---- 1. insert throughput ------------------------------------------------
if has insert; then
echo "resp_bench: inserts" >&2
{
  echo "## Inserts: VSET FP32, $INSERT_N new keys (sift rows, 128-d), $C clients"
  echo
  echo "Server CPU: user + system time of the server process (every thread) over the run, per"
  echo "insert; on a shared machine ops/s falls with the CPU the server gets, CPU per insert does"
  echo "not (1 / it is the rate one core's worth of CPU would give)."
  echo
  echo "| appendfsync | pipeline | ops/s | p50 ms | p99 ms | max ms | WAL fsyncs | server CPU us/insert | target |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
} >>"$md"
for fsync in always everysec; do
  for p in 1 16; do
    start_vl "ins-$fsync-$p" --metric l2 --appendfsync "$fsync"
    log="$tmp/ins-$fsync-$p.out"
    cpu0=$(cpu_ticks "$pid")
    bench "$log" -mode=insert -dataset="$sift" -n="$INSERT_N" -concurrency=$C -pipeline=$p \
      -port="$port" -label=appendfsync="$fsync"
    cpu1=$(cpu_ticks "$pid")
    fsyncs=$(redis-cli -p "$port" INFO persistence | tr -d '\r' | awk -F: '/^wal_fsyncs:/ {print $2}')
    stop "$pid"
    us=$(python3 -c "import sys; print('%.2f' % ((int(sys.argv[2]) - int(sys.argv[1])) * 1e6 / int(sys.argv[3]) / int(sys.argv[4])))" \
      "$cpu0" "$cpu1" "$(getconf CLK_TCK)" "$INSERT_N")
    rate=$(field "$log" insert ops_per_sec)
    target=""
    if [ "$fsync" = always ] && [ "$p" = 16 ]; then
      target=">= 200k/s: $(ratio "$rate" 200000)x"
    fi
    printf '| %s | %s | %.0f | %s | %s | %s | %s | %s | %s |\n' "$fsync" "$p" "$rate" \
      "$(field "$log" insert p50_ms)" "$(field "$log" insert p99_ms)" \
      "$(field "$log" insert max_ms)" "${fsyncs:--}" "$us" "$target" >>"$md"
  done
done
fi

# ---- 2 and 3. searches, alone and beside an insert stream -----------------
if has search; then
{
  echo
  echo "## Search: VSEARCH FP32 K=10 at recall@10 >= 0.95"
  echo
  echo "Mixed: the same searches while $C more clients rewrite the dataset in place with VSET"
  echo "(pipeline 1, appendfsync always, same keys and vectors); 'p99 x' is p99 beside the stream"
  echo "over p99 alone (target <= 2). Target p99 < 2 ms with $C clients. Before every run the"
  echo "collection is saved and its index builds awaited (the 'search' column is INFO at the start)."
  if [ -n "${BASELINE_SERVER:-}" ]; then
    echo "Build: 'baseline' is BASELINE_SERVER, 'this' the build under test, run one after the other"
    echo "per dataset."
  fi
  echo
  echo "CPU: per search alone, of the server (every thread) and of the bench client (its"
  echo "cpu_us_per_op; both share the cores; '-' beside the insert stream or from a client"
  echo "that does not report it)."
  echo
  echo "| dataset | build | search | EF | clients | QPS | p50 ms | p99 ms | recall@10 | server CPU us/q | client CPU us/q | inserts/s beside | p99 x |"
  echo "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
} >>"$md"
for set in $SETS; do
 for build in $builds; do
  bin=$server client=$tmp/vexlake-bench
  [ "$build" = baseline ] && bin=$tmp/baseline-server client=$tmp/baseline-bench
  ds="$DATASETS/$set"
  [ -f "$ds/base.fvecs" ] || { echo "resp_bench: skipping $set (missing)" >&2; continue; }
  echo "resp_bench: search $set ($build)" >&2
  metric=l2; case "$set" in *cosine*|*angular*) metric=cosine ;; esac
  start_vl "s-$set-$build" --metric "$metric" "${index_flags[@]}"
  bench "$tmp/load.out" -mode=insert -dataset="$ds" -concurrency=$C -pipeline=16 -port="$port"
  nbase=$(field "$tmp/load.out" insert ops)
  nq=$(sed -n 's/.*, \([0-9]*\) queries.*/\1/p' "$tmp/load.out" | head -n 1)
  settle "$port"
  kind=$(index_kind "$port")
  # The smallest EF reaching the recall, if VSEARCH takes EF and uses an
  # index: the first of a coarse grid that reaches it, then a bisection
  # between it and the grid point below (each step one pass over the
  # queries with 1 client), so no search runs with more EF than it needs.
  ef_flag="" ef_shown="-"
  if [ "$kind" != "exact scan" ] && "$client" -mode=search -dataset="$ds" -n=1 -concurrency=1 -ef=10 -port="$port" >/dev/null 2>&1; then
    ef_lo=0 ef_hi=""
    for ef in 10 16 24 32 48 64 96 128 192 256 384 512; do
      if reaches_recall "$ds" "$ef"; then ef_hi=$ef; break; fi
      ef_lo=$ef
    done
    if [ -n "$ef_hi" ]; then
      [ "$ef_lo" -gt 0 ] || ef_lo=$((ef_hi - 1))
      while [ $((ef_hi - ef_lo)) -gt 1 ]; do
        mid=$(((ef_lo + ef_hi) / 2))
        if reaches_recall "$ds" "$mid"; then ef_hi=$mid; else ef_lo=$mid; fi
      done
    else
      ef_hi=512 # the grid's top: the recall stays below the target
    fi
    ef_flag="-ef=$ef_hi" ef_shown=$ef_hi
  fi
  for clients in 1 $C; do
    # Every query once with 1 client, whole passes over them with 50: the
    # recall of both runs is over the same queries.
    n=$nq; [ "$clients" = 1 ] || n=$(((SEARCH_N + nq - 1) / nq * nq))
    alone="$tmp/alone-$clients.out" mixed="$tmp/mixed-$clients.out"
    settle "$port"; kind_alone=$(index_kind "$port")
    s0=$(cpu_ns "$pid")
    # shellcheck disable=SC2086
    bench "$alone" -mode=search -dataset="$ds" -n=$n -concurrency=$clients $ef_flag -port="$port"
    s1=$(cpu_ns "$pid")
    ops=$(field "$alone" search ops)
    srv_us=$(us_per "$ops" $((s1 - s0))) cli_us=$(field "$alone" search cpu_us_per_op)
    settle "$port"; kind_mixed=$(index_kind "$port")
    # shellcheck disable=SC2086
    bench "$mixed" -mode=mixed -dataset="$ds" -n=$n -concurrency=$clients $ef_flag -port="$port" \
      -insert-concurrency=$C -insert-pipeline=1 -key-offset=0 -keyspace="$nbase"
    tail_rows=$(info_field "$port" unindexed_rows)
    p99a=$(field "$alone" search p99_ms) p99m=$(field "$mixed" search p99_ms)
    for run in alone mixed; do
      log=$alone; [ $run = mixed ] && log=$mixed
      ins="" x="" label=$kind_alone su=$srv_us cu=${cli_us:--}
      if [ $run = mixed ]; then
        ins=$(printf '%.0f' "$(field "$log" insert ops_per_sec)"); x=$(ratio "$p99m" "$p99a")
        label="$kind_mixed + inserts" su=- cu=-
        [ -n "$tail_rows" ] && ins="$ins ($tail_rows unindexed at the end)"
      fi
      printf '| %s | %s | %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s |\n' "$set" "$build" \
        "$label" "$ef_shown" "$clients" "$(field "$log" search ops_per_sec)" \
        "$(field "$log" search p50_ms)" "$(field "$log" search p99_ms)" \
        "$(field "$log" search recall)" "$su" "$cu" "${ins:--}" "${x:--}" >>"$md"
    done
  done
  stop "$pid"
 done
done
bin=$server client=$tmp/vexlake-bench
fi

# ---- 4. PING and SET/VSET against redis-server ----------------------------
if has ping; then
echo "resp_bench: redis-benchmark" >&2
rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --dir "$tmp" --save '' --appendonly no \
  --daemonize no >"$tmp/redis.log" 2>&1 &
rpid=$!; pids+=("$rpid")
wait_ping "$rport"
start_vl ping-always --metric l2 --appendfsync always
vport=$port vpid=$pid
start_vl ping-everysec --metric l2 --appendfsync everysec
eport=$port epid=$pid
# 128 float32 of 1.1f (bytes cd cc 8c 3f: no NUL, so it passes through argv).
blob=$(printf '\xcd\xcc\x8c\x3f%.0s' $(seq 128))
rb() { # PORT PIPELINE ARGS... -> requests per second
  local port=$1 p=$2 shown=() a; shift 2
  for a in "$@"; do [ "$a" = "$blob" ] && shown+=("<512-byte FP32 blob>") || shown+=("$a"); done
  echo "    redis-benchmark -p PORT -c $C -n $PING_N -P $p ${shown[*]}" >>"$tmp/commands"
  redis-benchmark -p "$port" -c $C -n "$PING_N" -P "$p" --csv "$@" 2>/dev/null | rb_rps
}
max() { python3 -c "import sys; print(max(float(sys.argv[1]), float(sys.argv[2])))" "$1" "$2"; }
rb_ping() { rb "$1" "$2" -t ping_mbulk; }
# pair3 CMD_A PORT_A CMD_B PORT_B PIPELINE -> "A B": the best of three rounds
# of each, A and B taking turns, so that the load of the shared machine
# (which only ever slows a run down) falls on both alike.
pair3() {
  local a=0 b=0
  for _ in 1 2 3; do
    a=$(max "$a" "$("$1" "$2" "$5")")
    b=$(max "$b" "$("$3" "$4" "$5")")
  done
  echo "$a $b"
}
vb_ping() { # PORT PIPELINE -> vexlake-bench PING requests per second
  bench "$tmp/ping.out" -mode=ping -n="$PING_N" -concurrency=$C -pipeline="$2" -port="$1"
  field "$tmp/ping.out" ping ops_per_sec
}
{
  echo
  echo "## redis-benchmark: VexLake beside redis-server (no persistence), $C clients"
  echo
  echo "SET/VSET carry the same 512 bytes (128 float32); VSET is durable before its reply"
  echo "(VexLake's --appendfsync), redis-server keeps nothing. PING: best of 3 runs, the two"
  echo "servers taking turns. Target: PING >= 0.9x."
  echo
  echo "| request | pipeline | redis-server ops/s | VexLake ops/s | VexLake / redis |"
  echo "| --- | --- | ---: | ---: | ---: |"
} >>"$md"
for p in 1 16; do
  read -r a b < <(pair3 rb_ping "$rport" rb_ping "$vport" "$p")
  printf '| PING | %s | %.0f | %.0f | %s |\n' "$p" "$a" "$b" "$(ratio "$b" "$a")" >>"$md"
  read -r a b < <(pair3 vb_ping "$rport" vb_ping "$vport" "$p")
  printf '| PING (client: vexlake-bench) | %s | %.0f | %.0f | %s |\n' "$p" "$a" "$b" "$(ratio "$b" "$a")" >>"$md"
  a=$(rb "$rport" "$p" -r 1000000 SET 'k:__rand_int__' "$blob")
  b=$(rb "$vport" "$p" -r 1000000 VSET 'k:__rand_int__' FP32 "$blob")
  c=$(rb "$eport" "$p" -r 1000000 VSET 'k:__rand_int__' FP32 "$blob")
  printf '| SET / VSET (always) | %s | %.0f | %.0f | %s |\n' "$p" "$a" "$b" "$(ratio "$b" "$a")" >>"$md"
  printf '| SET / VSET (everysec) | %s | %.0f | %.0f | %s |\n' "$p" "$a" "$c" "$(ratio "$c" "$a")" >>"$md"
done
{
  echo
  echo "### The client's own cost: PING, $C connections, same server, vexlake-bench / redis-benchmark, best of 3"
  echo
  echo "| server | pipeline | redis-benchmark ops/s | vexlake-bench ops/s | ratio |"
  echo "| --- | --- | ---: | ---: | ---: |"
} >>"$md"
for target in redis-server:$rport VexLake:$vport; do
  name=${target%%:*} tp=${target##*:}
  for p in 1 16; do
    read -r a b < <(pair3 rb_ping "$tp" vb_ping "$tp" "$p")
    printf '| %s | %s | %.0f | %.0f | %s |\n' "$name" "$p" "$a" "$b" "$(ratio "$b" "$a")" >>"$md"
  done
done
stop "$rpid"; stop "$vpid"; stop "$epid"
fi

{
  echo
  echo "## Command lines"
  echo
  echo "Servers: \`bin/vexlake-server --port PORT --bind 127.0.0.1 --dir TMP --metric l2|cosine ${index_flags[*]}"
  echo "--appendfsync always|everysec\`, \`redis-server --port PORT --bind 127.0.0.1 --save ''"
  echo "--appendonly no\`. Reproduce everything: \`bench/resp_bench.sh\` (or \`make bench\`)."
  echo
  sed "s|$DATASETS|\$VL_DATASETS|g; s|-port=[0-9]*|-port=PORT|g; s|-p [0-9]* |-p PORT |g" "$tmp/commands" | awk '!seen[$0]++'
} >>"$md"
cp "$md" "$out"
cat "$out"
echo "resp_bench: results in $out" >&2
