/*
 * ann_bench.c - in-process ANN benchmark of the HNSW index through its C API,
 * one thread, on one shared dataset (texmex layout, see
 * ../shared/datasets/README.md).
 *
 *   build/rel/bench/ann_bench DIR METRIC [M EF_CONSTRUCTION [EF ...]]
 *
 * Builds the index over DIR/base.fvecs (one thread, rows in file order),
 * then for each EF searches every query of DIR/query.fvecs for its 10
 * nearest, `repeat` times, and prints one line per EF; then switches the same
 * graph to SQ8 traversal (vl_hnsw_set_quant), lets it read the float32 rows
 * for re-ranking from the bench's own array (vl_hnsw_set_vector_source, as
 * the engine's row store serves them) and sweeps again.  Recall is tie-aware
 * (tests/unit/testutil_fvecs.h: a row within the 10th ground-truth distance
 * counts).  QPS is queries per second of the best pass, by the process's
 * CPU time (cpu_qps, what bench/ann_peers.py compares: the machine is
 * shared, so wall time includes other processes' turns) and by wall time
 * (wall_qps).
 * Build times are wall (seconds) and CPU (cpu_seconds) seconds.
 * dist_per_query is the distances one query computed (walk on every layer
 * plus re-rank, vl_hnsw_scratch_distances over the last pass): a cost the
 * shared machine's noise does not blur, to compare graphs at equal recall.
 * ANN_BENCH_SEED=<n> builds with graph seed n instead of 42 (the seed alone
 * moves manpage-minilm's cost at recall 0.99 by up to 25%, so graph changes
 * are compared over several).  ANN_BENCH_REPEAT=<n> passes per point instead
 * of 3 (1 when only distances matter; more on a loaded machine).
 * Output lines are "key value" pairs, read by bench/ann_peers.py:
 *
 *   build dataset D rows N dim D seconds S cpu_seconds C bytes_per_vector B
 *         graph_bytes_per_vector G
 *   search dataset D mode float32 ef E recall R cpu_qps Q wall_qps W
 *          dist_per_query N
 *   quant dataset D mode sq8 seconds S cpu_seconds C bytes_per_vector B
 *         own_copy_bytes_per_vector O
 *   search dataset D mode sq8 ef E recall R cpu_qps Q wall_qps W
 *          dist_per_query N
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/index/hnsw.h"
#include "../tests/unit/testutil_fvecs.h"

enum { K = 10, DEFAULT_REPEAT = 3 };

static int repeat = DEFAULT_REPEAT;

static double now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    const float *rows;
    uint32_t dim;
} row_table;

static const float *table_vector(void *ctx, uint32_t row)
{
    const row_table *t = ctx;
    return t->rows + (size_t)row * t->dim;
}

static const char *base_name(const char *dir)
{
    const char *s = strrchr(dir, '/');
    return s && s[1] ? s + 1 : dir;
}

/* All queries at beam ef, `repeat` times; the best pass's CPU and wall
 * seconds and the last pass's distances.  0 on a search error (printed). */
static int sweep_point(const vl_hnsw *h, vl_hnsw_scratch *s, const float *queries, uint32_t nq,
                       uint32_t dim, uint32_t ef, vl_hnsw_hit *hits, uint32_t *got, double *cpu,
                       double *wall, uint64_t *distances)
{
    vl_error err;
    *cpu = *wall = 1e30;
    *distances = 0;
    for (int rep = 0; rep < repeat; rep++) {
        uint64_t d0 = vl_hnsw_scratch_distances(s);
        double c0 = now(CLOCK_PROCESS_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC);
        for (uint32_t qi = 0; qi < nq; qi++)
            if (vl_hnsw_search(h, queries + (size_t)qi * dim, K, ef, NULL, s, hits + (size_t)qi * K,
                               &got[qi], &err) != VL_OK) {
                fprintf(stderr, "ann_bench: search: %s\n", err.msg);
                return 0;
            }
        double c = now(CLOCK_PROCESS_CPUTIME_ID) - c0, w = now(CLOCK_MONOTONIC) - w0;
        *cpu = c < *cpu ? c : *cpu;
        *wall = w < *wall ? w : *wall;
        *distances = vl_hnsw_scratch_distances(s) - d0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s DIR l2|cosine|ip [M EF_CONSTRUCTION [EF ...]]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    vl_metric metric;
    if (vl_metric_parse(argv[2], &metric) != VL_OK) {
        fprintf(stderr, "ann_bench: unknown metric %s\n", argv[2]);
        return 2;
    }
    uint32_t m = argc > 3 ? (uint32_t)atoi(argv[3]) : VL_HNSW_DEFAULT_M;
    uint32_t efc = argc > 4 ? (uint32_t)atoi(argv[4]) : VL_HNSW_DEFAULT_EF_CONSTRUCTION;
    static const uint32_t default_efs[] = {10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 400};
    uint32_t nef = argc > 5 ? (uint32_t)(argc - 5) : sizeof default_efs / sizeof default_efs[0];

    uint32_t nb, db, nq, dq, ng, dg;
    float *base = vl_read_vecs_in("ann_bench", dir, "base.fvecs", &nb, &db);
    float *queries = vl_read_vecs_in("ann_bench", dir, "query.fvecs", &nq, &dq);
    float *gtd = vl_read_vecs_in("ann_bench", dir, "groundtruth_dist.fvecs", &ng, &dg);
    if (db != dq || ng != nq || dg < K) {
        fprintf(stderr, "ann_bench: %s: inconsistent files\n", dir);
        return 1;
    }

    const char *repeat_env = getenv("ANN_BENCH_REPEAT");
    if (repeat_env && atoi(repeat_env) > 0)
        repeat = atoi(repeat_env);
    const char *seed_env = getenv("ANN_BENCH_SEED");
    uint64_t seed = seed_env && *seed_env ? strtoull(seed_env, NULL, 10) : 42;
    vl_hnsw *h;
    vl_error err;
    if (vl_hnsw_create(db, metric, m, efc, seed, &h, &err) != VL_OK) {
        fprintf(stderr, "ann_bench: %s\n", err.msg);
        return 1;
    }
    double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    if (vl_hnsw_reserve(h, nb, &err) != VL_OK) {
        fprintf(stderr, "ann_bench: %s\n", err.msg);
        return 1;
    }
    for (uint32_t r = 0; r < nb; r++)
        if (vl_hnsw_add(h, r, base + (size_t)r * db, &err) != VL_OK) {
            fprintf(stderr, "ann_bench: add %u: %s\n", r, err.msg);
            return 1;
        }
    double build_s = now(CLOCK_MONOTONIC) - t0, build_cpu = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
    printf("build dataset %s rows %u dim %u seconds %.3f cpu_seconds %.3f bytes_per_vector %.1f "
           "graph_bytes_per_vector %.1f\n",
           base_name(dir), nb, db, build_s, build_cpu, (double)vl_hnsw_memory_bytes(h) / nb,
           (double)vl_hnsw_graph_bytes(h) / nb);
    fflush(stdout);

    vl_hnsw_scratch *s = vl_hnsw_scratch_new();
    vl_hnsw_hit *hits = malloc((size_t)nq * K * sizeof(vl_hnsw_hit));
    uint32_t *got = malloc((size_t)nq * sizeof(uint32_t));
    for (int mode = 0; mode < 2; mode++) {
        if (mode == 1) {
            t0 = now(CLOCK_MONOTONIC);
            c0 = now(CLOCK_PROCESS_CPUTIME_ID);
            if (vl_hnsw_set_quant(h, VL_HNSW_QUANT_SQ8, &err) != VL_OK) {
                fprintf(stderr, "ann_bench: %s\n", err.msg);
                return 1;
            }
            double quant_s = now(CLOCK_MONOTONIC) - t0,
                   quant_cpu = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
            double own = (double)vl_hnsw_memory_bytes(h) / nb;
            static row_table table;
            table = (row_table){base, db};
            vl_hnsw_vectors src = {table_vector, &table};
            if (vl_hnsw_set_vector_source(h, &src, &err) != VL_OK) {
                fprintf(stderr, "ann_bench: %s\n", err.msg);
                return 1;
            }
            printf("quant dataset %s mode sq8 seconds %.3f cpu_seconds %.3f bytes_per_vector %.1f "
                   "own_copy_bytes_per_vector %.1f\n",
                   base_name(dir), quant_s, quant_cpu, (double)vl_hnsw_memory_bytes(h) / nb, own);
        }
        for (uint32_t e = 0; e < nef; e++) {
            uint32_t ef = argc > 5 ? (uint32_t)atoi(argv[5 + e]) : default_efs[e];
            double cpu, wall;
            uint64_t distances;
            if (!sweep_point(h, s, queries, nq, dq, ef, hits, got, &cpu, &wall, &distances))
                return 1;
            uint64_t total = 0;
            for (uint32_t qi = 0; qi < nq; qi++) {
                uint32_t rows[K];
                for (uint32_t i = 0; i < got[qi]; i++)
                    rows[i] = hits[(size_t)qi * K + i].row;
                total += vl_tie_hits(metric, queries + (size_t)qi * dq, base, db, rows, got[qi],
                                     gtd[(size_t)qi * dg + K - 1]);
            }
            printf("search dataset %s mode %s ef %u recall %.4f cpu_qps %.0f wall_qps %.0f "
                   "dist_per_query %.1f\n",
                   base_name(dir), mode ? "sq8" : "float32", ef, (double)total / ((double)nq * K),
                   nq / cpu, nq / wall, (double)distances / nq);
            fflush(stdout);
        }
    }
    vl_hnsw_scratch_free(s);
    vl_hnsw_free(h);
    free(hits);
    free(got);
    free(base);
    free(queries);
    free(gtd);
    return 0;
}
