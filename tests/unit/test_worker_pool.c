/* test_worker_pool.c - server/worker_pool.c: every job runs once and is
 * delivered once on the loop thread, whether a worker or the loop itself
 * (vl_pool_help) ran it; the loop takes only a small job at the head of
 * the queue, and never a large one (a long scan would stall every client);
 * once the loop helps, a lone small job wakes no worker, and a second one
 * does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "network/event_loop.h"
#include "server/worker_pool.h"

typedef struct {
    vl_job job;
    pthread_t ran_on;
    atomic_int started, runs;
    int dones;
    pthread_mutex_t *gate; /* held by the test: run() waits for it */
} test_job;

static int delivered;

static void run(vl_job *j)
{
    test_job *t = (test_job *)j;
    atomic_store(&t->started, 1);
    if (t->gate) {
        pthread_mutex_lock(t->gate);
        pthread_mutex_unlock(t->gate);
    }
    t->ran_on = pthread_self();
    atomic_fetch_add(&t->runs, 1);
}

static void done(vl_job *j)
{
    ((test_job *)j)->dones++;
    delivered++;
}

static void stop_cron(vl_loop *l, void *data)
{
    (void)data;
    vl_loop_stop(l);
}

/* Run the loop until n jobs were delivered (10 s at most). */
static void deliver_until(vl_loop *loop, int n)
{
    for (int i = 0; i < 1000 && delivered < n; i++)
        vl_loop_run(loop);
}

static void the_loop_helps_with_small_jobs_only(void **state)
{
    (void)state;
    vl_loop *loop = vl_loop_new();
    vl_loop_set_cron(loop, 10, stop_cron, NULL);
    vl_pool *p = vl_pool_new(1, loop);
    assert_non_null(p);
    delivered = 0;

    /* Keep the one worker busy, so the queue holds what comes next. */
    pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&gate);
    test_job busy = {.job = {run, done, 0, NULL}, .gate = &gate};
    vl_pool_submit(p, &busy.job);
    for (int i = 0; i < 10000 && !atomic_load(&busy.started); i++)
        usleep(1000);
    assert_true(atomic_load(&busy.started));

    test_job large = {.job = {run, done, 0, NULL}};
    test_job small[3];
    for (int i = 0; i < 3; i++)
        small[i] = (test_job){.job = {run, done, 1, NULL}};
    vl_pool_submit(p, &small[0].job);
    vl_pool_submit(p, &large.job);
    vl_pool_submit(p, &small[1].job);
    vl_pool_submit(p, &small[2].job);
    assert_int_equal(vl_pool_inflight(p), 5);

    /* The head is small: the loop runs and delivers it itself; then a large
     * job is at the head and the loop leaves it, and what queues behind it,
     * to the workers. */
    assert_int_equal(vl_pool_help(p), 1);
    assert_int_equal(atomic_load(&small[0].runs), 1);
    assert_int_equal(small[0].dones, 1);
    assert_true(pthread_equal(small[0].ran_on, pthread_self()));
    assert_int_equal(vl_pool_help(p), 0);
    assert_int_equal(atomic_load(&large.runs), 0);
    assert_int_equal(vl_pool_inflight(p), 4);

    pthread_mutex_unlock(&gate);
    deliver_until(loop, 5);
    test_job *all[] = {&busy, &small[0], &large, &small[1], &small[2]};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(atomic_load(&all[i]->runs), 1);
        assert_int_equal(all[i]->dones, 1);
    }
    assert_false(pthread_equal(large.ran_on, pthread_self()));
    assert_int_equal(vl_pool_inflight(p), 0);
    assert_int_equal(vl_pool_help(p), 0); /* nothing queued */
    vl_pool_free(p);
    vl_loop_free(loop);
}

/* Workers and the loop take jobs from one queue at once: none is lost or
 * run twice. */
static void every_job_runs_once_with_the_loop_helping(void **state)
{
    (void)state;
    enum { N = 2000 };
    vl_loop *loop = vl_loop_new();
    vl_loop_set_cron(loop, 10, stop_cron, NULL);
    vl_pool *p = vl_pool_new(2, loop);
    assert_non_null(p);
    delivered = 0;
    test_job *jobs = calloc(N, sizeof *jobs);
    for (int i = 0; i < N; i++) {
        jobs[i].job = (vl_job){run, done, i % 3 != 0, NULL};
        vl_pool_submit(p, &jobs[i].job);
        if (i % 7 == 0)
            vl_pool_help(p);
    }
    while (vl_pool_help(p))
        ;
    deliver_until(loop, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(atomic_load(&jobs[i].runs), 1);
        assert_int_equal(jobs[i].dones, 1);
    }
    assert_int_equal(delivered, N);
    assert_int_equal(vl_pool_inflight(p), 0);
    vl_pool_free(p);
    vl_loop_free(loop);
    free(jobs);
}

/* Wait up to 2 s for a worker to start j; 1 if one did. */
static int started_within(test_job *j)
{
    for (int i = 0; i < 2000 && !atomic_load(&j->started); i++)
        usleep(1000);
    return atomic_load(&j->started);
}

static void a_lone_small_job_is_left_to_the_loop(void **state)
{
    (void)state;
    vl_loop *loop = vl_loop_new();
    vl_loop_set_cron(loop, 10, stop_cron, NULL);
    vl_pool *p = vl_pool_new(1, loop);
    assert_non_null(p);
    delivered = 0;
    usleep(20000); /* let the worker reach its wait */

    /* Without the loop's help, a worker runs it. */
    test_job a = {.job = {run, done, 1, NULL}};
    vl_pool_submit(p, &a.job);
    assert_true(started_within(&a));
    deliver_until(loop, 1);
    assert_false(pthread_equal(a.ran_on, pthread_self()));

    /* With it, the lone job waits for the loop; a second one wakes the
     * worker, which takes the first. */
    vl_pool_loop_helps(p);
    usleep(20000);
    test_job b = {.job = {run, done, 1, NULL}}, c = {.job = {run, done, 1, NULL}};
    vl_pool_submit(p, &b.job);
    usleep(50000);
    assert_false(atomic_load(&b.started));
    vl_pool_submit(p, &c.job);
    assert_true(started_within(&b));
    assert_false(pthread_equal(b.ran_on, pthread_self()));
    while (!atomic_load(&c.started) && !vl_pool_help(p))
        usleep(1000);
    deliver_until(loop, 3);
    assert_int_equal(atomic_load(&c.runs), 1);
    assert_int_equal(delivered, 3);
    assert_int_equal(vl_pool_inflight(p), 0);
    vl_pool_free(p);
    vl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_loop_helps_with_small_jobs_only),
        cmocka_unit_test(every_job_runs_once_with_the_loop_helping),
        cmocka_unit_test(a_lone_small_job_is_left_to_the_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
