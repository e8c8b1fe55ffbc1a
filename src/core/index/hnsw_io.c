/*
 * hnsw_io.c - an HNSW graph as an index file body and back.
 *
 * The layout is specified in docs/storage-format.md ("HNSW index file").
 * Decisions a reader cannot see from the code:
 *  - The body carries the graph only; the vectors come from the segment,
 *    which is the truth, and a CRC-32C of them taken while building is kept
 *    in the header so that a graph is never paired with other vectors.
 *  - Lists are written with their true length (not the in-memory stride),
 *    so the file is as small as the links and independent of the layout.
 *  - Loading checks, in order: the length recorded in the header (a
 *    truncated or extended body is named as such), the CRC-32C over
 *    everything before it, then every field against its bounds and every
 *    link against the row count and the target's level, so even a body with
 *    a valid checksum cannot make a search read out of bounds.
 *  - The level generator's state is saved, so rows added after a load get
 *    the levels they would have got without the save.
 *  - Version 2 also stores the SQ8 codes (and the int8 scales) after the
 *    lists, on a 64-byte boundary: at 1M x 384 recomputing them from the
 *    segment was 8.5% of a server start's CPU, and the codes array is
 *    written once either way (a copy from the file instead of an encode).
 *    Cosine's inverse norms are not stored: the load reads every vector
 *    once anyway for the CRC check, and computes them in the same pass.
 *    Version 1 bodies (no codes) are still read the old way: a float32
 *    copy, codes encoded from it (so they equal the build's byte for byte:
 *    encoding a raw cosine row instead of the normalised copy rounds a few
 *    codes the other way), then the copy dropped for the source.  L2's
 *    "every code is exact" flag is recomputed in the vectors' pass, so no
 *    stored claim has to be trusted.
 *  - vl_hnsw_load_over makes an index that reads its rows through the
 *    caller's source from the start: it never allocates the float32 copy
 *    that vl_hnsw_set_vector_source would free right after (4 x dim bytes
 *    per row of fresh memory at every start: 1.5 GB at 1M x 384, whose
 *    first-touch page faults were most of a start's CPU on this VM).
 *  - The arrays a load fills whole (SQ8 codes, layer-0 lists) ask for
 *    huge pages only once filled, as hnsw.c's walk wants them: advised
 *    before, each fresh 2 MiB page is zeroed by the kernel on first touch
 *    and then overwritten, which on this VM cost about twice a 4 KiB
 *    page's fault per byte; advised after, khugepaged collapses them later
 *    (the row store does the same for its chunks, rowstore.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/index/hnsw.h"
#include "core/index/hnsw_internal.h"
#include "core/index/le_bytes.h"
#include "storage/crc32c.h"
#include "util/error.h"

#define HNSW_MAGIC "VLHNSWIX"
#define HNSW_VERSION 2u /* written; 1 (no codes) is still read */
#define HNSW_HEADER 88u
#define HNSW_CODE_ALIGN 64u
#define HUGE_PAGE (2u << 20)

static size_t align_code(size_t n)
{
    return (n + HNSW_CODE_ALIGN - 1) & ~(size_t)(HNSW_CODE_ALIGN - 1);
}

/* Bytes of the codes section: codes, then (cosine, ip) one float scale per
 * row; 0 without a quantiser. */
static size_t codes_bytes(vl_hnsw_quant quant, vl_metric metric, uint32_t count, uint32_t dim)
{
    if (quant == VL_HNSW_QUANT_NONE)
        return 0;
    return (size_t)count * dim + (metric == VL_METRIC_L2 ? 0 : 4 * (size_t)count);
}

/* Offset of the end of the lists (where version 1 puts its CRC). */
static size_t lists_end(const vl_hnsw *h)
{
    size_t n = HNSW_HEADER + h->count;
    for (uint32_t r = 0; r < h->count; r++)
        for (uint32_t lc = 0; lc <= h->levels[r]; lc++)
            n += 4 * (1 + (size_t)vl_hnsw_list(h, r, lc)[0]);
    return n;
}

static size_t body_size(const vl_hnsw *h, size_t lists)
{
    if (h->quant == VL_HNSW_QUANT_NONE)
        return lists + 4;
    return align_code(lists) + codes_bytes(h->quant, h->metric, h->count, h->dim) + 4;
}

static uint8_t *put_list(uint8_t *p, const uint32_t *list)
{
    for (uint32_t i = 0; i <= list[0]; i++, p += 4)
        vl_le_put32(p, list[i]);
    return p;
}

vl_status vl_hnsw_save(const vl_hnsw *h, uint8_t **buf, size_t *len, vl_error *err)
{
    size_t lists = lists_end(h), n = body_size(h, lists);
    uint8_t *b = malloc(n);
    if (!b)
        return vl_fail(err, VL_ERR_NOMEM, "hnsw save: out of memory for %zu bytes", n);
    memcpy(b, HNSW_MAGIC, 8);
    vl_le_put32(b + 8, HNSW_VERSION);
    vl_le_put32(b + 12, h->dim);
    vl_le_put32(b + 16, (uint32_t)h->metric);
    vl_le_put32(b + 20, h->m);
    vl_le_put32(b + 24, h->m0);
    vl_le_put32(b + 28, h->ef_construction);
    vl_le_put64(b + 32, h->seed);
    vl_le_put64(b + 40, h->rng);
    vl_le_put32(b + 48, h->count);
    vl_le_put32(b + 52, h->count ? h->entry : 0);
    vl_le_put32(b + 56, h->count ? h->max_level : 0);
    vl_le_put32(b + 60, h->vec_crc);
    vl_le_put64(b + 64, n);
    vl_le_put32(b + 72, (uint32_t)h->quant);
    vl_le_put_f32(b + 76, h->quant ? h->sq_lo : 0);
    vl_le_put_f32(b + 80, h->quant ? h->sq_step : 0);
    vl_le_put32(b + 84, 0);
    uint8_t *p = b + HNSW_HEADER;
    if (h->count)
        memcpy(p, h->levels, h->count);
    p += h->count;
    for (uint32_t r = 0; r < h->count; r++)
        p = put_list(p, vl_hnsw_list(h, r, 0));
    for (uint32_t r = 0; r < h->count; r++)
        for (uint32_t lc = 1; lc <= h->levels[r]; lc++)
            p = put_list(p, vl_hnsw_list(h, r, lc));
    if (h->quant != VL_HNSW_QUANT_NONE) {
        memset(p, 0, align_code(lists) - lists);
        p = b + align_code(lists);
        if (h->count)
            memcpy(p, h->codes, (size_t)h->count * h->dim);
        p += (size_t)h->count * h->dim;
        for (uint32_t r = 0; h->metric != VL_METRIC_L2 && r < h->count; r++, p += 4)
            vl_le_put_f32(p, h->sq_scale[r]);
    }
    vl_le_put32(p, vl_crc32c(0, b, n - 4));
    *buf = b;
    *len = n;
    return VL_OK;
}

typedef struct {
    const uint8_t *p, *end;
} cursor;

/* Read one list of row r on layer lc into dst ([n, ids]); 0 with a message
 * in err when it does not fit or links outside the graph. */
static int take_list(cursor *c, const vl_hnsw *h, uint32_t r, uint32_t lc, uint32_t *dst,
                     vl_error *err)
{
    uint32_t max = lc ? h->m : h->m0;
    if (c->end - c->p < 4) {
        vl_fail(err, VL_ERR_CORRUPT, "hnsw index: list of row %u layer %u runs past the end", r,
                lc);
        return 0;
    }
    uint32_t n = vl_le_get32(c->p);
    c->p += 4;
    if (n > max || (size_t)(c->end - c->p) < 4 * (size_t)n) {
        vl_fail(err, VL_ERR_CORRUPT, "hnsw index: row %u layer %u has %u links (at most %u fit)", r,
                lc, n, max);
        return 0;
    }
    dst[0] = n;
    for (uint32_t i = 0; i < n; i++, c->p += 4) {
        uint32_t id = vl_le_get32(c->p);
        if (id >= h->count || id == r || h->levels[id] < lc) {
            vl_fail(err, VL_ERR_CORRUPT,
                    "hnsw index: row %u layer %u links to row %u (rows %u, its level %u)", r, lc,
                    id, h->count, id < h->count ? h->levels[id] : 0);
            return 0;
        }
        dst[1 + i] = id;
    }
    return 1;
}

/* The fixed header's fields, once checked. */
typedef struct {
    uint32_t version, metric, m, efc, quant, entry, max_level, vec_crc;
    uint64_t seed, rng;
    float lo, step;
} header;

/* The fixed header: checks it (length, CRC, then every field). */
static vl_status load_header(const uint8_t *b, size_t len, uint32_t count, uint32_t dim, header *hd,
                             vl_error *err)
{
    if (len < HNSW_HEADER + 4)
        return vl_fail(err, VL_ERR_CORRUPT, "hnsw index: truncated (%zu bytes, header is %u)", len,
                       HNSW_HEADER + 4);
    if (memcmp(b, HNSW_MAGIC, 8) != 0)
        return vl_fail(err, VL_ERR_CORRUPT, "hnsw index: bad magic (not an HNSW index file)");
    uint64_t total = vl_le_get64(b + 64);
    if (total != len)
        return vl_fail(err, VL_ERR_CORRUPT, "hnsw index: %zu bytes, header says %llu (truncated?)",
                       len, (unsigned long long)total);
    uint32_t stored = vl_le_get32(b + len - 4), crc = vl_crc32c(0, b, len - 4);
    if (stored != crc)
        return vl_fail(err, VL_ERR_CORRUPT,
                       "hnsw index: checksum mismatch (stored %08x, computed %08x)", stored, crc);
    hd->version = vl_le_get32(b + 8);
    if (hd->version != 1 && hd->version != HNSW_VERSION)
        return vl_fail(err, VL_ERR_CORRUPT,
                       "hnsw index: format version %u, this build reads 1 and %u", hd->version,
                       HNSW_VERSION);
    uint32_t fdim = vl_le_get32(b + 12), fcount = vl_le_get32(b + 48);
    hd->metric = vl_le_get32(b + 16);
    hd->m = vl_le_get32(b + 20);
    hd->efc = vl_le_get32(b + 28);
    uint32_t m0 = vl_le_get32(b + 24);
    if (fdim != dim || fcount != count)
        return vl_fail(err, VL_ERR_CORRUPT,
                       "hnsw index: built for %u rows of %u dimensions, segment has %u of %u",
                       fcount, fdim, count, dim);
    if (hd->m < 2 || hd->m > VL_HNSW_MAX_M || m0 != 2 * hd->m || hd->efc == 0 ||
        vl_le_get32(b + 84) != 0)
        return vl_fail(err, VL_ERR_CORRUPT, "hnsw index: bad parameters (M %u, M0 %u, efc %u)",
                       hd->m, m0, hd->efc);
    hd->quant = vl_le_get32(b + 72);
    hd->lo = vl_le_get_f32(b + 76);
    hd->step = vl_le_get_f32(b + 80);
    if (hd->quant > VL_HNSW_QUANT_SQ8 || !isfinite(hd->lo) || !isfinite(hd->step) ||
        (hd->quant ? !(hd->step > 0) : hd->lo != 0 || hd->step != 0))
        return vl_fail(err, VL_ERR_CORRUPT, "hnsw index: bad quantiser %u (lo %g, step %g)",
                       hd->quant, hd->lo, hd->step);
    if (hd->metric > VL_METRIC_IP)
        return vl_fail(err, VL_ERR_CORRUPT, "hnsw index: unknown metric %u", hd->metric);
    hd->seed = vl_le_get64(b + 32);
    hd->rng = vl_le_get64(b + 40);
    hd->entry = vl_le_get32(b + 52);
    hd->max_level = vl_le_get32(b + 56);
    hd->vec_crc = vl_le_get32(b + 60);
    return VL_OK;
}

/* The rows of the vectors being loaded, while the load reads them. */
typedef struct {
    const float *vecs;
    uint32_t dim;
} row_array;

static const float *array_row(void *ctx, uint32_t r)
{
    const row_array *a = ctx;
    return a->vecs + (size_t)r * a->dim;
}

/* The empty index the header describes, with room for count rows: with
 * its own float32 copy, or (rows != NULL) reading them through rows and
 * holding none: the state vl_hnsw_set_vector_source leaves, reached
 * without allocating the copy first (vl_hnsw_alloc makes one unless a
 * source is set; it is set on a one-row index, which then grows). */
static vl_status create(const header *hd, uint32_t count, uint32_t dim, row_array *rows,
                        vl_hnsw **out, vl_error *err)
{
    vl_hnsw *h;
    vl_status st = vl_hnsw_alloc(dim, (vl_metric)hd->metric, hd->m, hd->efc, hd->seed,
                                 rows ? 1 : count, &h, err);
    if (st != VL_OK)
        return st;
    if (rows) {
        free(h->vecs);
        h->vecs = NULL;
        h->src = (vl_hnsw_vectors){array_row, rows};
        if (h->metric == VL_METRIC_COSINE && !(h->inv = calloc(1, sizeof(float))))
            st = vl_fail(err, VL_ERR_NOMEM, "hnsw index: out of memory for %u norms", count);
        if (st == VL_OK)
            st = vl_hnsw_reserve(h, count, err);
        if (st != VL_OK) {
            vl_hnsw_free(h);
            return st;
        }
    }
    h->count = count;
    h->rng = hd->rng;
    h->entry = hd->entry;
    h->max_level = hd->max_level;
    h->vec_crc = hd->vec_crc;
    *out = h;
    return VL_OK;
}

/* Levels: each within bounds, the entry on the top one. */
static vl_status load_levels(vl_hnsw *h, cursor *c, vl_error *err)
{
    if ((size_t)(c->end - c->p) < h->count)
        return vl_fail(err, VL_ERR_CORRUPT, "hnsw index: levels run past the end");
    uint32_t top = 0;
    for (uint32_t r = 0; r < h->count; r++) {
        uint8_t l = c->p[r];
        if (l > VL_HNSW_MAX_LEVEL)
            return vl_fail(err, VL_ERR_CORRUPT, "hnsw index: row %u on level %u (at most %u)", r, l,
                           VL_HNSW_MAX_LEVEL);
        h->levels[r] = l;
        top = l > top ? l : top;
        vl_status st = vl_hnsw_reserve_upper(h, r, l, err);
        if (st != VL_OK)
            return st;
    }
    c->p += h->count;
    if (h->count == 0 ? h->entry != 0 || h->max_level != 0
                      : h->entry >= h->count || h->max_level != top || h->levels[h->entry] != top)
        return vl_fail(err, VL_ERR_CORRUPT, "hnsw index: entry %u on level %u, top level is %u",
                       h->entry, h->max_level, top);
    return VL_OK;
}

/* An array of the walk's, as hnsw.c allocates them (free() releases it):
 * from 2 MiB on, on a 2 MiB boundary and advised as huge pages. */
static void *alloc_walk_array(size_t bytes)
{
    void *p = NULL;
    if (bytes < HUGE_PAGE)
        return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (posix_memalign(&p, HUGE_PAGE, bytes) != 0)
        return NULL;
    return p;
}

/* Version 2's codes section at c (zero padding to the 64-byte boundary,
 * codes, scales): copied into the index, scales checked finite and >= 0. */
static vl_status load_codes(vl_hnsw *h, const uint8_t *body, cursor *c, vl_error *err)
{
    size_t at = (size_t)(c->p - body), start = align_code(at);
    size_t want = codes_bytes(VL_HNSW_QUANT_SQ8, h->metric, h->count, h->dim);
    if ((size_t)(c->end - body) < start || (size_t)(c->end - body) - start != want)
        return vl_fail(err, VL_ERR_CORRUPT,
                       "hnsw index: %zu bytes after the lists, the codes take %zu from byte %zu",
                       (size_t)(c->end - c->p), want, start);
    for (size_t i = at; i < start; i++)
        if (body[i] != 0)
            return vl_fail(err, VL_ERR_CORRUPT, "hnsw index: nonzero padding at byte %zu", i);
    size_t cap = h->cap;
    h->codes = alloc_walk_array(cap * h->dim);
    if (h->metric != VL_METRIC_L2)
        h->sq_scale = malloc(cap * sizeof(float));
    if (!h->codes || (h->metric != VL_METRIC_L2 && !h->sq_scale))
        return vl_fail(err, VL_ERR_NOMEM, "hnsw index: out of memory for %u SQ8 codes", h->count);
    const uint8_t *p = body + start;
    if (h->count)
        memcpy(h->codes, p, (size_t)h->count * h->dim);
    p += (size_t)h->count * h->dim;
    for (uint32_t r = 0; h->sq_scale && r < h->count; r++, p += 4) {
        float s = vl_le_get_f32(p);
        if (!isfinite(s) || !(s >= 0))
            return vl_fail(err, VL_ERR_CORRUPT, "hnsw index: row %u has SQ8 scale %g", r, s);
        h->sq_scale[r] = s;
    }
    c->p = c->end;
    if (cap * h->dim >= HUGE_PAGE)
        madvise(h->codes, cap * h->dim, MADV_HUGEPAGE); /* filled: khugepaged may collapse it */
    return VL_OK;
}

/* Whether row r's code decodes to v exactly under the L2 map (hnsw.c's
 * sq_exact, see code_is_exact there). */
static int code_exact(const vl_hnsw *h, uint32_t r, const float *v)
{
    const uint8_t *code = h->codes + (size_t)r * h->dim;
    for (uint32_t i = 0; i < h->dim; i++)
        if (h->sq_lo + h->sq_step * (float)code[i] != v[i])
            return 0;
    return 1;
}

/* One pass over the vectors: their CRC-32C against the header's, and each
 * row stored (the copy, or cosine's inverse norm over a source); with
 * loaded L2 codes also whether every one is exact. */
static vl_status take_vectors(vl_hnsw *h, const float *vectors, int coded, vl_error *err)
{
    uint32_t crc = 0;
    int exact = coded && h->metric == VL_METRIC_L2;
    for (uint32_t r = 0; r < h->count; r++) {
        const float *v = vectors + (size_t)r * h->dim;
        crc = vl_crc32c(crc, v, (size_t)h->dim * sizeof(float));
        vl_hnsw_store_vector(h, r, v);
        exact = exact && code_exact(h, r, v);
    }
    if (crc != h->vec_crc)
        return vl_fail(err, VL_ERR_CORRUPT,
                       "hnsw index: built from other vectors (CRC %08x, segment's %08x)",
                       h->vec_crc, crc);
    h->sq_exact = exact;
    return VL_OK;
}

static vl_status load(const uint8_t *buf, size_t len, const float *vectors,
                      const vl_hnsw_vectors *src, uint32_t count, uint32_t dim, vl_hnsw **out,
                      vl_error *err)
{
    *out = NULL;
    header hd = {0};
    vl_status st = load_header(buf, len, count, dim, &hd, err);
    if (st != VL_OK)
        return st;
    row_array rows = {vectors, dim};
    /* Over a source from the start when the codes are stored; a version 1
     * body's codes are encoded from the copy (as its build did, so they
     * come out byte for byte the same), which is then dropped. */
    int over = src && hd.quant != VL_HNSW_QUANT_NONE && hd.version >= 2;
    int drop = src && hd.quant != VL_HNSW_QUANT_NONE && !over;
    vl_hnsw *h;
    if ((st = create(&hd, count, dim, over ? &rows : NULL, &h, err)) != VL_OK)
        return st;
    cursor c = {buf + HNSW_HEADER, buf + len - 4};
    size_t lbytes = (size_t)h->cap * vl_hnsw_stride0(h) * sizeof(uint32_t);
    if (lbytes >= HUGE_PAGE)
        madvise(h->links0, lbytes, MADV_NOHUGEPAGE); /* until filled */
    st = load_levels(h, &c, err);
    for (uint32_t r = 0; st == VL_OK && r < count; r++)
        if (!take_list(&c, h, r, 0, vl_hnsw_list(h, r, 0), err))
            st = VL_ERR_CORRUPT;
    for (uint32_t r = 0; st == VL_OK && r < count; r++)
        for (uint32_t lc = 1; st == VL_OK && lc <= h->levels[r]; lc++)
            if (!take_list(&c, h, r, lc, vl_hnsw_list(h, r, lc), err))
                st = VL_ERR_CORRUPT;
    if (lbytes >= HUGE_PAGE)
        madvise(h->links0, lbytes, MADV_HUGEPAGE);
    int coded = hd.version >= 2 && hd.quant != VL_HNSW_QUANT_NONE;
    if (st == VL_OK && coded) {
        h->sq_lo = hd.lo;
        h->sq_step = hd.step;
        st = load_codes(h, buf, &c, err);
    }
    if (st == VL_OK && c.p != c.end)
        st = vl_fail(err, VL_ERR_CORRUPT, "hnsw index: %zu bytes left after the last list",
                     (size_t)(c.end - c.p));
    if (st == VL_OK)
        st = take_vectors(h, vectors, coded, err);
    if (st == VL_OK && coded)
        h->quant = (vl_hnsw_quant)hd.quant;
    else if (st == VL_OK && hd.quant != VL_HNSW_QUANT_NONE) /* version 1 */
        st = vl_hnsw_quantise(h, (vl_hnsw_quant)hd.quant, hd.lo, hd.step, err);
    if (st == VL_OK && drop)
        st = vl_hnsw_set_vector_source(h, &(vl_hnsw_vectors){array_row, &rows}, err);
    if (st != VL_OK) {
        vl_hnsw_free(h);
        return st;
    }
    if (over || drop)
        h->src = *src;
    *out = h;
    return VL_OK;
}

vl_status vl_hnsw_load(const uint8_t *buf, size_t len, const float *vectors, uint32_t count,
                       uint32_t dim, vl_hnsw **out, vl_error *err)
{
    return load(buf, len, vectors, NULL, count, dim, out, err);
}

vl_status vl_hnsw_load_over(const uint8_t *buf, size_t len, const float *vectors,
                            const vl_hnsw_vectors *src, uint32_t count, uint32_t dim, vl_hnsw **out,
                            vl_error *err)
{
    if (!src || !src->vector)
        return vl_fail(err, VL_ERR_ARG, "hnsw load: a vector source needs a vector function");
    return load(buf, len, vectors, src, count, dim, out, err);
}

int vl_hnsw_body_outdated(const uint8_t *buf, size_t len)
{
    return len >= HNSW_HEADER && vl_le_get32(buf + 8) < HNSW_VERSION;
}
