/*
 * follow.c - a read-only engine keeping up with the writer's store: its
 * committed versions and, on top of them, the WAL objects no version
 * covers yet (docs/lake.md, Followers).
 *
 * Decisions:
 *  1. Listing is the truth (docs/lake.md, Reading a version): a run lists
 *     the WAL objects, then the descriptors and each collection's
 *     manifests, and loads the newest version of every collection whose
 *     newest is above the one served.  No hint object, nothing written: a
 *     follower is invisible to the writer and to other followers.
 *  2. The WAL is listed first, on purpose.  The writer removes an object
 *     only once committed versions cover it, so the objects listed at that
 *     instant hold every record no version of that instant covers, and the
 *     versions loaded afterwards are at least those.  Objects are then read
 *     in number order; one removed between our list and our read (a flush
 *     committed meanwhile) ends the run's reading there: the next run loads
 *     that flush's version.  The follower never skips a record it needs.
 *  3. Every object read is what the writer's own recovery would replay
 *     (storage/wal_store.c: every object that exists was created by a
 *     writer that won its number, and a new writer replays all of them), so
 *     the follower applies every object, empty claims included, with the
 *     same checks: CRC-32C and framing of each record, LSNs consecutive
 *     within an object and from one object to the next, collections named
 *     by a descriptor, one dimension per collection.  An object that fails
 *     a check is never applied, nor anything after it; the run reports it.
 *  4. A new version is loaded whole into a new row store generation
 *     (through the object cache, so a segment is downloaded once), off the
 *     owner thread, and the WAL records above its wal_lsn that the served
 *     generation already shows are applied to it too before end swaps it
 *     in, so a write once visible never disappears.  For that the follower
 *     keeps the bytes of the objects it applied until every collection
 *     they touch serves a version covering them (the follow log), at most
 *     FOLLOW_LOG_BYTES (the first object always fits): past that it reads
 *     no further until a version lets it drop some, and the lag grows to one flush (the writer's
 * default flush thresholds, 100000 rows or 256 MiB of WAL, usually keep within it).
 *  5. The objects read in a run are applied in end, on the owner thread,
 *     in one go: a snapshot (opened on that thread) sees all of them or
 *     none, never half a batch, and searches in flight keep theirs (MVCC).
 *  6. A version that fails to load (typically: the writer's GC removed a
 *     segment of it between our list and our read) leaves the collection
 *     as it was; the error is reported and the next run tries the then
 *     newest version.  When the objects read do not follow on from the
 *     last one applied (the first run, or ones removed in between), the
 *     records in between are covered only by the newest versions: such a
 *     run applies its objects only if every collection's load succeeded.
 *  7. Collections are only ever added: the writer never drops one.
 *  8. A run fetches the objects it lists FETCH_THREADS at a time (each
 *     batch of the writer is one small object, so a run behind by an
 *     interval has about one object per batch to GET, and one after the
 *     other their round trips, not the interval, would set the lag), then
 *     checks and keeps them strictly in number order.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine_internal.h"
#include "storage/descriptor.h"
#include "util/alloc.h"
#include "util/error.h"

#define FOLLOW_LOG_BYTES (256u * 1024 * 1024)
#define FETCH_THREADS 8 /* the S3 client pools 8 connections */

/* Per collection named in an object: its newest LSN there. */
typedef struct {
    char name[VL_MAX_COLLECTION_NAME + 1];
    uint64_t last;
} obj_coll;

/* A WAL object read and checked. */
typedef struct {
    uint64_t seq;
    unsigned char *data;
    size_t len;
    obj_coll *colls;
    size_t ncolls;
} wal_obj;

typedef struct {
    wal_obj *objs; /* ascending seq */
    size_t n, cap;
    uint64_t bytes; /* of their data */
} obj_list;

/* What a follower keeps between runs (decision 4). */
struct vl_follow_log {
    obj_list kept;  /* applied, and needed again if a collection reloads */
    uint64_t limit; /* of kept.bytes (decision 4) */
    uint64_t seq;   /* newest object read, 0: none yet */
    uint64_t lsn;   /* newest record read and applied, 0: none yet */
    int chained;    /* lsn is the last LSN before object seq + 1 */
};

typedef struct {
    vl_collection priv; /* name, metric, index; lake and rows of a newer version */
    uint64_t served;    /* version the engine served at begin */
    uint64_t covered;   /* wal_lsn of the version it will serve */
    uint32_t dim;       /* dimension after the records checked so far */
    int loaded;         /* priv holds a newer version */
    uint64_t index_loads;
} follow_coll;

struct vl_follow {
    vl_objstore *store;
    struct vl_follow_log *log;
    vl_index_params default_index; /* for a descriptor from before indexes */
    follow_coll *colls;
    size_t n, cap;
    vl_wal_object *listed; /* WAL objects above log->seq, listed first */
    size_t nlisted;
    int listed_ok;
    obj_list fresh;    /* read this run, applied in end */
    uint64_t seq, lsn; /* log->seq / lsn after fresh */
    int chained;
    int caught_up; /* every object listed was read */
    vl_status st;  /* the first failure of the run */
    vl_error err;
};

/* ---- the follow log ------------------------------------------------------ */

static void obj_free(wal_obj *o)
{
    free(o->data);
    free(o->colls);
}

static void list_free(obj_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        obj_free(&l->objs[i]);
    free(l->objs);
    memset(l, 0, sizeof *l);
}

static void list_push(obj_list *l, const wal_obj *o)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->objs = vl_realloc(l->objs, l->cap * sizeof *l->objs);
    }
    l->objs[l->n++] = *o;
    l->bytes += o->len;
}

void vl_follow_log_free(struct vl_follow_log *log)
{
    if (!log)
        return;
    list_free(&log->kept);
    free(log);
}

/* ---- begin --------------------------------------------------------------- */

static follow_coll *add_coll(vl_follow *f, const char *name, vl_metric metric,
                             const vl_index_params *index, uint64_t served, uint64_t covered,
                             uint32_t dim)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 4;
        f->colls = vl_realloc(f->colls, f->cap * sizeof *f->colls);
    }
    follow_coll *c = &f->colls[f->n++];
    memset(c, 0, sizeof *c);
    snprintf(c->priv.name, sizeof c->priv.name, "%s", name);
    c->priv.metric = metric;
    c->priv.index = *index;
    c->served = served;
    c->covered = covered;
    c->dim = dim;
    return c;
}

static struct vl_follow_log *follow_log(vl_engine *e)
{
    if (!e->follow_log) {
        e->follow_log = vl_calloc(1, sizeof *e->follow_log);
        e->follow_log->limit = FOLLOW_LOG_BYTES;
    }
    return e->follow_log;
}

void vl_follow_set_log_limit_for_test(vl_engine *e, uint64_t bytes)
{
    follow_log(e)->limit = bytes;
}

vl_follow *vl_follow_begin(vl_engine *e)
{
    follow_log(e);
    vl_follow *f = vl_calloc(1, sizeof *f);
    f->store = e->store;
    f->log = e->follow_log;
    f->default_index = e->opt.index;
    f->seq = f->log->seq;
    f->lsn = f->log->lsn;
    f->chained = f->log->chained;
    for (size_t i = 0; i < e->ncolls; i++) {
        const vl_collection *c = &e->colls[i];
        add_coll(f, c->name, c->metric, &c->index, c->lake.head.version, c->lake.head.wal_lsn,
                 c->rows->dim);
    }
    return f;
}

/* ---- run (any thread) ---------------------------------------------------- */

static void fail(vl_follow *f, vl_status st, const vl_error *err)
{
    if (f->st == VL_OK) {
        f->st = st;
        f->err = *err;
    }
}

static follow_coll *find_coll(vl_follow *f, const char *name, size_t len)
{
    for (size_t i = 0; i < f->n; i++)
        if (strlen(f->colls[i].priv.name) == len && memcmp(f->colls[i].priv.name, name, len) == 0)
            return &f->colls[i];
    return NULL;
}

static void add_new_collections(vl_follow *f)
{
    vl_descriptor *descs = NULL;
    size_t n = 0;
    vl_error err;
    vl_status st = vl_descriptor_load_all(f->store, &descs, &n, &err);
    if (st != VL_OK)
        fail(f, st, &err);
    for (size_t i = 0; i < n; i++)
        if (!find_coll(f, descs[i].name, strlen(descs[i].name)))
            add_coll(f, descs[i].name, descs[i].metric,
                     descs[i].has_index ? &descs[i].index : &f->default_index, 0, 0, 0);
    free(descs);
}

static void load_newer(vl_follow *f, follow_coll *c)
{
    uint64_t *vs = NULL;
    size_t n = 0;
    vl_error err;
    vl_status st = vl_manifest_versions(f->store, c->priv.name, &vs, &n, &err);
    if (st == VL_OK && n && vs[n - 1] > c->served) {
        st = vl_lake_open_version(f->store, c->priv.name, c->priv.metric, vs[n - 1], &c->priv.lake,
                                  &c->priv.rows, &c->index_loads, &err);
        if (st == VL_OK) {
            vl_lake_retain_listed(f->store, &c->priv.lake, vs, n);
            c->priv.lake.top_version = vs[n - 1];
            c->covered = c->priv.lake.head.wal_lsn;
            if (c->covered > f->log->lsn) /* else the served rows have the same records */
                c->dim = c->priv.rows->dim;
            c->loaded = 1;
        }
    }
    if (st != VL_OK)
        fail(f, st, &err);
    free(vs);
}

/* Apply one record to a reloaded collection's private generation if it is
 * that collection's and its version does not cover it. */
static vl_status reapply_record(void *ctx, const vl_wal_record *rec, vl_error *err)
{
    (void)err;
    follow_coll *c = ctx;
    if (rec->coll_len == strlen(c->priv.name) &&
        memcmp(rec->coll, c->priv.name, rec->coll_len) == 0 && rec->lsn > c->covered)
        vl_collection_apply(&c->priv, rec);
    return VL_OK;
}

static void reapply_list(follow_coll *c, const obj_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        vl_wal_object_apply(l->objs[i].seq, l->objs[i].data, l->objs[i].len, reapply_record, c,
                            NULL);
}

/* Checking an object's records as they are read (decision 3). */
typedef struct {
    vl_follow *f;
    wal_obj *obj;
} check_ctx;

static void note_coll(wal_obj *o, const vl_wal_record *rec)
{
    size_t i = 0;
    while (i < o->ncolls && (strlen(o->colls[i].name) != rec->coll_len ||
                             memcmp(o->colls[i].name, rec->coll, rec->coll_len) != 0))
        i++;
    if (i == o->ncolls) {
        o->colls = vl_realloc(o->colls, (o->ncolls + 1) * sizeof *o->colls);
        snprintf(o->colls[i].name, sizeof o->colls[i].name, "%.*s", (int)rec->coll_len, rec->coll);
        o->ncolls++;
    }
    o->colls[i].last = rec->lsn;
}

static vl_status check_record(void *ctx, const vl_wal_record *rec, vl_error *err)
{
    check_ctx *k = ctx;
    follow_coll *c = find_coll(k->f, rec->coll, rec->coll_len);
    if (!c)
        return vl_fail(err, VL_ERR_CORRUPT,
                       "WAL record %" PRIu64 " names collection '%.*s', which has no descriptor",
                       rec->lsn, (int)rec->coll_len, rec->coll);
    note_coll(k->obj, rec);
    if (rec->lsn <= c->covered || rec->lsn <= k->f->log->lsn)
        return VL_OK; /* not applied: the version or an earlier run has it */
    if (rec->type == VL_WAL_CLEAR)
        c->dim = 0;
    else if (rec->type == VL_WAL_PUT && c->dim && c->dim != rec->dim)
        return vl_fail(err, VL_ERR_CORRUPT,
                       "WAL record %" PRIu64 " puts a %u-dimensional vector into '%s' "
                       "(dimension %u)",
                       rec->lsn, rec->dim, c->priv.name, c->dim);
    else if (rec->type == VL_WAL_PUT)
        c->dim = rec->dim;
    return VL_OK;
}

/* 1 when every collection o touches serves (or will, once end swaps the
 * versions of this run in) a version covering it: no reload needs it. */
static int covered_by_versions(vl_follow *f, const wal_obj *o)
{
    for (size_t i = 0; i < o->ncolls; i++) {
        const follow_coll *c = find_coll(f, o->colls[i].name, strlen(o->colls[i].name));
        if (c && c->covered < o->colls[i].last)
            return 0;
    }
    return 1;
}

/* Fetching the listed objects, FETCH_THREADS at a time (decision 8). */
typedef struct {
    vl_objstore *store;
    const vl_wal_object *objs;
    size_t n;
    atomic_size_t next;
    void **data;
    size_t *len;
    vl_status *st;
    vl_error *err;
} fetch_pool;

static void *fetch_some(void *arg)
{
    fetch_pool *p = arg;
    for (size_t i; (i = atomic_fetch_add(&p->next, 1)) < p->n;)
        if (p->objs[i].size)
            p->st[i] =
                vl_wal_store_get(p->store, p->objs[i].seq, &p->data[i], &p->len[i], &p->err[i]);
    return NULL;
}

static void fetch_all(fetch_pool *p)
{
    pthread_t t[FETCH_THREADS - 1];
    size_t started = 0;
    while (started < FETCH_THREADS - 1 && started + 1 < p->n &&
           pthread_create(&t[started], NULL, fetch_some, p) == 0)
        started++;
    fetch_some(p); /* this thread fetches too (alone, if no thread started) */
    for (size_t i = 0; i < started; i++)
        pthread_join(t[i], NULL);
}

/* Check and keep fetched object i, as the one after f->seq; 0 to stop. */
static int take_object(vl_follow *f, const fetch_pool *p, size_t i)
{
    const vl_wal_object *lo = &p->objs[i];
    int next = f->seq && lo->seq == f->seq + 1 && f->chained;
    wal_obj o = {.seq = lo->seq, .data = p->data[i], .len = p->len[i]};
    check_ctx k = {f, &o};
    uint64_t last = 0;
    vl_error err = p->err[i];
    vl_status st = p->st[i];
    if (st == VL_OK && o.len)
        st = vl_wal_object_check(lo->seq, o.data, o.len, next ? f->lsn + 1 : 0, check_record, &k,
                                 &last, &err);
    if (st != VL_OK) {
        obj_free(&o);
        if (st != VL_ERR_NOTFOUND) /* gone: covered by a version the next run loads */
            fail(f, st, &err);
        return 0;
    }
    if (o.len) {
        f->lsn = last > f->lsn ? last : f->lsn;
        f->chained = 1;
    } else {
        f->chained = next; /* an empty object passes the chain on */
    }
    f->seq = lo->seq;
    list_push(&f->fresh, &o);
    return 1;
}

/* Read the listed objects in order, as far as they can be (decision 2)
 * and the follow log has room (decision 4). */
static void read_listed(vl_follow *f)
{
    uint64_t held = 0; /* what the log keeps after this run */
    for (size_t i = 0; i < f->log->kept.n; i++)
        if (!covered_by_versions(f, &f->log->kept.objs[i]))
            held += f->log->kept.objs[i].len;
    size_t m = 0;
    while (m < f->nlisted && !(held && held + f->listed[m].size > f->log->limit))
        held += f->listed[m++].size;
    fetch_pool p = {.store = f->store, .objs = f->listed, .n = m};
    atomic_init(&p.next, 0);
    p.data = vl_calloc(m ? m : 1, sizeof *p.data);
    p.len = vl_calloc(m ? m : 1, sizeof *p.len);
    p.st = vl_calloc(m ? m : 1, sizeof *p.st); /* VL_OK: an empty object is not fetched */
    p.err = vl_calloc(m ? m : 1, sizeof *p.err);
    fetch_all(&p);
    size_t i = 0;
    while (i < m && take_object(f, &p, i))
        i++;
    for (size_t k = i + 1; k < m; k++) /* after a stop: fetched, never used */
        free(p.data[k]);
    f->caught_up = f->listed_ok && i == f->nlisted;
    free(p.data);
    free(p.len);
    free(p.st);
    free(p.err);
}

void vl_follow_run(vl_follow *f)
{
    vl_error err;
    vl_status st = vl_wal_store_list(f->store, f->log->seq, &f->listed, &f->nlisted, &err);
    f->listed_ok = st == VL_OK;
    if (st != VL_OK)
        fail(f, st, &err);
    add_new_collections(f);
    for (size_t i = 0; i < f->n; i++)
        load_newer(f, &f->colls[i]);
    int follows_on =
        f->nlisted && f->log->seq && f->listed[0].seq == f->log->seq + 1 && f->log->chained;
    if (f->listed_ok && (follows_on || f->st == VL_OK)) /* decision 6 */
        read_listed(f);
    for (size_t i = 0; i < f->n; i++) {
        if (!f->colls[i].loaded)
            continue;
        reapply_list(&f->colls[i], &f->log->kept);
        reapply_list(&f->colls[i], &f->fresh);
    }
}

/* ---- end (owner thread) -------------------------------------------------- */

static void swap_in(vl_engine *e, follow_coll *fc)
{
    vl_collection *c = vl_engine_find(e, fc->priv.name);
    if (!c)
        c = vl_engine_add_collection(e, fc->priv.name, fc->priv.metric, &fc->priv.index);
    if (!fc->loaded)
        return;
    vl_lake_free(&c->lake);
    c->lake = fc->priv.lake;
    vl_rowstore_unref(c->rows);
    c->rows = fc->priv.rows;
    if (e->applied_lsn < c->lake.head.wal_lsn)
        e->applied_lsn = c->lake.head.wal_lsn;
    vl_engine_note_save_time(e, &c->lake.head);
    e->index_loads += fc->index_loads;
    vl_lake_publish_indexes(c);
}

typedef struct {
    vl_engine *e;
    vl_follow *f;
} apply_ctx;

/* A fresh record, onto a collection that was not reloaded this run. */
static vl_status apply_fresh(void *ctx, const vl_wal_record *rec, vl_error *err)
{
    (void)err;
    apply_ctx *a = ctx;
    follow_coll *fc = find_coll(a->f, rec->coll, rec->coll_len);
    if (fc->loaded || rec->lsn <= fc->covered || rec->lsn <= a->f->log->lsn)
        return VL_OK;
    vl_collection_apply(vl_engine_find(a->e, fc->priv.name), rec);
    return VL_OK;
}

/* Move the fresh objects to the log, then drop what no reload can need. */
static void keep_fresh(vl_follow *f)
{
    struct vl_follow_log *log = f->log;
    for (size_t i = 0; i < f->fresh.n; i++)
        list_push(&log->kept, &f->fresh.objs[i]);
    free(f->fresh.objs);
    memset(&f->fresh, 0, sizeof f->fresh);
    size_t w = 0;
    for (size_t i = 0; i < log->kept.n; i++) {
        wal_obj *o = &log->kept.objs[i];
        if (covered_by_versions(f, o)) {
            log->kept.bytes -= o->len;
            obj_free(o);
        } else {
            log->kept.objs[w++] = *o;
        }
    }
    log->kept.n = w;
    log->seq = f->seq;
    log->lsn = f->lsn;
    log->chained = f->chained;
}

static int apply_all_fresh(vl_engine *e, vl_follow *f)
{
    apply_ctx a = {e, f};
    int records = 0;
    for (size_t i = 0; i < f->fresh.n; i++) {
        vl_wal_object_apply(f->fresh.objs[i].seq, f->fresh.objs[i].data, f->fresh.objs[i].len,
                            apply_fresh, &a, NULL);
        records |= f->fresh.objs[i].len > 0;
    }
    if (f->lsn > e->applied_lsn)
        e->applied_lsn = f->lsn;
    return records;
}

vl_status vl_follow_end(vl_engine *e, vl_follow *f, int *changed, int *caught_up, vl_error *err)
{
    *changed = 0;
    for (size_t i = 0; i < f->n; i++) {
        *changed |= f->colls[i].loaded || !vl_engine_find(e, f->colls[i].priv.name);
        swap_in(e, &f->colls[i]);
    }
    *changed |= apply_all_fresh(e, f);
    /* The scratch WAL's LSNs follow, so no reply waits for a sync that
     * never comes. */
    vl_wal_bump_lsn(e->wal, e->applied_lsn, NULL);
    keep_fresh(f);
    if (caught_up)
        *caught_up = f->caught_up && f->st == VL_OK;
    vl_status st = f->st;
    if (st != VL_OK && err)
        *err = f->err;
    free(f->listed);
    free(f->colls);
    free(f);
    return st;
}

void vl_follow_stats_get(const vl_engine *e, vl_follow_stats *out)
{
    const struct vl_follow_log *log = e->follow_log;
    memset(out, 0, sizeof *out);
    if (!log)
        return;
    out->wal_object = log->seq;
    out->wal_lsn = log->lsn;
    out->log_bytes = log->kept.bytes;
    out->log_objects = log->kept.n;
}
