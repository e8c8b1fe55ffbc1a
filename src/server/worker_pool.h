/*
 * worker_pool.h - threads that run slow work (searches) off the event loop.
 *
 * A job's run() executes on a worker thread; its done() then executes on
 * the event-loop thread, woken through an eventfd.  A small job may also
 * be run by the loop itself when it would otherwise sleep (vl_pool_help).  So handlers touch
 * clients and replies only on the loop thread, and workers touch only
 * what the job owns (a snapshot, a query).
 */
#ifndef VL_SERVER_WORKER_POOL_H
#define VL_SERVER_WORKER_POOL_H

#include <stdint.h>

#include "network/event_loop.h"

typedef struct vl_job {
    void (*run)(struct vl_job *job);  /* worker thread, or the loop's (small) */
    void (*done)(struct vl_job *job); /* loop thread; frees the job */
    int small; /* well under a millisecond: vl_pool_help may run it on the loop */
    struct vl_job *next;
} vl_job;

typedef struct vl_pool vl_pool;

/** Start nthreads workers whose completions are delivered on loop. */
vl_pool *vl_pool_new(int nthreads, vl_loop *loop);
void vl_pool_submit(vl_pool *p, vl_job *job);
/** Loop thread, when it has nothing else to do: run the oldest queued job
 *  right there if it is small, then its done(); 1 if one ran. */
int vl_pool_help(vl_pool *p);
/** The loop calls vl_pool_help before every sleep: a small job submitted
 *  to an empty queue is then left to it instead of waking a worker. */
void vl_pool_loop_helps(vl_pool *p);
/** Jobs submitted and not yet done. */
uint64_t vl_pool_inflight(const vl_pool *p);
/** Finish queued jobs, deliver their completions, stop the threads. */
void vl_pool_free(vl_pool *p);

#endif
