/*
 * lake_index.c - segment index files in the lake: the background build of
 * a sealed segment's index, loading index files at open, listing built
 * files in the next committed version, and publishing a collection's
 * index set.
 *
 * Decisions (measured: an HNSW build of 40,000 x 128 rows took 24 s on the
 * shared 2-core machine, the flush of the same rows well under a second):
 *  - Builds run on a thread of their own, beside the lake job (flush,
 *    compaction), never inside it: a flush stays as fast as writing the
 *    segment, so the WAL is trimmed and SAVE returns as before, and the next
 *    flush never waits for an index.  One build at a time, engine-wide.
 *  - Writes never wait: until its index is built, a segment's rows are
 *    scanned exactly, like the memtable.  The unindexed tail is bounded by
 *    the flush thresholds (the memtable) plus the segments still queued
 *    for a build.
 *  - A build reads the segment from the store (the segment is the truth:
 *    the index covers every row, deleted ones too, in file order) and
 *    stores "tables/<coll>/indexes/<segment stem>-<8 hex>.<hnsw|ivf>" (a
 *    random part, so a rebuild never reuses a name another version lists).
 *    The finished index is searched at once and its file is written into
 *    the in-memory head; the next commit lists it.  When nothing else is
 *    due, an index job commits the head again (same content, same
 *    wal_lsn, like a compaction) so the file is listed and the next start
 *    loads it instead of building again.
 *  - A segment listed without a usable index (manifests from before
 *    indexes; a damaged, truncated or missing file found at open; a
 *    collection whose index parameters changed from flat) is simply a
 *    segment without an index: the same build picks it up.  A damaged file
 *    is never patched in place.
 *  - With tail indexes on (tail_index.h), a segment already a fifth
 *    deleted gets no build: compaction rewrites it soon, and its live rows
 *    are in tail pieces meanwhile.
 *  - While a build runs, GC keeps every index file (the new one is not
 *    referenced yet) and the segment being read; it counts files in the
 *    in-memory head as referenced.  A close lists what was built.
 *  - An index loaded from an older file format (HNSW version 1, without
 *    its SQ8 codes) serves at once and is written anew in the current
 *    format by the same background thread, as a "build" that only encodes
 *    the loaded index (no segment read; not counted in index_builds), then
 *    listed like a build: an old lake pays the slower load once.
 *  - An index file's bytes are checked once, by the decoder's trailing
 *    CRC-32C.  The manifest's whole-file CRC-32C is that same check (see
 *    index_file_crc) and is compared as the constant it is, not recomputed:
 *    recomputing it was a second pass over the file at every start (about
 *    90 ms at 1M x 384 HNSW, a 0.5 GB file).  The size is still compared.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/engine_internal.h"
#include "core/index_set.h"
#include "core/tail_index.h"
#include "storage/crc32c.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/log.h"

struct vl_index_build {
    vl_objstore *store;
    char coll[VL_MAX_COLLECTION_NAME + 1];
    uint32_t seg_id;
    vl_manifest_segment seg; /* the entry it builds for (idx filled on success) */
    uint32_t dim;
    vl_metric metric;
    vl_index_params params;
    int rebuild; /* replaces a damaged file */
    int rewrite; /* ix is the loaded index of an outdated file: only encode it */
    vl_seg_index *ix;
    vl_status st;
    vl_error err;
    atomic_int cancel, done;
    int job_fd;
    pthread_t thread;
};

/* ---- loading ---- */

/* The CRC-32C every intact index file has: each format ends in the CRC-32C
 * of the bytes before it, and the CRC of any bytes followed by their own
 * CRC (little-endian) is one constant, that of four zero bytes (the empty
 * string's CRC is 0).  So the whole-file CRC the manifest records is this
 * number for every file the build wrote, and recomputing it over the file
 * would only repeat the decoder's trailing-CRC check; the file is read
 * once, by the decoder. */
static uint32_t index_file_crc(void)
{
    static const uint8_t zeros[4];
    return vl_crc32c(0, zeros, sizeof zeros);
}

vl_status vl_lake_load_index(vl_objstore *s, const vl_manifest_segment *g, const float *vecs,
                             uint32_t dim, vl_metric metric, vl_seg_index **out, vl_error *err)
{
    const void *data;
    size_t len;
    int mapped;
    *out = NULL;
    vl_status st = vl_obj_read(s, g->idx.name, &data, &len, &mapped, err);
    if (st == VL_ERR_NOTFOUND)
        return vl_fail(err, VL_ERR_CORRUPT, "%s: missing (the manifest references it)",
                       g->idx.name);
    if (st != VL_OK)
        return st;
    if (len != g->idx.bytes || g->idx.crc32c != index_file_crc()) {
        vl_obj_release(s, data, len, mapped);
        return vl_fail(err, VL_ERR_CORRUPT,
                       "%s: damaged (size or CRC-32C differs from the manifest's record)",
                       g->idx.name);
    }
    vl_error derr;
    st = vl_seg_index_decode(g->idx.kind, data, len, vecs, (uint32_t)g->rows, dim, metric, out,
                             &derr);
    vl_obj_release(s, data, len, mapped);
    if (st != VL_OK)
        return vl_fail(err, VL_ERR_CORRUPT, "%s: %s", g->idx.name, derr.msg);
    return VL_OK;
}

void vl_lake_publish_indexes(vl_collection *c)
{
    vl_lake_publish_indexes_keeping(c, UINT64_MAX);
}

void vl_lake_publish_indexes_keeping(vl_collection *c, uint64_t keep_lsn)
{
    const vl_lake *l = &c->lake;
    size_t n = l->head.nsegs;
    uint32_t *ids = vl_malloc((n ? n : 1) * sizeof *ids);
    vl_seg_index **ixs = vl_malloc((n ? n : 1) * sizeof *ixs);
    for (size_t i = 0; i < n; i++) {
        ids[i] = l->segs[i].id;
        ixs[i] = l->segs[i].index;
    }
    size_t ntails;
    const vl_row_index *tails = vl_tail_pieces(c, &ntails);
    vl_index_set *s = vl_index_set_build(c->rows, atomic_load(&c->rows->nrows), ids, ixs, n, tails,
                                         ntails, keep_lsn);
    vl_index_set_unref(c->iset);
    c->iset = s;
    vl_tail_prune(c, s);
    free(ids);
    free(ixs);
}

/* ---- the build (background thread) ---- */

/* Encode b->ix and store it under a fresh name (b->seg.idx). */
static vl_status store_index(struct vl_index_build *b)
{
    uint8_t *buf;
    size_t len;
    vl_status st = vl_seg_index_encode(b->ix, &buf, &len, &b->err);
    if (st != VL_OK)
        return st;
    uint32_t id = 0; /* a random part, so a rebuild never reuses a listed name */
    if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id)
        id = (uint32_t)vl_monotonic_ms();
    const char *base = strrchr(b->seg.name, '/');
    base = base ? base + 1 : b->seg.name;
    int stem = (int)(strlen(base) - strlen(".parquet"));
    vl_index_file *f = &b->seg.idx;
    snprintf(f->name, sizeof f->name, "tables/%s/indexes/%.*s-%08x.%s", b->coll, stem, base, id,
             vl_seg_index_suffix(b->params.kind));
    f->kind = vl_seg_index_kind(b->ix);
    f->bytes = len;
    f->crc32c = vl_crc32c(0, buf, len);
    st = vl_obj_put(b->store, f->name, buf, len, &b->err);
    free(buf);
    return st;
}

static void *build_main(void *arg)
{
    struct vl_index_build *b = arg;
    vl_segment seg;
    uint32_t *deleted;
    uint64_t ndeleted;
    b->seg.idx.name[0] = '\0';
    if (b->rewrite) {
        b->st = store_index(b);
    } else {
        b->st = vl_lake_read_segment(b->store, &b->seg, b->dim, &seg, &deleted, &ndeleted, &b->err);
        if (b->st == VL_OK) {
            free(deleted); /* an index covers every row; deletions are a search filter */
            b->st = vl_seg_index_build(&b->params, b->metric, seg.vecs, (uint32_t)seg.nrows, b->dim,
                                       &b->cancel, &b->ix, &b->err);
            vl_segment_free(&seg);
        }
        if (b->st == VL_OK)
            b->st = store_index(b);
    }
    vl_background_signal(&b->done, b->job_fd);
    return NULL;
}

/* A segment with a fifth of its rows deleted (committed or not) is rewritten
 * by the next compaction or dropped by the next flush: with tail indexes
 * on, its live rows are reached through them meanwhile, and a build for it
 * would be thrown away (under a stream that rewrites keys in place every
 * segment is dead within seconds, and such builds kept a core busy). */
static int doomed(const vl_engine *e, const vl_lake_segment *g, uint64_t rows)
{
    return e->opt.tail_index_rows && (g->ndeleted + g->npending) * 5 >= rows;
}

static int wants_index(const vl_engine *e, const vl_collection *c, size_t i)
{
    uint64_t rows = c->lake.head.segs[i].rows;
    return !c->lake.segs[i].index && !doomed(e, &c->lake.segs[i], rows) &&
           vl_seg_index_wanted(&c->index, rows, e->opt.index_min_rows);
}

/* A loaded index whose file is of an older format: written anew. */
static int wants_rewrite(const vl_collection *c, size_t i)
{
    return c->lake.segs[i].index && c->lake.segs[i].index_outdated &&
           !c->lake.segs[i].index_unlisted;
}

void vl_index_build_start(vl_engine *e)
{
    if (e->build || e->failed || vl_monotonic_ms() < e->index_backoff_until ||
        (e->job && e->job->kind == VL_JOB_GC)) /* GC would take its new file for garbage */
        return;
    for (size_t k = 0; k < e->ncolls; k++) {
        vl_collection *c = &e->colls[k];
        for (size_t i = 0; i < c->lake.head.nsegs; i++) {
            int rewrite = wants_rewrite(c, i);
            if (!rewrite && !wants_index(e, c, i))
                continue;
            struct vl_index_build *b = vl_calloc(1, sizeof *b);
            b->store = e->store;
            snprintf(b->coll, sizeof b->coll, "%s", c->name);
            b->seg_id = c->lake.segs[i].id;
            b->seg = c->lake.head.segs[i];
            b->dim = c->lake.head.dim;
            b->metric = c->metric;
            b->params = c->index;
            b->rebuild = c->lake.segs[i].index_damaged;
            b->rewrite = rewrite;
            if (rewrite) {
                b->ix = c->lake.segs[i].index;
                vl_seg_index_ref(b->ix);
            }
            b->job_fd = e->job_fd;
            if (pthread_create(&b->thread, NULL, build_main, b) != 0) {
                vl_seg_index_unref(b->ix);
                free(b);
                return;
            }
            e->build = b;
            return;
        }
    }
}

const char *vl_index_build_segment(const vl_engine *e)
{
    return e->build->seg.name;
}

int vl_index_build_done(const vl_engine *e)
{
    return e->build && atomic_load(&e->build->done);
}

/* Attach b's index to its segment if that segment is still in the head. */
static int adopt_build(vl_engine *e, struct vl_index_build *b)
{
    vl_collection *c = vl_engine_find(e, b->coll);
    long i = c ? vl_lake_find_segment(&c->lake, b->seg_id) : -1;
    if (i < 0 || strcmp(c->lake.head.segs[i].name, b->seg.name) != 0)
        return 0; /* compacted or cleared away meanwhile: the file is garbage */
    vl_lake_segment *g = &c->lake.segs[i];
    if (b->rewrite && g->index != b->ix)
        return 0; /* another index took its place meanwhile */
    vl_seg_index_unref(g->index);
    g->index = b->ix;
    b->ix = NULL;
    g->index_damaged = 0;
    g->index_outdated = 0;
    g->index_unlisted = 1;
    g->file = b->seg.idx;
    c->lake.head.segs[i].idx = b->seg.idx;
    if (b->rewrite)
        vl_log(VL_LOG_INFO, "%s: index of %s written anew in the current format as %s", b->coll,
               b->seg.name, b->seg.idx.name);
    else
        e->index_builds++;
    e->index_rebuilds += b->rebuild;
    vl_lake_publish_indexes(c);
    return 1;
}

void vl_index_build_finish(vl_engine *e, int wait)
{
    struct vl_index_build *b = e->build;
    if (!b || !vl_background_join(b->thread, &b->done, &b->cancel, wait))
        return;
    e->build = NULL;
    if (b->st == VL_OK) {
        adopt_build(e, b);
    } else if (!(wait && b->st == VL_ERR_BUSY)) {
        vl_log(VL_LOG_WARNING, "%s: index %s of %s failed: %s", b->coll,
               b->rewrite ? "rewrite" : "build", b->seg.name, b->err.msg);
        e->last_job_error = b->err;
        e->index_backoff_until = vl_monotonic_ms() + 10000;
    }
    vl_seg_index_unref(b->ix);
    free(b);
    if (e->gc_pending && !e->job && !e->version_loads) {
        e->gc_pending = 0;
        for (size_t k = 0; k < e->ncolls; k++)
            vl_lake_gc(e, &e->colls[k]);
    }
}

/* ---- listing built files: the index job ---- */

vl_lake_job *vl_index_prepare(vl_engine *e, vl_collection *c)
{
    const vl_lake *l = &c->lake;
    int unlisted = 0;
    for (size_t i = 0; i < l->head.nsegs; i++)
        unlisted |= l->segs[i].index_unlisted;
    if (!unlisted || vl_lake_dirty(l) || l->head.version == 0)
        return NULL; /* a flush lists them anyway */
    vl_lake_job *j = vl_calloc(1, sizeof *j);
    j->kind = VL_JOB_INDEX;
    j->store = e->store;
    snprintf(j->coll, sizeof j->coll, "%s", c->name);
    vl_manifest_copy(&j->base, &l->head);
    j->new_version = l->top_version + 1;
    return j;
}

void vl_index_list_pending(vl_engine *e)
{
    for (size_t k = 0; k < e->ncolls && !e->failed && !e->job && !vl_engine_fenced(e); k++) {
        vl_lake_job *j = vl_index_prepare(e, &e->colls[k]);
        if (j) {
            vl_lake_job_start(e, j, 0);
            vl_lake_job_finish(e, NULL);
        }
    }
}

void vl_index_run(vl_lake_job *j)
{
    vl_manifest *r = &j->result;
    vl_manifest_copy(r, &j->base);
    r->version = j->new_version;
    r->parent = j->base.version;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    r->created_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    j->st = vl_lake_job_commit(j, r);
}

void vl_index_complete(vl_engine *e, vl_lake_job *j)
{
    vl_collection *c = vl_lake_job_target(e, j);
    if (!c)
        return;
    vl_lake_job_adopt_head(&c->lake, j, j->result.nsegs);
    vl_lake_job_after_commit(e, c);
}
