/*
 * vexlake.h - the embedded VexLake engine.
 *
 * This header is the whole contract between the engine (core + storage) and
 * anything that uses it: the RESP server in src/server uses nothing else, and
 * tests may drive the engine through it directly.
 *
 * Model
 * -----
 * An engine owns one data directory.  Inside it live named collections; each
 * collection holds (key -> float32 vector) pairs of one fixed dimension and is
 * searched with one metric.  The first vl_put into an empty collection fixes
 * its dimension; vl_clear empties it and unfixes the dimension again.  The
 * metric is chosen when the collection is created and stored with it.
 *
 * Durability
 * ----------
 * Every change is appended to a write-ahead log (WAL) with a per-record CRC.
 * When a call that changes data returns VL_OK the change is durable according
 * to vl_options.fsync, unless vl_options.deferred_sync is set: then changes
 * are durable only after the next successful vl_sync() (group commit: the
 * server calls it once per event-loop turn for all clients' writes).
 *
 * Threads
 * -------
 * The engine is single-writer: every function except vl_snapshot_search()
 * and vl_snapshot_close() must be called by one thread at a time (the owner).
 * A snapshot is an immutable view of one collection; it may be searched and
 * closed from any thread, concurrently with writes by the owner, and never
 * sees a write made after it was opened (MVCC).
 *
 * Errors
 * ------
 * Functions return a vl_status.  Those that take a vl_error* fill it (when
 * not NULL) with a one-line, human readable message on failure.
 */
#ifndef VEXLAKE_H
#define VEXLAKE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VL_VERSION "0.1.0"

/** Largest supported vector dimension. */
#define VL_MAX_DIM 16384
/** Largest key, in bytes. Keys are binary safe. */
#define VL_MAX_KEY_LEN 65536
/** Largest K accepted by a search. */
#define VL_MAX_K 10000
/** Largest EF and NPROBE a search accepts (vl_search_opts). */
#define VL_MAX_EF 100000
#define VL_MAX_NPROBE 1000000
/** Longest collection name; names use [A-Za-z0-9_.-] only. */
#define VL_MAX_COLLECTION_NAME 64

/** Status codes returned by every engine call. */
typedef enum {
    VL_OK = 0,
    VL_ERR_ARG,      /**< invalid argument (bad vector, bad name, ...) */
    VL_ERR_DIM,      /**< dimension does not match the collection's */
    VL_ERR_NOTFOUND, /**< key or collection does not exist */
    VL_ERR_IO,       /**< the operating system refused a read or write */
    VL_ERR_CORRUPT,  /**< stored data failed a checksum or format check */
    VL_ERR_NOMEM,    /**< out of memory, or a put past vl_options.max_memory */
    VL_ERR_LIMIT,    /**< a documented limit was exceeded */
    VL_ERR_CONFLICT, /**< another writer committed the same object first */
    VL_ERR_BUSY,     /**< the data directory is open in another engine (vl_open) */
    VL_ERR_READONLY  /**< a change asked of a read-only engine (vl_options.read_only) */
} vl_status;

/** Distance metric of a collection. See vl_hit.score for what scores mean. */
typedef enum {
    VL_METRIC_L2 = 0, /**< Euclidean distance */
    VL_METRIC_COSINE, /**< cosine distance, 1 - cos(a, b) */
    VL_METRIC_IP      /**< inner product, larger is nearer */
} vl_metric;

/** When WAL writes are forced to stable storage (Redis' appendfsync). */
typedef enum {
    VL_FSYNC_ALWAYS = 0, /**< fsync before a write is acknowledged */
    VL_FSYNC_EVERYSEC,   /**< fsync once a second in the background */
    VL_FSYNC_NO          /**< leave flushing to the operating system */
} vl_fsync;

/** How a collection's sealed segments are indexed (stored with the
 *  collection, like its metric; rows not yet indexed are always scanned
 *  exactly, so every acknowledged write is visible to the next search). */
typedef enum {
    VL_INDEX_FLAT = 0, /**< no index: every search scans (today's behaviour) */
    VL_INDEX_HNSW,     /**< HNSW graph per segment (core/index/hnsw.h) */
    VL_INDEX_IVF       /**< k-means inverted lists per segment (core/index/ivf.h) */
} vl_index_kind;

/** Codes an index walks on before the float32 re-rank of its candidates. */
typedef enum {
    VL_QUANT_NONE = 0, /**< float32 throughout */
    VL_QUANT_SQ8,      /**< 8-bit scalar codes */
    VL_QUANT_RABITQ    /**< 1-bit RaBitQ codes with their error bound */
} vl_quant;

/** Index build parameters; 0 in a number means "the index's default". */
typedef struct {
    vl_index_kind kind;
    vl_quant quant;
    uint32_t hnsw_m;               /**< links per node (0: 16) */
    uint32_t hnsw_ef_construction; /**< build beam (0: 200) */
    uint32_t ivf_lists;            /**< lists per segment (0: from its row count) */
} vl_index_params;

/** Parse "flat" | "hnsw" | "ivf"; VL_ERR_ARG otherwise. */
vl_status vl_index_kind_parse(const char *name, vl_index_kind *out);
const char *vl_index_kind_name(vl_index_kind k);
/** Parse "none" | "sq8" | "rabitq"; VL_ERR_ARG otherwise. */
vl_status vl_quant_parse(const char *name, vl_quant *out);
const char *vl_quant_name(vl_quant q);

/** Per-query search options (VSEARCH ... [EF n] [NPROBE n] [EXACT]). */
typedef struct {
    uint32_t ef;     /**< HNSW search beam (0: the index's default) */
    uint32_t nprobe; /**< IVF lists probed (0: the index's default) */
    int exact;       /**< 1: scan every row, recall 1.0, ignore indexes */
} vl_search_opts;

/** Engine options; initialise with vl_options_init() then adjust. */
typedef struct {
    vl_metric default_metric; /**< metric of collections created by this engine */
    vl_fsync fsync;           /**< WAL fsync policy */
    int deferred_sync;        /**< 1: writes wait for vl_sync() (group commit) */
    /** vl_maintenance() flushes a collection when it has this many puts not
     *  yet in a segment (0: never by count; default 100000) ... */
    uint64_t flush_rows;
    /** ... or when the WAL holds this many bytes (0: never; default 256 MiB) ... */
    uint64_t flush_wal_bytes;
    /** ... or when a change has waited this long (0: never; default 300 s). */
    uint32_t flush_seconds;
    /** Versions kept readable for time travel (at least 1; default 10). */
    uint32_t retain_versions;
    /** Merge a collection's segments when it has this many (default 8). */
    uint32_t compact_segments;
    /** 1: if the newest version is damaged, open the newest older one that
     *  loads cleanly instead of failing (default 0). */
    int open_previous_on_damage;
    /** 1: damage anywhere in the last WAL file is cut off like a torn tail
     *  (dropping the records after it) instead of failing the open.  For an
     *  operator recovering a log the strict rule refuses (default 0). */
    int wal_truncate_damaged;
    /** Bytes of data (vl_memory_used) a put may not take the engine past:
     *  such a vl_put fails with VL_ERR_NOMEM and changes nothing.  Deletes
     *  and clears always run, and under this pressure the memory of
     *  deleted rows is reclaimed sooner (vl_maintenance).  0: no limit
     *  (default). */
    uint64_t max_memory;
    /** Where everything durable lives instead of dir (e.g. an S3 store
     *  from vl_objstore_s3_open); NULL: dir itself (default).  vl_open
     *  takes ownership, also when it fails.  The WAL then lives in the
     *  store too, one object per group-committed batch (fsync is treated
     *  as always: a change is durable once its batch's PUT succeeded), and
     *  opening fences any other engine writing to the same store (see
     *  vl_write_refused); dir keeps only LOCK. */
    struct vl_objstore *store;
    /** Index of collections this engine creates (default hnsw + sq8, the
     *  other numbers 0); an existing collection keeps the one it was
     *  created with.  vl_open refuses kind hnsw with quant rabitq
     *  (VL_ERR_ARG): the graph walks none or sq8 codes. */
    vl_index_params index;
    /** Segments with fewer rows get no index file and are scanned exactly
     *  (default 1024: scanning that many rows costs less than setting up a
     *  graph walk; compaction merges small segments). */
    uint64_t index_min_rows;
    /** Rows of one tail index: rows no segment index covers yet (the
     *  memtable, segments waiting for their build) are indexed in memory
     *  in pieces of this many live rows by a background thread, so a
     *  search scans fewer than about this many of them exactly (default
     *  4096; 0: no tail indexes, the whole tail is scanned).  Not for
     *  collections with index flat. */
    uint32_t tail_index_rows;
    /** Build beam of the tail indexes' HNSW (SQ8 codes, M 16; default 32:
     *  cheap enough to keep up with an insert stream). */
    uint32_t tail_ef_construction;
    /** 1: a follower (core/follow.c).  The engine never writes to the
     *  store (no commits, flushes, compactions, index builds or GC) and
     *  refuses changes with VL_ERR_READONLY; vl_follow_* load newer
     *  versions (default 0). */
    int read_only;
} vl_options;

/** Error message buffer filled by failing calls. */
typedef struct {
    char msg[256];
} vl_error;

typedef struct vl_engine vl_engine;
typedef struct vl_snapshot vl_snapshot;

/** One search result. key points into the snapshot and lives as long as it. */
typedef struct {
    const char *key;
    size_t keylen;
    /** l2: Euclidean distance; cosine: 1 - cosine similarity (0..2);
     *  ip: inner product.  Hits are ordered nearest first: ascending score
     *  for l2 and cosine, descending for ip. Ties keep insertion order. */
    double score;
} vl_hit;

/** Facts about one collection. */
typedef struct {
    uint32_t dim; /**< 0 while the collection is empty of any fixed dimension */
    vl_metric metric;
    uint64_t count;          /**< live vectors */
    uint64_t version;        /**< newest committed version, 0 if none */
    uint64_t segments;       /**< segment files in that version */
    uint64_t unflushed;      /**< writes since that version (not yet in a segment) */
    uint64_t rows_in_memory; /**< live rows plus dead ones not yet reclaimed */
    vl_index_params index;   /**< how its segments are indexed */
    uint64_t indexed_rows;   /**< rows searched through an index (deleted ones included) */
    uint64_t
        unindexed_rows;    /**< rows a search scans exactly (memtable, segments not yet indexed) */
    uint64_t tail_indexes; /**< tail indexes searched (vl_options.tail_index_rows) */
    uint64_t tail_indexed_rows; /**< live rows reached through them (not in indexed_rows) */
    uint64_t tail_index_bytes;  /**< their memory (codes, links; not in index_bytes) */
    /** Memory of the segment indexes behind indexed_rows (codes, links,
     *  lists, and any float32 vectors they keep), in bytes asked of malloc. */
    uint64_t index_bytes;
    /** The part of index_bytes that is float32 vectors: 0 with compressed
     *  codes (sq8, rabitq), whose re-ranking reads the rows in memory;
     *  4 x dim per row for hnsw none (its walk's copy) and ivf none (its
     *  lists). */
    uint64_t index_vector_bytes;
} vl_collection_info;

/**
 * Memory one collection's data holds, in bytes asked of malloc (allocator
 * overhead and the process's other memory are not counted).  It covers the
 * collection's current rows -- including rows overwritten or deleted whose
 * memory is not reclaimed yet -- and the version cached for time travel.
 * Vectors are allocated in chunks of 4096 rows, so `vectors` grows in
 * steps.  Snapshots held by searches in flight may keep an older
 * generation alive for a moment; that is not counted.
 */
typedef struct {
    uint64_t vectors; /**< vectors and their norms */
    uint64_t keys;    /**< key copies */
    uint64_t index;   /**< key map, per-row metadata (LSNs, lake locations,
                           deletion stamps), chunk directories, deletions
                           not yet committed */
    uint64_t total;   /**< vectors + keys + index */
} vl_memory_usage;

/** Facts about the whole engine. */
typedef struct {
    uint64_t vectors;       /**< live vectors in all collections */
    uint64_t bytes_on_disk; /**< WAL + segment and deletion files (as the last GC listed) */
    uint64_t wal_lsn;       /**< sequence number of the last logged change */
    uint64_t wal_files;
    uint64_t wal_bytes;
    uint64_t fsyncs;            /**< WAL fsyncs performed since open */
    uint64_t wal_puts;          /**< WAL batch objects stored since open (store WAL) */
    uint64_t wal_dropped_bytes; /**< torn tail removed by the last open */
    uint64_t collections;
    uint64_t commits;             /**< versions committed since open */
    uint64_t flushes;             /**< of which flushes */
    uint64_t compactions;         /**< of which compactions */
    uint64_t gc_deleted;          /**< objects removed by retention and GC since open */
    int64_t last_save;            /**< unix seconds of the newest commit (0: none) */
    int background_job;           /**< 1 while a flush or compaction runs */
    const char *last_error;       /**< why the last background job failed, or "" */
    const char *warning;          /**< what vl_open had to work around, or "" */
    uint64_t index_builds;        /**< index files built and stored since open */
    uint64_t index_loads;         /**< index files loaded from the store since open (not rebuilt) */
    uint64_t index_rebuilds;      /**< of index_builds, ones that replaced a damaged file */
    int index_build_running;      /**< 1 while a background index build runs */
    uint64_t tail_index_builds;   /**< tail indexes built since open */
    int tail_index_build_running; /**< 1 while one is being built */
} vl_engine_stats;

/** One retained version of a collection. */
typedef struct {
    uint64_t version;
    int64_t created_ms; /**< commit time, unix milliseconds */
    uint64_t rows;      /**< live rows in the version */
} vl_version_info;

/** SIMD path of the distance kernels (one per process). */
typedef enum {
    VL_SIMD_AUTO = 0, /**< the best path this CPU and OS support */
    VL_SIMD_SCALAR,   /**< portable C, double accumulation */
    VL_SIMD_AVX2,     /**< x86-64 AVX2 + FMA */
    VL_SIMD_AVX512,   /**< x86-64 AVX-512 F/BW/VL/DQ (VNNI, VPOPCNTDQ when present) */
    VL_SIMD_NEON      /**< arm64 Advanced SIMD */
} vl_simd;

/** Parse "auto" | "avx512" | "avx2" | "neon" | "scalar"; VL_ERR_ARG otherwise. */
vl_status vl_simd_parse(const char *name, vl_simd *out);
/** 1 when this CPU, its OS (saved register state) and this build support p. */
int vl_simd_supported(vl_simd p);
/**
 * Use path p for every kernel from now on (VL_SIMD_AUTO: the best one; the
 * process starts that way).  VL_ERR_ARG, with a message naming the missing
 * instruction set, when the CPU lacks p.  Call before any search or engine
 * runs: the choice is read without locks.
 */
vl_status vl_simd_select(vl_simd p, vl_error *err);
/** Name of the path in use: "avx512", "avx2", "neon" or "scalar". */
const char *vl_simd_name(void);

/** Fill opt with defaults: cosine, fsync always, no deferred sync. */
void vl_options_init(vl_options *opt);

/** Parse "l2" | "cosine" | "ip" into *out; returns VL_ERR_ARG otherwise. */
vl_status vl_metric_parse(const char *name, vl_metric *out);
/** Name of a metric ("l2", "cosine", "ip"). */
const char *vl_metric_name(vl_metric m);
/** Parse "always" | "everysec" | "no" into *out. */
vl_status vl_fsync_parse(const char *name, vl_fsync *out);
const char *vl_fsync_name(vl_fsync f);

/**
 * Open (creating if needed) the engine stored in directory dir, replaying
 * its WAL.  A torn final WAL record (crash mid-write) is dropped and the log
 * truncated before it; damage anywhere else makes the open fail with
 * VL_ERR_CORRUPT and a message naming the file and offset.  On success
 * *out owns the engine; release it with vl_close().
 *
 * An engine owns its directory exclusively: it holds a lock on <dir>/LOCK
 * until vl_close() (or process exit).  Opening a directory that another
 * engine holds, in this process or another, fails with VL_ERR_BUSY and a
 * message naming the directory and the holder's pid.
 */
vl_status vl_open(const char *dir, const vl_options *opt, vl_engine **out, vl_error *err);

/** Sync pending writes, stop background work and free the engine.
 *  Snapshots still open keep their data alive until vl_snapshot_close(). */
void vl_close(vl_engine *e);

/**
 * Store vec (dim floats, all finite) under key in collection coll,
 * replacing any previous vector.  Creates the collection if absent.
 * VL_ERR_DIM when dim differs from the collection's fixed dimension.
 */
vl_status vl_put(vl_engine *e, const char *coll, const void *key, size_t keylen, const float *vec,
                 uint32_t dim, vl_error *err);

/**
 * Copy the vector stored under key into out (room for cap floats) and set
 * *dim.  VL_ERR_NOTFOUND when absent; VL_ERR_LIMIT when cap is too small
 * (then *dim still says how many are needed).
 */
vl_status vl_get(vl_engine *e, const char *coll, const void *key, size_t keylen, float *out,
                 uint32_t cap, uint32_t *dim);

/** Delete key; *deleted is set to 1 if it existed, 0 otherwise. */
vl_status vl_delete(vl_engine *e, const char *coll, const void *key, size_t keylen, int *deleted,
                    vl_error *err);

/** Remove every vector of coll and unfix its dimension (metric is kept). */
vl_status vl_clear(vl_engine *e, const char *coll, vl_error *err);

/** Make every change made so far durable (one write + one fsync).
 *  After a failed WAL write or fsync the engine refuses further changes
 *  (VL_ERR_IO) because what reached the disk is unknown; reads go on.
 *  Reopen the engine to recover from the log. */
vl_status vl_sync(vl_engine *e, vl_error *err);

/**
 * Pipelined group commit, for servers that must not wait for fsync:
 * vl_commit_write() hands every pending change to the OS and, under
 * VL_FSYNC_ALWAYS, asks a background thread to fsync it (while an fsync is
 * in flight the changes wait, to form the next batch: call it again after
 * vl_commit_fd() fires).  vl_durable_lsn()
 * says how far changes are durable (under EVERYSEC and NO: written);
 * vl_commit_fd() becomes readable when it advances -- then call
 * vl_commit_poll(), which reports a failed background fsync (after which
 * the engine refuses changes, as with vl_sync).  A change with LSN <=
 * vl_durable_lsn() may be acknowledged.
 */
vl_status vl_commit_write(vl_engine *e, vl_error *err);
uint64_t vl_durable_lsn(vl_engine *e);
/** LSN of the newest change applied (visible to reads). */
uint64_t vl_last_lsn(const vl_engine *e);
int vl_commit_fd(const vl_engine *e);
vl_status vl_commit_poll(vl_engine *e, vl_error *err);

/**
 * With the WAL in an object store (vl_options.store): why the engine
 * refuses changes without being broken, with the reason in *why.
 * VL_ERR_IO ("store unavailable: ..."): a batch could not be stored; it is
 * retried once a second and changes are taken again once it lands (no
 * reopen).  Changes newer than vl_durable_lsn() are then not stored yet
 * and may never be: whoever waits to acknowledge them must be told they
 * failed.  VL_ERR_CONFLICT ("fenced: ..."): another engine opened the same
 * store and fenced this one, for good; what memory holds beyond
 * vl_durable_lsn() will never be stored.  vl_commit_poll() reports the
 * same error.  VL_OK otherwise (always for a local WAL, whose failures are
 * permanent: see vl_sync).
 */
vl_status vl_write_refusal(vl_engine *e, vl_error *why);

/** 1 if changes are waiting for vl_sync(), else 0. */
int vl_sync_pending(const vl_engine *e);

/**
 * Flush collection coll now: everything written so far becomes a new
 * committed version (Parquet segment, deletion files, manifest).  Waits for
 * a background job in flight first.  VL_OK with nothing to do when no
 * change is pending.  Synchronous: it returns after the commit.
 */
vl_status vl_save(vl_engine *e, const char *coll, vl_error *err);

/** Called on the owner thread when a flush started by vl_save_begin has
 *  finished (inside vl_background_poll, or whatever call finished it):
 *  st and err as vl_save would have returned them.  It must not call back
 *  into the engine. */
typedef void (*vl_save_done_fn)(void *arg, vl_status st, const vl_error *err);

/**
 * vl_save for an event loop: start the flush of coll on the background
 * thread and return at once, so that a slow store never stalls the
 * caller.  *started = 1: done(arg, ...) reports the outcome later.
 * *started = 0 with VL_OK: nothing to flush (done is never called).
 * VL_ERR_BUSY: another background job runs; call again once
 * vl_background_busy() is 0.  Other errors as vl_save.
 */
vl_status vl_save_begin(vl_engine *e, const char *coll, vl_save_done_fn done, void *arg,
                        int *started, vl_error *err);

/** Start a flush of coll in the background; VL_ERR_CONFLICT when a
 *  background job is already running. Completion is applied by
 *  vl_background_poll(). */
vl_status vl_bgsave(vl_engine *e, const char *coll, vl_error *err);

/** An fd that becomes readable when background work finished; the owner
 *  then calls vl_background_poll(). */
int vl_background_fd(const vl_engine *e);

/** Unix seconds of the newest commit (LASTSAVE): its manifest's created_ms
 *  / 1000, so the same before and after a reopen; 0 if none. */
int64_t vl_last_save(const vl_engine *e);

/** 1 while a background flush or compaction runs. */
int vl_background_busy(const vl_engine *e);

/** Apply a finished background job (no-op if none finished). */
void vl_background_poll(vl_engine *e);

/** Periodic housekeeping (call about every 100 ms): starts a flush when a
 *  collection passes a flush threshold, else a compaction when one is due. */
void vl_maintenance(vl_engine *e);

/** Retained versions of coll, oldest first (*out malloc'd; free() it). */
vl_status vl_versions(vl_engine *e, const char *coll, vl_version_info **out, size_t *n);

/** Current (newest committed) version of coll, 0 if none. */
uint64_t vl_current_version(vl_engine *e, const char *coll);

/**
 * Pin retained version `version` of coll for time travel: the snapshot
 * sees exactly that version's rows (read from its files, then cached).
 * VL_ERR_NOTFOUND when the version expired or never existed.
 */
vl_status vl_snapshot_open_version(vl_engine *e, const char *coll, uint64_t version,
                                   vl_snapshot **out, vl_error *err);

/**
 * The same load in three steps, so a server can read the files off its
 * event loop: begin (owner thread; checks the version is retained; *out is
 * NULL when it is already cached), run (any thread; reads the files), end
 * (owner thread; caches the version and frees the load).  Afterwards
 * vl_snapshot_open_version() returns at once.
 */
typedef struct vl_version_load vl_version_load;
vl_status vl_version_load_begin(vl_engine *e, const char *coll, uint64_t version,
                                vl_version_load **out, vl_error *err);
void vl_version_load_run(vl_version_load *l);
vl_status vl_version_load_end(vl_engine *e, vl_version_load *l, vl_error *err);

/**
 * Following the store (vl_options.read_only engines), in three steps so a
 * server can read off its event loop: begin (owner thread; captures what
 * the engine serves), run (any thread; lists the WAL objects, then the
 * descriptors and manifests, loads every collection whose newest version
 * is newer than the one served, with its listed index files, into new row
 * stores, and reads and checks the WAL objects not read before), end
 * (owner thread; swaps the new state in, applies the WAL objects' records
 * in one step and frees f).  Snapshots taken before end keep the
 * generation and LSN they pinned (MVCC); none sees part of an object.
 * end returns the run's error (the engine keeps serving what it had),
 * sets *changed to 1 when anything new was swapped in or applied, and
 * *caught_up (may be NULL) to 1 when the run succeeded and applied every
 * WAL object it listed, so everything acknowledged before the run began
 * is now served.  Nothing is ever written to the store.
 */
typedef struct vl_follow vl_follow;
vl_follow *vl_follow_begin(vl_engine *e);
void vl_follow_run(vl_follow *f);
vl_status vl_follow_end(vl_engine *e, vl_follow *f, int *changed, int *caught_up, vl_error *err);
/** Where a follower is in the writer's WAL (all 0 before its first run). */
typedef struct {
    uint64_t wal_object;  /**< number of the newest WAL object read */
    uint64_t wal_lsn;     /**< LSN of the newest record read: applied, or
                               already in a version served */
    uint64_t log_bytes;   /**< WAL bytes kept for reloads (the follow log,
                               at most 256 MiB; docs/lake.md, Followers) */
    uint64_t log_objects; /**< objects in it */
} vl_follow_stats;
/** Owner thread. */
void vl_follow_stats_get(const vl_engine *e, vl_follow_stats *out);

/** Copy key's vector as the snapshot sees it; owner thread only.
 *  VL_ERR_NOTFOUND / VL_ERR_LIMIT as vl_get(). */
vl_status vl_snapshot_get(const vl_snapshot *s, const void *key, size_t keylen, float *out,
                          uint32_t cap, uint32_t *dim);

/** Describe collection coll; VL_ERR_NOTFOUND if it was never created. */
vl_status vl_collection_describe(vl_engine *e, const char *coll, vl_collection_info *info);

/** Memory of collection coll (see vl_memory_usage); VL_ERR_NOTFOUND if it
 *  was never created.  Owner thread. */
vl_status vl_collection_memory(vl_engine *e, const char *coll, vl_memory_usage *out);

/** Sum of every collection's vl_memory_usage.total: what
 *  vl_options.max_memory limits.  Owner thread. */
uint64_t vl_memory_used(vl_engine *e);

/** Name of the i-th collection (creation order), or NULL past the last;
 *  valid until a call creates a collection.  Owner thread. */
const char *vl_collection_name(vl_engine *e, size_t i);

/** Fill *st with engine-wide figures. */
void vl_engine_stats_get(vl_engine *e, vl_engine_stats *st);

/**
 * Pin the current state of collection coll.  Never fails for a missing
 * collection: that gives an empty snapshot.  Returns NULL only when out of
 * memory.  Release with vl_snapshot_close(), from any thread.
 */
vl_snapshot *vl_snapshot_open(vl_engine *e, const char *coll);

/**
 * Pin collection coll as of the newest durable change (vl_durable_lsn()):
 * rows written, replaced or deleted after it are shown as they were before
 * those changes, so a reply built from it never shows what a crash could
 * undo and need not wait for a sync.  When the generation or the index set
 * cannot show that older state (a CLEAR, or a rebuild that dropped rows
 * deleted after it), this is vl_snapshot_open()'s snapshot; either way
 * vl_snapshot_lsn() says which change it shows up to.  It is meant for
 * searches: vl_snapshot_count() is the count at open, not at that LSN, and
 * vl_snapshot_get() misses a key written after it.  Owner thread; NULL
 * only when out of memory.
 */
vl_snapshot *vl_snapshot_open_durable(vl_engine *e, const char *coll);

/** The newest change (LSN) a snapshot from vl_snapshot_open() or
 *  vl_snapshot_open_durable() may show.  Thread safe. */
uint64_t vl_snapshot_lsn(const vl_snapshot *s);

/** Release a snapshot; thread safe. */
void vl_snapshot_close(vl_snapshot *s);

/** Number of live vectors the snapshot sees. */
uint64_t vl_snapshot_count(const vl_snapshot *s);

/**
 * Exact k-nearest-neighbour search of the snapshot.  hits must have room
 * for k entries; *nhits receives how many were filled (fewer than k when
 * the snapshot holds fewer vectors, 0 when empty).  VL_ERR_DIM when the
 * query's dimension differs from the collection's.  Thread safe.
 */
vl_status vl_snapshot_search(const vl_snapshot *s, const float *query, uint32_t dim, uint32_t k,
                             vl_hit *hits, uint32_t *nhits, vl_error *err);

/**
 * A search split into parts that may run on different threads at once.
 * vl_search_new() validates the query (same errors as vl_snapshot_search)
 * and plans `parts` row ranges; call vl_search_run_part() once for each
 * part, from any threads, then vl_search_finish() once every part has
 * returned.  query and the snapshot must outlive the search; hit keys
 * live as long as the snapshot.
 */
typedef struct vl_search vl_search;

/** 1 when searching s costs less than handing the search to another thread
 *  (a few tens of microseconds): callers may run it inline. */
int vl_search_is_small(const vl_snapshot *s);

/** How many parts make sense for this snapshot on max_parts threads
 *  (1 for small collections, where a thread hand-off costs more). */
uint32_t vl_search_suggest_parts(const vl_snapshot *s, uint32_t max_parts);
vl_status vl_search_new(const vl_snapshot *s, const float *query, uint32_t dim, uint32_t k,
                        uint32_t parts, vl_search **out, vl_error *err);
/** vl_search_new with per-query options (NULL: defaults, which use the
 *  collection's indexes).  VL_ERR_ARG for an option out of range. */
vl_status vl_search_new_opts(const vl_snapshot *s, const float *query, uint32_t dim, uint32_t k,
                             uint32_t parts, const vl_search_opts *opts, vl_search **out,
                             vl_error *err);
uint32_t vl_search_parts(const vl_search *x);
/** Score one part's rows; thread safe across different parts. */
void vl_search_run_part(vl_search *x, uint32_t part);
/** Merge the parts into hits (room for k), best first. */
vl_status vl_search_finish(vl_search *x, vl_hit *hits, uint32_t *nhits);
void vl_search_free(vl_search *x);

#ifdef __cplusplus
}
#endif
#endif
