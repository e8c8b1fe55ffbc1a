/*
 * version_loader.c - reading a retained version for VERSION n without
 * stalling the event loop.
 *
 * The first query against an old version reads its files (possibly
 * hundreds of MB); that runs on a worker thread while the asking client is
 * blocked and everyone else is served.  The engine caches the version, so
 * later queries against it continue at once.
 */
#include <stdlib.h>

#include "commands/commands.h"
#include "server/server.h"
#include "util/alloc.h"

typedef struct {
    vl_job job;
    vl_client *client;
    vl_version_load *load;
    vl_version_ready_fn then;
    void *arg;
} load_job;

static void load_run(vl_job *j)
{
    vl_version_load_run(((load_job *)j)->load);
}

static void load_done(vl_job *j)
{
    load_job *l = (load_job *)j;
    vl_error err;
    vl_status st = vl_version_load_end(server.engine, l->load, &err);
    vl_client *c = l->client;
    vl_dispatch_result r = l->then(l->arg, st, &err);
    free(l);
    if (r == VL_DISPATCH_DONE)
        vl_client_unblock(&server.clients, c);
}

vl_dispatch_result vl_with_version(vl_client *c, uint64_t version, vl_version_ready_fn then,
                                   void *arg)
{
    vl_error err;
    vl_version_load *load;
    vl_status st =
        vl_version_load_begin(server.engine, VL_DEFAULT_COLLECTION, version, &load, &err);
    if (st != VL_OK || !load)
        return then(arg, st, &err);
    load_job *l = vl_calloc(1, sizeof *l);
    l->job.run = load_run;
    l->job.done = load_done;
    l->client = c;
    l->load = load;
    l->then = then;
    l->arg = arg;
    c->flags |= VL_CLIENT_BLOCKED;
    vl_pool_submit(server.pool, &l->job);
    return VL_DISPATCH_BLOCKED;
}
