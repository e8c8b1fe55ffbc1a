#!/usr/bin/env bash
# bench/scale.sh - `make bench-scale`: VexLake at N vectors (default 1M) of
# the seeded 384-d Gaussian mixture of bench/scale_gen.c.
#
#   1. the data set and its exact ground truth, generated once and cached
#      outside the repository (scale_gen; reused when it verifies)
#   2. in process, one thread: HNSW (SQ8 walk) and IVF (SQ8) build time,
#      memory per vector, recall@10 against QPS, the point at recall 0.95
#      (bench/scale_bench.c)
#   3. start-up: the collection loaded into bin/vexlake-server, SAVEd, and
#      the time until the restarted server answers a VSEARCH, with the index
#      files and after deleting them, with INFO's index counters
#      (bench/scale_startup.py)
#
# Knobs (environment): N, DIM, SEED (the data set), SCALE_PARTS (which of
# ann,startup to run; default both), SCALE_OUT (report path; default
# bench/results/<date>-scale.md), VL_SCALE_CACHE (cache folder, see
# scale_gen.c).  The machine is shared: run it under `nice -n 10`.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
DIM=${DIM:-384}
SEED=${SEED:-42}
PARTS=${SCALE_PARTS:-ann,startup}
OUT=${SCALE_OUT:-bench/results/$(date -u +%Y-%m-%d)-scale.md}
mkdir -p "$(dirname "$OUT")"

gen_cmd="build/rel/bench/scale_gen -n=$N -dim=$DIM -seed=$SEED"
gen_out=$($gen_cmd)
dir=$(printf '%s\n' "$gen_out" | sed -n 's/^dir //p')
[ -n "$dir" ] || { echo "scale: scale_gen gave no folder" >&2; exit 1; }

{
  echo "# Scale: $N x $DIM, cosine (seed $SEED) - $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Machine: $(nproc) cores, $(uname -m), shared with other sessions; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')."
  echo "Data: bench/scale_gen.c (100-cluster Gaussian mixture, 16-d cluster subspaces plus"
  echo "isotropic noise, unit length), 1000 queries from the same model, exact top-100"
  echo "ground truth. Folder: \`$dir\`."
  echo
  echo "Command: \`make bench-scale N=$N DIM=$DIM SEED=$SEED\` (\`bench/scale.sh\`), which ran:"
  echo
  echo "    $gen_cmd"
  printf '%s\n' "$gen_out" | sed 's/^/    # /'
} > "$OUT.tmp"

if [[ ",$PARTS," == *,ann,* ]]; then
  {
    echo "    build/rel/bench/scale_bench $dir"
    echo
    build/rel/bench/scale_bench "$dir"
  } >> "$OUT.tmp"
fi
if [[ ",$PARTS," == *,startup,* ]]; then
  {
    echo "    .venv/bin/python bench/scale_startup.py $dir"
    echo
    .venv/bin/python bench/scale_startup.py "$dir"
  } >> "$OUT.tmp"
fi
mv "$OUT.tmp" "$OUT"
echo "scale: report in $OUT"
