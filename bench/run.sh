#!/usr/bin/env bash
# bench/run.sh - `make bench`: VexLake against its peers, in the same run.
#
#   0. kernels: every SIMD path against scalar at d = 128/384/784/1536, and
#      the exact scan's GB/s against a streaming read (bench/kernels_bench.c)
#   1. in-process ANN, one thread: VexLake's HNSW and IVF (float32 and
#      compressed codes) against hnswlib, faiss, usearch, ngt, pyvsag and
#      scann on every shared dataset (bench/ann_peers.py; its tables and
#      recall-vs-QPS plots go to bench/results/<date>.md and ann-*.png)
#   2. insert throughput: redis-benchmark, 50 clients, VSET of 128-d text
#      vectors with --appendfsync always, against redis-server 7 (Debian)
#      doing SET of the same payload with appendonly yes + appendfsync always
#   3. exact search latency on the shared ANN datasets: VexLake VSEARCH over
#      redis-py (FP32 blobs) against FAISS IndexFlatL2 called in-process
#   4. the lake: flush throughput, cold start and on-disk size for 105k
#      Fashion-MNIST vectors, against pyarrow writing/reading the same data
# Figures are printed and appended to bench/results/<date>.txt together with
# the command that produced them.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
  else
    echo "bench: run  sudo apt-get install -y redis-server redis-tools" >&2; exit 1
  fi
fi
bench/install-peers.sh

mkdir -p bench/results
out="bench/results/$(date -u +%Y-%m-%d).txt"
{
  echo "## $(date -u '+%Y-%m-%d %H:%M UTC')  make bench  ($(nproc) cores, $(uname -m), kernel $(uname -r))"
  build/rel/bench/kernels_bench
  BENCH_COMMAND="make bench" .venv/bin/python bench/ann_peers.py
  bench/insert_throughput.sh
  bench/resp_bench.sh # over RESP with bin/vexlake-bench: bench/results/<date>-resp.md
  .venv/bin/python bench/search_latency.py
  .venv/bin/python bench/lake_flush.py
  echo
} 2>&1 | tee -a "$out"
echo "bench: results appended to $out"
