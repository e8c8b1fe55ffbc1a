/*
 * worker_pool.c - see worker_pool.h.
 *
 * A search is tens of microseconds of work, so the hand-off itself is
 * kept to what it needs: a worker wakes the loop (eventfd write) only
 * when it finds the finished list empty -- until the loop takes the list,
 * one wake-up covers every job that joins it -- and a submit signals the
 * condition only when a worker waits on it.
 *
 * The loop lends a hand (vl_pool_help): before it sleeps, it takes the
 * oldest queued job if that is small (an indexed search: tens of
 * microseconds) and runs it itself, then polls again without sleeping.
 * Every job a worker takes costs a wake-up on each side (futex, eventfd,
 * and a context switch when the cores are shared with the clients); a job
 * the loop runs costs none, and its reply leaves in the same turn.  So
 * once the loop helps (vl_pool_loop_helps), a small job that finds the
 * queue empty wakes no worker -- one client's searches never leave the
 * loop -- and a worker is woken when a second job queues behind it, or
 * when the loop takes one and more wait.
 */
#include "server/worker_pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/alloc.h"

typedef struct {
    vl_job *head, *tail;
} queue;

struct vl_pool {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    queue todo, finished;
    int stopping;
    int nthreads;
    int idle;       /* workers waiting for a job */
    int loop_helps; /* vl_pool_loop_helps: the loop runs small jobs too */
    pthread_t *threads;
    int efd;
    vl_loop *loop;
    uint64_t inflight; /* loop thread only */
};

static void push(queue *q, vl_job *j)
{
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
}

static vl_job *take_all(queue *q)
{
    vl_job *j = q->head;
    q->head = q->tail = NULL;
    return j;
}

static void *worker_main(void *arg)
{
    vl_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->todo.head && !p->stopping) {
            p->idle++;
            pthread_cond_wait(&p->ready, &p->lock);
            p->idle--;
        }
        vl_job *j = p->todo.head;
        if (!j)
            break; /* stopping and nothing left */
        p->todo.head = j->next;
        if (!p->todo.head)
            p->todo.tail = NULL;
        pthread_mutex_unlock(&p->lock);
        j->run(j);
        pthread_mutex_lock(&p->lock);
        int wake = !p->finished.head; /* else the loop is woken already */
        push(&p->finished, j);
        if (wake) {
            uint64_t one = 1;
            ssize_t ignored = write(p->efd, &one, sizeof one);
            (void)ignored;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void deliver(vl_pool *p)
{
    uint64_t count;
    ssize_t ignored = read(p->efd, &count, sizeof count);
    (void)ignored;
    pthread_mutex_lock(&p->lock);
    vl_job *j = take_all(&p->finished);
    pthread_mutex_unlock(&p->lock);
    while (j) {
        vl_job *next = j->next;
        p->inflight--;
        j->done(j);
        j = next;
    }
}

static void on_eventfd(vl_loop *l, int fd, int events, void *data)
{
    (void)l;
    (void)fd;
    (void)events;
    deliver(data);
}

vl_pool *vl_pool_new(int nthreads, vl_loop *loop)
{
    vl_pool *p = vl_calloc(1, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->ready, NULL);
    p->loop = loop;
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd < 0 || vl_loop_watch(loop, p->efd, VL_EV_READ, on_eventfd, p) != 0) {
        if (p->efd >= 0)
            close(p->efd);
        free(p);
        return NULL;
    }
    p->threads = vl_calloc((size_t)nthreads, sizeof *p->threads);
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&p->threads[p->nthreads], NULL, worker_main, p) == 0)
            p->nthreads++;
    if (p->nthreads == 0) {
        vl_pool_free(p);
        return NULL;
    }
    return p;
}

void vl_pool_submit(vl_pool *p, vl_job *job)
{
    p->inflight++;
    pthread_mutex_lock(&p->lock);
    /* A small job alone in the queue is left to the loop, which runs it
     * before it sleeps: waking a worker for it would cost more than it. */
    int alone = !p->todo.head;
    push(&p->todo, job);
    if (p->idle && !(job->small && alone && p->loop_helps))
        pthread_cond_signal(&p->ready);
    pthread_mutex_unlock(&p->lock);
}

void vl_pool_loop_helps(vl_pool *p)
{
    p->loop_helps = 1;
}

int vl_pool_help(vl_pool *p)
{
    pthread_mutex_lock(&p->lock);
    vl_job *j = p->todo.head;
    if (j && j->small) {
        p->todo.head = j->next;
        if (!p->todo.head)
            p->todo.tail = NULL;
    } else {
        j = NULL;
    }
    if (p->todo.head && p->idle) /* more than the loop's share is waiting */
        pthread_cond_signal(&p->ready);
    pthread_mutex_unlock(&p->lock);
    if (!j)
        return 0;
    j->run(j);
    p->inflight--;
    j->done(j);
    return 1;
}

uint64_t vl_pool_inflight(const vl_pool *p)
{
    return p->inflight;
}

void vl_pool_free(vl_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->ready);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    deliver(p);
    vl_loop_unwatch(p->loop, p->efd);
    close(p->efd);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->ready);
    free(p->threads);
    free(p);
}
