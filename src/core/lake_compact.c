/*
 * lake_compact.c - merging segments and dropping deleted rows.
 *
 * Trigger (vl_maintenance): a collection with compact_segments or more
 * segments is merged into one segment; otherwise any segment whose
 * committed deletions reach 20% of its rows is rewritten.  The job reads
 * the chosen segments from the store (not from memory), keeps the rows not
 * in their committed deletion sets, writes one new segment (indexed
 * afterwards, see lake_index.c) and commits a manifest with the same wal_lsn: the content of the
 * version is unchanged, so readers of either version see the same data. On completion the rows in
 * memory that pointed into a merged segment are re-pointed at their new position, and so are
 * pending deletions.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/engine_internal.h"
#include "util/alloc.h"
#include "util/error.h"

#define REWRITE_DELETED_FRACTION 0.2

static size_t choose(const vl_engine *e, const vl_collection *c, size_t *chosen)
{
    const vl_manifest *h = &c->lake.head;
    size_t n = 0;
    if (h->nsegs >= e->opt.compact_segments && h->nsegs >= 2) {
        for (size_t i = 0; i < h->nsegs; i++)
            chosen[n++] = i;
        return n;
    }
    for (size_t i = 0; i < h->nsegs; i++)
        if (h->segs[i].rows && h->segs[i].del_count >= REWRITE_DELETED_FRACTION * h->segs[i].rows)
            chosen[n++] = i;
    return n;
}

vl_lake_job *vl_compact_prepare(vl_engine *e, vl_collection *c)
{
    size_t *chosen = vl_malloc((c->lake.head.nsegs + 1) * sizeof *chosen);
    size_t n = choose(e, c, chosen);
    if (n == 0 || vl_lake_settle_commit(e, c, NULL) != VL_OK) {
        free(chosen);
        return NULL;
    }
    vl_lake_job *j = vl_calloc(1, sizeof *j);
    j->kind = VL_JOB_COMPACT;
    j->store = e->store;
    snprintf(j->coll, sizeof j->coll, "%s", c->name);
    vl_manifest_copy(&j->base, &c->lake.head);
    j->new_version = c->lake.top_version + 1;
    j->chosen = chosen;
    j->nchosen = n;
    j->ndels = n;
    j->dels = vl_calloc(n, sizeof *j->dels);
    for (size_t i = 0; i < n; i++) {
        const vl_lake_segment *g = &c->lake.segs[chosen[i]];
        j->dels[i].rows = vl_malloc((g->ndeleted + 1) * sizeof(uint32_t));
        if (g->ndeleted)
            memcpy(j->dels[i].rows, g->deleted, g->ndeleted * sizeof(uint32_t));
        j->dels[i].n = g->ndeleted;
    }
    return j;
}

/* ---- run (background) ---- */

typedef struct {
    char **keys;
    uint32_t *lens;
    float *vecs;
    int64_t *seqs;
    uint64_t n, cap;
    uint32_t dim;
} merged_rows;

static void push_row(merged_rows *m, const vl_segment *s, uint64_t r)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 1024;
        m->keys = vl_realloc(m->keys, m->cap * sizeof *m->keys);
        m->lens = vl_realloc(m->lens, m->cap * sizeof *m->lens);
        m->seqs = vl_realloc(m->seqs, m->cap * sizeof *m->seqs);
        m->vecs = vl_realloc(m->vecs, m->cap * m->dim * sizeof(float));
    }
    uint32_t len = (uint32_t)(s->key_offs[r + 1] - s->key_offs[r]);
    m->keys[m->n] = vl_strndup(s->key_data + s->key_offs[r], len);
    m->lens[m->n] = len;
    m->seqs[m->n] = s->seqs[r];
    memcpy(m->vecs + m->n * m->dim, s->vecs + r * s->dim, m->dim * sizeof(float));
    m->n++;
}

static void free_merged(merged_rows *m)
{
    for (uint64_t i = 0; i < m->n; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->lens);
    free(m->vecs);
    free(m->seqs);
}

/* Read chosen segment k, keep its live rows, fill its remap table. */
static vl_status gather(vl_lake_job *j, size_t k, merged_rows *m)
{
    const vl_manifest_segment *g = &j->base.segs[j->chosen[k]];
    vl_segment seg;
    uint32_t *ignored;
    uint64_t nignored;
    vl_status st =
        vl_lake_read_segment(j->store, g, j->base.dim, &seg, &ignored, &nignored, &j->err);
    if (st != VL_OK)
        return st;
    free(ignored); /* the job's copy of the deletion set is the one to honour */
    const vl_job_deletes *d = &j->dels[k];
    j->remap[k] = vl_malloc((seg.nrows + 1) * sizeof(uint32_t));
    uint64_t di = 0;
    for (uint64_t r = 0; r < seg.nrows; r++) {
        if (di < d->n && d->rows[di] == r) {
            di++;
            j->remap[k][r] = VL_ROW_NONE;
            continue;
        }
        j->remap[k][r] = (uint32_t)m->n;
        push_row(m, &seg, r);
    }
    vl_segment_free(&seg);
    return VL_OK;
}

static vl_status write_merged(vl_lake_job *j, const merged_rows *m, vl_manifest_segment *g)
{
    vl_segment_rows rows = {m->n, m->dim, (const char *const *)m->keys, m->lens, m->vecs, m->seqs};
    return vl_lake_store_segment(j, &rows, g);
}

static int is_chosen(const vl_lake_job *j, size_t i)
{
    for (size_t k = 0; k < j->nchosen; k++)
        if (j->chosen[k] == i)
            return 1;
    return 0;
}

void vl_compact_run(vl_lake_job *j)
{
    merged_rows m = {0};
    m.dim = j->base.dim;
    j->remap = vl_calloc(j->nchosen, sizeof *j->remap);
    j->st = VL_OK;
    for (size_t k = 0; k < j->nchosen && j->st == VL_OK; k++)
        j->st = gather(j, k, &m);
    vl_manifest *r = &j->result;
    *r = j->base;
    r->segs = vl_calloc(j->base.nsegs + 1, sizeof *r->segs);
    r->nsegs = 0;
    for (size_t i = 0; i < j->base.nsegs; i++)
        if (!is_chosen(j, i))
            r->segs[r->nsegs++] = j->base.segs[i];
    if (j->st == VL_OK && m.n)
        j->st = write_merged(j, &m, &r->segs[r->nsegs++]);
    r->version = j->new_version;
    r->parent = j->base.version;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    r->created_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (j->st == VL_OK)
        j->st = vl_lake_job_commit(j, r);
    free_merged(&m);
}

/* ---- complete (owner thread) ---- */

/* Chosen index of segment id, or -1. */
static long chosen_of(const vl_lake_job *j, const long *ids, uint32_t id)
{
    for (size_t k = 0; k < j->nchosen; k++)
        if (ids[k] == (long)id)
            return (long)k;
    return -1;
}

static void remap_rows(vl_collection *c, const vl_lake_job *j, const long *ids, uint32_t new_id)
{
    uint64_t n = atomic_load(&c->rows->nrows);
    for (uint64_t r = 0; r < n; r++) {
        uint32_t seg, row;
        vl_rowstore_location(c->rows, (uint32_t)r, &seg, &row);
        long k = seg == VL_SEG_NONE ? -1 : chosen_of(j, ids, seg);
        if (k < 0)
            continue;
        uint32_t to = j->remap[k][row];
        vl_rowstore_set_location(c->rows, (uint32_t)r, to == VL_ROW_NONE ? VL_SEG_NONE : new_id,
                                 to == VL_ROW_NONE ? 0 : to);
    }
}

void vl_compact_complete(vl_engine *e, vl_lake_job *j)
{
    vl_collection *c = vl_lake_job_target(e, j);
    if (!c)
        return;
    vl_lake *l = &c->lake;
    long *ids = vl_malloc(j->nchosen * sizeof *ids);
    for (size_t k = 0; k < j->nchosen; k++)
        ids[k] = l->segs[j->chosen[k]].id;
    int has_new = j->result.nsegs > j->base.nsegs - j->nchosen;
    uint32_t new_id = l->next_seg_id++;
    vl_lake_segment merged = {.id = new_id};
    /* Pending deletions of merged segments move to the new rows. */
    for (size_t k = 0; k < j->nchosen; k++) {
        vl_lake_segment *g = &l->segs[j->chosen[k]];
        for (size_t p = 0; p < g->npending; p++) {
            uint32_t to = j->remap[k][g->pending[p].row];
            if (to == VL_ROW_NONE)
                continue;
            if (merged.npending == merged.cap_pending) {
                merged.cap_pending = merged.cap_pending ? merged.cap_pending * 2 : 16;
                merged.pending =
                    vl_realloc(merged.pending, merged.cap_pending * sizeof *merged.pending);
            }
            merged.pending[merged.npending++] = (vl_pending_delete){to, g->pending[p].lsn};
        }
        vl_lake_segment_free(g);
    }
    size_t w = 0;
    for (size_t i = 0; i < l->head.nsegs; i++)
        if (!is_chosen(j, i))
            l->segs[w++] = l->segs[i];
    if (has_new)
        l->segs[w++] = merged;
    else
        vl_lake_segment_free(&merged);
    remap_rows(c, j, ids, new_id);
    free(ids);
    vl_lake_job_adopt_head(l, j, j->result.nsegs);
    e->compactions++;
    vl_lake_job_after_commit(e, c);
    vl_lake_publish_indexes(c);
}
