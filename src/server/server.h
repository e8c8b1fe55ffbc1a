/*
 * server.h - the one server process: configuration and shared state.
 *
 * Like Redis' `server` global, this is the wiring point between layers:
 * the network layer hands requests to the command table, commands reach
 * the engine through include/vexlake.h, and slow work goes to the worker
 * pool.  Everything here is touched by the event-loop thread only.
 */
#ifndef VL_SERVER_SERVER_H
#define VL_SERVER_SERVER_H

#include <limits.h>
#include <stdint.h>

#include "network/client.h"
#include "network/event_loop.h"
#include "server/worker_pool.h"
#include "vexlake.h"

/** The collection the seed commands (VSET, VGET, ...) act on. */
#define VL_DEFAULT_COLLECTION "default"

/** --cache-size unless given: 4 GiB of local copies of lake objects. */
#define VL_DEFAULT_CACHE_SIZE ((uint64_t)4 << 30)

typedef struct {
    int port;
    char bind[256];
    char dir[PATH_MAX];
    vl_metric metric;
    vl_fsync fsync;
    int threads;
    int max_clients;
    int timeout; /* seconds a client may idle (0: forever) */
    uint64_t flush_rows;
    uint64_t flush_mb;
    int flush_seconds;
    int retain_versions;
    int compact_segments;
    int tail_index_rows; /* rows per in-memory tail index (vl_options; 0: none) */
    int open_previous_on_damage;
    int wal_truncate_damaged;
    int tls_port; /* 0: no TLS listener */
    char tls_cert_file[PATH_MAX];
    char tls_key_file[PATH_MAX];
    char tls_ca_cert_file[PATH_MAX];
    vl_tls_auth tls_auth_clients;
    char requirepass[512]; /* default user's password; wiped once hashed */
    char aclfile[PATH_MAX];
    int protected_mode;
    vl_simd simd;                        /* kernel path; selected while flags are parsed */
    uint64_t maxmemory;                  /* data bytes (vl_options.max_memory); 0: no limit */
    uint64_t maxmemory_clients;          /* all client buffers; 0: no limit */
    uint64_t client_query_buffer_limit;  /* one client's query buffer; 0: no limit */
    uint64_t client_output_buffer_limit; /* one client's pending replies; 0: no limit */
    char storage[1024];                  /* --storage s3://bucket/prefix; "": --dir */
    char s3_endpoint[1024];              /* "": AWS's endpoint for s3_region */
    char s3_region[64];
    int s3_timeout_ms;        /* bound on one S3 call, retries included */
    char cache_dir[PATH_MAX]; /* --cache-dir; "": <dir>/cache */
    uint64_t cache_size;      /* --cache-size bytes; 0: no cache */
    vl_index_params index;    /* --index, --quant, --hnsw-*, --ivf-lists: for new collections */
    int read_only;            /* --read-only: a follower of --storage (server/follower.c) */
    int follow_interval_ms;   /* --follow-interval-ms: how often a follower looks */
} vl_config;

typedef struct {
    vl_config cfg;
    vl_engine *engine;
    vl_loop *loop;
    vl_clients clients;
    vl_pool *pool;
    int listen_fd; /* -1 with --port 0 */
    int tls_fd;    /* -1 without --tls-port */
    vl_tls *tls;
    int64_t start_time; /* unix seconds */
    uint64_t commands_processed;
    uint64_t error_replies;
    uint64_t writes;
    uint64_t searches;
    uint64_t group_commits;
    int bgsave_scheduled; /* BGSAVE SCHEDULE waiting for the running job */
    char last_logged_error[256];
} vl_server;

extern vl_server server;

/** Defaults for every flag. */
void vl_config_defaults(vl_config *cfg);

/** Open the engine, listen, and run until SIGINT/SIGTERM. Returns the
 *  process exit code. */
int vl_server_main(const vl_config *cfg);

#endif
