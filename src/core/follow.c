/*
 * follow.c - a read-only engine keeping up with the writer's store.
 *
 * Decisions:
 *  1. Listing is the truth (docs/lake.md, Reading a version): a run lists
 *     the descriptors and each collection's manifests and loads the newest
 *     version of every collection whose newest is above the one served.
 *     No hint object, nothing written: a follower is invisible to the
 *     writer and to other followers.
 *  2. A newer version is loaded whole into a new row store generation
 *     (through the object cache, so a segment is downloaded once), off the
 *     owner thread; end swaps it in.  Snapshots pin their generation by
 *     reference, so searches in flight finish on what they started with.
 *  3. A version that fails to load (typically: the writer's GC removed a
 *     segment of it between our list and our read, because several
 *     versions committed meanwhile) leaves the collection as it was; the
 *     error is reported and the next run tries the then newest version.
 *  4. Collections are only ever added: the writer never drops one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine_internal.h"
#include "storage/descriptor.h"
#include "util/alloc.h"
#include "util/error.h"

typedef struct {
    char name[VL_MAX_COLLECTION_NAME + 1];
    vl_metric metric;
    vl_index_params index; /* a new collection's, from its descriptor */
    uint64_t served; /* version the engine served at begin */
    int loaded;      /* lake and rows hold a newer version */
    uint64_t index_loads;
    vl_lake lake;
    vl_rowstore *rows;
} follow_coll;

struct vl_follow {
    vl_objstore *store;
    vl_index_params default_index; /* for a descriptor from before indexes */
    follow_coll *colls;
    size_t n, cap;
    vl_status st; /* the first failure of the run */
    vl_error err;
};

static follow_coll *add_coll(vl_follow *f, const char *name, vl_metric metric, uint64_t served)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 4;
        f->colls = vl_realloc(f->colls, f->cap * sizeof *f->colls);
    }
    follow_coll *c = &f->colls[f->n++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->metric = metric;
    c->served = served;
    return c;
}

vl_follow *vl_follow_begin(vl_engine *e)
{
    vl_follow *f = vl_calloc(1, sizeof *f);
    f->store = e->store;
    f->default_index = e->opt.index;
    for (size_t i = 0; i < e->ncolls; i++)
        add_coll(f, e->colls[i].name, e->colls[i].metric, e->colls[i].lake.head.version);
    return f;
}

static void fail(vl_follow *f, vl_status st, const vl_error *err)
{
    if (f->st == VL_OK) {
        f->st = st;
        f->err = *err;
    }
}

static void add_new_collections(vl_follow *f)
{
    vl_descriptor *descs = NULL;
    size_t n = 0;
    vl_error err;
    vl_status st = vl_descriptor_load_all(f->store, &descs, &n, &err);
    if (st != VL_OK)
        fail(f, st, &err);
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < f->n && strcmp(f->colls[k].name, descs[i].name) != 0)
            k++;
        if (k == f->n)
            add_coll(f, descs[i].name, descs[i].metric, 0)->index =
                descs[i].has_index ? descs[i].index : f->default_index;
    }
    free(descs);
}

static void load_newer(vl_follow *f, follow_coll *c)
{
    uint64_t *vs = NULL;
    size_t n = 0;
    vl_error err;
    vl_status st = vl_manifest_versions(f->store, c->name, &vs, &n, &err);
    if (st == VL_OK && n && vs[n - 1] > c->served) {
        st = vl_lake_open_version(f->store, c->name, c->metric, vs[n - 1], &c->lake, &c->rows,
                                  &c->index_loads, &err);
        if (st == VL_OK) {
            vl_lake_retain_listed(f->store, &c->lake, vs, n);
            c->lake.top_version = vs[n - 1];
            c->loaded = 1;
        }
    }
    if (st != VL_OK)
        fail(f, st, &err);
    free(vs);
}

void vl_follow_run(vl_follow *f)
{
    add_new_collections(f);
    for (size_t i = 0; i < f->n; i++)
        load_newer(f, &f->colls[i]);
}

static void swap_in(vl_engine *e, follow_coll *fc)
{
    vl_collection *c = vl_engine_find(e, fc->name);
    if (!c)
        c = vl_engine_add_collection(e, fc->name, fc->metric, &fc->index);
    if (!fc->loaded)
        return;
    vl_lake_free(&c->lake);
    c->lake = fc->lake;
    vl_rowstore_unref(c->rows);
    c->rows = fc->rows;
    fc->loaded = 0;
    if (e->applied_lsn < c->lake.head.wal_lsn) { /* the scratch WAL's LSNs follow, so no
                                                     * reply waits for a sync that never comes */
        e->applied_lsn = c->lake.head.wal_lsn;
        vl_wal_bump_lsn(e->wal, e->applied_lsn, NULL);
    }
    vl_engine_note_save_time(e, &c->lake.head);
    e->index_loads += fc->index_loads;
    vl_lake_publish_indexes(c);
}

vl_status vl_follow_end(vl_engine *e, vl_follow *f, int *changed, vl_error *err)
{
    *changed = 0;
    for (size_t i = 0; i < f->n; i++) {
        *changed |= f->colls[i].loaded || !vl_engine_find(e, f->colls[i].name);
        swap_in(e, &f->colls[i]);
    }
    vl_status st = f->st;
    if (st != VL_OK && err)
        *err = f->err;
    free(f->colls);
    free(f);
    return st;
}
