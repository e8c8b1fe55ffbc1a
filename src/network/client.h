/*
 * client.h - one client connection: its buffers, protocol state and flags.
 *
 * The network layer owns reading, parsing and writing; it hands each
 * complete request to a dispatch function (the command layer) and never
 * looks at what the command means.  A handler may "block" the client while
 * work runs elsewhere (a search on a worker thread): the client's further
 * requests wait, in order, until vl_client_unblock().
 *
 * Replies are written only from vl_clients_flush().  Each reply carries a
 * barrier: the log position (LSN) of the newest change it may reflect; it
 * is held until the server reports that position durable.  So no client
 * receives an acknowledgement of -- or a read showing -- a write that is
 * not yet on disk, while the server never waits for an fsync itself.
 */
#ifndef VL_NETWORK_CLIENT_H
#define VL_NETWORK_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "network/conn.h"
#include "network/conn_tls.h"
#include "network/event_loop.h"
#include "network/reply.h"
#include "network/resp_parser.h"

/** Defaults of the client memory limits (README "Memory limits"). */
#define VL_DEFAULT_QUERY_BUFFER_LIMIT ((size_t)64 * 1024 * 1024)
#define VL_DEFAULT_OUTPUT_BUFFER_LIMIT ((size_t)256 * 1024 * 1024)
#define VL_DEFAULT_MAXMEMORY_CLIENTS ((size_t)1024 * 1024 * 1024)
/** Stop reading a client while this many reply bytes wait to be sent. */
#define VL_OUTPUT_PAUSE_BYTES (16u * 1024 * 1024)

enum {
    VL_CLIENT_CLOSE_AFTER_REPLY = 1 << 0, /* QUIT or protocol error */
    VL_CLIENT_BLOCKED = 1 << 1,           /* waiting for async work */
    VL_CLIENT_PENDING_WRITE = 1 << 2,     /* in the pending-write list */
    VL_CLIENT_CLOSED = 1 << 3,            /* socket gone; freed when unblocked */
    VL_CLIENT_HELD = 1 << 4,              /* in the held list: replies await durability */
    VL_CLIENT_CLOSE_ASAP = 1 << 5,        /* over a memory limit: closed before the loop sleeps */
    VL_CLIENT_WRITE_REPLY = 1 << 6,       /* the reply just queued acknowledges a write */
    VL_CLIENT_READ_AT = 1 << 7,           /* the reply just queued shows nothing after read_lsn */
    VL_CLIENT_READ_DEFERRED = 1 << 8      /* input came while blocked: unwatched until unblocked */
};

/** Caps on client buffers, in bytes; 0 means no cap. */
typedef struct {
    size_t query_max;  /* one client's query buffer (--client-query-buffer-limit) */
    size_t output_max; /* one client's pending replies (--client-output-buffer-limit) */
    size_t total_max;  /* all clients' query + output buffers (--maxmemory-clients) */
} vl_client_limits;

typedef struct vl_client vl_client;
struct vl_acl_user;

/** Result of a dispatched request. */
typedef enum { VL_DISPATCH_DONE, VL_DISPATCH_BLOCKED } vl_dispatch_result;

typedef vl_dispatch_result (*vl_dispatch_fn)(vl_client *c, int argc, const char **argv,
                                             const size_t *lens);

struct vl_client {
    vl_conn *conn; /* the byte stream (plain or TLS); owns fd */
    int fd;        /* its socket, for the event loop */
    uint64_t id;
    int flags;
    char *qbuf;
    size_t qlen, qcap;
    vl_resp_parser parser;
    vl_reply out;
    char *name;      /* CLIENT SETNAME */
    char *lib_name;  /* CLIENT SETINFO LIB-NAME */
    char *lib_ver;   /* CLIENT SETINFO LIB-VER */
    char addr[64];   /* peer address, "ip:port" */
    int64_t created; /* unix seconds */
    /* Logged-in user, NULL until authenticated.  Owned by the command
     * layer's user registry, which re-points or closes clients when it
     * replaces its users (ACL LOAD); the network layer never reads it. */
    struct vl_acl_user *user;
    /* Monotonic ms of the last completed request or reply bytes sent: the
     * idle clock of --timeout.  Bytes of an unfinished request do not
     * move it, so trickling a request does not keep a client alive. */
    int64_t active_ms;
    /* Output [previous end, marks[i].end) may be sent once marks[i].lsn is
     * durable; marks ascend in both end and lsn. */
    struct vl_reply_mark {
        size_t end;
        uint64_t lsn;
        int write; /* exactly one reply, a write's acknowledgement */
    } * marks;
    size_t nmarks, cap_marks;
    /* With VL_CLIENT_READ_AT: the newest change the reply just queued may
     * show (a read from a snapshot at that LSN); it waits for that LSN,
     * not for the barrier, so a read need not wait for others' writes. */
    uint64_t read_lsn;
    struct vl_clients *owner;
    vl_client *prev, *next, *next_pending;
    size_t acct_query, acct_output; /* what the registry's totals count for it */
};

/** Where replies stand against durability: barrier() is the LSN a reply
 *  produced now must wait for (0 if nothing), durable() how far changes
 *  are durable. */
typedef struct {
    uint64_t (*barrier)(void *ctx);
    uint64_t (*durable)(void *ctx);
    void *ctx;
} vl_durability;

/** Clients registry, owned by the server. */
typedef struct vl_clients {
    vl_loop *loop;
    vl_dispatch_fn dispatch;
    vl_client *head;
    vl_client *pending; /* have replies to write */
    vl_client *held;    /* have replies waiting for durability */
    vl_durability dur;
    vl_tls *tls; /* context for the TLS listener's clients, or NULL */
    uint64_t next_id;
    uint64_t connected;
    uint64_t total_connections;
    uint64_t max_clients;
    uint64_t rejected_connections;
    int spare_fd;       /* held open to accept-and-refuse when out of descriptors */
    int64_t timeout_ms; /* close clients idle this long (0: never) */
    vl_client_limits limits;
    size_t query_bytes, output_bytes; /* buffers of clients not closing */
    uint64_t closing;                 /* clients with VL_CLIENT_CLOSE_ASAP, not yet closed */
    uint64_t evicted_clients;         /* closed by --maxmemory-clients */
    uint64_t query_limit_disconnections;
    uint64_t output_limit_disconnections;
} vl_clients;

void vl_clients_init(vl_clients *cs, vl_loop *loop, vl_dispatch_fn dispatch, uint64_t max_clients,
                     const vl_durability *dur);
/** Set the memory caps (vl_clients_init starts with the defaults). */
void vl_clients_set_limits(vl_clients *cs, const vl_client_limits *limits);
/** Move held clients whose replies are now durable back to pending. */
void vl_clients_release(vl_clients *cs);
/** The changes some replies wait for may never become durable (the store
 *  refused them, or this writer was fenced): cut every such reply, queue
 *  one "-ERR <msg>" in its place and close that client once it is sent.
 *  Its requests' outcome is unknown to it, as after a dropped connection.
 *  Clients with work in flight on another thread are left for a later
 *  call. */
void vl_clients_fail_waiting(vl_clients *cs, const char *msg);
/** Gentler, for a store that is only unavailable: every waiting write
 *  acknowledgement becomes "-ERR <msg>" in place (one error per write, the
 *  connection stays open) and every other waiting reply is released. */
void vl_clients_refuse_waiting_writes(vl_clients *cs, const char *msg);
/** Accept-handler data: the listening socket's events land here. */
void vl_clients_on_accept(vl_loop *l, int fd, int events, void *data);
/** The same for the TLS listener: its clients speak TLS (cs->tls). */
void vl_clients_on_accept_tls(vl_loop *l, int fd, int events, void *data);
/** Write every pending reply (after the group commit).  Returns 1 when
 *  new replies were queued meanwhile (they need another commit first). */
int vl_clients_flush(vl_clients *cs);
/** Close clients idle for timeout_ms or longer; clients waiting for async
 *  work or for durability are not idle.  Call periodically. */
void vl_clients_close_idle(vl_clients *cs);
/** Close every client (shutdown). */
void vl_clients_close_all(vl_clients *cs);

/** Resume a blocked client: queue its reply, then run its buffered requests. */
void vl_client_unblock(vl_clients *cs, vl_client *c);
/** 1 when some of c's queued output waits for a change to be durable (so
 *  c may have a write in flight that its next read must show). */
int vl_client_output_waits(const vl_client *c);
/** Mark that c has reply bytes to send. */
void vl_client_mark_pending(vl_clients *cs, vl_client *c);
/** Close c once its queued replies are sent (at once if there are none);
 *  safe to call for any client from inside a handler. */
void vl_client_close_soon(vl_clients *cs, vl_client *c);

/* ---- memory limits (client_memory.c) ---- */

/**
 * Call BEFORE building a reply of about `bytes`: 0 when c may queue it;
 * -1 when it would take c past --client-output-buffer-limit, or c would be
 * the largest client past --maxmemory-clients -- then c is scheduled to be
 * closed (logged) and the handler must not build the reply.  Larger
 * clients may be evicted instead to make room.
 */
int vl_client_reserve_output(vl_client *c, size_t bytes);
/** Bring the registry's byte totals up to date with c's buffers. */
void vl_client_account(vl_client *c);
/** Close c before the loop sleeps (its buffers stop counting now). */
void vl_client_schedule_close(vl_client *c);
/** While the clients' buffers plus `extra` more for c exceed
 *  --maxmemory-clients, schedule the largest client to close (counting c
 *  with its extra); returns -1 when c itself was chosen, else 0. */
int vl_clients_make_room(vl_clients *cs, vl_client *c, size_t extra);
/** After c's handler ran: close c if its reply could not be built or
 *  passed the output limit, and evict to stay within the total. */
void vl_client_check_output(vl_client *c);

#endif
