/*
 * lake_flush.c - turning the memtable and pending deletions into a new
 * committed version: one Parquet segment, deletion files, a manifest.
 *
 * prepare (owner thread): make the WAL durable up to F, pin a snapshot at
 * F, copy the head and compute each segment's new deletion set.
 * run (any thread): write the segment and deletion files, then commit the
 * manifest with put_if_absent -- the commit point.  (The segment's index
 * is built afterwards, beside the next jobs: lake_index.c.)
 * complete (owner thread): adopt the new head, point the flushed rows at
 * their segment, drop the pending deletions it covered, remove covered WAL
 * files and expired versions.
 * A crash anywhere before the commit leaves only unreferenced objects,
 * which the next start (or the next commit) removes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/engine_internal.h"
#include "storage/crc32c.h"
#include "storage/deletes.h"
#include "util/alloc.h"
#include "util/error.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* committed ∪ {pending with lsn <= upto}, ascending and unique. */
static void merged_deletes(const vl_lake_segment *g, uint64_t upto, vl_job_deletes *d)
{
    d->rows = vl_malloc((g->ndeleted + g->npending + 1) * sizeof *d->rows);
    if (g->ndeleted)
        memcpy(d->rows, g->deleted, g->ndeleted * sizeof *d->rows);
    d->n = g->ndeleted;
    d->changed = 0;
    for (size_t i = 0; i < g->npending; i++) {
        if (g->pending[i].lsn <= upto) {
            d->rows[d->n++] = g->pending[i].row;
            d->changed = 1;
        }
    }
    if (!d->changed)
        return;
    qsort(d->rows, d->n, sizeof *d->rows, cmp_u32);
    uint64_t w = 0;
    for (uint64_t i = 0; i < d->n; i++)
        if (w == 0 || d->rows[i] != d->rows[w - 1])
            d->rows[w++] = d->rows[i];
    d->n = w;
}

vl_status vl_flush_prepare(vl_engine *e, vl_collection *c, vl_lake_job **out, vl_error *err)
{
    *out = NULL;
    vl_status st = vl_wal_writable(e->wal, err);
    if (st == VL_ERR_CONFLICT)
        return st; /* fenced: "fenced: ..." */
    if (!vl_lake_dirty(&c->lake))
        return VL_OK;
    st = vl_lake_settle_commit(e, c, err);
    if (st != VL_OK)
        return st;
    st = vl_wal_sync_and_rotate(e->wal, &e->failure);
    if (st != VL_OK) {
        e->failed = !vl_wal_in_store(e->wal); /* a store WAL keeps its own state */
        return vl_fail(err, st, "%s", e->failure.msg);
    }
    vl_lake_job *j = vl_calloc(1, sizeof *j);
    j->kind = VL_JOB_FLUSH;
    j->store = e->store;
    snprintf(j->coll, sizeof j->coll, "%s", c->name);
    j->lsn = e->applied_lsn;
    j->new_version = c->lake.top_version + 1;
    j->dirty_since_ms = c->lake.dirty_since_ms;
    c->lake.dirty_since_ms = 0; /* everything so far is taken; later changes start the clock */
    j->snap = vl_snapshot_open(e, c->name);
    vl_manifest_copy(&j->base, &c->lake.head);
    int cleared = c->lake.cleared_lsn && c->lake.cleared_lsn <= j->lsn;
    if (cleared)
        j->base.nsegs = 0; /* the CLEAR drops every committed segment */
    j->base.dim = c->rows->dim;
    j->base.metric = c->metric;
    j->ndels = j->base.nsegs;
    j->dels = vl_calloc(j->ndels ? j->ndels : 1, sizeof *j->dels);
    for (size_t i = 0; i < j->ndels; i++) {
        merged_deletes(&c->lake.segs[i], j->lsn, &j->dels[i]);
        j->dels[i].drop = j->dels[i].n == j->base.segs[i].rows;
    }
    *out = j;
    return VL_OK;
}

/* ---- run (background) ---- */

/* Rows of the snapshot that live only in the memtable and are visible. */
static void collect_rows(vl_lake_job *j)
{
    const vl_snapshot *s = j->snap;
    j->flushed = vl_malloc((s->nrows ? s->nrows : 1) * sizeof *j->flushed);
    for (uint64_t r = 0; r < s->nrows; r++) {
        uint32_t seg, seg_row;
        vl_rowstore_location(s->rows, (uint32_t)r, &seg, &seg_row);
        uint64_t del = vl_rowstore_del_lsn(s->rows, (uint32_t)r);
        if (seg == VL_SEG_NONE && (del == 0 || del > s->lsn))
            j->flushed[j->nflushed++] = (uint32_t)r;
    }
}

static vl_status put_object(vl_lake_job *j, const char *name, const void *data, size_t len,
                            uint32_t *crc)
{
    *crc = vl_crc32c(0, data, len);
    return vl_obj_put(j->store, name, data, len, &j->err);
}

static vl_status write_segment(vl_lake_job *j, vl_manifest_segment *g)
{
    uint64_t n = j->nflushed;
    uint32_t dim = j->snap->dim;
    const char **keys = vl_malloc(n * sizeof *keys);
    uint32_t *lens = vl_malloc(n * sizeof *lens);
    int64_t *seqs = vl_malloc(n * sizeof *seqs);
    float *vecs = vl_aligned_alloc((size_t)n * dim * sizeof(float));
    vl_chunk_dir *dir = atomic_load_explicit(&j->snap->rows->dir, memory_order_acquire);
    for (uint64_t i = 0; i < n; i++) {
        uint32_t r = j->flushed[i];
        vl_chunk *ch = vl_rowstore_chunk(dir, r);
        keys[i] = ch->keys[r % VL_CHUNK_ROWS]->data;
        lens[i] = ch->keys[r % VL_CHUNK_ROWS]->len;
        seqs[i] = (int64_t)ch->put_lsn[r % VL_CHUNK_ROWS];
        memcpy(vecs + (size_t)i * dim, ch->vecs + (size_t)(r % VL_CHUNK_ROWS) * dim,
               (size_t)dim * sizeof(float));
    }
    vl_segment_rows rows = {n, dim, keys, lens, vecs, seqs};
    vl_status st = vl_lake_store_segment(j, &rows, g);
    free(keys);
    free(lens);
    free(seqs);
    free(vecs);
    return st;
}

/* Deletion file for segment g, named after it and the new version. */
static vl_status write_deletes(vl_lake_job *j, vl_manifest_segment *g, const vl_job_deletes *d)
{
    uint8_t *buf;
    size_t len;
    vl_deletes_encode(d->rows, d->n, &buf, &len);
    const char *base = strrchr(g->name, '/');
    base = base ? base + 1 : g->name;
    int stem = (int)(strlen(base) - strlen(".parquet"));
    uint32_t id = vl_lake_random_id(); /* two writers never make the same name */
    snprintf(g->del_name, sizeof g->del_name, "tables/%s/deletes/%.*s-v%020" PRIu64 "-%08x.del",
             j->coll, stem, base, j->result.version, id);
    g->del_count = d->n;
    g->del_bytes = len;
    vl_status st = put_object(j, g->del_name, buf, len, &g->del_crc32c);
    free(buf);
    return st;
}

void vl_flush_run(vl_lake_job *j)
{
    vl_manifest *m = &j->result;
    *m = j->base;
    m->segs = vl_calloc(j->base.nsegs + 1, sizeof *m->segs);
    m->nsegs = 0;
    j->st = VL_OK;
    for (size_t i = 0; i < j->ndels && j->st == VL_OK; i++) {
        if (j->dels[i].drop)
            continue; /* nothing left in it */
        m->segs[m->nsegs] = j->base.segs[i];
        if (j->dels[i].changed)
            j->st = write_deletes(j, &m->segs[m->nsegs], &j->dels[i]);
        m->nsegs++;
    }
    m->version = j->new_version;
    m->parent = j->base.version;
    m->wal_lsn = j->lsn;
    m->created_ms = now_ms();
    collect_rows(j);
    if (j->st == VL_OK && j->nflushed)
        j->st = write_segment(j, &m->segs[m->nsegs++]);
    m->live_rows = 0;
    for (size_t i = 0; i < m->nsegs; i++)
        m->live_rows += m->segs[i].rows - m->segs[i].del_count;
    if (j->st == VL_OK)
        j->st = vl_lake_job_commit(j, m);
}

/* ---- complete (owner thread) ---- */

static void drop_covered_pending(vl_lake_segment *g, uint64_t upto)
{
    size_t w = 0;
    for (size_t i = 0; i < g->npending; i++)
        if (g->pending[i].lsn > upto)
            g->pending[w++] = g->pending[i];
    g->npending = w;
}

/* Rebuild c->lake.segs to match the committed manifest. */
static void adopt_segments(vl_collection *c, vl_lake_job *j)
{
    vl_lake *l = &c->lake;
    if (j->base.nsegs == 0 && l->head.nsegs) { /* a CLEAR was committed */
        for (size_t i = 0; i < l->head.nsegs; i++)
            vl_lake_segment_free(&l->segs[i]);
        l->head.nsegs = 0;
    }
    size_t kept = 0;
    for (size_t i = 0; i < j->ndels; i++) {
        vl_lake_segment g = l->segs[i];
        if (j->dels[i].drop) {
            vl_lake_segment_free(&g);
            continue;
        }
        if (j->dels[i].changed) {
            free(g.deleted);
            g.deleted = j->dels[i].rows;
            g.ndeleted = j->dels[i].n;
            j->dels[i].rows = NULL;
        }
        drop_covered_pending(&g, j->lsn);
        l->segs[kept++] = g;
    }
    l->head.nsegs = kept;
}

static void locate_flushed_rows(vl_collection *c, vl_lake_job *j, uint32_t seg_id)
{
    if (c->rows != j->snap->rows)
        return; /* CLEARed since: those rows are gone, the next flush drops the segment */
    for (uint64_t k = 0; k < j->nflushed; k++) {
        uint32_t r = j->flushed[k];
        vl_rowstore_set_location(c->rows, r, seg_id, (uint32_t)k);
        uint64_t del = vl_rowstore_del_lsn(c->rows, r);
        if (del) /* deleted after the flush point: record it against the segment */
            vl_lake_pending_delete(&c->lake, seg_id, (uint32_t)k, del);
    }
}

void vl_flush_complete(vl_engine *e, vl_lake_job *j)
{
    vl_collection *c = vl_lake_job_target(e, j);
    if (!c) {
        c = vl_engine_find(e, j->coll);
        if (c && (!c->lake.dirty_since_ms || j->dirty_since_ms < c->lake.dirty_since_ms))
            c->lake.dirty_since_ms = j->dirty_since_ms; /* nothing was taken after all */
        return;
    }
    vl_lake *l = &c->lake;
    adopt_segments(c, j);
    /* The kept segments first; the new one is appended below, with its id. */
    vl_lake_job_adopt_head(l, j, l->head.nsegs);
    if (j->nflushed) {
        uint32_t id = vl_lake_add_segment(l, NULL, 0);
        l->head.nsegs++;
        locate_flushed_rows(c, j, id);
    }
    if (l->cleared_lsn && l->cleared_lsn <= j->lsn)
        l->cleared_lsn = 0;
    uint64_t now_rows = atomic_load(&c->rows->nrows);
    l->unflushed_puts = c->rows == j->snap->rows ? now_rows - j->snap->nrows : now_rows;
    e->flushes++;
    vl_lake_job_after_commit(e, c);
    vl_lake_publish_indexes(c);
}
