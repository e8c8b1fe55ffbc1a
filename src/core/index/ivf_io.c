/*
 * ivf_io.c - the IVF index file: serialise to one byte buffer and load it
 * back with full validation.  The layout is specified in
 * docs/storage-format.md ("IVF index file"); this file is its only writer
 * and reader.
 *
 * Decisions:
 *  - Little-endian fixed-width fields (le_bytes.h, shared with hnsw_io.c);
 *    the sections of floats are copied whole, so the build refuses
 *    big-endian hosts rather than silently writing another format.
 *  - The layout is canonical: every section's size follows from the header,
 *    and every list's offset from the previous list, so a reader checks
 *    equalities, not plausibility, and a writer has one way to write.
 *  - One CRC-32C over everything before it is checked first (any flipped
 *    byte or truncation fails there or at the size check); the structural
 *    checks after it still run, so a well-checksummed but inconsistent
 *    buffer (a writer bug, a crafted file) cannot make search read out of
 *    bounds: offsets inside the body, lengths matching counts, every row id
 *    below the row count and present once, all floats finite.
 *  - The RaBitQ rotated centroids are recomputed on load, not stored: they
 *    follow from the rotation and the centroids.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/index/ivf_internal.h"
#include "core/index/le_bytes.h"
#include "storage/crc32c.h"
#include "util/alloc.h"
#include "util/error.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the IVF index file is little-endian; this host is not"
#endif

#define MAGIC "VLIVFIDX"
#define VERSION 2u
#define HEADER 64u
#define DIR_ENTRY 24u
#define MAX_SQ8_RERANK 1024u

typedef struct {
    uint64_t cent, sq, rot, dir, body, end; /* section offsets; end = CRC offset */
} layout;

static uint64_t align(uint64_t x)
{
    return (x + VL_IVF_ALIGN - 1) & ~(uint64_t)(VL_IVF_ALIGN - 1);
}

/* Section offsets for the header's fields (all < 2^32 factors, so no u64
 * overflow: nlist, dim, rdim < 2^32 and products of two fit). */
static layout layout_of(uint32_t dim, uint32_t nlist, uint32_t quant, uint32_t rdim,
                        uint64_t body_len)
{
    layout L = {0, 0, 0, 0, 0, 0};
    L.cent = HEADER;
    L.sq = L.cent + (uint64_t)nlist * dim * 4;
    L.rot = L.sq + (quant == VL_IVF_QUANT_SQ8 ? 2 * (uint64_t)dim * 4 : 0);
    L.dir = L.rot + (quant == VL_IVF_QUANT_RABITQ ? (uint64_t)rdim * 4 * 4 : 0);
    L.body = align(L.dir + (uint64_t)nlist * DIR_ENTRY);
    L.end = L.body + body_len;
    return L;
}

vl_status vl_ivf_serialize(const vl_ivf *ix, uint8_t **buf, size_t *len, vl_error *err)
{
    layout L = layout_of(ix->dim, ix->nlist, ix->quant, ix->rdim, ix->body_len);
    if (L.end + 4 > SIZE_MAX)
        return vl_fail(err, VL_ERR_LIMIT, "ivf serialise: %llu bytes",
                       (unsigned long long)L.end + 4);
    uint8_t *b = vl_calloc(1, (size_t)L.end + 4);
    memcpy(b, MAGIC, 8);
    vl_le_put32(b + 8, VERSION);
    vl_le_put32(b + 12, HEADER);
    vl_le_put32(b + 16, ix->dim);
    vl_le_put32(b + 20, (uint32_t)ix->metric);
    vl_le_put32(b + 24, (uint32_t)ix->quant);
    vl_le_put32(b + 28, ix->nlist);
    vl_le_put32(b + 32, ix->count);
    vl_le_put32(b + 36, ix->rdim);
    vl_le_put64(b + 40, ix->seed);
    vl_le_put64(b + 48, ix->body_len);
    memcpy(b + 56, &ix->reach, 4);
    vl_le_put32(b + 60, ix->sq8_rerank);
    memcpy(b + L.cent, ix->centroids, (size_t)ix->nlist * ix->dim * 4);
    if (ix->quant == VL_IVF_QUANT_SQ8) {
        memcpy(b + L.sq, ix->sq_lo, (size_t)ix->dim * 4);
        memcpy(b + L.sq + (size_t)ix->dim * 4, ix->sq_step, (size_t)ix->dim * 4);
    }
    if (ix->quant == VL_IVF_QUANT_RABITQ) {
        memcpy(b + L.rot, ix->rot, (size_t)ix->rdim * 3 * 4);
        memcpy(b + L.rot + (size_t)ix->rdim * 3 * 4, ix->rmu, (size_t)ix->rdim * 4);
    }
    for (uint32_t l = 0; l < ix->nlist; l++) {
        uint8_t *d = b + L.dir + (size_t)l * DIR_ENTRY;
        vl_le_put64(d, ix->lists[l].offset);
        vl_le_put64(d + 8, ix->lists[l].len);
        vl_le_put32(d + 16, ix->lists[l].count);
    }
    if (ix->body_len)
        memcpy(b + L.body, ix->body, ix->body_len);
    vl_le_put32(b + L.end, vl_crc32c(0, b, L.end));
    *buf = b;
    *len = (size_t)L.end + 4;
    return VL_OK;
}

#define CORRUPT(...) vl_fail(err, VL_ERR_CORRUPT, "ivf index: " __VA_ARGS__)

static int floats_ok(const uint8_t *p, uint64_t n, int positive)
{
    for (uint64_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, p + 4 * i, 4);
        if (!isfinite(v) || (positive && !(v > 0)))
            return 0;
    }
    return 1;
}

static vl_status check_header(const uint8_t *b, size_t len, layout *L, vl_error *err)
{
    if (len < HEADER + 4)
        return CORRUPT("truncated: %zu bytes, the header alone needs %u", len, HEADER + 4);
    if (memcmp(b, MAGIC, 8) != 0)
        return CORRUPT("bad magic (not an IVF index file)");
    if (vl_le_get32(b + 8) != VERSION)
        return CORRUPT("version %u, this build reads version %u", vl_le_get32(b + 8), VERSION);
    if (vl_le_get32(b + 12) != HEADER)
        return CORRUPT("header length not as written by version %u", VERSION);
    uint32_t dim = vl_le_get32(b + 16), metric = vl_le_get32(b + 20), quant = vl_le_get32(b + 24);
    uint32_t nlist = vl_le_get32(b + 28), rdim = vl_le_get32(b + 36);
    if (dim == 0 || dim > VL_MAX_DIM)
        return CORRUPT("dimension %u outside 1..%u", dim, VL_MAX_DIM);
    if (metric > VL_METRIC_IP || quant > VL_IVF_QUANT_RABITQ)
        return CORRUPT("unknown metric %u or quantiser %u", metric, quant);
    if (nlist == 0 || (uint64_t)nlist * DIR_ENTRY > len)
        return CORRUPT("list count %u does not fit in %zu bytes", nlist, len);
    if (rdim != (quant == VL_IVF_QUANT_RABITQ ? vl_ivf_rdim(dim) : 0))
        return CORRUPT("rotated dimension %u does not match dimension %u", rdim, dim);
    float reach;
    memcpy(&reach, b + 56, 4);
    if (!(reach > 0 && reach <= VL_IVF_REACH_ALL))
        return CORRUPT("probe reach %g not in (0, %g]", (double)reach, (double)VL_IVF_REACH_ALL);
    uint32_t depth = vl_le_get32(b + 60);
    if (quant == VL_IVF_QUANT_SQ8 ? depth == 0 || depth > MAX_SQ8_RERANK : depth != 0)
        return CORRUPT("sq8 re-rank depth %u for quantiser %u", depth, quant);
    uint64_t body_len = vl_le_get64(b + 48);
    if (body_len > len)
        return CORRUPT("body length %llu exceeds the %zu-byte buffer", (unsigned long long)body_len,
                       len);
    *L = layout_of(dim, nlist, quant, rdim, body_len);
    if (L->end + 4 != len)
        return CORRUPT("size %zu bytes, the header describes %llu (truncated or extended)", len,
                       (unsigned long long)L->end + 4);
    uint32_t want = vl_le_get32(b + L->end), got = vl_crc32c(0, b, L->end);
    if (want != got)
        return CORRUPT("checksum mismatch (stored %08x, computed %08x)", want, got);
    for (uint64_t i = L->dir + (uint64_t)nlist * DIR_ENTRY; i < L->body; i++)
        if (b[i] != 0)
            return CORRUPT("nonzero padding before the body at byte %llu", (unsigned long long)i);
    return VL_OK;
}

static vl_status check_params(const uint8_t *b, const layout *L, const vl_ivf *ix, vl_error *err)
{
    if (!floats_ok(b + L->cent, (uint64_t)ix->nlist * ix->dim, 0))
        return CORRUPT("non-finite centroid value");
    if (ix->quant == VL_IVF_QUANT_SQ8 &&
        (!floats_ok(b + L->sq, ix->dim, 0) || !floats_ok(b + L->sq + 4 * ix->dim, ix->dim, 1)))
        return CORRUPT("SQ8 range not finite or step not positive");
    if (ix->quant == VL_IVF_QUANT_RABITQ) {
        for (uint64_t i = 0; i < 3 * (uint64_t)ix->rdim; i++) {
            float v;
            memcpy(&v, b + L->rot + 4 * i, 4);
            if (v != 1.0f && v != -1.0f)
                return CORRUPT("rotation sign %llu is not +-1", (unsigned long long)i);
        }
        if (!floats_ok(b + L->rot + 12 * (uint64_t)ix->rdim, ix->rdim, 0))
            return CORRUPT("non-finite rotated mean");
    }
    return VL_OK;
}

static vl_status check_lists(const uint8_t *b, const layout *L, vl_ivf *ix, vl_error *err)
{
    uint64_t off = 0, rows = 0;
    for (uint32_t l = 0; l < ix->nlist; l++) {
        const uint8_t *d = b + L->dir + (size_t)l * DIR_ENTRY;
        vl_ivf_list_info li = {vl_le_get64(d), vl_le_get64(d + 8), vl_le_get32(d + 16)};
        if (vl_le_get32(d + 20) != 0)
            return CORRUPT("list %u: reserved directory field set", l);
        if (li.offset != off)
            return CORRUPT("list %u: offset %llu, expected %llu", l, (unsigned long long)li.offset,
                           (unsigned long long)off);
        if (li.count > ix->count || li.len != vl_ivf_list_bytes(ix, li.count))
            return CORRUPT("list %u: %u rows cannot take %llu bytes", l, li.count,
                           (unsigned long long)li.len);
        if (li.len > ix->body_len - li.offset)
            return CORRUPT("list %u: [%llu, %llu) beyond the %llu-byte body", l,
                           (unsigned long long)li.offset, (unsigned long long)(li.offset + li.len),
                           (unsigned long long)ix->body_len);
        ix->lists[l] = li;
        rows += li.count;
        ix->max_count = li.count > ix->max_count ? li.count : ix->max_count;
        off = align(li.offset + li.len);
    }
    if (off != ix->body_len)
        return CORRUPT("body is %llu bytes, its lists end at %llu",
                       (unsigned long long)ix->body_len, (unsigned long long)off);
    if (rows != ix->count)
        return CORRUPT("lists hold %llu rows, the header says %u", (unsigned long long)rows,
                       ix->count);
    uint64_t *seen = vl_calloc((ix->count + 63) / 64 + 1, 8);
    vl_status st = VL_OK;
    uint32_t nf = vl_ivf_factors(ix);
    for (uint32_t l = 0; l < ix->nlist && st == VL_OK; l++) {
        const uint8_t *p = b + L->body + ix->lists[l].offset;
        uint32_t c = ix->lists[l].count;
        for (uint32_t i = 0; i < c; i++) {
            uint32_t r = vl_le_get32(p + 4 * (size_t)i);
            if (r >= ix->count || (seen[r / 64] >> (r % 64)) & 1) {
                st = CORRUPT("list %u: row id %u out of range or repeated", l, r);
                break;
            }
            seen[r / 64] |= 1ull << (r % 64);
        }
        uint64_t fac = ix->lists[l].len - (uint64_t)c * 4 * nf;
        if (st == VL_OK && !floats_ok(p + fac, (uint64_t)c * nf, 0))
            st = CORRUPT("list %u: non-finite code factor", l);
    }
    free(seen);
    return st;
}

vl_status vl_ivf_load(const uint8_t *b, size_t len, vl_ivf **out, vl_error *err)
{
    layout L = {0, 0, 0, 0, 0, 0};
    vl_status st = check_header(b, len, &L, err);
    if (st != VL_OK)
        return st;
    vl_ivf *ix = vl_calloc(1, sizeof *ix);
    ix->dim = vl_le_get32(b + 16);
    ix->metric = (vl_metric)vl_le_get32(b + 20);
    ix->quant = (vl_ivf_quant)vl_le_get32(b + 24);
    ix->nlist = vl_le_get32(b + 28);
    ix->count = vl_le_get32(b + 32);
    ix->rdim = vl_le_get32(b + 36);
    ix->nsub = ix->rdim / 4;
    ix->seed = vl_le_get64(b + 40);
    ix->body_len = vl_le_get64(b + 48);
    memcpy(&ix->reach, b + 56, 4);
    ix->sq8_rerank = vl_le_get32(b + 60);
    ix->lists = vl_calloc(ix->nlist, sizeof *ix->lists);
    if ((st = check_params(b, &L, ix, err)) != VL_OK ||
        (st = check_lists(b, &L, ix, err)) != VL_OK) {
        vl_ivf_free(ix);
        return st;
    }
    ix->centroids = vl_malloc((size_t)ix->nlist * ix->dim * 4);
    memcpy(ix->centroids, b + L.cent, (size_t)ix->nlist * ix->dim * 4);
    if (ix->quant == VL_IVF_QUANT_SQ8) {
        ix->sq_lo = vl_malloc((size_t)ix->dim * 4);
        ix->sq_step = vl_malloc((size_t)ix->dim * 4);
        memcpy(ix->sq_lo, b + L.sq, (size_t)ix->dim * 4);
        memcpy(ix->sq_step, b + L.sq + (size_t)ix->dim * 4, (size_t)ix->dim * 4);
    }
    if (ix->quant == VL_IVF_QUANT_RABITQ) {
        ix->rot = vl_malloc((size_t)ix->rdim * 3 * 4);
        memcpy(ix->rot, b + L.rot, (size_t)ix->rdim * 3 * 4);
        ix->rmu = vl_malloc((size_t)ix->rdim * 4);
        memcpy(ix->rmu, b + L.rot + (size_t)ix->rdim * 3 * 4, (size_t)ix->rdim * 4);
        vl_ivf_rotate_centroids(ix);
    }
    ix->body = vl_aligned_alloc(ix->body_len ? ix->body_len : VL_IVF_ALIGN);
    if (ix->body_len)
        memcpy(ix->body, b + L.body, ix->body_len);
    *out = ix;
    return VL_OK;
}
