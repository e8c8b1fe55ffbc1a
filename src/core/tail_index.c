/*
 * tail_index.c - building, renumbering and dropping the pieces of the
 * unindexed tail (see tail_index.h for the decisions).
 *
 * The owner thread chooses a piece's rows and publishes the finished
 * index; a thread of its own copies the rows' vectors and builds the HNSW,
 * signalling the engine's eventfd like the segment build.  One piece is in
 * flight at a time, engine-wide; the next one starts as soon as it is
 * adopted.
 */
#include "core/tail_index.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/log.h"

/* The pieces' build: cheap, since rows arrive faster than an
 * ef_construction-200 graph absorbs them (tail_index.h). */
#define TAIL_M 16

typedef struct {
    vl_seg_index *ix;
    uint32_t *rows; /* ascending rows of the generation, VL_ROW_NONE once reclaimed */
} tail_piece;

struct vl_tail {
    vl_rowstore *rows; /* the generation the pieces number (a reference) */
    tail_piece *pieces;
    size_t n, cap;
    vl_row_index *view; /* vl_tail_pieces' answer */
    uint64_t next;      /* rows below were offered to a piece (or skipped) */
};

struct vl_tail_build {
    char coll[VL_MAX_COLLECTION_NAME + 1];
    vl_rowstore *rows; /* the generation it reads (a reference) */
    uint32_t *list;    /* its rows, ascending */
    uint32_t n, dim;
    uint64_t next; /* the cursor once adopted */
    vl_metric metric;
    vl_index_params params;
    /* Reclaims while it ran (owner only; the thread reads list): its rows
     * renumbered for generation remap_to. */
    uint32_t *remapped;
    vl_rowstore *remap_to;
    vl_seg_index *ix;
    vl_status st;
    vl_error err;
    atomic_int cancel, done;
    int job_fd;
    pthread_t thread;
};

static struct vl_tail *tail_of(vl_collection *c)
{
    if (!c->tail)
        c->tail = vl_calloc(1, sizeof *c->tail);
    return c->tail;
}

static void free_pieces(struct vl_tail *t)
{
    for (size_t i = 0; i < t->n; i++) {
        vl_seg_index_unref(t->pieces[i].ix);
        free(t->pieces[i].rows);
    }
    t->n = 0;
    t->next = 0;
    vl_rowstore_unref(t->rows);
    t->rows = NULL;
}

void vl_tail_drop(vl_collection *c)
{
    if (!c->tail)
        return;
    free_pieces(c->tail);
    free(c->tail->pieces);
    free(c->tail->view);
    free(c->tail);
    c->tail = NULL;
}

/* Point t at generation rs (dropping pieces of another one). */
static void follow_generation(struct vl_tail *t, vl_rowstore *rs)
{
    if (t->rows == rs)
        return;
    free_pieces(t);
    vl_rowstore_ref(rs);
    t->rows = rs;
}

const vl_row_index *vl_tail_pieces(vl_collection *c, size_t *n)
{
    *n = 0;
    if (!c->tail)
        return NULL;
    struct vl_tail *t = c->tail;
    follow_generation(t, c->rows);
    free(t->view);
    t->view = vl_malloc((t->n ? t->n : 1) * sizeof *t->view);
    for (size_t i = 0; i < t->n; i++)
        t->view[i] = (vl_row_index){t->pieces[i].ix, t->pieces[i].rows};
    *n = t->n;
    return t->view;
}

void vl_tail_prune(vl_collection *c, const vl_index_set *set)
{
    struct vl_tail *t = c->tail;
    if (!t || (set && set->rows != t->rows))
        return;
    size_t w = 0;
    for (size_t i = 0; i < t->n; i++) {
        int used = 0;
        for (size_t k = set ? set->n - set->ntails : 0; set && k < set->n && !used; k++)
            used = set->entries[k].ix == t->pieces[i].ix;
        if (used) {
            t->pieces[w++] = t->pieces[i];
        } else {
            vl_seg_index_unref(t->pieces[i].ix);
            free(t->pieces[i].rows);
        }
    }
    t->n = w;
}

/* ---- renumbering at a reclaim ---- */

/* rank[r]: live rows of rs before row r, for r <= n (the row numbers
 * vl_rowstore_compact gives them). */
static uint32_t *live_ranks(const vl_rowstore *rs, uint64_t n)
{
    uint32_t *rank = vl_malloc((n + 1) * sizeof *rank);
    uint32_t live = 0;
    for (uint64_t r = 0; r < n; r++) {
        rank[r] = live;
        live += vl_rowstore_del_lsn(rs, (uint32_t)r) == 0;
    }
    rank[n] = live;
    return rank;
}

static void renumber(uint32_t *list, uint32_t n, const vl_rowstore *rs, const uint32_t *rank,
                     uint64_t nrows)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r = list[i];
        list[i] =
            r == VL_ROW_NONE || r >= nrows || vl_rowstore_del_lsn(rs, r) ? VL_ROW_NONE : rank[r];
    }
}

void vl_tail_rebase(vl_engine *e, vl_collection *c, vl_rowstore *fresh)
{
    struct vl_tail_build *b = e->tail_build;
    int build_here =
        b && strcmp(b->coll, c->name) == 0 && (b->remap_to ? b->remap_to : b->rows) == c->rows;
    struct vl_tail *t = c->tail;
    if (!build_here && (!t || t->rows != c->rows))
        return;
    uint64_t n = atomic_load(&c->rows->nrows);
    uint32_t *rank = live_ranks(c->rows, n);
    if (build_here) {
        if (!b->remapped) {
            b->remapped = vl_malloc(b->n * sizeof *b->remapped);
            memcpy(b->remapped, b->list, b->n * sizeof *b->remapped);
        }
        renumber(b->remapped, b->n, c->rows, rank, n);
        b->next = rank[b->next < n ? b->next : n];
        vl_rowstore_unref(b->remap_to);
        vl_rowstore_ref(fresh);
        b->remap_to = fresh;
    }
    if (t && t->rows == c->rows) {
        for (size_t i = 0; i < t->n; i++)
            renumber(t->pieces[i].rows, vl_seg_index_rows(t->pieces[i].ix), c->rows, rank, n);
        t->next = rank[t->next < n ? t->next : n];
        vl_rowstore_unref(t->rows);
        vl_rowstore_ref(fresh);
        t->rows = fresh;
    }
    free(rank);
}

/* ---- the build (its own thread) ---- */

static void *build_main(void *arg)
{
    struct vl_tail_build *b = arg;
    vl_chunk_dir *dir = atomic_load_explicit(&b->rows->dir, memory_order_acquire);
    float *vecs = vl_malloc((size_t)b->n * b->dim * sizeof *vecs);
    for (uint32_t i = 0; i < b->n; i++) {
        uint32_t r = b->list[i];
        memcpy(vecs + (size_t)i * b->dim,
               vl_rowstore_chunk(dir, r)->vecs + (size_t)(r % VL_CHUNK_ROWS) * b->dim,
               b->dim * sizeof *vecs);
    }
    b->st =
        vl_seg_index_build(&b->params, b->metric, vecs, b->n, b->dim, &b->cancel, &b->ix, &b->err);
    free(vecs);
    vl_background_signal(&b->done, b->job_fd);
    return NULL;
}

/* The segment c's row r lives in has an index covering it. */
static int in_indexed_segment(const vl_collection *c, uint64_t r, long *last)
{
    uint32_t seg, seg_row;
    vl_rowstore_location(c->rows, (uint32_t)r, &seg, &seg_row);
    if (seg == VL_SEG_NONE)
        return 0;
    const vl_lake *l = &c->lake;
    if (*last < 0 || (size_t)*last >= l->head.nsegs || l->segs[*last].id != seg) {
        *last = vl_lake_find_segment(l, seg);
        if (*last < 0)
            return 0;
    }
    const vl_seg_index *ix = l->segs[*last].index;
    return ix && seg_row < vl_seg_index_rows(ix);
}

/* The next piece of c: want live rows not in an indexed segment from the
 * cursor on; 0 when there are fewer (the cursor moves to the first). */
static int choose_rows(vl_collection *c, uint32_t want, uint32_t *list, uint64_t *next)
{
    struct vl_tail *t = tail_of(c);
    follow_generation(t, c->rows);
    uint64_t nrows = atomic_load(&c->rows->nrows);
    uint32_t got = 0;
    long last = -1;
    uint64_t r = t->next;
    for (; r < nrows && got < want; r++) {
        if (vl_rowstore_del_lsn(c->rows, (uint32_t)r) || in_indexed_segment(c, r, &last))
            continue;
        if (got == 0)
            t->next = r;
        list[got++] = (uint32_t)r;
    }
    if (got == 0)
        t->next = r;
    *next = r;
    return got == want;
}

void vl_tail_start(vl_engine *e)
{
    uint32_t want = e->opt.tail_index_rows;
    if (e->tail_build || e->failed || want == 0)
        return;
    uint32_t *list = vl_malloc(want * sizeof *list);
    for (size_t k = 0; k < e->ncolls; k++) {
        vl_collection *c = &e->colls[k];
        uint64_t next;
        if (c->index.kind == VL_INDEX_FLAT || c->rows->dim == 0 ||
            !choose_rows(c, want, list, &next))
            continue;
        struct vl_tail_build *b = vl_calloc(1, sizeof *b);
        snprintf(b->coll, sizeof b->coll, "%s", c->name);
        vl_rowstore_ref(c->rows);
        b->rows = c->rows;
        b->list = list;
        b->n = want;
        b->dim = c->rows->dim;
        b->next = next;
        b->metric = c->metric;
        b->params = (vl_index_params){.kind = VL_INDEX_HNSW,
                                      .quant = VL_QUANT_SQ8,
                                      .hnsw_m = TAIL_M,
                                      .hnsw_ef_construction = e->opt.tail_ef_construction};
        b->job_fd = e->job_fd;
        if (pthread_create(&b->thread, NULL, build_main, b) != 0) {
            vl_rowstore_unref(b->rows);
            free(b);
            break;
        }
        e->tail_build = b;
        return;
    }
    free(list);
}

/* Add b's piece to its collection if its rows still number that
 * generation; 1 when adopted. */
static int adopt(vl_engine *e, struct vl_tail_build *b)
{
    vl_collection *c = vl_engine_find(e, b->coll);
    vl_rowstore *gen = b->remap_to ? b->remap_to : b->rows;
    if (!c || !c->tail || c->rows != gen || c->tail->rows != gen)
        return 0;
    struct vl_tail *t = c->tail;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->pieces = vl_realloc(t->pieces, t->cap * sizeof *t->pieces);
    }
    uint32_t **rows = b->remapped ? &b->remapped : &b->list;
    t->pieces[t->n++] = (tail_piece){b->ix, *rows};
    b->ix = NULL;
    *rows = NULL;
    if (t->next < b->next)
        t->next = b->next;
    e->tail_builds++;
    vl_lake_publish_indexes_keeping(c, vl_durable_lsn(e)); /* durable readers never wait */
    return 1;
}

void vl_tail_finish(vl_engine *e, int wait)
{
    struct vl_tail_build *b = e->tail_build;
    if (!b || !vl_background_join(b->thread, &b->done, &b->cancel, wait))
        return;
    e->tail_build = NULL;
    if (b->st == VL_OK)
        adopt(e, b);
    else if (!(wait && b->st == VL_ERR_BUSY))
        vl_log(VL_LOG_WARNING, "%s: tail index build failed: %s", b->coll, b->err.msg);
    vl_seg_index_unref(b->ix);
    vl_rowstore_unref(b->rows);
    vl_rowstore_unref(b->remap_to);
    free(b->list);
    free(b->remapped);
    free(b);
}
