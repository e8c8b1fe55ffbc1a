/*
 * snapshot.c - pinned views of a collection.
 *
 * A snapshot holds a reference to the row store generation plus the row
 * count and LSN current when it was opened; see rowstore.h for why that is
 * enough for a consistent view while the writer goes on.  It also pins the
 * collection's index set of that moment (index_set.h), which covers rows
 * below its base; later rows are scanned.  Searching a snapshot is
 * search.c's job.
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
    if (!c)
        return s;
    vl_rowstore_ref(c->rows);
    s->rows = c->rows;
    s->nrows = atomic_load_explicit(&c->rows->nrows, memory_order_acquire);
    s->lsn = e->applied_lsn;
    s->count = c->rows->live;
    s->dim = c->rows->dim;
    if (c->iset && c->iset->rows == c->rows) {
        vl_index_set_ref(c->iset);
        s->iset = c->iset;
    }
    return s;
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
