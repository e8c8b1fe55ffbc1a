/*
 * cmd_vectors.c - VSET, VGET, VDEL, CLEAR and VSEARCH on the default
 * collection.
 *
 * Writes return before they are durable; the reply waits in the client's
 * buffer until the server's group commit (see server.c), so +OK still
 * means "on disk".  VSEARCH validates and pins a snapshot here, on the
 * loop thread, then scores it on worker threads (large collections in
 * several parts at once) and replies when the last part is done; the
 * client's later requests wait so replies keep their order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands/commands.h"
#include "commands/vector_args.h"
#include "core/vector_text.h"
#include "server/server.h"
#include "util/alloc.h"
#include "util/error.h"

/* Scratch for parsing vectors on the loop thread. */
static _Alignas(64) float scratch[VL_MAX_DIM];

static vl_dispatch_result reply_status(vl_client *c, vl_status st, const vl_error *err)
{
    if (st == VL_OK)
        vl_reply_simple(&c->out, "OK");
    else
        vl_reply_error(&c->out, "ERR %s", err->msg);
    return VL_DISPATCH_DONE;
}

/* VSET key vector | VSET key FP32 blob */
vl_dispatch_result vl_cmd_vset(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    vl_error err;
    uint32_t dim;
    int used;
    vl_status st = vl_vector_arg(argc, argv, lens, 2, scratch, &dim, &used, &err);
    if (st == VL_OK && 2 + used != argc)
        return reply_status(c, vl_fail(&err, VL_ERR_ARG, "syntax error: VSET key vector"), &err);
    if (st == VL_OK)
        st = vl_put(server.engine, VL_DEFAULT_COLLECTION, argv[1], lens[1], scratch, dim, &err);
    if (st == VL_OK)
        server.writes++;
    return reply_status(c, st, &err);
}

/* Parse "VERSION n" at argv[i]; returns VL_OK and sets *version. */
static vl_status version_arg(int argc, const char **argv, const size_t *lens, int i,
                             uint64_t *version, vl_error *err)
{
    if (i + 1 >= argc || !vl_arg_is(argv[i], lens[i], "VERSION"))
        return vl_fail(err, VL_ERR_ARG, "syntax error near '%.*s'",
                       (int)(lens[i] > 32 ? 32 : lens[i]), argv[i]);
    char num[24];
    size_t n = lens[i + 1];
    char *end;
    if (n == 0 || n >= sizeof num)
        return vl_fail(err, VL_ERR_ARG, "VERSION must be a positive integer");
    memcpy(num, argv[i + 1], n);
    num[n] = '\0';
    unsigned long long v = strtoull(num, &end, 10);
    if (*end || v == 0 || num[0] == '-')
        return vl_fail(err, VL_ERR_ARG, "VERSION must be a positive integer");
    *version = v;
    return VL_OK;
}

/* VGET key [VERSION n] */
vl_dispatch_result vl_cmd_vget(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    uint32_t dim;
    vl_status st;
    if (argc == 2) {
        st = vl_get(server.engine, VL_DEFAULT_COLLECTION, argv[1], lens[1], scratch, VL_MAX_DIM,
                    &dim);
    } else {
        vl_error err;
        uint64_t version;
        vl_snapshot *snap = NULL;
        if (argc != 4 || version_arg(argc, argv, lens, 2, &version, &err) != VL_OK)
            return reply_status(c, vl_fail(&err, VL_ERR_ARG, "syntax error: VGET key [VERSION n]"),
                                &err);
        st = vl_snapshot_open_version(server.engine, VL_DEFAULT_COLLECTION, version, &snap, &err);
        if (st != VL_OK)
            return reply_status(c, st, &err);
        st = vl_snapshot_get(snap, argv[1], lens[1], scratch, VL_MAX_DIM, &dim);
        vl_snapshot_close(snap);
    }
    if (st != VL_OK) {
        vl_reply_null(&c->out);
        return VL_DISPATCH_DONE;
    }
    char *text = vl_malloc(vl_vector_text_max(dim));
    size_t n = vl_vector_format_text(scratch, dim, text);
    vl_reply_bulk(&c->out, text, n);
    free(text);
    return VL_DISPATCH_DONE;
}

vl_dispatch_result vl_cmd_vdel(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    (void)argc;
    vl_error err;
    int deleted;
    vl_status st =
        vl_delete(server.engine, VL_DEFAULT_COLLECTION, argv[1], lens[1], &deleted, &err);
    if (st != VL_OK)
        return reply_status(c, st, &err);
    server.writes += (uint64_t)deleted;
    vl_reply_int(&c->out, deleted);
    return VL_DISPATCH_DONE;
}

vl_dispatch_result vl_cmd_clear(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    (void)argc, (void)argv, (void)lens;
    vl_error err;
    vl_status st = vl_clear(server.engine, VL_DEFAULT_COLLECTION, &err);
    if (st == VL_OK)
        server.writes++;
    return reply_status(c, st, &err);
}

/* ---- VSEARCH ---- */

/* One VSEARCH in flight: its snapshot, its query and the parts still
 * running.  Parts run on worker threads; their completions arrive on the
 * loop thread, and the last one replies. */
typedef struct {
    vl_client *client;
    vl_snapshot *snap;
    vl_search *search;
    float *query;
    uint32_t k;
    int withscores;
    uint32_t parts_left;
} search_request;

typedef struct {
    vl_job job;
    search_request *req;
    uint32_t part;
} search_part;

static void part_run(vl_job *j)
{
    search_part *p = (search_part *)j;
    vl_search_run_part(p->req->search, p->part);
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

static void request_free(search_request *r)
{
    vl_search_free(r->search);
    vl_snapshot_close(r->snap);
    free(r->query);
    free(r);
}

/* Loop thread.  Keys point into the snapshot: reply before closing it. */
static void part_done(vl_job *j)
{
    search_part *p = (search_part *)j;
    search_request *r = p->req;
    free(p);
    if (--r->parts_left)
        return;
    vl_client *c = r->client;
    if (!(c->flags & VL_CLIENT_CLOSED)) {
        vl_hit *hits = vl_malloc((size_t)r->k * sizeof *hits);
        uint32_t n;
        vl_search_finish(r->search, hits, &n);
        reply_hits(c, hits, n, r->withscores);
        free(hits);
    }
    request_free(r);
    vl_client_unblock(&server.clients, c);
}

#define VSEARCH_SYNTAX "syntax error: VSEARCH vector K [WITHSCORES] [VERSION n]"

static vl_status parse_search_args(int argc, const char **argv, const size_t *lens, uint32_t *dim,
                                   uint32_t *k, int *withscores, uint64_t *version, vl_error *err)
{
    int used;
    vl_status st = vl_vector_arg(argc, argv, lens, 1, scratch, dim, &used, err);
    if (st != VL_OK)
        return st;
    int ki = 1 + used;
    if (ki >= argc)
        return vl_fail(err, VL_ERR_ARG, VSEARCH_SYNTAX);
    if ((st = vl_k_arg(argv[ki], lens[ki], k, err)) != VL_OK)
        return st;
    *withscores = 0;
    *version = 0;
    for (int i = ki + 1; i < argc; i++) {
        if (vl_arg_is(argv[i], lens[i], "WITHSCORES") && !*withscores) {
            *withscores = 1;
        } else if (vl_arg_is(argv[i], lens[i], "VERSION") && !*version) {
            if ((st = version_arg(argc, argv, lens, i, version, err)) != VL_OK)
                return st;
            i++;
        } else {
            return vl_fail(err, VL_ERR_ARG, VSEARCH_SYNTAX);
        }
    }
    return VL_OK;
}

/* VSEARCH vector K [WITHSCORES] [VERSION n]; vector may be FP32 <blob>. */
vl_dispatch_result vl_cmd_vsearch(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    vl_error err;
    uint32_t dim, k;
    int withscores = 0;
    uint64_t version = 0;
    vl_snapshot *snap = NULL;
    vl_status st = parse_search_args(argc, argv, lens, &dim, &k, &withscores, &version, &err);
    if (st == VL_OK && version)
        st = vl_snapshot_open_version(server.engine, VL_DEFAULT_COLLECTION, version, &snap, &err);
    if (st != VL_OK)
        return reply_status(c, st, &err);
    search_request *r = vl_calloc(1, sizeof *r);
    r->client = c;
    r->k = k;
    r->withscores = withscores;
    r->snap = snap ? snap : vl_snapshot_open(server.engine, VL_DEFAULT_COLLECTION);
    r->query = vl_aligned_alloc((size_t)dim * sizeof(float));
    memcpy(r->query, scratch, (size_t)dim * sizeof(float));
    uint32_t parts = vl_search_suggest_parts(r->snap, (uint32_t)server.cfg.threads);
    st = vl_search_new(r->snap, r->query, dim, k, parts, &r->search, &err);
    if (st != VL_OK) {
        request_free(r);
        return reply_status(c, st, &err);
    }
    server.searches++;
    r->parts_left = vl_search_parts(r->search);
    c->flags |= VL_CLIENT_BLOCKED;
    for (uint32_t i = 0; i < r->parts_left; i++) {
        search_part *p = vl_calloc(1, sizeof *p);
        p->job.run = part_run;
        p->job.done = part_done;
        p->req = r;
        p->part = i;
        vl_pool_submit(server.pool, &p->job);
    }
    return VL_DISPATCH_BLOCKED;
}
