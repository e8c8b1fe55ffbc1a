/*
 * client.c - accepting, reading, dispatching and writing for clients.
 *
 * Flow per readable event: read into the query buffer, then run as many
 * complete requests as it holds (pipelining), stopping early if a handler
 * blocks the client or its unsent output grows past VL_OUTPUT_PAUSE_BYTES
 * (back-pressure: we stop reading until it drains).  Output is only
 * queued here; vl_clients_flush() writes it after the group commit.
 *
 * Memory: the query buffer grows by half its size at a time (amortised
 * copying) up to --client-query-buffer-limit, every growth first makes room
 * under --maxmemory-clients (client_memory.c), and a growth malloc refuses
 * closes that client only.  A drained buffer that grew large is released.
 * Clients scheduled to close over a limit are closed at the top of an
 * event or of a flush, where no handler or list still refers to them.
 */
#include "network/client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/log.h"

#define READ_CHUNK (64 * 1024)

static void on_client_event(vl_loop *l, int fd, int events, void *data);

void vl_clients_init(vl_clients *cs, vl_loop *loop, vl_dispatch_fn dispatch, uint64_t max_clients,
                     const vl_durability *dur)
{
    memset(cs, 0, sizeof *cs);
    cs->dur = *dur;
    cs->loop = loop;
    cs->dispatch = dispatch;
    cs->next_id = 1;
    cs->max_clients = max_clients;
    cs->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cs->limits = (vl_client_limits){VL_DEFAULT_QUERY_BUFFER_LIMIT, VL_DEFAULT_OUTPUT_BUFFER_LIMIT,
                                    VL_DEFAULT_MAXMEMORY_CLIENTS};
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_peer_addr(vl_client *c)
{
    struct sockaddr_storage sa;
    socklen_t salen = sizeof sa;
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getpeername(c->fd, (struct sockaddr *)&sa, &salen) == 0) {
        if (sa.ss_family == AF_INET) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
            inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
            port = ntohs(s4->sin_port);
        } else if (sa.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;
            inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
            port = ntohs(s6->sin6_port);
        }
    }
    snprintf(c->addr, sizeof c->addr, "%s:%d", ip, port);
}

static vl_client *client_new(vl_clients *cs, vl_conn *conn)
{
    vl_client *c = vl_calloc(1, sizeof *c);
    c->conn = conn;
    c->fd = vl_conn_fd(conn);
    c->id = cs->next_id++;
    c->owner = cs;
    c->created = (int64_t)time(NULL);
    c->active_ms = monotonic_ms();
    vl_resp_parser_init(&c->parser);
    vl_reply_init(&c->out);
    set_peer_addr(c);
    c->next = cs->head;
    if (cs->head)
        cs->head->prev = c;
    cs->head = c;
    cs->connected++;
    cs->total_connections++;
    return c;
}

static void client_free(vl_client *c)
{
    vl_clients *cs = c->owner;
    if (c->prev)
        c->prev->next = c->next;
    else
        cs->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    /* Unlink from the pending or held list too. */
    vl_client **list = (c->flags & VL_CLIENT_HELD) ? &cs->held : &cs->pending;
    for (vl_client **pp = list; *pp; pp = &(*pp)->next_pending) {
        if (*pp == c) {
            *pp = c->next_pending;
            break;
        }
    }
    vl_resp_parser_free(&c->parser);
    vl_reply_free(&c->out);
    free(c->marks);
    free(c->qbuf);
    free(c->name);
    free(c->lib_name);
    free(c->lib_ver);
    free(c);
}

/* Close the socket now; free the client unless async work still refers
 * to it (then vl_client_unblock frees it). */
static void client_close(vl_client *c)
{
    vl_clients *cs = c->owner;
    if (!(c->flags & VL_CLIENT_CLOSED)) {
        vl_loop_unwatch(cs->loop, c->fd);
        vl_conn_close(c->conn);
        if (c->flags & VL_CLIENT_CLOSE_ASAP)
            cs->closing--;
        c->flags |= VL_CLIENT_CLOSED;
        cs->connected--;
        /* Nothing reads the buffers of a closed client: release them now,
         * even while async work still refers to the client. */
        free(c->qbuf);
        c->qbuf = NULL;
        c->qlen = c->qcap = 0;
        vl_reply_free(&c->out);
        vl_client_account(c);
    }
    if (!(c->flags & VL_CLIENT_BLOCKED))
        client_free(c);
}

/* Close the clients scheduled to close.  Callers make sure no handler is
 * running and no list being walked holds one of them. */
static void close_scheduled(vl_clients *cs)
{
    for (vl_client *c = cs->head; c && cs->closing;) {
        vl_client *next = c->next;
        if ((c->flags & (VL_CLIENT_CLOSE_ASAP | VL_CLIENT_CLOSED)) == VL_CLIENT_CLOSE_ASAP)
            client_close(c);
        c = next;
    }
}

/* ---- replies and durability ---- */

/* Tag the output produced since the last mark with the barrier LSN, or
 * with the read's own LSN (VL_CLIENT_READ_AT).  A write's acknowledgement
 * gets a mark of its own (see vl_clients_refuse_waiting_writes). */
static void tag_output(vl_client *c, uint64_t lsn)
{
    struct vl_reply_mark *last = c->nmarks ? &c->marks[c->nmarks - 1] : NULL;
    int write = (c->flags & VL_CLIENT_WRITE_REPLY) != 0;
    if (c->flags & VL_CLIENT_READ_AT)
        lsn = c->read_lsn;
    c->flags &= ~(VL_CLIENT_WRITE_REPLY | VL_CLIENT_READ_AT);
    if (c->out.len <= (last ? last->end : 0))
        return;
    if (last && last->lsn >= lsn && !write && !last->write) {
        last->end = c->out.len; /* same (or an already covering) barrier */
        return;
    }
    if (last && last->lsn > lsn)
        lsn = last->lsn; /* marks ascend; read before the array may move */
    if (c->nmarks == c->cap_marks) {
        c->cap_marks = c->cap_marks ? c->cap_marks * 2 : 4;
        c->marks = vl_realloc(c->marks, c->cap_marks * sizeof *c->marks);
    }
    c->marks[c->nmarks++] = (struct vl_reply_mark){c->out.len, lsn, write};
}

/* How many bytes at the front of the output may be sent now. */
static size_t sendable(const vl_client *c, uint64_t durable)
{
    size_t limit = 0;
    for (size_t i = 0; i < c->nmarks && c->marks[i].lsn <= durable; i++)
        limit = c->marks[i].end;
    return limit;
}

/* n bytes left the buffer: shift the marks. */
static void consume_marks(vl_client *c, size_t n)
{
    size_t drop = 0;
    while (drop < c->nmarks && c->marks[drop].end <= n)
        drop++;
    memmove(c->marks, c->marks + drop, (c->nmarks - drop) * sizeof *c->marks);
    c->nmarks -= drop;
    for (size_t i = 0; i < c->nmarks; i++)
        c->marks[i].end -= n;
}

/* 1 when output waits for a log position that is not durable yet. */
static int waits_for_durability(const vl_client *c, uint64_t durable)
{
    for (size_t i = 0; i < c->nmarks; i++)
        if (c->marks[i].lsn > durable)
            return 1;
    return 0;
}

int vl_client_output_waits(const vl_client *c)
{
    return waits_for_durability(c, c->owner->dur.durable(c->owner->dur.ctx));
}

void vl_client_mark_pending(vl_clients *cs, vl_client *c)
{
    tag_output(c, cs->dur.barrier(cs->dur.ctx));
    if (c->flags & (VL_CLIENT_PENDING_WRITE | VL_CLIENT_HELD | VL_CLIENT_CLOSED))
        return;
    c->flags |= VL_CLIENT_PENDING_WRITE;
    c->next_pending = cs->pending;
    cs->pending = c;
}

void vl_client_close_soon(vl_clients *cs, vl_client *c)
{
    c->flags |= VL_CLIENT_CLOSE_AFTER_REPLY;
    vl_client_mark_pending(cs, c);
}

static void hold(vl_clients *cs, vl_client *c)
{
    c->flags |= VL_CLIENT_HELD;
    c->next_pending = cs->held;
    cs->held = c;
}

void vl_clients_release(vl_clients *cs)
{
    if (!cs->held)
        return;
    uint64_t durable = cs->dur.durable(cs->dur.ctx);
    vl_client **pp = &cs->held;
    while (*pp) {
        vl_client *c = *pp;
        if (c->nmarks && c->marks[0].lsn > durable) { /* its next reply still waits */
            pp = &c->next_pending;
            continue;
        }
        *pp = c->next_pending;
        c->flags &= ~VL_CLIENT_HELD;
        vl_client_mark_pending(cs, c);
    }
}

/* Call fn on every live client whose output waits for durability, then
 * release what no longer waits. */
static void for_each_waiting(vl_clients *cs, void (*fn)(vl_client *, uint64_t, const char *),
                             const char *msg)
{
    uint64_t durable = cs->dur.durable(cs->dur.ctx), barrier = cs->dur.barrier(cs->dur.ctx);
    for (vl_client *c = cs->head; c; c = c->next) {
        if (c->flags & (VL_CLIENT_BLOCKED | VL_CLIENT_CLOSED | VL_CLIENT_CLOSE_ASAP))
            continue;
        tag_output(c, barrier);
        if (!waits_for_durability(c, durable))
            continue;
        fn(c, durable, msg);
        vl_client_mark_pending(cs, c);
    }
    vl_clients_release(cs);
}

/* Keep what is durable, then the error, then close. */
static void fail_output_of(vl_client *c, uint64_t durable, const char *msg)
{
    size_t keep = sendable(c, durable), n = 0;
    while (n < c->nmarks && c->marks[n].lsn <= durable)
        n++;
    c->nmarks = n;
    c->out.len = keep; /* the unsent bytes after keep are dropped, never sent */
    vl_reply_error(&c->out, "ERR %s", msg);
    tag_output(c, 0);
    c->flags |= VL_CLIENT_CLOSE_AFTER_REPLY;
}

void vl_clients_fail_waiting(vl_clients *cs, const char *msg)
{
    for_each_waiting(cs, fail_output_of, msg);
}

/* Rebuild c's unsent output with every waiting write acknowledgement
 * replaced by the error; nothing waits afterwards. */
static void refuse_writes_of(vl_client *c, uint64_t durable, const char *msg)
{
    vl_reply fresh;
    vl_reply_init(&fresh);
    fresh.proto = c->out.proto;
    size_t start = 0;
    for (size_t i = 0; i < c->nmarks; i++) {
        if (c->marks[i].lsn > durable && c->marks[i].write)
            vl_reply_error(&fresh, "ERR %s", msg);
        else
            vl_reply_raw(&fresh, c->out.data + start, c->marks[i].end - start);
        start = c->marks[i].end;
    }
    vl_reply_raw(&fresh, c->out.data + start, c->out.len - start);
    vl_reply_free(&c->out);
    c->out = fresh;
    c->nmarks = 0;
    tag_output(c, 0);
}

void vl_clients_refuse_waiting_writes(vl_clients *cs, const char *msg)
{
    for_each_waiting(cs, refuse_writes_of, msg);
}

static const char max_clients_msg[] = "-ERR max number of clients reached\r\n";

static void reject_client(vl_clients *cs, vl_conn *conn)
{
    vl_conn_write(conn, max_clients_msg, sizeof max_clients_msg - 1); /* best effort */
    vl_conn_close(conn);
    cs->rejected_connections++;
}

/* accept() found no free descriptor (EMFILE/ENFILE).  The connection left
 * in the backlog keeps the listener readable, so retrying next turn would
 * spin.  Give up the spare descriptor for a moment to accept and refuse
 * that client (it learns why at once, instead of timing out), then take
 * the spare back.  1: refused one, try the next; 0: muted the listener
 * briefly (no spare), stop for now. */
static int accept_without_descriptors(vl_clients *cs, vl_loop *l, int lfd)
{
    static time_t last_logged;
    time_t now = time(NULL);
    if (now - last_logged >= 60 || now < last_logged) {
        last_logged = now;
        vl_log(VL_LOG_WARNING,
               "accept: %s; refusing new clients (raise the open files limit "
               "or lower --maxclients)",
               strerror(errno));
    }
    int fd = -1;
    if (cs->spare_fd >= 0) {
        close(cs->spare_fd);
        fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            ssize_t ignored = write(fd, max_clients_msg, sizeof max_clients_msg - 1);
            (void)ignored;
            close(fd);
            cs->rejected_connections++;
        }
        cs->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    if (fd >= 0)
        return 1;
    vl_loop_mute(l, lfd, 100);
    return 0;
}

/* Accept what lfd has waiting; tls is NULL on the plain listener. */
static void accept_clients(vl_loop *l, int lfd, vl_clients *cs, vl_tls *tls)
{
    for (int i = 0; i < 64; i++) { /* bounded, so one busy listener can't starve clients */
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
            if (accept_without_descriptors(cs, l, lfd))
                continue;
            return;
        }
        if (fd < 0 && (errno == ECONNABORTED || errno == EINTR))
            continue; /* that client gave up; others may wait */
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                vl_loop_mute(l, lfd, 100); /* ENOBUFS, ENOMEM: back off, don't spin */
            return;
        }
        vl_conn *conn = tls ? vl_conn_tls_new(fd, tls) : vl_conn_plain_new(fd);
        if (!conn)
            continue; /* logged; fd closed */
        if (cs->connected >= cs->max_clients) {
            reject_client(cs, conn);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        vl_client *c = client_new(cs, conn);
        if (vl_loop_watch(l, fd, VL_EV_READ, on_client_event, c) != 0)
            client_close(c);
    }
}

void vl_clients_on_accept(vl_loop *l, int lfd, int events, void *data)
{
    (void)events;
    accept_clients(l, lfd, data, NULL);
}

void vl_clients_on_accept_tls(vl_loop *l, int lfd, int events, void *data)
{
    vl_clients *cs = data;
    (void)events;
    accept_clients(l, lfd, cs, cs->tls);
}

/* The rest of the input will never run (the client is closing): release it. */
static void drop_input(vl_client *c)
{
    free(c->qbuf);
    c->qbuf = NULL;
    c->qlen = c->qcap = 0;
}

static void protocol_error(vl_client *c)
{
    vl_reply_error(&c->out, "ERR %s", c->parser.error);
    c->flags |= VL_CLIENT_CLOSE_AFTER_REPLY;
    vl_client_mark_pending(c->owner, c);
}

static int output_backlogged(const vl_client *c)
{
    return c->out.len > VL_OUTPUT_PAUSE_BYTES;
}

/* An HTTP request line ("POST / HTTP/1.1") or header ("Host: x") sent to
 * this port is what a web page makes a browser send (cross-protocol
 * scripting): its body would run as commands.  Redis closes such a
 * connection without running anything, as we do. */
static int looks_like_http(const char *word, size_t len)
{
    return (len == 4 && strncasecmp(word, "post", 4) == 0) ||
           (len == 5 && strncasecmp(word, "host:", 5) == 0);
}

/* Drop the rest of the input and close once earlier replies are out; the
 * warning is logged at most once a minute, so an attack cannot flood the
 * log. */
static void abort_cross_protocol(vl_client *c)
{
    static time_t last_logged;
    time_t now = time(NULL);
    if (now - last_logged >= 60 || now < last_logged) {
        last_logged = now;
        vl_log(VL_LOG_WARNING,
               "Possible SECURITY ATTACK detected: client %s sent POST or Host: as a command, "
               "likely a web page using cross-protocol scripting over HTTP. Connection aborted.",
               c->addr);
    }
    c->flags |= VL_CLIENT_CLOSE_AFTER_REPLY;
    vl_client_mark_pending(c->owner, c);
}

/* Give back the memory of a query buffer that grew for a large request. */
static void shrink_query(vl_client *c)
{
    if (c->qcap <= 4 * READ_CHUNK || c->qlen >= c->qcap / 4)
        return;
    if (c->qlen == 0) {
        free(c->qbuf);
        c->qbuf = NULL;
        c->qcap = 0;
        return;
    }
    char *q = vl_try_realloc(c->qbuf, c->qlen + 2 * READ_CHUNK);
    if (q) { /* else keep the larger buffer */
        c->qbuf = q;
        c->qcap = c->qlen + 2 * READ_CHUNK;
    }
}

/* Run complete requests from the query buffer until it is empty, the
 * client blocks, or its output backs up. */
static void process_input(vl_client *c)
{
    size_t used = 0;
    while (!(c->flags & (VL_CLIENT_BLOCKED | VL_CLIENT_CLOSE_AFTER_REPLY | VL_CLIENT_CLOSE_ASAP)) &&
           !output_backlogged(c) && used < c->qlen) {
        vl_resp_result r = vl_resp_parse(&c->parser, c->qbuf + used, c->qlen - used);
        if (r == VL_RESP_INCOMPLETE)
            break;
        if (r == VL_RESP_PROTOCOL_ERROR) {
            protocol_error(c);
            break;
        }
        if (c->parser.argc > 0 &&
            looks_like_http(c->qbuf + used + c->parser.offs[0], c->parser.lens[0])) {
            abort_cross_protocol(c);
            used = c->qlen;
            vl_resp_parser_reset(&c->parser);
            break;
        }
        const char *argv[64];
        const char **args =
            c->parser.argc <= 64 ? argv : vl_try_realloc(NULL, c->parser.argc * sizeof *args);
        if (!args) {
            snprintf(c->parser.error, sizeof c->parser.error,
                     "out of memory for the arguments of the request");
            protocol_error(c);
            break;
        }
        for (size_t i = 0; i < c->parser.argc; i++)
            args[i] = c->qbuf + used + c->parser.offs[i];
        vl_dispatch_result d = VL_DISPATCH_DONE;
        if (c->parser.argc > 0)
            d = c->owner->dispatch(c, (int)c->parser.argc, args, c->parser.lens);
        if (args != argv)
            free(args);
        used += c->parser.pos;
        vl_resp_parser_reset(&c->parser);
        if (d == VL_DISPATCH_DONE)
            vl_client_mark_pending(c->owner, c);
        c->active_ms = monotonic_ms();
        vl_client_check_output(c);
    }
    if (c->flags & (VL_CLIENT_CLOSE_AFTER_REPLY | VL_CLIENT_CLOSE_ASAP)) {
        drop_input(c);
    } else if (used) {
        memmove(c->qbuf, c->qbuf + used, c->qlen - used);
        c->qlen -= used;
    }
    shrink_query(c);
    vl_client_account(c);
}

/* Room to read READ_CHUNK more bytes: 0, or -1 when c must be closed
 * (evicted, or malloc refused). */
static int grow_query(vl_client *c)
{
    vl_clients *cs = c->owner;
    size_t want = c->qlen + READ_CHUNK, max = cs->limits.query_max;
    if (c->qcap >= want)
        return 0;
    size_t cap = c->qcap / 2 * 3;
    if (cap < want + READ_CHUNK)
        cap = want + READ_CHUNK;
    if (max && cap > max + READ_CHUNK) /* qlen passing max ends the request */
        cap = max + READ_CHUNK > want ? max + READ_CHUNK : want;
    vl_client_account(c);
    if (vl_clients_make_room(cs, c, cap - c->qcap) != 0)
        return -1;
    close_scheduled(cs); /* free the evicted clients' memory before taking more */
    char *q = vl_try_realloc(c->qbuf, cap);
    if (!q) {
        vl_log(VL_LOG_WARNING,
               "Closing client id=%llu addr=%s: out of memory growing its query buffer to %zu "
               "bytes",
               (unsigned long long)c->id, c->addr, cap);
        return -1;
    }
    c->qbuf = q;
    c->qcap = cap;
    vl_client_account(c);
    return 0;
}

/* 0 on success, -1 when the client must be closed.  Bytes the conn
 * already holds (a decrypted TLS record) are drained too: no socket event
 * would announce them. */
static int read_input(vl_client *c)
{
    vl_clients *cs = c->owner;
    do {
        if (grow_query(c) != 0)
            return -1;
        ssize_t n = vl_conn_read(c->conn, c->qbuf + c->qlen, c->qcap - c->qlen);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        c->qlen += (size_t)n;
        if (cs->limits.query_max && c->qlen > cs->limits.query_max) {
            vl_log(VL_LOG_WARNING,
                   "Closing client that reached max query buffer length: id=%llu addr=%s "
                   "qbuf=%zu (client-query-buffer-limit is %zu)",
                   (unsigned long long)c->id, c->addr, c->qlen, cs->limits.query_max);
            cs->query_limit_disconnections++;
            snprintf(c->parser.error, sizeof c->parser.error,
                     "Protocol error: request larger than %zu bytes", cs->limits.query_max);
            drop_input(c);
            protocol_error(c);
            break;
        }
    } while (vl_conn_has_pending(c->conn));
    return 0;
}

/* Which events the client should be watched for right now.  A blocked
 * client is not read, but it stays watched for input until some arrives
 * (VL_CLIENT_READ_DEFERRED): a search blocks its client for tens of
 * microseconds and a closed-loop client sends nothing meanwhile, so
 * dropping and restoring the watch around every search cost two
 * epoll_ctl calls per request for nothing. */
static int wanted_events(const vl_client *c)
{
    int mask = 0;
    if (!(c->flags & (VL_CLIENT_READ_DEFERRED | VL_CLIENT_CLOSE_AFTER_REPLY)) &&
        !output_backlogged(c))
        mask |= VL_EV_READ;
    /* Writable events matter only for bytes we may send but the socket
     * would not take; held bytes wait for the commit, not the socket. */
    if (c->nmarks && !(c->flags & VL_CLIENT_PENDING_WRITE) &&
        sendable(c, c->owner->dur.durable(c->owner->dur.ctx)) > 0)
        mask |= VL_EV_WRITE;
    return mask;
}

static void rewatch(vl_client *c)
{
    if (!(c->flags & VL_CLIENT_CLOSED))
        vl_loop_watch(c->owner->loop, c->fd, vl_conn_interest(c->conn, wanted_events(c)),
                      on_client_event, c);
}

static void on_client_event(vl_loop *l, int fd, int events, void *data)
{
    vl_client *c = data;
    vl_clients *cs = c->owner;
    (void)l;
    (void)fd;
    if (c->flags & VL_CLIENT_CLOSE_ASAP) {
        client_close(c);
        return;
    }
    events = vl_conn_ready(c->conn, events);
    if (events & VL_EV_WRITE) /* written in flush, after the group commit */
        vl_client_mark_pending(cs, c);
    if ((events & VL_EV_READ) && (c->flags & VL_CLIENT_BLOCKED)) {
        c->flags |= VL_CLIENT_READ_DEFERRED; /* read it once unblocked */
    } else if (events & VL_EV_READ) {
        if (read_input(c) != 0) {
            client_close(c);
            return;
        }
        process_input(c);
    }
    int doomed = (c->flags & VL_CLIENT_CLOSE_ASAP) != 0;
    close_scheduled(cs);
    if (!doomed)
        rewatch(c);
}

/* Write up to limit bytes, what the socket takes; 0 while the client
 * lives, -1 if closed. */
static int write_output(vl_client *c, size_t limit)
{
    size_t sent = 0;
    while (sent < limit) {
        ssize_t n = vl_conn_write(c->conn, c->out.data + sent, limit - sent);
        if (n == 0)
            break;
        if (n < 0) {
            client_close(c);
            return -1;
        }
        sent += (size_t)n;
    }
    vl_reply_consume(&c->out, sent);
    consume_marks(c, sent);
    if (sent)
        c->active_ms = monotonic_ms();
    if (c->out.len == 0 && (c->flags & VL_CLIENT_CLOSE_AFTER_REPLY)) {
        client_close(c);
        return -1;
    }
    return 0;
}

int vl_clients_flush(vl_clients *cs)
{
    /* Detach the list: replies produced while we go (held-back requests
     * run below) join a new list and wait for the next group commit. */
    close_scheduled(cs);
    vl_client *list = cs->pending;
    cs->pending = NULL;
    uint64_t durable = cs->dur.durable(cs->dur.ctx);
    while (list) {
        vl_client *c = list;
        list = c->next_pending;
        c->flags &= ~VL_CLIENT_PENDING_WRITE;
        if (c->flags & VL_CLIENT_CLOSE_ASAP)
            continue; /* scheduled while this list was walked: the next flush closes it */
        tag_output(c, cs->dur.barrier(cs->dur.ctx)); /* nothing may go untagged */
        size_t limit = sendable(c, durable);
        if ((limit || (c->flags & VL_CLIENT_CLOSE_AFTER_REPLY)) && write_output(c, limit) != 0)
            continue; /* closed (an aborted client may have nothing left to send) */
        vl_client_account(c);
        if (waits_for_durability(c, durable))
            hold(cs, c); /* the rest shows a write not yet on disk */
        /* Output drained below the pause mark: run requests we held back. */
        if (c->qlen && !(c->flags & VL_CLIENT_BLOCKED) && !output_backlogged(c))
            process_input(c);
        rewatch(c);
    }
    return cs->pending != NULL || cs->closing;
}

void vl_client_unblock(vl_clients *cs, vl_client *c)
{
    c->flags &= ~(VL_CLIENT_BLOCKED | VL_CLIENT_READ_DEFERRED);
    c->active_ms = monotonic_ms(); /* the wait was the server's, not the client's */
    if (c->flags & VL_CLIENT_CLOSED) {
        client_free(c);
        return;
    }
    vl_client_mark_pending(cs, c);
    vl_client_check_output(c); /* the reply the async work queued */
    process_input(c);
    rewatch(c);
}

void vl_clients_close_idle(vl_clients *cs)
{
    if (cs->timeout_ms <= 0)
        return;
    int64_t now = monotonic_ms();
    for (vl_client *c = cs->head, *next; c; c = next) {
        next = c->next;
        if (c->flags & (VL_CLIENT_BLOCKED | VL_CLIENT_HELD | VL_CLIENT_CLOSED))
            continue;
        if (now - c->active_ms >= cs->timeout_ms)
            client_close(c);
    }
}

void vl_clients_close_all(vl_clients *cs)
{
    while (cs->head) {
        vl_client *c = cs->head;
        c->flags &= ~VL_CLIENT_BLOCKED;
        client_close(c);
    }
    if (cs->spare_fd >= 0) {
        close(cs->spare_fd);
        cs->spare_fd = -1;
    }
}
