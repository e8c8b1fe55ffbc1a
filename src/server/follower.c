/*
 * follower.c - the follow cadence of a --read-only node; see follower.h.
 *
 * Decisions:
 *  1. The lag is measured from the start of the newest run that caught up
 *     (succeeded and applied every WAL object it listed), not from the
 *     writer's commit time: it bounds how old the state served is
 *     (everything acknowledged before that instant is served) and needs no
 *     clock shared with the writer.  With a healthy store it is about one
 *     interval plus one run; while the store cannot be read, or a run had
 *     to stop early (an object removed under it, the follow log full), it
 *     grows, and INFO shows why (follow_last_error) when it is an error.
 *     The first run starts at the first cron tick after the open.
 *  2. Runs go through the worker pool like searches, so a slow store
 *     stalls neither the loop nor the clients, and a run in flight at
 *     shutdown completes (vl_pool_free) before the engine closes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "server/follower.h"
#include "server/server.h"
#include "util/alloc.h"
#include "util/log.h"

typedef struct {
    vl_job job;
    vl_follow *follow;
    int64_t started_ms;
} follow_job;

static struct {
    int running;
    int64_t last_start_ms; /* of the newest run, successful or not */
    int64_t ok_start_ms;   /* of the newest successful run */
    uint64_t polls, errors;
    vl_error last_error;
} fs;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void vl_follower_init(void)
{
    fs.ok_start_ms = now_ms();
    fs.last_start_ms = fs.ok_start_ms - server.cfg.follow_interval_ms;
}

static void follow_run(vl_job *j)
{
    vl_follow_run(((follow_job *)j)->follow);
}

static void follow_done(vl_job *j)
{
    follow_job *f = (follow_job *)j;
    int changed, caught_up;
    vl_error err;
    vl_status st = vl_follow_end(server.engine, f->follow, &changed, &caught_up, &err);
    fs.running = 0;
    fs.polls++;
    if (caught_up)
        fs.ok_start_ms = f->started_ms;
    if (st == VL_OK) {
        if (fs.last_error.msg[0])
            vl_log(VL_LOG_INFO, "following the store again");
        fs.last_error.msg[0] = '\0';
    } else {
        fs.errors++;
        if (!fs.last_error.msg[0])
            vl_log(VL_LOG_WARNING, "cannot follow the store (still serving version %llu): %s",
                   (unsigned long long)vl_current_version(server.engine, VL_DEFAULT_COLLECTION),
                   err.msg);
        fs.last_error = err;
    }
    free(f);
}

void vl_follower_tick(void)
{
    int64_t now = now_ms();
    if (!server.cfg.read_only || fs.running ||
        now - fs.last_start_ms < server.cfg.follow_interval_ms)
        return;
    follow_job *f = vl_calloc(1, sizeof *f);
    f->job.run = follow_run;
    f->job.done = follow_done;
    f->follow = vl_follow_begin(server.engine);
    f->started_ms = fs.last_start_ms = now;
    fs.running = 1;
    vl_pool_submit(server.pool, &f->job);
}

void vl_follower_stats_get(vl_follower_stats *out)
{
    out->polls = fs.polls;
    out->poll_errors = fs.errors;
    out->lag_ms = now_ms() - fs.ok_start_ms;
    out->last_error = fs.last_error.msg;
}
