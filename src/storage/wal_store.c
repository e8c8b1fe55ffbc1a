/*
 * wal_store.c - the write-ahead log as objects in an object store (S3
 * mode), so that a node's local disk holds nothing that matters.  The
 * format and the fencing protocol are specified in docs/storage-format.md
 * ("WAL in an object store"); wal.h has the contract.
 *
 * Decisions:
 *  1. One group-committed batch is one object wal/<20 decimal digits>.log
 *     holding the same records as a WAL file.  Objects are numbered
 *     consecutively and always created with put_if_absent, so the number
 *     is also the fence: a writer that opens claims the next number with
 *     an empty object, and the writer it replaces learns it is fenced when
 *     its next batch finds its number taken.  Nobody acknowledges a batch
 *     that did not win its number, so two writers never both acknowledge.
 *  2. A conflict is checked by reading the object back: if it holds our
 *     exact bytes an earlier attempt of ours landed (a timeout after the
 *     store had stored it) and the batch counts as stored.
 *  3. One background thread stores batches, one in flight at a time (the
 *     next batch forms in the pending buffer meanwhile), and removes
 *     covered objects when no batch waits, so neither PUTs nor DELETEs
 *     ever run on the caller's (event loop) thread, except for the
 *     explicit sync calls (flush, close) that wait for it.
 *  4. A failed PUT (the store client already retried for its timeout)
 *     leaves the batch in place: the log is "stalled", refuses changes
 *     (vl_wal_writable) and retries the same bytes under the same number
 *     once a second; when one attempt succeeds it takes changes again.  A
 *     conflict is final: the log stays fenced until it is closed.
 *  5. The newest object is never removed, even when a version covers it:
 *     it carries the highest number, which the next writer must see to
 *     claim one above it (with no objects at all it would start at 1
 *     again and nothing would fence).  Nor is a fence (decision 9).
 *  6. The closed list, the counters and every "under mu" field are shared
 *     with the thread; the pending buffer belongs to the caller and the
 *     batch buffer to the thread while batch_busy is set.
 *  7. Claiming at open: first the number after the last one replayed.  If
 *     it is taken, a writer is still writing, and chasing it one number at
 *     a time could lose forever (each of our tries costs a PUT and a GET,
 *     each of its batches one PUT), so the claim leaps CLAIM_LEAP numbers
 *     ahead, which it wins at once.  That writer cannot pass the claimed
 *     number; the numbers below it are then created in order: each one the
 *     other writer already has is replayed, the first one it does not
 *     have fences it there, and the rest are filled with empty objects.
 *     Every object it may have acknowledged is therefore replayed.
 *  9. A fence is never removed.  The writer a claim fenced tries exactly
 *     one number again, the first it does not hold (its next batch, or a
 *     confirmation); were that object ever removed -- by the new writer
 *     trimming covered objects, or by any writer after it -- the old one's
 *     put_if_absent would succeed there and it would acknowledge a batch
 *     no one replays.  So the claim writes that number (and its target)
 *     as a fence object: the 16 bytes FENCE, which no batch can be (a
 *     record is at least 25 bytes), recognised by its listed size and
 *     never fetched.  Trimming skips fences, so the numbers of the objects
 *     present have gaps only among fences and before the first object
 *     with records; after that they are consecutive, as removal takes the
 *     oldest other object first.  One or two fences stay per takeover.
 * 10. An empty object found at the number a batch (or an empty put) aims
 *     for is never a fence (claims write fences, decision 9): it is our
 *     own empty put whose answer was lost (the store took it, the client
 *     saw a reset), or a filler of a writer claiming past us, which
 *     replays whatever we store below its fence.  Either way the number
 *     is skipped and the same bytes go to the next one; a fence or
 *     someone's batch there still fences this log.
 *  8. Confirming the writer (vl_wal_confirm_writer) is the thread creating
 *     the next number empty, between batches: the same put_if_absent a
 *     batch makes, so it fences or is fenced exactly as a batch would.
 *     An empty object is replayed as nothing and removed like any other.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/wal_internal.h"
#include "util/error.h"

#define OBJ_NAME_LEN 28u         /* "wal/" + 20 digits + ".log" */
#define CLAIM_ROUNDS 16          /* claims lost to a writer still writing before open gives up */
#define CLAIM_LEAP 32            /* how far past a writer still writing a claim aims */
#define RETRY_MS 1000            /* pause between attempts of a batch that failed */
#define FENCE "VLWAL-FENCE-0001" /* decision 9 */
#define FENCE_LEN VL_WAL_FENCE_LEN

static void obj_name(char out[OBJ_NAME_LEN + 1], uint64_t seq)
{
    snprintf(out, OBJ_NAME_LEN + 1, "wal/%020" PRIu64 ".log", seq);
}

/* Parse "wal/<20 digits>.log"; 0 if the name is not a WAL object. */
static int parse_obj_name(const char *s, uint64_t *seq)
{
    if (strlen(s) != OBJ_NAME_LEN || strncmp(s, "wal/", 4) != 0 || strcmp(s + 24, ".log") != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 4; i < 24; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *seq = v;
    return v != 0;
}

static void wake(vl_wal *w)
{
    uint64_t one = 1;
    ssize_t ignored = write(w->sync_fd, &one, sizeof one);
    (void)ignored;
}

/* ---- open: replay and claim ---------------------------------------------- */

/* 1 for a closed object that is a fence (decision 9). */
static int is_fence(const closed_file *f)
{
    return f->size == FENCE_LEN;
}

/* Replay object seq (listed, so it should exist, with listed_size bytes)
 * and record it as closed; an empty object or a fence is not fetched. */
static vl_status replay_one(vl_wal *w, vl_wal_replay *rs, uint64_t seq, uint64_t listed_size,
                            vl_error *err)
{
    char name[OBJ_NAME_LEN + 1];
    obj_name(name, seq);
    void *data = NULL;
    size_t len = listed_size == FENCE_LEN ? FENCE_LEN : 0;
    vl_status st = listed_size == 0 || listed_size == FENCE_LEN
                       ? VL_OK
                       : vl_obj_get(w->store, name, &data, &len, err);
    if (st == VL_ERR_NOTFOUND)
        return vl_fail(err, VL_ERR_CONFLICT,
                       "%s vanished while this node replayed the log (another writer flushed "
                       "and removed it); start again",
                       name);
    int fence = len == FENCE_LEN && (!data || memcmp(data, FENCE, FENCE_LEN) == 0);
    if (st == VL_OK && data && len && !fence)
        st = vl_wal_replay_object(rs, name, data, len, err);
    free(data);
    if (st == VL_ERR_CORRUPT) {
        vl_error why = *err;
        vl_fail(err, st, "%s; refusing to start", why.msg);
    }
    if (st == VL_OK)
        st = vl_wal_remember_closed(w, seq, rs->last_lsn, len, err);
    if (st == VL_OK) {
        w->store_bytes += len;
        w->next_seq = seq + 1;
    }
    return st;
}

/* 1 while every object replayed so far is a fence (decision 9). */
static int only_fences(const vl_wal *w)
{
    for (size_t i = 0; i < w->nclosed; i++)
        if (!is_fence(&w->closed[i]))
            return 0;
    return 1;
}

/* Replay every object numbered next_seq or above, in order; the numbers
 * must be consecutive from the first object that is not a fence on
 * (removal takes the oldest other object first, decision 9). */
static vl_status replay_from_next(vl_wal *w, vl_wal_replay *rs, vl_error *err)
{
    vl_objinfo *objs = NULL;
    size_t n = 0;
    vl_status st = vl_obj_list(w->store, "wal/", &objs, &n, err);
    for (size_t i = 0; st == VL_OK && i < n; i++) {
        uint64_t seq;
        if (!parse_obj_name(objs[i].name, &seq) || seq < w->next_seq)
            continue;
        if (!only_fences(w) && seq != w->next_seq)
            st = vl_fail(err, VL_ERR_CORRUPT,
                         "wal: object %020" PRIu64 ".log is missing (have %020" PRIu64
                         ".log and %s); refusing to start",
                         w->next_seq, w->next_seq - 1, objs[i].name);
        else
            st = replay_one(w, rs, seq, objs[i].size, err);
    }
    vl_objinfo_free(objs, n);
    return st;
}

/* Create object seq, empty. */
static vl_status put_empty(vl_wal *w, uint64_t seq, vl_error *err)
{
    char name[OBJ_NAME_LEN + 1];
    obj_name(name, seq);
    return vl_obj_put_if_absent(w->store, name, "", 0, err);
}

/* Create object seq as a fence (decision 9). */
static vl_status put_fence(vl_wal *w, uint64_t seq, vl_error *err)
{
    char name[OBJ_NAME_LEN + 1];
    obj_name(name, seq);
    return vl_obj_put_if_absent(w->store, name, FENCE, FENCE_LEN, err);
}

/* Claim a number to fence whoever wrote before us (decision 7). */
static vl_status claim(vl_wal *w, vl_wal_replay *rs, vl_error *err)
{
    uint64_t target = w->next_seq;
    vl_status st = VL_ERR_CONFLICT;
    for (int round = 0; round < CLAIM_ROUNDS && st == VL_ERR_CONFLICT; round++) {
        st = put_fence(w, target, err);
        if (st == VL_ERR_CONFLICT)
            target += CLAIM_LEAP;
    }
    if (st == VL_ERR_CONFLICT)
        return vl_fail(err, VL_ERR_CONFLICT,
                       "wal: another writer kept creating log objects while this node tried to "
                       "take over (%d attempts); refusing to start",
                       CLAIM_ROUNDS);
    /* Below target: the other writer's objects are replayed; the first
     * number it has not reached yet is taken from it with a fence (it is
     * fenced there) and the rest filled, so the numbers stay consecutive. */
    int fenced_below = 0;
    for (uint64_t seq = w->next_seq; st == VL_OK && seq < target; seq++) {
        st = fenced_below ? put_empty(w, seq, err) : put_fence(w, seq, err);
        if (st == VL_OK) {
            st = vl_wal_remember_closed(w, seq, rs->last_lsn, fenced_below ? 0 : FENCE_LEN, err);
            w->store_bytes += fenced_below ? 0 : FENCE_LEN;
            w->next_seq = seq + 1;
            fenced_below = 1;
        } else if (st == VL_ERR_CONFLICT) {
            st = replay_one(w, rs, seq, UINT64_MAX, err); /* fetched: it may hold records */
        }
    }
    if (st == VL_OK)
        st = vl_wal_remember_closed(w, target, rs->last_lsn, FENCE_LEN, err);
    w->store_bytes += FENCE_LEN;
    w->next_seq = target + 1;
    return st;
}

vl_status vl_wal_open_store(vl_objstore *store, vl_wal_apply_fn apply, void *ctx, vl_wal **out,
                            vl_error *err)
{
    vl_wal *w = vl_wal_new(VL_FSYNC_ALWAYS);
    if (!w)
        return vl_fail(err, VL_ERR_NOMEM, "wal: out of memory");
    w->store = store;
    w->next_seq = 1;
    vl_wal_replay rs = {apply, ctx, 0, malloc((size_t)VL_MAX_DIM * sizeof(float)), 0};
    vl_status st = rs.scratch ? replay_from_next(w, &rs, err)
                              : vl_fail(err, VL_ERR_NOMEM, "wal: out of memory");
    if (st == VL_OK)
        st = claim(w, &rs, err);
    free(rs.scratch);
    w->last_lsn = w->written_lsn = w->synced_lsn = w->sync_target = rs.last_lsn;
    if (st == VL_OK) {
        int rc = pthread_create(&w->thread, NULL, vl_wal_store_thread, w);
        if (rc != 0)
            st = vl_fail(err, VL_ERR_IO, "wal: starting the store thread: %s", strerror(rc));
        w->thread_started = rc == 0;
    }
    if (st != VL_OK) {
        vl_wal_free(w);
        return st;
    }
    *out = w;
    return VL_OK;
}

/* ---- the store thread ---------------------------------------------------- */

/* Store the batch as object seq; a conflict is ours when the object holds
 * our bytes (decision 2), else this log is fenced. */
static vl_status put_batch(vl_wal *w, uint64_t seq, vl_error *err)
{
    char name[OBJ_NAME_LEN + 1];
    obj_name(name, seq);
    vl_error perr;
    vl_status st = vl_obj_put_if_absent(w->store, name, w->batch, w->batch_len, &perr);
    if (st == VL_OK)
        return VL_OK;
    if (st != VL_ERR_CONFLICT)
        return vl_fail(err, st,
                       "store unavailable: storing %s: %s; writes resume once it is stored", name,
                       perr.msg);
    void *data = NULL;
    size_t len = 0;
    vl_error gerr;
    st = vl_obj_get(w->store, name, &data, &len, &gerr);
    int ours = st == VL_OK && len == w->batch_len && memcmp(data, w->batch, len) == 0;
    free(data);
    if (ours)
        return VL_OK;
    if (st == VL_OK && len == 0)
        return VL_ERR_NOTFOUND; /* an empty object: not a batch (decision 10) */
    if (st != VL_OK && st != VL_ERR_NOTFOUND)
        return vl_fail(err, VL_ERR_IO,
                       "store unavailable: %s exists and could not be read back: %s", name,
                       gerr.msg);
    return vl_fail(err, VL_ERR_CONFLICT,
                   "fenced: another writer took over this store (it created %s); this node "
                   "no longer acknowledges writes",
                   name);
}

static void batch_stored(vl_wal *w, uint64_t seq, uint64_t last)
{
    /* Out of memory here only means the object is never removed. */
    if (vl_wal_remember_closed(w, seq, last, w->batch_len, NULL) == VL_OK)
        w->store_bytes += w->batch_len;
    if (last > w->synced_lsn)
        w->synced_lsn = last;
    w->next_seq = seq + 1;
    w->puts++;
    w->batch_len = 0;
    w->batch_busy = 0;
    w->stalled = 0;
}

/* Index in closed of the oldest object that is not a fence, or nclosed. */
static size_t oldest_plain(const vl_wal *w)
{
    size_t i = 0;
    while (i < w->nclosed && is_fence(&w->closed[i]))
        i++;
    return i;
}

/* The oldest closed object that is not a fence if a version covers it
 * and it is not the newest (decisions 5, 9): its number, else 0. */
static uint64_t removable(const vl_wal *w, uint64_t through)
{
    size_t i = oldest_plain(w);
    if (!through || i + 1 >= w->nclosed || w->closed[i].last_lsn > through)
        return 0;
    return w->closed[i].no;
}

/* Remove closed object seq, the oldest that is not a fence (mu held on
 * entry and exit). */
static void remove_oldest(vl_wal *w, uint64_t seq)
{
    char name[OBJ_NAME_LEN + 1];
    obj_name(name, seq);
    pthread_mutex_unlock(&w->mu);
    vl_error err;
    vl_status st = vl_obj_del(w->store, name, &err);
    pthread_mutex_lock(&w->mu);
    if (st != VL_OK && st != VL_ERR_NOTFOUND) {
        w->remove_lsn = 0; /* the object stays; the next commit asks again */
        return;
    }
    size_t i = oldest_plain(w);
    w->store_bytes -= w->closed[i].size;
    memmove(w->closed + i, w->closed + i + 1, (w->nclosed - i - 1) * sizeof *w->closed);
    w->nclosed--;
}

/* Decision 5, continued: when a version covers the newest object too, an
 * empty successor takes over its number, so it can go as well and the
 * next open downloads nothing (mu held). */
static int tail_wanted(const vl_wal *w)
{
    size_t i = oldest_plain(w);
    return !w->fenced && !w->stalled && !w->batch_busy && w->remove_lsn && i + 1 == w->nclosed &&
           w->closed[i].size > 0 && w->closed[i].last_lsn <= w->remove_lsn;
}

/* 1 when object seq exists and is empty (decision 10).  Called with mu
 * held; it is released for the request. */
static int holds_empty(vl_wal *w, uint64_t seq)
{
    char name[OBJ_NAME_LEN + 1];
    obj_name(name, seq);
    void *data = NULL;
    size_t len = 1;
    pthread_mutex_unlock(&w->mu);
    vl_status st = vl_obj_get(w->store, name, &data, &len, NULL);
    pthread_mutex_lock(&w->mu);
    free(data);
    return st == VL_OK && len == 0;
}

static void set_fenced(vl_wal *w, uint64_t seq)
{
    w->fenced = 1;
    vl_fail(&w->store_err, VL_ERR_CONFLICT,
            "fenced: another writer took over this store (it created wal/%020" PRIu64
            ".log); this node no longer acknowledges writes",
            seq);
    wake(w);
}

static void store_tail(vl_wal *w)
{
    uint64_t seq = w->next_seq, last = w->closed[w->nclosed - 1].last_lsn;
    pthread_mutex_unlock(&w->mu);
    vl_error err;
    vl_status st = put_empty(w, seq, &err);
    pthread_mutex_lock(&w->mu);
    if (st == VL_ERR_CONFLICT && holds_empty(w, seq)) { /* decision 10 */
        vl_wal_remember_closed(w, seq, last, 0, NULL);
        w->next_seq = seq + 1;
    } else if (st == VL_OK && vl_wal_remember_closed(w, seq, last, 0, &err) == VL_OK) {
        w->next_seq = seq + 1;
    } else if (st == VL_ERR_CONFLICT) {
        set_fenced(w, seq);
    } else {
        w->remove_lsn = 0; /* the next commit asks again */
    }
}

/* Answer the confirmations asked so far (decision 8; mu held). */
static void store_confirmation(vl_wal *w)
{
    uint64_t asked = w->confirm_asked, seq = w->next_seq, last = w->synced_lsn;
    vl_status st = VL_ERR_CONFLICT;
    vl_error err = {{0}};
    if (!w->fenced) {
        pthread_mutex_unlock(&w->mu);
        st = put_empty(w, seq, &err);
        pthread_mutex_lock(&w->mu);
        if (st == VL_ERR_CONFLICT && holds_empty(w, seq)) { /* decision 10: try the next */
            vl_wal_remember_closed(w, seq, last, 0, NULL);
            w->next_seq = seq + 1;
            return; /* confirm_done unchanged: asked again at once */
        }
        if (st == VL_OK)
            w->next_seq = seq + 1; /* ours even if it is not remembered (never removed) */
        if (st == VL_OK)
            vl_wal_remember_closed(w, seq, last, 0, NULL);
        else if (st == VL_ERR_CONFLICT)
            set_fenced(w, seq);
        else if (st != VL_OK)
            vl_fail(&w->confirm_err, st, "store unavailable: creating wal/%020" PRIu64 ".log: %s",
                    seq, err.msg);
    }
    w->confirm_st = st;
    w->confirm_done = asked;
    pthread_cond_broadcast(&w->cv);
}

static void pause_ms(vl_wal *w, long ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &deadline) != ETIMEDOUT)
        ;
}

void *vl_wal_store_thread(void *arg)
{
    vl_wal *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) { /* once stopped, only the removals that are due still run */
        int put = !w->stop && w->batch_busy && !w->fenced;
        int confirm = !put && w->confirm_done < w->confirm_asked;
        uint64_t old = put || confirm ? 0 : removable(w, w->remove_lsn);
        int tail = !put && !confirm && !old && tail_wanted(w);
        if (!put && !confirm && !old && !tail) {
            if (w->stop)
                break;
            pthread_cond_wait(&w->cv, &w->mu);
            continue;
        }
        if (confirm) {
            store_confirmation(w);
            continue;
        }
        if (old) {
            remove_oldest(w, old);
            continue;
        }
        if (tail) {
            store_tail(w);
            continue;
        }
        uint64_t seq = w->next_seq, last = w->batch_last;
        pthread_mutex_unlock(&w->mu);
        vl_error err = {{0}};
        vl_status st = put_batch(w, seq, &err);
        pthread_mutex_lock(&w->mu);
        if (st == VL_OK) {
            batch_stored(w, seq, last);
        } else if (st == VL_ERR_NOTFOUND) { /* an empty object there: the next number */
            vl_wal_remember_closed(w, seq, w->synced_lsn, 0, NULL);
            w->next_seq = seq + 1;
            continue;
        } else {
            w->fenced = st == VL_ERR_CONFLICT;
            w->stalled = !w->fenced;
            w->store_err = err;
        }
        pthread_cond_broadcast(&w->cv);
        wake(w);
        if (w->stalled)
            pause_ms(w, RETRY_MS);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- the caller's side --------------------------------------------------- */

/* Hand the pending records to the thread as the next batch (mu held). */
static void form_batch(vl_wal *w)
{
    unsigned char *spare = w->batch;
    size_t spare_cap = w->batch_cap;
    w->batch = w->buf;
    w->batch_len = w->buf_len;
    w->batch_cap = w->buf_cap;
    w->buf = spare;
    w->buf_cap = spare_cap;
    w->buf_len = 0;
    w->batch_last = w->last_lsn;
    w->written_lsn = w->last_lsn;
    w->sync_target = w->last_lsn;
    w->batch_busy = 1;
    pthread_cond_broadcast(&w->cv);
}

vl_status vl_wal_store_write(vl_wal *w)
{
    pthread_mutex_lock(&w->mu);
    if (!w->batch_busy && w->buf_len)
        form_batch(w);
    pthread_mutex_unlock(&w->mu);
    return VL_OK;
}

/* The refusal of a fenced or stalled log (mu held), or VL_OK. */
static vl_status refusal(vl_wal *w, vl_error *err)
{
    if (w->fenced)
        return vl_fail(err, VL_ERR_CONFLICT, "%s", w->store_err.msg);
    if (w->stalled)
        return vl_fail(err, VL_ERR_IO, "%s", w->store_err.msg);
    return VL_OK;
}

vl_status vl_wal_store_sync(vl_wal *w, vl_error *err)
{
    vl_status st = VL_OK;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        if ((st = refusal(w, err)) != VL_OK)
            break;
        if (!w->batch_busy && !w->buf_len)
            break;
        if (!w->batch_busy)
            form_batch(w);
        pthread_cond_wait(&w->cv, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return st;
}

vl_status vl_wal_store_check(vl_wal *w, vl_error *err)
{
    pthread_mutex_lock(&w->mu);
    vl_status st = refusal(w, err);
    pthread_mutex_unlock(&w->mu);
    return st;
}

vl_status vl_wal_writable(vl_wal *w, vl_error *err)
{
    return w->store ? vl_wal_store_check(w, err) : VL_OK;
}

int vl_wal_in_store(const vl_wal *w)
{
    return w->store != NULL;
}

vl_status vl_wal_confirm_writer(vl_wal *w, vl_error *err)
{
    if (!w->store)
        return VL_OK;
    pthread_mutex_lock(&w->mu);
    uint64_t ticket = ++w->confirm_asked;
    pthread_cond_broadcast(&w->cv);
    while (w->confirm_done < ticket && !w->fenced && !w->stalled && w->thread_started)
        pthread_cond_wait(&w->cv, &w->mu);
    vl_status st = w->fenced || w->stalled ? refusal(w, err) : VL_OK;
    if (st == VL_OK && w->confirm_done >= ticket && w->confirm_st != VL_OK)
        st = vl_fail(err, w->confirm_st, "%s", w->confirm_err.msg);
    else if (st == VL_OK && w->confirm_done < ticket)
        st = vl_fail(err, VL_ERR_IO, "wal: the store thread is not running");
    pthread_mutex_unlock(&w->mu);
    return st;
}

vl_status vl_wal_store_remove_through(vl_wal *w, uint64_t lsn, vl_error *err)
{
    (void)err; /* the thread removes them; a failed removal is retried after the next commit */
    pthread_mutex_lock(&w->mu);
    if (lsn > w->remove_lsn)
        w->remove_lsn = lsn;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return VL_OK;
}

void vl_wal_store_close(vl_wal *w)
{
    vl_wal_store_sync(w, NULL); /* a stalled or fenced batch was never acknowledged */
    if (w->thread_started) {
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    vl_wal_free(w);
}

/* ---- reading without writing (followers) --------------------------------- */

vl_status vl_wal_store_list(vl_objstore *store, uint64_t after, vl_wal_object **out, size_t *n,
                            vl_error *err)
{
    vl_objinfo *objs = NULL;
    size_t nobjs = 0;
    *out = NULL;
    *n = 0;
    vl_status st = vl_obj_list(store, "wal/", &objs, &nobjs, err);
    if (st == VL_OK && nobjs)
        *out = malloc(nobjs * sizeof **out);
    if (st == VL_OK && nobjs && !*out)
        st = vl_fail(err, VL_ERR_NOMEM, "wal: out of memory listing %zu objects", nobjs);
    for (size_t i = 0; st == VL_OK && i < nobjs; i++) {
        uint64_t seq;
        if (parse_obj_name(objs[i].name, &seq) && seq > after)
            (*out)[(*n)++] = (vl_wal_object){seq, objs[i].size == FENCE_LEN ? 0 : objs[i].size};
    }
    vl_objinfo_free(objs, nobjs);
    /* The listing is sorted by name, and the names sort as their numbers. */
    return st;
}

/* Decode every record of data (len bytes, an object named name), LSNs
 * consecutive from expect (any when 0), through apply (may be NULL). */
static vl_status scan_object(const char *name, const void *data, size_t len, uint64_t expect,
                             vl_wal_apply_fn apply, void *ctx, uint64_t *last, vl_error *err)
{
    vl_wal_replay rs = {apply, ctx, expect ? expect - 1 : 0,
                        malloc((size_t)VL_MAX_DIM * sizeof(float)), 0};
    if (!rs.scratch)
        return vl_fail(err, VL_ERR_NOMEM, "wal: out of memory reading %s", name);
    vl_status st = vl_wal_replay_object(&rs, name, data, len, err);
    free(rs.scratch);
    if (last)
        *last = rs.last_lsn;
    return st;
}

vl_status vl_wal_store_get(vl_objstore *store, uint64_t seq, void **data, size_t *len,
                           vl_error *err)
{
    char name[OBJ_NAME_LEN + 1];
    obj_name(name, seq);
    *data = NULL;
    *len = 0;
    vl_status st = vl_obj_get(store, name, data, len, err);
    if (st == VL_ERR_NOTFOUND)
        return vl_fail(err, st, "%s was removed (a committed version covers it)", name);
    return st;
}

vl_status vl_wal_object_check(uint64_t seq, const void *data, size_t len, uint64_t expect,
                              vl_wal_apply_fn check, void *ctx, uint64_t *last, vl_error *err)
{
    char name[OBJ_NAME_LEN + 1];
    obj_name(name, seq);
    vl_status st = scan_object(name, data, len, expect, check, ctx, last, err);
    if (st == VL_OK && len == 0)
        *last = expect ? expect - 1 : 0;
    return st;
}

vl_status vl_wal_store_read(vl_objstore *store, uint64_t seq, uint64_t expect,
                            vl_wal_apply_fn check, void *ctx, void **data, size_t *len,
                            uint64_t *last, vl_error *err)
{
    *last = 0;
    vl_status st = vl_wal_store_get(store, seq, data, len, err);
    if (st == VL_OK)
        st = vl_wal_object_check(seq, *data, *len, expect, check, ctx, last, err);
    if (st != VL_OK) {
        free(*data);
        *data = NULL;
        *len = 0;
    }
    return st;
}

vl_status vl_wal_object_apply(uint64_t seq, const void *data, size_t len, vl_wal_apply_fn apply,
                              void *ctx, vl_error *err)
{
    char name[OBJ_NAME_LEN + 1];
    obj_name(name, seq);
    return scan_object(name, data, len, 0, apply, ctx, NULL, err);
}
