/*
 * lake_job.c - running one background lake job (flush, compaction, or the
 * commit that lists index files built since the last one).
 *
 * The job runs on a thread of its own, so a flush of a large memtable never
 * stalls searches (which use the server's worker pool) or the event loop;
 * so does a GC pass against an object store (lake_gc.c).
 * When it ends it writes the engine's eventfd; the owner thread then calls
 * vl_background_poll(), which joins the thread and applies the result.
 *
 * A commit that loses its version (put_if_absent: another manifest is
 * there) never overwrites it.  The job first asks the WAL whether this
 * engine is still the store's writer (vl_wal_confirm_writer), because a
 * version it did not make has one of two authors:
 *  - the writer that took over from this one: then this engine is fenced,
 *    the job fails with the fence's "fenced: ..." error and the engine
 *    stops (no more acknowledgements, commits or GC).
 *  - a writer this one fenced, finishing a job it started before it knew:
 *    everything that writer stored is in WAL objects this engine replayed
 *    at open (or in the version this engine loaded), so what this commit
 *    holds is a superset.  The commit goes above the newest version, and
 *    the versions it passed are kept as retained history.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "storage/crc32c.h"
#include "util/alloc.h"
#include "util/error.h"

#include "core/engine_internal.h"

static void run(vl_lake_job *j)
{
    if (j->kind == VL_JOB_FLUSH)
        vl_flush_run(j);
    else if (j->kind == VL_JOB_COMPACT)
        vl_compact_run(j);
    else if (j->kind == VL_JOB_GC)
        vl_gc_run(j);
    else
        vl_index_run(j);
}

static void *thread_main(void *arg)
{
    vl_engine *e = arg;
    run(e->job);
    vl_background_signal(&e->job->done, e->job_fd);
    return NULL;
}

void vl_lake_job_start(vl_engine *e, vl_lake_job *j, int threaded)
{
    e->job = j;
    j->wal = e->wal;
    j->threaded = threaded && pthread_create(&j->thread, NULL, thread_main, e) == 0;
    if (!j->threaded)
        run(j);
}

#define COMMIT_ROUNDS 4 /* versions lost to a fenced writer's late jobs before giving up */

/* Versions of j's collection from m->version up, into j->skipped (their
 * number, time and rows; an unreadable one is kept with no rows), and
 * m->version above them.  VL_ERR_CONFLICT when one covers more of the log
 * than m (a compaction or index commit keeps its base's wal_lsn): going
 * above it would hide writes whose WAL objects its writer may have
 * removed; the next flush, which covers everything, goes above instead. */
static vl_status skip_versions(vl_lake_job *j, vl_manifest *m)
{
    uint64_t *vs;
    size_t n;
    vl_status st = vl_manifest_versions(j->store, j->coll, &vs, &n, &j->err);
    if (st != VL_OK)
        return st;
    uint64_t newest = m->version;
    for (size_t i = 0; i < n; i++) {
        if (vs[i] < m->version || (j->nskipped && vs[i] <= j->skipped[j->nskipped - 1].version))
            continue;
        vl_manifest o;
        vl_lake_version v = {vs[i], 0, 0};
        if (vl_manifest_load(j->store, j->coll, vs[i], &o, NULL) == VL_OK) {
            v = (vl_lake_version){o.version, o.created_ms, o.live_rows};
            uint64_t covers = o.wal_lsn;
            vl_manifest_free(&o);
            if (covers > m->wal_lsn) {
                free(vs);
                return vl_fail(&j->err, VL_ERR_CONFLICT,
                               "version %" PRIu64 " of '%s' (committed by a writer this node "
                               "fenced) covers the log up to %" PRIu64
                               ", this commit only to %" PRIu64 "; the next flush goes above it",
                               v.version, j->coll, covers, m->wal_lsn);
            }
        }
        j->skipped = vl_realloc(j->skipped, (j->nskipped + 1) * sizeof *j->skipped);
        j->skipped[j->nskipped++] = v;
        newest = vs[i];
    }
    free(vs);
    m->version = newest + 1;
    return VL_OK;
}

vl_status vl_lake_job_commit(vl_lake_job *j, vl_manifest *m)
{
    j->committing = 1;
    for (int round = 0;; round++) {
        uint64_t lost = m->version;
        vl_status st = vl_manifest_commit(j->store, m, &j->err);
        if (st != VL_ERR_CONFLICT)
            return st;
        j->committing = 0; /* a definite "no": nothing to settle later */
        vl_error why;
        st = vl_wal_confirm_writer(j->wal, &why);
        if (st == VL_ERR_CONFLICT)
            return vl_fail(&j->err, st, "%s (version %" PRIu64 " of '%s' is its commit)", why.msg,
                           lost, j->coll);
        if (st != VL_OK)
            return vl_fail(&j->err, st,
                           "version %" PRIu64 " of '%s' exists and whether this node is still "
                           "the writer could not be checked: %s",
                           lost, j->coll, why.msg);
        if (round + 1 == COMMIT_ROUNDS)
            return vl_fail(&j->err, VL_ERR_CONFLICT,
                           "version %" PRIu64 " of '%s' exists: %d commits in a row lost their "
                           "version to a writer this node fenced; trying again later",
                           lost, j->coll, COMMIT_ROUNDS);
        st = skip_versions(j, m);
        if (st != VL_OK)
            return st;
        j->committing = 1;
    }
}

/* A failed commit may have landed: keep its manifest to settle it. */
static void remember_unsure(vl_engine *e, vl_lake_job *j)
{
    vl_collection *c = vl_engine_find(e, j->coll);
    char *text;
    size_t len;
    if (!c || vl_manifest_encode(&j->result, &text, &len, NULL) != VL_OK)
        return;
    free(c->lake.unsure);
    c->lake.unsure = text;
    c->lake.unsure_len = len;
    c->lake.unsure_version = j->result.version;
}

static void forget_unsure(vl_lake *l)
{
    free(l->unsure);
    l->unsure = NULL;
    l->unsure_len = 0;
}

vl_status vl_lake_settle_commit(vl_engine *e, vl_collection *c, vl_error *err)
{
    vl_lake *l = &c->lake;
    if (!l->unsure)
        return VL_OK;
    char name[VL_OBJECT_NAME_MAX];
    vl_manifest_object(name, sizeof name, c->name, l->unsure_version);
    void *data;
    size_t len;
    vl_error gerr;
    vl_status st = vl_obj_get(e->store, name, &data, &len, &gerr);
    if (st == VL_ERR_NOTFOUND) { /* it did not land: the version is free */
        forget_unsure(l);
        return VL_OK;
    }
    if (st != VL_OK) {
        e->backoff_until = vl_monotonic_ms() + 10000;
        return vl_fail(err, st, "%s: the outcome of the last commit is still unknown: %s", name,
                       gerr.msg);
    }
    vl_manifest m;
    if (len == l->unsure_len && memcmp(data, l->unsure, len) == 0 &&
        vl_manifest_decode(data, len, name, &m, NULL) == VL_OK) {
        vl_lake_retain(l, &m); /* it landed: history, and the next commit goes above it */
        if (m.version > l->top_version)
            l->top_version = m.version;
        vl_manifest_free(&m);
    } /* else another writer's: the next commit conflicts, as it should */
    free(data);
    forget_unsure(l);
    return VL_OK;
}

vl_status vl_lake_job_finish(vl_engine *e, vl_error *err)
{
    vl_lake_job *j = e->job;
    if (!j)
        return VL_OK;
    if (j->threaded) {
        pthread_join(j->thread, NULL);
        if (j->threaded == 1) { /* consume the completion signal */
            uint64_t n;
            ssize_t ignored = read(e->job_fd, &n, sizeof n);
            (void)ignored;
        }
    }
    e->job = NULL;
    if (j->kind == VL_JOB_FLUSH)
        vl_flush_complete(e, j);
    else if (j->kind == VL_JOB_COMPACT)
        vl_compact_complete(e, j);
    else if (j->kind == VL_JOB_GC)
        vl_gc_complete(e, j);
    else
        vl_index_complete(e, j);
    vl_status st = j->st;
    if (st != VL_OK && j->committing)
        remember_unsure(e, j);
    if (st != VL_OK && err)
        *err = j->err;
    if (st != VL_OK)
        e->backoff_until = vl_monotonic_ms() + 10000;
    if (j->on_done)
        j->on_done(j->done_arg, st, &j->err);
    vl_lake_job_free(j);
    return st;
}

void vl_lake_job_free(vl_lake_job *j)
{
    if (!j)
        return;
    vl_snapshot_close(j->snap);
    for (size_t i = 0; i < j->ndels; i++)
        free(j->dels[i].rows);
    free(j->dels);
    vl_manifest_free(&j->base);
    vl_manifest_free(&j->result);
    free(j->flushed);
    for (size_t i = 0; j->remap && i < j->nchosen; i++)
        free(j->remap[i]);
    free(j->remap);
    free(j->chosen);
    free(j->skipped);
    vl_gc_free(&j->gc);
    free(j);
}

vl_collection *vl_lake_job_target(vl_engine *e, vl_lake_job *j)
{
    vl_collection *c = vl_engine_find(e, j->coll);
    if (j->st == VL_OK && c)
        return c;
    e->last_job_error = j->err;
    return NULL;
}

void vl_lake_job_adopt_head(vl_lake *l, vl_lake_job *j, size_t nsegs)
{
    for (size_t i = 0; i < j->nskipped; i++) { /* history, below the new head */
        l->retained = vl_realloc(l->retained, (l->nretained + 1) * sizeof *l->retained);
        l->retained[l->nretained++] = j->skipped[i];
    }
    vl_manifest_free(&l->head);
    l->head = j->result;
    l->head.nsegs = nsegs;
    j->result.segs = NULL;
    l->top_version = l->head.version;
    /* Index files built while the job ran are not in its manifest: keep
     * them in the head for the next commit. */
    for (size_t i = 0; i < nsegs; i++) {
        vl_lake_segment *g = &l->segs[i];
        if (!g->index_unlisted)
            continue;
        if (strcmp(l->head.segs[i].idx.name, g->file.name) == 0)
            g->index_unlisted = 0;
        else
            l->head.segs[i].idx = g->file;
    }
}

void vl_lake_job_after_commit(vl_engine *e, vl_collection *c)
{
    e->last_job_error.msg[0] = '\0'; /* as Redis: the last save's status, not the worst */
    vl_lake_retain(&c->lake, &c->lake.head);
    vl_engine_note_commit(e, &c->lake.head);
    vl_lake_gc(e, c);
}

uint32_t vl_lake_random_id(void)
{
    uint32_t id = 0;
    if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id)
        id = (uint32_t)vl_monotonic_ms();
    return id;
}

vl_status vl_lake_store_segment(vl_lake_job *j, const vl_segment_rows *rows, vl_manifest_segment *g)
{
    vl_parquet_options opt;
    vl_parquet_options_init(&opt);
    uint8_t *file = NULL;
    size_t len = 0;
    vl_status st = vl_parquet_write_segment(rows, &opt, &file, &len, &j->err);
    if (st != VL_OK)
        return st;
    uint32_t id = vl_lake_random_id(); /* two writers never pick one name */
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "tables/%s/segments/%020" PRIu64 "-%08x.parquet", j->coll,
             j->new_version, id);
    g->rows = rows->nrows;
    g->bytes = len;
    g->crc32c = vl_crc32c(0, file, len);
    for (uint64_t i = 0; i < rows->nrows; i++) {
        if (i == 0 || rows->seqs[i] < g->min_seq)
            g->min_seq = rows->seqs[i];
        if (i == 0 || rows->seqs[i] > g->max_seq)
            g->max_seq = rows->seqs[i];
    }
    st = vl_obj_put(j->store, g->name, file, len, &j->err);
    free(file);
    return st;
}
