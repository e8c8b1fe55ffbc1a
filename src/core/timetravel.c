/*
 * timetravel.c - reading an older retained version (VERSION n).
 *
 * A version is read from its own files (manifest, segments minus deletion
 * files, and the index files it lists) into a private, immutable row store
 * with its own index set, so the answer is exactly that version whatever
 * happened since, searched with that version's indexes.  The last version read is cached per
 * collection: repeated queries against one version load it once.  Expired
 * versions give VL_ERR_NOTFOUND with the retained range.  Loading reads
 * only the store, so the server runs it on a worker thread
 * (vl_version_load_*) and the event loop never waits for the files.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine_internal.h"
#include "core/index_set.h"
#include "util/alloc.h"
#include "util/error.h"

struct vl_version_cache {
    uint64_t version;
    vl_rowstore *rows;
    vl_index_set *iset; /* the version's own index files, or NULL */
};

void vl_version_cache_free(struct vl_version_cache *vc)
{
    if (!vc)
        return;
    vl_rowstore_unref(vc->rows);
    vl_index_set_unref(vc->iset);
    free(vc);
}

void vl_version_cache_memory(const struct vl_version_cache *vc, vl_rowstore_mem *m)
{
    if (!vc)
        return;
    vl_rowstore_mem v;
    vl_rowstore_memory(vc->rows, &v);
    m->vectors += v.vectors;
    m->keys += v.keys;
    m->index += v.index + sizeof *vc + vl_index_set_memory(vc->iset);
}

static int retained(const vl_lake *l, uint64_t version)
{
    for (size_t i = 0; i < l->nretained; i++)
        if (l->retained[i].version == version)
            return 1;
    return 0;
}

static vl_status not_retained(const vl_lake *l, uint64_t version, vl_error *err)
{
    if (l->nretained == 0)
        return vl_fail(err, VL_ERR_NOTFOUND,
                       "version %" PRIu64 " does not exist (no version "
                       "committed yet; SAVE commits one)",
                       version);
    return vl_fail(err, VL_ERR_NOTFOUND,
                   "version %" PRIu64 " is not retained (retained versions: %" PRIu64 "..%" PRIu64
                   ")",
                   version, l->retained[0].version, l->retained[l->nretained - 1].version);
}

struct vl_version_load {
    vl_objstore *store;
    char coll[VL_MAX_COLLECTION_NAME + 1];
    uint64_t version;
    vl_rowstore *rows;
    vl_index_set *iset;
    uint64_t loads;
    vl_status st;
    vl_error err;
};

vl_status vl_version_load_begin(vl_engine *e, const char *coll, uint64_t version,
                                vl_version_load **out, vl_error *err)
{
    vl_collection *c = vl_engine_find(e, coll);
    *out = NULL;
    if (!c)
        return vl_fail(err, VL_ERR_NOTFOUND,
                       "version %" PRIu64 " does not exist (no version "
                       "committed yet; SAVE commits one)",
                       version);
    if (!retained(&c->lake, version))
        return not_retained(&c->lake, version, err);
    if (c->cache && c->cache->version == version)
        return VL_OK;
    vl_version_load *l = vl_calloc(1, sizeof *l);
    e->version_loads++; /* pins the version's files until vl_version_load_end */
    l->store = e->store;
    snprintf(l->coll, sizeof l->coll, "%s", coll);
    l->version = version;
    *out = l;
    return VL_OK;
}

void vl_version_load_run(vl_version_load *l)
{
    vl_manifest m;
    l->st = vl_manifest_load(l->store, l->coll, l->version, &m, &l->err);
    if (l->st != VL_OK)
        return;
    vl_version_indexes vi;
    l->st = vl_lake_build_rows(l->store, &m, &l->rows, &vi, &l->err);
    vl_manifest_free(&m);
    if (l->st != VL_OK)
        return;
    l->iset = vl_index_set_build(l->rows, atomic_load(&l->rows->nrows), vi.ids, vi.ixs, vi.n, NULL,
                                 0, UINT64_MAX);
    l->loads = vi.loads;
    vl_version_indexes_free(&vi);
}

vl_status vl_version_load_end(vl_engine *e, vl_version_load *l, vl_error *err)
{
    vl_status st = l->st;
    e->version_loads--;
    e->index_loads += l->loads;
    vl_collection *c = vl_engine_find(e, l->coll);
    if (st == VL_OK && c) {
        vl_version_cache_free(c->cache);
        c->cache = vl_calloc(1, sizeof *c->cache);
        c->cache->version = l->version;
        c->cache->rows = l->rows;
        c->cache->iset = l->iset;
        l->rows = NULL;
        l->iset = NULL;
    } else if (err) {
        *err = l->err;
    }
    vl_rowstore_unref(l->rows);
    vl_index_set_unref(l->iset);
    free(l);
    return st;
}

static vl_status load_cached(vl_engine *e, const char *coll, uint64_t version, vl_error *err)
{
    vl_version_load *l;
    vl_status st = vl_version_load_begin(e, coll, version, &l, err);
    if (st != VL_OK || !l)
        return st;
    vl_version_load_run(l);
    return vl_version_load_end(e, l, err);
}

vl_status vl_snapshot_open_version(vl_engine *e, const char *coll, uint64_t version,
                                   vl_snapshot **out, vl_error *err)
{
    *out = NULL;
    vl_status st = load_cached(e, coll, version, err);
    if (st != VL_OK)
        return st;
    vl_collection *c = vl_engine_find(e, coll);
    vl_snapshot *s = vl_calloc(1, sizeof *s);
    vl_rowstore_ref(c->cache->rows);
    s->rows = c->cache->rows;
    s->nrows = atomic_load(&s->rows->nrows);
    s->lsn = UINT64_MAX; /* immutable store: everything in it is visible */
    s->count = s->rows->live;
    s->dim = s->rows->dim;
    s->metric = c->metric;
    if (c->cache->iset) {
        vl_index_set_ref(c->cache->iset);
        s->iset = c->cache->iset;
    }
    *out = s;
    return VL_OK;
}

vl_status vl_snapshot_get(const vl_snapshot *s, const void *key, size_t keylen, float *out,
                          uint32_t cap, uint32_t *dim)
{
    if (!s->rows)
        return VL_ERR_NOTFOUND;
    uint32_t row = vl_rowstore_find(s->rows, key, keylen);
    if (row == VL_ROW_NONE || row >= s->nrows)
        return VL_ERR_NOTFOUND;
    uint64_t del = vl_rowstore_del_lsn(s->rows, row);
    if (del && del <= s->lsn)
        return VL_ERR_NOTFOUND;
    *dim = s->dim;
    if (cap < s->dim)
        return VL_ERR_LIMIT;
    vl_chunk_dir *dir = atomic_load_explicit(&s->rows->dir, memory_order_acquire);
    memcpy(out, vl_rowstore_chunk(dir, row)->vecs + (size_t)(row % VL_CHUNK_ROWS) * s->dim,
           (size_t)s->dim * sizeof(float));
    return VL_OK;
}
