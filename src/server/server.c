/*
 * server.c - wiring: engine + listener + clients + workers + event loop.
 *
 * Group commit, pipelined: every write handled during a loop turn is
 * appended to the WAL buffer; before the loop sleeps, before_sleep() hands
 * the buffer to the OS with one write() and (appendfsync always) asks the
 * WAL's sync thread for one fdatasync.  The loop does not wait for it: it
 * goes on serving, and the next turn's writes form the next batch.  Every
 * reply is tagged with the LSN of the newest change it may reflect and is
 * sent only once that LSN is durable (network/client.c), so fifty clients
 * writing at once share one fsync and no client ever sees a write the disk
 * does not hold.
 *
 * If a write or fsync fails we exit at once without replying: the writes
 * in flight were never acknowledged, and a restart replays exactly what
 * reached the disk (Redis does the same for appendfsync always).
 *
 * With --storage the WAL is in the store and its failures are not fatal:
 * while a batch cannot be stored (it is retried) every write waiting for
 * it is answered with one -ERR naming the cause, in place, and new writes
 * get that -ERR; reads go on from memory (they may show the batch that is
 * being retried: a documented weakness of the outage window).  Once the
 * batch lands, writes are taken again without a restart.  Once another
 * writer fenced this one, memory holds changes that will never be stored:
 * every reply waiting for them becomes one -ERR and its client is closed,
 * and every data command, reads too, gets -ERR fenced: ...
 */
#include "server/server.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "commands/commands.h"
#include "network/listener.h"
#include "server/follower.h"
#include "server/storage.h"
#include "util/log.h"

vl_server server;

void vl_config_defaults(vl_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->port = 6379;
    snprintf(cfg->bind, sizeof cfg->bind, "127.0.0.1");
    snprintf(cfg->dir, sizeof cfg->dir, "./data");
    cfg->metric = VL_METRIC_COSINE;
    cfg->fsync = VL_FSYNC_ALWAYS;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->threads = n > 0 ? (int)n : 2;
    cfg->max_clients = 10000;
    cfg->tls_auth_clients = VL_TLS_AUTH_YES; /* as Redis */
    cfg->protected_mode = 1;
    vl_options o;
    vl_options_init(&o);
    cfg->flush_rows = o.flush_rows;
    cfg->flush_mb = o.flush_wal_bytes >> 20;
    cfg->flush_seconds = (int)o.flush_seconds;
    cfg->retain_versions = (int)o.retain_versions;
    cfg->compact_segments = (int)o.compact_segments;
    cfg->tail_index_rows = (int)o.tail_index_rows;
    cfg->index = o.index;
    cfg->maxmemory_clients = VL_DEFAULT_MAXMEMORY_CLIENTS;
    cfg->client_query_buffer_limit = VL_DEFAULT_QUERY_BUFFER_LIMIT;
    cfg->client_output_buffer_limit = VL_DEFAULT_OUTPUT_BUFFER_LIMIT;
    snprintf(cfg->s3_region, sizeof cfg->s3_region, "us-east-1");
    cfg->s3_timeout_ms = 30000;
    cfg->cache_size = VL_DEFAULT_CACHE_SIZE;
    cfg->follow_interval_ms = 1000;
}

static void wal_failed(const vl_error *err)
{
    vl_log(VL_LOG_ERROR, "WAL write or fsync failed, exiting without acknowledging: %s", err->msg);
    _exit(1);
}

/* The store WAL refuses changes (or took them again): tell whoever waits
 * for a change it has not stored; log each change of state once. */
static void check_refusal(void)
{
    static vl_status refusing;
    vl_error why;
    vl_status now = vl_write_refusal(server.engine, &why);
    if (now != refusing)
        vl_log(now ? VL_LOG_WARNING : VL_LOG_INFO, "%s",
               now ? why.msg : "writes resumed: the store took the batch it had refused");
    refusing = now;
    if (now == VL_ERR_CONFLICT)
        vl_clients_fail_waiting(&server.clients, why.msg);
    else if (now != VL_OK)
        vl_clients_refuse_waiting_writes(&server.clients, why.msg);
}

/* A commit failed: fatal for a local WAL, a refusal for a store WAL. */
static void commit_failed(const vl_error *err)
{
    vl_error why;
    if (vl_write_refusal(server.engine, &why) == VL_OK)
        wal_failed(err);
    check_refusal();
}

/* Before the loop sleeps: run a queued small search here instead of
 * sleeping until a worker has done it (worker_pool.c), then commit and
 * send.  Nonzero: poll again without sleeping. */
static int before_sleep(vl_loop *l, void *data)
{
    (void)l, (void)data;
    check_refusal();
    int helped = vl_pool_help(server.pool);
    for (int round = 0; round < 8; round++) {
        if (vl_sync_pending(server.engine)) {
            vl_error err;
            if (vl_commit_write(server.engine, &err) != VL_OK)
                commit_failed(&err);
            server.group_commits += !vl_sync_pending(server.engine); /* a batch went out */
        }
        vl_clients_release(&server.clients);
        if (!vl_clients_flush(&server.clients))
            return helped; /* more may be queued */
    }
    return 1; /* replies still queued: poll again without sleeping */
}

/* The WAL's sync thread made more changes durable: release their replies
 * (before_sleep sends them). */
static void on_commit(vl_loop *l, int fd, int events, void *data)
{
    (void)l, (void)fd, (void)events, (void)data;
    vl_error err;
    if (vl_commit_poll(server.engine, &err) != VL_OK)
        commit_failed(&err);
    vl_clients_release(&server.clients);
}

/* A reply produced now must wait for the newest change, unless that is
 * already durable -- or the store WAL refuses changes: then writes (and
 * once fenced, reads) are refused in command_table.c, and reads during an
 * outage are served from memory (see the top). */
static uint64_t reply_barrier(void *ctx)
{
    (void)ctx;
    vl_error why;
    if (vl_write_refusal(server.engine, &why) != VL_OK)
        return 0;
    uint64_t last = vl_last_lsn(server.engine);
    return last > vl_durable_lsn(server.engine) ? last : 0;
}

static uint64_t durable_lsn(void *ctx)
{
    (void)ctx;
    return vl_durable_lsn(server.engine);
}

/* A background flush or compaction finished. */
static void on_background(vl_loop *l, int fd, int events, void *data)
{
    (void)l, (void)fd, (void)events, (void)data;
    vl_background_poll(server.engine);
    vl_saves_poll();
    vl_engine_stats st;
    vl_engine_stats_get(server.engine, &st);
    if (st.last_error[0] && strcmp(st.last_error, server.last_logged_error) != 0) {
        vl_log(VL_LOG_WARNING, "background job failed: %s", st.last_error);
        snprintf(server.last_logged_error, sizeof server.last_logged_error, "%s", st.last_error);
    }
}

/* Every 100 ms: scheduled BGSAVE, automatic flush and compaction, idle
 * clients (--timeout). */
static void cron(vl_loop *l, void *data)
{
    (void)l, (void)data;
    if (server.bgsave_scheduled && !vl_background_busy(server.engine)) {
        server.bgsave_scheduled = 0;
        vl_bgsave(server.engine, VL_DEFAULT_COLLECTION, NULL);
    }
    vl_saves_poll(); /* before maintenance can take the turn for an automatic job */
    vl_maintenance(server.engine);
    vl_follower_tick();
    vl_clients_close_idle(&server.clients);
}

static void on_signal(vl_loop *l, int fd, int events, void *data)
{
    (void)events, (void)data;
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof si) == (ssize_t)sizeof si)
        vl_log(VL_LOG_INFO, "received %s, shutting down", strsignal((int)si.ssi_signo));
    vl_loop_stop(l);
}

/* SIGINT and SIGTERM are blocked before any thread starts (threads
 * inherit the mask), so they can only arrive through the signalfd that the
 * loop watches, and shutdown is always the orderly one. */
static void shutdown_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
}

static void block_shutdown_signals(void)
{
    sigset_t set;
    shutdown_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static int watch_signals(void)
{
    sigset_t set;
    shutdown_signals(&set);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd >= 0)
        vl_loop_watch(server.loop, fd, VL_EV_READ, on_signal, NULL);
    return fd;
}

static int open_engine(const vl_config *cfg)
{
    vl_options opt;
    vl_options_init(&opt);
    opt.default_metric = cfg->metric;
    opt.fsync = cfg->fsync;
    opt.deferred_sync = 1; /* before_sleep() commits once per loop turn */
    opt.flush_rows = cfg->flush_rows;
    opt.flush_wal_bytes = cfg->flush_mb << 20;
    opt.flush_seconds = (uint32_t)cfg->flush_seconds;
    opt.retain_versions = (uint32_t)cfg->retain_versions;
    opt.compact_segments = (uint32_t)cfg->compact_segments;
    opt.tail_index_rows = (uint32_t)cfg->tail_index_rows;
    opt.open_previous_on_damage = cfg->open_previous_on_damage;
    opt.wal_truncate_damaged = cfg->wal_truncate_damaged;
    opt.max_memory = cfg->maxmemory;
    opt.index = cfg->index;
    opt.read_only = cfg->read_only;
    vl_follower_init();
    vl_error err;
    if (vl_server_open_store(cfg, &opt.store, &err) != VL_OK) {
        vl_log(VL_LOG_ERROR, "cannot open storage %s: %s", cfg->storage, err.msg);
        return -1;
    }
    if (vl_open(cfg->dir, &opt, &server.engine, &err) != VL_OK) {
        vl_log(VL_LOG_ERROR, "cannot open data directory %s: %s", cfg->dir, err.msg);
        return -1;
    }
    vl_engine_stats st;
    vl_engine_stats_get(server.engine, &st);
    if (st.warning[0])
        vl_log(VL_LOG_WARNING, "%s", st.warning);
    if (st.wal_dropped_bytes)
        vl_log(VL_LOG_WARNING,
               "dropped a torn WAL tail of %llu bytes (a crash interrupted a write "
               "that was never acknowledged)",
               (unsigned long long)st.wal_dropped_bytes);
    vl_collection_info info = {.index = cfg->index};
    if (vl_collection_describe(server.engine, VL_DEFAULT_COLLECTION, &info) == VL_OK) {
        if (info.metric != cfg->metric)
            vl_log(VL_LOG_WARNING,
                   "collection '%s' keeps its stored metric %s (--metric %s applies "
                   "to new collections only)",
                   VL_DEFAULT_COLLECTION, vl_metric_name(info.metric), vl_metric_name(cfg->metric));
        if (info.index.kind != cfg->index.kind || info.index.quant != cfg->index.quant)
            vl_log(VL_LOG_WARNING,
                   "collection '%s' keeps its stored index %s + %s (--index %s --quant %s apply "
                   "to new collections only)",
                   VL_DEFAULT_COLLECTION, vl_index_kind_name(info.index.kind),
                   vl_quant_name(info.index.quant), vl_index_kind_name(cfg->index.kind),
                   vl_quant_name(cfg->index.quant));
        vl_log(VL_LOG_INFO, "loaded %llu vectors (dimension %u, metric %s) up to WAL LSN %llu",
               (unsigned long long)info.count, info.dim, vl_metric_name(info.metric),
               (unsigned long long)st.wal_lsn);
    }
    return 0;
}

/* The plain listener (unless --port 0), then the TLS context and listener
 * (with --tls-port); 0, or -1 after logging why. */
static int open_listeners(const vl_config *cfg)
{
    char err[PATH_MAX * 2 + 512];
    server.listen_fd = server.tls_fd = -1;
    if (cfg->port) {
        server.listen_fd = vl_listen_tcp(cfg->bind, cfg->port, err, sizeof err);
        if (server.listen_fd < 0)
            goto failed;
    }
    if (!cfg->tls_port)
        return 0;
    vl_tls_options o = {cfg->tls_cert_file, cfg->tls_key_file,
                        cfg->tls_ca_cert_file[0] ? cfg->tls_ca_cert_file : NULL,
                        cfg->tls_auth_clients};
    server.tls = vl_tls_new(&o, err, sizeof err);
    if (!server.tls)
        goto failed;
    server.tls_fd = vl_listen_tcp(cfg->bind, cfg->tls_port, err, sizeof err);
    if (server.tls_fd >= 0)
        return 0;
failed:
    vl_log(VL_LOG_ERROR, "%s", err);
    if (server.listen_fd >= 0)
        close(server.listen_fd);
    vl_tls_free(server.tls);
    return -1;
}

static void close_listeners(void)
{
    if (server.listen_fd >= 0)
        close(server.listen_fd);
    if (server.tls_fd >= 0)
        close(server.tls_fd);
}

static void shutdown_server(int sigfd)
{
    close_listeners();
    vl_pool_free(server.pool); /* finishes searches and delivers their replies */
    vl_error err;
    if (vl_sync(server.engine, &err) != VL_OK) /* wait for the last batch's fsync */
        wal_failed(&err);
    vl_clients_release(&server.clients);
    vl_clients_flush(&server.clients);
    vl_clients_close_all(&server.clients);
    vl_tls_free(server.tls);
    vl_close(server.engine);
    if (sigfd >= 0)
        close(sigfd);
    vl_loop_free(server.loop);
    vl_log(VL_LOG_INFO, "bye");
}

/* Descriptors kept back from clients: stdio, the lock, WAL, listeners,
 * epoll and event fds, and the files a flush, compaction or time-travel
 * read opens. */
#define RESERVED_FDS 64

static void fit_clients_to_fd_limit(void)
{
    uint64_t soft, wanted = (uint64_t)server.cfg.max_clients;
    uint64_t fit = vl_fd_limit_fit(wanted, RESERVED_FDS, &soft);
    if (fit < wanted) {
        vl_log(VL_LOG_WARNING,
               "open files limit is %llu: maxclients lowered from %llu to %llu (%d descriptors "
               "reserved for the WAL, segments, listeners and workers; raise the hard limit, "
               "e.g. ulimit -Hn, to allow more)",
               (unsigned long long)soft, (unsigned long long)wanted, (unsigned long long)fit,
               RESERVED_FDS);
        server.cfg.max_clients = (int)fit;
    }
}

int vl_server_main(const vl_config *cfg)
{
    memset(&server, 0, sizeof server);
    server.cfg = *cfg;
    fit_clients_to_fd_limit();
    server.start_time = (int64_t)time(NULL);
    signal(SIGPIPE, SIG_IGN);
    block_shutdown_signals();
    if (open_engine(cfg) != 0)
        return 1;
    if (open_listeners(cfg) != 0) {
        vl_close(server.engine);
        return 1;
    }
    server.loop = vl_loop_new();
    vl_durability dur = {reply_barrier, durable_lsn, NULL};
    vl_clients_init(&server.clients, server.loop, vl_command_dispatch,
                    (uint64_t)server.cfg.max_clients, &dur);
    server.clients.tls = server.tls;
    server.clients.timeout_ms = (int64_t)cfg->timeout * 1000;
    vl_client_limits limits = {cfg->client_query_buffer_limit, cfg->client_output_buffer_limit,
                               cfg->maxmemory_clients};
    vl_clients_set_limits(&server.clients, &limits);
    server.pool = server.loop ? vl_pool_new(cfg->threads, server.loop) : NULL;
    if (!server.pool) {
        vl_log(VL_LOG_ERROR, "cannot start the event loop or worker threads");
        return 1;
    }
    vl_pool_loop_helps(server.pool); /* before_sleep */
    if (server.listen_fd >= 0)
        vl_loop_watch(server.loop, server.listen_fd, VL_EV_READ, vl_clients_on_accept,
                      &server.clients);
    if (server.tls_fd >= 0)
        vl_loop_watch(server.loop, server.tls_fd, VL_EV_READ, vl_clients_on_accept_tls,
                      &server.clients);
    vl_loop_set_before_sleep(server.loop, before_sleep, NULL);
    vl_loop_watch(server.loop, vl_background_fd(server.engine), VL_EV_READ, on_background, NULL);
    vl_loop_watch(server.loop, vl_commit_fd(server.engine), VL_EV_READ, on_commit, NULL);
    vl_loop_set_cron(server.loop, 100, cron, NULL);
    int sigfd = watch_signals();
    char where[320], tls[32] = "";
    snprintf(where, sizeof where, "%s:%d", cfg->bind, cfg->port ? cfg->port : cfg->tls_port);
    if (cfg->tls_port && cfg->port)
        snprintf(tls, sizeof tls, " (TLS on port %d)", cfg->tls_port);
    else if (cfg->tls_port)
        snprintf(tls, sizeof tls, " (TLS)");
    vl_log(VL_LOG_INFO, "VexLake %s ready on %s%s, data in %s (appendfsync %s, %d search threads)",
           VL_VERSION, where, tls, cfg->dir, vl_fsync_name(cfg->fsync), cfg->threads);
    vl_loop_run(server.loop);
    shutdown_server(sigfd);
    return 0;
}
