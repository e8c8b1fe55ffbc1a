/*
 * follower.h - a --read-only node following the writer's store.
 *
 * Every --follow-interval-ms the cron starts one follow run (core:
 * vl_follow_*) on a worker thread, never two at once; its completion swaps
 * the newer versions in on the loop thread.
 */
#ifndef VL_SERVER_FOLLOWER_H
#define VL_SERVER_FOLLOWER_H

#include <stdint.h>

typedef struct {
    uint64_t polls;         /* follow runs completed */
    uint64_t poll_errors;   /* of them, ones that failed (the node kept what it had) */
    int64_t lag_ms;         /* now minus the start of the newest run that caught up */
    const char *last_error; /* "" or why the last run failed */
} vl_follower_stats;

/** Before the engine opens: the open is the first look at the store. */
void vl_follower_init(void);
/** From the cron: start a run when the interval has passed and none runs. */
void vl_follower_tick(void);
void vl_follower_stats_get(vl_follower_stats *out);

#endif
