/*
 * cmd_lake.c - SAVE, BGSAVE, LASTSAVE and VERSIONS: the names Redis users
 * know, acting on the lake.  SAVE flushes everything written so far into a
 * new committed version before replying (it blocks the server while it
 * writes, as Redis' SAVE does); BGSAVE does the same on a background thread.
 */
#include <stdlib.h>

#include "commands/commands.h"
#include "server/server.h"

vl_dispatch_result vl_cmd_save(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    (void)argc, (void)argv, (void)lens;
    vl_error err;
    if (vl_save(server.engine, VL_DEFAULT_COLLECTION, &err) != VL_OK)
        vl_reply_error(&c->out, "ERR SAVE failed: %s", err.msg);
    else
        vl_reply_simple(&c->out, "OK");
    return VL_DISPATCH_DONE;
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
