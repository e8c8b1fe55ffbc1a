/*
 * cmd_lake.c - SAVE, BGSAVE, LASTSAVE and VERSIONS: the names Redis users
 * know, acting on the lake.  SAVE flushes everything written so far into a
 * new committed version before replying; BGSAVE does the same on a
 * background thread.
 *
 * With a local --dir SAVE blocks the server while it writes, as Redis'
 * SAVE does.  With --storage the store's latency (seconds for a slow or
 * unreachable one, up to --s3-timeout-ms per request) would stall every
 * client, so SAVE blocks only the client that sent it: the flush runs on
 * the background thread (vl_save_begin), after the job in flight if there
 * is one, and the reply goes out when it has committed (vl_saves_poll,
 * after each background completion and every cron tick).  The reply is
 * the same: +OK once everything the client wrote before its SAVE is in a
 * committed version, or the error.
 */
#include <stdlib.h>
#include <string.h>

#include "commands/commands.h"
#include "server/server.h"
#include "util/alloc.h"

typedef struct save_wait {
    vl_client *client;
    int started, done; /* the flush runs / has finished */
    vl_status st;
    vl_error err;
    struct save_wait *next;
} save_wait;

static save_wait *waiting; /* oldest first */

static void save_finished(void *arg, vl_status st, const vl_error *err)
{
    save_wait *w = arg;
    w->done = 1;
    w->st = st;
    if (st != VL_OK)
        w->err = *err;
}

static void save_reply(vl_client *c, vl_status st, const vl_error *err)
{
    if (st != VL_OK)
        vl_reply_error(&c->out, "ERR SAVE failed: %s", err->msg);
    else
        vl_reply_simple(&c->out, "OK");
}

/* Start w's flush if no job runs; 1 when w is answered (no flush needed,
 * or it could not start). */
static int save_try_start(save_wait *w)
{
    vl_error err;
    vl_status st =
        vl_save_begin(server.engine, VL_DEFAULT_COLLECTION, save_finished, w, &w->started, &err);
    if (st == VL_ERR_BUSY)
        return 0;
    if (st == VL_OK && w->started)
        return 0;
    w->done = 1;
    w->st = st;
    w->err = err;
    return 1;
}

void vl_saves_poll(void)
{
    for (save_wait **p = &waiting; *p;) {
        save_wait *w = *p;
        if (!w->started && !w->done)
            save_try_start(w);
        if (!w->done) {
            p = &w->next;
            continue;
        }
        *p = w->next;
        save_reply(w->client, w->st, &w->err);
        vl_client_unblock(&server.clients, w->client);
        free(w);
    }
}

vl_dispatch_result vl_cmd_save(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    (void)argc, (void)argv, (void)lens;
    vl_error err;
    if (!server.cfg.storage[0] || server.cfg.read_only) {
        save_reply(c, vl_save(server.engine, VL_DEFAULT_COLLECTION, &err), &err);
        return VL_DISPATCH_DONE;
    }
    save_wait *w = vl_calloc(1, sizeof *w);
    w->client = c;
    if (save_try_start(w)) {
        save_reply(c, w->st, &w->err);
        free(w);
        return VL_DISPATCH_DONE;
    }
    save_wait **tail = &waiting;
    while (*tail)
        tail = &(*tail)->next;
    *tail = w;
    c->flags |= VL_CLIENT_BLOCKED;
    return VL_DISPATCH_BLOCKED;
}

/* BGSAVE [SCHEDULE]: SCHEDULE waits for a running job instead of failing. */
vl_dispatch_result vl_cmd_bgsave(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    vl_error err;
    int schedule = argc == 2 && vl_arg_is(argv[1], lens[1], "SCHEDULE");
    if (argc > 2 || (argc == 2 && !schedule)) {
        vl_reply_error(&c->out, "ERR syntax error: BGSAVE [SCHEDULE]");
        return VL_DISPATCH_DONE;
    }
    if (schedule && vl_background_busy(server.engine)) {
        vl_reply_simple(&c->out, "Background saving scheduled");
        server.bgsave_scheduled = 1;
        return VL_DISPATCH_DONE;
    }
    if (vl_bgsave(server.engine, VL_DEFAULT_COLLECTION, &err) != VL_OK)
        vl_reply_error(&c->out, "ERR %s", err.msg);
    else
        vl_reply_simple(&c->out, "Background saving started");
    return VL_DISPATCH_DONE;
}

vl_dispatch_result vl_cmd_lastsave(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    (void)argc, (void)argv, (void)lens;
    vl_reply_int(&c->out, vl_last_save(server.engine));
    return VL_DISPATCH_DONE;
}

/* VERSIONS: the retained versions, oldest first, each a map of version,
 * created_ms (commit time, unix milliseconds) and rows. */
vl_dispatch_result vl_cmd_versions(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    (void)argc, (void)argv, (void)lens;
    vl_version_info *v;
    size_t n;
    vl_versions(server.engine, VL_DEFAULT_COLLECTION, &v, &n);
    if (vl_client_reserve_output(c, 16 + n * 128) != 0) { /* 128: one map's bound */
        free(v);
        return VL_DISPATCH_DONE;
    }
    vl_reply_array(&c->out, n);
    for (size_t i = 0; i < n; i++) {
        vl_reply_map(&c->out, 3);
        vl_reply_bulk_str(&c->out, "version");
        vl_reply_int(&c->out, (long long)v[i].version);
        vl_reply_bulk_str(&c->out, "created_ms");
        vl_reply_int(&c->out, v[i].created_ms);
        vl_reply_bulk_str(&c->out, "rows");
        vl_reply_int(&c->out, (long long)v[i].rows);
    }
    free(v);
    return VL_DISPATCH_DONE;
}
