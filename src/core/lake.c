/* lake.c - in-memory bookkeeping of a collection's lake state; see lake.h. */
#include "core/lake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/index/seg_index.h"
#include "util/alloc.h"

void vl_lake_init(vl_lake *l, const char *coll, vl_metric metric)
{
    memset(l, 0, sizeof *l);
    snprintf(l->head.collection, sizeof l->head.collection, "%s", coll);
    l->head.metric = metric;
}

void vl_lake_segment_free(vl_lake_segment *g)
{
    free(g->deleted);
    free(g->pending);
    vl_seg_index_unref(g->index);
    g->deleted = NULL;
    g->pending = NULL;
    g->index = NULL;
}

void vl_lake_free(vl_lake *l)
{
    for (size_t i = 0; i < l->head.nsegs; i++)
        vl_lake_segment_free(&l->segs[i]);
    free(l->segs);
    free(l->retained);
    free(l->unsure);
    vl_manifest_free(&l->head);
}

long vl_lake_find_segment(const vl_lake *l, uint32_t id)
{
    for (size_t i = 0; i < l->head.nsegs; i++)
        if (l->segs[i].id == id)
            return (long)i;
    return -1;
}

void vl_lake_pending_delete(vl_lake *l, uint32_t id, uint32_t seg_row, uint64_t lsn)
{
    long i = vl_lake_find_segment(l, id);
    if (i < 0)
        return; /* segment already dropped by a CLEAR: nothing to record */
    vl_lake_segment *g = &l->segs[i];
    if (g->npending == g->cap_pending) {
        g->cap_pending = g->cap_pending ? g->cap_pending * 2 : 16;
        g->pending = vl_realloc(g->pending, g->cap_pending * sizeof *g->pending);
    }
    g->pending[g->npending++] = (vl_pending_delete){seg_row, lsn};
}

uint32_t vl_lake_add_segment(vl_lake *l, uint32_t *deleted, uint64_t ndeleted)
{
    l->segs = vl_realloc(l->segs, (l->head.nsegs + 1) * sizeof *l->segs);
    vl_lake_segment *g = &l->segs[l->head.nsegs];
    memset(g, 0, sizeof *g);
    g->id = l->next_seg_id++;
    g->deleted = deleted;
    g->ndeleted = ndeleted;
    return g->id;
}

int vl_lake_dirty(const vl_lake *l)
{
    return l->last_change > l->head.wal_lsn;
}

void vl_lake_retain(vl_lake *l, const vl_manifest *m)
{
    l->retained = vl_realloc(l->retained, (l->nretained + 1) * sizeof *l->retained);
    l->retained[l->nretained++] = (vl_lake_version){m->version, m->created_ms, m->live_rows};
}
