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
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/index/hnsw.h"
#include "core/index/hnsw_internal.h"
#include "storage/crc32c.h"
#include "util/error.h"

#define HNSW_MAGIC "VLHNSWIX"
#define HNSW_VERSION 1u
#define HNSW_HEADER 88u

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_f32(uint8_t *p, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    put_u32(p, v);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static float get_f32(const uint8_t *p)
{
    uint32_t v = get_u32(p);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

static size_t body_size(const vl_hnsw *h)
{
    size_t n = HNSW_HEADER + h->count + 4;
    for (uint32_t r = 0; r < h->count; r++)
        for (uint32_t lc = 0; lc <= h->levels[r]; lc++)
            n += 4 * (1 + (size_t)vl_hnsw_list(h, r, lc)[0]);
    return n;
}

static uint8_t *put_list(uint8_t *p, const uint32_t *list)
{
    for (uint32_t i = 0; i <= list[0]; i++, p += 4)
        put_u32(p, list[i]);
    return p;
}

vl_status vl_hnsw_save(const vl_hnsw *h, uint8_t **buf, size_t *len, vl_error *err)
{
    size_t n = body_size(h);
    uint8_t *b = malloc(n);
    if (!b)
        return vl_fail(err, VL_ERR_NOMEM, "hnsw save: out of memory for %zu bytes", n);
    memcpy(b, HNSW_MAGIC, 8);
    put_u32(b + 8, HNSW_VERSION);
    put_u32(b + 12, h->dim);
    put_u32(b + 16, (uint32_t)h->metric);
    put_u32(b + 20, h->m);
    put_u32(b + 24, h->m0);
    put_u32(b + 28, h->ef_construction);
    put_u64(b + 32, h->seed);
    put_u64(b + 40, h->rng);
    put_u32(b + 48, h->count);
    put_u32(b + 52, h->count ? h->entry : 0);
    put_u32(b + 56, h->count ? h->max_level : 0);
    put_u32(b + 60, h->vec_crc);
    put_u64(b + 64, n);
    put_u32(b + 72, (uint32_t)h->quant);
    put_f32(b + 76, h->quant ? h->sq_lo : 0);
    put_f32(b + 80, h->quant ? h->sq_step : 0);
    put_u32(b + 84, 0);
    uint8_t *p = b + HNSW_HEADER;
    if (h->count)
        memcpy(p, h->levels, h->count);
    p += h->count;
    for (uint32_t r = 0; r < h->count; r++)
        p = put_list(p, vl_hnsw_list(h, r, 0));
    for (uint32_t r = 0; r < h->count; r++)
        for (uint32_t lc = 1; lc <= h->levels[r]; lc++)
            p = put_list(p, vl_hnsw_list(h, r, lc));
    put_u32(p, vl_crc32c(0, b, n - 4));
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
    uint32_t n = get_u32(c->p);
    c->p += 4;
    if (n > max || (size_t)(c->end - c->p) < 4 * (size_t)n) {
        vl_fail(err, VL_ERR_CORRUPT, "hnsw index: row %u layer %u has %u links (at most %u fit)", r,
                lc, n, max);
        return 0;
    }
    dst[0] = n;
    for (uint32_t i = 0; i < n; i++, c->p += 4) {
        uint32_t id = get_u32(c->p);
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

/* The fixed header: checks it and creates the empty index it describes. */
static vl_status load_header(const uint8_t *b, size_t len, uint32_t count, uint32_t dim,
                             vl_hnsw **out, vl_error *err)
{
    if (len < HNSW_HEADER + 4)
        return vl_fail(err, VL_ERR_CORRUPT, "hnsw index: truncated (%zu bytes, header is %u)", len,
                       HNSW_HEADER + 4);
    if (memcmp(b, HNSW_MAGIC, 8) != 0)
        return vl_fail(err, VL_ERR_CORRUPT, "hnsw index: bad magic (not an HNSW index file)");
    uint64_t total = get_u64(b + 64);
    if (total != len)
        return vl_fail(err, VL_ERR_CORRUPT, "hnsw index: %zu bytes, header says %llu (truncated?)",
                       len, (unsigned long long)total);
    uint32_t stored = get_u32(b + len - 4), crc = vl_crc32c(0, b, len - 4);
    if (stored != crc)
        return vl_fail(err, VL_ERR_CORRUPT,
                       "hnsw index: checksum mismatch (stored %08x, computed %08x)", stored, crc);
    uint32_t version = get_u32(b + 8);
    if (version != HNSW_VERSION)
        return vl_fail(err, VL_ERR_CORRUPT, "hnsw index: format version %u, this build reads %u",
                       version, HNSW_VERSION);
    uint32_t fdim = get_u32(b + 12), metric = get_u32(b + 16), m = get_u32(b + 20);
    uint32_t m0 = get_u32(b + 24), efc = get_u32(b + 28), fcount = get_u32(b + 48);
    if (fdim != dim || fcount != count)
        return vl_fail(err, VL_ERR_CORRUPT,
                       "hnsw index: built for %u rows of %u dimensions, segment has %u of %u",
                       fcount, fdim, count, dim);
    if (m < 2 || m > VL_HNSW_MAX_M || m0 != 2 * m || efc == 0 || get_u32(b + 84) != 0)
        return vl_fail(err, VL_ERR_CORRUPT, "hnsw index: bad parameters (M %u, M0 %u, efc %u)", m,
                       m0, efc);
    uint32_t quant = get_u32(b + 72);
    float lo = get_f32(b + 76), step = get_f32(b + 80);
    if (quant > VL_HNSW_QUANT_SQ8 || !isfinite(lo) || !isfinite(step) ||
        (quant ? !(step > 0) : lo != 0 || step != 0))
        return vl_fail(err, VL_ERR_CORRUPT, "hnsw index: bad quantiser %u (lo %g, step %g)", quant,
                       lo, step);
    if (metric > VL_METRIC_IP)
        return vl_fail(err, VL_ERR_CORRUPT, "hnsw index: unknown metric %u", metric);
    vl_status st = vl_hnsw_alloc(dim, (vl_metric)metric, m, efc, get_u64(b + 32), count, out, err);
    if (st != VL_OK)
        return st;
    (*out)->count = count;
    (*out)->rng = get_u64(b + 40);
    (*out)->entry = get_u32(b + 52);
    (*out)->max_level = get_u32(b + 56);
    (*out)->vec_crc = get_u32(b + 60);
    (*out)->quant = (vl_hnsw_quant)quant;
    (*out)->sq_lo = lo;
    (*out)->sq_step = step;
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

vl_status vl_hnsw_load(const uint8_t *buf, size_t len, const float *vectors, uint32_t count,
                       uint32_t dim, vl_hnsw **out, vl_error *err)
{
    *out = NULL;
    vl_hnsw *h;
    vl_status st = load_header(buf, len, count, dim, &h, err);
    if (st != VL_OK)
        return st;
    cursor c = {buf + HNSW_HEADER, buf + len - 4};
    st = load_levels(h, &c, err);
    for (uint32_t r = 0; st == VL_OK && r < count; r++)
        if (!take_list(&c, h, r, 0, vl_hnsw_list(h, r, 0), err))
            st = VL_ERR_CORRUPT;
    for (uint32_t r = 0; st == VL_OK && r < count; r++)
        for (uint32_t lc = 1; st == VL_OK && lc <= h->levels[r]; lc++)
            if (!take_list(&c, h, r, lc, vl_hnsw_list(h, r, lc), err))
                st = VL_ERR_CORRUPT;
    if (st == VL_OK && c.p != c.end)
        st = vl_fail(err, VL_ERR_CORRUPT, "hnsw index: %zu bytes left after the last list",
                     (size_t)(c.end - c.p));
    uint32_t crc = 0;
    for (uint32_t r = 0; st == VL_OK && r < count; r++) {
        const float *v = vectors + (size_t)r * dim;
        crc = vl_crc32c(crc, v, (size_t)dim * sizeof(float));
        vl_hnsw_store_vector(h, r, v);
    }
    if (st == VL_OK && crc != h->vec_crc)
        st = vl_fail(err, VL_ERR_CORRUPT,
                     "hnsw index: built from other vectors (CRC %08x, segment's %08x)", h->vec_crc,
                     crc);
    if (st == VL_OK && h->quant != VL_HNSW_QUANT_NONE)
        st = vl_hnsw_quantise(h, h->quant, h->sq_lo, h->sq_step, err);
    if (st != VL_OK) {
        vl_hnsw_free(h);
        return st;
    }
    *out = h;
    return VL_OK;
}
