/*
 * engine_lake.c - the engine's lake API: SAVE, BGSAVE, background
 * completion, automatic flush/compaction/index builds, versions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/engine_internal.h"
#include "core/tail_index.h"
#include "util/alloc.h"
#include "util/error.h"

/* Rebuild a generation only when this many rows are dead (and more dead
 * than live), so the copy cost stays proportional to the memory reclaimed. */
#define VL_RECLAIM_MIN_DEAD 65536

int vl_engine_fenced(vl_engine *e)
{
    return vl_wal_writable(e->wal, NULL) == VL_ERR_CONFLICT;
}

vl_status vl_engine_remove_covered_wal(vl_engine *e, vl_error *err)
{
    uint64_t covered = e->applied_lsn;
    for (size_t i = 0; i < e->ncolls; i++) {
        const vl_lake *l = &e->colls[i].lake;
        if (vl_lake_dirty(l) && l->head.wal_lsn < covered)
            covered = l->head.wal_lsn;
    }
    return vl_wal_remove_through(e->wal, covered, err);
}

void vl_engine_note_save_time(vl_engine *e, const vl_manifest *head)
{
    if (head->created_ms / 1000 > e->last_save)
        e->last_save = head->created_ms / 1000;
}

void vl_engine_note_commit(vl_engine *e, const vl_manifest *head)
{
    e->commits++;
    vl_engine_note_save_time(e, head);
    vl_engine_remove_covered_wal(e, NULL);
}

/* The flush job of a save of coll; *j is NULL when there is nothing to
 * save (no such collection, or nothing new). */
static vl_status save_prepare(vl_engine *e, const char *coll, vl_lake_job **j, vl_error *err)
{
    vl_collection *c = vl_engine_find(e, coll);
    *j = NULL;
    return c ? vl_flush_prepare(e, c, j, err) : VL_OK;
}

vl_status vl_save(vl_engine *e, const char *coll, vl_error *err)
{
    if (e->opt.read_only)
        return vl_fail(err, VL_ERR_READONLY, "read-only engine (a follower): the writer saves");
    vl_lake_job_finish(e, NULL); /* a background job's outcome is its own */
    vl_lake_job *j;
    vl_status st = save_prepare(e, coll, &j, err);
    if (st != VL_OK || !j)
        return st;
    vl_lake_job_start(e, j, 0);
    return vl_lake_job_finish(e, err);
}

vl_status vl_save_begin(vl_engine *e, const char *coll, vl_save_done_fn done, void *arg,
                        int *started, vl_error *err)
{
    *started = 0;
    if (e->opt.read_only)
        return vl_fail(err, VL_ERR_READONLY, "read-only engine (a follower): the writer saves");
    if (e->job)
        return vl_fail(err, VL_ERR_BUSY, "a background job runs");
    vl_lake_job *j;
    vl_status st = save_prepare(e, coll, &j, err);
    if (st != VL_OK || !j)
        return st;
    j->on_done = done;
    j->done_arg = arg;
    vl_lake_job_start(e, j, 1);
    *started = 1;
    return VL_OK;
}

vl_status vl_bgsave(vl_engine *e, const char *coll, vl_error *err)
{
    if (e->opt.read_only)
        return vl_fail(err, VL_ERR_READONLY, "read-only engine (a follower): the writer saves");
    if (e->job && e->job->kind == VL_JOB_GC) { /* the last save's GC, not a save */
        snprintf(e->bgsave_after_gc, sizeof e->bgsave_after_gc, "%s", coll);
        return VL_OK; /* started when it is done (vl_background_poll) */
    }
    if (e->job)
        return vl_fail(err, VL_ERR_CONFLICT, "Background save already in progress");
    vl_lake_job *j;
    vl_status st = save_prepare(e, coll, &j, err);
    if (st == VL_OK && j)
        vl_lake_job_start(e, j, 1);
    vl_error why;
    if (st != VL_OK && st != VL_ERR_CONFLICT && vl_write_refusal(e, &why) != VL_OK) {
        /* A store WAL that cannot store the changes yet: reported as a
         * background save that failed (INFO), as when the store refuses the
         * job's own objects; the next save after the store is back runs. */
        e->last_job_error = e->failure;
        return VL_OK;
    }
    return st;
}

int64_t vl_last_save(const vl_engine *e)
{
    return e->last_save;
}

int vl_background_busy(const vl_engine *e)
{
    return e->job != NULL;
}

int vl_background_fd(const vl_engine *e)
{
    return e->job_fd;
}

void vl_background_signal(atomic_int *done, int job_fd)
{
    atomic_store(done, 1);
    uint64_t one = 1;
    ssize_t ignored = write(job_fd, &one, sizeof one);
    (void)ignored;
}

int vl_background_join(pthread_t thread, atomic_int *done, atomic_int *cancel, int wait)
{
    if (!wait && !atomic_load(done))
        return 0;
    if (wait)
        atomic_store(cancel, 1);
    pthread_join(thread, NULL);
    return 1;
}

void vl_background_poll(vl_engine *e)
{
    uint64_t n;
    if (read(e->job_fd, &n, sizeof n) != (ssize_t)sizeof n)
        return;
    /* The eventfd counts completions of the lake job and the index build;
     * finish whichever is done, without reading the count again. */
    if (e->job && e->job->threaded && atomic_load(&e->job->done)) {
        e->job->threaded = 2;
        vl_lake_job_finish(e, NULL);
    }
    if (e->bgsave_after_gc[0] && !e->job) {
        char coll[sizeof e->bgsave_after_gc];
        snprintf(coll, sizeof coll, "%s", e->bgsave_after_gc);
        e->bgsave_after_gc[0] = '\0';
        vl_bgsave(e, coll, NULL);
    }
    vl_index_build_finish(e, 0);
    vl_tail_finish(e, 0);
    if (!e->opt.read_only && !vl_engine_fenced(e))
        vl_tail_start(e); /* keep the tail's builder busy */
}

static int flush_due(const vl_engine *e, const vl_collection *c, uint64_t wal_bytes, int64_t now)
{
    const vl_lake *l = &c->lake;
    if (!vl_lake_dirty(l))
        return 0;
    const vl_options *o = &e->opt;
    return (o->flush_rows && l->unflushed_puts >= o->flush_rows) ||
           (o->flush_wal_bytes && wal_bytes >= o->flush_wal_bytes) ||
           (o->flush_seconds && l->dirty_since_ms &&
            now - l->dirty_since_ms >= (int64_t)o->flush_seconds * 1000);
}

/* Dead rows (overwritten or deleted) stay in memory until the generation
 * is rebuilt; do it once they outnumber the live ones -- or, while the data
 * is past max_memory (writes refused), once they are a sixteenth of the
 * rows, so deleting makes room for writes again.  Never while a job runs:
 * a flush completion points rows of its own generation at the new
 * segment. */
static void reclaim_dead_rows(vl_engine *e, vl_collection *c, int pressure)
{
    uint64_t n = atomic_load(&c->rows->nrows), live = c->rows->live, dead = n - live;
    int due = pressure ? dead > 0 && dead * 16 >= n : dead >= VL_RECLAIM_MIN_DEAD && dead >= live;
    if (!due)
        return;
    vl_rowstore *fresh = vl_rowstore_compact(c->rows);
    vl_tail_rebase(e, c, fresh); /* tail indexes keep their rows, renumbered */
    vl_rowstore_unref(c->rows);
    c->rows = fresh;
    vl_lake_publish_indexes(c); /* the maps point into the old generation */
}

void vl_maintenance(vl_engine *e)
{
    int64_t now = vl_monotonic_ms();
    if (e->opt.read_only)
        return;
    vl_index_build_finish(e, 0); /* in case a job's finish consumed its signal */
    if (vl_engine_fenced(e))
        return;              /* the store is another writer's now: no builds, jobs or GC */
    vl_index_build_start(e); /* beside the lake job, never inside it */
    vl_tail_finish(e, 0);
    vl_tail_start(e); /* beside both: pieces of the unindexed tail */
    if (e->job || e->failed)
        return;
    for (size_t i = 0; i < e->ncolls; i++)
        reclaim_dead_rows(e, &e->colls[i], e->memory_refused);
    if (e->gc_pending && !e->version_loads) {
        e->gc_pending = 0;
        for (size_t i = 0; i < e->ncolls; i++)
            vl_lake_gc(e, &e->colls[i]);
        if (e->job)
            return; /* a pass runs in the background */
    }
    if (now < e->backoff_until)
        return;
    vl_wal_stats ws;
    vl_wal_stats_get(e->wal, &ws);
    for (size_t i = 0; i < e->ncolls; i++) {
        if (flush_due(e, &e->colls[i], ws.bytes, now)) {
            vl_bgsave(e, e->colls[i].name, NULL);
            return;
        }
    }
    for (size_t i = 0; i < e->ncolls; i++) {
        vl_lake_job *j = vl_compact_prepare(e, &e->colls[i]);
        if (!j)
            j = vl_index_prepare(e, &e->colls[i]);
        if (j) {
            vl_lake_job_start(e, j, 1);
            return;
        }
    }
}

vl_status vl_versions(vl_engine *e, const char *coll, vl_version_info **out, size_t *n)
{
    vl_collection *c = vl_engine_find(e, coll);
    *n = c ? c->lake.nretained : 0;
    *out = vl_malloc((*n ? *n : 1) * sizeof **out);
    for (size_t i = 0; i < *n; i++)
        (*out)[i] = (vl_version_info){c->lake.retained[i].version, c->lake.retained[i].created_ms,
                                      c->lake.retained[i].rows};
    return VL_OK;
}

uint64_t vl_current_version(vl_engine *e, const char *coll)
{
    vl_collection *c = vl_engine_find(e, coll);
    return c ? c->lake.head.version : 0;
}
