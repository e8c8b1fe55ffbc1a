/*
 * cmd_vectors.c - VSET, VGET, VDEL and CLEAR on the default collection
 * (VSEARCH is in cmd_search.c).
 *
 * Writes return before they are durable; the reply waits in the client's
 * buffer until the server's group commit (see server.c), so +OK still
 * means "on disk".
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

/* VSET key vector | VSET key FP32 blob */
vl_dispatch_result vl_cmd_vset(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    float *scratch = vl_scratch_vector();
    vl_error err;
    uint32_t dim;
    int used;
    vl_status st = vl_vector_arg(argc, argv, lens, 2, scratch, &dim, &used, &err);
    if (st == VL_OK && 2 + used != argc)
        return vl_reply_status(c, vl_fail(&err, VL_ERR_ARG, "syntax error: VSET key vector"), &err);
    if (st == VL_OK)
        st = vl_put(server.engine, VL_DEFAULT_COLLECTION, argv[1], lens[1], scratch, dim, &err);
    if (st == VL_OK)
        server.writes++;
    if (st == VL_ERR_NOMEM) { /* past --maxmemory: Redis' reply, word for word */
        vl_reply_error(&c->out, "OOM command not allowed when used memory > 'maxmemory'.");
        return VL_DISPATCH_DONE;
    }
    return vl_reply_status(c, st, &err);
}

static void reply_vector(vl_client *c, const float *v, uint32_t dim)
{
    if (vl_client_reserve_output(c, vl_vector_text_max(dim) + 16) != 0)
        return; /* the client is closed for its output limit */
    char *text = vl_malloc(vl_vector_text_max(dim));
    size_t n = vl_vector_format_text(v, dim, text);
    vl_reply_bulk(&c->out, text, n);
    free(text);
}

/* VGET key VERSION n, once version n is loaded (loop thread). */
typedef struct {
    vl_client *client;
    char *key;
    size_t keylen;
    uint64_t version;
} versioned_get;

static vl_dispatch_result vget_version_ready(void *arg, vl_status st, const vl_error *err)
{
    versioned_get *g = arg;
    float *scratch = vl_scratch_vector();
    vl_client *c = g->client;
    vl_snapshot *snap = NULL;
    vl_error e2;
    uint32_t dim;
    if (st == VL_OK)
        st = vl_snapshot_open_version(server.engine, VL_DEFAULT_COLLECTION, g->version, &snap, &e2),
        err = &e2;
    if (!(c->flags & VL_CLIENT_CLOSED)) {
        if (st != VL_OK)
            vl_reply_error(&c->out, "ERR %s", err->msg);
        else if (vl_snapshot_get(snap, g->key, g->keylen, scratch, VL_MAX_DIM, &dim) == VL_OK)
            reply_vector(c, scratch, dim);
        else
            vl_reply_null(&c->out);
    }
    vl_snapshot_close(snap);
    free(g->key);
    free(g);
    return VL_DISPATCH_DONE;
}

/* VGET key [VERSION n] */
vl_dispatch_result vl_cmd_vget(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    float *scratch = vl_scratch_vector();
    uint32_t dim;
    vl_error err;
    uint64_t version;
    if (argc == 2) {
        if (vl_get(server.engine, VL_DEFAULT_COLLECTION, argv[1], lens[1], scratch, VL_MAX_DIM,
                   &dim) == VL_OK)
            reply_vector(c, scratch, dim);
        else
            vl_reply_null(&c->out);
        return VL_DISPATCH_DONE;
    }
    if (argc != 4)
        return vl_reply_status(c, vl_fail(&err, VL_ERR_ARG, "syntax error: VGET key [VERSION n]"),
                               &err);
    vl_status st = vl_version_arg(argc, argv, lens, 2, &version, &err);
    if (st != VL_OK)
        return vl_reply_status(c, st, &err);
    versioned_get *g = vl_calloc(1, sizeof *g);
    g->client = c;
    g->key = vl_strndup(argv[1], lens[1]);
    g->keylen = lens[1];
    g->version = version;
    return vl_with_version(c, version, vget_version_ready, g);
}

vl_dispatch_result vl_cmd_vdel(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    (void)argc;
    vl_error err;
    int deleted;
    vl_status st =
        vl_delete(server.engine, VL_DEFAULT_COLLECTION, argv[1], lens[1], &deleted, &err);
    if (st != VL_OK)
        return vl_reply_status(c, st, &err);
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
    return vl_reply_status(c, st, &err);
}
