/*
 * driver.c - see driver.h.  Sockets are non-blocking and level-triggered in
 * one epoll set per thread.  All replies completed by one read() share one
 * timestamp (the read's return), which costs one clock call per read
 * instead of one per reply and adds no error beyond parsing time.  A
 * connection held back by a rate cap is retried every millisecond.
 */
#include "driver.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "resp.h"

#define MAX_STREAMS 4
#define READ_CHUNK 65536

typedef struct {
    int fd;
    int si; /* stream index */
    vb_stream *s;
    vb_buf out;
    size_t out_off;
    char *in;
    size_t in_len, in_cap;
    uint64_t *ops; /* op numbers of the batch in flight */
    int inflight, replied;
    double batch_t0;
    int want_out, waiting, done;
} conn;

typedef struct {
    const vb_target *t;
    vb_stream *streams;
    int nstreams;
    _Atomic int *finite_live;
    double deadline; /* 0: none */
    conn *conns;
    int nconns, live, ep;
    vb_result res[MAX_STREAMS];
    vb_str *items;
    int64_t *rows;
    uint32_t max_items;
    vb_score_memo memo; /* the search stream's k; k 0 (none) scores every reply */
    int nwaiting;       /* connections held back by a rate cap */
    pthread_t tid;
} worker;

double vb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void note_error(vb_result *r, const char *msg, size_t len)
{
    if (r->first_error[0])
        return;
    if (len >= sizeof r->first_error)
        len = sizeof r->first_error - 1;
    memcpy(r->first_error, msg, len);
    r->first_error[len] = 0;
}

/* ---- connecting ------------------------------------------------------ */

static int read_one_reply(int fd, vb_reply *rep, char *buf, size_t cap)
{
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        long r = vb_resp_parse(buf, len, rep);
        if (r > 0)
            return 0;
        if (r < 0 || len == cap)
            return -1;
    }
}

static int authenticate(int fd, const vb_target *t)
{
    const char *argv[3] = {"AUTH"};
    size_t lens[3] = {4};
    int argc = 1;
    if (t->user) {
        argv[argc] = t->user;
        lens[argc++] = strlen(t->user);
    }
    argv[argc] = t->password;
    lens[argc++] = strlen(t->password);
    vb_buf b = {0};
    vb_resp_command(&b, argc, argv, lens);
    int ok = write(fd, b.data, b.len) == (ssize_t)b.len;
    vb_buf_free(&b);
    char buf[512];
    vb_reply rep = {0};
    if (!ok || read_one_reply(fd, &rep, buf, sizeof buf) != 0) {
        fprintf(stderr, "vexlake-bench: AUTH: no reply from %s:%d\n", t->host, t->port);
        return -1;
    }
    if (rep.type != '+') {
        fprintf(stderr, "vexlake-bench: AUTH refused: %.*s\n", (int)rep.text.len, rep.text.ptr);
        return -1;
    }
    return 0;
}

static int connect_one(const vb_target *t, const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        fprintf(stderr, "vexlake-bench: connect %s:%d: %s\n", t->host, t->port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (t->password && authenticate(fd, t) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- requests -------------------------------------------------------- */

static void put_request(conn *c, const vb_target *t, uint64_t op)
{
    const vb_stream *s = c->s;
    const vb_dataset *d = t->data;
    const char *argv[6];
    size_t lens[6];
    int argc = 0;
    char key[128], kbuf[24], efbuf[24];
    size_t blob = (size_t)d->dim * sizeof(float);
    switch (s->op) {
    case VB_OP_PING: vb_buf_put(&c->out, "*1\r\n$4\r\nPING\r\n", 14); return;
    case VB_OP_VSET: {
        uint64_t id = s->key_offset + (s->keyspace ? op % s->keyspace : op);
        size_t plen = strlen(t->key_prefix);
        if (plen > sizeof key - 20)
            plen = sizeof key - 20;
        memcpy(key, t->key_prefix, plen);
        argv[0] = "VSET", lens[0] = 4;
        argv[1] = key, lens[1] = plen + vb_format_uint(key + plen, id);
        argv[2] = "FP32", lens[2] = 4;
        argv[3] = (const char *)(d->base + (size_t)(id % d->nbase) * d->dim), lens[3] = blob;
        argc = 4;
        break;
    }
    case VB_OP_VSEARCH:
        argv[0] = "VSEARCH", lens[0] = 7;
        argv[1] = "FP32", lens[1] = 4;
        argv[2] = (const char *)(d->query + (size_t)(op % d->nquery) * d->dim), lens[2] = blob;
        argv[3] = kbuf, lens[3] = vb_format_uint(kbuf, s->k);
        argc = 4;
        if (s->ef) {
            argv[4] = "EF", lens[4] = 2;
            argv[5] = efbuf, lens[5] = vb_format_uint(efbuf, s->ef);
            argc = 6;
        }
        break;
    }
    vb_resp_command(&c->out, argc, argv, lens);
}

static void set_events(worker *w, conn *c, int want_out)
{
    if (c->want_out == want_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want_out;
}

static void finish_conn(worker *w, conn *c, double now)
{
    if (c->done)
        return;
    c->done = 1;
    c->waiting = 0;
    if (c->inflight > c->replied) /* lost with the connection */
        w->res[c->si].errors += (uint64_t)(c->inflight - c->replied);
    epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    w->live--;
    atomic_fetch_sub(&c->s->live, 1);
    if (!c->s->endless)
        atomic_fetch_sub(w->finite_live, 1);
    (void)now;
}

static void conn_fail(worker *w, conn *c, const char *why, double now)
{
    w->res[c->si].protocol_errors++;
    note_error(&w->res[c->si], why, strlen(why));
    finish_conn(w, c, now);
}

/* Write what is queued; 0 ok (maybe partly, EPOLLOUT then set), -1 dead. */
static int flush_out(worker *w, conn *c, double now)
{
    while (c->out_off < c->out.len) {
        ssize_t n = write(c->fd, c->out.data + c->out_off, c->out.len - c->out_off);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_events(w, c, 1);
            return 0;
        } else {
            conn_fail(w, c, "write failed: connection closed by the server", now);
            return -1;
        }
    }
    c->out.len = c->out_off = 0;
    set_events(w, c, 0);
    return 0;
}

static int stopping(const worker *w, const conn *c, double now)
{
    if (w->deadline > 0 && now >= w->deadline)
        return 1;
    return c->s->endless && atomic_load(w->finite_live) == 0;
}

/* Claim and send the next batch.  Ends the connection when its stream has
 * nothing left; marks it waiting when the rate cap holds it back. */
static void start_batch(worker *w, conn *c, double now)
{
    vb_stream *s = c->s;
    w->nwaiting -= c->waiting;
    c->waiting = 0;
    if (stopping(w, c, now)) {
        finish_conn(w, c, now);
        return;
    }
    if (s->rate > 0) {
        double allowed = s->rate * (now - s->t_start) + s->pipeline;
        if ((double)atomic_load(&s->next) >= allowed) {
            c->waiting = 1;
            w->nwaiting++;
            return;
        }
    }
    uint64_t idx = atomic_fetch_add(&s->next, (uint64_t)s->pipeline);
    if (idx >= s->limit) {
        finish_conn(w, c, now);
        return;
    }
    uint64_t m = s->limit - idx < (uint64_t)s->pipeline ? s->limit - idx : (uint64_t)s->pipeline;
    for (uint64_t j = 0; j < m; j++) {
        c->ops[j] = idx + j;
        put_request(c, w->t, idx + j);
    }
    c->inflight = (int)m;
    c->replied = 0;
    c->batch_t0 = vb_now();
    flush_out(w, c, now);
}

/* ---- replies --------------------------------------------------------- */

static int64_t key_row(const vb_target *t, vb_str key)
{
    size_t plen = strlen(t->key_prefix);
    if (!key.ptr || key.len <= plen || key.len - plen > 19 || memcmp(key.ptr, t->key_prefix, plen))
        return -1;
    uint64_t v = 0;
    for (size_t i = plen; i < key.len; i++) {
        if (key.ptr[i] < '0' || key.ptr[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(key.ptr[i] - '0');
    }
    return (int64_t)(v % t->data->nbase);
}

/* A key twice in one reply: a snapshot showed a key's old and new row. */
static int has_repeated_key(const vb_reply *rep)
{
    for (uint32_t i = 0; i < rep->nitems; i++) {
        for (uint32_t j = 0; j < i; j++) {
            if (rep->items[i].len == rep->items[j].len && rep->items[i].ptr && rep->items[j].ptr &&
                memcmp(rep->items[i].ptr, rep->items[j].ptr, rep->items[i].len) == 0)
                return 1;
        }
    }
    return 0;
}

static void on_reply(worker *w, conn *c, const vb_reply *rep, double t_read)
{
    vb_result *r = &w->res[c->si];
    uint64_t op = c->ops[c->replied++];
    double lat = t_read - c->batch_t0;
    vb_hist_record(&r->hist, lat > 0 ? (uint64_t)(lat * 1e9) : 0);
    r->done++;
    if (rep->type == '-' || rep->type == '!') {
        r->errors++;
        note_error(r, rep->text.ptr, rep->text.len);
        return;
    }
    const vb_dataset *d = w->t->data;
    if (c->s->op != VB_OP_VSEARCH)
        return;
    if (rep->type != '*' && rep->type != '%') {
        r->errors++;
        note_error(r, "VSEARCH reply is not an array", 29);
        return;
    }
    if (has_repeated_key(rep))
        r->dup_replies++;
    if (!d->gt || c->s->k > d->gt_k)
        return;
    for (uint32_t i = 0; i < rep->nitems; i++)
        w->rows[i] = key_row(w->t, rep->items[i]);
    vb_dataset_score_memo(d, &w->memo, (uint32_t)(op % d->nquery), w->rows, rep->nitems, c->s->k,
                          &r->hits_ids, &r->hits_tie);
    r->scored++;
}

static void on_readable(worker *w, conn *c, double now)
{
    for (;;) {
        if (c->in_cap - c->in_len < READ_CHUNK) {
            size_t cap = c->in_cap ? c->in_cap * 2 : 2 * READ_CHUNK;
            char *p = realloc(c->in, cap);
            if (!p) {
                fprintf(stderr, "vexlake-bench: out of memory\n");
                exit(1);
            }
            c->in = p;
            c->in_cap = cap;
        }
        size_t room = c->in_cap - c->in_len;
        ssize_t n = read(c->fd, c->in + c->in_len, room);
        if (n > 0) {
            c->in_len += (size_t)n;
            if ((size_t)n < room)
                break;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            conn_fail(w, c, "connection closed by the server", now);
            return;
        }
    }
    double t_read = vb_now();
    size_t pos = 0;
    vb_reply rep = {.items = w->items, .max_items = w->max_items};
    while (pos < c->in_len) {
        if (c->replied == c->inflight) {
            conn_fail(w, c, "protocol error: a reply to no request", now);
            return;
        }
        long used = vb_resp_parse(c->in + pos, c->in_len - pos, &rep);
        if (used == VB_RESP_INCOMPLETE)
            break;
        if (used < 0) {
            conn_fail(w, c, "protocol error: the reply is not RESP", now);
            return;
        }
        on_reply(w, c, &rep, t_read);
        pos += (size_t)used;
    }
    memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
    if (c->replied == c->inflight) {
        w->res[c->si].t_last = t_read;
        c->inflight = c->replied = 0;
        start_batch(w, c, t_read);
    }
}

/* ---- threads --------------------------------------------------------- */

static void *worker_main(void *arg)
{
    worker *w = arg;
    struct epoll_event evs[64];
    double now = vb_now();
    for (int i = 0; i < w->nconns; i++)
        start_batch(w, &w->conns[i], now);
    while (w->live > 0) {
        int n = epoll_wait(w->ep, evs, 64, w->nwaiting ? 1 : 50);
        now = vb_now();
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (c->done)
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(w, c, now);
            if (!c->done && (evs[i].events & EPOLLOUT))
                flush_out(w, c, now);
        }
        /* Only held-back connections, or every one once a stop may be due
         * (a connection between batches ends at its next start_batch). */
        int may_stop = (w->deadline > 0 && now >= w->deadline) || atomic_load(w->finite_live) == 0;
        for (int i = 0; (w->nwaiting || may_stop) && i < w->nconns; i++) {
            conn *c = &w->conns[i];
            if (!c->done && (c->waiting || (c->inflight == 0 && stopping(w, c, now))))
                start_batch(w, c, now);
        }
    }
    return NULL;
}

static void merge(vb_result *into, const vb_result *from)
{
    vb_hist_merge(&into->hist, &from->hist);
    into->done += from->done;
    into->errors += from->errors;
    into->protocol_errors += from->protocol_errors;
    into->scored += from->scored;
    into->hits_ids += from->hits_ids;
    into->hits_tie += from->hits_tie;
    into->dup_replies += from->dup_replies;
    if (from->t_last > into->t_last)
        into->t_last = from->t_last;
    if (!into->first_error[0])
        memcpy(into->first_error, from->first_error, sizeof into->first_error);
}

static int setup_workers(const vb_target *t, vb_stream *streams, int nstreams, worker *ws,
                         int nthreads, const struct addrinfo *ai)
{
    int total = 0;
    for (int s = 0; s < nstreams; s++)
        total += streams[s].connections;
    for (int i = 0; i < nthreads; i++) {
        ws[i].conns = calloc((size_t)total / (size_t)nthreads + 1, sizeof(conn));
        ws[i].ep = epoll_create1(EPOLL_CLOEXEC);
        if (!ws[i].conns || ws[i].ep < 0) {
            fprintf(stderr, "vexlake-bench: cannot set up thread %d\n", i);
            return -1;
        }
    }
    int next = 0;
    for (int s = 0; s < nstreams; s++) {
        for (int j = 0; j < streams[s].connections; j++, next++) {
            worker *w = &ws[next % nthreads];
            conn *c = &w->conns[w->nconns];
            c->fd = connect_one(t, ai);
            if (c->fd < 0)
                return -1;
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
            int fl = fcntl(c->fd, F_GETFL);
            if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
                epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev)) {
                fprintf(stderr, "vexlake-bench: socket setup: %s\n", strerror(errno));
                close(c->fd);
                return -1;
            }
            c->si = s;
            c->s = &streams[s];
            c->ops = calloc((size_t)streams[s].pipeline, sizeof *c->ops);
            w->nconns++;
            w->live++;
        }
    }
    return 0;
}

static void free_workers(worker *ws, int nthreads)
{
    for (int i = 0; i < nthreads; i++) {
        for (int j = 0; j < ws[i].nconns; j++) {
            conn *c = &ws[i].conns[j];
            if (!c->done)
                close(c->fd);
            vb_buf_free(&c->out);
            free(c->in);
            free(c->ops);
        }
        free(ws[i].conns);
        free(ws[i].items);
        free(ws[i].rows);
        vb_score_memo_free(&ws[i].memo);
        if (ws[i].ep >= 0)
            close(ws[i].ep);
    }
    free(ws);
}

int vb_run(const vb_target *t, vb_stream *streams, int nstreams)
{
    if (nstreams > MAX_STREAMS)
        return -1;
    char port[16];
    snprintf(port, sizeof port, "%d", t->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    int gai = getaddrinfo(t->host, port, &hints, &ai);
    if (gai != 0) {
        fprintf(stderr, "vexlake-bench: %s:%d: %s\n", t->host, t->port, gai_strerror(gai));
        return -1;
    }
    int nthreads = t->threads > 0 ? t->threads : 1;
    worker *ws = calloc((size_t)nthreads, sizeof *ws);
    _Atomic int finite_live = 0;
    uint32_t max_items = 1;
    for (int s = 0; s < nstreams; s++) {
        atomic_store(&streams[s].next, 0);
        atomic_store(&streams[s].live, streams[s].connections);
        memset(&streams[s].res, 0, sizeof streams[s].res);
        if (!streams[s].endless)
            finite_live += streams[s].connections;
        if (streams[s].op == VB_OP_VSEARCH && streams[s].k > max_items)
            max_items = streams[s].k;
    }
    for (int i = 0; i < nthreads; i++)
        ws[i].ep = -1;
    int rc = setup_workers(t, streams, nstreams, ws, nthreads, ai);
    freeaddrinfo(ai);
    if (rc != 0) {
        free_workers(ws, nthreads);
        return -1;
    }
    double start = vb_now();
    for (int s = 0; s < nstreams; s++)
        streams[s].t_start = start;
    for (int i = 0; i < nthreads; i++) {
        worker *w = &ws[i];
        w->t = t;
        w->streams = streams;
        w->nstreams = nstreams;
        w->finite_live = &finite_live;
        w->deadline = t->seconds > 0 ? start + t->seconds : 0;
        w->max_items = max_items;
        w->items = calloc(max_items, sizeof *w->items);
        w->rows = calloc(max_items, sizeof *w->rows);
        for (int s = 0; s < nstreams; s++)
            if (streams[s].op == VB_OP_VSEARCH && t->data->gt && streams[s].k <= t->data->gt_k &&
                !w->memo.k)
                vb_score_memo_init(&w->memo, t->data, streams[s].k);
        if (pthread_create(&w->tid, NULL, worker_main, w) != 0) {
            fprintf(stderr, "vexlake-bench: cannot start thread %d\n", i);
            exit(1);
        }
    }
    for (int i = 0; i < nthreads; i++) {
        pthread_join(ws[i].tid, NULL);
        for (int s = 0; s < nstreams; s++)
            merge(&streams[s].res, &ws[i].res[s]);
    }
    free_workers(ws, nthreads);
    return 0;
}
