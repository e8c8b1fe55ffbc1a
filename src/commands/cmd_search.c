/*
 * cmd_search.c - VSEARCH vector K [EF n] [NPROBE n] [EXACT] [WITHSCORES]
 * [VERSION n].
 *
 * The handler validates and pins a snapshot on the loop thread, then the
 * scoring runs on worker threads (a large collection in several parts at
 * once) and the last part to finish replies.  A search smaller than the
 * cost of the hand-off (vl_search_is_small) runs inline instead.  A search
 * in one part is also merged and re-scored (vl_search_finish) on its
 * worker, where its winners' vectors are still in cache; the loop only
 * writes the reply.  The client's later requests wait, so replies keep
 * their order.  With VERSION n the version is first
 * loaded off the loop if it is not cached (version_loader.c); the options
 * travel with the request and apply to that version's indexes.
 *
 * Options come after K in any order, case-insensitive, each at most once
 * (a repeat is a syntax error rather than "the last one wins", so a client
 * that builds commands by appending learns of its bug).  EF and NPROBE may
 * be given together: EF applies to HNSW segments, NPROBE to IVF segments,
 * and an option for an index the collection does not use has no effect.
 * EXACT with EF or NPROBE is refused: an exact scan uses no index, so the
 * numbers would be silently ignored.
 *
 * Durability: a reply may show only durable changes (a crash must not undo
 * what a client saw).  A search of the current state reads the durable
 * snapshot (vl_snapshot_open_durable) and its reply is tagged with that
 * snapshot's LSN (VL_CLIENT_READ_AT), so it leaves at once instead of
 * waiting for the fsync of other clients' newest writes -- under an insert
 * stream that was one fsync per search.  A client whose own output still
 * waits for durability may have a write in flight (VSET then VSEARCH in a
 * pipeline): it reads the newest state, read-your-writes, and its reply
 * waits for that state as before; it could not leave before the earlier
 * replies anyway.
 */
#include <stdlib.h>
#include <string.h>

#include "commands/commands.h"
#include "commands/vector_args.h"
#include "server/server.h"
#include "util/alloc.h"
#include "util/error.h"

#define VSEARCH_SYNTAX                                                                             \
    "syntax error: VSEARCH vector K [EF n] [NPROBE n] [EXACT] [WITHSCORES] [VERSION n]"

typedef struct search_request search_request;

typedef struct {
    vl_job job;
    search_request *req;
    uint32_t part;
} search_part;

/* Winners kept in the request itself (K up to this needs no block). */
#define INLINE_HITS 16

/* One VSEARCH in flight: its snapshot, its query and the parts running.
 * One block holds the request, its first part's job, up to INLINE_HITS
 * winners and the query (after it, 64-byte aligned): a search used to
 * allocate five blocks here (perf, sift at 50 clients: malloc and free
 * were 3.6% of the server). */
struct search_request {
    vl_client *client;
    vl_snapshot *snap;
    vl_search *search;
    float *query;
    uint32_t dim, k;
    int withscores;
    uint64_t version;
    uint64_t read_lsn; /* the newest change the snapshot shows (no VERSION) */
    vl_search_opts opts;
    uint32_t parts_left;
    vl_hit *hits; /* the winners, once merged (NULL before) */
    uint32_t nhits;
    search_part first; /* part 0's job */
    vl_hit inline_hits[INLINE_HITS];
};

#define QUERY_OFFSET ((sizeof(search_request) + 63) & ~(size_t)63)

static search_request *request_new(uint32_t dim)
{
    search_request *r = vl_aligned_alloc(QUERY_OFFSET + (size_t)dim * sizeof(float));
    memset(r, 0, sizeof *r);
    r->query = (float *)((char *)r + QUERY_OFFSET);
    return r;
}

static void request_free(search_request *r)
{
    if (r->hits != r->inline_hits)
        free(r->hits);
    vl_search_free(r->search);
    vl_snapshot_close(r->snap);
    free(r); /* and the query */
}

/* Merge the parts and re-score the winners in double (vl_search_finish). */
static void merge_hits(search_request *r)
{
    r->hits = r->k <= INLINE_HITS ? r->inline_hits : vl_malloc((size_t)r->k * sizeof *r->hits);
    vl_search_finish(r->search, r->hits, &r->nhits);
}

/* Worker thread.  A search in one part (every indexed search with a small
 * unindexed tail) is also finished here: its winners' vectors are in this
 * core's cache, and re-scoring them on the loop's core read them from
 * memory again (perf, fashion-mnist at 50 clients: the finish's first
 * loads were half of its 10% of the server's time). */
static void part_run(vl_job *j)
{
    search_part *p = (search_part *)j;
    vl_search_run_part(p->req->search, p->part);
    if (vl_search_parts(p->req->search) == 1)
        merge_hits(p->req);
}

static void reply_hits(vl_client *c, const vl_hit *hits, uint32_t n, int withscores)
{
    if (withscores)
        vl_reply_map(&c->out, n);
    else
        vl_reply_array(&c->out, n);
    for (uint32_t i = 0; i < n; i++) {
        vl_reply_bulk(&c->out, hits[i].key, hits[i].keylen);
        if (withscores)
            vl_reply_double(&c->out, hits[i].score);
    }
}

/* Bytes reply_hits() will queue, at most: per hit a bulk header of up to
 * 8 characters plus CRLFs around the key, and a score of up to 32 bytes
 * (RESP2 bulk or RESP3 double of %.17g). */
static size_t reply_bound(const vl_hit *hits, uint32_t n, int withscores)
{
    size_t bytes = 16;
    for (uint32_t i = 0; i < n; i++)
        bytes += hits[i].keylen + 12 + (withscores ? 32 : 0);
    return bytes;
}

/* Merge the parts and reply (keys point into the snapshot: before closing
 * it), then free the request.  K hits of 64 KiB keys make 650 MB from a
 * 21-byte request, so the reply is sized and admitted against the client's
 * output limit before a byte of it is built. */
static void finish(search_request *r)
{
    vl_client *c = r->client;
    if (!(c->flags & VL_CLIENT_CLOSED)) {
        if (!r->hits)
            merge_hits(r);
        if (vl_client_reserve_output(c, reply_bound(r->hits, r->nhits, r->withscores)) == 0)
            reply_hits(c, r->hits, r->nhits, r->withscores);
        if (!r->version) { /* the reply waits for its snapshot, not the newest write */
            c->read_lsn = r->read_lsn;
            c->flags |= VL_CLIENT_READ_AT;
        }
    }
    request_free(r);
}

/* Loop thread: the last part to finish replies. */
static void part_done(vl_job *j)
{
    search_part *p = (search_part *)j;
    search_request *r = p->req;
    if (p != &r->first)
        free(p);
    if (--r->parts_left)
        return;
    vl_client *c = r->client;
    finish(r);
    vl_client_unblock(&server.clients, c);
}

/* Pin the snapshot, validate, and hand the parts to the workers. */
static vl_dispatch_result start_search(search_request *r)
{
    vl_client *c = r->client;
    vl_error err;
    vl_status st = VL_OK;
    if (r->version)
        st = vl_snapshot_open_version(server.engine, VL_DEFAULT_COLLECTION, r->version, &r->snap,
                                      &err);
    else if (vl_client_output_waits(c)) /* its own write may be in flight: show it */
        r->snap = vl_snapshot_open(server.engine, VL_DEFAULT_COLLECTION);
    else
        r->snap = vl_snapshot_open_durable(server.engine, VL_DEFAULT_COLLECTION);
    if (!r->version)
        r->read_lsn = vl_snapshot_lsn(r->snap);
    if (st == VL_OK) {
        uint32_t parts = vl_search_suggest_parts(r->snap, (uint32_t)server.cfg.threads);
        st = vl_search_new_opts(r->snap, r->query, r->dim, r->k, parts, &r->opts, &r->search, &err);
    }
    if (st != VL_OK || (c->flags & VL_CLIENT_CLOSED)) {
        if (st != VL_OK && !(c->flags & VL_CLIENT_CLOSED))
            vl_reply_error(&c->out, "ERR %s", err.msg);
        request_free(r);
        return VL_DISPATCH_DONE;
    }
    server.searches++;
    if (vl_search_is_small(r->snap)) { /* cheaper than two thread hand-offs */
        vl_search_run_part(r->search, 0);
        finish(r);
        return VL_DISPATCH_DONE;
    }
    r->parts_left = vl_search_parts(r->search);
    c->flags |= VL_CLIENT_BLOCKED;
    for (uint32_t i = 0; i < r->parts_left; i++) {
        search_part *p = i ? vl_calloc(1, sizeof *p) : &r->first;
        p->job.run = part_run;
        p->job.done = part_done;
        p->job.small = r->parts_left == 1; /* an index walk, or a scan of under 1M floats */
        p->req = r;
        p->part = i;
        vl_pool_submit(server.pool, &p->job);
    }
    return VL_DISPATCH_BLOCKED;
}

static vl_dispatch_result version_ready(void *arg, vl_status st, const vl_error *err)
{
    search_request *r = arg;
    if (st == VL_OK)
        return start_search(r);
    if (!(r->client->flags & VL_CLIENT_CLOSED))
        vl_reply_error(&r->client->out, "ERR %s", err->msg);
    request_free(r);
    return VL_DISPATCH_DONE;
}

static vl_status given_twice(const char *name, vl_error *err)
{
    return vl_fail(err, VL_ERR_ARG, "syntax error: %s given more than once", name);
}

/* The options after K; i is the first word after K. */
static vl_status parse_options(int argc, const char **argv, const size_t *lens, int i,
                               search_request *r, vl_error *err)
{
    vl_search_opts *o = &r->opts;
    vl_status st = VL_OK;
    for (; i < argc && st == VL_OK; i++) {
        const char *w = argv[i];
        size_t n = lens[i];
        if (vl_arg_is(w, n, "WITHSCORES")) {
            st = r->withscores ? given_twice("WITHSCORES", err) : VL_OK;
            r->withscores = 1;
        } else if (vl_arg_is(w, n, "EXACT")) {
            st = o->exact ? given_twice("EXACT", err) : VL_OK;
            o->exact = 1;
        } else if (vl_arg_is(w, n, "EF")) {
            st = o->ef
                     ? given_twice("EF", err)
                     : vl_bounded_arg(argc, argv, lens, i, "EF", 1, VL_VSEARCH_MAX_EF, &o->ef, err);
            i++; /* its value */
        } else if (vl_arg_is(w, n, "NPROBE")) {
            st = o->nprobe ? given_twice("NPROBE", err)
                           : vl_bounded_arg(argc, argv, lens, i, "NPROBE", 1, VL_VSEARCH_MAX_NPROBE,
                                            &o->nprobe, err);
            i++;
        } else if (vl_arg_is(w, n, "VERSION")) {
            st = r->version ? given_twice("VERSION", err)
                            : vl_version_arg(argc, argv, lens, i, &r->version, err);
            i++;
        } else {
            st = vl_fail(err, VL_ERR_ARG, VSEARCH_SYNTAX);
        }
    }
    if (st == VL_OK && o->exact && (o->ef || o->nprobe))
        st = vl_fail(err, VL_ERR_ARG,
                     "EXACT cannot be combined with EF or NPROBE: an exact scan uses no index");
    return st;
}

/* VSEARCH vector K [options]; vector may be FP32 <blob>. */
vl_dispatch_result vl_cmd_vsearch(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    vl_error err;
    uint32_t dim, k;
    int used;
    float *scratch = vl_scratch_vector();
    vl_status st = vl_vector_arg(argc, argv, lens, 1, scratch, &dim, &used, &err);
    int ki = 1 + used;
    if (st == VL_OK && ki >= argc)
        st = vl_fail(&err, VL_ERR_ARG, VSEARCH_SYNTAX);
    if (st == VL_OK)
        st = vl_k_arg(argv[ki], lens[ki], &k, &err);
    search_request *r = request_new(st == VL_OK ? dim : 0);
    if (st == VL_OK)
        st = parse_options(argc, argv, lens, ki + 1, r, &err);
    if (st != VL_OK) {
        free(r);
        return vl_reply_status(c, st, &err);
    }
    r->client = c;
    r->k = k;
    r->dim = dim;
    memcpy(r->query, scratch, (size_t)dim * sizeof(float));
    if (r->version)
        return vl_with_version(c, r->version, version_ready, r);
    return start_search(r);
}
