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
 *
 * The pass is a lake job (VL_JOB_GC): inputs taken on the owner thread
 * (gc_prepare), the store's requests in vl_gc_run, the result applied in
 * vl_gc_complete.  Against a store, once the engine is open, it runs on
 * the job thread, so its round trips never hold up the event loop; the
 * expiring versions leave the retained list at prepare, so no time-travel
 * read starts on them meanwhile, and lake_index.c starts no build while
 * it runs (the build's new file would look like garbage).  A local
 * directory's pass runs right away, as before.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine_internal.h"
#include "util/alloc.h"
#include "util/error.h"

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

/* Names the pass must keep besides the retained versions': the in-memory
 * head's index files (built, listed by the next commit) and the segment
 * an index build reads. */
static void head_refs(vl_engine *e, vl_collection *c, name_set *refs)
{
    for (size_t k = 0; k < c->lake.head.nsegs; k++)
        if (c->lake.head.segs[k].idx.name[0])
            add_name(refs, c->lake.head.segs[k].idx.name);
    if (e->build)
        add_name(refs, vl_index_build_segment(e));
}

/* Add the names version v references to refs; 0 if it could not be read
 * (then nothing is deleted: better a leftover file than a lost one). */
static int version_refs(vl_objstore *store, const char *coll, uint64_t v, name_set *refs)
{
    vl_manifest m;
    if (vl_manifest_load(store, coll, v, &m, NULL) != VL_OK)
        return 0;
    for (size_t k = 0; k < m.nsegs; k++) {
        add_name(refs, m.segs[k].name);
        if (m.segs[k].del_name[0])
            add_name(refs, m.segs[k].del_name);
        if (m.segs[k].idx.name[0])
            add_name(refs, m.segs[k].idx.name);
    }
    vl_manifest_free(&m);
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

/* Delete the objects under prefix that refs does not name (none when
 * keep_all, none named above version top); *kept grows by the bytes of
 * the others.  0 when the listing failed. */
static int delete_unreferenced(vl_lake_job *j, const char *prefix, const name_set *refs,
                               int keep_all, uint64_t top, uint64_t *kept)
{
    vl_objinfo *objs;
    size_t n;
    if (vl_obj_list(j->store, prefix, &objs, &n, NULL) != VL_OK)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (keep_all || has_name(refs, objs[i].name) || named_version(objs[i].name) > top ||
            vl_obj_del(j->store, objs[i].name, NULL) != VL_OK)
            *kept += objs[i].size;
        else
            j->gc.deleted++;
    }
    vl_objinfo_free(objs, n);
    return 1;
}

/* Owner: the pass over c as a job.  The expiring versions leave the
 * retained list now, so no time-travel read can start on them while the
 * pass deletes their files; complete() puts them back if it could not
 * run. */
static vl_lake_job *gc_prepare(vl_engine *e, vl_collection *c)
{
    vl_lake *l = &c->lake;
    vl_lake_job *j = vl_calloc(1, sizeof *j);
    j->kind = VL_JOB_GC;
    j->store = e->store;
    snprintf(j->coll, sizeof j->coll, "%s", c->name);
    size_t keep = e->opt.retain_versions ? e->opt.retain_versions : 1;
    vl_job_gc *g = &j->gc;
    g->nexpired = l->nretained > keep ? l->nretained - keep : 0;
    g->expired = vl_malloc((g->nexpired + 1) * sizeof *g->expired);
    if (g->nexpired) { /* retained may be NULL (nothing committed yet) */
        memcpy(g->expired, l->retained, g->nexpired * sizeof *g->expired);
        memmove(l->retained, l->retained + g->nexpired,
                (l->nretained - g->nexpired) * sizeof *l->retained);
        l->nretained -= g->nexpired;
    }
    g->nkept = l->nretained;
    g->kept = vl_malloc((g->nkept + 1) * sizeof *g->kept);
    for (size_t i = 0; i < g->nkept; i++)
        g->kept[i] = l->retained[i].version;
    name_set refs = {0};
    head_refs(e, c, &refs);
    g->extra = refs.names;
    g->nextra = refs.n;
    g->keep_indexes = e->build != NULL; /* it writes an index not referenced yet */
    /* A local directory is locked: no other writer makes files in it. */
    g->top = vl_wal_in_store(e->wal) ? l->top_version : UINT64_MAX;
    return j;
}

/* Any thread: the deletions. */
void vl_gc_run(vl_lake_job *j)
{
    vl_job_gc *g = &j->gc;
    vl_error why;
    j->st = vl_wal_confirm_writer(j->wal, &why);
    if (j->st != VL_OK) { /* fenced: nothing here is ours to delete; unknown: later */
        vl_fail(&j->err, j->st, "GC of '%s' did not run: %s", j->coll, why.msg);
        return;
    }
    for (size_t i = 0; i < g->nexpired; i++) {
        char name[VL_OBJECT_NAME_MAX];
        vl_manifest_object(name, sizeof name, j->coll, g->expired[i].version);
        if (vl_obj_del(j->store, name, NULL) == VL_OK)
            g->deleted++;
    }
    g->expired_gone = 1;
    name_set refs = {g->extra, g->nextra, g->nextra};
    int ok = 1;
    for (size_t i = 0; ok && i < g->nkept; i++)
        ok = version_refs(j->store, j->coll, g->kept[i], &refs);
    g->extra = refs.names; /* add_name may have moved it */
    g->nextra = refs.n;
    if (!ok)
        return;
    char segs[VL_OBJECT_NAME_MAX], dels[VL_OBJECT_NAME_MAX], idxs[VL_OBJECT_NAME_MAX];
    snprintf(segs, sizeof segs, "tables/%s/segments/", j->coll);
    snprintf(dels, sizeof dels, "tables/%s/deletes/", j->coll);
    snprintf(idxs, sizeof idxs, "tables/%s/indexes/", j->coll);
    uint64_t kept = 0;
    g->listed = delete_unreferenced(j, segs, &refs, 0, g->top, &kept) &&
                delete_unreferenced(j, dels, &refs, 0, g->top, &kept) &&
                delete_unreferenced(j, idxs, &refs, g->keep_indexes, g->top, &kept);
    g->stored_bytes = kept;
}

/* Owner: apply the pass. */
void vl_gc_complete(vl_engine *e, vl_lake_job *j)
{
    vl_job_gc *g = &j->gc;
    vl_collection *c = vl_engine_find(e, j->coll);
    e->gc_deleted += g->deleted;
    if (g->keep_indexes || (j->st != VL_OK && j->st != VL_ERR_CONFLICT))
        e->gc_pending = 1; /* again once the build is done / the store answers */
    if (!c)
        return;
    vl_lake *l = &c->lake;
    if (!g->expired_gone && g->nexpired) { /* they are still there: retained again */
        l->retained = vl_realloc(l->retained, (l->nretained + g->nexpired) * sizeof *l->retained);
        memmove(l->retained + g->nexpired, l->retained, l->nretained * sizeof *l->retained);
        memcpy(l->retained, g->expired, g->nexpired * sizeof *l->retained);
        l->nretained += g->nexpired;
    }
    if (g->listed)
        l->stored_bytes = g->stored_bytes; /* what INFO's bytes_on_disk counts */
}

void vl_gc_free(vl_job_gc *g)
{
    free(g->expired);
    free(g->kept);
    name_set refs = {g->extra, g->nextra, g->nextra};
    free_names(&refs);
}

void vl_lake_gc(vl_engine *e, vl_collection *c)
{
    if (e->job || e->version_loads) {
        e->gc_pending = 1; /* new files not yet committed, or old ones being read */
        return;
    }
    /* With the store's latency, off the event loop (once it runs: at open
     * there is none yet); a local directory's pass is short. */
    int threaded = vl_wal_in_store(e->wal) && e->job_fd >= 0 && e->opened;
    vl_lake_job_start(e, gc_prepare(e, c), threaded);
    if (!threaded)
        vl_lake_job_finish(e, NULL);
}
