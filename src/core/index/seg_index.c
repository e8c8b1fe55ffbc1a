/*
 * seg_index.c - one segment's index over hnsw.h or ivf.h (see seg_index.h).
 *
 * Decisions:
 *  - Float32 rows exist once in memory, in the engine's row store.  HNSW
 *    with SQ8 (the default) walks codes and re-ranks in float32 through a
 *    vector source (vl_hnsw_set_vector_source) instead of its own copy;
 *    IVF with compressed codes re-ranks through the search's vector
 *    callback.  Both hold codes and links only, and neither keeps a pointer
 *    into the rows: the rows a search reads are the ones its snapshot pins.
 *    A loaded HNSW gets its source at load (vl_hnsw_load_over), so no copy
 *    is made and freed at start.
 *  - One index serves every row store generation that maps its segment (a
 *    reclaim of dead rows or a follower's swap copies rows to a new
 *    generation; a time-travel version has its own), so the HNSW's source
 *    cannot name rows: it reads through a thread-local pointer to the rows
 *    of the call in progress on this thread -- the segment's vectors during
 *    a build or load, the search's vl_seg_filter.vector during a search.
 *    vl_hnsw calls its source only on the calling thread.  A filtered SQ8
 *    walk reads float32 rows only to re-rank the rows it may return (the
 *    walk itself reads codes), so the callback is never asked for a row
 *    the snapshot does not see; tests/unit/test_index_engine.c searches
 *    segments whose deleted rows are gone from the row store, under ASan.
 *  - HNSW without codes (quant none) keeps its float32 copy: its walk reads
 *    the vector of every row it passes, deleted rows included, and those
 *    are not in the row store once its dead rows are reclaimed.  IVF
 *    without codes holds float32 lists by definition (they are its file's
 *    list layout, read one range per list).  vl_seg_index_vector_bytes
 *    reports both.
 *  - The seed is a constant: two builds of one segment are byte-identical,
 *    which is what makes "rebuild from the segment" checkable.
 *  - IVF searches with ivf.h's defaults at every segment size: sqrt(n)
 *    lists, an adaptive probe that stops once no further list can hold a
 *    row near enough, and RaBitQ candidates re-ranked by their error
 *    bound (small segments used to probe every list and re-rank every
 *    candidate to make up for fixed defaults).
 *  - HNSW search scratch is per thread (a pthread key, freed when the
 *    thread exits) and shared by every index the thread searches: a fresh
 *    scratch per search costs a visited set of the segment's size, which
 *    measured 136 us per query on 40,000 rows against 590 us for the exact
 *    scan; reusing it leaves the walk itself.
 */
#include "core/index/seg_index.h"

#include <pthread.h>
#include <stdlib.h>

#include "core/index/hnsw.h"
#include "core/index/ivf.h"
#include "util/alloc.h"
#include "util/error.h"

#define SEG_INDEX_SEED 0x76657861ull /* "vexa" */

struct vl_seg_index {
    _Atomic uint32_t refs;
    vl_index_kind kind;
    uint32_t rows;
    int outdated; /* decoded from an older file format */
    vl_hnsw *hnsw;
    vl_ivf *ivf;
};

/* ---- the HNSW's vector source: the rows of the call in progress ---- */

typedef struct {
    const float *(*vector)(void *ctx, uint32_t seg_row);
    void *ctx;
} seg_rows;

static _Thread_local seg_rows cur_rows;

static const float *current_row(void *ctx, uint32_t seg_row)
{
    (void)ctx;
    return cur_rows.vector(cur_rows.ctx, seg_row);
}

typedef struct {
    const float *vecs;
    uint32_t dim;
} row_array;

static const float *array_row(void *ctx, uint32_t seg_row)
{
    const row_array *a = ctx;
    return a->vecs + (size_t)seg_row * a->dim;
}

/* Make an SQ8 HNSW read its rows through current_row and drop its copy;
 * vecs (n x dim) are the rows it was built from or is loaded over. */
static vl_status use_row_source(vl_hnsw *h, const float *vecs, uint32_t dim, vl_error *err)
{
    if (vl_hnsw_quant_of(h) != VL_HNSW_QUANT_SQ8)
        return VL_OK;
    row_array a = {vecs, dim};
    seg_rows saved = cur_rows;
    cur_rows = (seg_rows){array_row, &a};
    vl_hnsw_vectors src = {current_row, NULL};
    vl_status st = vl_hnsw_set_vector_source(h, &src, err);
    cur_rows = saved;
    return st;
}

vl_status vl_seg_index_check_params(const vl_index_params *p, vl_error *err)
{
    if ((unsigned)p->kind > VL_INDEX_IVF)
        return vl_fail(err, VL_ERR_ARG, "unknown index kind %d", (int)p->kind);
    if ((unsigned)p->quant > VL_QUANT_RABITQ)
        return vl_fail(err, VL_ERR_ARG, "unknown quantiser %d", (int)p->quant);
    if (p->kind == VL_INDEX_HNSW && p->quant == VL_QUANT_RABITQ)
        return vl_fail(err, VL_ERR_ARG, "index hnsw walks on none or sq8 codes; rabitq is for ivf");
    if (p->kind == VL_INDEX_HNSW && p->hnsw_m && (p->hnsw_m < 2 || p->hnsw_m > VL_HNSW_MAX_M))
        return vl_fail(err, VL_ERR_ARG, "hnsw M must be between 2 and %d", VL_HNSW_MAX_M);
    return VL_OK;
}

int vl_seg_index_wanted(const vl_index_params *p, uint64_t rows, uint64_t min_rows)
{
    return p->kind != VL_INDEX_FLAT && rows > 0 && rows >= min_rows && rows < UINT32_MAX;
}

static vl_seg_index *wrap(vl_index_kind kind, uint32_t rows, vl_hnsw *h, vl_ivf *v)
{
    vl_seg_index *ix = vl_calloc(1, sizeof *ix);
    atomic_init(&ix->refs, 1);
    ix->kind = kind;
    ix->rows = rows;
    ix->hnsw = h;
    ix->ivf = v;
    return ix;
}

static vl_status build_hnsw(const vl_index_params *p, vl_metric metric, const float *vecs,
                            uint32_t n, uint32_t dim, const atomic_int *cancel, vl_hnsw **out,
                            vl_error *err)
{
    vl_hnsw *h;
    vl_status st =
        vl_hnsw_create(dim, metric, p->hnsw_m, p->hnsw_ef_construction, SEG_INDEX_SEED, &h, err);
    if (st != VL_OK)
        return st;
    st = vl_hnsw_reserve(h, n, err);
    for (uint32_t r = 0; st == VL_OK && r < n; r++) {
        if (cancel && r % 256 == 0 && atomic_load(cancel))
            st = vl_fail(err, VL_ERR_BUSY, "index build cancelled");
        else
            st = vl_hnsw_add(h, r, vecs + (size_t)r * dim, err);
    }
    if (st == VL_OK && p->quant == VL_QUANT_SQ8)
        st = vl_hnsw_set_quant(h, VL_HNSW_QUANT_SQ8, err);
    if (st == VL_OK)
        st = use_row_source(h, vecs, dim, err);
    if (st != VL_OK) {
        vl_hnsw_free(h);
        return st;
    }
    *out = h;
    return VL_OK;
}

vl_status vl_seg_index_build(const vl_index_params *p, vl_metric metric, const float *vecs,
                             uint32_t n, uint32_t dim, const atomic_int *cancel, vl_seg_index **out,
                             vl_error *err)
{
    *out = NULL;
    vl_status st = vl_seg_index_check_params(p, err);
    if (st != VL_OK)
        return st;
    if (p->kind == VL_INDEX_HNSW) {
        vl_hnsw *h;
        if ((st = build_hnsw(p, metric, vecs, n, dim, cancel, &h, err)) == VL_OK)
            *out = wrap(VL_INDEX_HNSW, n, h, NULL);
        return st;
    }
    if (p->kind != VL_INDEX_IVF)
        return vl_fail(err, VL_ERR_ARG, "index kind %s builds no file",
                       vl_index_kind_name(p->kind));
    vl_ivf_params ip = {.dim = dim,
                        .metric = metric,
                        .nlist = p->ivf_lists,
                        .quant = (vl_ivf_quant)p->quant,
                        .seed = SEG_INDEX_SEED};
    vl_ivf *v;
    if ((st = vl_ivf_build(&ip, vecs, n, &v, err)) == VL_OK)
        *out = wrap(VL_INDEX_IVF, n, NULL, v);
    return st;
}

vl_status vl_seg_index_encode(const vl_seg_index *ix, uint8_t **buf, size_t *len, vl_error *err)
{
    if (ix->kind == VL_INDEX_HNSW)
        return vl_hnsw_save(ix->hnsw, buf, len, err);
    return vl_ivf_serialize(ix->ivf, buf, len, err);
}

static vl_status check_ivf(const vl_ivf *v, uint32_t n, uint32_t dim, vl_metric metric,
                           vl_error *err)
{
    if (vl_ivf_count(v) != n || vl_ivf_dim(v) != dim || vl_ivf_metric(v) != metric)
        return vl_fail(err, VL_ERR_CORRUPT,
                       "ivf index: %u rows of dimension %u (%s), the segment has %u of %u (%s)",
                       vl_ivf_count(v), vl_ivf_dim(v), vl_metric_name(vl_ivf_metric(v)), n, dim,
                       vl_metric_name(metric));
    return VL_OK;
}

vl_status vl_seg_index_decode(vl_index_kind kind, const uint8_t *buf, size_t len, const float *vecs,
                              uint32_t n, uint32_t dim, vl_metric metric, vl_seg_index **out,
                              vl_error *err)
{
    *out = NULL;
    vl_status st;
    if (kind == VL_INDEX_HNSW) {
        vl_hnsw *h;
        vl_hnsw_vectors src = {current_row, NULL};
        if ((st = vl_hnsw_load_over(buf, len, vecs, &src, n, dim, &h, err)) != VL_OK)
            return st;
        *out = wrap(kind, n, h, NULL);
        (*out)->outdated = vl_hnsw_body_outdated(buf, len);
        return VL_OK;
    }
    if (kind != VL_INDEX_IVF)
        return vl_fail(err, VL_ERR_CORRUPT, "index kind %d has no file format", (int)kind);
    vl_ivf *v;
    if ((st = vl_ivf_load(buf, len, &v, err)) != VL_OK)
        return st;
    if ((st = check_ivf(v, n, dim, metric, err)) != VL_OK) {
        vl_ivf_free(v);
        return st;
    }
    *out = wrap(kind, n, NULL, v);
    return VL_OK;
}

int vl_seg_index_outdated(const vl_seg_index *ix)
{
    return ix->outdated;
}

vl_index_kind vl_seg_index_kind(const vl_seg_index *ix)
{
    return ix->kind;
}

uint32_t vl_seg_index_rows(const vl_seg_index *ix)
{
    return ix->rows;
}

size_t vl_seg_index_memory(const vl_seg_index *ix)
{
    return sizeof *ix + (ix->hnsw ? vl_hnsw_memory_bytes(ix->hnsw) : vl_ivf_memory_bytes(ix->ivf));
}

size_t vl_seg_index_vector_bytes(const vl_seg_index *ix)
{
    if (ix->hnsw)
        return vl_hnsw_vector_bytes(ix->hnsw);
    if (vl_ivf_quant_of(ix->ivf) != VL_IVF_QUANT_NONE)
        return 0;
    return (size_t)vl_ivf_count(ix->ivf) * vl_ivf_dim(ix->ivf) * sizeof(float);
}

const char *vl_seg_index_suffix(vl_index_kind kind)
{
    return kind == VL_INDEX_IVF ? "ivf" : "hnsw";
}

void vl_seg_index_ref(vl_seg_index *ix)
{
    atomic_fetch_add_explicit(&ix->refs, 1, memory_order_relaxed);
}

void vl_seg_index_unref(vl_seg_index *ix)
{
    if (!ix || atomic_fetch_sub_explicit(&ix->refs, 1, memory_order_acq_rel) != 1)
        return;
    vl_hnsw_free(ix->hnsw);
    vl_ivf_free(ix->ivf);
    free(ix);
}

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void free_scratch(void *s)
{
    vl_hnsw_scratch_free(s);
}

static void make_scratch_key(void)
{
    pthread_key_create(&scratch_key, free_scratch);
}

/* This thread's HNSW scratch, or NULL (then the search allocates one). */
static vl_hnsw_scratch *thread_scratch(void)
{
    pthread_once(&scratch_once, make_scratch_key);
    vl_hnsw_scratch *s = pthread_getspecific(scratch_key);
    if (!s && (s = vl_hnsw_scratch_new()) && pthread_setspecific(scratch_key, s) != 0) {
        vl_hnsw_scratch_free(s);
        s = NULL;
    }
    return s;
}

vl_status vl_seg_index_search(const vl_seg_index *ix, const float *query, uint32_t k, uint32_t ef,
                              uint32_t nprobe, const vl_seg_filter *f, vl_seg_hit *out, uint32_t *n,
                              vl_error *err)
{
    *n = 0;
    if (k > ix->rows)
        k = ix->rows;
    if (k == 0)
        return VL_OK;
    vl_status st;
    if (ix->kind == VL_INDEX_HNSW) {
        vl_hnsw_filter hf = {.allow = f->allow, .ctx = f->ctx};
        vl_hnsw_hit *hits = vl_malloc((size_t)k * sizeof *hits);
        seg_rows saved = cur_rows;
        cur_rows = (seg_rows){f->vector, f->ctx};
        st = vl_hnsw_search(ix->hnsw, query, k, ef, f->allow ? &hf : NULL, thread_scratch(), hits,
                            n, err); /* no filter: the faster unfiltered walk */
        cur_rows = saved;
        for (uint32_t i = 0; st == VL_OK && i < *n; i++)
            out[i] = (vl_seg_hit){hits[i].row, hits[i].dist};
        free(hits);
        return st;
    }
    vl_ivf_search_opts o = {.nprobe = nprobe,
                            .filter = f->allow,
                            .filter_ctx = f->ctx,
                            .vector = f->vector,
                            .vector_ctx = f->ctx};
    vl_ivf_hit *hits = vl_malloc((size_t)k * sizeof *hits);
    st = vl_ivf_search(ix->ivf, query, k, &o, hits, n, err);
    for (uint32_t i = 0; st == VL_OK && i < *n; i++)
        out[i] = (vl_seg_hit){hits[i].row, hits[i].dist};
    free(hits);
    return st;
}
