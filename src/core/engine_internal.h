/*
 * engine_internal.h - what engine.c and snapshot.c share; not public.
 *
 * A collection is a name, a metric and its current row store generation.
 * The engine keeps collections in a small array: servers hold a handful,
 * and a linear scan of a few names costs less than hashing.
 */
#ifndef VL_CORE_ENGINE_INTERNAL_H
#define VL_CORE_ENGINE_INTERNAL_H

#include <pthread.h>

#include "core/index/seg_index.h"
#include "core/lake.h"
#include "core/rowstore.h"
#include "storage/objstore.h"
#include "storage/parquet.h"
#include "storage/wal.h"
#include "vexlake.h"

typedef struct {
    char name[VL_MAX_COLLECTION_NAME + 1];
    vl_metric metric;
    vl_index_params index;     /* how its segments are indexed (descriptor) */
    vl_rowstore *rows;         /* current generation; CLEAR replaces it */
    struct vl_index_set *iset; /* indexes over rows, or NULL (core/index_set.h) */
    struct vl_tail *tail;      /* indexes over the unindexed tail, or NULL (core/tail_index.h) */
    vl_lake lake;
    struct vl_version_cache *cache; /* last version loaded for time travel */
} vl_collection;

typedef enum { VL_JOB_FLUSH, VL_JOB_COMPACT, VL_JOB_INDEX, VL_JOB_GC } vl_job_kind;

/* A GC pass (lake_gc.c): inputs captured on the owner thread, outputs. */
typedef struct {
    vl_lake_version *expired; /* versions whose manifests go (out of retained already) */
    size_t nexpired;
    uint64_t *kept; /* retained versions: their files stay */
    size_t nkept;
    char **extra; /* other names to keep (head index files, a build's segment) */
    size_t nextra;
    int keep_indexes; /* an index build runs: no index file goes */
    uint64_t top;     /* nothing named above this version goes */
    int expired_gone; /* out: the expired manifests were deleted (or tried) */
    int listed;       /* out: every listing answered; stored_bytes is the total */
    uint64_t stored_bytes, deleted;
} vl_job_gc;

/* New deletion set of one base segment, computed for a flush. */
typedef struct {
    uint32_t *rows;
    uint64_t n;
    int changed;
    int drop; /* every row deleted: the segment leaves the manifest */
} vl_job_deletes;

/* A background lake job: inputs captured on the owner thread, outputs
 * applied there when it completes (see lake.h). */
typedef struct {
    vl_job_kind kind;
    vl_objstore *store;
    vl_wal *wal;              /* the engine's: asked whether it is still the writer */
    vl_lake_version *skipped; /* versions a fenced writer committed that the commit went above */
    size_t nskipped;
    char coll[VL_MAX_COLLECTION_NAME + 1];
    vl_manifest base;       /* the head the job builds on */
    vl_manifest result;     /* the version it committed */
    uint64_t new_version;   /* the version the job commits */
    int64_t dirty_since_ms; /* flush: the collection's, restored if the job fails */
    uint64_t lsn;           /* flush: changes up to this LSN */
    vl_snapshot *snap;      /* flush: the rows to write */
    vl_job_deletes *dels;   /* flush: per base segment */
    size_t ndels;
    uint32_t *flushed; /* flush: row-store rows written, in segment order */
    uint64_t nflushed;
    size_t *chosen; /* compact: base segment indexes merged */
    size_t nchosen;
    uint32_t **remap;        /* compact: per chosen segment, old row -> new row */
    vl_job_gc gc;            /* gc: the pass */
    vl_save_done_fn on_done; /* flush from vl_save_begin: told the outcome */
    void *done_arg;
    vl_status st;
    vl_error err;
    int committing; /* the manifest commit was attempted (vl_lake_job_commit) */
    pthread_t thread;
    int threaded;
    atomic_int done; /* threaded: run() returned */
} vl_lake_job;

struct vl_engine {
    vl_options opt;
    int lock_fd; /* holds <dir>/LOCK (core/dirlock.c) until vl_close */
    vl_objstore *store;
    vl_wal *wal;
    vl_collection *colls;
    size_t ncolls, cap_colls;
    uint64_t applied_lsn;             /* LSN of the last change applied in memory */
    uint64_t wal_dropped_bytes;       /* torn tail removed at open */
    int failed;                       /* a WAL write failed: refuse changes */
    vl_error failure;                 /* why */
    vl_lake_job *job;                 /* background job in flight, or NULL */
    struct vl_index_build *build;     /* index build in flight (lake_index.c), or NULL */
    struct vl_tail_build *tail_build; /* tail index build in flight (tail_index.c), or NULL */
    int job_fd;                       /* eventfd: readable when job finished */
    int64_t last_save;                /* LASTSAVE: newest committed head's created_ms / 1000 */
    vl_error last_job_error;          /* empty, or why the last background job failed */
    vl_error warning;                 /* empty, or what the open had to work around */
    int64_t backoff_until;            /* monotonic ms: no automatic job before */
    int64_t index_backoff_until;      /* monotonic ms: no index build before (one failed) */
    int version_loads;                /* time-travel reads in flight: GC waits for them */
    int gc_pending;                   /* a GC pass was put off; vl_maintenance runs it */
    int memory_refused;               /* the last put was refused for max_memory */
    int opened;                       /* vl_open has returned it (GC may run in the background) */
    char bgsave_after_gc[VL_MAX_COLLECTION_NAME + 1]; /* BGSAVE asked during a GC pass, or "" */
    uint64_t commits, flushes, compactions, gc_deleted;
    uint64_t index_builds, index_loads, index_rebuilds;
    uint64_t tail_builds;             /* tail indexes built and adopted since open */
    struct vl_follow_log *follow_log; /* read_only: WAL objects applied (core/follow.c) */
};

struct vl_snapshot {
    vl_rowstore *rows; /* NULL: empty snapshot of a missing collection */
    uint64_t nrows;
    uint64_t lsn;
    uint64_t count;
    uint64_t deletions; /* the generation's deletion count at open (rowstore.h) */
    uint32_t dim;
    vl_metric metric;
    struct vl_index_set *iset; /* pinned indexes, or NULL: scan everything */
};

vl_collection *vl_engine_find(vl_engine *e, const char *name);
/** A new, empty collection (the caller made sure it is absent). */
vl_collection *vl_engine_add_collection(vl_engine *e, const char *name, vl_metric metric,
                                        const vl_index_params *index);
/** Apply one change to c (rows and lake bookkeeping), as a live write or
 *  replay does; the caller tracks the engine's applied LSN.  Writer of c
 *  only (a private collection may be filled on any thread). */
void vl_collection_apply(vl_collection *c, const vl_wal_record *rec);
/** follow.c: free what a follower keeps of the WAL (NULL is fine). */
void vl_follow_log_free(struct vl_follow_log *log);
/** Tests only: cap the follow log at bytes instead of 256 MiB. */
void vl_follow_set_log_limit_for_test(vl_engine *e, uint64_t bytes);
int64_t vl_monotonic_ms(void);
void vl_version_cache_free(struct vl_version_cache *vc);
/** Add what a cached version holds to *m (nothing for NULL). */
void vl_version_cache_memory(const struct vl_version_cache *vc, vl_rowstore_mem *m);
/** LASTSAVE from a committed head's own created_ms (never a clock read
 *  here), so a running engine and a reopened one report the same second. */
void vl_engine_note_save_time(vl_engine *e, const vl_manifest *head);
/** After a commit of head: count it, stamp LASTSAVE, remove covered WAL. */
void vl_engine_note_commit(vl_engine *e, const vl_manifest *head);
vl_status vl_engine_remove_covered_wal(vl_engine *e, vl_error *err);
/** 1 once another writer fenced this one (store WAL): from then on it
 *  starts no job, build or GC and commits nothing. */
int vl_engine_fenced(vl_engine *e);

/* lake_flush.c */
vl_status vl_flush_prepare(vl_engine *e, vl_collection *c, vl_lake_job **out, vl_error *err);
void vl_flush_run(vl_lake_job *j);
void vl_flush_complete(vl_engine *e, vl_lake_job *j);
/* lake_compact.c */
vl_lake_job *vl_compact_prepare(vl_engine *e, vl_collection *c);
void vl_compact_run(vl_lake_job *j);
void vl_compact_complete(vl_engine *e, vl_lake_job *j);
/* lake_load.c */
vl_status vl_lake_load(vl_engine *e, vl_collection *c, vl_error *err);
/** The indexes a version's segments loaded with, by segment position. */
typedef struct {
    vl_seg_index **ixs; /* per segment, NULL: none or unusable */
    uint32_t *ids;      /* the segment ids its rows carry */
    size_t n;
    uint64_t loads; /* index files loaded */
} vl_version_indexes;
void vl_version_indexes_free(vl_version_indexes *vi);
/** Version v of coll from store into a fresh *lake and *rows (owned by
 *  the caller), with the index files its manifest lists (*index_loads:
 *  how many); on failure nothing is left to free.  Any thread. */
vl_status vl_lake_open_version(vl_objstore *store, const char *coll, vl_metric metric, uint64_t v,
                               vl_lake *lake, vl_rowstore **rows, uint64_t *index_loads,
                               vl_error *err);
/** Retain, in l, the listed versions vs[n] up to its head (their manifests
 *  are read; unreadable ones are skipped).  Any thread. */
void vl_lake_retain_listed(vl_objstore *store, vl_lake *l, const uint64_t *vs, size_t n);
/** A private row store holding version m (rows located at their segment's
 *  position in m), and the indexes its manifest lists, into *vi. */
vl_status vl_lake_build_rows(vl_objstore *store, const vl_manifest *m, vl_rowstore **out,
                             vl_version_indexes *vi, vl_error *err);
vl_status vl_lake_read_segment(vl_objstore *s, const vl_manifest_segment *g, uint32_t dim,
                               vl_segment *seg, uint32_t **deleted, uint64_t *ndeleted,
                               vl_error *err);
/* lake_index.c */
/** Read and verify the index file g lists, over the segment's vectors;
 *  VL_ERR_CORRUPT (message names the object) when damaged or missing. */
vl_status vl_lake_load_index(vl_objstore *s, const vl_manifest_segment *g, const float *vecs,
                             uint32_t dim, vl_metric metric, vl_seg_index **out, vl_error *err);
/** Owner: publish a new index set over c's current rows and indexes. */
void vl_lake_publish_indexes(vl_collection *c);
/** The same, keeping rows deleted above keep_lsn as if live (index_set.h). */
void vl_lake_publish_indexes_keeping(vl_collection *c, uint64_t keep_lsn);
/** Owner: start an index build for the first segment that wants an index
 *  and has none, unless one runs. */
void vl_index_build_start(vl_engine *e);
/** Owner: apply a finished build (wait: join one still running, after
 *  asking it to stop).  No-op without a build. */
void vl_index_build_finish(vl_engine *e, int wait);
/** Object name of the segment the build in flight reads. */
const char *vl_index_build_segment(const vl_engine *e);
/** Owner, at close: commit the listing of index files built since the
 *  last commit (collections with nothing else to commit). */
void vl_index_list_pending(vl_engine *e);
/** 1 when the build in flight has finished (vl_background_poll). */
int vl_index_build_done(const vl_engine *e);
/** Owner: a job committing c's head again so that index files built
 *  since the last commit are listed, when c has no other change to
 *  commit; NULL otherwise. */
vl_lake_job *vl_index_prepare(vl_engine *e, vl_collection *c);
void vl_index_run(vl_lake_job *j);
void vl_index_complete(vl_engine *e, vl_lake_job *j);
/* lake_gc.c */
/** Owner: a GC pass over c (lake_gc.c): a background job in store mode
 *  once the engine is open, else right here; put off (gc_pending) while a
 *  job or a time-travel read runs. */
void vl_lake_gc(vl_engine *e, vl_collection *c);
void vl_gc_run(vl_lake_job *j);
void vl_gc_complete(vl_engine *e, vl_lake_job *j);
void vl_gc_free(vl_job_gc *g);
/* lake_job.c */
/** Commit m, the job's result, with put_if_absent (any thread); records
 *  that the commit was attempted, so a failure is resolved later.  A lost
 *  version is resolved as lake_job.c says: m->version may go up (the
 *  versions passed are in j->skipped), or the job fails as fenced. */
vl_status vl_lake_job_commit(vl_lake_job *j, vl_manifest *m);
/** Before a job on c (owner thread): settle a commit whose outcome is
 *  unknown (see lake.h).  Fails, and delays automatic jobs, while the
 *  store cannot tell. */
vl_status vl_lake_settle_commit(vl_engine *e, vl_collection *c, vl_error *err);
void vl_lake_job_free(vl_lake_job *j);
/** A background thread's last step (lake job, index build, tail piece):
 *  set done, then wake the owner's loop through the engine's eventfd. */
void vl_background_signal(atomic_int *done, int job_fd);
/** Owner: join a background thread that ends with vl_background_signal.
 *  Without wait, 0 (nothing joined) while it still runs; with wait, it is
 *  asked to cancel first.  1 once joined. */
int vl_background_join(pthread_t thread, atomic_int *done, atomic_int *cancel, int wait);
/** Run j in a background thread (threaded) or right here; either way the
 *  result is applied by vl_lake_job_finish on the owner thread. */
void vl_lake_job_start(vl_engine *e, vl_lake_job *j, int threaded);
/** Owner: wait for the job in flight (if any) and apply its result;
 *  returns the job's status (VL_OK when there was none). */
vl_status vl_lake_job_finish(vl_engine *e, vl_error *err);
/** The collection a finished job applies to, or NULL (the job failed, its
 *  error is recorded). */
vl_collection *vl_lake_job_target(vl_engine *e, vl_lake_job *j);
/** Make the job's committed manifest the head, with nsegs segments. */
void vl_lake_job_adopt_head(vl_lake *l, vl_lake_job *j, size_t nsegs);
/** A random 32-bit part for a new object's name. */
uint32_t vl_lake_random_id(void);
/** Encode rows as a Parquet segment of the job's version, store it and
 *  describe it (name, size, CRC-32C, seq range) in g. */
vl_status vl_lake_store_segment(vl_lake_job *j, const vl_segment_rows *rows,
                                vl_manifest_segment *g);
/** After a new head: retain it, count the commit, remove WAL, run GC. */
void vl_lake_job_after_commit(vl_engine *e, vl_collection *c);

#endif
