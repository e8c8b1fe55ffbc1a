/*
 * snapshot.c - pinned views of a collection.
 *
 * A snapshot holds a reference to the row store generation plus the row
 * count and LSN current when it was opened; see rowstore.h for why that is
 * enough for a consistent view while the writer goes on.  It also pins the
 * collection's index set of that moment (index_set.h), which covers rows
 * below its base through segment indexes, tail pieces (tail_index.h) and
 * exact-scan ranges; later rows are scanned.  Searching a snapshot is
 * search.c's job.
 *
 * A durable snapshot (vl_snapshot_open_durable) is the same view moved back
 * to the durable LSN D: the row count becomes the rows written at or below
 * D (they are a prefix), and visibility by deletion LSN already shows a row
 * replaced or deleted after D.  Why this and not "wait for the newest
 * change": a server must not reply with what a crash could undo, and under
 * a stream of writes there always is a change in flight, so every read
 * would wait one fsync (measured: search p99 3x under a 50-client insert
 * stream, bench/results/2026-12-01-resp-indexed.md).  A reply built from D
 * waits for nothing, and it still shows every acknowledged write (an
 * acknowledgement leaves only once its change is durable).  The move back
 * is exact only when nothing the view needs was dropped: a generation
 * rebuilt without the rows deleted up to since_lsn, or an index set built
 * without the rows dead up to dead_lsn, cannot show them as live at an
 * earlier D; then the snapshot stays at the applied LSN and its reader
 * waits as before.
 */
#include <stdlib.h>

#include "core/engine_internal.h"
#include "core/index_set.h"
#include "util/alloc.h"

vl_snapshot *vl_snapshot_open(vl_engine *e, const char *coll)
{
    vl_snapshot *s = vl_calloc(1, sizeof *s);
    vl_collection *c = vl_engine_find(e, coll);
    s->metric = c ? c->metric : e->opt.default_metric;
    s->lsn = e->applied_lsn;
    if (!c)
        return s;
    vl_rowstore_ref(c->rows);
    s->rows = c->rows;
    s->nrows = atomic_load_explicit(&c->rows->nrows, memory_order_acquire);
    s->count = c->rows->live;
    s->deletions = c->rows->deletions;
    s->dim = c->rows->dim;
    if (c->iset && c->iset->rows == c->rows) {
        vl_index_set_ref(c->iset);
        s->iset = c->iset;
    }
    return s;
}

vl_snapshot *vl_snapshot_open_durable(vl_engine *e, const char *coll)
{
    vl_snapshot *s = vl_snapshot_open(e, coll);
    uint64_t d = vl_durable_lsn(e);
    if (d >= s->lsn || !s->rows || s->rows->since_lsn > d || (s->iset && s->iset->dead_lsn > d))
        return s;
    s->lsn = d;
    s->nrows = vl_rowstore_rows_at(s->rows, s->nrows, d);
    return s;
}

uint64_t vl_snapshot_lsn(const vl_snapshot *s)
{
    return s->lsn;
}

void vl_snapshot_close(vl_snapshot *s)
{
    if (!s)
        return;
    vl_rowstore_unref(s->rows);
    vl_index_set_unref(s->iset);
    free(s);
}

uint64_t vl_snapshot_count(const vl_snapshot *s)
{
    return s->count;
}
