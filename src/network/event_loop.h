/*
 * event_loop.h - a small epoll event loop (the shape of Redis' ae.c).
 *
 * One thread runs the loop.  Each registered fd has one callback that is
 * told whether the fd is readable and/or writable.  A before-sleep hook
 * runs before every wait; the server does its group commit and socket
 * writes there.  A single periodic "cron" callback covers timed work.
 *
 * Watches are level-triggered: an fd that stays ready (a listener whose
 * connection cannot be accepted for want of a descriptor) is reported on
 * every turn, so vl_loop_mute() lets its owner back off instead of
 * spinning.
 */
#ifndef VL_NETWORK_EVENT_LOOP_H
#define VL_NETWORK_EVENT_LOOP_H

#define VL_EV_READ 1
#define VL_EV_WRITE 2

typedef struct vl_loop vl_loop;
typedef void (*vl_fd_fn)(vl_loop *l, int fd, int events, void *data);
typedef void (*vl_hook_fn)(vl_loop *l, void *data);
/** Before-sleep hook; returns nonzero when work remains, so the loop polls
 *  without waiting. */
typedef int (*vl_sleep_hook_fn)(vl_loop *l, void *data);

vl_loop *vl_loop_new(void);
void vl_loop_free(vl_loop *l);
/** Watch fd for mask (VL_EV_READ|VL_EV_WRITE); replaces a previous watch. */
int vl_loop_watch(vl_loop *l, int fd, int mask, vl_fd_fn fn, void *data);
/** Stop watching fd (call before close). */
void vl_loop_unwatch(vl_loop *l, int fd);
/** Report no events for fd during the next ms milliseconds; its watch
 *  (callback, mask) then resumes by itself.  Unwatching ends it too. */
void vl_loop_mute(vl_loop *l, int fd, int ms);
void vl_loop_set_before_sleep(vl_loop *l, vl_sleep_hook_fn fn, void *data);
void vl_loop_set_cron(vl_loop *l, int interval_ms, vl_hook_fn fn, void *data);
/** Run until vl_loop_stop() is called from a callback; may be run again. */
void vl_loop_run(vl_loop *l);
void vl_loop_stop(vl_loop *l);

#endif
