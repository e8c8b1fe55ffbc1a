/*
 * cmd_info.c - INFO (alias STATS), DBSIZE and CONFIG GET.
 *
 * INFO uses Redis' text format: "# Section" headers, "field:value" lines,
 * CRLF line ends, a blank line between sections.  redis_version is
 * included because some clients read it to pick features.
 */
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "commands/commands.h"
#include "server/server.h"
#include "server/follower.h"
#include "server/storage.h"
#include "util/alloc.h"

typedef struct {
    char *data;
    size_t len, cap;
} text;

static void add(text *t, const char *fmt, ...) VL_PRINTF(2, 3);

static void add(text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->data + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = t->cap * 2 + (size_t)(n > 0 ? n : 0) + 256;
        t->data = vl_realloc(t->data, t->cap);
    }
}

static void section_server(text *t)
{
    int64_t up = (int64_t)time(NULL) - server.start_time;
    add(t, "# Server\r\nvexlake_version:%s\r\nredis_version:7.4.0\r\nredis_mode:standalone\r\n",
        VL_VERSION);
    add(t, "process_id:%d\r\ntcp_port:%d\r\nuptime_in_seconds:%lld\r\nuptime_in_days:%lld\r\n",
        (int)getpid(), server.cfg.port, (long long)up, (long long)(up / 86400));
    add(t, "search_threads:%d\r\nsimd:%s\r\n", server.cfg.threads, vl_simd_name());
    add(t, "tls_port:%d\r\n", server.cfg.tls_port);
}

static void section_clients(text *t)
{
    uint64_t blocked = 0;
    for (vl_client *c = server.clients.head; c; c = c->next)
        /* a client gone while its search runs is no longer a client */
        blocked += (c->flags & (VL_CLIENT_BLOCKED | VL_CLIENT_CLOSED)) == VL_CLIENT_BLOCKED;
    add(t, "# Clients\r\nconnected_clients:%llu\r\nblocked_clients:%llu\r\nmaxclients:%d\r\n",
        (unsigned long long)server.clients.connected, (unsigned long long)blocked,
        server.cfg.max_clients);
    add(t, "connected_tls_clients:%llu\r\n", (unsigned long long)vl_tls_connections(server.tls));
}

static void section_stats(text *t)
{
    add(t, "# Stats\r\ntotal_connections_received:%llu\r\nrejected_connections:%llu\r\n",
        (unsigned long long)server.clients.total_connections,
        (unsigned long long)server.clients.rejected_connections);
    add(t, "total_commands_processed:%llu\r\ntotal_error_replies:%llu\r\n",
        (unsigned long long)server.commands_processed, (unsigned long long)server.error_replies);
    add(t, "total_writes:%llu\r\ntotal_searches:%llu\r\n", (unsigned long long)server.writes,
        (unsigned long long)server.searches);
    add(t, "evicted_clients:%llu\r\nclient_query_buffer_limit_disconnections:%llu\r\n",
        (unsigned long long)server.clients.evicted_clients,
        (unsigned long long)server.clients.query_limit_disconnections);
    add(t, "client_output_buffer_limit_disconnections:%llu\r\n",
        (unsigned long long)server.clients.output_limit_disconnections);
}

/* Resident set size from /proc/self/statm, 0 if unreadable. */
static uint64_t rss_bytes(void)
{
    unsigned long long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    return n == 2 ? (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

/* "1.50M" style, as Redis' *_human fields. */
static void human(uint64_t v, char *out, size_t cap)
{
    static const char units[] = "BKMGTP";
    double d = (double)v;
    int u = 0;
    while (d >= 1024 && u < 5)
        d /= 1024, u++;
    if (u == 0)
        snprintf(out, cap, "%lluB", (unsigned long long)v);
    else
        snprintf(out, cap, "%.2f%c", d, units[u]);
}

static void add_bytes(text *t, const char *name, uint64_t v)
{
    char h[32];
    human(v, h, sizeof h);
    add(t, "%s:%llu\r\n%s_human:%s\r\n", name, (unsigned long long)v, name, h);
}

static void section_memory(text *t)
{
    const vl_clients *cs = &server.clients;
    add(t, "# Memory\r\n");
    add_bytes(t, "used_memory", vl_memory_used(server.engine));
    add_bytes(t, "used_memory_rss", rss_bytes());
    add_bytes(t, "maxmemory", server.cfg.maxmemory);
    add(t, "maxmemory_policy:noeviction\r\n");
    const char *name;
    for (size_t i = 0; (name = vl_collection_name(server.engine, i)) != NULL; i++) {
        vl_memory_usage u;
        if (vl_collection_memory(server.engine, name, &u) != VL_OK)
            continue;
        add(t, "collection_%s_bytes:%llu\r\ncollection_%s_vectors_bytes:%llu\r\n", name,
            (unsigned long long)u.total, name, (unsigned long long)u.vectors);
        add(t, "collection_%s_keys_bytes:%llu\r\ncollection_%s_index_bytes:%llu\r\n", name,
            (unsigned long long)u.keys, name, (unsigned long long)u.index);
    }
    add(t, "mem_clients_normal:%zu\r\nmem_clients_query_buffers:%zu\r\n",
        cs->query_bytes + cs->output_bytes, cs->query_bytes);
    add(t, "mem_clients_output_buffers:%zu\r\n", cs->output_bytes);
    add(t, "maxmemory_clients:%llu\r\nclient_query_buffer_limit:%llu\r\n",
        (unsigned long long)server.cfg.maxmemory_clients,
        (unsigned long long)server.cfg.client_query_buffer_limit);
    add(t, "client_output_buffer_limit:%llu\r\n",
        (unsigned long long)server.cfg.client_output_buffer_limit);
}

/* --storage: the object store's requests and the local cache. */
static void section_storage_fields(text *t)
{
    vl_storage_stats s;
    vl_server_storage_stats(&s);
    add(t, "storage:%s\r\ns3_gets:%llu\r\ns3_get_bytes:%llu\r\n", server.cfg.storage,
        (unsigned long long)s.s3.gets, (unsigned long long)s.s3.get_bytes);
    add(t, "s3_puts:%llu\r\ns3_put_bytes:%llu\r\ns3_lists:%llu\r\ns3_other_requests:%llu\r\n",
        (unsigned long long)s.s3.puts, (unsigned long long)s.s3.put_bytes,
        (unsigned long long)s.s3.lists, (unsigned long long)s.s3.other);
    add(t, "s3_retries:%llu\r\ns3_failed_requests:%llu\r\n", (unsigned long long)s.s3.retries,
        (unsigned long long)s.s3.failures);
    add(t, "cache_size:%llu\r\ncache_bytes:%llu\r\ncache_files:%llu\r\n",
        (unsigned long long)s.cache.capacity, (unsigned long long)s.cache.bytes,
        (unsigned long long)s.cache.files);
    add(t, "cache_hits:%llu\r\ncache_misses:%llu\r\ncache_evictions:%llu\r\n",
        (unsigned long long)s.cache.hits, (unsigned long long)s.cache.misses,
        (unsigned long long)s.cache.evictions);
    add(t, "cache_dropped_corrupt:%llu\r\ncache_errors:%llu\r\n",
        (unsigned long long)s.cache.dropped, (unsigned long long)s.cache.errors);
}

static void section_persistence(text *t, const vl_engine_stats *st)
{
    add(t, "# Persistence\r\ndir:%s\r\nappendfsync:%s\r\n", server.cfg.dir,
        vl_fsync_name(server.cfg.fsync));
    add(t, "wal_files:%llu\r\nwal_bytes:%llu\r\nwal_lsn:%llu\r\nwal_fsyncs:%llu\r\n",
        (unsigned long long)st->wal_files, (unsigned long long)st->wal_bytes,
        (unsigned long long)st->wal_lsn, (unsigned long long)st->fsyncs);
    add(t, "wal_puts:%llu\r\n", (unsigned long long)st->wal_puts);
    add(t, "group_commits:%llu\r\nwal_torn_bytes_dropped_at_start:%llu\r\n",
        (unsigned long long)server.group_commits, (unsigned long long)st->wal_dropped_bytes);
    add(t, "rdb_last_save_time:%lld\r\nrdb_bgsave_in_progress:%d\r\n", (long long)st->last_save,
        st->background_job);
    add(t, "lake_commits:%llu\r\nlake_flushes:%llu\r\nlake_compactions:%llu\r\n",
        (unsigned long long)st->commits, (unsigned long long)st->flushes,
        (unsigned long long)st->compactions);
    add(t, "lake_gc_deleted_objects:%llu\r\nlake_last_bgsave_status:%s\r\n",
        (unsigned long long)st->gc_deleted, st->last_error[0] ? "err" : "ok");
    if (st->last_error[0])
        add(t, "lake_last_error:%s\r\n", st->last_error);
    if (server.cfg.storage[0])
        section_storage_fields(t);
}

static void section_vectors(text *t, const vl_engine_stats *st)
{
    /* before the collection exists: what it will be created with */
    vl_collection_info info = {0};
    if (vl_collection_describe(server.engine, VL_DEFAULT_COLLECTION, &info) != VL_OK) {
        info.metric = server.cfg.metric;
        info.index = server.cfg.index;
    }
    add(t, "# Vectors\r\ncollection:%s\r\nvectors:%llu\r\ndimension:%u\r\nmetric:%s\r\n",
        VL_DEFAULT_COLLECTION, (unsigned long long)info.count, info.dim,
        vl_metric_name(info.metric));
    add(t, "version:%llu\r\nsegments:%llu\r\nunflushed_writes:%llu\r\nrows_in_memory:%llu\r\n",
        (unsigned long long)info.version, (unsigned long long)info.segments,
        (unsigned long long)info.unflushed, (unsigned long long)info.rows_in_memory);
    add(t, "collections:%llu\r\ntotal_vectors:%llu\r\nbytes_on_disk:%llu\r\n",
        (unsigned long long)st->collections, (unsigned long long)st->vectors,
        (unsigned long long)st->bytes_on_disk);
    add(t, "max_dimension:%u\r\nmax_k:%u\r\n", VL_MAX_DIM, VL_MAX_K);
    add(t, "index:%s\r\nquant:%s\r\nindexed_rows:%llu\r\nunindexed_rows:%llu\r\n",
        vl_index_kind_name(info.index.kind), vl_quant_name(info.index.quant),
        (unsigned long long)info.indexed_rows, (unsigned long long)info.unindexed_rows);
    vl_memory_usage mem = {0};
    vl_collection_memory(server.engine, VL_DEFAULT_COLLECTION, &mem);
    add(t, "index_bytes:%llu\r\nindex_bytes_per_vector:%.1f\r\nindex_vector_bytes:%llu\r\n",
        (unsigned long long)info.index_bytes,
        info.indexed_rows ? (double)info.index_bytes / (double)info.indexed_rows : 0.0,
        (unsigned long long)info.index_vector_bytes);
    add(t, "vectors_bytes:%llu\r\n", (unsigned long long)mem.vectors);
    add(t, "index_builds:%llu\r\nindex_loads:%llu\r\nindex_rebuilds:%llu\r\n",
        (unsigned long long)st->index_builds, (unsigned long long)st->index_loads,
        (unsigned long long)st->index_rebuilds);
    add(t, "index_build_running:%d\r\n", st->index_build_running);
    add(t, "tail_indexes:%llu\r\ntail_indexed_rows:%llu\r\ntail_index_bytes:%llu\r\n",
        (unsigned long long)info.tail_indexes, (unsigned long long)info.tail_indexed_rows,
        (unsigned long long)info.tail_index_bytes);
    add(t, "tail_index_builds:%llu\r\ntail_index_build_running:%d\r\n",
        (unsigned long long)st->tail_index_builds, st->tail_index_build_running);
}

/* role:writer with writer_state (ok, fenced: another writer took over the
 * store, store_unavailable: a WAL batch is being retried), or
 * role:follower with the version served (of the default collection) and
 * the lag (server/follower.c). */
static void section_replication(text *t)
{
    if (!server.cfg.read_only) {
        vl_error why;
        vl_status st = vl_write_refusal(server.engine, &why);
        add(t, "# Replication\r\nrole:writer\r\nwriter_state:%s\r\n",
            st == VL_OK             ? "ok"
            : st == VL_ERR_CONFLICT ? "fenced"
                                    : "store_unavailable");
        return;
    }
    vl_follower_stats fs;
    vl_follower_stats_get(&fs);
    add(t, "# Replication\r\nrole:follower\r\nfollow_interval_ms:%d\r\n",
        server.cfg.follow_interval_ms);
    add(t, "follow_version:%llu\r\nfollow_lag_ms:%lld\r\n",
        (unsigned long long)vl_current_version(server.engine, VL_DEFAULT_COLLECTION),
        (long long)fs.lag_ms);
    vl_follow_stats fw;
    vl_follow_stats_get(server.engine, &fw);
    add(t, "follow_wal_object:%llu\r\nfollow_wal_lsn:%llu\r\nfollow_log_bytes:%llu\r\n",
        (unsigned long long)fw.wal_object, (unsigned long long)fw.wal_lsn,
        (unsigned long long)fw.log_bytes);
    add(t, "follow_polls:%llu\r\nfollow_poll_errors:%llu\r\nfollow_last_error:%s\r\n",
        (unsigned long long)fs.polls, (unsigned long long)fs.poll_errors, fs.last_error);
}

typedef enum {
    SERVER,
    CLIENTS,
    MEMORY,
    STATS,
    PERSISTENCE,
    VECTORS,
    REPLICATION,
    NSECTIONS
} section;
static const char *const section_names[NSECTIONS] = {
    "server", "clients", "memory", "stats", "persistence", "vectors", "replication"};

vl_dispatch_result vl_cmd_info(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    int want[NSECTIONS] = {0};
    for (int i = 1; i < argc; i++) {
        int all = vl_arg_is(argv[i], lens[i], "all") || vl_arg_is(argv[i], lens[i], "everything") ||
                  vl_arg_is(argv[i], lens[i], "default");
        for (int s = 0; s < NSECTIONS; s++)
            if (all || vl_arg_is(argv[i], lens[i], section_names[s]))
                want[s] = 1;
    }
    if (argc == 1)
        for (int s = 0; s < NSECTIONS; s++)
            want[s] = 1;
    vl_engine_stats st;
    vl_engine_stats_get(server.engine, &st);
    text t = {vl_malloc(1024), 0, 1024};
    t.data[0] = '\0';
    for (int s = 0; s < NSECTIONS; s++) {
        if (!want[s])
            continue;
        if (t.len)
            add(&t, "\r\n");
        switch ((section)s) {
        case SERVER: section_server(&t); break;
        case CLIENTS: section_clients(&t); break;
        case MEMORY: section_memory(&t); break;
        case STATS: section_stats(&t); break;
        case PERSISTENCE: section_persistence(&t, &st); break;
        case VECTORS: section_vectors(&t, &st); break;
        case REPLICATION: section_replication(&t); break;
        case NSECTIONS: break;
        }
    }
    vl_reply_bulk(&c->out, t.data, t.len);
    free(t.data);
    return VL_DISPATCH_DONE;
}

vl_dispatch_result vl_cmd_dbsize(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    (void)argc, (void)argv, (void)lens;
    vl_collection_info info = {.metric = server.cfg.metric};
    vl_collection_describe(server.engine, VL_DEFAULT_COLLECTION, &info);
    vl_reply_int(&c->out, (long long)info.count);
    return VL_DISPATCH_DONE;
}

/* CONFIG GET pattern: read-only view of the flags (redis-benchmark and
 * some clients ask for "save" and "appendonly" on connect). */
vl_dispatch_result vl_cmd_config(vl_client *c, int argc, const char **argv, const size_t *lens)
{
    if (!vl_arg_is(argv[1], lens[1], "GET") || argc != 3) {
        vl_reply_error(&c->out, "ERR only CONFIG GET <pattern> is supported; settings are "
                                "command-line flags");
        return VL_DISPATCH_DONE;
    }
    char port[16], tls_port[16], maxclients[16], threads[16], timeout[16], pattern[128], mmc[24],
        qbl[24], obl[24], mm[24];
    snprintf(mmc, sizeof mmc, "%llu", (unsigned long long)server.cfg.maxmemory_clients);
    snprintf(mm, sizeof mm, "%llu", (unsigned long long)server.cfg.maxmemory);
    snprintf(qbl, sizeof qbl, "%llu", (unsigned long long)server.cfg.client_query_buffer_limit);
    snprintf(obl, sizeof obl, "%llu", (unsigned long long)server.cfg.client_output_buffer_limit);
    snprintf(port, sizeof port, "%d", server.cfg.port);
    snprintf(tls_port, sizeof tls_port, "%d", server.cfg.tls_port);
    snprintf(maxclients, sizeof maxclients, "%d", server.cfg.max_clients);
    snprintf(threads, sizeof threads, "%d", server.cfg.threads);
    snprintf(timeout, sizeof timeout, "%d", server.cfg.timeout);
    snprintf(pattern, sizeof pattern, "%.*s", (int)(lens[2] < 127 ? lens[2] : 127), argv[2]);
    const char *params[][2] = {
        {"port", port},
        {"bind", server.cfg.bind},
        {"dir", server.cfg.dir},
        {"appendfsync", vl_fsync_name(server.cfg.fsync)},
        {"appendonly", "yes"},
        {"save", ""},
        {"maxclients", maxclients},
        {"timeout", timeout},
        {"metric", vl_metric_name(server.cfg.metric)},
        {"threads", threads},
        {"tls-port", tls_port},
        {"tls-auth-clients", vl_tls_auth_name(server.cfg.tls_auth_clients)},
        {"maxmemory", mm},
        {"maxmemory-policy", "noeviction"},
        {"maxmemory-clients", mmc},
        {"client-query-buffer-limit", qbl},
        {"client-output-buffer-limit", obl},
    };
    size_t n = sizeof params / sizeof params[0], matches = 0;
    for (size_t i = 0; i < n; i++)
        matches += fnmatch(pattern, params[i][0], FNM_CASEFOLD) == 0;
    vl_reply_map(&c->out, matches);
    for (size_t i = 0; i < n; i++) {
        if (fnmatch(pattern, params[i][0], FNM_CASEFOLD) == 0) {
            vl_reply_bulk_str(&c->out, params[i][0]);
            vl_reply_bulk_str(&c->out, params[i][1]);
        }
    }
    return VL_DISPATCH_DONE;
}
