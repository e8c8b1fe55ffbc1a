/*
 * lake_load.c - opening a collection from the lake at start: the newest
 * manifest, its segments and deletion files, all verified against the
 * sizes and CRC-32C values the manifest records.
 *
 * Index files the manifest lists are read and verified beside their
 * segment (one read each, never rebuilt when intact); a damaged or missing
 * one only costs speed: it is logged, the segment is scanned exactly and
 * the background build makes it again (lake_index.c).
 *
 * Segments and index files are read with vl_obj_read: mapped from the page
 * cache where the store can (the local store), else fetched.  Measured at
 * 1M x 384 (bench/results/2026-12-02-startup.md): reading the 1.42 GB
 * segment into a fresh buffer cost a copy plus a page fault per 4 KiB of
 * memory that is freed again right after the decode.
 *
 * A damaged manifest, segment or deletion file stops the open with a
 * message naming the object: serving a version with rows silently missing
 * would be worse than not serving.  With open_previous_on_damage the
 * engine instead falls back to the newest older version that loads cleanly
 * and says so (vl_engine_stats.warning).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine_internal.h"
#include "storage/crc32c.h"
#include "storage/deletes.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/log.h"

/* Fetch name (mapped where the store can: a segment is then decoded from
 * the page cache, without a copy into fresh memory) and check it is
 * exactly the object the manifest recorded; vl_obj_release it. */
static vl_status fetch_verified(vl_objstore *s, const char *name, uint64_t bytes, uint32_t crc,
                                const void **data, size_t *len, int *mapped, vl_error *err)
{
    vl_status st = vl_obj_read(s, name, data, len, mapped, err);
    if (st == VL_ERR_NOTFOUND)
        return vl_fail(err, VL_ERR_CORRUPT, "%s: missing (the manifest references it)", name);
    if (st != VL_OK)
        return st;
    if (*len != bytes || vl_crc32c(0, *data, *len) != crc) {
        vl_obj_release(s, *data, *len, *mapped);
        *data = NULL;
        return vl_fail(err, VL_ERR_CORRUPT,
                       "%s: damaged (size or CRC-32C differs from the manifest's record)", name);
    }
    return VL_OK;
}

vl_status vl_lake_read_segment(vl_objstore *s, const vl_manifest_segment *g, uint32_t dim,
                               vl_segment *seg, uint32_t **deleted, uint64_t *ndeleted,
                               vl_error *err)
{
    const void *data;
    size_t len;
    int mapped;
    *deleted = NULL;
    *ndeleted = 0;
    vl_status st = fetch_verified(s, g->name, g->bytes, g->crc32c, &data, &len, &mapped, err);
    if (st != VL_OK)
        return st;
    vl_error perr;
    st = vl_parquet_read_segment(data, len, seg, &perr);
    vl_obj_release(s, data, len, mapped);
    if (st != VL_OK)
        return vl_fail(err, VL_ERR_CORRUPT, "%s: %s", g->name, perr.msg);
    if (seg->nrows != g->rows || (seg->nrows && seg->dim != dim)) {
        vl_segment_free(seg);
        return vl_fail(err, VL_ERR_CORRUPT,
                       "%s: holds %" PRIu64 " rows of dimension %u, manifest "
                       "says %" PRIu64 " of dimension %u",
                       g->name, seg->nrows, seg->dim, g->rows, dim);
    }
    if (!g->del_name[0])
        return VL_OK;
    st = fetch_verified(s, g->del_name, g->del_bytes, g->del_crc32c, &data, &len, &mapped, err);
    if (st == VL_OK) {
        st = vl_deletes_decode(data, len, g->rows, g->del_name, deleted, ndeleted, err);
        vl_obj_release(s, data, len, mapped);
    }
    if (st == VL_OK && *ndeleted != g->del_count)
        st = vl_fail(err, VL_ERR_CORRUPT, "%s: holds %" PRIu64 " rows, manifest says %" PRIu64,
                     g->del_name, *ndeleted, g->del_count);
    if (st != VL_OK) {
        free(*deleted);
        *deleted = NULL;
        vl_segment_free(seg);
    }
    return st;
}

/* Rows of seg not in deleted (ascending) go into rows, located at id. */
static void insert_live_rows(vl_rowstore *rows, const vl_segment *seg, const uint32_t *deleted,
                             uint64_t ndeleted, uint32_t id)
{
    uint64_t d = 0;
    for (uint64_t r = 0; r < seg->nrows; r++) {
        if (d < ndeleted && deleted[d] == r) {
            d++;
            continue;
        }
        vl_rowstore_put(rows, seg->key_data + seg->key_offs[r],
                        seg->key_offs[r + 1] - seg->key_offs[r], seg->vecs + r * seg->dim, seg->dim,
                        (uint64_t)seg->seqs[r], id, (uint32_t)r);
    }
}

/* The index file segment g lists, read while its vectors are at hand; a
 * damaged or missing one is logged and left out (the segment is scanned
 * exactly until the background build makes it again).  Returns 1 when one
 * was listed but could not be used. */
static int load_index(vl_objstore *store, const vl_manifest *m, const vl_manifest_segment *g,
                      const vl_segment *seg, vl_version_indexes *vi, size_t i)
{
    if (!g->idx.name[0])
        return 0;
    vl_error ierr;
    if (vl_lake_load_index(store, g, seg->vecs, m->dim, m->metric, &vi->ixs[i], &ierr) == VL_OK) {
        vi->loads++;
        return 0;
    }
    vl_log(VL_LOG_WARNING, "%s version %" PRIu64 ": index not used, segment scanned exactly: %s",
           m->collection, m->version, ierr.msg);
    return 1;
}

/* Load every segment of m into a fresh row store (and, if lake is given,
 * the lake bookkeeping, with the indexes in it; otherwise into vi). */
static vl_status load_version(vl_objstore *store, const vl_manifest *m, vl_rowstore *rows,
                              vl_lake *lake, vl_version_indexes *vi, vl_error *err)
{
    rows->dim = m->dim;
    vi->ixs = vl_calloc(m->nsegs ? m->nsegs : 1, sizeof *vi->ixs);
    vi->ids = vl_calloc(m->nsegs ? m->nsegs : 1, sizeof *vi->ids);
    for (size_t i = 0; i < m->nsegs; i++) {
        vl_segment seg;
        uint32_t *deleted;
        uint64_t ndeleted;
        vl_status st =
            vl_lake_read_segment(store, &m->segs[i], m->dim, &seg, &deleted, &ndeleted, err);
        if (st != VL_OK)
            return st;
        int damaged = load_index(store, m, &m->segs[i], &seg, vi, i);
        uint32_t id = (uint32_t)i; /* a private store: its segments by position */
        if (lake) {
            id = vl_lake_add_segment(lake, deleted, ndeleted);
            lake->segs[i].index = vi->ixs[i];
            lake->segs[i].index_damaged = damaged;
            lake->segs[i].index_outdated = vi->ixs[i] && vl_seg_index_outdated(vi->ixs[i]);
            vi->ixs[i] = NULL;
            lake->head.nsegs = i + 1;
        }
        vi->ids[i] = id;
        vi->n = i + 1;
        insert_live_rows(rows, &seg, deleted, ndeleted, id);
        if (!lake)
            free(deleted);
        vl_segment_free(&seg);
    }
    return VL_OK;
}

void vl_version_indexes_free(vl_version_indexes *vi)
{
    for (size_t i = 0; vi->ixs && i < vi->n; i++)
        vl_seg_index_unref(vi->ixs[i]);
    free(vi->ixs);
    free(vi->ids);
    memset(vi, 0, sizeof *vi);
}

vl_status vl_lake_build_rows(vl_objstore *store, const vl_manifest *m, vl_rowstore **out,
                             vl_version_indexes *vi, vl_error *err)
{
    vl_rowstore *rows = vl_rowstore_new(m->metric);
    memset(vi, 0, sizeof *vi);
    vl_status st = load_version(store, m, rows, NULL, vi, err);
    if (st != VL_OK) {
        vl_version_indexes_free(vi);
        vl_rowstore_unref(rows);
        return st;
    }
    *out = rows;
    return VL_OK;
}

vl_status vl_lake_open_version(vl_objstore *store, const char *coll, vl_metric metric, uint64_t v,
                               vl_lake *lake, vl_rowstore **rows, uint64_t *index_loads,
                               vl_error *err)
{
    vl_manifest m;
    vl_status st = vl_manifest_load(store, coll, v, &m, err);
    if (st != VL_OK)
        return st;
    vl_lake_init(lake, coll, metric);
    lake->head = m;
    lake->head.nsegs = 0; /* grows as segments load, so a failure frees only those */
    *rows = vl_rowstore_new(metric);
    vl_version_indexes vi = {0};
    st = load_version(store, &m, *rows, lake, &vi, err);
    *index_loads = vi.loads;
    vl_version_indexes_free(&vi);
    if (st == VL_OK && m.metric != metric)
        st = vl_fail(err, VL_ERR_CORRUPT,
                     "%s version %" PRIu64 ": metric %s differs from the "
                     "collection's %s",
                     coll, v, vl_metric_name(m.metric), vl_metric_name(metric));
    if (st != VL_OK) {
        vl_lake_free(lake);
        vl_rowstore_unref(*rows);
        *rows = NULL;
        return st;
    }
    lake->head.nsegs = m.nsegs;
    lake->last_change = m.wal_lsn;
    return VL_OK;
}

/* Try to open version v of c; on failure c is left as it was. */
static vl_status open_version(vl_engine *e, vl_collection *c, uint64_t v, vl_error *err)
{
    vl_lake lake;
    vl_rowstore *rows;
    uint64_t loads;
    vl_status st = vl_lake_open_version(e->store, c->name, c->metric, v, &lake, &rows, &loads, err);
    if (st != VL_OK)
        return st;
    e->index_loads += loads;
    vl_lake_free(&c->lake);
    c->lake = lake;
    vl_rowstore_unref(c->rows);
    c->rows = rows;
    return VL_OK;
}

void vl_lake_retain_listed(vl_objstore *store, vl_lake *l, const uint64_t *vs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        vl_manifest m;
        if (vs[i] > l->head.version)
            continue;
        if (vs[i] == l->head.version) {
            vl_lake_retain(l, &l->head);
        } else if (vl_manifest_load(store, l->head.collection, vs[i], &m, NULL) == VL_OK) {
            vl_lake_retain(l, &m);
            vl_manifest_free(&m);
        }
    }
}

vl_status vl_lake_load(vl_engine *e, vl_collection *c, vl_error *err)
{
    uint64_t *vs;
    size_t n;
    vl_status st = vl_manifest_versions(e->store, c->name, &vs, &n, err);
    if (st != VL_OK || n == 0) {
        free(vs);
        return st;
    }
    vl_error first;
    st = open_version(e, c, vs[n - 1], &first);
    for (size_t i = n - 1; st != VL_OK && e->opt.open_previous_on_damage && i > 0; i--) {
        st = open_version(e, c, vs[i - 1], err);
        if (st == VL_OK)
            snprintf(e->warning.msg, sizeof e->warning.msg,
                     "opened version %" PRIu64 " of '%s' because the newest is damaged: %.100s",
                     vs[i - 1], c->name, first.msg);
    }
    if (st != VL_OK && err)
        *err = first;
    if (st == VL_OK) {
        vl_lake_retain_listed(e->store, &c->lake, vs, n);
        c->lake.top_version = vs[n - 1];
    }
    free(vs);
    return st;
}
