/*
 * cmd_vectors.c - VSET, VGET, VDEL, CLEAR and VSEARCH on the default
 * collection.
 *
 * Writes return before they are durable; the reply waits in the client's
 * buffer until the server's group commit (see server.c), so +OK still
 * means "on disk".  VSEARCH pins a snapshot here, on the loop thread, then
 * scores on a worker thread and replies when done; the client's later
 * requests wait so replies keep their order.
 */
#include <stdlib.h>
#include <string.h>

#include "commands/commands.h"
#include "commands/vector_args.h"
#include "core/vector_text.h"
#include "server/server.h"
#include "util/alloc.h"

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

vl_dispatch_result vl_cmd_vget(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    (void)argc;
    uint32_t dim;
    if (vl_get(server.engine, VL_DEFAULT_COLLECTION, argv[1], lens[1], scratch, VL_MAX_DIM, &dim) !=
        VL_OK) {
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
    vl_status st = vl_delete(server.engine, VL_DEFAULT_COLLECTION, argv[1], lens[1], &deleted, &err);
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

typedef struct {
    vl_job job;
    vl_client *client;
    vl_snapshot *snap;
    float *query;
    uint32_t dim, k;
    int withscores;
    vl_hit *hits;
    uint32_t nhits;
    vl_status st;
    vl_error err;
} search_job;

static void search_run(vl_job *j)
{
    search_job *s = (search_job *)j;
    s->st = vl_snapshot_search(s->snap, s->query, s->dim, s->k, s->hits, &s->nhits, &s->err);
}

static void reply_hits(vl_client *c, const search_job *s)
{
    if (s->withscores)
        vl_reply_map(&c->out, s->nhits);
    else
        vl_reply_array(&c->out, s->nhits);
    for (uint32_t i = 0; i < s->nhits; i++) {
        vl_reply_bulk(&c->out, s->hits[i].key, s->hits[i].keylen);
        if (s->withscores)
            vl_reply_double(&c->out, s->hits[i].score);
    }
}

/* Loop thread: reply (keys point into the snapshot, so before closing it). */
static void search_done(vl_job *j)
{
    search_job *s = (search_job *)j;
    vl_client *c = s->client;
    if (!(c->flags & VL_CLIENT_CLOSED)) {
        if (s->st == VL_OK)
            reply_hits(c, s);
        else
            vl_reply_error(&c->out, "ERR %s", s->err.msg);
    }
    vl_snapshot_close(s->snap);
    free(s->query);
    free(s->hits);
    free(s);
    vl_client_unblock(&server.clients, c);
}

/* VSEARCH vector K [WITHSCORES] | VSEARCH FP32 blob K [WITHSCORES] */
vl_dispatch_result vl_cmd_vsearch(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    vl_error err;
    uint32_t dim, k;
    int used, withscores = 0;
    vl_status st = vl_vector_arg(argc, argv, lens, 1, scratch, &dim, &used, &err);
    if (st != VL_OK)
        return reply_status(c, st, &err);
    int ki = 1 + used;
    if (ki >= argc)
        return reply_status(c, vl_fail(&err, VL_ERR_ARG, "syntax error: VSEARCH vector K [WITHSCORES]"),
                            &err);
    if ((st = vl_k_arg(argv[ki], lens[ki], &k, &err)) != VL_OK)
        return reply_status(c, st, &err);
    if (ki + 1 < argc && vl_arg_is(argv[ki + 1], lens[ki + 1], "WITHSCORES"))
        withscores = 1;
    if (ki + 1 + withscores != argc)
        return reply_status(c, vl_fail(&err, VL_ERR_ARG, "syntax error: VSEARCH vector K [WITHSCORES]"),
                            &err);

    search_job *s = vl_calloc(1, sizeof *s);
    s->job.run = search_run;
    s->job.done = search_done;
    s->client = c;
    s->snap = vl_snapshot_open(server.engine, VL_DEFAULT_COLLECTION);
    s->query = vl_aligned_alloc((size_t)dim * sizeof(float));
    memcpy(s->query, scratch, (size_t)dim * sizeof(float));
    s->dim = dim;
    s->k = k;
    s->withscores = withscores;
    s->hits = vl_malloc((size_t)k * sizeof *s->hits);
    server.searches++;
    c->flags |= VL_CLIENT_BLOCKED;
    vl_pool_submit(server.pool, &s->job);
    return VL_DISPATCH_BLOCKED;
}
