/* rowstore.c - see rowstore.h for the concurrency design. */
#include "core/rowstore.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/kernels/kernels.h"
#include "util/alloc.h"

static void key_of_row(void *ctx, uint32_t row, const char **key, size_t *len)
{
    vl_rowstore *rs = ctx;
    vl_chunk_dir *dir = atomic_load_explicit(&rs->dir, memory_order_relaxed);
    vl_key *k = vl_rowstore_chunk(dir, row)->keys[row % VL_CHUNK_ROWS];
    *key = k->data;
    *len = k->len;
}

vl_rowstore *vl_rowstore_new(vl_metric metric)
{
    vl_rowstore *rs = vl_calloc(1, sizeof *rs);
    atomic_init(&rs->refs, 1);
    rs->metric = metric;
    vl_chunk_dir *dir = vl_calloc(1, sizeof *dir + 16 * sizeof(vl_chunk *));
    dir->cap = 16;
    atomic_init(&rs->dir, dir);
    atomic_init(&rs->nrows, 0);
    vl_keymap_init(&rs->map, key_of_row, rs);
    return rs;
}

void vl_rowstore_ref(vl_rowstore *rs)
{
    atomic_fetch_add_explicit(&rs->refs, 1, memory_order_relaxed);
}

static void free_chunk(vl_chunk *c, uint32_t used)
{
    for (uint32_t i = 0; i < used; i++)
        free(c->keys[i]);
    free(c->vecs);
    free(c->inv_norms);
    free(c->keys);
    free(c->put_lsn);
    free(c->seg_id);
    free(c->seg_row);
    free(c);
}

void vl_rowstore_unref(vl_rowstore *rs)
{
    if (!rs || atomic_fetch_sub_explicit(&rs->refs, 1, memory_order_acq_rel) != 1)
        return;
    vl_chunk_dir *dir = atomic_load_explicit(&rs->dir, memory_order_acquire);
    uint64_t n = atomic_load_explicit(&rs->nrows, memory_order_acquire);
    for (uint64_t c = 0; c * VL_CHUNK_ROWS < n; c++) {
        uint64_t left = n - c * VL_CHUNK_ROWS;
        free_chunk(dir->chunks[c], left < VL_CHUNK_ROWS ? (uint32_t)left : VL_CHUNK_ROWS);
    }
    free(dir);
    for (vl_chunk_dir *d = rs->retired; d;) {
        vl_chunk_dir *next = d->retired_next;
        free(d);
        d = next;
    }
    vl_keymap_free(&rs->map);
    free(rs);
}

#define HUGE_PAGE (2u << 20)

/* A chunk's vectors of 2 MiB or more start on a 2 MiB boundary and ask for
 * transparent huge pages: an exact scan streams them, and with 4 KiB pages
 * TLB misses held it to about 55% of a plain read's bandwidth (with huge
 * pages about 95%; bench/kernels_bench.c).  They ask once the chunk is
 * full (advise_full), not before its first write: then the kernel's
 * khugepaged collapses the filled pages later, off the writer's path,
 * instead of zeroing every 2 MiB page as it is first touched, only for
 * the rows to overwrite it.  On this VM that zeroing of fresh huge pages
 * was 30-45% of a server start's CPU (perf; with the same change to the
 * HNSW arrays a load fills, hnsw_io.c, a start at 200k x 384 took 0.68x
 * the CPU, bench/results/2026-12-02-startup.md).  A chunk keeps 4 KiB
 * pages, and an exact scan over it their speed, until khugepaged gets to
 * it (at its default pace, 16 MB per 10 s). */
static float *alloc_vectors(size_t bytes)
{
    void *p = NULL;
    if (bytes < HUGE_PAGE || posix_memalign(&p, HUGE_PAGE, bytes) != 0)
        return vl_aligned_alloc(bytes);
    return p;
}

/* Ask for huge pages once the chunk is full (see alloc_vectors). */
static void advise_full(const vl_chunk *c, uint32_t dim)
{
    size_t bytes = (size_t)VL_CHUNK_ROWS * dim * sizeof(float);
    if (bytes >= HUGE_PAGE)
        madvise(c->vecs, bytes, MADV_HUGEPAGE); /* advice only: no THP is fine too */
}

static vl_chunk *new_chunk(uint32_t dim)
{
    vl_chunk *c = vl_aligned_alloc(sizeof *c);
    memset(c, 0, sizeof *c);
    c->vecs = alloc_vectors((size_t)VL_CHUNK_ROWS * dim * sizeof(float));
    c->inv_norms = vl_malloc(VL_CHUNK_ROWS * sizeof(double));
    c->keys = vl_calloc(VL_CHUNK_ROWS, sizeof(vl_key *));
    c->put_lsn = vl_malloc(VL_CHUNK_ROWS * sizeof(uint64_t));
    c->seg_id = vl_malloc(VL_CHUNK_ROWS * sizeof(uint32_t));
    c->seg_row = vl_malloc(VL_CHUNK_ROWS * sizeof(uint32_t));
    return c;
}

/* Make sure the chunk for row exists, replacing the directory if full.
 * The new directory is published before the row count that needs it. */
static vl_chunk *chunk_for_append(vl_rowstore *rs, uint64_t row)
{
    vl_chunk_dir *dir = atomic_load_explicit(&rs->dir, memory_order_relaxed);
    uint64_t ci = row / VL_CHUNK_ROWS;
    if (row % VL_CHUNK_ROWS)
        return dir->chunks[ci];
    if (ci >= dir->cap) {
        vl_chunk_dir *bigger = vl_calloc(1, sizeof *bigger + 2 * dir->cap * sizeof(vl_chunk *));
        bigger->cap = 2 * dir->cap;
        memcpy(bigger->chunks, dir->chunks, dir->cap * sizeof(vl_chunk *));
        dir->retired_next = rs->retired;
        rs->retired = dir;
        dir = bigger;
    }
    dir->chunks[ci] = new_chunk(rs->dim);
    atomic_store_explicit(&rs->dir, dir, memory_order_release);
    return dir->chunks[ci];
}

static void mark_deleted(vl_rowstore *rs, uint32_t row, uint64_t lsn)
{
    vl_chunk_dir *dir = atomic_load_explicit(&rs->dir, memory_order_relaxed);
    atomic_store_explicit(&vl_rowstore_chunk(dir, row)->del_lsn[row % VL_CHUNK_ROWS], lsn,
                          memory_order_release);
    rs->live--;
    rs->deletions++;
}

uint32_t vl_rowstore_put(vl_rowstore *rs, const void *key, size_t keylen, const float *vec,
                         uint32_t dim, uint64_t lsn, uint32_t seg_id, uint32_t seg_row)
{
    if (rs->dim == 0)
        rs->dim = dim;
    uint64_t row = atomic_load_explicit(&rs->nrows, memory_order_relaxed);
    vl_chunk *c = chunk_for_append(rs, row);
    uint32_t slot = (uint32_t)(row % VL_CHUNK_ROWS);
    float *dst = c->vecs + (size_t)slot * dim;
    memcpy(dst, vec, (size_t)dim * sizeof(float));
    /* In double: 1/|v| of a tiny or huge float vector is out of float's range.
     * Under cosine with the double reference (vl_dot_f64), so that the
     * search's double re-score of its winners (search.c) reads it instead
     * of summing |v|^2 again: 5% of a MiniLM search's server CPU. */
    double norm =
        sqrt(rs->metric == VL_METRIC_COSINE ? vl_dot_f64(dst, dst, dim) : vl_dot(dst, dst, dim));
    c->inv_norms[slot] = norm > 0 ? 1.0 / norm : 0.0;
    vl_key *k = vl_malloc(sizeof *k + keylen);
    rs->key_bytes += sizeof *k + keylen;
    k->len = (uint32_t)keylen;
    memcpy(k->data, key, keylen);
    c->keys[slot] = k;
    c->put_lsn[slot] = lsn;
    c->seg_id[slot] = seg_id;
    c->seg_row[slot] = seg_row;
    atomic_store_explicit(&c->del_lsn[slot], 0, memory_order_relaxed);
    if (slot == VL_CHUNK_ROWS - 1)
        advise_full(c, dim);
    uint32_t prev =
        vl_keymap_set(&rs->map, key, keylen, vl_keymap_hash(key, keylen), (uint32_t)row);
    atomic_store_explicit(&rs->nrows, row + 1, memory_order_release);
    rs->live++;
    if (prev != VL_KEYMAP_NONE)
        mark_deleted(rs, prev, lsn);
    return prev;
}

uint32_t vl_rowstore_delete(vl_rowstore *rs, const void *key, size_t keylen, uint64_t lsn)
{
    uint32_t row = vl_keymap_remove(&rs->map, key, keylen, vl_keymap_hash(key, keylen));
    if (row != VL_KEYMAP_NONE)
        mark_deleted(rs, row, lsn);
    return row;
}

uint32_t vl_rowstore_find(const vl_rowstore *rs, const void *key, size_t keylen)
{
    return vl_keymap_get(&rs->map, key, keylen, vl_keymap_hash(key, keylen));
}

static vl_chunk *chunk_of(const vl_rowstore *rs, uint32_t row)
{
    vl_chunk_dir *dir = atomic_load_explicit(&((vl_rowstore *)rs)->dir, memory_order_acquire);
    return vl_rowstore_chunk(dir, row);
}

void vl_rowstore_location(const vl_rowstore *rs, uint32_t row, uint32_t *seg_id, uint32_t *seg_row)
{
    vl_chunk *c = chunk_of(rs, row);
    *seg_id = c->seg_id[row % VL_CHUNK_ROWS];
    *seg_row = c->seg_row[row % VL_CHUNK_ROWS];
}

void vl_rowstore_set_location(vl_rowstore *rs, uint32_t row, uint32_t seg_id, uint32_t seg_row)
{
    vl_chunk *c = chunk_of(rs, row);
    c->seg_id[row % VL_CHUNK_ROWS] = seg_id;
    c->seg_row[row % VL_CHUNK_ROWS] = seg_row;
}

uint64_t vl_rowstore_del_lsn(const vl_rowstore *rs, uint32_t row)
{
    return atomic_load_explicit(&chunk_of(rs, row)->del_lsn[row % VL_CHUNK_ROWS],
                                memory_order_acquire);
}

uint64_t vl_rowstore_rows_at(const vl_rowstore *rs, uint64_t nrows, uint64_t lsn)
{
    uint64_t lo = 0, hi = nrows; /* the answer is in [lo, hi] */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (chunk_of(rs, (uint32_t)mid)->put_lsn[mid % VL_CHUNK_ROWS] <= lsn)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const float *vl_rowstore_get(const vl_rowstore *rs, const void *key, size_t keylen)
{
    uint32_t row = vl_rowstore_find(rs, key, keylen);
    if (row == VL_ROW_NONE)
        return NULL;
    return chunk_of(rs, row)->vecs + (size_t)(row % VL_CHUNK_ROWS) * rs->dim;
}

vl_rowstore *vl_rowstore_compact(const vl_rowstore *rs)
{
    vl_rowstore *fresh = vl_rowstore_new(rs->metric);
    fresh->dim = rs->dim;
    uint64_t n = atomic_load_explicit(&rs->nrows, memory_order_relaxed);
    for (uint64_t r = 0; r < n; r++) {
        vl_chunk *c = chunk_of(rs, (uint32_t)r);
        uint32_t slot = (uint32_t)(r % VL_CHUNK_ROWS);
        uint64_t del = atomic_load_explicit(&c->del_lsn[slot], memory_order_relaxed);
        if (del) {
            fresh->since_lsn = del > fresh->since_lsn ? del : fresh->since_lsn;
            continue;
        }
        vl_rowstore_put(fresh, c->keys[slot]->data, c->keys[slot]->len,
                        c->vecs + (size_t)slot * rs->dim, rs->dim, c->put_lsn[slot],
                        c->seg_id[slot], c->seg_row[slot]);
    }
    return fresh;
}

/* ---- memory accounting ---- */

static uint64_t chunk_vector_bytes(uint32_t dim)
{
    return (uint64_t)VL_CHUNK_ROWS * dim * sizeof(float) +
           VL_CHUNK_ROWS * sizeof(*((vl_chunk *)0)->inv_norms);
}

static uint64_t chunk_index_bytes(void)
{
    const vl_chunk *c = NULL;
    return sizeof *c + VL_CHUNK_ROWS * (sizeof *c->keys + sizeof *c->put_lsn + sizeof *c->seg_id +
                                        sizeof *c->seg_row);
}

static uint64_t dir_bytes(const vl_chunk_dir *d)
{
    return sizeof *d + (uint64_t)d->cap * sizeof(vl_chunk *);
}

void vl_rowstore_memory(const vl_rowstore *rs, vl_rowstore_mem *m)
{
    uint64_t n = atomic_load_explicit(&rs->nrows, memory_order_acquire);
    uint64_t chunks = (n + VL_CHUNK_ROWS - 1) / VL_CHUNK_ROWS;
    m->vectors = chunks * chunk_vector_bytes(rs->dim);
    m->keys = rs->key_bytes;
    m->index = sizeof *rs + chunks * chunk_index_bytes() +
               (uint64_t)rs->map.cap * (sizeof *rs->map.hashes + sizeof *rs->map.rows) +
               dir_bytes(atomic_load_explicit(&((vl_rowstore *)rs)->dir, memory_order_acquire));
    for (const vl_chunk_dir *d = rs->retired; d; d = d->retired_next)
        m->index += dir_bytes(d);
}

uint64_t vl_rowstore_put_cost(const vl_rowstore *rs, size_t keylen, uint32_t dim)
{
    uint64_t cost = sizeof(vl_key) + keylen;
    uint64_t n = rs ? atomic_load_explicit(&rs->nrows, memory_order_relaxed) : 0;
    size_t map_cap = rs ? rs->map.cap : 0, map_count = rs ? rs->map.count : 0;
    if (n % VL_CHUNK_ROWS == 0) {
        cost += chunk_vector_bytes(rs && rs->dim ? rs->dim : dim) + chunk_index_bytes();
        vl_chunk_dir *d =
            rs ? atomic_load_explicit(&((vl_rowstore *)rs)->dir, memory_order_relaxed) : NULL;
        if (d && n / VL_CHUNK_ROWS >= d->cap)
            cost += sizeof *d + 2 * (uint64_t)d->cap * sizeof(vl_chunk *);
    }
    if ((map_count + 1) * 4 > map_cap * 3) /* the key map doubles (keymap.c) */
        cost += (map_cap ? map_cap : 64) * (sizeof(uint64_t) + sizeof(uint32_t));
    return cost;
}
