/*
 * lake_gc.c - retention and garbage collection.
 *
 * After each commit: versions older than the newest retain_versions expire
 * (their manifests are deleted, oldest first); then every segment or
 * deletion or index file referenced by no retained manifest is deleted.  Files are
 * only deleted while no background job is in flight (a job's new files are
 * not referenced until it commits).  While an index build runs, the
 * segment it reads counts as referenced and no index file is deleted (the
 * one it writes is not referenced yet); files of the in-memory head count
 * as referenced.  At start the same
 * pass removes objects left by a crash between writing files and
 * committing.  While a time-travel read runs on a worker thread, GC
 * waits (vl_maintenance runs it afterwards): the files it reads stay.
 * Its listings also give the collection's stored bytes (INFO
 * bytes_on_disk), so asking for stats never sends a store request.
 *
 * With the WAL in the store another node may have taken over (fenced this
 * one) without this one having noticed yet; its new files are referenced
 * by versions this node never read, and deleting them would lose its
 * writes.  So before deleting anything, GC confirms this node is still the
 * writer (vl_wal_confirm_writer: one PUT), and never deletes a file
 * named for a version above the newest one this node knows: a node that
 * takes over after the confirmation loads every version committed before
 * it, so all its files carry higher numbers.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine_internal.h"
#include "util/alloc.h"

typedef struct {
    char **names;
    size_t n, cap;
} name_set;

static void add_name(name_set *s, const char *name)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 32;
        s->names = vl_realloc(s->names, s->cap * sizeof *s->names);
    }
    s->names[s->n++] = vl_strndup(name, strlen(name));
}

static int has_name(const name_set *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0)
            return 1;
    return 0;
}

static void free_names(name_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->names[i]);
    free(s->names);
}

static void expire_versions(vl_engine *e, vl_collection *c)
{
    vl_lake *l = &c->lake;
    size_t keep = e->opt.retain_versions ? e->opt.retain_versions : 1;
    size_t drop = l->nretained > keep ? l->nretained - keep : 0;
    for (size_t i = 0; i < drop; i++) {
        char name[VL_OBJECT_NAME_MAX];
        vl_manifest_object(name, sizeof name, c->name, l->retained[i].version);
        if (vl_obj_del(e->store, name, NULL) == VL_OK)
            e->gc_deleted++;
    }
    if (!drop)
        return;
    memmove(l->retained, l->retained + drop, (l->nretained - drop) * sizeof *l->retained);
    l->nretained -= drop;
}

/* Names referenced by the retained versions; 0 if one could not be read
 * (then nothing is deleted: better a leftover file than a lost one). */
static int referenced(vl_engine *e, vl_collection *c, name_set *refs)
{
    for (size_t i = 0; i < c->lake.nretained; i++) {
        vl_manifest m;
        if (vl_manifest_load(e->store, c->name, c->lake.retained[i].version, &m, NULL) != VL_OK)
            return 0;
        for (size_t k = 0; k < m.nsegs; k++) {
            add_name(refs, m.segs[k].name);
            if (m.segs[k].del_name[0])
                add_name(refs, m.segs[k].del_name);
            if (m.segs[k].idx.name[0])
                add_name(refs, m.segs[k].idx.name);
        }
        vl_manifest_free(&m);
    }
    for (size_t k = 0; k < c->lake.head.nsegs; k++) /* built, listed by the next commit */
        if (c->lake.head.segs[k].idx.name[0])
            add_name(refs, c->lake.head.segs[k].idx.name);
    return 1;
}

/* The version a segment, deletion or index file is named for: the
 * "-v<20 digits>" of a deletion file, else the 20 digits its base name
 * starts with (a segment's, or an index file's segment stem); 0 if none. */
static uint64_t named_version(const char *name)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *v = strstr(base, "-v"), *digits = v ? v + 2 : base;
    uint64_t n = 0;
    for (int i = 0; i < 20; i++) {
        if (digits[i] < '0' || digits[i] > '9')
            return 0;
        n = n * 10 + (uint64_t)(digits[i] - '0');
    }
    return n;
}

/* Delete the objects under prefix no retained version references (none
 * when keep_all, none named above version top); *kept grows by the bytes
 * of the others.  0 when the listing failed. */
static int delete_unreferenced(vl_engine *e, const char *prefix, const name_set *refs, int keep_all,
                               uint64_t top, uint64_t *kept)
{
    vl_objinfo *objs;
    size_t n;
    if (vl_obj_list(e->store, prefix, &objs, &n, NULL) != VL_OK)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (keep_all || has_name(refs, objs[i].name) || named_version(objs[i].name) > top ||
            vl_obj_del(e->store, objs[i].name, NULL) != VL_OK)
            *kept += objs[i].size;
        else
            e->gc_deleted++;
    }
    vl_objinfo_free(objs, n);
    return 1;
}

void vl_lake_gc(vl_engine *e, vl_collection *c)
{
    if (e->job || e->version_loads) {
        e->gc_pending = 1; /* new files not yet committed, or old ones being read */
        return;
    }
    vl_error why;
    vl_status st = vl_wal_confirm_writer(e->wal, &why);
    if (st != VL_OK) { /* fenced: nothing here is ours to delete; unknown: later */
        e->gc_pending = st != VL_ERR_CONFLICT;
        return;
    }
    /* A local directory is locked: no other writer makes files in it. */
    uint64_t top = vl_wal_in_store(e->wal) ? c->lake.top_version : UINT64_MAX;
    expire_versions(e, c);
    name_set refs = {0};
    if (referenced(e, c, &refs)) {
        char segs[VL_OBJECT_NAME_MAX], dels[VL_OBJECT_NAME_MAX], idxs[VL_OBJECT_NAME_MAX];
        snprintf(segs, sizeof segs, "tables/%s/segments/", c->name);
        snprintf(dels, sizeof dels, "tables/%s/deletes/", c->name);
        snprintf(idxs, sizeof idxs, "tables/%s/indexes/", c->name);
        uint64_t kept = 0;
        if (e->build) { /* it reads this segment and writes an index not referenced yet */
            add_name(&refs, vl_index_build_segment(e));
            e->gc_pending = 1; /* again once it is done */
        }
        if (delete_unreferenced(e, segs, &refs, 0, top, &kept) &&
            delete_unreferenced(e, dels, &refs, 0, top, &kept) &&
            delete_unreferenced(e, idxs, &refs, e->build != NULL, top, &kept))
            c->lake.stored_bytes = kept; /* what INFO's bytes_on_disk counts */
    }
    free_names(&refs);
}
