/*
 * event_loop.c - see event_loop.h.
 *
 * The loop remembers the mask the kernel holds for every fd, and a watch
 * that asks for the same mask again makes no epoll_ctl: clients are
 * re-watched after every event and every flush, and with 50 clients each
 * search paid three epoll_ctl calls (strace), most of them no-ops.
 */
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
    int64_t muted_until; /* monotonic ms; 0: not muted */
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
    int nmuted;          /* watches with muted_until set */
    int64_t next_unmute; /* earliest muted_until, when nmuted > 0 */
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

static int epoll_set(vl_loop *l, int fd, int op, int mask)
{
    struct epoll_event ev = {0};
    ev.events = (mask & VL_EV_READ ? EPOLLIN : 0) | (mask & VL_EV_WRITE ? EPOLLOUT : 0);
    ev.data.fd = fd;
    return epoll_ctl(l->epfd, op, fd, &ev);
}

int vl_loop_watch(vl_loop *l, int fd, int mask, vl_fd_fn fn, void *data)
{
    ensure_slot(l, fd);
    watch *w = &l->watches[fd];
    if (w->registered && w->mask == mask) { /* the kernel has it: no syscall */
        w->fn = fn;
        w->data = data;
        return 0;
    }
    int muted = w->muted_until != 0; /* a muted fd stays silent until its time */
    if (epoll_set(l, fd, w->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, muted ? 0 : mask) < 0)
        return -1;
    *w = (watch){fn, data, mask, 1, w->muted_until};
    return 0;
}

void vl_loop_unwatch(vl_loop *l, int fd)
{
    if (fd >= l->nwatches || !l->watches[fd].registered)
        return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    l->nmuted -= l->watches[fd].muted_until != 0;
    l->watches[fd] = (watch){0};
}

void vl_loop_mute(vl_loop *l, int fd, int ms)
{
    if (fd >= l->nwatches || !l->watches[fd].registered)
        return;
    watch *w = &l->watches[fd];
    int64_t until = now_ms() + (ms > 0 ? ms : 1);
    if (!w->muted_until)
        l->nmuted++;
    w->muted_until = until;
    if (l->nmuted == 1 || until < l->next_unmute)
        l->next_unmute = until;
    epoll_set(l, fd, EPOLL_CTL_MOD, 0);
}

/* Give muted watches whose time is up their events back. */
static void unmute_due(vl_loop *l)
{
    int64_t now = now_ms();
    if (!l->nmuted || now < l->next_unmute)
        return;
    l->next_unmute = INT64_MAX;
    for (int fd = 0; fd < l->nwatches; fd++) {
        watch *w = &l->watches[fd];
        if (!w->muted_until)
            continue;
        if (w->muted_until <= now) {
            w->muted_until = 0;
            l->nmuted--;
            epoll_set(l, fd, EPOLL_CTL_MOD, w->mask);
        } else if (w->muted_until < l->next_unmute) {
            l->next_unmute = w->muted_until;
        }
    }
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
    if (!l->cron && !l->nmuted)
        return -1;
    int64_t next = l->cron ? l->next_cron : INT64_MAX;
    if (l->nmuted && l->next_unmute < next)
        next = l->next_unmute;
    int64_t left = next - now_ms();
    return left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

static void dispatch(vl_loop *l, struct epoll_event *ev)
{
    int fd = ev->data.fd;
    if (fd >= l->nwatches || !l->watches[fd].mask)
        return; /* unwatched by an earlier callback in this batch */
    watch w = l->watches[fd];
    if (w.muted_until)
        return; /* EPOLLERR/EPOLLHUP are reported even with no events asked */
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
        unmute_due(l);
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
