/*
 * worker_pool.h - threads that run slow work (searches) off the event loop.
 *
 * A job's run() executes on a worker thread; its done() then executes on
 * the event-loop thread, woken through an eventfd.  So handlers touch
 * clients and replies only on the loop thread, and workers touch only
 * what the job owns (a snapshot, a query).
 */
#ifndef VL_SERVER_WORKER_POOL_H
#define VL_SERVER_WORKER_POOL_H

#include <stdint.h>

#include "network/event_loop.h"

typedef struct vl_job {
    void (*run)(struct vl_job *job);  /* worker thread */
    void (*done)(struct vl_job *job); /* loop thread; frees the job */
    struct vl_job *next;
} vl_job;

typedef struct vl_pool vl_pool;

/** Start nthreads workers whose completions are delivered on loop. */
vl_pool *vl_pool_new(int nthreads, vl_loop *loop);
void vl_pool_submit(vl_pool *p, vl_job *job);
/** Jobs submitted and not yet done. */
uint64_t vl_pool_inflight(const vl_pool *p);
/** Finish queued jobs, deliver their completions, stop the threads. */
void vl_pool_free(vl_pool *p);

#endif
