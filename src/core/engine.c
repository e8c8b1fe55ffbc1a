/*
 * engine.c - the embedded engine: collections, the write path, replay.
 *
 * Every change takes the same path, live or replayed: validate, log (live
 * only), then apply().  Live changes are logged before they are applied, so
 * memory never holds a change the log could not reproduce.  A collection's
 * descriptor is written (durably) before the first log record that names
 * the collection.
 *
 * After a failed WAL write the engine stops taking changes: the kernel may
 * have dropped the dirty pages, so memory and disk could disagree, and only
 * a restart (replaying what really reached the disk) is honest.  Redis makes
 * the same call for appendfsync always.
 *
 * With an object store (vl_options.store) the WAL lives there too, as
 * objects (storage/wal_store.c), and its failures are the WAL's state, not
 * the engine's: changes are refused while a batch cannot be stored (and
 * taken again once the retried batch lands) or for good once another
 * writer fenced this one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/dirlock.h"
#include "core/engine_internal.h"
#include "core/index_set.h"
#include "core/tail_index.h"
#include "core/vector_text.h"
#include "storage/descriptor.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/log.h"

int64_t vl_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Keeps row indexes inside the keymap's 32-bit range. */
#define MAX_ROWS_PER_GENERATION (UINT32_MAX - 1u)

vl_collection *vl_engine_find(vl_engine *e, const char *name)
{
    for (size_t i = 0; i < e->ncolls; i++)
        if (strcmp(e->colls[i].name, name) == 0)
            return &e->colls[i];
    return NULL;
}

static vl_collection *add_collection(vl_engine *e, const char *name, vl_metric metric,
                                     const vl_index_params *index)
{
    if (e->ncolls == e->cap_colls) {
        e->cap_colls = e->cap_colls ? e->cap_colls * 2 : 4;
        e->colls = vl_realloc(e->colls, e->cap_colls * sizeof *e->colls);
    }
    vl_collection *c = &e->colls[e->ncolls++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->metric = metric;
    c->index = *index;
    c->rows = vl_rowstore_new(metric);
    vl_lake_init(&c->lake, name, metric);
    return c;
}

vl_collection *vl_engine_add_collection(vl_engine *e, const char *name, vl_metric metric,
                                        const vl_index_params *index)
{
    return add_collection(e, name, metric, index);
}

/* ---- applying changes (shared by live writes and replay) ---- */

/* A row replaced or deleted at lsn: if it lives in a segment, the next
 * flush must record the deletion in that segment's deletion file. */
static void note_dead_row(vl_collection *c, uint32_t row, uint64_t lsn)
{
    uint32_t seg, seg_row;
    if (row == VL_ROW_NONE)
        return;
    vl_rowstore_location(c->rows, row, &seg, &seg_row);
    if (seg != VL_SEG_NONE)
        vl_lake_pending_delete(&c->lake, seg, seg_row, lsn);
}

void vl_collection_apply(vl_collection *c, const vl_wal_record *rec)
{
    switch (rec->type) {
    case VL_WAL_PUT:
        note_dead_row(c,
                      vl_rowstore_put(c->rows, rec->key, rec->key_len, rec->vec, rec->dim, rec->lsn,
                                      VL_SEG_NONE, 0),
                      rec->lsn);
        c->lake.unflushed_puts++;
        break;
    case VL_WAL_DEL:
        note_dead_row(c, vl_rowstore_delete(c->rows, rec->key, rec->key_len, rec->lsn), rec->lsn);
        break;
    case VL_WAL_CLEAR:
        vl_rowstore_unref(c->rows);
        c->rows = vl_rowstore_new(c->metric);
        c->rows->since_lsn = rec->lsn; /* the rows before are gone from it */
        vl_index_set_unref(c->iset);   /* its rows are gone; the segments go at the next flush */
        c->iset = NULL;
        vl_tail_drop(c);
        c->lake.cleared_lsn = rec->lsn;
        break;
    }
    if (!c->lake.dirty_since_ms)
        c->lake.dirty_since_ms = vl_monotonic_ms();
    c->lake.last_change = rec->lsn;
}

static void apply(vl_engine *e, vl_collection *c, const vl_wal_record *rec)
{
    vl_collection_apply(c, rec);
    e->applied_lsn = rec->lsn;
}

/* A collection whose descriptor appeared after load_collections read them:
 * a writer this open is fencing created it meanwhile (store WAL). */
static vl_collection *load_late_collection(vl_engine *e, const char *name)
{
    vl_descriptor *descs = NULL;
    size_t n = 0;
    vl_error ignored;
    vl_collection *c = NULL;
    if (vl_descriptor_load_all(e->store, &descs, &n, &ignored) != VL_OK)
        return NULL;
    for (size_t i = 0; i < n && !c; i++)
        if (strcmp(descs[i].name, name) == 0)
            c = add_collection(e, name, descs[i].metric, &descs[i].index);
    free(descs);
    return c && vl_lake_load(e, c, &ignored) == VL_OK ? c : NULL;
}

static vl_status replay_record(void *ctx, const vl_wal_record *rec, vl_error *err)
{
    vl_engine *e = ctx;
    char name[VL_MAX_COLLECTION_NAME + 1];
    snprintf(name, sizeof name, "%.*s", (int)rec->coll_len, rec->coll);
    vl_collection *c = vl_engine_find(e, name);
    if (!c)
        c = load_late_collection(e, name);
    if (!c)
        return vl_fail(err, VL_ERR_CORRUPT,
                       "WAL record %llu names collection '%s' whose descriptor "
                       "collections/%s.desc is missing",
                       (unsigned long long)rec->lsn, name, name);
    if (rec->lsn <= c->lake.head.wal_lsn) { /* already in a committed version */
        e->applied_lsn = rec->lsn;
        return VL_OK;
    }
    if (rec->type == VL_WAL_PUT && c->rows->dim && c->rows->dim != rec->dim)
        return vl_fail(err, VL_ERR_CORRUPT,
                       "WAL record %llu puts a %u-dimensional vector into '%s' (dimension %u)",
                       (unsigned long long)rec->lsn, rec->dim, name, c->rows->dim);
    apply(e, c, rec);
    return VL_OK;
}

/* ---- open / close ---- */

/* A descriptor from before indexes takes the engine's index parameters,
 * written back so the collection keeps them from now on. */
static vl_status settle_index(vl_engine *e, vl_descriptor *d, vl_error *err)
{
    if (d->has_index)
        return vl_seg_index_check_params(&d->index, err);
    d->has_index = 1;
    d->index = e->opt.index;
    return e->opt.read_only ? VL_OK : vl_descriptor_write(e->store, d, err);
}

static vl_status load_collections(vl_engine *e, vl_error *err)
{
    vl_descriptor *descs = NULL;
    size_t n = 0;
    vl_status st = vl_descriptor_load_all(e->store, &descs, &n, err);
    for (size_t i = 0; st == VL_OK && i < n; i++) {
        st = settle_index(e, &descs[i], err);
        if (st == VL_OK)
            st = vl_lake_load(e, add_collection(e, descs[i].name, descs[i].metric, &descs[i].index),
                              err);
    }
    free(descs);
    return st;
}

/* After replay: LSNs continue above everything committed, the start-up
 * garbage (a crash between writing files and committing) goes, and WAL
 * files already covered are removed. */
static vl_status finish_open(vl_engine *e, vl_error *err)
{
    uint64_t top = 0;
    for (size_t i = 0; i < e->ncolls; i++)
        if (e->colls[i].lake.head.wal_lsn > top)
            top = e->colls[i].lake.head.wal_lsn;
    vl_status st = vl_wal_bump_lsn(e->wal, top, err);
    if (st != VL_OK)
        return st;
    if (e->applied_lsn < top)
        e->applied_lsn = top;
    e->job_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (e->job_fd < 0)
        return vl_fail(err, VL_ERR_IO, "eventfd: %s", strerror(errno));
    for (size_t i = 0; i < e->ncolls; i++) {
        if (!e->opt.read_only) /* the store is the writer's: no GC */
            vl_lake_gc(e, &e->colls[i]);
        vl_engine_note_save_time(e, &e->colls[i].lake.head);
        vl_lake_publish_indexes(&e->colls[i]);
    }
    if (e->opt.read_only) /* no WAL files of ours are covered by its versions */
        return VL_OK;
    return vl_engine_remove_covered_wal(e, err);
}

/* After the WAL claim (which fences the writer before this one): did a
 * version or a collection appear since load_collections read them?  That
 * writer may have committed while this node loaded, and removed the WAL
 * objects its commit covers before the listing this node replayed, so
 * the state built here could lack those writes; the open starts over. */
static int store_moved(vl_engine *e)
{
    vl_objinfo *descs;
    size_t n;
    if (vl_obj_list(e->store, "collections/", &descs, &n, NULL) != VL_OK)
        return 0; /* the open's later requests report an unreachable store */
    int moved = 0;
    for (size_t i = 0; i < n && !moved; i++) { /* "collections/<name>.desc" */
        const char *name = descs[i].name + strlen("collections/");
        size_t len = strlen(name);
        char coll[VL_MAX_COLLECTION_NAME + 1];
        if (len > 5 && len - 5 <= VL_MAX_COLLECTION_NAME && strcmp(name + len - 5, ".desc") == 0 &&
            !strchr(name, '/')) {
            snprintf(coll, sizeof coll, "%.*s", (int)(len - 5), name);
            moved = vl_engine_find(e, coll) == NULL;
        }
    }
    vl_objinfo_free(descs, n);
    for (size_t i = 0; i < e->ncolls && !moved; i++) {
        uint64_t *vs;
        size_t nv;
        if (vl_manifest_versions(e->store, e->colls[i].name, &vs, &nv, NULL) != VL_OK)
            continue;
        moved = (nv ? vs[nv - 1] : 0) != e->colls[i].lake.head.version;
        free(vs);
    }
    return moved;
}

#define OPEN_ROUNDS 5 /* opens that found the store moved before giving up */

static vl_status open_once(const char *dir, const vl_options *opt, vl_engine **out, int *moved,
                           vl_error *err)
{
    vl_engine *e = vl_calloc(1, sizeof *e);
    e->job_fd = -1;
    e->lock_fd = -1;
    if (opt)
        e->opt = *opt;
    else
        vl_options_init(&e->opt);
    e->store = e->opt.store; /* ours from here on: vl_close closes it */
    e->opt.store = NULL;
    /* A follower never writes the store: its WAL is an empty local one in its
     * scratch dir, so opening it claims (fences) nothing. */
    int wal_in_store = e->store != NULL && !e->opt.read_only;
    vl_status st = vl_seg_index_check_params(&e->opt.index, err);
    if (st == VL_OK)
        st = vl_dirlock_acquire(dir, &e->lock_fd, err);
    if (st == VL_OK && !e->store)
        st = vl_objstore_local_open(dir, &e->store, err);
    if (st == VL_OK)
        st = load_collections(e, err);
    if (st == VL_OK && wal_in_store) {
        e->opt.fsync = VL_FSYNC_ALWAYS; /* a batch is acknowledged once its PUT succeeded */
        st = vl_wal_open_store(e->store, replay_record, e, &e->wal, err);
        /* VL_ERR_CONFLICT: an object vanished while it was replayed (that
         * writer committed and removed it), or the claim kept losing. */
        *moved = st == VL_ERR_CONFLICT || (st == VL_OK && store_moved(e));
        if (*moved) {
            e->store = NULL; /* the caller's again, for the next round */
            if (st == VL_OK)
                st = vl_fail(err, VL_ERR_CONFLICT,
                             "the writer this node fenced committed while it opened");
        }
    } else if (st == VL_OK) {
        st = vl_wal_open_ex(dir, e->opt.fsync, replay_record, e, e->opt.wal_truncate_damaged,
                            &e->wal, &e->wal_dropped_bytes, err);
    }
    if (st == VL_OK)
        st = finish_open(e, err);
    if (st != VL_OK) {
        vl_close(e);
        return st;
    }
    e->opened = 1;
    *out = e;
    return VL_OK;
}

vl_status vl_open(const char *dir, const vl_options *opt, vl_engine **out, vl_error *err)
{
    for (int round = 1;; round++) {
        int moved = 0;
        vl_status st = open_once(dir, opt, out, &moved, err);
        if (st == VL_OK || !moved)
            return st;
        if (round == OPEN_ROUNDS) {
            vl_obj_close(opt->store);
            char last[sizeof err->msg];
            snprintf(last, sizeof last, "%s", err ? err->msg : "");
            return vl_fail(err, VL_ERR_CONFLICT,
                           "the store kept changing while this node opened (%d attempts; last: "
                           "%.160s); start again",
                           OPEN_ROUNDS, last);
        }
    }
}

void vl_close(vl_engine *e)
{
    if (!e)
        return;
    vl_index_build_finish(e, 1);
    vl_tail_finish(e, 1);
    vl_lake_job_finish(e, NULL);
    if (e->wal)
        vl_index_list_pending(e); /* so the next start loads what was built */
    if (e->wal)
        vl_wal_close(e->wal);
    for (size_t i = 0; i < e->ncolls; i++) {
        vl_rowstore_unref(e->colls[i].rows);
        vl_index_set_unref(e->colls[i].iset);
        vl_tail_drop(&e->colls[i]);
        vl_lake_free(&e->colls[i].lake);
        vl_version_cache_free(e->colls[i].cache);
    }
    if (e->job_fd >= 0)
        close(e->job_fd);
    vl_follow_log_free(e->follow_log);
    free(e->colls);
    vl_obj_close(e->store);
    if (e->lock_fd >= 0)
        close(e->lock_fd); /* last: the directory is ours until everything is done */
    free(e);
}

/* ---- the write path ---- */

static vl_status check_writable(vl_engine *e, const char *coll, vl_error *err)
{
    if (e->opt.read_only)
        return vl_fail(err, VL_ERR_READONLY,
                       "read-only engine (a follower): changes go to the "
                       "writer");
    vl_status st = vl_wal_writable(e->wal, err);
    if (st != VL_OK)
        return st;
    if (e->failed)
        return vl_fail(err, VL_ERR_IO,
                       "writes disabled after a WAL failure (%s); restart to recover",
                       e->failure.msg);
    if (!vl_collection_name_valid(coll))
        return vl_fail(err, VL_ERR_ARG, "invalid collection name");
    return VL_OK;
}

static vl_status check_key(size_t keylen, vl_error *err)
{
    if (keylen == 0)
        return vl_fail(err, VL_ERR_ARG, "empty key");
    if (keylen > VL_MAX_KEY_LEN)
        return vl_fail(err, VL_ERR_LIMIT, "key is %zu bytes; the maximum is %u", keylen,
                       VL_MAX_KEY_LEN);
    return VL_OK;
}

/* A WAL write or fsync failed: from now on refuse changes (see top; a
 * store WAL keeps its own state). */
static vl_status poison(vl_engine *e, vl_status st, vl_error *err)
{
    e->failed = !vl_wal_in_store(e->wal);
    return vl_fail(err, st, "%s", e->failure.msg);
}

static vl_status sync_now(vl_engine *e, vl_error *err)
{
    if (!vl_wal_has_pending(e->wal))
        return VL_OK;
    vl_status st = vl_wal_flush(e->wal, &e->failure);
    return st == VL_OK ? VL_OK : poison(e, st, err);
}

static vl_status log_and_apply(vl_engine *e, vl_collection *c, vl_wal_record *rec, vl_error *err)
{
    rec->coll = c->name;
    rec->coll_len = (uint32_t)strlen(c->name);
    vl_status st = vl_wal_append(e->wal, rec, err);
    if (st != VL_OK)
        return st;
    apply(e, c, rec);
    return e->opt.deferred_sync ? VL_OK : sync_now(e, err);
}

static vl_status create_collection(vl_engine *e, const char *coll, vl_collection **out,
                                   vl_error *err)
{
    vl_descriptor d;
    memset(&d, 0, sizeof d);
    snprintf(d.name, sizeof d.name, "%s", coll);
    d.metric = e->opt.default_metric;
    d.has_index = 1;
    d.index = e->opt.index;
    vl_status st = vl_descriptor_write(e->store, &d, err);
    if (st != VL_OK)
        return st;
    *out = add_collection(e, coll, d.metric, &d.index);
    return VL_OK;
}

static vl_status check_vector(const vl_collection *c, vl_metric metric, const float *vec,
                              uint32_t dim, vl_error *err)
{
    if (dim == 0)
        return vl_fail(err, VL_ERR_ARG, "empty vector");
    if (dim > VL_MAX_DIM)
        return vl_fail(err, VL_ERR_LIMIT, "vector has %u dimensions; the maximum is %u", dim,
                       VL_MAX_DIM);
    if (c && c->rows->dim && c->rows->dim != dim)
        return vl_fail(err, VL_ERR_DIM, "dimension mismatch: expected %u, got %u", c->rows->dim,
                       dim);
    vl_status st = vl_vector_check_finite(vec, dim, err);
    if (st != VL_OK)
        return st;
    if (metric == VL_METRIC_COSINE) {
        int zero = 1;
        for (uint32_t i = 0; i < dim && zero; i++)
            zero = vec[i] == 0.0f;
        if (zero)
            return vl_fail(err, VL_ERR_ARG, "zero vector has no direction (metric is cosine)");
    }
    return VL_OK;
}

/* Refuse a put that would take the data past max_memory (before anything
 * is logged, so a refused put leaves no trace). */
static vl_status check_memory(vl_engine *e, const vl_collection *c, size_t keylen, uint32_t dim,
                              vl_error *err)
{
    if (!e->opt.max_memory)
        return VL_OK;
    uint64_t used = vl_memory_used(e), cost = vl_rowstore_put_cost(c ? c->rows : NULL, keylen, dim);
    e->memory_refused = used + cost > e->opt.max_memory;
    if (!e->memory_refused)
        return VL_OK;
    return vl_fail(
        err, VL_ERR_NOMEM, "data uses %llu bytes and this put needs %llu more; max_memory is %llu",
        (unsigned long long)used, (unsigned long long)cost, (unsigned long long)e->opt.max_memory);
}

vl_status vl_put(vl_engine *e, const char *coll, const void *key, size_t keylen, const float *vec,
                 uint32_t dim, vl_error *err)
{
    vl_status st = check_writable(e, coll, err);
    if (st == VL_OK)
        st = check_key(keylen, err);
    vl_collection *c = st == VL_OK ? vl_engine_find(e, coll) : NULL;
    if (st == VL_OK)
        st = check_vector(c, c ? c->metric : e->opt.default_metric, vec, dim, err);
    if (st != VL_OK)
        return st;
    if (c && atomic_load(&c->rows->nrows) >= MAX_ROWS_PER_GENERATION)
        return vl_fail(err, VL_ERR_LIMIT, "collection '%s' holds the maximum number of rows", coll);
    if ((st = check_memory(e, c, keylen, dim, err)) != VL_OK)
        return st;
    if (!c && (st = create_collection(e, coll, &c, err)) != VL_OK)
        return st;
    vl_wal_record rec = {
        .type = VL_WAL_PUT, .key = key, .key_len = (uint32_t)keylen, .vec = vec, .dim = dim};
    return log_and_apply(e, c, &rec, err);
}

vl_status vl_get(vl_engine *e, const char *coll, const void *key, size_t keylen, float *out,
                 uint32_t cap, uint32_t *dim)
{
    vl_collection *c = vl_engine_find(e, coll);
    const float *v = c ? vl_rowstore_get(c->rows, key, keylen) : NULL;
    if (!v)
        return VL_ERR_NOTFOUND;
    *dim = c->rows->dim;
    if (cap < c->rows->dim)
        return VL_ERR_LIMIT;
    memcpy(out, v, (size_t)c->rows->dim * sizeof(float));
    return VL_OK;
}

vl_status vl_delete(vl_engine *e, const char *coll, const void *key, size_t keylen, int *deleted,
                    vl_error *err)
{
    *deleted = 0;
    vl_status st = check_writable(e, coll, err);
    if (st != VL_OK)
        return st;
    vl_collection *c = vl_engine_find(e, coll);
    if (!c || !vl_rowstore_get(c->rows, key, keylen))
        return VL_OK; /* nothing to log: deleting an absent key changes nothing */
    *deleted = 1;
    vl_wal_record rec = {.type = VL_WAL_DEL, .key = key, .key_len = (uint32_t)keylen};
    return log_and_apply(e, c, &rec, err);
}

vl_status vl_clear(vl_engine *e, const char *coll, vl_error *err)
{
    vl_status st = check_writable(e, coll, err);
    if (st != VL_OK)
        return st;
    vl_collection *c = vl_engine_find(e, coll);
    if (!c || (c->rows->dim == 0 && atomic_load(&c->rows->nrows) == 0))
        return VL_OK; /* already empty */
    vl_wal_record rec = {.type = VL_WAL_CLEAR};
    return log_and_apply(e, c, &rec, err);
}

vl_status vl_write_refusal(vl_engine *e, vl_error *why)
{
    return e->failed ? VL_OK : vl_wal_writable(e->wal, why);
}

vl_status vl_sync(vl_engine *e, vl_error *err)
{
    if (e->failed)
        return vl_fail(err, VL_ERR_IO, "%s", e->failure.msg);
    return sync_now(e, err);
}

vl_status vl_commit_write(vl_engine *e, vl_error *err)
{
    if (e->failed)
        return vl_fail(err, VL_ERR_IO, "%s", e->failure.msg);
    if (!vl_wal_has_pending(e->wal))
        return VL_OK;
    /* Under ALWAYS one fsync is in flight at a time; what arrives meanwhile
     * waits in the buffer and becomes the next batch, so batches grow with
     * the load instead of the loop paying a write() per turn. */
    if (e->opt.fsync == VL_FSYNC_ALWAYS && vl_wal_sync_in_flight(e->wal))
        return VL_OK;
    vl_status st = vl_wal_write(e->wal, &e->failure);
    if (st != VL_OK)
        return poison(e, st, err);
    if (e->opt.fsync == VL_FSYNC_ALWAYS)
        vl_wal_request_sync(e->wal);
    return VL_OK;
}

uint64_t vl_durable_lsn(vl_engine *e)
{
    return vl_wal_durable_lsn(e->wal);
}

uint64_t vl_last_lsn(const vl_engine *e)
{
    return e->applied_lsn;
}

int vl_commit_fd(const vl_engine *e)
{
    return vl_wal_sync_fd(e->wal);
}

vl_status vl_commit_poll(vl_engine *e, vl_error *err)
{
    vl_status st = vl_wal_check(e->wal, &e->failure);
    return st == VL_OK ? VL_OK : poison(e, st, err);
}

int vl_sync_pending(const vl_engine *e)
{
    return vl_wal_has_pending(e->wal);
}

/* ---- introspection ---- */

vl_status vl_collection_describe(vl_engine *e, const char *coll, vl_collection_info *info)
{
    vl_collection *c = vl_engine_find(e, coll);
    if (!c)
        return VL_ERR_NOTFOUND;
    info->dim = c->rows->dim;
    info->metric = c->metric;
    info->count = c->rows->live;
    info->version = c->lake.head.version;
    info->segments = c->lake.head.nsegs;
    info->unflushed = c->lake.unflushed_puts;
    info->rows_in_memory = atomic_load(&c->rows->nrows);
    info->index = c->index;
    const vl_index_set *set = c->iset;
    uint64_t nrows = atomic_load(&c->rows->nrows);
    info->indexed_rows = info->index_bytes = info->index_vector_bytes = 0;
    info->tail_indexes = info->tail_index_bytes = 0;
    for (size_t i = 0; set && i < set->n; i++) {
        const vl_index_entry *x = &set->entries[i];
        if (x->tail) {
            info->tail_indexes++;
            info->tail_index_bytes += vl_seg_index_memory(x->ix);
            continue;
        }
        info->indexed_rows += vl_seg_index_rows(x->ix);
        info->index_bytes += vl_seg_index_memory(x->ix);
        info->index_vector_bytes += vl_seg_index_vector_bytes(x->ix);
    }
    info->tail_indexed_rows = set ? set->tail_covered : 0;
    info->unindexed_rows = set ? set->unindexed + (nrows - set->base) : nrows;
    return VL_OK;
}

/* Deletions of segment rows not yet committed, and committed ones kept in
 * memory for the next flush. */
static uint64_t lake_bytes(const vl_lake *l)
{
    uint64_t bytes = 0;
    for (size_t i = 0; i < l->head.nsegs; i++)
        bytes += l->segs[i].cap_pending * sizeof *l->segs[i].pending +
                 l->segs[i].ndeleted * sizeof *l->segs[i].deleted;
    return bytes;
}

vl_status vl_collection_memory(vl_engine *e, const char *coll, vl_memory_usage *out)
{
    vl_collection *c = vl_engine_find(e, coll);
    if (!c)
        return VL_ERR_NOTFOUND;
    vl_rowstore_mem m;
    vl_rowstore_memory(c->rows, &m);
    vl_version_cache_memory(c->cache, &m);
    out->vectors = m.vectors;
    out->keys = m.keys;
    out->index = m.index + lake_bytes(&c->lake) + vl_index_set_memory(c->iset);
    out->total = out->vectors + out->keys + out->index;
    return VL_OK;
}

uint64_t vl_memory_used(vl_engine *e)
{
    uint64_t total = 0;
    for (size_t i = 0; i < e->ncolls; i++) {
        vl_memory_usage u;
        vl_collection_memory(e, e->colls[i].name, &u);
        total += u.total;
    }
    return total;
}

const char *vl_collection_name(vl_engine *e, size_t i)
{
    return i < e->ncolls ? e->colls[i].name : NULL;
}

void vl_engine_stats_get(vl_engine *e, vl_engine_stats *st)
{
    memset(st, 0, sizeof *st);
    for (size_t i = 0; i < e->ncolls; i++)
        st->vectors += e->colls[i].rows->live;
    st->collections = e->ncolls;
    vl_wal_stats ws;
    vl_wal_stats_get(e->wal, &ws);
    st->wal_files = ws.files;
    st->wal_bytes = ws.bytes;
    st->fsyncs = ws.fsyncs;
    st->wal_puts = ws.puts;
    st->wal_lsn = vl_wal_last_lsn(e->wal);
    st->wal_dropped_bytes = e->wal_dropped_bytes;
    st->commits = e->commits;
    st->flushes = e->flushes;
    st->compactions = e->compactions;
    st->gc_deleted = e->gc_deleted;
    st->last_save = e->last_save;
    st->background_job = e->job != NULL;
    st->last_error = e->last_job_error.msg;
    st->warning = e->warning.msg;
    st->index_builds = e->index_builds;
    st->index_loads = e->index_loads;
    st->index_rebuilds = e->index_rebuilds;
    st->index_build_running = e->build != NULL;
    st->tail_index_builds = e->tail_builds;
    st->tail_index_build_running = e->tail_build != NULL;
    st->bytes_on_disk = ws.bytes; /* no store request: the store may be S3, or down */
    for (size_t i = 0; i < e->ncolls; i++)
        st->bytes_on_disk += e->colls[i].lake.stored_bytes;
}
