/* event_loop.c - see event_loop.h. */
#include "network/event_loop.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"

#define MAX_EVENTS 256

typedef struct {
    vl_fd_fn fn;
    void *data;
    int mask;
    int registered;
} watch;

struct vl_loop {
    int epfd;
    watch *watches; /* indexed by fd */
    int nwatches;
    int stop;
    vl_sleep_hook_fn before_sleep;
    vl_hook_fn cron;
    void *before_sleep_data, *cron_data;
    int cron_ms;
    int64_t next_cron;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

vl_loop *vl_loop_new(void)
{
    vl_loop *l = vl_calloc(1, sizeof *l);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        free(l);
        return NULL;
    }
    return l;
}

void vl_loop_free(vl_loop *l)
{
    if (!l)
        return;
    close(l->epfd);
    free(l->watches);
    free(l);
}

static void ensure_slot(vl_loop *l, int fd)
{
    if (fd < l->nwatches)
        return;
    int n = l->nwatches ? l->nwatches : 64;
    while (n <= fd)
        n *= 2;
    l->watches = vl_realloc(l->watches, (size_t)n * sizeof *l->watches);
    for (int i = l->nwatches; i < n; i++)
        l->watches[i] = (watch){0};
    l->nwatches = n;
}

int vl_loop_watch(vl_loop *l, int fd, int mask, vl_fd_fn fn, void *data)
{
    ensure_slot(l, fd);
    struct epoll_event ev = {0};
    ev.events = (mask & VL_EV_READ ? EPOLLIN : 0) | (mask & VL_EV_WRITE ? EPOLLOUT : 0);
    ev.data.fd = fd;
    int op = l->watches[fd].registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(l->epfd, op, fd, &ev) < 0)
        return -1;
    l->watches[fd] = (watch){fn, data, mask, 1};
    return 0;
}

void vl_loop_unwatch(vl_loop *l, int fd)
{
    if (fd >= l->nwatches || !l->watches[fd].registered)
        return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    l->watches[fd] = (watch){0};
}

void vl_loop_set_before_sleep(vl_loop *l, vl_sleep_hook_fn fn, void *data)
{
    l->before_sleep = fn;
    l->before_sleep_data = data;
}

void vl_loop_set_cron(vl_loop *l, int interval_ms, vl_hook_fn fn, void *data)
{
    l->cron = fn;
    l->cron_data = data;
    l->cron_ms = interval_ms;
    l->next_cron = now_ms() + interval_ms;
}

static int wait_timeout(vl_loop *l)
{
    if (!l->cron)
        return -1;
    int64_t left = l->next_cron - now_ms();
    return left < 0 ? 0 : (int)left;
}

static void dispatch(vl_loop *l, struct epoll_event *ev)
{
    int fd = ev->data.fd;
    if (fd >= l->nwatches || !l->watches[fd].mask)
        return; /* unwatched by an earlier callback in this batch */
    watch w = l->watches[fd];
    int events = 0;
    if (ev->events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        events |= VL_EV_READ;
    if (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
        events |= VL_EV_WRITE;
    events &= w.mask;
    if (events)
        w.fn(l, fd, events, w.data);
}

void vl_loop_run(vl_loop *l)
{
    struct epoll_event evs[MAX_EVENTS];
    l->stop = 0; /* a loop may be run again after a stop */
    while (!l->stop) {
        int busy = l->before_sleep ? l->before_sleep(l, l->before_sleep_data) : 0;
        int n = epoll_wait(l->epfd, evs, MAX_EVENTS, busy ? 0 : wait_timeout(l));
        for (int i = 0; i < n && !l->stop; i++)
            dispatch(l, &evs[i]);
        if (l->cron && now_ms() >= l->next_cron) {
            l->cron(l, l->cron_data);
            l->next_cron = now_ms() + l->cron_ms;
        }
    }
}

void vl_loop_stop(vl_loop *l)
{
    l->stop = 1;
}
